//! `layer-not-reproducible`: steps rebuilt with the same definition as the previous release
//! produced other layers than it did, so every user who has the previous image downloads them
//! again.

use std::collections::HashSet;

use crate::analysis::diagnose::{Evidence, count};
use crate::model::Step;
use crate::report::{Diagnosis, DiagnosisKind, Severity, format_bytes};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let baseline = evidence.baseline?;
    // Only layers the image ships matter to its users (not an intermediate stage's).
    let shipped: Option<HashSet<&str>> = (!report.build.images.is_empty()).then(|| {
        report
            .build
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| l.digest.as_str())
            .collect()
    });
    let mut steps: Vec<(&Step, u64)> = Vec::new();
    let mut counted: HashSet<&str> = HashSet::new();
    let mut total = 0u64;
    for (i, step) in report.build.steps.iter().enumerate() {
        if !step.status.did_work() || step.same_definition != Some(true) || step.layers.is_empty() {
            continue;
        }
        let Some((j, _)) = evidence.matches.get(i).copied().flatten() else {
            continue;
        };
        let before = &baseline.build.steps[j];
        if before.layers.is_empty() {
            continue;
        }
        let old: HashSet<&str> = before.layers.iter().map(|l| l.digest.as_str()).collect();
        let mut bytes = 0u64;
        for layer in &step.layers {
            let digest = layer.digest.as_str();
            if old.contains(digest) || shipped.as_ref().is_some_and(|s| !s.contains(digest)) {
                continue;
            }
            let size = layer.size.unwrap_or(0);
            bytes = bytes.saturating_add(size);
            if counted.insert(digest) {
                total = total.saturating_add(size);
            }
        }
        if bytes > 0 {
            steps.push((step, bytes));
        }
    }
    let (first, first_bytes) = *steps.first()?;
    Some(Diagnosis {
        kind: DiagnosisKind::LayerNotReproducible,
        severity: Severity::Notice,
        message: format!(
            "{} rebuilt with the same definition as the previous release produced different layers ({}), starting with `{}` ({}): every user who has the previous image downloads them again although nothing in them changed.",
            count(steps.len(), "step"),
            format_bytes(total),
            first.name,
            format_bytes(first_bytes)
        ),
        fix: "Make the layers reproducible, so a rebuilt step gives the same layer: set `SOURCE_DATE_EPOCH` (e.g. `--build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`) and export with `rewrite-timestamp=true` (`--output type=image,...,rewrite-timestamp=true`), and write no timestamps or random data in `RUN` steps.".into(),
        step: Some(first.name.clone()),
        dockerfile_line: first.dockerfile_line,
        wasted_ms: None,
    })
}
