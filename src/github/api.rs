//! GitHub REST calls cachehit makes, over octocrab's authenticated client: the sticky
//! pull-request comment, the baseline search (artifacts, runs, releases) and the Actions
//! cache (usage and entries).
//!
//! Requests go out raw so that every status code, `Link` header and rate-limit header is
//! handled here, as GitHub documents them: a request is never repeated before the
//! `retry-after` or `x-ratelimit-reset` it was given, a secondary rate limit without headers
//! waits at least a minute, and when the wait GitHub asks for is longer than the policy allows
//! the call stops at once with [`ApiErrorKind::RateLimited`]. 5xx answers are retried a bounded
//! number of times with backoff; everything else is returned to the caller as a typed error.
//!
//! No server can hold the run: every request, its answer's body included, has a deadline
//! ([`Deadlines::request`]), and all calls of one client together have a budget
//! ([`Deadlines::phase`]). A server that does not answer in time, or refuses the connection
//! twice, is not called again by this client ([`ApiErrorKind::Skipped`]). Answers are read up
//! to a size ([`MAX_ANSWER_BYTES`], [`MAX_DOWNLOAD_BYTES`]), into one buffer.
//!
//! Every call goes through [`GitHub::send`] (or [`GitHub::send_accepting`]), so a new endpoint
//! gets the same deadlines, limits and rate-limit handling.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde_json::Value;

use crate::analysis::gha_cache::{CacheEntry, CacheListing};
use crate::github::actions_cache::{ActionsCacheApi, CacheUsage};
use crate::github::baseline::{ArtifactInfo, BaselineApi, ReleaseAsset, ReleaseInfo, RunInfo};
use crate::github::error::seconds;
pub use crate::github::error::{ApiError, ApiErrorKind};
use crate::github::records::{MAX_RECORD_BYTES, PullInfo, RecordApi};

/// How hard to retry; tests shrink the waits.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    /// The longest single wait cachehit accepts. A rate limit asking for more is not waited
    /// out (nor retried early): the call fails at once and the caller warns.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// How long GitHub may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// One request: connecting, sending, and reading the whole answer.
    pub request: Duration,
    /// Every call of this client together, from its first request: in the action, the
    /// baseline search and the pull-request comment.
    pub phase: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            request: Duration::from_secs(20),
            phase: Duration::from_secs(60),
        }
    }
}

/// The largest API answer read (a page of 100 releases with long notes is a few MB).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// The largest download read (an artifact zip, a release asset): a report is far smaller.
pub const MAX_DOWNLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Pages of one listing followed at most (100 items each).
pub const MAX_PAGES: usize = 100;
/// Attempts for a request whose connection fails (refused, reset): a second chance for a
/// blip, no more; a timeout is not retried at all.
const CONNECTION_ATTEMPTS: u32 = 2;

/// GitHub: after a secondary rate limit without `retry-after`, "wait for at least one minute
/// before retrying", and exponentially longer if it persists.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

pub struct GitHub {
    client: Octocrab,
    api: String,
    owner: String,
    repo: String,
    retry: RetryPolicy,
    deadlines: Deadlines,
    /// When the first request went out: the phase budget counts from there.
    started: OnceLock<Instant>,
    /// Origins (`https://host:port`) that failed to answer, and how: never called again.
    unreachable: Mutex<HashMap<String, String>>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The answer as JSON; a body that is not JSON is [`ApiErrorKind::Malformed`].
    fn json(&self, what: &str) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| malformed(what, format!("not JSON ({e})")))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    }

    /// GitHub's `message`, or the start of the body.
    fn message(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|json| json.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&self.body[..self.body.len().min(800)])
                    .chars()
                    .take(200)
                    .collect()
            })
    }
}

