//! The job summary (`GITHUB_STEP_SUMMARY`): markdown appended to the step's summary file.

use std::path::Path;

use crate::github::runner::append;
use crate::render;
use crate::report::Report;
use crate::sinks::SinkError;

/// The report and the baseline note, within GitHub's size limit.
pub fn write(file: &Path, report: &Report, baseline_note: Option<&str>) -> Result<(), SinkError> {
    write_text(file, &render::github::job_summary(report, baseline_note))
}

/// One report among several of the run (`of` in all), under its heading.
pub fn write_section(
    file: &Path,
    section: &render::github::Section,
    of: usize,
) -> Result<(), SinkError> {
    write_text(file, &render::github::job_summary_section(section, of))
}

/// Why there is no report.
pub fn write_no_report(file: &Path, error: &str) -> Result<(), SinkError> {
    write_text(file, &render::github::no_report_summary(error))
}

/// Markdown rendered elsewhere (the audit).
pub fn write_text(file: &Path, text: &str) -> Result<(), SinkError> {
    append(file, text).map_err(|source| SinkError::File {
        what: "job summary",
        path: file.to_path_buf(),
        source,
    })
}
