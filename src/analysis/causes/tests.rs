use super::*;
use crate::analysis::matching::match_steps;
use crate::model::{CacheImport, InputFile, OutcomeStatus};

fn step(name: &str, digest: &str, inputs: &[&str], status: StepStatus, kind: StepKind) -> Step {
    let (label, instruction) = name.trim_start_matches('[').split_once("] ").unwrap();
    let (index, total) = label.split_once('/').unwrap();
    Step {
        name: name.into(),
        instruction: instruction.into(),
        index: index.parse().ok(),
        total: total.parse().ok(),
        vertex_digest: Some(digest.into()),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        status,
        kind,
        ..Step::default()
    }
}

fn explain_alone(build: &mut Build) {
    explain(build, None, Knowledge::default());
}

fn explain_against(build: &mut Build, previous: &Build, knowledge: Knowledge<'_>) {
    let matches = match_steps(&build.steps, &previous.steps);
    explain(
        build,
        Some(Previous {
            build: previous,
            matches: &matches,
        }),
        knowledge,
    );
}

fn reasons(build: &Build) -> Vec<Option<RebuildReason>> {
    build
        .steps
        .iter()
        .map(|s| s.rebuild_reason.clone())
        .collect()
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
    explain_alone(&mut build);
    assert_eq!(
        reasons(&build),
        [
            None,
            Some(RebuildReason::ContextChanged { files: vec![] }),
            Some(RebuildReason::UpstreamRebuilt {
                upstream: "[3/4] COPY . .".into()
            })
        ]
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
    explain_alone(&mut build);
    judge_cache_imports(&mut build);
    assert_eq!(
        build.steps[0].rebuild_reason,
        Some(RebuildReason::CacheImportEmpty)
    );
    assert_eq!(build.cache_imports[0].delivered, Some(false));
    // The ref does not exist and nothing says it was ever exported to: its first build.
    build.cache_imports[0].error = Some("r:cache: not found".into());
    explain_alone(&mut build);
    assert_eq!(
        build.steps[0].rebuild_reason,
        Some(RebuildReason::FirstCacheBuild {
            cache: "r:cache".into()
        })
    );
}

#[test]
fn plain_logs_fall_back_on_stage_order() {
    let mut build = Build {
        steps: vec![
            step(
                "[2/4] WORKDIR /app",
                "p0",
                &[],
                StepStatus::Cached,
                StepKind::Workdir,
            ),
            step(
                "[3/4] COPY . .",
                "p1",
                &[],
                StepStatus::Rebuilt,
                StepKind::Copy,
            ),
            step("[4/4] RUN x", "p2", &[], StepStatus::Rebuilt, StepKind::Run),
        ],
        ..Build::default()
    };
    for s in &mut build.steps {
        s.vertex_digest = None;
    }
    explain_alone(&mut build);
    assert_eq!(
        reasons(&build),
        [
            None,
            Some(RebuildReason::ContextChanged { files: vec![] }),
            Some(RebuildReason::UpstreamRebuilt {
                upstream: "[3/4] COPY . .".into()
            })
        ]
    );
}

/// A three-step build: a base, a `RUN` on it and a `COPY` of the context after it.
fn release(run: &str, digest_suffix: &str, statuses: [StepStatus; 2]) -> Build {
    Build {
        steps: vec![
            step(
                "[1/3] FROM base:1@sha256:aaaa",
                "from",
                &[],
                StepStatus::Base,
                StepKind::From,
            ),
            step(
                &format!("[2/3] {run}"),
                &format!("run{digest_suffix}"),
                &["from"],
                statuses[0],
                StepKind::Run,
            ),
            Step {
                reads_context: true,
                ..step(
                    "[3/3] COPY . .",
                    &format!("copy{digest_suffix}"),
                    &[
                        &format!("run{digest_suffix}"),
                        &format!("ctx{digest_suffix}"),
                    ],
                    statuses[1],
                    StepKind::Copy,
                )
            },
        ],
        inputs: vec![InputFile {
            path: "meta.json".into(),
            format: crate::model::InputFormat::Metadata,
        }],
        ..Build::default()
    }
}

#[test]
fn each_change_is_named_against_a_cold_previous_release() {
    use StepStatus::{Cached, Rebuilt};
    // The previous release was built cold: every step rebuilt.
    let mut previous = release(r#"RUN echo "tool 1.0""#, "-1", [Rebuilt, Rebuilt]);
    previous
        .build
        .build_args
        .insert("TOOL_VERSION".into(), "1.0".into());

    // The argument changed: the value shows in the instruction.
    let mut now = release(r#"RUN echo "tool 1.1""#, "-2", [Rebuilt, Rebuilt]);
    now.build
        .build_args
        .insert("TOOL_VERSION".into(), "1.1".into());
    explain_against(&mut now, &previous, Knowledge::default());
    assert_eq!(
        now.steps[1].rebuild_reason,
        Some(RebuildReason::BuildArgChanged {
            args: vec![ArgChange {
                name: "TOOL_VERSION".into(),
                before: Some("1.0".into()),
                after: Some("1.1".into()),
            }],
            evidence: ArgEvidence::Instruction,
        })
    );
    assert_eq!(now.steps[1].same_definition, Some(false));
    assert!(matches!(
        now.steps[2].rebuild_reason,
        Some(RebuildReason::UpstreamRebuilt { .. })
    ));

    // The same argument, but the command does not show it: in its environment (inferred).
    let mut previous_env = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    previous_env.build.build_args = previous.build.build_args.clone();
    let mut env = release("RUN make", "-2", [Rebuilt, Rebuilt]);
    env.build.build_args = now.build.build_args.clone();
    explain_against(&mut env, &previous_env, Knowledge::default());
    assert!(matches!(
        &env.steps[1].rebuild_reason,
        Some(RebuildReason::BuildArgChanged { evidence: ArgEvidence::Environment, args }) if args[0].name == "TOOL_VERSION"
    ));

    // An edited command.
    let mut edited = release("RUN make all", "-2", [Rebuilt, Rebuilt]);
    edited.build.build_args = previous_env.build.build_args.clone();
    explain_against(&mut edited, &previous_env, Knowledge::default());
    assert_eq!(
        edited.steps[1].rebuild_reason,
        Some(RebuildReason::InstructionChanged {
            before: "RUN make".into(),
            after: "RUN make all".into()
        })
    );

    // The base image moved.
    let mut moved = release("RUN make", "-2", [Rebuilt, Rebuilt]);
    moved.build.build_args = previous_env.build.build_args.clone();
    moved.steps[0].name = "[1/3] FROM base:1@sha256:bbbb".into();
    moved.steps[0].instruction = "FROM base:1@sha256:bbbb".into();
    moved.steps[0].vertex_digest = Some("from-2".into());
    for s in &mut moved.steps[1..] {
        for input in &mut s.inputs {
            if input == "from" {
                *input = "from-2".into();
            }
        }
    }
    explain_against(&mut moved, &previous_env, Knowledge::default());
    assert_eq!(
        moved.steps[1].rebuild_reason,
        Some(RebuildReason::BaseImageChanged {
            before: "base:1@sha256:aaaa".into(),
            after: "base:1@sha256:bbbb".into()
        })
    );

    // Nothing changed, the install came from the cache, the copy was rebuilt: the context.
    let mut context = release("RUN make", "-2", [Cached, Rebuilt]);
    context.build.build_args = previous_env.build.build_args.clone();
    explain_against(&mut context, &previous_env, Knowledge::default());
    assert_eq!(
        context.steps[2].rebuild_reason,
        Some(RebuildReason::ContextChanged { files: vec![] })
    );
    assert_eq!(context.steps[1].same_definition, Some(true));
    assert_eq!(
        context.steps[2].same_definition, None,
        "the changed files are not known"
    );
}

struct Changed(Vec<String>);

impl ContextFiles for Changed {
    fn changed_files_read_by(&self, step: &Step) -> Option<Vec<String>> {
        Some(if step.instruction.starts_with("COPY . ") {
            self.0.clone()
        } else {
            Vec::new()
        })
    }
}

#[test]
fn context_files_decide_between_a_change_and_an_undelivered_cache() {
    use StepStatus::{Cached, Rebuilt};
    let previous = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    let mut now = release("RUN make", "-2", [Cached, Rebuilt]);
    let readme = Changed(vec!["README.md".into()]);
    explain_against(
        &mut now,
        &previous,
        Knowledge {
            context: Some(&readme),
            ..Knowledge::default()
        },
    );
    assert_eq!(
        now.steps[2].rebuild_reason,
        Some(RebuildReason::ContextChanged {
            files: vec!["README.md".into()]
        })
    );
    // None of its files changed: defined as before, so the cache did not deliver it.
    let nothing = Changed(Vec::new());
    explain_against(
        &mut now,
        &previous,
        Knowledge {
            context: Some(&nothing),
            ..Knowledge::default()
        },
    );
    assert_eq!(
        now.steps[2].rebuild_reason,
        Some(RebuildReason::CacheNotDelivered)
    );
    assert_eq!(now.steps[2].same_definition, Some(true));
}

#[test]
fn a_new_step_and_equal_digests() {
    use StepStatus::Rebuilt;
    let previous = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    let mut now = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    now.steps.push(step(
        "[4/4] RUN test",
        "test",
        &["copy-1"],
        Rebuilt,
        StepKind::Run,
    ));
    for s in &mut now.steps {
        s.total = Some(4);
    }
    explain_against(&mut now, &previous, Knowledge::default());
    // Same digests: the same definition, so the cache (absent here) did not deliver.
    assert_eq!(now.steps[1].same_definition, Some(true));
    assert_eq!(
        now.steps[1].rebuild_reason,
        Some(RebuildReason::CacheNotDelivered)
    );
    assert_eq!(now.steps[3].same_definition, Some(false));
}

#[test]
fn the_dockerfile_names_arguments_the_records_do_not_carry() {
    use StepStatus::{Cached, Rebuilt};
    let dockerfile =
        "FROM base:1\nARG TOOL_VERSION=1.0\nRUN echo \"tool ${TOOL_VERSION}\"\nCOPY . .\n";
    let written = crate::analysis::dockerfile::written_steps(dockerfile);
    // Plain logs: no build arguments in the records.
    let plain = |mut b: Build| {
        b.inputs.clear();
        b
    };
    let previous = plain(release(r#"RUN echo "tool 1.0""#, "-1", [Rebuilt, Rebuilt]));
    let mut now = plain(release(r#"RUN echo "tool 1.1""#, "-2", [Rebuilt, Rebuilt]));
    let knowledge = Knowledge {
        dockerfile: Some(&written),
        ..Knowledge::default()
    };
    explain_against(&mut now, &previous, knowledge);
    assert!(matches!(
        &now.steps[1].rebuild_reason,
        Some(RebuildReason::BuildArgChanged { evidence: ArgEvidence::Instruction, args })
            if args[0] == ArgChange { name: "TOOL_VERSION".into(), before: Some("1.0".into()), after: Some("1.1".into()) }
    ));
    // A RUN declared before the ARG does not depend on it.
    let dockerfile = "FROM base:1\nRUN make\nARG TOOL_VERSION\nCOPY . .\n";
    let written = crate::analysis::dockerfile::written_steps(dockerfile);
    let mut previous = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    previous
        .build
        .build_args
        .insert("TOOL_VERSION".into(), "1".into());
    let mut now = release("RUN make", "-2", [Rebuilt, Cached]);
    now.build
        .build_args
        .insert("TOOL_VERSION".into(), "2".into());
    explain_against(
        &mut now,
        &previous,
        Knowledge {
            dockerfile: Some(&written),
            ..Knowledge::default()
        },
    );
    assert_eq!(
        now.steps[1].rebuild_reason,
        Some(RebuildReason::CacheNotDelivered)
    );
}

#[test]
fn an_inferred_argument_does_not_hide_a_cache_that_gave_nothing() {
    use StepStatus::Rebuilt;
    let mut previous = release("RUN make", "-1", [Rebuilt, Rebuilt]);
    previous.build.build_args.insert("V".into(), "1".into());
    let mut now = release("RUN make", "-2", [Rebuilt, Rebuilt]);
    now.build.build_args.insert("V".into(), "2".into());
    now.cache_imports.push(CacheImport {
        reference: "registry.example/app:buildcache".into(),
        status: OutcomeStatus::Failed,
        error: Some("unexpected status: 401 Unauthorized".into()),
        ..CacheImport::default()
    });
    explain_against(&mut now, &previous, Knowledge::default());
    // Whether `RUN make` has V in its environment is not known without the Dockerfile, and
    // the failed import explains the rebuild: not blamed on V, nor called identical.
    assert_eq!(
        now.steps[1].rebuild_reason,
        Some(RebuildReason::CacheImportEmpty)
    );
    assert_eq!(now.steps[1].same_definition, None);
    // With the Dockerfile saying `ARG V` comes before it, it depends on V.
    let written =
        crate::analysis::dockerfile::written_steps("FROM base:1\nARG V\nRUN make\nCOPY . .\n");
    explain_against(
        &mut now,
        &previous,
        Knowledge {
            dockerfile: Some(&written),
            ..Knowledge::default()
        },
    );
    assert!(matches!(
        now.steps[1].rebuild_reason,
        Some(RebuildReason::BuildArgChanged {
            evidence: ArgEvidence::Environment,
            ..
        })
    ));
}
