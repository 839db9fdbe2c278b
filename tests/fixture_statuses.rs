//! Every recorded scenario, both releases: cachehit's per-step statuses equal BuildKit's own
//! cache flags, from the rawjson stream and from the plain log of the same build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cachehit::model::{Build, StepKind, StepStatus};
use cachehit::readers::{ReadOptions, read_inputs};

const SCENARIOS: &[&str] = &[
    "p1-copy-before-deps",
    "p2-deps-first",
    "p3-multistage-mode-min",
    "p4-multistage-mode-max",
    "p5-cache-scope-per-tag",
    "p6-failed-build",
    "p7-multiplatform",
];

fn fixture(scenario: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit-v0.24")
        .join(scenario)
        .join(file)
}

fn read(paths: &[PathBuf]) -> Build {
    read_inputs(paths, &ReadOptions::default()).expect("fixture readable")
}

/// BuildKit's own verdict per step name, computed straight from the stream: cached if any
/// update says so, failed if any update carries an error.
fn buildkit_flags(rawjson: &Path) -> BTreeMap<String, &'static str> {
    let text = std::fs::read_to_string(rawjson).unwrap();
    let mut flags: BTreeMap<String, (bool, bool, bool)> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        for v in value["vertexes"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap().to_string();
            let entry = flags.entry(name).or_default();
            entry.0 |= v["cached"].as_bool().unwrap_or(false);
            entry.1 |= v["error"].is_string();
            entry.2 |= v["started"].is_string();
        }
    }
    flags
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with('[') && !name.contains("internal]") && !name.starts_with("[auth]")
        })
        .map(|(name, (cached, error, started))| {
            let verdict = if cached {
                "cached"
            } else if error {
                "failed"
            } else if !started {
                "not-run"
            } else if name.contains("] FROM ") {
                "base"
            } else {
                "rebuilt"
            };
            (name, verdict)
        })
        .collect()
}

fn statuses(build: &Build) -> BTreeMap<String, &'static str> {
    build
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.status.as_str()))
        .collect()
}

#[test]
fn rawjson_statuses_equal_buildkit_flags_in_every_scenario() {
    for scenario in SCENARIOS {
        for release in ["v1", "v2"] {
            let path = fixture(scenario, &format!("{release}.rawjson"));
            let build = read(std::slice::from_ref(&path));
            let expected = buildkit_flags(&path);
            assert!(
                !expected.is_empty(),
                "{scenario} {release}: no steps in fixture"
            );
            assert_eq!(statuses(&build), expected, "{scenario} {release}");
        }
    }
}

#[test]
fn plain_log_statuses_equal_rawjson_wherever_the_log_states_them() {
    for scenario in SCENARIOS {
        for release in ["v1", "v2"] {
            let plain = read(&[fixture(scenario, &format!("{release}.plain.log"))]);
            let raw = read(&[fixture(scenario, &format!("{release}.rawjson"))]);
            let raw_status = statuses(&raw);
            // A plain log never prints steps that did not start: after a failure, cachehit
            // puts a not-run step at each such position (its instruction unknown).
            let at = |s: &cachehit::model::Step| (s.platform.clone(), s.stage.clone(), s.index);
            for step in &raw.steps {
                if !plain.steps.iter().any(|p| p.name == step.name) {
                    assert_eq!(
                        step.status,
                        StepStatus::NotRun,
                        "{scenario} {release}: {}",
                        step.name
                    );
                    let placeholder = plain
                        .steps
                        .iter()
                        .find(|p| at(p) == at(step))
                        .unwrap_or_else(|| panic!("{scenario} {release}: no {}", step.name));
                    assert_eq!(placeholder.status, StepStatus::NotRun);
                    assert!(placeholder.instruction.is_empty());
                    assert!(
                        step.name
                            .starts_with(&placeholder.name[..placeholder.name.len() - 1])
                    );
                }
            }
            assert_eq!(plain.steps.len(), raw.steps.len(), "{scenario} {release}");
            for step in plain.steps.iter().filter(|s| !s.instruction.is_empty()) {
                let want = raw_status.get(&step.name).copied();
                assert_eq!(
                    Some(step.status.as_str()),
                    want,
                    "{scenario} {release}: {}",
                    step.name
                );
            }
        }
    }
}

