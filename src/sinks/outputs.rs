//! The action's outputs (`GITHUB_OUTPUT`), every one of them on every run (empty when
//! unknown), so later steps can always refer to them.

use std::path::Path;

use crate::github::runner::write_output;
use crate::model::StepStatus;
use crate::report::Report;
use crate::sinks::SinkError;

/// What the outputs say beyond the report.
pub struct Written<'a> {
    /// The report file as later steps reach it, when it was written.
    pub report_path: Option<&'a str>,
    /// The pull-request comment, when one was written.
    pub comment_url: Option<&'a str>,
}

/// Writes every output; stops at the first that cannot be written.
pub fn write(file: &Path, report: &Report, written: &Written) -> Result<(), SinkError> {
    for (name, value) in values(report, written) {
        write_output(file, name, &value).map_err(|source| SinkError::Output {
            name,
            path: file.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Each output's name (as action.yml declares it) and value.
fn values(report: &Report, written: &Written) -> [(&'static str, String); 7] {
    let s = &report.summary;
    let rebuilt: Vec<&str> = report
        .build
        .steps
        .iter()
        .filter(|st| matches!(st.status, StepStatus::Rebuilt | StepStatus::Failed))
        .map(|st| st.name.as_str())
        .collect();
    [
        (
            "cache-hit-ratio",
            s.cache_hit_ratio
                .map(|r| format!("{r:.4}"))
                .unwrap_or_default(),
        ),
        ("steps-cached", s.steps_cached.to_string()),
        ("steps-total", s.steps_total.to_string()),
        ("rebuilt-steps", rebuilt.join("\n")),
        (
            "pull-bytes",
            s.pull_bytes.map(|b| b.to_string()).unwrap_or_default(),
        ),
        (
            "report-path",
            written.report_path.unwrap_or_default().to_string(),
        ),
        (
            "comment-url",
            written.comment_url.unwrap_or_default().to_string(),
        ),
    ]
}
