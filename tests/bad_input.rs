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
