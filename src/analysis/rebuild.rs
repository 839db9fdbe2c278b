//! Why a step was rebuilt: the first rebuilt step of a chain (its own inputs or the build
//! context changed, or no cache could serve it) versus steps rebuilt only because an upstream
//! step was.

use std::collections::HashMap;

use crate::model::{Build, OutcomeStatus, RebuildReason, Step, StepKind, StepStatus};

pub fn explain_rebuilds(build: &mut Build) {
    let by_digest: HashMap<&str, usize> = build
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.vertex_digest.as_deref().map(|d| (d, i)))
        .collect();
    let any_cached = build
        .steps
        .iter()
        .any(|s| s.status == StepStatus::Cached && s.kind != StepKind::From);
    let imports_empty = !build.cache_imports.is_empty()
        && (!any_cached
            || build
                .cache_imports
                .iter()
                .all(|i| i.status == OutcomeStatus::Failed));
    let reasons: Vec<Option<RebuildReason>> = build
        .steps
        .iter()
        .map(|step| {
            if !step.status.did_work() {
                return None;
            }
            let upstream = rebuilt_input(step, &build.steps, &by_digest)
                .or_else(|| rebuilt_predecessor(step, &build.steps));
            Some(match upstream {
                Some(upstream) => RebuildReason::UpstreamRebuilt { upstream },
                None if reads_context(step) => RebuildReason::ContextChanged,
                None if imports_empty => RebuildReason::CacheImportEmpty,
                None => RebuildReason::NoCacheMatch,
            })
        })
        .collect();
    for (step, reason) in build.steps.iter_mut().zip(reasons) {
        step.rebuild_reason = reason;
    }
}

/// The first input step (by the LLB graph) that did work.
fn rebuilt_input(step: &Step, steps: &[Step], by_digest: &HashMap<&str, usize>) -> Option<String> {
    step.inputs
        .iter()
        .filter_map(|d| by_digest.get(d.as_str()))
        .map(|&i| &steps[i])
        .find(|input| input.status.did_work())
        .map(|input| input.name.clone())
}

/// Without a graph (plain logs), the previous step of the same stage is the input.
fn rebuilt_predecessor(step: &Step, steps: &[Step]) -> Option<String> {
    if !step.inputs.is_empty() {
        return None;
    }
    let index = step.index?;
    steps
        .iter()
        .find(|s| {
            s.platform == step.platform
                && s.stage == step.stage
                && s.index == Some(index.saturating_sub(1))
                && s.index != step.index
        })
        .filter(|s| s.status.did_work())
        .map(|s| s.name.clone())
}

fn reads_context(step: &Step) -> bool {
    if step.reads_context {
        return true;
    }
    // Without a graph, a COPY/ADD that names no other stage or image reads the context.
    step.inputs.is_empty()
        && matches!(step.kind, StepKind::Copy | StepKind::Add)
        && !step.instruction.contains("--from")
}

/// Whether each cache import delivered: it succeeded and steps were served from cache.
pub fn judge_cache_imports(build: &mut Build) {
    let served = build
        .steps
        .iter()
        .any(|s| s.status == StepStatus::Cached && s.kind != StepKind::From);
    for import in &mut build.cache_imports {
        import.delivered = match import.status {
            OutcomeStatus::Failed => Some(false),
            OutcomeStatus::Ok => Some(served),
            OutcomeStatus::Unknown => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CacheImport;

    fn step(name: &str, digest: &str, inputs: &[&str], status: StepStatus, kind: StepKind) -> Step {
        Step {
            name: name.into(),
            vertex_digest: Some(digest.into()),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            status,
            kind,
            ..Step::default()
        }
    }

    #[test]
    fn chain_after_context_copy() {
        let mut build = Build {
            steps: vec![
                step(
                    "[2/4] WORKDIR /app",
                    "a",
                    &[],
                    StepStatus::Cached,
                    StepKind::Workdir,
                ),
                Step {
                    reads_context: true,
                    ..step(
                        "[3/4] COPY . .",
                        "b",
                        &["a", "ctx"],
                        StepStatus::Rebuilt,
                        StepKind::Copy,
                    )
                },
                step(
                    "[4/4] RUN install",
                    "c",
                    &["b"],
                    StepStatus::Rebuilt,
                    StepKind::Run,
                ),
            ],
            ..Build::default()
        };
        explain_rebuilds(&mut build);
        assert_eq!(build.steps[0].rebuild_reason, None);
        assert_eq!(
            build.steps[1].rebuild_reason,
            Some(RebuildReason::ContextChanged)
        );
        assert_eq!(
            build.steps[2].rebuild_reason,
            Some(RebuildReason::UpstreamRebuilt {
                upstream: "[3/4] COPY . .".into()
            })
        );
    }

    #[test]
    fn failed_import_and_nothing_cached() {
        let mut build = Build {
            steps: vec![step(
                "[2/3] RUN a",
                "a",
                &["base"],
                StepStatus::Rebuilt,
                StepKind::Run,
            )],
            cache_imports: vec![CacheImport {
                reference: "r:cache".into(),
                status: OutcomeStatus::Failed,
                ..CacheImport::default()
            }],
            ..Build::default()
        };
        explain_rebuilds(&mut build);
        judge_cache_imports(&mut build);
        assert_eq!(
            build.steps[0].rebuild_reason,
            Some(RebuildReason::CacheImportEmpty)
        );
        assert_eq!(build.cache_imports[0].delivered, Some(false));
    }

    #[test]
    fn plain_logs_fall_back_on_stage_order() {
        let mut build = Build {
            steps: vec![
                Step {
                    index: Some(3),
                    ..step(
                        "[3/4] COPY . .",
                        "p1",
                        &[],
                        StepStatus::Rebuilt,
                        StepKind::Copy,
                    )
                },
                Step {
                    index: Some(4),
                    ..step("[4/4] RUN x", "p2", &[], StepStatus::Rebuilt, StepKind::Run)
                },
            ],
            ..Build::default()
        };
        for s in &mut build.steps {
            s.vertex_digest = None;
        }
        explain_rebuilds(&mut build);
        assert_eq!(
            build.steps[0].rebuild_reason,
            Some(RebuildReason::ContextChanged)
        );
        assert!(matches!(
            build.steps[1].rebuild_reason,
            Some(RebuildReason::UpstreamRebuilt { .. })
        ));
    }
}
