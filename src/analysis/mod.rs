//! Analysis on the normalized model alone: no I/O, so it is tested on data.

pub mod audit;
pub mod compare;
pub mod diagnose;
pub mod dockerfile;
pub mod gates;
pub mod matching;
pub mod rebuild;
pub mod summary;

use crate::model::Build;
use crate::report::{Generator, Report, SCHEMA_VERSION};

/// Turns a build into a report: why each step was rebuilt, whether cache imports delivered,
/// the summary, and the findings that need no baseline.
pub fn analyze(mut build: Build) -> Report {
    rebuild::explain_rebuilds(&mut build);
    rebuild::judge_cache_imports(&mut build);
    let summary = summary::summarize(&build);
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        generator: Generator::default(),
        build,
        summary,
        diagnoses: Vec::new(),
        comparison: None,
    };
    report.diagnoses = diagnose::diagnose(&report, None);
    report
}

/// Compares an analyzed report with its baseline and redoes the findings with that evidence.
pub fn analyze_against(report: &mut Report, baseline: &Report, baseline_source: &str) {
    compare::compare(report, baseline, baseline_source);
    report.diagnoses = diagnose::diagnose(report, Some(baseline));
}
