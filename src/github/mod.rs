//! GitHub protocol: the runner contract (`runner`), the REST client (`api`) and its errors
//! (`error`), the sticky comment's marker and lookup (`comment`, `key`), and the baseline
//! search (`baseline`). What the action writes through them is in `sinks`.

pub mod api;
pub mod baseline;
pub mod comment;
pub mod error;
pub mod key;
pub mod runner;
