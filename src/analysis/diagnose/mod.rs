//! Findings about a build's caching, each shown only when its evidence is in the records, with
//! the evidence named and a concrete fix.
//!
//! One module per finding and one `report::DiagnosisKind` variant per module: a new finding
//! is a new module here with a `find` function, a new variant, and its line in [`diagnose`]
//! (the order of the lines is the order of the findings in the report).

mod base_image_changed;
mod build_arg_changed;
mod build_failed;
mod cache_busting_order;
mod cache_import_failed;
mod cache_mode_min;
mod cache_not_delivered;
mod context_changed;
mod gha_cache;

use std::collections::HashSet;

use crate::model::{RebuildReason, Step};
use crate::report::{Diagnosis, Report};

/// What every finding looks at.
pub struct Evidence<'a> {
    pub current: &'a Report,
    pub baseline: Option<&'a Report>,
    /// Stages whose rebuilds a finding already explains (intermediate stages under mode=min).
    pub explained: &'a HashSet<Option<String>>,
}

pub fn diagnose(current: &Report, baseline: Option<&Report>) -> Vec<Diagnosis> {
    let no_stage = HashSet::new();
    let mut evidence = Evidence {
        current,
        baseline,
        explained: &no_stage,
    };
    let mut found = Vec::new();
    found.extend(build_failed::find(&evidence));
    let intermediate = cache_mode_min::intermediate_stages(current);
    let mode_min = cache_mode_min::find(current, &intermediate);
    // Under mode=min, intermediate stages are never in the cache: that finding explains them.
    if mode_min.is_some() {
        evidence.explained = &intermediate;
    }
    found.extend(mode_min);
    found.extend(cache_not_delivered::find(&evidence));
    found.extend(cache_import_failed::find(&evidence));
    found.extend(cache_busting_order::find(&evidence));
    found.extend(build_arg_changed::find(&evidence));
    found.extend(base_image_changed::find(&evidence));
    found.extend(context_changed::find(&evidence));
    found.extend(gha_cache::find(&evidence));
    found
}

/// Steps that did work although no change of theirs explains it: first in their chain and
/// not reading the build context.
fn first_in_chain_without_cause(step: &Step) -> bool {
    step.status.did_work()
        && matches!(
            step.rebuild_reason,
            Some(RebuildReason::NoCacheMatch | RebuildReason::CacheImportEmpty)
        )
}

/// Summed step durations; they come from the records, so the sum saturates.
fn total_ms<'a>(steps: impl Iterator<Item = &'a Step>) -> u64 {
    steps
        .filter_map(|s| s.duration_ms)
        .fold(0, u64::saturating_add)
}

fn chain_time(report: &Report, from: &Step) -> u64 {
    // The step and everything rebuilt only because of it, transitively.
    let mut names: HashSet<&str> = HashSet::from([from.name.as_str()]);
    let mut total = from.duration_ms.unwrap_or(0);
    for step in &report.build.steps {
        if let Some(RebuildReason::UpstreamRebuilt { upstream }) = &step.rebuild_reason
            && names.contains(upstream.as_str())
        {
            names.insert(step.name.as_str());
            total = total.saturating_add(step.duration_ms.unwrap_or(0));
        }
    }
    total
}

/// The first step that did work for no reason of its own, outside the explained stages.
fn first_unexplained_rebuild<'a>(evidence: &Evidence<'a>) -> Option<&'a Step> {
    evidence
        .current
        .build
        .steps
        .iter()
        .filter(|s| !evidence.explained.contains(&s.stage))
        .find(|s| first_in_chain_without_cause(s))
}

fn first_regressed(report: &Report) -> Option<&Step> {
    report.build.steps.iter().find(|s| {
        s.transition == Some(crate::model::Transition::Regressed) && first_in_chain_without_cause(s)
    })
}
