//! `base-image-changed`: a base image's digest moved since the previous release, and the
//! first step it regressed.

use crate::analysis::diagnose::{Evidence, chain_time, first_regressed};
use crate::model::StepKind;
use crate::report::{Diagnosis, DiagnosisKind, Report, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let current = evidence.current;
    let baseline = evidence.baseline?;
    let base = |r: &Report| -> Vec<(String, String)> {
        r.build
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::From)
            .filter_map(|s| {
                let (name, digest) = s.instruction.trim_start_matches("FROM ").split_once('@')?;
                Some((
                    name.trim().to_string(),
                    digest.split_whitespace().next()?.to_string(),
                ))
            })
            .collect()
    };
    let before = base(baseline);
    let moved: Vec<String> = base(current)
        .into_iter()
        .filter_map(|(name, digest)| {
            let old = before.iter().find(|(n, _)| *n == name)?;
            (old.1 != digest).then(|| format!("{name} ({} → {})", short(&old.1), short(&digest)))
        })
        .collect();
    if moved.is_empty() {
        return None;
    }
    let step = first_regressed(current)?;
    Some(Diagnosis {
        kind: DiagnosisKind::BaseImageChanged,
        severity: Severity::Notice,
        message: format!(
            "The base image moved since the previous release: {}. Every step on top of it was rebuilt, starting with `{}`.",
            moved.join(", "),
            step.name
        ),
        fix: "Expected after a base image update. To control when it happens, pin the base image by digest (`FROM image:tag@sha256:...`) and update it deliberately.".into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(chain_time(current, step)),
    })
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    // Char-wise: the digest comes from the record and need not be ASCII.
    match hex.char_indices().nth(12) {
        Some((cut, _)) => &hex[..cut],
        None => hex,
    }
}
