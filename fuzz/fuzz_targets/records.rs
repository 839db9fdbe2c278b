//! JSON records: metadata file (plain and bake), provenance, history record, history inspect.
#![no_main]

use cachehit::{
    analysis,
    readers::{InputFormat, ReadOptions, read_json_value},
    render,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for format in [
        InputFormat::Metadata,
        InputFormat::Provenance,
        InputFormat::History,
        InputFormat::HistoryInspect,
        InputFormat::Report,
    ] {
        if let Ok(fragment) =
            read_json_value(value.clone(), format, &ReadOptions::default(), "fuzz.json")
        {
            let report = analysis::analyze(fragment.build);
            render::markdown::render(&report);
        }
    }
});
