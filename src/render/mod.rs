//! Renderers: a report in, text out. Shared wording lives here so every format says the same;
//! every size budget (GitHub's summary and comment limits) is applied here too.

pub mod audit;
pub mod github;
pub mod inert;
pub mod json;
pub mod markdown;
pub mod table;

use crate::analysis::causes::{describe_arg_change, describe_base_move};
use crate::model::{RebuildReason, Step, StepStatus};
use crate::report::Report;

pub use crate::report::{format_bytes as bytes, format_duration as duration};

pub fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

pub fn status_label(step: &Step) -> String {
    let label = step.status.as_str();
    if step.status_inferred {
        format!("{label}*")
    } else {
        label.to_string()
    }
}

pub fn reason_text(reason: &RebuildReason) -> String {
    match reason {
        RebuildReason::ContextChanged { files } if files.is_empty() => {
            "build context changed".to_string()
        }
        RebuildReason::ContextChanged { files } => {
            format!("build context changed: {}", list(files, 3))
        }
        RebuildReason::UpstreamRebuilt { upstream } => format!("upstream rebuilt: {upstream}"),
        RebuildReason::NoCacheMatch => {
            "no cache match (instruction or inputs changed, or not in the cache)".to_string()
        }
        RebuildReason::CacheImportEmpty => "cache import empty or failed".to_string(),
        RebuildReason::InstructionChanged { before, .. } => {
            format!("instruction changed (was: {before})")
        }
        RebuildReason::BuildArgChanged { args, .. } => format!(
            "build argument changed: {}",
            args.iter()
                .map(describe_arg_change)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RebuildReason::BaseImageChanged { before, after } => format!(
            "base image moved: {}",
            describe_base_move(before, after).replace('`', "")
        ),
        RebuildReason::NewStep => "new step (not in the previous release)".to_string(),
        RebuildReason::CacheNotDelivered => {
            "defined as in the previous release; the cache did not deliver it".to_string()
        }
        RebuildReason::FirstCacheBuild { cache } => {
            format!("first build of the cache {cache}: nothing exported to it yet")
        }
    }
}

/// `a, b, c and 2 more`.
fn list(items: &[String], shown: usize) -> String {
    let mut text = items
        .iter()
        .take(shown)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        text.push_str(&format!(" and {} more", items.len() - shown));
    }
    text
}

/// What the step row says under "why": the reason, or the error for failed steps.
pub fn why(step: &Step) -> String {
    match (step.status, &step.rebuild_reason) {
        (StepStatus::Failed, _) => step.error.clone().unwrap_or_else(|| "failed".to_string()),
        (StepStatus::NotRun, _) if step.status_inferred => {
            "skipped after the build failed (BuildKit printed it cached)".to_string()
        }
        (StepStatus::NotRun, _) => "never started".to_string(),
        (StepStatus::Shared, _) => match &step.built_by {
            Some(target) => format!("run by bake target {target} in this bake"),
            None => "run by another target of this bake".to_string(),
        },
        (StepStatus::Incomplete, _) => "the record ends before it finished".to_string(),
        (StepStatus::Unknown, _) => {
            "no progress record: cached or rebuilt is not known".to_string()
        }
        (_, Some(reason)) => reason_text(reason),
        (StepStatus::Cached, _) if step.remote_cache_bytes.is_some() => "remote cache".to_string(),
        _ => String::new(),
    }
}

/// One line: `4/7 steps cached (57%) · 1.2 s rebuilding · 3 rebuilt`.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut parts = Vec::new();
    let finished = s.steps_cached + s.steps_rebuilt + s.steps_failed;
    // The ratio is over the steps that finished: say so when that is not all of them.
    let ratio = match s.cache_hit_ratio {
        Some(r) if finished == s.steps_total => format!(" ({})", percent(r)),
        Some(r) => format!(" ({} of the {finished} that finished)", percent(r)),
        None => String::new(),
    };
    let info = &report.build.build;
    let unknown = report
        .build
        .steps
        .iter()
        .filter(|step| step.status == StepStatus::Unknown)
        .count();
    match (
        s.steps_total,
        info.buildkit_cached_vertices,
        info.buildkit_total_vertices,
    ) {
        // Steps from provenance alone: no outcome to count.
        _ if unknown > 0 && finished == 0 => parts.push(format!(
            "{unknown} step(s) from the provenance, cached or rebuilt not known"
        )),
        // Only BuildKit's own counters (a history record without its status log).
        (0, Some(cached), Some(total)) => parts.push(format!(
            "no per-step record; BuildKit counted {cached}/{total} steps cached"
        )),
        _ => parts.push(format!(
            "{}/{} steps cached{ratio}",
            s.steps_cached, s.steps_total
        )),
    }
    if let Some(c) = &report.comparison
        && let Some(before) = c.baseline_cache_hit_ratio
    {
        parts.push(format!("previous release {}", percent(before)));
    }
    if s.steps_rebuilt > 0 {
        parts.push(format!("{} rebuilt", s.steps_rebuilt));
    }
    if s.steps_failed > 0 {
        parts.push(format!("{} failed", s.steps_failed));
    }
    if s.steps_not_run > 0 {
        parts.push(format!("{} not run", s.steps_not_run));
    }
    if s.steps_canceled > 0 {
        parts.push(format!("{} canceled", s.steps_canceled));
    }
    if s.steps_incomplete > 0 {
        parts.push(format!("{} incomplete", s.steps_incomplete));
    }
    if let Some(ms) = s.rebuilt_duration_ms.filter(|ms| *ms > 0) {
        parts.push(format!("{} rebuilding", duration(ms)));
    }
    if let Some(b) = s.pull_bytes {
        let platforms = report.comparison.as_ref().map_or(0, |c| c.pull_cost.len());
        if platforms > 1 {
            parts.push(format!(
                "upgrade pull {} (largest of {platforms} platforms)",
                bytes(b)
            ));
        } else {
            parts.push(format!("upgrade pull {}", bytes(b)));
        }
    }
    if let Some(c) = &report.comparison
        && c.steps_regressed > 0
    {
        parts.push(format!("{} regressed", c.steps_regressed));
    }
    parts.join(" · ")
}

/// `import 1.1 s · export 374 ms · the cached steps take 489 ms to build`: what the cache
/// cost against what it saved, or `None` when the build used no cache.
pub fn cache_time(report: &Report) -> Option<String> {
    let s = &report.summary;
    let mut parts = Vec::new();
    if let Some(ms) = s.cache_import_ms {
        parts.push(format!("import {}", duration(ms)));
    }
    if let Some(ms) = s.cache_export_ms {
        parts.push(format!("export {}", duration(ms)));
    }
    if let Some(ms) = s.cache_saved_ms
        && s.steps_cached > 0
    {
        parts.push(format!("the cached steps take {} to build", duration(ms)));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// `lint.Dockerfile:17`, `line 17`, or nothing: where a build warning points.
pub fn warning_location(warning: &crate::model::BuildWarning) -> Option<String> {
    match (&warning.file, warning.dockerfile_line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (Some(file), None) => Some(file.clone()),
        (None, Some(line)) => Some(format!("Dockerfile line {line}")),
        (None, None) => None,
    }
}

/// Title: the image name, else the build reference.
pub fn title(report: &Report) -> String {
    let info = &report.build.build;
    info.image_names
        .first()
        .cloned()
        .or_else(|| info.name.clone())
        .or_else(|| info.build_ref.clone())
        .unwrap_or_else(|| "build".to_string())
}
