//! What the cache costs against what it saves: the time spent importing the cache (resolving
//! its manifests, pulling the layers of the steps it served) and exporting it, against the
//! time the steps it served take to build.

use crate::analysis::causes::Previous;
use crate::model::{Build, Step, StepKind, StepStatus};
use crate::report::Report;

/// Sets each step's `build_ms`: its own duration when this build rebuilt it, else the previous
/// release's figure for the same step (its duration there, or what it carried in turn).
pub fn carry_build_times(build: &mut Build, previous: Option<Previous<'_>>) {
    for (i, step) in build.steps.iter_mut().enumerate() {
        step.build_ms = if step.kind == StepKind::From {
            None
        } else if step.status == StepStatus::Rebuilt {
            step.duration_ms
        } else {
            previous
                .and_then(|p| {
                    let (j, _) = p.matches.get(i).copied().flatten()?;
                    Some(&p.build.steps[j])
                })
                .and_then(own_build_time)
        };
    }
}

fn own_build_time(step: &Step) -> Option<u64> {
    match step.status {
        StepStatus::Rebuilt => step.duration_ms,
        _ => step.build_ms,
    }
}

/// The summary's cache figures, from the steps' `build_ms`.
pub fn summarize(report: &mut Report) {
    let build = &report.build;
    let cached: Vec<&Step> = build
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Cached && s.kind != StepKind::From)
        .collect();
    let summary = &mut report.summary;
    summary.cache_import_ms = (!build.cache_imports.is_empty()).then(|| {
        build
            .cache_imports
            .iter()
            .filter_map(|i| i.duration_ms)
            .chain(cached.iter().filter_map(|s| s.duration_ms))
            .fold(0, u64::saturating_add)
    });
    summary.cache_export_ms = build
        .cache_exports
        .iter()
        .filter_map(|e| e.duration_ms)
        .reduce(u64::saturating_add);
    summary.cache_saved_ms = if cached.is_empty() {
        (!build.cache_imports.is_empty()).then_some(0)
    } else {
        cached
            .iter()
            .map(|s| s.build_ms)
            .try_fold(0u64, |total, ms| Some(total.saturating_add(ms?)))
    };
}
