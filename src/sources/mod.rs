//! Where image layers come from when the build records do not carry them: OCI registries
//! (the distribution API) and the local Docker Engine.

pub mod engine;
pub mod registry;
