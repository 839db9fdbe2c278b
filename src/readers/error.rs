//! Errors a reader reports when it cannot produce a build at all.
//!
//! Damage after some progress is not an error: the reader returns what it read and records a
//! `model::Problem`, so a partial report still comes out.
//!
//! The variant is the kind of failure and `path` its context: [`ReadError::detail`] formats
//! the kind alone, and the message is the path followed by it.

use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum ReadError {
    Io {
        path: String,
        source: std::io::Error,
    },
    Empty {
        path: String,
    },
    Unrecognized {
        path: String,
        detail: String,
    },
    Malformed {
        path: String,
        detail: String,
    },
}

impl ReadError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ReadError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// What is wrong, without the file name.
    pub fn detail(&self) -> Detail<'_> {
        Detail(self)
    }

    /// The file the error is about.
    pub fn path(&self) -> &str {
        match self {
            ReadError::Io { path, .. }
            | ReadError::Empty { path }
            | ReadError::Unrecognized { path, .. }
            | ReadError::Malformed { path, .. } => path,
        }
    }
}

/// The kind of a [`ReadError`] with its particulars, formatted apart from the path.
pub struct Detail<'a>(&'a ReadError);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ReadError::Io { source, .. } => write!(f, "cannot read the file: {source}"),
            ReadError::Empty { .. } => f.write_str("the file is empty"),
            ReadError::Unrecognized { detail, .. } => {
                write!(f, "not a build record cachehit can read ({detail})")
            }
            ReadError::Malformed { detail, .. } => f.write_str(detail),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.detail())
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
