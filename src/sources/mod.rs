//! Facts the build records do not carry: image layers from OCI registries (the distribution
//! API) and the local Docker Engine, and the build context's Git history.

pub mod engine;
pub mod git;
pub mod registry;
