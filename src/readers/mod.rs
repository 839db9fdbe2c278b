//! Readers: one per input format, all producing the normalized `model::Build`.

pub mod solve_status;
