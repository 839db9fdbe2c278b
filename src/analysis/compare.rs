//! The build compared with the previous release's report: per-step transitions, hit ratio and
//! time changes, and what a user who has the previous image downloads to upgrade.

use std::collections::HashSet;

use crate::analysis::matching::{MatchKind, match_steps};
use crate::model::{PlatformImage, Problem, ProblemKind, StepKind, StepStatus, Transition};
use crate::report::{Comparison, PlatformPullCost, Report};

/// Compares `current` with `baseline` in place (per-step baseline fields, `summary.pull_bytes`)
/// and returns the comparison, which is also stored in `current.comparison`.
pub fn compare(current: &mut Report, baseline: &Report, baseline_source: &str) -> Comparison {
    let matches = match_steps(&current.build.steps, &baseline.build.steps);
    compare_matched(current, baseline, baseline_source, &matches)
}

/// [`compare`] with the steps already matched (`matching::match_steps`).
pub fn compare_matched(
    current: &mut Report,
    baseline: &Report,
    baseline_source: &str,
    matches: &[Option<(usize, MatchKind)>],
) -> Comparison {
    let mut comparison = Comparison {
        baseline_source: baseline_source.to_string(),
        baseline_image_names: baseline.build.build.image_names.clone(),
        baseline_image_digest: baseline.build.build.image_digest.clone(),
        baseline_cache_hit_ratio: baseline.summary.cache_hit_ratio,
        baseline_duration_ms: baseline.summary.duration_ms,
        ..Comparison::default()
    };
    let mut used = vec![false; baseline.build.steps.len()];
    for (step, matched) in current.build.steps.iter_mut().zip(matches) {
        let Some((j, _)) = matched else {
            if step.kind != StepKind::From {
                step.transition = Some(Transition::New);
                comparison.steps_new += 1;
            }
            continue;
        };
        used[*j] = true;
        let before = &baseline.build.steps[*j];
        step.baseline_status = Some(before.status);
        step.baseline_duration_ms = before.duration_ms;
        if step.kind == StepKind::From {
            continue;
        }
        // A step that did not run to an outcome in one of the builds says nothing about the
        // cache: no transition, and it counts neither as unchanged nor as regressed.
        if !ran_to_an_outcome(before.status) || !ran_to_an_outcome(step.status) {
            continue;
        }
        let transition = match (before.status, step.status) {
            (StepStatus::Cached, now) if now.did_work() => Transition::Regressed,
            (was, StepStatus::Cached) if was.did_work() => Transition::Improved,
            _ => Transition::Unchanged,
        };
        match transition {
            Transition::Regressed => comparison.steps_regressed += 1,
            Transition::Improved => comparison.steps_improved += 1,
            _ => comparison.steps_unchanged += 1,
        }
        step.transition = Some(transition);
    }
    comparison.removed_steps = baseline
        .build
        .steps
        .iter()
        .zip(&used)
        .filter(|(s, used)| !**used && s.kind != StepKind::From)
        .map(|(s, _)| {
            let mut removed = s.clone();
            removed.transition = Some(Transition::Removed);
            removed
        })
        .collect();
    comparison.steps_removed = comparison.removed_steps.len() as u32;
    if let (Some(now), Some(before)) = (
        current.summary.cache_hit_ratio,
        baseline.summary.cache_hit_ratio,
    ) {
        comparison.hit_ratio_change_points = Some(((now - before) * 1000.0).round() / 10.0);
    }
    if let (Some(now), Some(before)) = (current.summary.duration_ms, baseline.summary.duration_ms) {
        // Both come from reports: the difference saturates at the ends of i64.
        let change = i128::from(now) - i128::from(before);
        comparison.duration_change_ms = Some(change.clamp(i64::MIN.into(), i64::MAX.into()) as i64);
    }
    comparison.pull_cost = pull_cost(&current.build.images, &baseline.build.images);
    current.summary.pull_bytes = upgrade_bytes(&comparison.pull_cost);
    if let (Some(now), Some(before)) = (
        current.summary.remote_cache_bytes,
        baseline.summary.remote_cache_bytes,
    ) {
        comparison.cache_pull_bytes = Some(now.saturating_sub(before));
    }
    if let Some(warning) = other_image_warning(current, baseline, baseline_source) {
        current.build.problems.push(warning);
    }
    current.comparison = Some(comparison.clone());
    comparison
}

