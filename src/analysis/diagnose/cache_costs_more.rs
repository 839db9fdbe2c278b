//! `cache-costs-more`: importing and exporting the cache took longer than building the steps
//! it served would have.

use crate::analysis::diagnose::{Evidence, count};
use crate::model::{StepKind, StepStatus};
use crate::report::{Diagnosis, DiagnosisKind, Severity, format_duration};

/// Below this, the difference is within the noise of build timings.
const MIN_LOSS_MS: u64 = 1_000;

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let summary = &report.summary;
    let cached = report
        .build
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Cached && s.kind != StepKind::From)
        .count();
    // Nothing served: nothing saved either, and the other findings say why.
    if cached == 0 {
        return None;
    }
    let import = summary.cache_import_ms?;
    let export = summary.cache_export_ms.unwrap_or(0);
    let saved = summary.cache_saved_ms?;
    let cost = import.saturating_add(export);
    if cost < saved.saturating_add(MIN_LOSS_MS) {
        return None;
    }
    Some(Diagnosis {
        kind: DiagnosisKind::CacheCostsMore,
        severity: Severity::Notice,
        message: format!(
            "The cache cost more time than it saved: importing it took {} (resolving the cache manifests and pulling the layers of the {}){}, while building those steps takes {} (their build time when last rebuilt).",
            format_duration(import),
            count(cached, "cached step"),
            if summary.cache_export_ms.is_some() {
                format!(" and exporting it {}", format_duration(export))
            } else {
                String::new()
            },
            format_duration(saved)
        ),
        fix: "Cache what is slow to build and quick to pull: a cache closer to the runner pulls faster (a registry in the same region, `type=gha` on GitHub-hosted runners), `mode=min` exports fewer layers; for a build this quick, building without --cache-from and --cache-to may be faster.".into(),
        step: None,
        dockerfile_line: None,
        wasted_ms: Some(cost - saved),
    })
}