fn malformed(what: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(
        what,
        ApiErrorKind::Malformed {
            detail: detail.into(),
        },
    )
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// The JSON media type GitHub recommends for REST calls.
const JSON_MEDIA_TYPE: &str = "application/vnd.github+json";

/// What an error answer requires before the request may be sent again.
#[derive(Debug, PartialEq)]
struct Wait {
    /// Never retry sooner than this.
    at_least: Duration,
    /// A rate limit (as opposed to a server error): reported as [`ApiErrorKind::RateLimited`].
    rate_limit: bool,
    /// Where the wait comes from, for the error message.
    why: String,
}

/// Why one attempt brought no answer.
enum NoAnswer {
    /// No connection, or it broke: worth one more attempt.
    Connection(String),
    /// The answer is larger than the call reads.
    TooLarge(usize),
}

impl GitHub {
    pub fn new(
        api_url: &str,
        token: Option<&str>,
        owner: &str,
        repo: &str,
        retry: RetryPolicy,
    ) -> Result<Self, ApiError> {
        let transport = |message: String| ApiError::transport("the API client", message);
        let mut builder = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| transport(format!("bad API URL {api_url}: {e}")))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None);
        if let Some(token) = token {
            // A header value must be one line of visible characters; the front-end checks
            // the token before, this keeps the client from ever panicking on one.
            if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                return Err(transport(
                    "the token is not one line of visible characters".into(),
                ));
            }
            builder = builder.personal_token(token.to_string());
        }
        let client = builder.build().map_err(|e| transport(e.to_string()))?;
        Ok(GitHub {
            client,
            api: api_url.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            retry,
            deadlines: Deadlines::default(),
            started: OnceLock::new(),
            unreachable: Mutex::new(HashMap::new()),
        })
    }

    /// The same client with other deadlines.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    fn repo_url(&self, path: &str) -> String {
        format!("{}/repos/{}/{}{path}", self.api, self.owner, self.repo)
    }

    /// One call with the JSON media type: deadlines, retries, rate limits, the answer read
    /// up to [`MAX_ANSWER_BYTES`].
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Response, ApiError> {
        self.send_accepting(method, url, body, JSON_MEDIA_TYPE, MAX_ANSWER_BYTES, what)
            .await
    }

    /// The time left of the phase budget.
    fn time_left(&self) -> Duration {
        let started = *self.started.get_or_init(Instant::now);
        self.deadlines.phase.saturating_sub(started.elapsed())
    }

    fn unreachable_reason(&self, origin: &str) -> Option<String> {
        self.unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(origin)
            .cloned()
    }

    fn mark_unreachable(&self, origin: &str, reason: String) {
        self.unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(origin.to_string())
            .or_insert(reason);
    }

    /// One request once, within `deadline`: the client's own authorization, `Accept` as
    /// asked, the body read up to `limit` bytes into one buffer. `None` when the deadline
    /// passed first.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        accept: &str,
        limit: usize,
        deadline: Duration,
    ) -> Option<Result<Response, NoAnswer>> {
        tokio::time::timeout(
            deadline,
            self.send_once_unbounded(method, url, body, accept, limit),
        )
        .await
        .ok()
    }

    async fn send_once_unbounded(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        accept: &str,
        limit: usize,
    ) -> Result<Response, NoAnswer> {
        let connection = |message: String| NoAnswer::Connection(message);
        let method = match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
        };
        let builder = http::Request::builder().method(method).uri(url).header(
            http::header::ACCEPT,
            HeaderValue::from_str(accept).map_err(|e| connection(e.to_string()))?,
        );
        let request = self
            .client
            .build_request(builder, body)
            .map_err(|e| connection(e.to_string()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| connection(error_chain(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let announced = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(NoAnswer::TooLarge(limit));
        }
        let mut bytes = Vec::with_capacity(announced.unwrap_or(0) as usize);
        let mut stream = response.into_body();
        while let Some(frame) = stream.frame().await {
            let frame = frame.map_err(|e| connection(format!("reading the answer: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > limit {
                    return Err(NoAnswer::TooLarge(limit));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }

    /// One call: `Accept` as asked, the answer read up to `limit` bytes. Every endpoint goes
    /// through here.
    async fn send_accepting(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        accept: &str,
        limit: usize,
        what: &str,
    ) -> Result<Response, ApiError> {
        let origin = origin_of(url);
        let mut attempt = 0;
        let mut backoff = self.retry.first_backoff;
        let mut secondary_wait = SECONDARY_LIMIT_WAIT;
        loop {
            attempt += 1;
            if let Some(reason) = self.unreachable_reason(&origin) {
                return Err(ApiError::new(
                    what,
                    ApiErrorKind::Skipped { origin, reason },
                ));
            }
            let left = self.time_left();
            if left.is_zero() {
                return Err(ApiError::new(
                    what,
                    ApiErrorKind::OutOfTime {
                        budget: self.deadlines.phase,
                    },
                ));
            }
            let deadline = self.deadlines.request.min(left);
            let response = match self
                .send_once(method, url, body, accept, limit, deadline)
                .await
            {
                Some(Ok(response)) => response,
                None if deadline < self.deadlines.request => {
                    return Err(ApiError::new(
                        what,
                        ApiErrorKind::OutOfTime {
                            budget: self.deadlines.phase,
                        },
                    ));
                }
                None => {
                    let kind = ApiErrorKind::Timeout { after: deadline };
                    self.mark_unreachable(&origin, format!("timeout after {}", seconds(deadline)));
                    return Err(ApiError::new(what, kind));
                }
                Some(Err(NoAnswer::TooLarge(limit))) => {
                    return Err(ApiError::new(what, ApiErrorKind::TooLarge { limit }));
                }
                Some(Err(NoAnswer::Connection(message))) => {
                    let wait = backoff.min(self.retry.max_wait);
                    if attempt < CONNECTION_ATTEMPTS.min(self.retry.attempts)
                        && wait < self.time_left()
                    {
                        tokio::time::sleep(wait).await;
                        backoff *= 2;
                        continue;
                    }
                    self.mark_unreachable(&origin, message.clone());
                    return Err(ApiError::new(what, ApiErrorKind::Transport { message }));
                }
            };
            let status = response.status;
            if status.is_success() || status.is_redirection() {
                return Ok(response);
            }
            let message = response.message();
            let Some(wait) = required_wait(
                &response,
                &message,
                backoff.min(self.retry.max_wait),
                &mut secondary_wait,
                chrono::Utc::now().timestamp_millis(),
            ) else {
                let kind = match status.as_u16() {
                    403 | 401 => ApiErrorKind::Forbidden {
                        status: status.as_u16(),
                        message,
                    },
                    404 => ApiErrorKind::NotFound { message },
                    code => ApiErrorKind::Failed {
                        status: code,
                        attempts: attempt,
                        message,
                    },
                };
                return Err(ApiError::new(what, kind));
            };
            let too_long = wait.at_least > self.retry.max_wait;
            let past_budget = wait.at_least >= self.time_left();
            if !too_long && !past_budget && attempt < self.retry.attempts {
                tokio::time::sleep(wait.at_least).await;
                backoff *= 2;
                continue;
            }
            let outcome = if too_long {
                format!(
                    "GitHub asks to wait {} before retrying ({}), longer than cachehit waits ({}), so it was not retried",
                    seconds(wait.at_least),
                    wait.why,
                    seconds(self.retry.max_wait)
                )
            } else if past_budget && attempt < self.retry.attempts {
                format!(
                    "GitHub asks to wait {} before retrying ({}), more than is left of the {} cachehit gives GitHub, so it was not retried",
                    seconds(wait.at_least),
                    wait.why,
                    seconds(self.deadlines.phase)
                )
            } else {
                format!("still limited after {attempt} attempt(s) ({})", wait.why)
            };
            let kind = if wait.rate_limit {
                ApiErrorKind::RateLimited {
                    status: status.as_u16(),
                    message,
                    outcome,
                }
            } else {
                ApiErrorKind::Failed {
                    status: status.as_u16(),
                    attempts: attempt,
                    message: format!("{message}; {outcome}"),
                }
            };
            return Err(ApiError::new(what, kind));
        }
    }

    /// Every page of a list endpoint, following `Link: <...>; rel="next"`, at most
    /// [`MAX_PAGES`]; a link back to a page already read is [`ApiErrorKind::Malformed`].
    /// Each page must be a JSON array (or hold one under `items_key`).
    async fn get_pages(
        &self,
        first_url: &str,
        what: &str,
        items_key: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut url = Some(first_url.to_string());
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        while let Some(next) = url.take() {
            if !seen.insert(next.clone()) {
                return Err(malformed(
                    what,
                    format!(
                        "the `Link: rel=\"next\"` of page {} points back to a page already read ({next}); stopped",
                        seen.len()
                    ),
                ));
            }
            if seen.len() > MAX_PAGES {
                return Err(ApiError::new(
                    what,
                    ApiErrorKind::TooManyPages { pages: MAX_PAGES },
                ));
            }
            let response = self.send(Method::Get, &next, None, what).await?;
            let mut json = response.json(what)?;
            let page = match items_key {
                Some(key) => json.get_mut(key).map(Value::take),
                None => Some(json),
            };
            match page {
                Some(Value::Array(page)) => items.extend(page),
                _ => {
                    return Err(malformed(
                        what,
                        match items_key {
                            Some(key) => format!("page {} has no `{key}` list", seen.len()),
                            None => format!("page {} is not a list", seen.len()),
                        },
                    ));
                }
            }
            url = next_link(&response.headers);
        }
        Ok(items)
    }

    /// The login the token acts as, or `None` when the token may not read `/user`:
    /// installation tokens (`GITHUB_TOKEN`, GitHub App tokens) get 403 "Resource not accessible
    /// by integration" there. Other failures are errors: guessing an identity could make the
    /// comment search miss our own comment and post a duplicate.
    pub async fn viewer_login(&self) -> Result<Option<String>, ApiError> {
        let url = format!("{}/user", self.api);
        let what = "reading the token's user";
        match self.send(Method::Get, &url, None, what).await {
            Ok(r) => match r.json(what)?.get("login").and_then(Value::as_str) {
                Some(login) => Ok(Some(login.to_string())),
                None => Err(malformed(what, "no `login`")),
            },
            Err(e) if e.is_forbidden() || e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Issue comments of a pull request, oldest first.
    pub async fn list_comments(&self, issue: u64) -> Result<Vec<Comment>, ApiError> {
        let url = self.repo_url(&format!("/issues/{issue}/comments?per_page=100"));
        Ok(self
            .get_pages(&url, "listing pull-request comments", None)
            .await?
            .iter()
            .filter_map(Comment::from_json)
            .collect())
    }

    pub async fn create_comment(&self, issue: u64, body: &str) -> Result<Comment, ApiError> {
        let url = self.repo_url(&format!("/issues/{issue}/comments"));
        self.write_comment(
            Method::Post,
            &url,
            body,
            "creating the pull-request comment",
        )
        .await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, ApiError> {
        let url = self.repo_url(&format!("/issues/comments/{id}"));
        self.write_comment(
            Method::Patch,
            &url,
            body,
            "updating the pull-request comment",
        )
        .await
    }

    /// POST or PATCH a comment body; GitHub answers with the comment.
    async fn write_comment(
        &self,
        method: Method,
        url: &str,
        body: &str,
        what: &str,
    ) -> Result<Comment, ApiError> {
        let response = self
            .send(
                method,
                url,
                Some(&serde_json::json!({ "body": body })),
                what,
            )
            .await?;
        Comment::from_json(&response.json(what)?)
            .ok_or_else(|| malformed(what, "the answer is not a comment"))
    }

    pub async fn delete_comment(&self, id: u64) -> Result<(), ApiError> {
        let url = self.repo_url(&format!("/issues/comments/{id}"));
        self.send(Method::Delete, &url, None, "deleting a duplicate comment")
            .await?;
        Ok(())
    }

    /// The bytes behind a download endpoint, at most `limit`. GitHub answers
    /// with a redirect to short-lived storage on another host; the client sends the token
    /// only to the API's own host, so storage never sees it (it would refuse a request
    /// carrying one anyway).
    async fn download(&self, url: &str, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
        let mut url = url.to_string();
        for _ in 0..5 {
            // Release assets come as bytes only when asked for them.
            let response = self
                .send_accepting(
                    Method::Get,
                    &url,
                    None,
                    "application/octet-stream",
                    limit,
                    what,
                )
                .await?;
            if response.status.is_redirection() {
                url = response
                    .header(http::header::LOCATION.as_str())
                    .ok_or_else(|| malformed(what, "a redirect without a location"))?;
                continue;
            }
            return Ok(response.body);
        }
        Err(malformed(what, "more than 5 redirects"))
    }
}

/// `https://host:port` of a URL: what a failed server is remembered by.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            )
        }
        None => url.to_string(),
    }
}

/// An error and its causes, `: `-separated: the client's own message ("client error
/// (Connect)") says nothing without them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The wait GitHub's rules require before this error answer may be retried, or `None` when
/// retrying would not help. `backoff` is the client's own wait for answers that name none;
/// `secondary_wait` grows each time a header-less secondary rate limit is met; `now_ms` is
/// the current Unix time in milliseconds.
fn required_wait(
    response: &Response,
    message: &str,
    backoff: Duration,
    secondary_wait: &mut Duration,
    now_ms: i64,
) -> Option<Wait> {
    let status = response.status.as_u16();
    let limited_status = matches!(status, 403 | 429);
    if let Some(seconds) = response
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        && (limited_status || status >= 500)
    {
        return Some(Wait {
            at_least: Duration::from_secs(seconds),
            rate_limit: limited_status,
            why: format!("retry-after: {seconds}"),
        });
    }
    if limited_status && response.header("x-ratelimit-remaining").as_deref() == Some("0") {
        if let Some(reset) = response
            .header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
        {
            let millis = (reset.saturating_mul(1000) - now_ms).max(0) as u64;
            let at = chrono::DateTime::from_timestamp(reset, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| reset.to_string());
            return Some(Wait {
                at_least: Duration::from_millis(millis),
                rate_limit: true,
                why: format!("rate limit exhausted until x-ratelimit-reset {at}"),
            });
        }
        return Some(secondary(
            secondary_wait,
            "rate limit exhausted, no x-ratelimit-reset",
        ));
    }
    if limited_status
        && message
            .to_ascii_lowercase()
            .contains("secondary rate limit")
    {
        return Some(secondary(
            secondary_wait,
            "secondary rate limit without retry-after",
        ));
    }
    if status == 429 {
        return Some(Wait {
            at_least: backoff,
            rate_limit: true,
            why: "429 Too Many Requests".into(),
        });
    }
    if status >= 500 {
        return Some(Wait {
            at_least: backoff,
            rate_limit: false,
            why: format!("server error {status}"),
        });
    }
    None
}

/// A rate limit without a time to wait for: at least a minute, doubling while it persists.
fn secondary(secondary_wait: &mut Duration, why: &str) -> Wait {
    let at_least = *secondary_wait;
    *secondary_wait *= 2;
    Wait {
        at_least,
        rate_limit: true,
        why: why.to_string(),
    }
}

/// `<https://...&page=2>; rel="next", <...>; rel="last"` -> the next URL.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub html_url: String,
    pub user: Option<String>,
    /// `User`, `Bot` or `Organization`, as GitHub types the author.
    pub user_type: Option<String>,
}

impl Comment {
    fn from_json(value: &Value) -> Option<Comment> {
        Some(Comment {
            id: value.get("id")?.as_u64()?,
            body: text_at(value, "/body").unwrap_or_default(),
            html_url: text_at(value, "/html_url").unwrap_or_default(),
            user: text_at(value, "/user/login"),
            user_type: text_at(value, "/user/type"),
        })
    }
}

fn text_at(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl BaselineApi for GitHub {
    async fn list_artifacts(&self, name: &str) -> Result<Vec<ArtifactInfo>, ApiError> {
        let url = self.repo_url(&format!(
            "/actions/artifacts?per_page=100&name={}",
            encode(name)
        ));
        let items = self
            .get_pages(&url, "listing artifacts", Some("artifacts"))
            .await?;
        Ok(items.iter().filter_map(artifact_info).collect())
    }

    async fn get_workflow_run(&self, run_id: u64) -> Result<RunInfo, ApiError> {
        let url = self.repo_url(&format!("/actions/runs/{run_id}"));
        let what = "reading a workflow run";
        let run = self.send(Method::Get, &url, None, what).await?.json(what)?;
        if !run.is_object() {
            return Err(malformed(what, "not a workflow run"));
        }
        Ok(RunInfo {
            id: run_id,
            conclusion: text_at(&run, "/conclusion"),
            head_branch: text_at(&run, "/head_branch"),
            event: text_at(&run, "/event"),
            repository_id: run.pointer("/repository/id").and_then(Value::as_u64),
            head_repository_id: run.pointer("/head_repository/id").and_then(Value::as_u64),
        })
    }

    async fn download_artifact_zip(&self, artifact_id: u64) -> Result<Vec<u8>, ApiError> {
        let url = self.repo_url(&format!("/actions/artifacts/{artifact_id}/zip"));
        self.download(
            &url,
            MAX_DOWNLOAD_BYTES,
            "downloading the baseline artifact",
        )
        .await
    }

    async fn list_releases(&self) -> Result<Vec<ReleaseInfo>, ApiError> {
        let url = self.repo_url("/releases?per_page=100");
        let items = self.get_pages(&url, "listing releases", None).await?;
        Ok(items
            .iter()
            .filter_map(|r| {
                Some(ReleaseInfo {
                    tag_name: r.get("tag_name")?.as_str()?.to_string(),
                    draft: r.get("draft").and_then(Value::as_bool).unwrap_or(false),
                    prerelease: r
                        .get("prerelease")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    assets: r
                        .get("assets")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            Some(ReleaseAsset {
                                id: a.get("id")?.as_u64()?,
                                name: a.get("name")?.as_str()?.to_string(),
                            })
                        })
                        .collect(),
                })
            })
            .collect())
    }

    async fn download_release_asset(&self, asset_id: u64) -> Result<Vec<u8>, ApiError> {
        let url = self.repo_url(&format!("/releases/assets/{asset_id}"));
        self.download(
            &url,
            MAX_DOWNLOAD_BYTES,
            "downloading the baseline release asset",
        )
        .await
    }
}

impl ActionsCacheApi for GitHub {
    async fn actions_cache_usage(&self) -> Result<CacheUsage, ApiError> {
        let url = self.repo_url("/actions/cache/usage");
        let what = "reading the Actions cache usage";
        let usage = self.send(Method::Get, &url, None, what).await?.json(what)?;
        Ok(CacheUsage {
            bytes: usage
                .get("active_caches_size_in_bytes")
                .and_then(Value::as_u64),
            entries: usage.get("active_caches_count").and_then(Value::as_u64),
        })
    }

    async fn list_actions_caches(&self, max_pages: u32) -> Result<CacheListing, ApiError> {
        let mut url = Some(
            self.repo_url("/actions/caches?per_page=100&sort=last_accessed_at&direction=desc"),
        );
        let what = "listing the Actions caches";
        let mut listing = CacheListing::default();
        let mut seen = HashSet::new();
        while let Some(next) = url.take() {
            if seen.len() == (max_pages as usize).min(MAX_PAGES) {
                listing.truncated = true;
                break;
            }
            if !seen.insert(next.clone()) {
                return Err(malformed(
                    what,
                    format!(
                        "the `Link: rel=\"next\"` of page {} points back to a page already read ({next}); stopped",
                        seen.len()
                    ),
                ));
            }
            let response = self.send(Method::Get, &next, None, what).await?;
            let page = response.json(what)?;
            let entries = page
                .get("actions_caches")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    malformed(
                        what,
                        format!("page {} has no `actions_caches` list", seen.len()),
                    )
                })?;
            listing.entries.extend(entries.iter().filter_map(|entry| {
                Some(CacheEntry {
                    key: text_at(entry, "/key")?,
                    git_ref: text_at(entry, "/ref").unwrap_or_default(),
                    size_in_bytes: entry.get("size_in_bytes").and_then(Value::as_u64)?,
                    last_accessed_at: text_at(entry, "/last_accessed_at")
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc)),
                })
            }));
            url = next_link(&response.headers);
        }
        Ok(listing)
    }
}

