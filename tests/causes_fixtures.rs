//! Why each step was rebuilt, on real records of two releases per scenario: every rebuilt step
//! of every second release carries the cause a person reading both Dockerfiles and both build
//! contexts would give; causes are named against a previous release built cold too; and no
//! first release gets a finding of severity warning or error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cachehit::analysis::causes::{self, ContextFiles, Knowledge, Previous};
use cachehit::analysis::matching::match_steps;
use cachehit::analysis::{analyze, analyze_against, diagnose};
use cachehit::model::{ArgChange, ArgEvidence, RebuildReason, Step, StepKind};
use cachehit::readers::{ReadOptions, read_inputs};
use cachehit::report::{Report, Severity};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// BuildKit v0.24 (buildctl) records: the rawjson progress, the history record, the metadata
/// file and the provenance attestations.
fn buildkit(scenario: &str, release: &str) -> Report {
    let dir = fixtures().join("buildkit-v0.24").join(scenario);
    let mut files = vec![
        dir.join(format!("{release}.rawjson")),
        dir.join(format!("{release}.history-record.json")),
    ];
    let metadata = dir.join(format!("{release}.metadata.json"));
    if metadata.exists() {
        files.push(metadata);
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(format!("{release}.image"))) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("attestation-")
            {
                files.push(path);
            }
        }
    }
    analyze(read_inputs(&files, &ReadOptions::default()).unwrap())
}

/// buildx v0.36 records: the `.dockerbuild` bundle the action exports (`FILE` names it).
fn buildx(scenario: &str, file: &str) -> Report {
    let path = fixtures().join("buildx-v0.36").join(scenario).join(file);
    analyze(read_inputs(&[path], &ReadOptions::default()).unwrap())
}

fn compared(mut current: Report, previous: &Report) -> Report {
    analyze_against(&mut current, previous, "previous.json");
    current
}