#[test]
fn remote_cache_hits_in_plain_logs_are_marked_inferred() {
    let build = read(&[fixture("p2-deps-first", "v2.plain.log")]);
    let install = build
        .steps
        .iter()
        .find(|s| s.name.starts_with("[4/6] RUN"))
        .unwrap();
    assert_eq!(install.status, StepStatus::Cached);
    assert!(install.status_inferred);
    assert!(install.remote_cache_bytes.unwrap() > 6_000_000);
    let stated = build
        .steps
        .iter()
        .find(|s| s.name == "[3/6] COPY requirements.txt .")
        .unwrap();
    assert_eq!(stated.status, StepStatus::Cached);
    assert!(!stated.status_inferred);
}

#[test]
fn scenario_outcomes() {
    let status_of = |build: &Build, prefix: &str| {
        build
            .steps
            .iter()
            .find(|s| s.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no step {prefix}"))
            .status
    };
    // p1: COPY . . precedes the install, so the install reruns.
    let p1 = read(&[fixture("p1-copy-before-deps", "v2.rawjson")]);
    assert_eq!(status_of(&p1, "[3/5] COPY . ."), StepStatus::Rebuilt);
    assert_eq!(status_of(&p1, "[4/5] RUN"), StepStatus::Rebuilt);
    // p2: the install comes from the registry cache.
    let p2 = read(&[fixture("p2-deps-first", "v2.rawjson")]);
    assert_eq!(status_of(&p2, "[4/6] RUN"), StepStatus::Cached);
    assert_eq!(status_of(&p2, "[5/6] COPY . ."), StepStatus::Rebuilt);
    // p5: the import found nothing; nothing is cached.
    let p5 = read(&[fixture("p5-cache-scope-per-tag", "v2.rawjson")]);
    assert_eq!(p5.cache_imports.len(), 1);
    let import = &p5.cache_imports[0];
    assert!(import.reference.ends_with(":cache-refs-tags-v2"));
    assert!(import.error.as_deref().unwrap().contains("not found"));
    assert!(p5.steps.iter().all(|s| s.status != StepStatus::Cached));
    // p6: the RUN fails, the step after it never starts, the build error is kept.
    let p6 = read(&[fixture("p6-failed-build", "v2.rawjson")]);
    assert_eq!(status_of(&p6, "[6/7] RUN"), StepStatus::Failed);
    assert_eq!(status_of(&p6, "[7/7] RUN"), StepStatus::NotRun);
    assert_eq!(p6.build.status, cachehit::model::BuildStatus::Failed);
    let failed = p6
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(failed.dockerfile_line, Some(6));
    assert!(
        failed
            .log_tail
            .iter()
            .any(|l| l.contains("compile error: broken build"))
    );
    // p7: both platforms, every step once per platform.
    let p7 = read(&[fixture("p7-multiplatform", "v2.rawjson")]);
    for platform in ["linux/amd64", "linux/386"] {
        let n = p7
            .steps
            .iter()
            .filter(|s| s.platform.as_deref() == Some(platform) && s.kind != StepKind::From)
            .count();
        assert_eq!(n, 5, "{platform}");
    }
}

#[test]
fn provenance_gives_dockerfile_lines_and_layers() {
    for scenario in SCENARIOS {
        let dir = fixture(scenario, "v2.image");
        if !dir.exists() {
            continue; // a failed build pushes no image
        }
        let mut inputs = vec![fixture(scenario, "v2.rawjson")];
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("attestation-")
            {
                inputs.push(path);
            }
        }
        if inputs.len() == 1 {
            continue;
        }
        let build = read(&inputs);
        let dockerfile = std::fs::read_to_string(fixture(scenario, "Dockerfile")).unwrap();
        let lines: Vec<&str> = dockerfile.lines().collect();
        let mut checked = 0;
        for step in build
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::NotRun)
        {
            let Some(line) = step.dockerfile_line else {
                continue;
            };
            let text = lines[line as usize - 1];
            let keyword = step.kind.as_str();
            assert!(
                text.trim_start().to_uppercase().starts_with(keyword),
                "{scenario}: {} -> line {line}: {text}",
                step.name
            );
            checked += 1;
        }
        assert!(checked >= 4, "{scenario}: only {checked} steps had lines");
    }
}
