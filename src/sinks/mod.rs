//! Sinks: where a finished report goes, one module per destination. The front-ends in `cli`
//! pick the sinks; the text comes from `render`, and GitHub's protocols (file commands,
//! REST calls) from `github`.
//!
//! - `terminal`: the report on standard output or in `--output FILE`, and the command line's
//!   warnings and errors on standard error;
//! - `report_file`: the action's JSON report in the workspace;
//! - `job_summary`: the markdown appended to `GITHUB_STEP_SUMMARY`;
//! - `outputs`: the action's outputs in `GITHUB_OUTPUT`;
//! - `workflow_log`: workflow commands on the step's log (masks, warnings, errors, the
//!   annotations on Dockerfile lines);
//! - `pr_comment`: the sticky pull-request comment.
//!
//! A new destination is one more module here, and a line in the front-end that uses it.

pub mod job_summary;
pub mod outputs;
pub mod pr_comment;
pub mod report_file;
pub mod terminal;
pub mod workflow_log;

use std::path::PathBuf;

/// A destination that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// `what`: `report`, `audit`, `job summary`.
    #[error("cannot create the folder of the {what} {}: {source}", .path.display())]
    Folder {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the {what} to {}: {source}", .path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write output `{name}` to {}: {source}", .path.display())]
    Output {
        name: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A path the sink will not write to (a symbolic link on the way, outside its folder).
    #[error("the {what} is not written to {}: {reason}", .path.display())]
    Refused {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
}