/// The cause a step should carry.
#[derive(Debug)]
enum Want {
    /// Files it copies from the build context changed.
    Context,
    /// Rebuilt because the named step (a prefix of its name) was.
    Upstream(&'static str),
    /// Defined as in the previous release; the cache did not deliver it.
    NotDelivered,
    /// A build argument it depends on changed.
    Arg(&'static str, &'static str, &'static str, ArgEvidence),
}

fn check(label: &str, report: &Report, want: &[(&str, Want)]) {
    let rebuilt: Vec<&Step> = report
        .build
        .steps
        .iter()
        .filter(|s| s.status.did_work())
        .collect();
    let mut expected: BTreeSet<&str> = BTreeSet::new();
    for (prefix, cause) in want {
        let step = rebuilt
            .iter()
            .find(|s| s.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("{label}: no rebuilt step {prefix}"));
        expected.insert(step.name.as_str());
        let got = step.rebuild_reason.as_ref();
        let ok = match (cause, got) {
            (Want::Context, Some(RebuildReason::ContextChanged { .. })) => true,
            (Want::Upstream(up), Some(RebuildReason::UpstreamRebuilt { upstream })) => {
                upstream.starts_with(up)
            }
            (Want::NotDelivered, Some(RebuildReason::CacheNotDelivered)) => true,
            (
                Want::Arg(name, before, after, how),
                Some(RebuildReason::BuildArgChanged { args, evidence }),
            ) => {
                evidence == how
                    && args
                        == &[ArgChange {
                            name: name.to_string(),
                            before: Some(before.to_string()),
                            after: Some(after.to_string()),
                        }]
            }
            _ => false,
        };
        assert!(ok, "{label}: {}: want {cause:?}, got {got:?}", step.name);
    }
    // Every rebuilt step is accounted for: one primary cause each.
    for step in &rebuilt {
        assert!(step.rebuild_reason.is_some(), "{label}: {}", step.name);
        assert!(
            expected.contains(step.name.as_str()),
            "{label}: {} ({:?}) has no expectation",
            step.name,
            step.rebuild_reason
        );
    }
}

/// What a person gives as the cause of each step rebuilt in the second release, from the two
/// Dockerfiles (unchanged in every scenario) and the two contexts (`diff -r context/v1
/// context/v2`).
fn expectations(scenario: &str) -> Vec<(&'static str, Want)> {
    use Want::*;
    match scenario {
        // app.py changed; `COPY . .` copies it, and the install after it reruns.
        "p1-copy-before-deps" => vec![
            ("[3/5] COPY . .", Context),
            ("[4/5] RUN", Upstream("[3/5] COPY . .")),
            ("[5/5] RUN", Upstream("[4/5] RUN")),
        ],
        // app.py changed; the lockfile and install before `COPY . .` stay cached.
        "p2-deps-first" => vec![
            ("[5/6] COPY . .", Context),
            ("[6/6] RUN", Upstream("[5/6] COPY . .")),
        ],
        // main.go changed, but the builder stage was exported with mode=min: its unchanged
        // first step is not in the cache, and the whole stage follows.
        "p3-multistage-mode-min" => vec![
            ("[builder 2/6] WORKDIR /src", NotDelivered),
            ("[builder 3/6]", Upstream("[builder 2/6]")),
            ("[builder 4/6]", Upstream("[builder 3/6]")),
            ("[builder 5/6]", Upstream("[builder 4/6]")),
            ("[builder 6/6]", Upstream("[builder 5/6]")),
            ("[runtime 3/3]", Upstream("[builder 6/6]")),
        ],
        // main.go changed: `COPY main.go .` and what builds on it.
        "p4-multistage-mode-max" => vec![
            ("[builder 5/6] COPY main.go .", Context),
            ("[builder 6/6]", Upstream("[builder 5/6]")),
            ("[runtime 3/3]", Upstream("[builder 6/6]")),
        ],
        // The second release imports a cache ref nobody exported: its unchanged first step is
        // rebuilt, and everything after it.
        "p5-cache-scope-per-tag" => vec![
            ("[2/6] WORKDIR /app", NotDelivered),
            ("[3/6]", Upstream("[2/6]")),
            ("[4/6]", Upstream("[3/6]")),
            ("[5/6]", Upstream("[4/6]")),
            ("[6/6]", Upstream("[5/6]")),
        ],
        // A file `broken` was added: `COPY . .` copies it and the next step fails.
        "p6-failed-build" => vec![
            ("[5/7] COPY . .", Context),
            ("[6/7] RUN", Upstream("[5/7] COPY . .")),
        ],
        "p7-multiplatform" => vec![
            ("[linux/amd64 5/6] COPY . .", Context),
            (
                "[linux/amd64 6/6] RUN",
                Upstream("[linux/amd64 5/6] COPY . ."),
            ),
            ("[linux/386 5/6] COPY . .", Context),
            ("[linux/386 6/6] RUN", Upstream("[linux/386 5/6] COPY . .")),
        ],
        // src/ledger.rs changed: `COPY --link src/` (two vertices) and the build after it.
        "d1-copy-link" => vec![
            ("[stage-0 7/8] COPY --link src/", Context),
            (
                "[stage-0 7/8] LINK COPY",
                Upstream("[stage-0 7/8] COPY --link src/"),
            ),
            ("[stage-0 8/8] RUN", Upstream("[stage-0 7/8] LINK COPY")),
        ],
        // Same context, PROTOC_VERSION 25.1 → 26.1: `ARG PROTOC_VERSION` (line 3) puts it in
        // the environment of every later RUN, so the first RUN after it reruns although it
        // does not mention it, and everything after it follows.
        "d3-build-arg" => vec![
            (
                "[5/8] RUN mkdir -p /build/out",
                Arg("PROTOC_VERSION", "25.1", "26.1", ArgEvidence::Environment),
            ),
            ("[6/8] RUN", Upstream("[5/8] RUN")),
            ("[7/8] COPY", Upstream("[6/8] RUN")),
            ("[8/8] RUN", Upstream("[7/8] COPY")),
        ],
        other => panic!("no expectations for {other}"),
    }
}

const BUILDKIT: &[&str] = &[
    "p1-copy-before-deps",
    "p2-deps-first",
    "p3-multistage-mode-min",
    "p4-multistage-mode-max",
    "p5-cache-scope-per-tag",
    "p6-failed-build",
    "p7-multiplatform",
];

#[test]
fn every_rebuilt_step_carries_the_cause_a_person_gives() {
    for scenario in BUILDKIT {
        let report = compared(buildkit(scenario, "v2"), &buildkit(scenario, "v1"));
        check(
            &format!("buildkit {scenario}"),
            &report,
            &expectations(scenario),
        );
    }
    for scenario in BUILDKIT.iter().chain(&["d1-copy-link", "d3-build-arg"]) {
        let report = compared(
            buildx(scenario, "v2.dockerbuild"),
            &buildx(scenario, "v1.dockerbuild"),
        );
        check(
            &format!("buildx {scenario}"),
            &report,
            &expectations(scenario),
        );
    }
}

#[test]
fn a_changed_build_argument_is_named_against_a_warm_and_a_cold_previous_release() {
    let now = || buildx("d3-build-arg", "v2.dockerbuild");
    // v1 was served entirely from the cache v0 exported; v0 was built cold.
    let warm = compared(now(), &buildx("d3-build-arg", "v1.dockerbuild"));
    let cold_previous = {
        let dir = fixtures().join("buildx-v0.36/d3-build-arg");
        analyze(
            read_inputs(
                &[dir.join("v0.rawjson"), dir.join("v0.metadata.json")],
                &ReadOptions::default(),
            )
            .unwrap(),
        )
    };
    assert_eq!(cold_previous.summary.steps_cached, 0, "v0 is a cold build");
    let cold = compared(now(), &cold_previous);
    for (label, report) in [("warm", &warm), ("cold", &cold)] {
        check(label, report, &expectations("d3-build-arg"));
        let finding = report
            .diagnoses
            .iter()
            .find(|d| d.kind == "build-arg-changed")
            .unwrap_or_else(|| panic!("{label}: {:#?}", report.diagnoses));
        assert!(
            finding.message.starts_with(
                "PROTOC_VERSION changed 25.1 → 26.1 since the previous release, which invalidated `[5/8] RUN mkdir -p /build/out && echo \"output dir ready\"` and what follows: 4 steps rebuilt"
            ),
            "{label}: {}",
            finding.message
        );
        assert_eq!(finding.severity, Severity::Notice);
        // Not blamed on the cache: the definition changed.
        assert!(
            !report
                .diagnoses
                .iter()
                .any(|d| d.kind == "cache-not-delivered"),
            "{label}: {:#?}",
            report.diagnoses
        );
        assert_eq!(
            report.build.steps[4].same_definition,
            Some(false),
            "{label}"
        );
    }
}

/// Every first release: nothing to compare with, and nothing that is the user's fault.
#[test]
fn no_first_release_gets_a_warning_or_an_error() {
    let mut first: Vec<(String, Report)> = BUILDKIT
        .iter()
        .map(|s| (format!("buildkit {s}"), buildkit(s, "v1")))
        .collect();
    for scenario in BUILDKIT.iter().chain(&["d1-copy-link", "d3-build-arg"]) {
        first.push((
            format!("buildx {scenario}"),
            buildx(scenario, "v1.dockerbuild"),
        ));
    }
    for target in ["api", "worker"] {
        first.push((
            format!("buildx d2 {target}"),
            buildx("d2-bake-two-targets", &format!("v1.{target}.dockerbuild")),
        ));
    }
    let worker = first.last().unwrap().1.clone();
    let plain = |path: &str| {
        analyze(read_inputs(&[fixtures().join(path)], &ReadOptions::default()).unwrap())
    };
    let d3 = fixtures().join("buildx-v0.36/d3-build-arg");
    first.push((
        "buildx d3 v0".into(),
        analyze(
            read_inputs(
                &[d3.join("v0.rawjson"), d3.join("v0.metadata.json")],
                &ReadOptions::default(),
            )
            .unwrap(),
        ),
    ));
    for path in [
        "engine-20.10/deps-first/v1.plain.log",
        "engine-20.10/multistage-failure/v1.plain.log",
        "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
        "public-samples/buildx-history/dockerbuild-SNHBPN/docker~test-docker-action~SNHBPN+3.dockerbuild",
    ] {
        first.push((path.into(), plain(path)));
    }
    let mut first_builds = 0;
    for (label, report) in &first {
        for d in &report.diagnoses {
            // A build that failed says so, first release or not.
            if d.kind == "build-failed" {
                assert_eq!(
                    report.build.build.status,
                    cachehit::model::BuildStatus::Failed
                );
                continue;
            }
            assert_eq!(d.severity, Severity::Notice, "{label}: {d:#?}");
        }
        first_builds += report
            .diagnoses
            .iter()
            .filter(|d| d.kind == "first-cache-build")
            .count();
    }
    // The bake's first release imports cache refs that do not exist yet: said, as a notice.
    assert_eq!(first_builds, 2);
    let notice = &worker.diagnoses[0];
    assert!(
        notice.message.starts_with(
            "Nothing was ever exported to the cache `127.0.0.1:5066/d2-bake-two-targets/worker:buildcache`"
        ),
        "{}",
        notice.message
    );
    assert_eq!(notice.step.as_deref(), Some("[base 2/5] WORKDIR /srv"));
}

/// The build-context files that changed between the two releases' contexts, and the ones each
/// `COPY` reads (its sources: a file, a directory, or `.`).
struct ContextDiff(Vec<String>);

impl ContextDiff {
    fn between(v1: &Path, v2: &Path) -> ContextDiff {
        fn files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(root, &path, out);
                } else {
                    out.insert(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
        files(v1, v1, &mut a);
        files(v2, v2, &mut b);
        let changed = a
            .union(&b)
            .filter(|f| std::fs::read(v1.join(f)).ok() != std::fs::read(v2.join(f)).ok())
            .cloned()
            .collect();
        ContextDiff(changed)
    }
}

impl ContextFiles for ContextDiff {
    fn changed_files_read_by(&self, step: &Step) -> Option<Vec<String>> {
        let words: Vec<&str> = step
            .instruction
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.starts_with("--"))
            .collect();
        let sources = &words[..words.len().saturating_sub(1)];
        Some(
            self.0
                .iter()
                .filter(|f| {
                    sources.iter().any(|s| {
                        let s = s.trim_start_matches("./");
                        s.is_empty() || s == "." || f.as_str() == s || f.starts_with(s)
                    })
                })
                .cloned()
                .collect(),
        )
    }
}

#[test]
fn with_the_changed_files_known_every_unchanged_step_counts_as_identical() {
    let dir = fixtures().join("buildkit-v0.24/p5-cache-scope-per-tag/context");
    let diff = ContextDiff::between(&dir.join("v1"), &dir.join("v2"));
    assert_eq!(diff.0, ["app.py"]);
    let previous = buildkit("p5-cache-scope-per-tag", "v1");
    let mut report = buildkit("p5-cache-scope-per-tag", "v2");
    let matches = match_steps(&report.build.steps, &previous.build.steps);
    causes::explain(
        &mut report.build,
        Some(Previous {
            build: &previous.build,
            matches: &matches,
        }),
        Knowledge {
            context: Some(&diff),
            ..Knowledge::default()
        },
    );
    let same: Vec<(&str, Option<bool>)> = report
        .build
        .steps
        .iter()
        .filter(|s| s.kind != StepKind::From)
        .map(|s| (s.name.as_str(), s.same_definition))
        .collect();
    // WORKDIR, the lockfile copy and the install are as before; `COPY . .` copies app.py.
    assert_eq!(
        same.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(true), Some(true), Some(true), Some(false), Some(false)],
        "{same:#?}"
    );
    let findings = diagnose::diagnose(&report, Some(&previous));
    let not_delivered = findings
        .iter()
        .find(|d| d.kind == "cache-not-delivered")
        .unwrap();
    assert!(
        not_delivered.message.starts_with(
            "The cache did not deliver: 3 steps defined exactly as in the previous release (same instruction, build arguments, inputs and build-context files) were rebuilt, starting with `[2/6] WORKDIR /app`;"
        ),
        "{}",
        not_delivered.message
    );
    // The install's 6 MB layer is new though nothing in it changed: users download it again.
    let layers = findings
        .iter()
        .find(|d| d.kind == "layer-not-reproducible")
        .unwrap();
    assert!(
        layers
            .message
            .starts_with("3 steps rebuilt with the same definition as the previous release produced different layers (6.3 MB)"),
        "{}",
        layers.message
    );
    assert!(
        layers.fix.contains("SOURCE_DATE_EPOCH") && layers.fix.contains("rewrite-timestamp=true")
    );
}

#[test]
fn the_cache_costs_more_than_it_saves_on_a_quick_build() {
    // p7's second release: 6 steps from the cache, whose layers took longer to pull than the
    // steps took to build in the first release.
    let report = compared(
        buildx("p7-multiplatform", "v2.dockerbuild"),
        &buildx("p7-multiplatform", "v1.dockerbuild"),
    );
    let s = &report.summary;
    let (import, export, saved) = (
        s.cache_import_ms.unwrap(),
        s.cache_export_ms.unwrap(),
        s.cache_saved_ms.unwrap(),
    );
    // Saved: what the cached steps took when the first release built them.
    let previous = buildx("p7-multiplatform", "v1.dockerbuild");
    let cached: Vec<&Step> = report
        .build
        .steps
        .iter()
        .filter(|s| s.status == cachehit::model::StepStatus::Cached)
        .collect();
    assert_eq!(cached.len(), 6);
    let built_before: u64 = cached
        .iter()
        .map(|c| {
            previous
                .build
                .steps
                .iter()
                .find(|p| p.name == c.name)
                .and_then(|p| p.duration_ms)
                .unwrap()
        })
        .sum();
    assert_eq!(saved, built_before);
    assert!(
        import + export > saved + 1_000,
        "{import} + {export} vs {saved}"
    );
    let finding = report
        .diagnoses
        .iter()
        .find(|d| d.kind == "cache-costs-more")
        .unwrap();
    assert_eq!(finding.wasted_ms, Some(import + export - saved));
    assert_eq!(finding.severity, Severity::Notice);
    // Without the previous release, what the hits saved is not known: no finding.
    let alone = buildx("p7-multiplatform", "v2.dockerbuild");
    assert_eq!(alone.summary.cache_saved_ms, None);
    assert!(!alone.diagnoses.iter().any(|d| d.kind == "cache-costs-more"));
}

#[test]
fn a_refused_cache_import_with_every_step_served_is_a_warning_alone() {
    // The Docker Engine's record of a warm build whose --cache-from nothing answers.
    let log = fixtures().join("engine-20.10/cache-import-refused/v2.plain.log");
    let report = analyze(read_inputs(&[log], &ReadOptions::default()).unwrap());
    assert_eq!(report.summary.steps_rebuilt, 0);
    let kinds: Vec<String> = report
        .diagnoses
        .iter()
        .map(|d| d.kind.to_string())
        .collect();
    assert_eq!(kinds, ["cache-import-failed"]);
    let found = &report.diagnoses[0];
    assert_eq!(found.severity, Severity::Warning);
    assert!(
        found.message.starts_with(
            "The cache import from `127.0.0.1:9/none:cache` failed: failed to do request: Head"
        ) && found.message.contains("connection refused"),
        "{}",
        found.message
    );
}