/// An artifact as GitHub lists it (the repository's, or a run's).
fn artifact_info(a: &Value) -> Option<ArtifactInfo> {
    Some(ArtifactInfo {
        id: a.get("id")?.as_u64()?,
        name: a.get("name")?.as_str()?.to_string(),
        expired: a.get("expired").and_then(Value::as_bool).unwrap_or(false),
        created_at: a
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
        run_id: a.pointer("/workflow_run/id").and_then(Value::as_u64),
        head_branch: text_at(a, "/workflow_run/head_branch"),
        repository_id: a
            .pointer("/workflow_run/repository_id")
            .and_then(Value::as_u64),
        head_repository_id: a
            .pointer("/workflow_run/head_repository_id")
            .and_then(Value::as_u64),
        size: a.get("size_in_bytes").and_then(Value::as_u64),
    })
}

/// A pull request as GitHub lists it.
fn pull_info(p: &Value) -> Option<PullInfo> {
    Some(PullInfo {
        number: p.get("number")?.as_u64()?,
        state: text_at(p, "/state"),
        head_sha: text_at(p, "/head/sha"),
        head_repository: text_at(p, "/head/repo/full_name"),
    })
}

impl RecordApi for GitHub {
    async fn list_run_artifacts(&self, run_id: u64) -> Result<Vec<ArtifactInfo>, ApiError> {
        let url = self.repo_url(&format!("/actions/runs/{run_id}/artifacts?per_page=100"));
        let items = self
            .get_pages(&url, "listing the run's artifacts", Some("artifacts"))
            .await?;
        Ok(items.iter().filter_map(artifact_info).collect())
    }

