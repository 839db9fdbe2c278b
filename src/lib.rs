//! cachehit: per-step BuildKit cache reports for CI.
//!
//! Layout, in the order data flows:
//! - `readers`: one module per input format, each turning build records into the one
//!   normalized `model::Build` (formats: `readers::InputFormat`);
//! - `sources`: facts the records lack, from registries and the local Docker Engine;
//! - `analysis`: the build (plus those facts and a baseline) to a `report::Report`, with no
//!   I/O; each finding is a module of `analysis::diagnose`;
//! - `pipeline`: the one sequence of stages every front-end runs, from settings to outcome;
//! - `render`: a report to text (table, markdown, JSON), within every size budget;
//! - `sinks`: where the text goes (terminal, files, GitHub's job summary, outputs, log,
//!   comment);
//! - `github`: GitHub's protocols (the runner contract, the REST client, the baseline search);
//! - `cli`: the front-ends, which only translate their settings in and their sinks out.

pub mod analysis;
pub mod cli;
pub mod github;
pub mod model;
pub mod pipeline;
pub mod readers;
pub mod render;
pub mod report;
pub mod sinks;
pub mod sources;
