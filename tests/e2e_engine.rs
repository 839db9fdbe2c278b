//! End to end with the real Docker Engine and a real registry: two releases of several
//! Dockerfiles, the second on a pruned builder importing the first's inline cache from the
//! registry, as on a fresh CI runner. cachehit's per-step statuses must equal what BuildKit
//! itself printed, and each scenario must show its expected cache behaviour.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::{
    BASE_IMAGE, Registry, build, cachehit, docker, engine_available, ensure_base_image, write_tree,
};

struct Scenario {
    name: &'static str,
    dockerfile: String,
    v1: Vec<(&'static str, &'static str)>,
    /// Files changed for the second release.
    v2: Vec<(&'static str, &'static str)>,
    v2_fails: bool,
    /// (step name prefix, expected status in the second release).
    expect: Vec<(&'static str, &'static str)>,
}

fn scenarios() -> Vec<Scenario> {
    let app = vec![
        ("requirements.txt", "flask==3.0\n"),
        ("app.py", "print('release 1')\n"),
    ];
    let install = "RUN echo installing && mkdir -p /opt && dd if=/dev/urandom of=/opt/deps.bin bs=1M count=3 2>/dev/null";
    vec![
        Scenario {
            name: "copy-before-deps",
            dockerfile: format!(
                "FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . .\n{install}\nRUN cat app.py > /app/compiled.txt\n"
            ),
            v1: app.clone(),
            v2: vec![("app.py", "print('release 2')\n")],
            v2_fails: false,
            expect: vec![
                ("[2/5] WORKDIR", "cached"),
                ("[3/5] COPY . .", "rebuilt"),
                ("[4/5] RUN echo installing", "rebuilt"),
            ],
        },
        Scenario {
            name: "deps-first",
            dockerfile: format!(
                "FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY requirements.txt .\n{install}\nCOPY . .\nRUN cat app.py > /app/compiled.txt\n"
            ),
            v1: app.clone(),
            v2: vec![("app.py", "print('release 2')\n")],
            v2_fails: false,
            expect: vec![
                ("[3/6] COPY requirements.txt", "cached"),
                ("[4/6] RUN echo installing", "cached"),
                ("[5/6] COPY . .", "rebuilt"),
                ("[6/6] RUN cat", "rebuilt"),
            ],
        },
        Scenario {
            name: "multi-stage",
            dockerfile: format!(
                "FROM {BASE_IMAGE} AS builder\nWORKDIR /src\nCOPY go.mod .\nRUN echo downloading && dd if=/dev/urandom of=/src/modcache.bin bs=1M count=2 2>/dev/null\nCOPY main.go .\nRUN cat main.go go.mod > /src/server\n\nFROM {BASE_IMAGE}\nWORKDIR /srv\nRUN echo runtime-setup > /srv/setup.txt\nCOPY --from=builder /src/server /srv/server\n"
            ),
            v1: vec![
                ("go.mod", "module example\n"),
                ("main.go", "package main // 1\n"),
            ],
            v2: vec![("main.go", "package main // 2\n")],
            v2_fails: false,
            // Inline cache is exported in min mode: only the final stage comes back from cache.
            expect: vec![
                ("[stage-1 2/4] WORKDIR /srv", "cached"),
                ("[stage-1 3/4] RUN echo runtime-setup", "cached"),
                ("[builder 4/6] RUN echo downloading", "rebuilt"),
                ("[builder 6/6] RUN cat", "rebuilt"),
                ("[stage-1 4/4] COPY --from=builder", "rebuilt"),
            ],
        },
        Scenario {
            name: "failing-step",
            dockerfile: format!(
                "FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY requirements.txt .\n{install}\nCOPY . .\nRUN sh -c 'test -f broken && {{ echo \"compile error: broken build\" >&2; exit 2; }}; echo ok > /app/ok'\nRUN echo post-step > /app/post.txt\n"
            ),
            v1: app.clone(),
            v2: vec![("broken", "1\n")],
            v2_fails: true,
            expect: vec![
                ("[4/7] RUN echo installing", "cached"),
                ("[5/7] COPY . .", "rebuilt"),
                ("[6/7] RUN sh -c", "failed"),
            ],
        },
    ]
}

