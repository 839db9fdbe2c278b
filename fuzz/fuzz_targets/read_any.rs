//! Any file, as `cachehit report` gets it: format detection from content, every reader
//! (`.dockerbuild` bundles included), analysis and all three renderings.
#![no_main]

use std::io::Write;

use cachehit::{
    analysis,
    readers::{ReadOptions, read_inputs},
    render,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(data).expect("write temporary file");
    let path = file.path().to_path_buf();
    if let Ok(build) = read_inputs(&[path], &ReadOptions::default()) {
        let report = analysis::analyze(build);
        render::json::render(&report);
        render::markdown::render_within(&report, 4_000);
        render::table::render(&report, None);
    }
});
