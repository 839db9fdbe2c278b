//! BuildKit's `client.SolveStatus`, the unit of every progress stream: rawjson lines, the
//! aggregated `application/vnd.buildkit.solvestatus.v0` JSON, and (decoded from protobuf) the
//! status log inside build-history records and `.dockerbuild` bundles.
//!
//! Readers turn their input into a sequence of `SolveStatus` values and feed them to
//! `StatusAccumulator`, which keeps only per-vertex state (never the whole stream) and
//! produces the normalized `Build`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One status update. Every field is optional on the wire; unknown fields are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SolveStatus {
    #[serde(deserialize_with = "null_as_default")]
    pub vertexes: Vec<Vertex>,
    #[serde(deserialize_with = "null_as_default")]
    pub statuses: Vec<VertexStatus>,
    #[serde(deserialize_with = "null_as_default")]
    pub logs: Vec<VertexLog>,
    #[serde(deserialize_with = "null_as_default")]
    pub warnings: Vec<VertexWarning>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Vertex {
    pub digest: String,
    #[serde(deserialize_with = "null_as_default")]
    pub inputs: Vec<String>,
    pub name: String,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub cached: bool,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct VertexStatus {
    pub id: String,
    pub vertex: String,
    pub name: String,
    pub total: i64,
    pub current: i64,
    pub timestamp: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct VertexLog {
    pub vertex: String,
    pub stream: i64,
    /// Raw bytes (base64 in JSON).
    #[serde(deserialize_with = "base64_bytes")]
    pub data: Vec<u8>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct VertexWarning {
    pub vertex: String,
    pub level: i64,
    /// Raw bytes (base64 in JSON).
    #[serde(deserialize_with = "base64_bytes")]
    pub short: Vec<u8>,
    #[serde(deserialize_with = "base64_list")]
    pub detail: Vec<Vec<u8>>,
    pub url: String,
    pub range: Vec<WarningRange>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WarningRange {
    pub start: WarningPosition,
    pub end: WarningPosition,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WarningPosition {
    pub line: i64,
    pub character: i64,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn decode_base64(s: &str) -> Vec<u8> {
    use base64::Engine;
    // Go's encoding/json writes []byte as standard padded base64; tolerate anything else by
    // keeping the text as-is rather than failing the whole update.
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|_| s.as_bytes().to_vec())
}

fn base64_bytes<'de, D>(d: D) -> Result<Vec<u8>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(d)?
        .map(|s| decode_base64(&s))
        .unwrap_or_default())
}

fn base64_list<'de, D>(d: D) -> Result<Vec<Vec<u8>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<String>>::deserialize(d)?
        .unwrap_or_default()
        .iter()
        .map(|s| decode_base64(s))
        .collect())
}
