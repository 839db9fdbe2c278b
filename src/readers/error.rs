//! Errors a reader reports when it cannot produce a build at all.
//!
//! Damage after some progress is not an error: the reader returns what it read and records a
//! `model::Problem`, so a partial report still comes out.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the file is empty")]
    Empty { path: String },
    #[error("{path}: not a build record cachehit can read ({detail})")]
    Unrecognized { path: String, detail: String },
    #[error("{path}: {detail}")]
    Malformed { path: String, detail: String },
}

impl ReadError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ReadError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// What is wrong, without the file name.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.path());
        text.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(text)
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
