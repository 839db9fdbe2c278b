//! Renderers: a report in, text out. Shared wording lives here so every format says the same.

pub mod json;
pub mod markdown;
pub mod table;

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
        RebuildReason::ContextChanged => "build context changed".to_string(),
        RebuildReason::UpstreamRebuilt { upstream } => format!("upstream rebuilt: {upstream}"),
        RebuildReason::NoCacheMatch => "no cache match (instruction or inputs changed)".to_string(),
        RebuildReason::CacheImportEmpty => "cache import empty or failed".to_string(),
    }
}

/// What the step row says under "why": the reason, or the error for failed steps.
pub fn why(step: &Step) -> String {
    match (step.status, &step.rebuild_reason) {
        (StepStatus::Failed, _) => step.error.clone().unwrap_or_else(|| "failed".to_string()),
        (StepStatus::NotRun, _) => "never started".to_string(),
        (_, Some(reason)) => reason_text(reason),
        (StepStatus::Cached, _) if step.remote_cache_bytes.is_some() => "remote cache".to_string(),
        _ => String::new(),
    }
}

/// One line: `4/7 steps cached (57%) · 1.2 s rebuilding · 3 rebuilt`.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut parts = Vec::new();
    let ratio = s
        .cache_hit_ratio
        .map(|r| format!(" ({})", percent(r)))
        .unwrap_or_default();
    parts.push(format!(
        "{}/{} steps cached{ratio}",
        s.steps_cached, s.steps_total
    ));
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
    if let Some(ms) = s.rebuilt_duration_ms.filter(|ms| *ms > 0) {
        parts.push(format!("{} rebuilding", duration(ms)));
    }
    if let Some(b) = s.pull_bytes {
        parts.push(format!("upgrade pull {}", bytes(b)));
    }
    if let Some(c) = &report.comparison
        && c.steps_regressed > 0
    {
        parts.push(format!("{} regressed", c.steps_regressed));
    }
    parts.join(" · ")
}

/// Title: the image name, else the build reference.
pub fn title(report: &Report) -> String {
    let info = &report.build.build;
    info.image_names
        .first()
        .cloned()
        .or_else(|| info.build_ref.clone())
        .unwrap_or_else(|| "build".to_string())
}
