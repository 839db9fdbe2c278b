//! Analysis on the normalized model alone: no I/O, so it is tested on data.

pub mod audit;
pub mod rebuild;
pub mod summary;

use crate::model::Build;
use crate::report::{Generator, Report, SCHEMA_VERSION};

/// Turns a build into a report: why each step was rebuilt, whether cache imports delivered,
/// and the summary. Comparison and diagnoses are added on top by their own modules.
pub fn analyze(mut build: Build) -> Report {
    rebuild::explain_rebuilds(&mut build);
    rebuild::judge_cache_imports(&mut build);
    let summary = summary::summarize(&build);
    Report {
        schema_version: SCHEMA_VERSION,
        generator: Generator::default(),
        build,
        summary,
        diagnoses: Vec::new(),
        comparison: None,
    }
}
