//! The `.dockerbuild` status-log layer: length-prefixed protobuf `StatusResponse` messages.
#![no_main]

use cachehit::{
    analysis,
    readers::{dockerbuild::decode_status_log, solve_status::StatusAccumulator},
    render,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut accumulator = StatusAccumulator::new();
    // A damaged log still leaves what was decoded before the damage.
    let _ = decode_status_log(data, &mut accumulator);
    let report = analysis::analyze(accumulator.finish());
    render::markdown::render(&report);
});
