//! What can go wrong talking to GitHub: the kind of failure apart from the call it happened
//! to (`what`), so callers branch on the kind (a refused token, a rate limit, a missing
//! resource, an outage, no connection, no answer in time) and print both.

use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub struct ApiError {
    /// The call, as a log line names it: `listing artifacts`, `creating the pull-request comment`.
    pub what: String,
    pub kind: ApiErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The token may not do this (fork pull requests, read-only tokens): 401 or 403.
    Forbidden {
        status: u16,
        message: String,
    },
    NotFound {
        message: String,
    },
    /// A primary or secondary rate limit that cachehit did not (or no longer) wait out.
    RateLimited {
        status: u16,
        message: String,
        /// What was done about it: not retried because the wait is too long, or given up.
        outcome: String,
    },
    /// Any other error answer, after the retries it allows.
    Failed {
        status: u16,
        attempts: u32,
        message: String,
    },
    /// No connection, or it broke before the answer was complete.
    Transport {
        message: String,
    },
    /// No complete answer (its body included) within the request's deadline.
    Timeout {
        after: Duration,
    },
    /// Not sent: the time cachehit gives GitHub is spent.
    OutOfTime {
        budget: Duration,
    },
    /// Not sent: that server failed to answer an earlier call of this run.
    Skipped {
        /// `https://host:port`.
        origin: String,
        reason: String,
    },
    /// The answer is larger than cachehit reads (`limit` bytes).
    TooLarge {
        limit: usize,
    },
    /// A listing with more pages than cachehit follows.
    TooManyPages {
        pages: usize,
    },
    /// An answer that is not what the call returns: not JSON, not the expected shape, a
    /// pagination that loops.
    Malformed {
        detail: String,
    },
}

impl ApiError {
    pub fn new(what: impl Into<String>, kind: ApiErrorKind) -> Self {
        ApiError {
            what: what.into(),
            kind,
        }
    }

    pub fn transport(what: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(
            what,
            ApiErrorKind::Transport {
                message: message.into(),
            },
        )
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self.kind, ApiErrorKind::Forbidden { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, ApiErrorKind::NotFound { .. })
    }

    pub fn is_rate_limited(&self) -> bool {
        matches!(self.kind, ApiErrorKind::RateLimited { .. })
    }

    /// GitHub did not answer (in time, or at all): the next call to the same server will
    /// likely fail too.
    pub fn is_transport(&self) -> bool {
        matches!(
            self.kind,
            ApiErrorKind::Transport { .. }
                | ApiErrorKind::Timeout { .. }
                | ApiErrorKind::OutOfTime { .. }
                | ApiErrorKind::Skipped { .. }
        )
    }

    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ApiErrorKind::Timeout { .. } | ApiErrorKind::OutOfTime { .. }
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = &self.what;
        match &self.kind {
            ApiErrorKind::Forbidden { status, message } => {
                write!(f, "GitHub refused {what} ({status}): {message}")
            }
            ApiErrorKind::NotFound { message } => {
                write!(f, "{what} not found on GitHub (404): {message}")
            }
            ApiErrorKind::RateLimited {
                status,
                message,
                outcome,
            } => write!(
                f,
                "GitHub rate-limited {what} ({status}): {message}; {outcome}"
            ),
            ApiErrorKind::Failed {
                status,
                attempts,
                message,
            } => write!(
                f,
                "GitHub answered {status} to {what} after {attempts} attempt(s): {message}"
            ),
            ApiErrorKind::Transport { message } => {
                write!(f, "cannot reach GitHub for {what}: {message}")
            }
            ApiErrorKind::Timeout { after } => write!(
                f,
                "timeout: GitHub did not answer {what} within {}",
                seconds(*after)
            ),
            ApiErrorKind::OutOfTime { budget } => write!(
                f,
                "timeout: {what} not attempted: the {} cachehit gives GitHub are spent",
                seconds(*budget)
            ),
            ApiErrorKind::Skipped { origin, reason } => write!(
                f,
                "{what} not attempted: {origin} failed to answer an earlier call ({reason})"
            ),
            ApiErrorKind::TooLarge { limit } => write!(
                f,
                "GitHub's answer to {what} is larger than cachehit reads ({} MiB); not used",
                limit >> 20
            ),
            ApiErrorKind::TooManyPages { pages } => write!(
                f,
                "GitHub's answer to {what} has more than {pages} pages; stopped"
            ),
            ApiErrorKind::Malformed { detail } => {
                write!(f, "GitHub's answer to {what} is malformed: {detail}")
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// `90 s`, `0.04 s`: durations in error messages.
pub(crate) fn seconds(d: Duration) -> String {
    if d.as_millis() % 1000 == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
