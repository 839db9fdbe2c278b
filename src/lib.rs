//! cachehit: per-step BuildKit cache reports for CI.
//!
//! Layout: `readers` turn build records into one `model::Build`; `analysis` works on that
//! model alone (no I/O); `render` turns a `report::Report` into text; `sources` and `github`
//! talk to the outside world; `cli` wires them together.

pub mod analysis;
pub mod cli;
pub mod github;
pub mod model;
pub mod readers;
pub mod render;
pub mod report;
pub mod sources;
