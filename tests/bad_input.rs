//! Bad input through the real binary: a clear error naming the file, or a partial report;
//! never a panic, never a lost report.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn report(inputs: &[&Path]) -> Output {
    support::cachehit()
        .args(["report", "--format", "json"])
        .args(inputs)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(o.status.code(), Some(101), "{err}");
}

#[test]
fn unreadable_inputs_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.rawjson", Vec::new(), "the file is empty"),
        ("blank.log", b"\n\n   \n".to_vec(), "the file is empty"),
        (
            "garbage.bin",
            (0u8..=255).cycle().take(4096).collect(),
            "not a build record",
        ),
        ("hello.txt", b"hello world\n".to_vec(), "not a build record"),
        (
            "other.json",
            br#"{"name": "package.json", "version": "1"}"#.to_vec(),
            "not a build record",
        ),
        (
            "truncated-meta.json",
            br#"{"containerimage.digest": "sha256:ab"#.to_vec(),
            "truncated",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = report(&[&path]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report on stdout");
    }
    let missing = dir.path().join("missing.rawjson");
    let out = report(&[&missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.rawjson"));
}

#[test]
fn truncated_log_gives_a_partial_report_with_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(fixture("buildkit-v0.24/p2-deps-first/v2.rawjson")).unwrap();
    let path = dir.path().join("cut.rawjson");
    // Cut in the middle of an object, past the first steps.
    let cut = full.len() * 2 / 3;
    std::fs::write(&path, &full[..cut]).unwrap();
    let out = report(&[&path]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cut off"), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!report["steps"].as_array().unwrap().is_empty());
    assert!(
        report["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cut off")
    );
}

#[test]
fn one_bad_file_among_good_ones_does_not_lose_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("metadata.json");
    std::fs::write(&bad, b"{\"containerimage.digest\": ").unwrap();
    let good = fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson");
    let out = report(&[&good, &bad]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["steps_total"], 4);
    let problem = &report["problems"][0];
    assert_eq!(problem["source"], bad.display().to_string());
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn unknown_fields_failed_builds_and_zero_steps() {
    let dir = tempfile::tempdir().unwrap();
    // Unknown fields anywhere are ignored.
    let odd = dir.path().join("odd.rawjson");
    std::fs::write(
        &odd,
        br#"{"vertexes":[{"digest":"sha256:a","name":"[1/2] RUN x","future":{"x":1},"started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z"}],"newKind":[1]}
"#,
    )
    .unwrap();
    let out = report(&[&odd]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A build with no Dockerfile step at all.
    let zero = dir.path().join("zero.rawjson");
    std::fs::write(
        &zero,
        br#"{"vertexes":[{"digest":"sha256:b","name":"[internal] load build definition from Dockerfile","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z"}]}
"#,
    )
    .unwrap();
    let out = report(&[&zero]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["steps_total"], 0);
    assert!(report["summary"]["cache_hit_ratio"].is_null());
    // The failed build's log and the client's error text after it.
    let failed = report_failed();
    assert_eq!(failed["build"]["status"], "failed");
    assert!(
        failed["build"]["error"]
            .as_str()
            .unwrap()
            .contains("exit code: 2")
    );
    for format in ["table", "markdown"] {
        let out = support::cachehit()
            .args(["report", "--format", format])
            .arg(fixture("buildkit-v0.24/p6-failed-build/v2.plain.log"))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("failed"));
    }
}

fn report_failed() -> serde_json::Value {
    let out = report(&[&fixture("buildkit-v0.24/p6-failed-build/v2.rawjson")]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn absurd_sizes_and_durations_saturate_instead_of_overflowing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("huge.log");
    // Three layers of ~9.2 EB each (a remote-cache hit) and two steps of 1e30 seconds.
    std::fs::write(
        &log,
        "#1 [1/3] RUN fetch\n\
         #1 sha256:aa 9000000000TB / 9000000000TB done\n\
         #1 sha256:bb 9000000000TB / 9000000000TB done\n\
         #1 sha256:cc 9000000000TB / 9000000000TB done\n\
         #1 DONE 0.1s\n\
         #2 [2/3] RUN a\n\
         #2 DONE 1e30s\n\
         #3 [3/3] RUN b\n\
         #3 DONE 1e30s\n",
    )
    .unwrap();
    let out = report(&[&log]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["steps"][0]["remote_cache_bytes"], u64::MAX);
    assert_eq!(report["summary"]["remote_cache_bytes"], u64::MAX);
    assert_eq!(report["summary"]["rebuilt_duration_ms"], u64::MAX);
}

/// A baseline report of `scenario`'s first release, edited by `edit`.
fn edited_baseline(
    dir: &Path,
    scenario: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let v1 = report(&[&fixture(&format!("buildkit-v0.24/{scenario}/v1.rawjson"))]);
    assert!(v1.status.success(), "{}", stderr(&v1));
    let mut baseline: serde_json::Value = serde_json::from_slice(&v1.stdout).unwrap();
    edit(&mut baseline);
    let path = dir.join(format!("{scenario}.baseline.json"));
    std::fs::write(&path, serde_json::to_vec(&baseline).unwrap()).unwrap();
    path
}

fn compare(baseline: &Path, current: &Path) -> Output {
    support::cachehit()
        .args(["compare", "--format", "json"])
        .arg(baseline)
        .arg(current)
        .output()
        .unwrap()
}

#[test]
fn a_baseline_build_time_at_the_end_of_the_range_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = edited_baseline(dir.path(), "p1-copy-before-deps", |b| {
        b["summary"]["duration_ms"] = serde_json::json!(1u64 << 63);
    });
    let out = compare(
        &baseline,
        &fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson"),
    );
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let now = report["summary"]["duration_ms"].as_u64().unwrap();
    let change = i128::from(now) - (1i128 << 63);
    assert_eq!(
        report["comparison"]["duration_change_ms"].as_i64(),
        Some(i64::try_from(change).unwrap())
    );
}

#[test]
fn a_baseline_base_image_digest_that_is_not_ascii_is_shortened_by_characters() {
    let dir = tempfile::tempdir().unwrap();
    // Every step cached before, and the base image moved to a digest with multi-byte
    // characters straddling the 12-byte mark.
    let baseline = edited_baseline(dir.path(), "p5-cache-scope-per-tag", |b| {
        for step in b["steps"].as_array_mut().unwrap() {
            if step["kind"] == "FROM" {
                let name = step["instruction"]
                    .as_str()
                    .unwrap()
                    .split('@')
                    .next()
                    .unwrap();
                step["instruction"] = format!("{name}@sha256:a{}", "é".repeat(14)).into();
            } else {
                step["status"] = "cached".into();
            }
        }
    });
    let out = compare(
        &baseline,
        &fixture("buildkit-v0.24/p5-cache-scope-per-tag/v2.rawjson"),
    );
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let moved = report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "base-image-changed")
        .expect("the base image change is reported");
    let expected = format!("(a{} → ", "é".repeat(11));
    assert!(
        moved["message"].as_str().unwrap().contains(&expected),
        "{moved}"
    );
}
