//! Every recorded scenario's second release compared with its first: transitions, findings
//! (and no false alarms), Dockerfile lines, and pull cost equal to the manifests' own numbers.

mod support;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use cachehit::analysis::{analyze, analyze_against};
use cachehit::model::Transition;
use cachehit::readers::{ReadOptions, read_inputs};
use cachehit::report::Report;
use serde_json::Value;

fn dir(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit-v0.24")
        .join(scenario)
}

fn inputs(scenario: &str, release: &str) -> Vec<PathBuf> {
    let d = dir(scenario);
    let mut files = vec![
        d.join(format!("{release}.rawjson")),
        d.join(format!("{release}.history-record.json")),
    ];
    if d.join(format!("{release}.metadata.json")).exists() {
        files.push(d.join(format!("{release}.metadata.json")));
    }
    if let Ok(entries) = std::fs::read_dir(d.join(format!("{release}.image"))) {
        for e in entries {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("attestation-")
            {
                files.push(p);
            }
        }
    }
    files
}

fn report(scenario: &str, release: &str) -> Report {
    analyze(read_inputs(&inputs(scenario, release), &ReadOptions::default()).unwrap())
}

fn compared(scenario: &str) -> Report {
    let baseline = report(scenario, "v1");
    let mut current = report(scenario, "v2");
    analyze_against(&mut current, &baseline, "v1.json");
    current
}

fn kinds(report: &Report) -> BTreeSet<String> {
    report
        .diagnoses
        .iter()
        .map(|d| d.kind.to_string())
        .collect()
}

#[test]
fn findings_fire_where_the_evidence_is_and_nowhere_else() {
    let expected: &[(&str, &[&str])] = &[
        ("p1-copy-before-deps", &["cache-busting-order"]),
        ("p2-deps-first", &[]),
        ("p3-multistage-mode-min", &["cache-mode-min"]),
        ("p4-multistage-mode-max", &[]),
        (
            "p5-cache-scope-per-tag",
            &["cache-not-delivered", "layer-not-reproducible"],
        ),
        ("p6-failed-build", &["build-failed"]),
        ("p7-multiplatform", &[]),
    ];
    for (scenario, want) in expected {
        let report = compared(scenario);
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(kinds(&report), want, "{scenario}: {:#?}", report.diagnoses);
        for d in &report.diagnoses {
            assert!(!d.fix.is_empty(), "{scenario}: {} has a fix", d.kind);
            assert!(d.step.is_some(), "{scenario}: {} names a step", d.kind);
            let line = d
                .dockerfile_line
                .unwrap_or_else(|| panic!("{scenario}: {} has a line", d.kind));
            let dockerfile = std::fs::read_to_string(dir(scenario).join("Dockerfile")).unwrap();
            let text = dockerfile.lines().nth(line as usize - 1).unwrap();
            let step = d.step.as_deref().unwrap();
            let instruction = step.split("] ").nth(1).unwrap();
            assert!(
                text.trim() == instruction.trim()
                    || text.contains(instruction.split_whitespace().next().unwrap()),
                "{scenario}: line {line} `{text}` is not `{instruction}`"
            );
        }
    }
}

#[test]
fn the_evidence_is_named() {
    let p1 = compared("p1-copy-before-deps");
    let busting = &p1.diagnoses[0];
    assert_eq!(busting.step.as_deref(), Some("[3/5] COPY . ."));
    assert_eq!(busting.dockerfile_line, Some(3));
    assert!(
        busting
            .message
            .contains("[4/5] RUN echo \"installing requirements\"")
    );
    assert!(busting.fix.contains("COPY requirements.txt"));
    assert!(busting.wasted_ms.unwrap() > 0);

    let p3 = compared("p3-multistage-mode-min");
    assert!(p3.diagnoses[0].message.contains("`builder`"));
    assert!(p3.diagnoses[0].fix.contains("mode=max"));

    let p5 = compared("p5-cache-scope-per-tag");
    let not_delivered = &p5.diagnoses[0];
    assert!(
        not_delivered.message.contains(":cache-refs-tags-v2"),
        "{}",
        not_delivered.message
    );
    assert!(not_delivered.message.contains("not found"));
    assert!(
        not_delivered.message.contains("this release's tag `v2`"),
        "{}",
        not_delivered.message
    );
    assert!(not_delivered.fix.contains(":buildcache"));

    let p6 = compared("p6-failed-build");
    assert_eq!(p6.diagnoses[0].dockerfile_line, Some(6));
    assert!(
        p6.diagnoses[0]
            .message
            .contains("compile error: broken build")
    );
}

