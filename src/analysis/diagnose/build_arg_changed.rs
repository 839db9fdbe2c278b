//! `build-arg-changed`: a build argument changed since the previous release and a step that
//! depends on it was rebuilt (against a previous release built cold too).

use crate::analysis::diagnose::{Evidence, chains, chains_total, count, time_text};
use crate::model::{ArgChange, ArgEvidence, RebuildReason};
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let found = chains(report, |r| {
        matches!(r, RebuildReason::BuildArgChanged { .. })
    });
    let step = found.first()?.step;
    let Some(RebuildReason::BuildArgChanged {
        args,
        evidence: how,
    }) = &step.rebuild_reason
    else {
        return None;
    };
    let (rebuilt, total) = chains_total(&found);
    let others = found.len() - 1;
    let unused = *how == ArgEvidence::Environment
        && !args.iter().any(|a| {
            a.after
                .as_deref()
                .is_some_and(|v| !v.is_empty() && step.instruction.contains(v))
        });
    Some(Diagnosis {
        kind: DiagnosisKind::BuildArgChanged,
        severity: Severity::Notice,
        message: format!(
            "{} since the previous release, which invalidated `{}` and what follows{}: {} rebuilt, {}.{}",
            args.iter().map(changed).collect::<Vec<_>>().join(" and "),
            step.name,
            if others > 0 {
                format!(" (and {} that depend on it)", count(others, "other step"))
            } else {
                String::new()
            },
            count(rebuilt, "step"),
            time_text(Some(total)),
            if unused {
                format!(
                    " `{}` does not use it: a declared `ARG` is in the environment of every later `RUN` of its stage.",
                    step.name
                )
            } else {
                String::new()
            }
        ),
        fix: if unused {
            "Declare the `ARG` just before the first step that uses it, so a new value only invalidates that step and those after it.".into()
        } else {
            "Expected when the value changes. Declare each `ARG` just before the first step that uses it, so a new value invalidates no step before that one.".into()
        },
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(total),
    })
}

/// `PROTOC_VERSION changed 25.1 → 26.1` (`unset` for a side where it was not set).
fn changed(change: &ArgChange) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
    format!(
        "{} changed {} → {}",
        change.name,
        value(&change.before),
        value(&change.after)
    )
}
