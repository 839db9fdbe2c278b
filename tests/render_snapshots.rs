//! Rendered reports of real records, reviewed and kept as snapshots: any change in wording or
//! layout shows up in review.

use std::path::{Path, PathBuf};

use cachehit::analysis::{analyze, analyze_against};
use cachehit::readers::{ReadOptions, read_inputs};
use cachehit::render;

fn inputs(scenario: &str, release: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildkit-v0.24")
        .join(scenario);
    let mut files = vec![d.join(format!("{release}.rawjson"))];
    if let Ok(entries) = std::fs::read_dir(d.join(format!("{release}.image"))) {
        let mut attestations: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("attestation-")
            })
            .collect();
        attestations.sort();
        files.extend(attestations);
    }
    files
}

fn compared(scenario: &str) -> cachehit::report::Report {
    let baseline = analyze(read_inputs(&inputs(scenario, "v1"), &ReadOptions::default()).unwrap());
    let mut report =
        analyze(read_inputs(&inputs(scenario, "v2"), &ReadOptions::default()).unwrap());
    analyze_against(&mut report, &baseline, "v1.json");
    report
}

#[test]
fn copy_before_deps_as_markdown() {
    insta::assert_snapshot!(render::markdown::render(&compared("p1-copy-before-deps")));
}

#[test]
fn failed_build_as_a_table() {
    insta::assert_snapshot!(render::table::render(
        &compared("p6-failed-build"),
        Some(140)
    ));
}
