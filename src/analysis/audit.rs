//! Audit over several releases' reports: one row per release, and the diagnoses that keep
//! coming back (same kind on the same step in consecutive releases).

use std::collections::BTreeMap;

use crate::model::StepStatus;
use crate::readers::vertex_name::{VertexClass, classify};
use crate::report::{DiagnosisKind, Report, Severity};

/// One release's report, labelled (a tag, an artifact name, a file name).
#[derive(Clone, Debug)]
pub struct ReleaseReport {
    pub label: String,
    pub report: Report,
}

/// The figures of one release.
#[derive(Clone, Debug, PartialEq)]
pub struct ReleaseRow {
    pub label: String,
    pub cache_hit_ratio: Option<f64>,
    pub steps_cached: u32,
    pub steps_total: u32,
    /// Names of the steps that did work a cache hit would have saved.
    pub rebuilt_steps: Vec<String>,
    /// Bytes a user with the previous image downloads to get this one, where known.
    pub pull_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// A diagnosis found in at least two consecutive releases.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistentDiagnosis {
    pub kind: DiagnosisKind,
    pub step: Option<String>,
    pub severity: Severity,
    /// Message and fix as the latest release of the run gave them.
    pub message: String,
    pub fix: String,
    /// Labels of the consecutive releases that carried it, oldest first.
    pub releases: Vec<String>,
    /// Rebuild time wasted over those releases, where the diagnoses say.
    pub wasted_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub rows: Vec<ReleaseRow>,
    pub persistent: Vec<PersistentDiagnosis>,
}

/// Audits releases given oldest first.
pub fn audit(releases: &[ReleaseReport]) -> Audit {
    Audit {
        rows: releases.iter().map(row).collect(),
        persistent: persistent_diagnoses(releases),
    }
}

fn row(release: &ReleaseReport) -> ReleaseRow {
    let report = &release.report;
    let summary = &report.summary;
    ReleaseRow {
        label: release.label.clone(),
        cache_hit_ratio: summary.cache_hit_ratio,
        steps_cached: summary.steps_cached,
        steps_total: summary.steps_total,
        rebuilt_steps: report
            .steps()
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Rebuilt | StepStatus::Failed))
            .map(|s| s.name.clone())
            .collect(),
        pull_bytes: pull_bytes(report),
        duration_ms: summary.duration_ms.or(report.build.build.duration_ms),
    }
}

/// The summary's pull cost, else the comparison's per-platform figures.
fn pull_bytes(report: &Report) -> Option<u64> {
    report
        .summary
        .pull_bytes
        .or_else(|| crate::analysis::compare::upgrade_bytes(&report.comparison.as_ref()?.pull_cost))
}

type DiagnosisKey = (DiagnosisKind, Option<String>);

/// `[builder 3/6] RUN make` → `[builder] RUN make`: a step inserted above it renumbers the
/// step, but it is still the same step with the same problem.
fn without_position(name: &str) -> String {
    let VertexClass::Step(step) = classify(name) else {
        return name.to_string();
    };
    let label: Vec<&str> = [step.platform.as_deref(), step.stage.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if label.is_empty() {
        step.instruction
    } else {
        format!("[{}] {}", label.join(" "), step.instruction)
    }
}

fn persistent_diagnoses(releases: &[ReleaseReport]) -> Vec<PersistentDiagnosis> {
    // Runs still open at the current release, by (kind, step).
    let mut open: BTreeMap<DiagnosisKey, PersistentDiagnosis> = BTreeMap::new();
    let mut finished = Vec::new();
    for release in releases {
        let mut seen_now: BTreeMap<DiagnosisKey, PersistentDiagnosis> = BTreeMap::new();
        for diagnosis in &release.report.diagnoses {
            let key = (
                diagnosis.kind.clone(),
                diagnosis.step.as_deref().map(without_position),
            );
            if seen_now.contains_key(&key) {
                continue;
            }
            let mut run = open.remove(&key).unwrap_or_else(|| PersistentDiagnosis {
                kind: diagnosis.kind.clone(),
                step: diagnosis.step.clone(),
                severity: diagnosis.severity,
                message: String::new(),
                fix: String::new(),
                releases: Vec::new(),
                wasted_ms: None,
            });
            run.step = diagnosis.step.clone();
            run.severity = diagnosis.severity;
            run.message = diagnosis.message.clone();
            run.fix = diagnosis.fix.clone();
            run.releases.push(release.label.clone());
            if let Some(ms) = diagnosis.wasted_ms {
                run.wasted_ms = Some(run.wasted_ms.unwrap_or(0).saturating_add(ms));
            }
            seen_now.insert(key, run);
        }
        // Whatever did not show up in this release has ended its run.
        finished.extend(std::mem::take(&mut open).into_values());
        open = seen_now;
    }
    finished.extend(open.into_values());
    let mut persistent: Vec<_> = finished
        .into_iter()
        .filter(|run| run.releases.len() >= 2)
        .collect();
    // Longest-standing first, then by name for a stable order.
    persistent.sort_by(|a, b| {
        b.releases
            .len()
            .cmp(&a.releases.len())
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.step.cmp(&b.step))
    });
    persistent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Diagnosis;

    fn release(label: &str, steps: &[&str]) -> ReleaseReport {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "schema_version": crate::report::SCHEMA_VERSION,
        }))
        .unwrap();
        report.diagnoses = steps
            .iter()
            .map(|step| Diagnosis {
                kind: DiagnosisKind::CacheBustingOrder,
                severity: Severity::Warning,
                message: String::new(),
                fix: String::new(),
                step: Some(step.to_string()),
                dockerfile_line: None,
                wasted_ms: Some(100),
            })
            .collect();
        ReleaseReport {
            label: label.into(),
            report,
        }
    }

    #[test]
    fn a_renumbered_step_keeps_its_run_of_releases() {
        let releases = [
            release("v1", &["[3/5] COPY . ."]),
            release("v2", &["[4/6] COPY . ."]),
            release("v3", &["[builder 4/6] COPY . ."]),
        ];
        let persistent = audit(&releases).persistent;
        assert_eq!(persistent.len(), 1, "{persistent:?}");
        assert_eq!(persistent[0].releases, ["v1", "v2"]);
        assert_eq!(persistent[0].step.as_deref(), Some("[4/6] COPY . ."));
        assert_eq!(persistent[0].wasted_ms, Some(200));
        assert_eq!(
            without_position("[builder 4/6] COPY . ."),
            "[builder] COPY . ."
        );
        assert_eq!(
            without_position("[linux/386 2/3] RUN x"),
            "[linux/386] RUN x"
        );
        assert_eq!(without_position("not a step"), "not a step");
    }
}
