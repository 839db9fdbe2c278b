//! Every progress record in tests/fixtures (rawjson streams, `.dockerbuild` bundles, plain
//! logs), read on its own, gives the JSON stored for it under tests/expected-reports/: the
//! build as the readers produce it, which the report is made from (the report adds the
//! analysis: causes, summary, findings).
//!
//! The stored builds pin what the readers produce, so a change in how a record is read (a
//! faster parser, a new framing) cannot change a report unnoticed. They are compared as JSON
//! values: a key the stored build lacks is ignored, so fields added to the model later do not
//! break the comparison; every stored key must still hold the same value.
//!
//! A record that is refused as a whole (a bake stream without a chosen target) has its
//! error stored instead.
//!
//! After an intended change, rewrite them with
//! `CACHEHIT_UPDATE_EXPECTED=1 cargo test --test fixture_reports` and review the diff.

use std::path::{Path, PathBuf};

use cachehit::readers::{ReadOptions, read_inputs};
use serde_json::Value;

const FIXTURES: &str = "tests/fixtures";
const EXPECTED: &str = "tests/expected-reports";

/// The progress records among the fixtures: what the stream readers read.
fn progress_records() -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(Path::new(FIXTURES), &mut found);
    found.retain(|path| is_progress_record(path));
    found.sort();
    found
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixtures directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            // Build contexts hold the sources a fixture was built from, not records.
            if path.file_name().is_some_and(|n| n != "context") {
                walk(&path, found);
            }
        } else {
            found.push(path);
        }
    }
}

fn is_progress_record(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name.ends_with(".source.txt") || name.ends_with("commands.log") {
        return false;
    }
    name.ends_with(".rawjson")
        || name.ends_with(".dockerbuild")
        || name.ends_with(".plain.log")
        || parent == "buildkit-plain-progress"
        || parent == "buildkit-rawjson"
}

fn expected_path(fixture: &Path) -> PathBuf {
    let relative = fixture.strip_prefix(FIXTURES).expect("under the fixtures");
    let mut path = Path::new(EXPECTED).join(relative).into_os_string();
    path.push(".json");
    PathBuf::from(path)
}

/// The build the readers make of it, or for a record refused as a whole, the error
/// (`{"error": ...}`).
fn reader_output(fixture: &Path) -> Value {
    match read_inputs(&[fixture.to_path_buf()], &ReadOptions::default()) {
        Ok(build) => serde_json::to_value(&build).expect("the build is JSON"),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// The steps in one order, whatever the order the build lists them in: how stages are
/// ordered is decided when inputs are merged, not by the readers.
fn by_name(mut build: Value) -> Value {
    if let Some(steps) = build.get_mut("steps").and_then(Value::as_array_mut) {
        let key = |s: &Value| {
            ["platform", "name", "vertex_digest"]
                .map(|k| s.get(k).and_then(Value::as_str).unwrap_or("").to_string())
        };
        steps.sort_by_key(key);
    }
    build
}

/// Where `actual` differs from `expected`, ignoring keys only `actual` has.
fn differences(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let here = format!("{at}.{key}");
                match a.get(key) {
                    Some(other) => differences(value, other, &here, out),
                    None => out.push(format!("{here}: missing (expected {value})")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!("{at}: {} entries, expected {}", a.len(), e.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                differences(ev, av, &format!("{at}[{i}]"), out);
            }
        }
        _ if expected != actual => out.push(format!("{at}: {actual}, expected {expected}")),
        _ => {}
    }
}

#[test]
fn every_progress_record_reads_as_stored() {
    let update = std::env::var_os("CACHEHIT_UPDATE_EXPECTED").is_some();
    let records = progress_records();
    assert!(
        records.len() >= 38,
        "only {} progress records found under {FIXTURES}",
        records.len()
    );
    let mut failures = Vec::new();
    for fixture in &records {
        let actual = reader_output(fixture);
        let stored = expected_path(fixture);
        if update {
            std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            std::fs::write(&stored, text).unwrap();
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&stored) else {
            failures.push(format!(
                "{}: no stored report at {}",
                fixture.display(),
                stored.display()
            ));
            continue;
        };
        let expected: Value = serde_json::from_str(&text).expect("stored report is JSON");
        let mut diff = Vec::new();
        differences(&by_name(expected), &by_name(actual), "", &mut diff);
        if !diff.is_empty() {
            diff.truncate(10);
            failures.push(format!("{}:\n  {}", fixture.display(), diff.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} builds differ from the stored ones \
         (CACHEHIT_UPDATE_EXPECTED=1 rewrites them):\n{}",
        failures.len(),
        records.len(),
        failures.join("\n")
    );
}

#[test]
fn the_comparison_notices_a_changed_value_and_ignores_an_added_key() {
    let expected = serde_json::json!({"steps": [{"status": "cached"}], "summary": {"n": 1}});
    let added = serde_json::json!({"steps": [{"status": "cached", "new": 1}], "summary": {"n": 1}});
    let changed = serde_json::json!({"steps": [{"status": "rebuilt"}], "summary": {"n": 1}});
    let fewer = serde_json::json!({"steps": [], "summary": {"n": 1}});
    let mut out = Vec::new();
    differences(&expected, &added, "", &mut out);
    assert!(out.is_empty(), "{out:?}");
    differences(&expected, &changed, "", &mut out);
    assert_eq!(out, [".steps[0].status: \"rebuilt\", expected \"cached\""]);
    out.clear();
    differences(&expected, &fewer, "", &mut out);
    assert_eq!(out, [".steps: 0 entries, expected 1"]);
}