/// What BuildKit printed for each step: `CACHED`, `ERROR`, or `DONE` (base for FROM).
fn stated_statuses(log: &str) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut outcome: BTreeMap<String, String> = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((number, text)) = rest.split_once(' ') else {
            continue;
        };
        if number.parse::<u32>().is_err() {
            continue;
        }
        if !names.contains_key(number) {
            names.insert(number.to_string(), text.to_string());
            continue;
        }
        let name = &names[number];
        let verdict = if text == "CACHED" {
            "cached"
        } else if text.starts_with("ERROR") {
            "failed"
        } else if text.starts_with("DONE") {
            if name.contains("] FROM ") {
                "base"
            } else {
                "rebuilt"
            }
        } else {
            continue;
        };
        outcome.insert(name.clone(), verdict.to_string());
    }
    outcome
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with('[') && !name.contains("internal]") && !name.starts_with("[auth]")
        })
        .collect()
}

fn report(log_path: &Path) -> Value {
    let output = cachehit()
        .args(["report", "--format", "json"])
        .arg(log_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cachehit report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("report is JSON")
}

#[test]
fn two_releases_through_the_engine_and_a_registry() {
    if !engine_available("two_releases_through_the_engine_and_a_registry") {
        return;
    }
    ensure_base_image();
    let registry = Registry::start(None);
    let run_id = std::process::id();
    for scenario in scenarios() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("context");
        write_tree(&context, &scenario.v1);
        write_tree(&context, &[("Dockerfile", scenario.dockerfile.as_str())]);
        let repo = format!("{}/cachehit-e2e-{}-{run_id}", registry.addr, scenario.name);
        let v1_tag = format!("{repo}:v1");
        let v1 = build(
            &context,
            &v1_tag,
            &["--build-arg", "BUILDKIT_INLINE_CACHE=1"],
        );
        assert!(
            v1.success,
            "{}: v1 build failed:\n{}",
            scenario.name, v1.log
        );
        docker(&["push", &v1_tag]);

        // A fresh runner: no local build cache, no local copy of the previous release.
        docker(&["builder", "prune", "-af"]);
        docker(&["rmi", &v1_tag]);

        write_tree(&context, &scenario.v2);
        let v2_tag = format!("{repo}:v2");
        let v2 = build(
            &context,
            &v2_tag,
            &[
                "--build-arg",
                "BUILDKIT_INLINE_CACHE=1",
                "--cache-from",
                &v1_tag,
            ],
        );
        assert_eq!(
            !v2.success, scenario.v2_fails,
            "{}: v2 build outcome:\n{}",
            scenario.name, v2.log
        );
        let log_path = dir.path().join("v2.plain.log");
        std::fs::write(&log_path, &v2.log).unwrap();

        let report = report(&log_path);
        // Steps the log never printed (after a failure) have no instruction: compared below.
        let reported: BTreeMap<String, String> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["instruction"].as_str().is_some_and(|i| !i.is_empty()))
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let stated = stated_statuses(&v2.log);
        assert!(
            stated.len() >= 4,
            "{}: log states too few steps:\n{}",
            scenario.name,
            v2.log
        );
        assert_eq!(
            reported, stated,
            "{}: cachehit vs BuildKit's log",
            scenario.name
        );
        for (prefix, want) in &scenario.expect {
            let got = reported
                .iter()
                .find(|(name, _)| name.starts_with(prefix))
                .map(|(_, status)| status.as_str())
                .unwrap_or_else(|| panic!("{}: no step {prefix}:\n{}", scenario.name, v2.log));
            assert_eq!(got, *want, "{}: {prefix}\n{}", scenario.name, v2.log);
        }
        let imports = report["cache_imports"].as_array().unwrap();
        assert_eq!(imports.len(), 1, "{}", scenario.name);
        assert_eq!(imports[0]["reference"], Value::String(v1_tag.clone()));
        if scenario.v2_fails {
            assert_eq!(report["build"]["status"], "failed");
            let failed = report["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["status"] == "failed")
                .unwrap();
            assert!(
                failed["log_tail"]
                    .to_string()
                    .contains("compile error: broken build")
            );
            assert!(failed["dockerfile_line"].is_null() || failed["dockerfile_line"] == 6);
            // The step after the failure never started: not in the log, but in the report.
            let never_ran: Vec<&Value> = report["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "not-run")
                .collect();
            assert_eq!(never_ran.len(), 1, "{}", scenario.name);
            assert_eq!(never_ran[0]["name"], "[7/7]");
            assert_eq!(report["summary"]["steps_not_run"], 1);
        } else {
            assert_eq!(report["build"]["status"], "completed", "{}", scenario.name);
        }
        let _ = std::process::Command::new(support::DOCKER)
            .args(["rmi", "-f", &v2_tag])
            .output();
    }
}
