//! `cache-mode-min`: final-stage steps came from the cache but no step of an intermediate
//! stage did, as a cache exported with `mode=min` (the default) behaves.
//!
//! No record gives the export's mode (build records keep the cache imports only; the
//! metadata file, the provenance and the progress do not carry `--cache-to`'s `mode=`), so
//! this is an inference from what came back from the cache, and says so.

use std::collections::{HashMap, HashSet};

use crate::analysis::diagnose::{first_in_chain_without_cause, total_ms};
use crate::model::{Step, StepKind, StepStatus};
use crate::report::{Diagnosis, DiagnosisKind, Report, Severity};

/// Stages whose results other stages copy (`COPY --from=NAME`, or graph inputs).
pub(super) fn intermediate_stages(report: &Report) -> HashSet<Option<String>> {
    let steps = &report.build.steps;
    let stage_of: HashMap<&str, &Option<String>> = steps
        .iter()
        .filter_map(|s| Some((s.vertex_digest.as_deref()?, &s.stage)))
        .collect();
    let mut stages = HashSet::new();
    for step in steps {
        if let Some(from) = step
            .instruction
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--from="))
        {
            stages.insert(Some(from.to_string()));
        }
        for input in &step.inputs {
            if let Some(stage) = stage_of.get(input.as_str())
                && **stage != step.stage
            {
                stages.insert((*stage).clone());
            }
        }
    }
    stages
}

/// The finding, when the build looks exported with mode=min; its intermediate stages are then
/// explained by it.
pub(super) fn find(report: &Report, intermediate: &HashSet<Option<String>>) -> Option<Diagnosis> {
    let steps = &report.build.steps;
    let known_stages: HashSet<&Option<String>> = steps.iter().map(|s| &s.stage).collect();
    if intermediate.is_empty() || !intermediate.iter().any(|s| known_stages.contains(s)) {
        return None;
    }
    let (inner, last): (Vec<&Step>, Vec<&Step>) = steps
        .iter()
        .filter(|s| s.kind != StepKind::From)
        .partition(|s| intermediate.contains(&s.stage));
    let final_cached = last.iter().any(|s| s.status == StepStatus::Cached);
    let inner_cached = inner.iter().any(|s| s.status == StepStatus::Cached);
    let first = inner.iter().find(|s| first_in_chain_without_cause(s))?;
    if !final_cached || inner_cached {
        return None;
    }
    Some(Diagnosis {
        kind: DiagnosisKind::CacheModeMin,
        severity: Severity::Warning,
        message: format!(
            "Steps of the final stage came from the cache but no step of stage `{}` did: `{}` was rebuilt with nothing changed before it. That is what a cache exported with `mode=min` holds (the default, and the only mode of the inline cache): the final image's layers, not the other stages'. The records do not give the export's mode; this is inferred from what came back from the cache.",
            first.stage.as_deref().unwrap_or("?"),
            first.name
        ),
        fix: "If the cache is exported with `mode=min` (or no `mode`), export every stage's layers: `--cache-to type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max` (or `mode=max` on your gha/local cache).".into(),
        step: Some(first.name.clone()),
        dockerfile_line: first.dockerfile_line,
        wasted_ms: Some(total_ms(inner.iter().filter(|s| s.status.did_work()).copied())),
    })
}