#[test]
fn transitions_against_the_first_release() {
    // The first releases were cold builds: whatever v2 took from cache improved.
    let p2 = compared("p2-deps-first");
    let c = p2.comparison.as_ref().unwrap();
    assert_eq!(
        (
            c.steps_improved,
            c.steps_regressed,
            c.steps_new,
            c.steps_removed
        ),
        (3, 0, 0, 0)
    );
    assert_eq!(c.hit_ratio_change_points, Some(60.0));
    // Regressions show when the roles are reversed: v2 as the baseline of v1.
    let baseline = report("p2-deps-first", "v2");
    let mut older = report("p2-deps-first", "v1");
    analyze_against(&mut older, &baseline, "v2.json");
    let regressed: Vec<&str> = older
        .build
        .steps
        .iter()
        .filter(|s| s.transition == Some(Transition::Regressed))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(regressed.len(), 3, "{regressed:?}");
    assert!(regressed.iter().any(|n| n.starts_with("[4/6] RUN")));
    assert_eq!(
        older.comparison.unwrap().hit_ratio_change_points,
        Some(-60.0)
    );
}

/// Layers (digest, size) of the image manifest for a platform, read straight from the files.
fn manifest_layers(scenario: &str, release: &str, arch: &str) -> Vec<(String, u64)> {
    let d = dir(scenario).join(format!("{release}.image"));
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let short = &digest["sha256:".len().."sha256:".len() + 12];
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(format!("manifest-{short}.json"))).unwrap(),
    )
    .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pull_cost_equals_the_layers_the_new_manifest_adds() {
    for (scenario, platforms) in [
        ("p1-copy-before-deps", vec![("amd64", "linux/amd64")]),
        ("p2-deps-first", vec![("amd64", "linux/amd64")]),
        ("p5-cache-scope-per-tag", vec![("amd64", "linux/amd64")]),
        (
            "p7-multiplatform",
            vec![("amd64", "linux/amd64"), ("386", "linux/386")],
        ),
    ] {
        let report = compared(scenario);
        let cost = &report.comparison.as_ref().unwrap().pull_cost;
        // A user pulls one platform: the summary's figure is the largest platform's.
        let mut largest = 0;
        for (arch, platform) in platforms {
            let before: HashSet<String> = manifest_layers(scenario, "v1", arch)
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            let after = manifest_layers(scenario, "v2", arch);
            let expected: u64 = after
                .iter()
                .filter(|(d, _)| !before.contains(d))
                .map(|(_, s)| s)
                .sum();
            let image: u64 = after.iter().map(|(_, s)| s).sum();
            let got = cost
                .iter()
                .find(|c| c.platform.as_deref() == Some(platform))
                .unwrap_or_else(|| panic!("{scenario}: no pull cost for {platform}: {cost:?}"));
            assert_eq!(got.new_layer_bytes, expected, "{scenario} {platform}");
            assert_eq!(got.image_bytes, Some(image), "{scenario} {platform}");
            largest = largest.max(expected);
        }
        assert_eq!(report.summary.pull_bytes, Some(largest), "{scenario}");
    }
}

#[test]
fn layer_sizes_per_step_match_the_manifest() {
    let report = report("p2-deps-first", "v2");
    let layers: HashSet<(String, u64)> = manifest_layers("p2-deps-first", "v2", "amd64")
        .into_iter()
        .collect();
    let install = report
        .build
        .steps
        .iter()
        .find(|s| s.name.starts_with("[4/6] RUN"))
        .unwrap();
    assert_eq!(install.layers.len(), 1);
    let layer = &install.layers[0];
    assert!(layers.contains(&(layer.digest.clone(), layer.size.unwrap())));
    assert_eq!(install.layer_bytes, Some(6_293_572));
}

