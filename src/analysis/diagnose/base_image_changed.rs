//! `base-image-changed`: a base image resolved to another image since the previous release,
//! and the first step it invalidated (against a previous release built cold too).

use crate::analysis::causes::describe_base_move;
use crate::analysis::diagnose::{Evidence, chains, chains_total, count, time_text};
use crate::model::RebuildReason;
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let found = chains(report, |r| {
        matches!(r, RebuildReason::BaseImageChanged { .. })
    });
    let step = found.first()?.step;
    let Some(RebuildReason::BaseImageChanged { before, after }) = &step.rebuild_reason else {
        return None;
    };
    let (rebuilt, total) = chains_total(&found);
    Some(Diagnosis {
        kind: DiagnosisKind::BaseImageChanged,
        severity: Severity::Notice,
        message: format!(
            "The base image moved since the previous release: {}, which invalidated `{}` and what follows: {} rebuilt, {}.",
            describe_base_move(before, after),
            step.name,
            count(rebuilt, "step"),
            time_text(Some(total))
        ),
        fix: "Expected after a base image update. To control when it happens, pin the base image by digest (`FROM image:tag@sha256:...`) and update it deliberately.".into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(total),
    })
}
