//! GitHub side: runner contract, REST calls, baseline search.

pub mod baseline;
