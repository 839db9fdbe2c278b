//! rawjson progress logs, straight into the reader and on through analysis and rendering.
#![no_main]

use cachehit::{analysis, readers::rawjson::read_rawjson, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(build) = read_rawjson(data, "fuzz.rawjson") {
        let report = analysis::analyze(build);
        render::json::render(&report);
        render::markdown::render(&report);
    }
});
