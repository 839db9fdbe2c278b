//! Plain progress logs (buildx and Docker 20.10), through analysis and rendering.
#![no_main]

use cachehit::{analysis, readers::plain::read_plain, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(build) = read_plain(data, "fuzz.log") {
        let report = analysis::analyze(build);
        render::markdown::render(&report);
        render::table::render(&report, Some(100));
    }
});
