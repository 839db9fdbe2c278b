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
mod cache_costs_more;
mod cache_import_failed;
mod cache_mode_min;
mod cache_not_delivered;
mod context_changed;
mod first_cache_build;
mod gha_cache;
mod layer_not_reproducible;

use std::collections::HashSet;

use crate::analysis::matching::{MatchKind, match_steps};
use crate::model::{RebuildReason, Step};
use crate::report::{Diagnosis, Report};

/// What every finding looks at.
pub struct Evidence<'a> {
    pub current: &'a Report,
    pub baseline: Option<&'a Report>,
    /// Each current step's match in the baseline (`matching::match_steps`), with a baseline.
    pub matches: &'a [Option<(usize, MatchKind)>],
    /// Stages whose rebuilds a finding already explains (intermediate stages under mode=min).
    pub explained: &'a HashSet<Option<String>>,
}

pub fn diagnose(current: &Report, baseline: Option<&Report>) -> Vec<Diagnosis> {
    let matches = baseline
        .map(|b| match_steps(&current.build.steps, &b.build.steps))
        .unwrap_or_default();
    diagnose_matched(current, baseline, &matches)
}

/// [`diagnose`] with the steps already matched with the baseline's.
pub fn diagnose_matched(
    current: &Report,
    baseline: Option<&Report>,
    matches: &[Option<(usize, MatchKind)>],
) -> Vec<Diagnosis> {
    let no_stage = HashSet::new();
    let mut evidence = Evidence {
        current,
        baseline,
        matches,
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
    found.extend(first_cache_build::find(&evidence));
    found.extend(cache_import_failed::find(&evidence));
    found.extend(cache_busting_order::find(&evidence));
    found.extend(build_arg_changed::find(&evidence));
    found.extend(base_image_changed::find(&evidence));
    found.extend(layer_not_reproducible::find(&evidence));
    found.extend(cache_costs_more::find(&evidence));
    found.extend(context_changed::find(&evidence));
    found.extend(gha_cache::find(&evidence));
    found
}

/// Steps that did work although no change the records show explains it: first in their
/// chain, and either defined as in the previous release or not known to have changed.
fn first_in_chain_without_cause(step: &Step) -> bool {
    step.status.did_work() && step.rebuild_reason.as_ref().is_some_and(is_cache_cause)
}

/// The causes that blame the cache rather than a change.
fn is_cache_cause(reason: &RebuildReason) -> bool {
    matches!(
        reason,
        RebuildReason::NoCacheMatch
            | RebuildReason::CacheImportEmpty
            | RebuildReason::CacheNotDelivered
            | RebuildReason::FirstCacheBuild { .. }
    )
}

/// A rebuilt step and what it cost: itself and every step rebuilt only because of it,
/// transitively.
struct Chain<'a> {
    step: &'a Step,
    /// Steps rebuilt only because of `step` (not counting it).
    following: usize,
    /// Summed durations of `step` and those steps (they come from the records: saturating).
    ms: u64,
}

impl<'a> Chain<'a> {
    fn of(report: &'a Report, from: &'a Step) -> Chain<'a> {
        let mut names: HashSet<&str> = HashSet::from([from.name.as_str()]);
        let mut ms = from.duration_ms.unwrap_or(0);
        for step in &report.build.steps {
            if let Some(RebuildReason::UpstreamRebuilt { upstream }) = &step.rebuild_reason
                && names.contains(upstream.as_str())
            {
                names.insert(step.name.as_str());
                ms = ms.saturating_add(step.duration_ms.unwrap_or(0));
            }
        }
        Chain {
            step: from,
            following: names.len() - 1,
            ms,
        }
    }
}

/// The chains of the steps whose primary cause `is` picks, in step order.
fn chains(report: &Report, is: impl Fn(&RebuildReason) -> bool) -> Vec<Chain<'_>> {
    report
        .build
        .steps
        .iter()
        .filter(|s| s.status.did_work() && s.rebuild_reason.as_ref().is_some_and(&is))
        .map(|s| Chain::of(report, s))
        .collect()
}

/// Steps rebuilt across `chains`, their starting steps included, and their summed time.
fn chains_total(chains: &[Chain<'_>]) -> (usize, u64) {
    chains.iter().fold((0, 0), |(steps, ms), chain| {
        (steps + chain.following + 1, ms.saturating_add(chain.ms))
    })
}

/// Summed step durations; they come from the records, so the sum saturates.
fn total_ms<'a>(steps: impl Iterator<Item = &'a Step>) -> u64 {
    steps
        .filter_map(|s| s.duration_ms)
        .fold(0, u64::saturating_add)
}

/// `1 step`, `3 steps`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1.2 s`, or `time unknown`.
fn time_text(ms: Option<u64>) -> String {
    ms.map(crate::report::format_duration)
        .unwrap_or_else(|| "time unknown".into())
}