#[test]
fn compare_command_gates_and_bad_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    let write_report = |scenario: &str, release: &str| -> PathBuf {
        let path = tmp.path().join(format!("{scenario}-{release}.json"));
        let out = support::cachehit()
            .args(["report", "--format", "json", "--output"])
            .arg(&path)
            .args(inputs(scenario, release))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    };
    let v1 = write_report("p2-deps-first", "v1");
    let v2 = write_report("p2-deps-first", "v2");
    // v1 compared against v2: three steps regressed; the gate trips with a one-line reason.
    let out = support::cachehit()
        .args([
            "compare",
            "--format",
            "json",
            "--fail-on",
            "hit-ratio-drop>10,regression:install",
        ])
        .arg(&v2)
        .arg(&v1)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cachehit: gate failed: hit ratio dropped 60.0 points (limit 10)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("regressed from cached to rebuilt"),
        "{stderr}"
    );
    let compared: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(compared["comparison"]["steps_regressed"], 3);
    // The other direction passes the same gate.
    let out = support::cachehit()
        .args([
            "compare",
            "--format",
            "json",
            "--fail-on",
            "hit-ratio-drop>10",
        ])
        .arg(&v1)
        .arg(&v2)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A baseline from a newer cachehit: clear message, the report is still produced.
    let mut future: Value = serde_json::from_str(&std::fs::read_to_string(&v1).unwrap()).unwrap();
    future["schema_version"] = Value::from(99);
    let future_path = tmp.path().join("future.json");
    std::fs::write(&future_path, future.to_string()).unwrap();
    let out = support::cachehit()
        .args(["report", "--format", "json", "--baseline"])
        .arg(&future_path)
        .args(inputs("p2-deps-first", "v2"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99") && stderr.contains("future.json"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["comparison"].is_null());
    assert_eq!(report["summary"]["steps_cached"], 3);
    // A baseline of another image: compared, with a warning naming both.
    let other = write_report("p1-copy-before-deps", "v1");
    let out = support::cachehit()
        .args(["report", "--format", "json", "--baseline"])
        .arg(&other)
        .args(inputs("p2-deps-first", "v2"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another image") && stderr.contains("p1-copy-before-deps"),
        "{stderr}"
    );
    // A bad gate is a usage error naming it.
    let out = support::cachehit()
        .args(["report", "--fail-on", "hit-ratio>5"])
        .args(inputs("p2-deps-first", "v2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hit-ratio>5"));
}

#[test]
fn changed_build_argument_and_base_image_are_named() {
    use cachehit::model::{StepKind, StepStatus};
    let with_arg = |mut r: Report, value: &str| {
        r.build
            .build
            .build_args
            .insert("PY_VERSION".into(), value.into());
        r
    };
    let baseline = with_arg(report("p2-deps-first", "v2"), "3.12");
    // The same build with another PY_VERSION: the steps before the install came from the
    // cache, the install (a RUN, which has every declared ARG in its environment) and what
    // follows were rebuilt.
    let mut current = with_arg(report("p2-deps-first", "v2"), "3.13");
    for step in &mut current.build.steps {
        step.vertex_digest = None;
        if step.index >= Some(4) {
            step.status = StepStatus::Rebuilt;
        }
    }
    analyze_against(&mut current, &baseline, "v1.json");
    let args = current
        .diagnoses
        .iter()
        .find(|d| d.kind == "build-arg-changed")
        .expect("build-arg-changed");
    assert!(
        args.message
            .starts_with("PY_VERSION changed 3.12 → 3.13 since the previous release"),
        "{}",
        args.message
    );
    assert!(args.step.as_deref().unwrap().starts_with("[4/6] RUN echo"));
    assert_eq!(args.dockerfile_line, Some(4));

    // The base image moved and nothing came from the cache.
    let mut current = report("p2-deps-first", "v2");
    for step in &mut current.build.steps {
        step.vertex_digest = None;
        if step.kind == StepKind::From {
            step.instruction = step.instruction.replace("@sha256:1e426e", "@sha256:9f9f9f");
        } else {
            step.status = StepStatus::Rebuilt;
        }
    }
    analyze_against(&mut current, &report("p2-deps-first", "v2"), "v1.json");
    let base_moved = current
        .diagnoses
        .iter()
        .find(|d| d.kind == "base-image-changed")
        .expect("base-image-changed");
    assert!(
        base_moved.message.contains("1e426e33437f → 9f9f9f"),
        "{}",
        base_moved.message
    );
    assert_eq!(base_moved.step.as_deref(), Some("[2/6] WORKDIR /app"));
    assert!(!kinds(&current).contains("cache-not-delivered"));
    // Unchanged arguments and base: neither fires.
    let mut same = report("p2-deps-first", "v1");
    analyze_against(&mut same, &report("p2-deps-first", "v2"), "v2.json");
    assert!(
        !kinds(&same).contains("build-arg-changed") && !kinds(&same).contains("base-image-changed")
    );
}

#[test]
fn an_unreachable_registry_leaves_the_rest_of_the_report() {
    let out = support::cachehit()
        .args([
            "report",
            "--format",
            "json",
            "--image",
            "127.0.0.1:9/acme/app:v2",
        ])
        .args(inputs("p2-deps-first", "v2"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("127.0.0.1:9") && stderr.contains("image layers unavailable"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["steps_cached"], 3);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"] == "127.0.0.1:9/acme/app:v2")
    );
}

#[test]
fn records_of_another_build_are_left_out_not_mixed_in() {
    // This release's progress log with the previous release's metadata and provenance.
    let mut files = vec![dir("p1-copy-before-deps").join("v2.rawjson")];
    files.extend(
        inputs("p1-copy-before-deps", "v1")
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".rawjson")),
    );
    let report = analyze(read_inputs(&files, &ReadOptions::default()).unwrap());
    let left_out: Vec<&str> = report
        .build
        .problems
        .iter()
        .filter(|p| p.message.contains("describes another build"))
        .map(|p| p.source.as_str())
        .collect();
    assert_eq!(left_out.len(), 3, "{:#?}", report.build.problems);
    assert!(left_out.iter().all(|s| s.contains("v1.")), "{left_out:?}");
    // Named after the build its steps come from, and no layers of the other one.
    assert_eq!(
        report.build.build.image_names,
        ["localhost:5000/p1-copy-before-deps-1795379789:v2"]
    );
    assert!(report.build.images.is_empty());
    assert!(report.build.steps.iter().all(|s| s.layers.is_empty()));
}

#[test]
fn a_failed_build_from_a_plain_log_compares_like_its_rawjson() {
    let baseline = report("p6-failed-build", "v1");
    let d = dir("p6-failed-build");
    let mut from_plain =
        analyze(read_inputs(&[d.join("v2.plain.log")], &ReadOptions::default()).unwrap());
    analyze_against(&mut from_plain, &baseline, "v1.json");
    let from_rawjson = compared("p6-failed-build");

    let comparison = from_plain.comparison.as_ref().unwrap();
    assert!(
        comparison.removed_steps.is_empty(),
        "{:?}",
        comparison.removed_steps
    );
    assert_eq!(
        from_plain.summary.steps_total,
        from_rawjson.summary.steps_total
    );
    assert_eq!(from_plain.summary.steps_not_run, 1);
    for report in [&from_plain, &from_rawjson] {
        // Failed or never run: nothing to say about the cache, so no transition.
        for step in report.build.steps.iter().filter(|s| {
            matches!(
                s.status,
                cachehit::model::StepStatus::NotRun | cachehit::model::StepStatus::Canceled
            )
        }) {
            assert_eq!(step.transition, None, "{}", step.name);
            assert!(step.baseline_status.is_some(), "{}", step.name);
        }
        let failed = report
            .diagnoses
            .iter()
            .find(|d| d.kind == "build-failed")
            .unwrap();
        assert!(
            failed.message.contains("1 later step(s) never ran"),
            "{}",
            failed.message
        );
    }
}

#[test]
fn base_images_are_base_with_their_whole_layer_chain_and_first_line() {
    let report = report("p3-multistage-mode-min", "v1");
    let froms: Vec<_> = report
        .build
        .steps
        .iter()
        .filter(|s| s.kind == cachehit::model::StepKind::From)
        .collect();
    assert!(!froms.is_empty());
    for from in &froms {
        assert_eq!(
            from.status,
            cachehit::model::StepStatus::Base,
            "{}",
            from.name
        );
    }
    // Both stages start `FROM` the same image: one vertex, named after the first stage.
    let builder = froms
        .iter()
        .find(|s| s.stage.as_deref() == Some("builder"))
        .unwrap();
    assert_eq!(builder.dockerfile_line, Some(1));
    // Its layers are the base image's, the first layers of the built image.
    let image = &report.build.images[0];
    assert!(!builder.layers.is_empty());
    assert_eq!(builder.layers[..], image.layers[..builder.layers.len()]);
    // Stages in Dockerfile order: the builder stage first.
    assert_eq!(report.build.steps[0].stage.as_deref(), Some("builder"));
}

#[test]
fn a_cold_build_is_not_blamed_on_the_copy_order() {
    let cold = report("p1-copy-before-deps", "v1");
    assert!(
        !kinds(&cold).contains("cache-busting-order"),
        "{:#?}",
        cold.diagnoses
    );
}

#[test]
fn compare_refuses_a_baseline_it_cannot_use_and_gates_say_what_they_lack() {
    let d = dir("p2-deps-first");
    let current = d.join("v2.rawjson");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = support::cachehit().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A progress log passed where a report belongs: said so, and `compare` stops (exit 2)
    // rather than letting `regression` pass unchecked.
    let (code, stderr) = run(&[
        "compare".as_ref(),
        "--fail-on".as_ref(),
        "regression".as_ref(),
        d.join("v1.rawjson").as_os_str(),
        current.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("v1.rawjson")
            && stderr.contains("is a rawjson record, not a cachehit JSON report"),
        "{stderr}"
    );
    // `report` without a usable baseline still reports, and says which gates it could not check.
    let tmp = tempfile::tempdir().unwrap();
    let text_version = tmp.path().join("text-version.json");
    std::fs::write(&text_version, r#"{"schema_version": "1", "steps": []}"#).unwrap();
    let (code, stderr) = run(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--fail-on".as_ref(),
        "regression,hit-ratio-drop>5,rebuilt>100".as_ref(),
        "--baseline".as_ref(),
        text_version.as_os_str(),
        current.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(r#"schema_version is "1", not a whole number"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("--fail-on regression not evaluated: there is no baseline"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--fail-on hit-ratio-drop>5 not evaluated"),
        "{stderr}"
    );
    assert!(!stderr.contains("rebuilt>100 not evaluated"), "{stderr}");
}
