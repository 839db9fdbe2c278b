//! `build-arg-changed`: a build argument changed since the previous release, and the first
//! step it regressed.

use crate::analysis::diagnose::{Evidence, chain_time, first_regressed};
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let current = evidence.current;
    let baseline = evidence.baseline?;
    let now = &current.build.build.build_args;
    let before = &baseline.build.build.build_args;
    let changed: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
        .map(|(k, v)| format!("{k} ({} → {v})", before[k]))
        .collect();
    if changed.is_empty() {
        return None;
    }
    let step = first_regressed(current)?;
    Some(Diagnosis {
        kind: DiagnosisKind::BuildArgChanged,
        severity: Severity::Notice,
        message: format!(
            "Build argument(s) changed since the previous release: {}. `{}` and everything after it were rebuilt.",
            changed.join(", "),
            step.name
        ),
        fix: "Declare each ARG just before the first step that needs it, so a changed value only invalidates the steps that use it.".into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(chain_time(current, step)),
    })
}
