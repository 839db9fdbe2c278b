//! The JSON report written to a file (its folder created when missing).

use std::path::Path;

use crate::render;
use crate::report::Report;
use crate::sinks::SinkError;

pub fn write(path: &Path, report: &Report) -> Result<(), SinkError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SinkError::Folder {
            what: "report",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, render::json::render(report)).map_err(|source| SinkError::File {
        what: "report",
        path: path.to_path_buf(),
        source,
    })
}