    async fn download_record_zip(&self, artifact_id: u64) -> Result<Vec<u8>, ApiError> {
        let url = self.repo_url(&format!("/actions/artifacts/{artifact_id}/zip"));
        self.download(
            &url,
            MAX_RECORD_BYTES as usize,
            "downloading a build-record artifact",
        )
        .await
    }

    async fn pulls_of_commit(&self, sha: &str) -> Result<Vec<PullInfo>, ApiError> {
        let url = self.repo_url(&format!("/commits/{}/pulls?per_page=100", encode(sha)));
        let items = self
            .get_pages(&url, "listing the pull requests of a commit", None)
            .await?;
        Ok(items.iter().filter_map(pull_info).collect())
    }

    async fn pulls_from_head(&self, head: &str) -> Result<Vec<PullInfo>, ApiError> {
        let url = self.repo_url(&format!(
            "/pulls?state=open&per_page=100&head={}",
            encode(head)
        ));
        let items = self
            .get_pages(&url, "listing the pull requests of a branch", None)
            .await?;
        Ok(items.iter().filter_map(pull_info).collect())
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    fn wait_for(response: &Response, secondary: &mut Duration) -> Option<Wait> {
        required_wait(
            response,
            &response.message(),
            Duration::from_secs(2),
            secondary,
            1_800_000_000_500,
        )
    }

    #[test]
    fn waits_follow_the_headers_never_less() {
        let mut secondary = SECONDARY_LIMIT_WAIT;
        let w = wait_for(&answer(403, &[("retry-after", "90")], "{}"), &mut secondary).unwrap();
        assert_eq!((w.at_least, w.rate_limit), (Duration::from_secs(90), true));
        // The reset is an absolute second: half a second before it, wait that half second.
        let w = wait_for(
            &answer(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1800000001"),
                ],
                r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
            ),
            &mut secondary,
        )
        .unwrap();
        assert_eq!(w.at_least, Duration::from_millis(500));
        assert!(w.why.contains("2027-01-15T08:00:01Z"), "{}", w.why);
        // A reset already past: no wait at all.
        let w = wait_for(
            &answer(
                429,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1799999000"),
                ],
                "{}",
            ),
            &mut secondary,
        )
        .unwrap();
        assert_eq!(w.at_least, Duration::ZERO);
    }

    #[test]
    fn a_header_less_secondary_limit_waits_a_minute_then_longer() {
        let body = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        let mut secondary = SECONDARY_LIMIT_WAIT;
        let first = wait_for(&answer(403, &[], body), &mut secondary).unwrap();
        let second = wait_for(&answer(403, &[], body), &mut secondary).unwrap();
        assert_eq!(first.at_least, Duration::from_secs(60));
        assert_eq!(second.at_least, Duration::from_secs(120));
        assert!(first.rate_limit);
        // A plain refusal is not retried.
        let refused = answer(
            403,
            &[],
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert_eq!(wait_for(&refused, &mut secondary), None);
    }
}
