//! GitHub side: runner contract, REST calls, the sticky comment, baseline search.

pub mod api;
pub mod baseline;
pub mod comment;
pub mod runner;