/// A user pulls one platform: the largest platform's download is what an upgrade costs.
pub fn upgrade_bytes(costs: &[PlatformPullCost]) -> Option<u64> {
    costs.iter().map(|c| c.new_layer_bytes).max()
}

fn ran_to_an_outcome(status: StepStatus) -> bool {
    matches!(
        status,
        StepStatus::Cached | StepStatus::Rebuilt | StepStatus::Failed
    )
}

/// Per platform: compressed bytes of the current image's layers whose digests the baseline
/// image of the same platform does not have.
pub fn pull_cost(current: &[PlatformImage], baseline: &[PlatformImage]) -> Vec<PlatformPullCost> {
    current
        .iter()
        .filter_map(|image| {
            let before = baseline
                .iter()
                .find(|b| b.platform == image.platform)
                .or_else(|| (baseline.len() == 1 && current.len() == 1).then(|| &baseline[0]))?;
            let known: HashSet<&str> = before.layers.iter().map(|l| l.digest.as_str()).collect();
            let mut cost = PlatformPullCost {
                platform: image.platform.clone(),
                image_bytes: image.total_bytes,
                ..PlatformPullCost::default()
            };
            let mut counted = HashSet::new();
            for layer in &image.layers {
                if known.contains(layer.digest.as_str()) {
                    cost.reused_layers += 1;
                } else if counted.insert(layer.digest.as_str()) {
                    cost.new_layers += 1;
                    cost.new_layer_bytes =
                        cost.new_layer_bytes.saturating_add(layer.size.unwrap_or(0));
                }
            }
            Some(cost)
        })
        .collect()
}

fn repository(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

fn repositories(report: &Report) -> HashSet<&str> {
    report
        .build
        .build
        .image_names
        .iter()
        .map(|n| repository(n))
        .collect()
}

fn other_image_warning(current: &Report, baseline: &Report, source: &str) -> Option<Problem> {
    let (now, before) = (repositories(current), repositories(baseline));
    if now.is_empty() || before.is_empty() || !now.is_disjoint(&before) {
        return None;
    }
    Some(Problem {
        source: source.to_string(),
        kind: ProblemKind::OtherImage,
        message: format!(
            "the baseline is a build of another image ({}; this build: {}): per-step changes may be meaningless",
            before.into_iter().collect::<Vec<_>>().join(", "),
            now.into_iter().collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layer;

    fn image(platform: Option<&str>, layers: &[(&str, u64)]) -> PlatformImage {
        PlatformImage {
            platform: platform.map(str::to_string),
            layers: layers
                .iter()
                .map(|(d, s)| Layer {
                    digest: d.to_string(),
                    size: Some(*s),
                    media_type: None,
                })
                .collect(),
            ..PlatformImage::default()
        }
    }

    #[test]
    fn pull_cost_counts_only_new_layers_per_platform() {
        let before = [
            image(Some("linux/amd64"), &[("a", 100), ("b", 5_000)]),
            image(Some("linux/386"), &[("c", 7)]),
        ];
        let now = [
            image(Some("linux/amd64"), &[("a", 100), ("b", 5_000), ("d", 470)]),
            image(Some("linux/386"), &[("e", 9)]),
        ];
        let cost = pull_cost(&now, &before);
        assert_eq!(cost[0].new_layer_bytes, 470);
        assert_eq!((cost[0].new_layers, cost[0].reused_layers), (1, 2));
        assert_eq!(cost[1].new_layer_bytes, 9);
    }

    #[test]
    fn repository_ignores_tag_and_digest() {
        assert_eq!(repository("localhost:5000/app:v2"), "localhost:5000/app");
        assert_eq!(repository("ghcr.io/a/b@sha256:1"), "ghcr.io/a/b");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    }
}
