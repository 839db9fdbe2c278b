//! GitHub protocol: the runner contract (`runner`), the REST client (`api`) and its errors
//! (`error`), the sticky comment's marker and lookup (`comment`, `key`), the baseline
//! search (`baseline`), and build records uploaded as artifacts (`records`). What the action writes through them is in `sinks`.

pub mod api;
pub mod baseline;
pub mod comment;
pub mod error;
pub mod key;
pub mod records;
pub mod runner;
