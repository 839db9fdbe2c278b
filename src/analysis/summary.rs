//! Counts and totals over one build.

use std::collections::HashSet;

use crate::model::{Build, StepKind, StepStatus};
use crate::report::Summary;

pub fn summarize(build: &Build) -> Summary {
    let mut summary = Summary::default();
    let mut rebuilt_ms = 0u64;
    let mut any_duration = false;
    let mut remote_bytes = 0u64;
    let mut any_remote = false;
    for step in build.steps.iter().filter(|s| s.kind != StepKind::From) {
        summary.steps_total += 1;
        match step.status {
            StepStatus::Cached => summary.steps_cached += 1,
            StepStatus::Rebuilt => summary.steps_rebuilt += 1,
            StepStatus::Failed => summary.steps_failed += 1,
            StepStatus::Canceled => summary.steps_canceled += 1,
            StepStatus::NotRun => summary.steps_not_run += 1,
            StepStatus::Incomplete => summary.steps_incomplete += 1,
            StepStatus::Base | StepStatus::Shared | StepStatus::Unknown => {}
        }
        if step.status.did_work()
            && let Some(ms) = step.duration_ms
        {
            // Durations and sizes come from the records: saturate rather than overflow.
            rebuilt_ms = rebuilt_ms.saturating_add(ms);
            any_duration = true;
        }
        if let Some(bytes) = step.remote_cache_bytes {
            remote_bytes = remote_bytes.saturating_add(bytes);
            any_remote = true;
        }
    }
    let finished = summary.steps_cached + summary.steps_rebuilt + summary.steps_failed;
    summary.cache_hit_ratio =
        (finished > 0).then(|| f64::from(summary.steps_cached) / f64::from(finished));
    summary.duration_ms = build.build.duration_ms;
    summary.rebuilt_duration_ms = any_duration.then_some(rebuilt_ms);
    summary.remote_cache_bytes = any_remote.then_some(remote_bytes);
    summary.image_bytes = image_bytes(build);
    summary
}

/// Distinct layers across platforms: what the registry stores for the image.
fn image_bytes(build: &Build) -> Option<u64> {
    if build.images.is_empty() {
        return None;
    }
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for layer in build.images.iter().flat_map(|i| &i.layers) {
        if seen.insert(layer.digest.as_str()) {
            total = total.saturating_add(layer.size?);
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;

    #[test]
    fn ratio_counts_finished_non_from_steps() {
        let step = |kind, status, ms| Step {
            kind,
            status,
            duration_ms: Some(ms),
            ..Step::default()
        };
        let build = Build {
            steps: vec![
                step(StepKind::From, StepStatus::Base, 5),
                step(StepKind::Run, StepStatus::Cached, 0),
                step(StepKind::Copy, StepStatus::Rebuilt, 100),
                step(StepKind::Run, StepStatus::Failed, 40),
                step(StepKind::Run, StepStatus::NotRun, 0),
            ],
            ..Build::default()
        };
        let s = summarize(&build);
        assert_eq!(s.steps_total, 4);
        assert_eq!(
            (
                s.steps_cached,
                s.steps_rebuilt,
                s.steps_failed,
                s.steps_not_run
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(s.cache_hit_ratio, Some(1.0 / 3.0));
        assert_eq!(s.rebuilt_duration_ms, Some(140));
        assert_eq!(summarize(&Build::default()).cache_hit_ratio, None);
    }
}
