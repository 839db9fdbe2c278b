//! Every reader of reports applies the one schema-version policy with the one message: a
//! report newer than this cachehit reads is refused as `--baseline` (a warning: reported
//! without comparison), by `compare` (an error), by `audit` (skipped) and as an input of
//! `report`; and `--fail-on diagnosis:KIND` accepts only the kinds cachehit finds.

mod support;

use std::path::{Path, PathBuf};

use cachehit::report::{DiagnosisKind, SCHEMA_VERSION};
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit-v0.24")
        .join(rel)
}

/// A real report (p2's first release) re-labelled with the next schema version, its fields
/// in the order cachehit writes them.
fn newer_report(dir: &Path) -> PathBuf {
    let out = support::cachehit()
        .args(["report", "--format", "json"])
        .arg(fixture("p2-deps-first/v1.rawjson"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let current = format!("\"schema_version\": {SCHEMA_VERSION},");
    assert!(text.contains(&current), "{text}");
    let newer = format!("\"schema_version\": {},", SCHEMA_VERSION + 1);
    let path = dir.join("newer.json");
    std::fs::write(&path, text.replacen(&current, &newer, 1)).unwrap();
    path
}

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = support::cachehit().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_newer_report_is_refused_everywhere_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let newer = newer_report(dir.path());
    let current = fixture("p2-deps-first/v2.rawjson");
    let refusal = format!(
        "the report has schema version {}, newer than this cachehit reads ({SCHEMA_VERSION}); upgrade cachehit",
        SCHEMA_VERSION + 1
    );
    let names_it = |stderr: &str| stderr.contains("newer.json") && stderr.contains(&refusal);

    // `report --baseline`: a warning, and the report without comparison.
    let (code, stdout, stderr) = run(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--baseline".as_ref(),
        newer.as_os_str(),
        current.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(names_it(&stderr), "{stderr}");
    let report: Value = serde_json::from_slice(stdout.as_bytes()).unwrap();
    assert!(report["comparison"].is_null());
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["message"].as_str().unwrap().starts_with(&refusal)),
        "{}",
        report["problems"]
    );

    // `compare`: an error, no report.
    let (code, stdout, stderr) = run(&["compare".as_ref(), newer.as_os_str(), current.as_os_str()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert!(names_it(&stderr), "{stderr}");

    // `audit`: skipped with the message; with nothing else readable, exit 2.
    let (code, _, stderr) = run(&["audit".as_ref(), newer.as_os_str()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(names_it(&stderr), "{stderr}");

    // A report as an input of `report`: nothing else to read, so an error naming it.
    let (code, _, stderr) = run(&["report".as_ref(), newer.as_os_str()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(names_it(&stderr), "{stderr}");
}

#[test]
fn a_diagnosis_gate_with_an_unknown_kind_is_a_usage_error_listing_the_kinds() {
    let current = fixture("p5-cache-scope-per-tag/v2.rawjson");
    let (code, stdout, stderr) = run(&[
        "report".as_ref(),
        "--fail-on".as_ref(),
        "diagnosis:cache-not-delivred".as_ref(),
        current.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "no report before the settings are valid");
    assert!(
        stderr.contains(
            "invalid --fail-on condition `diagnosis:cache-not-delivred`: unknown diagnosis kind"
        ),
        "{stderr}"
    );
    for kind in DiagnosisKind::KNOWN {
        assert!(stderr.contains(kind.as_str()), "{kind} listed: {stderr}");
    }
    // The kind spelled right trips on the same build.
    let (code, _, stderr) = run(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--fail-on".as_ref(),
        "diagnosis:cache-not-delivered".as_ref(),
        current.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cachehit: gate failed: cache-not-delivered: "),
        "{stderr}"
    );
}
