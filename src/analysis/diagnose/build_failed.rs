//! `build-failed`: the failing step, its error and last output.

use crate::analysis::diagnose::Evidence;
use crate::model::StepStatus;
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let step = report
        .build
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)?;
    let output = step
        .log_tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(" Last output: `{}`.", l.trim()))
        .unwrap_or_default();
    let later = report
        .build
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::NotRun)
        .count();
    Some(Diagnosis {
        kind: DiagnosisKind::BuildFailed,
        severity: Severity::Error,
        message: format!(
            "`{}` failed: {}.{output}{}",
            step.name,
            step.error.as_deref().unwrap_or("no error message"),
            if later > 0 {
                format!(" {later} later step(s) never ran.")
            } else {
                String::new()
            }
        ),
        fix: "Fix the failing command; the steps before it were served as the report shows, so \
              a rerun starts from there."
            .into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: None,
    })
}
