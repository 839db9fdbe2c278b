//! A damaged or foreign baseline report compared against a real one: loading must refuse it
//! cleanly or the comparison must complete.
#![no_main]

use std::io::Write;
use std::sync::LazyLock;

use cachehit::{
    analysis,
    readers::{ReadOptions, read_inputs},
    render,
    report::{Report, load},
};
use libfuzzer_sys::fuzz_target;

static CURRENT: LazyLock<Report> = LazyLock::new(|| {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/buildkit-v0.24/p1-copy-before-deps/v2.rawjson"
    );
    let build = read_inputs(&[fixture.into()], &ReadOptions::default()).expect("fixture reads");
    analysis::analyze(build)
});

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(data).expect("write temporary file");
    if let Ok(baseline) = load::from_path(file.path()) {
        let mut report = CURRENT.clone();
        analysis::analyze_against(&mut report, &baseline, "fuzz.json");
        render::markdown::render(&report);
    }
});
