//! JSON build records that describe a build as a whole: buildx metadata files (and
//! build-push-action's `metadata` output), provenance attestations, BuildKit build-history
//! records and `docker buildx history inspect --format json` output; and the failure record a
//! build-history record points to (`externalError`, a protobuf `google.rpc.Status`).
//!
//! Metadata files and provenance are read straight from the file into types that keep only what
//! the report uses, so a large record never becomes a large JSON tree in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, value::MapAccessDeserializer};
use serde_json::{Map, Value};

use crate::model::{
    Build, BuildStatus, BuildWarning, CacheExport, CacheImport, Material, OutcomeStatus, Step,
    StepStatus,
};
use crate::readers::provenance::{self, MaybeString, Provenance, ProvenanceError};
use crate::readers::vertex_name::{VertexClass, classify};
use crate::readers::{Fragment, InputFormat, ReadError, ReadOptions};

/// Metadata and provenance files larger than this are damage, not records (real ones with
/// mode=max provenance of a large multi-platform build come to a few MB).
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

/// What is wrong with a JSON record's shape (the file it came from is added by the caller).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the JSON ends early (truncated?): {0}")]
    Truncated(#[source] serde_json::Error),
    #[error("the {what} is not a JSON object")]
    NotAnObject { what: &'static str },
    #[error("no build metadata keys (containerimage.*, buildx.build.*) in it")]
    NoMetadataKeys,
    #[error("bake target `{wanted}` is not in it (targets: {targets})")]
    UnknownTarget { wanted: String, targets: String },
    #[error("it holds several bake targets ({targets}): choose one with --target")]
    SeveralTargets { targets: String },
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
    #[error("no `Ref` field: not a build-history record")]
    NotHistoryRecord,
    #[error("no `Ref` field: not `history inspect` output")]
    NotHistoryInspect,
    #[error("an empty array")]
    EmptyArray,
}

impl RecordError {
    fn from_json(e: serde_json::Error) -> Self {
        if e.is_eof() {
            RecordError::Truncated(e)
        } else {
            RecordError::Json(e)
        }
    }
}

/// Reads a metadata file or a provenance document from disk, streaming it through typed
/// deserialization (nothing of it is kept but what the report uses).
pub fn read_record_file(
    path: &Path,
    format: InputFormat,
    options: &ReadOptions,
) -> Result<Fragment, ReadError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_RECORD_BYTES {
        return Err(ReadError::Malformed {
            path: name,
            detail: format!(
                "{size} bytes: larger than any {} record ({MAX_RECORD_BYTES} bytes at most)",
                format.name()
            ),
        });
    }
    let reader = BufReader::new(file.take(MAX_RECORD_BYTES));
    let result = match format {
        InputFormat::Provenance => provenance::parse_reader(reader)
            .map_err(RecordError::from)
            .map(provenance_fragment),
        _ => read_metadata_reader(reader, options.bake_target.as_deref()),
    };
    result.map_err(|e| ReadError::Malformed {
        path: name,
        detail: e.to_string(),
    })
}

/// A metadata file already parsed as a JSON value.
pub fn read_metadata(value: &Value, bake_target: Option<&str>) -> Result<Fragment, RecordError> {
    let file = MetadataFile::deserialize(value).map_err(RecordError::from_json)?;
    metadata_fragment(file, bake_target)
}

/// A metadata file read from text, without holding it.
pub fn read_metadata_reader(
    reader: impl Read,
    bake_target: Option<&str>,
) -> Result<Fragment, RecordError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let file = MetadataFile::deserialize(&mut de).map_err(RecordError::from_json)?;
    de.end().map_err(RecordError::from_json)?;
    metadata_fragment(file, bake_target)
}

/// Said when a metadata file's provenance has no build graph, so steps get no Dockerfile line
/// nor layers from it.
pub const MIN_PROVENANCE_HINT: &str = "the metadata file carries provenance trimmed to mode=min \
     (no build graph), so it gives no Dockerfile line and no layers per step: set \
     `BUILDX_METADATA_PROVENANCE=max` in the build step's environment (the `provenance` setting \
     of the build does not change what the metadata file keeps), or pass the build's record \
     (`docker buildx history export`)";

/// `MIN_PROVENANCE_HINT` when a metadata file's provenance lacked the build graph and none of
/// the steps got a Dockerfile line from elsewhere.
pub fn min_provenance_hint(provenance: &[Provenance], build: &Build) -> Option<&'static str> {
    let trimmed = provenance
        .iter()
        .any(|p| p.in_metadata_file && !p.has_build_graph);
    let full = provenance.iter().any(|p| p.has_build_graph);
    let lines_missing = !build.steps.is_empty()
        && build
            .steps
            .iter()
            .all(|s| s.dockerfile_line.is_none() && s.layers.is_empty());
    (trimmed && !full && lines_missing).then_some(MIN_PROVENANCE_HINT)
}

/// The keys of one build in a metadata file (the whole file, or one bake target).
#[derive(Debug, Default)]
struct MetadataEntries {
    image_name: Option<String>,
    image_digest: Option<String>,
    descriptor_digest: Option<String>,
    config_digest: Option<String>,
    build_ref: Option<String>,
    warnings: Vec<WarningRecord>,
    provenance: Vec<Result<Provenance, ProvenanceError>>,
    /// Whether any build metadata key was seen.
    has_build_keys: bool,
}

#[derive(Debug, Default)]
struct MetadataFile {
    flat: MetadataEntries,
    /// Bake: target name -> its keys.
    targets: Vec<(String, MetadataEntries)>,
}

fn is_metadata_key(key: &str) -> bool {
    key.starts_with("containerimage.")
        || key.starts_with("buildx.build.")
        || key.starts_with("cache.")
        || key.starts_with("image.")
}

/// Reads one metadata key's value into `entries`; false when the key is not a metadata key
/// (its value is left unread).
fn take_entry<'de, A: MapAccess<'de>>(
    entries: &mut MetadataEntries,
    key: &str,
    map: &mut A,
) -> Result<bool, A::Error> {
    if !is_metadata_key(key) {
        return Ok(false);
    }
    if key != "buildx.build.warnings" {
        entries.has_build_keys = true;
    }
    match key {
        "image.name" => entries.image_name = map.next_value::<MaybeString>()?.0,
        "containerimage.digest" => entries.image_digest = map.next_value::<MaybeString>()?.0,
        "containerimage.config.digest" => {
            entries.config_digest = map.next_value::<MaybeString>()?.0;
        }
        "containerimage.descriptor" => {
            entries.descriptor_digest = map
                .next_value::<Option<Descriptor>>()?
                .and_then(|d| d.digest.0);
        }
        "buildx.build.ref" => entries.build_ref = map.next_value::<MaybeString>()?.0,
        "buildx.build.warnings" => {
            entries.warnings = map
                .next_value::<Option<Vec<WarningRecord>>>()?
                .unwrap_or_default();
        }
        _ if key == "buildx.build.provenance" || key.starts_with("buildx.build.provenance/") => {
            if let Some(provenance) = map.next_value::<EmbeddedProvenance>()?.0 {
                entries.provenance.push(provenance.map(|mut p| {
                    p.in_metadata_file = true;
                    p
                }));
            }
        }
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(true)
}

impl<'de> Deserialize<'de> for MetadataFile {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = MetadataFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a metadata file (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetadataFile, A::Error> {
                let mut file = MetadataFile::default();
                while let Some(key) = map.next_key::<String>()? {
                    if !take_entry(&mut file.flat, &key, &mut map)?
                        && let Some(entries) = map.next_value::<TargetEntries>()?.0
                    {
                        file.targets.push((key, entries));
                    }
                }
                Ok(file)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A bake target's object; nothing for any other JSON value.
struct TargetEntries(Option<MetadataEntries>);

impl<'de> Deserialize<'de> for TargetEntries {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = TargetEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TargetEntries, A::Error> {
                let mut entries = MetadataEntries::default();
                while let Some(key) = map.next_key::<String>()? {
                    if !take_entry(&mut entries, &key, &mut map)? {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(TargetEntries(Some(entries)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TargetEntries, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TargetEntries(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TargetEntries, E> {
                Ok(TargetEntries(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `buildx.build.provenance`: the predicate inline (newer buildx) or base64 JSON (older).
struct EmbeddedProvenance(Option<Result<Provenance, ProvenanceError>>);

impl<'de> Deserialize<'de> for EmbeddedProvenance {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = EmbeddedProvenance;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a provenance predicate, inline or base64")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<EmbeddedProvenance, E> {
                let parsed = match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => provenance::parse_bytes(&bytes),
                    Err(_) => provenance::parse_bytes(text.as_bytes()),
                };
                Ok(EmbeddedProvenance(Some(parsed)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EmbeddedProvenance, A::Error> {
                let document = provenance::Document::deserialize(MapAccessDeserializer::new(map))?;
                Ok(EmbeddedProvenance(Some(document.into_provenance())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EmbeddedProvenance, E> {
                Ok(EmbeddedProvenance(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Descriptor {
    digest: MaybeString,
}

/// A build-check or frontend warning as buildx writes it (`short` and `detail` base64).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WarningRecord {
    short: MaybeString,
    detail: Option<Vec<MaybeString>>,
    url: MaybeString,
    #[serde(rename = "sourceInfo")]
    source_info: Option<WarningSource>,
    range: Option<Vec<WarningRange>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WarningSource {
    filename: MaybeString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WarningRange {
    start: Option<WarningPosition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WarningPosition {
    line: Option<i64>,
}

fn metadata_fragment(
    file: MetadataFile,
    bake_target: Option<&str>,
) -> Result<Fragment, RecordError> {
    let MetadataFile { flat, targets } = file;
    let (target, mut entries, bake_warnings) = if flat.has_build_keys {
        (None, flat, Vec::new())
    } else {
        let (name, entries) = select_target(targets, bake_target)?;
        (Some(name), entries, flat.warnings)
    };
    let mut fragment = Fragment::default();
    let info = &mut fragment.build.build;
    if let Some(names) = entries.image_name.take() {
        info.image_names = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
    }
    info.image_digest = entries
        .image_digest
        .take()
        .filter(|d| !d.is_empty())
        .or(entries.descriptor_digest.take());
    info.config_digest = entries.config_digest.take();
    info.build_ref = entries.build_ref.take();
    for provenance in entries.provenance {
        match provenance {
            Ok(p) => fragment.provenance.push(p),
            Err(e) => fragment.notes.push(format!("buildx.build.provenance: {e}")),
        }
    }
    // Bake lists every target's warnings together: a target keeps those about its own
    // Dockerfile (and those that name no file).
    let dockerfile = fragment
        .provenance
        .iter()
        .find_map(|p| p.dockerfile.clone());
    let warnings = if entries.warnings.is_empty() {
        bake_warnings
    } else {
        entries.warnings
    };
    for warning in warnings {
        if let Some(w) = warning_of(warning) {
            let other_file =
                target.is_some() && matches!((&w.file, &dockerfile), (Some(f), Some(d)) if f != d);
            if !other_file {
                fragment.build.warnings.push(w);
            }
        }
    }
    if fragment.build.build.dockerfile.is_none() {
        fragment.build.build.dockerfile = dockerfile;
    }
    Ok(fragment)
}

/// Bake writes one object per target; a plain build writes the keys at the top level.
fn select_target(
    targets: Vec<(String, MetadataEntries)>,
    wanted: Option<&str>,
) -> Result<(String, MetadataEntries), RecordError> {
    let names = || {
        targets
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (wanted, targets.len()) {
        (_, 0) => Err(RecordError::NoMetadataKeys),
        (Some(want), _) => {
            let listed = names();
            targets
                .into_iter()
                .find(|(k, _)| k == want)
                .ok_or_else(|| RecordError::UnknownTarget {
                    wanted: want.to_string(),
                    targets: listed,
                })
        }
        (None, 1) => Ok(targets.into_iter().next().expect("one target")),
        (None, _) => Err(RecordError::SeveralTargets { targets: names() }),
    }
}

fn warning_of(record: WarningRecord) -> Option<BuildWarning> {
    let decode = |s: String| -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s)
            .unwrap_or_else(|_| s.into_bytes());
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    let message = decode(record.short.0?);
    let detail: Vec<String> = record
        .detail
        .into_iter()
        .flatten()
        .filter_map(|d| d.0)
        .map(decode)
        .collect();
    Some(BuildWarning {
        message,
        detail: (!detail.is_empty()).then(|| detail.join("\n")),
        url: record.url.0.filter(|u| !u.is_empty()),
        file: record
            .source_info
            .and_then(|s| s.filename.0)
            .filter(|f| !f.is_empty()),
        dockerfile_line: record
            .range
            .and_then(|r| r.into_iter().next())
            .and_then(|r| r.start?.line)
            .and_then(|l| u32::try_from(l).ok()),
    })
}

fn provenance_fragment(provenance: Provenance) -> Fragment {
    let mut notes = Vec::new();
    if !provenance.has_build_graph {
        notes.push(
            "provenance in mode=min (no build graph): it gives no Dockerfile line and no layers \
             per step; build with `--provenance=mode=max` (build-push-action: `provenance: \
             mode=max`) for those"
                .to_string(),
        );
    }
    Fragment {
        build: Build {
            build: crate::model::BuildInfo {
                dockerfile: provenance.dockerfile.clone(),
                ..crate::model::BuildInfo::default()
            },
            ..Build::default()
        },
        provenance: vec![provenance],
        notes: notes.into_iter().collect(),
    }
}

/// A provenance document already parsed as a JSON value.
pub fn read_provenance(value: &Value) -> Result<Fragment, RecordError> {
    let document = provenance::Document::deserialize(value).map_err(RecordError::from_json)?;
    Ok(provenance_fragment(document.into_provenance()?))
}

fn value_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    value_at(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A BuildKit build-history record (Go field names, as `buildx history` and bundles store it).
pub fn read_history_record(value: &Value) -> Result<Fragment, RecordError> {
    let record = value.as_object().ok_or(RecordError::NotAnObject {
        what: "build-history record",
    })?;
    if !record.contains_key("Ref") {
        return Err(RecordError::NotHistoryRecord);
    }
    let mut fragment = Fragment::default();
    let build = &mut fragment.build;
    build.build.build_ref = str_at(value, &["Ref"]);
    build.build.started = value.get("CreatedAt").and_then(parse_time);
    build.build.completed = value.get("CompletedAt").and_then(parse_time);
    if let (Some(s), Some(c)) = (build.build.started, build.build.completed) {
        build.build.duration_ms = u64::try_from((c - s).num_milliseconds()).ok();
    }
    let error = str_at(value, &["error", "message"]);
    build.build.status = match (&error, build.build.completed) {
        (Some(e), _) if e.ends_with("context canceled") => BuildStatus::Canceled,
        (Some(_), _) => BuildStatus::Failed,
        (None, Some(_)) => BuildStatus::Completed,
        (None, None) => BuildStatus::Unknown,
    };
    build.build.error = error;
    build.build.buildkit_total_vertices = count(value, "numTotalSteps");
    // Go's JSON encoding leaves zero counts out.
    build.build.buildkit_cached_vertices =
        count(value, "numCachedSteps").or(build.build.buildkit_total_vertices.map(|_| 0));
    if let Some(attrs) = value.get("FrontendAttrs").and_then(Value::as_object) {
        read_frontend_attrs(attrs, build);
    }
    for exporter in value
        .get("Exporters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(names) = str_at(exporter, &["Attrs", "name"]) {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !build.build.image_names.iter().any(|n| n == name) {
                    build.build.image_names.push(name.to_string());
                }
            }
        }
    }
    if let Some(response) = value.get("ExporterResponse").and_then(Value::as_object) {
        if let Some(digest) = response
            .get("containerimage.digest")
            .and_then(Value::as_str)
        {
            build.build.image_digest = Some(digest.to_string());
        }
        if build.build.image_names.is_empty()
            && let Some(names) = response.get("image.name").and_then(Value::as_str)
        {
            build.build.image_names = names.split(',').map(|n| n.trim().to_string()).collect();
        }
    }
    if let Some(platform) = str_at(value, &["DefaultPlatform"]) {
        build.build.platforms = vec![platform];
    }
    Ok(fragment)
}

fn read_frontend_attrs(attrs: &Map<String, Value>, build: &mut Build) {
    for (key, val) in attrs {
        let Some(val) = val.as_str() else { continue };
        if let Some(name) = key.strip_prefix("build-arg:") {
            build
                .build
                .build_args
                .insert(name.to_string(), val.to_string());
        }
        match key.as_str() {
            "filename" => build.build.dockerfile = Some(val.to_string()),
            "vcs:source" => build.build.vcs_source = Some(val.to_string()),
            "vcs:revision" => build.build.vcs_revision = Some(val.to_string()),
            "cache-imports" => build
                .cache_imports
                .extend(cache_entries(val).into_iter().map(|(cache_type, attrs)| {
                    CacheImport {
                        reference: attrs
                            .get("ref")
                            .or_else(|| attrs.get("scope").map(|_| &cache_type))
                            .cloned()
                            .unwrap_or_else(|| cache_type.clone()),
                        cache_type: Some(cache_type),
                        status: OutcomeStatus::Unknown,
                        attrs,
                        ..CacheImport::default()
                    }
                })),
            "cache-exports" => build
                .cache_exports
                .extend(
                    cache_entries(val)
                        .into_iter()
                        .map(|(cache_type, attrs)| CacheExport {
                            name: format!("cache export ({cache_type})"),
                            reference: attrs.get("ref").cloned(),
                            mode: attrs.get("mode").cloned(),
                            cache_type: Some(cache_type),
                            status: OutcomeStatus::Unknown,
                            attrs,
                            ..CacheExport::default()
                        }),
                ),
            _ => {}
        }
    }
}

/// `[{"Type":"registry","Attrs":{"ref":"..."}}]` -> (type, attrs).
fn cache_entries(json: &str) -> Vec<(String, BTreeMap<String, String>)> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "Type")]
        kind: MaybeString,
        #[serde(rename = "Attrs", default)]
        attrs: Option<BTreeMap<String, MaybeString>>,
    }
    let Ok(entries) = serde_json::from_str::<Vec<Entry>>(json) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let attrs = entry
                .attrs
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.0?)))
                .collect();
            Some((entry.kind.0?, attrs))
        })
        .collect()
}

/// `docker buildx history inspect --format json` output (one object, or an array of them).
/// A failed build's `Error` names the failing step (`Name`), its Dockerfile line (`Sources`) and
/// its last output (`Logs`): that step comes out as a failed step.
pub fn read_history_inspect(value: &Value) -> Result<Fragment, RecordError> {
    let value = match value {
        Value::Array(items) => items.first().ok_or(RecordError::EmptyArray)?,
        other => other,
    };
    if value.get("Ref").is_none() {
        return Err(RecordError::NotHistoryInspect);
    }
    let mut fragment = Fragment::default();
    let info = &mut fragment.build.build;
    info.build_ref = str_at(value, &["Ref"]);
    info.name = str_at(value, &["Name"]);
    info.started = value.get("StartedAt").and_then(parse_time);
    info.completed = value.get("CompletedAt").and_then(parse_time);
    info.duration_ms = value
        .get("Duration")
        .and_then(Value::as_u64)
        .map(|ns| ns / 1_000_000);
    info.status = match value.get("Status").and_then(Value::as_str) {
        Some("completed") => BuildStatus::Completed,
        Some("failed") => BuildStatus::Failed,
        Some("canceled") => BuildStatus::Canceled,
        _ => BuildStatus::Unknown,
    };
    info.error = str_at(value, &["Error", "Message"]);
    info.dockerfile = str_at(value, &["Dockerfile"]);
    info.vcs_source = str_at(value, &["VCSRepository"]);
    info.vcs_revision = str_at(value, &["VCSRevision"]);
    info.buildkit_cached_vertices = count(value, "NumCachedSteps");
    info.buildkit_total_vertices = count(value, "NumTotalSteps");
    info.platforms = value
        .get("Platform")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    for arg in value
        .get("BuildArgs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(val)) = (str_at(arg, &["Name"]), str_at(arg, &["Value"])) {
            info.build_args.insert(name, val);
        }
    }
    for material in value
        .get("Materials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(uri) = str_at(material, &["URI"]) {
            info.materials.push(Material {
                uri,
                digest: material
                    .get("Digests")
                    .and_then(Value::as_array)
                    .and_then(|d| d.first())
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
    }
    if let Some(error) = value.get("Error")
        && let Some(step) = failed_step_of_inspect_error(error)
    {
        fragment.build.steps.push(step);
    }
    Ok(fragment)
}

/// Lines of a failed step's output kept from a record's error.
const ERROR_LOG_LINES: usize = 20;

/// The failing step named by `history inspect`'s `Error`: `Name` (the vertex name), `Message`,
/// `Logs` (its last output lines) and `Sources` (base64 of buildx's source excerpt, which
/// starts `Dockerfile:6`).
fn failed_step_of_inspect_error(error: &Value) -> Option<Step> {
    let name = str_at(error, &["Name"])?;
    let VertexClass::Step(parsed) = classify(&name) else {
        return None;
    };
    let sources = error
        .get("Sources")
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let logs: Vec<String> = error
        .get("Logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let skip = logs.len().saturating_sub(ERROR_LOG_LINES);
    let canceled = str_at(error, &["Message"]).is_some_and(|m| m.ends_with("context canceled"));
    Some(Step {
        name,
        stage: parsed.stage,
        platform: parsed.platform,
        index: parsed.index,
        total: parsed.total,
        instruction: parsed.instruction,
        kind: parsed.kind,
        status: if canceled {
            StepStatus::Canceled
        } else {
            StepStatus::Failed
        },
        dockerfile_line: sources.as_deref().and_then(source_excerpt_line),
        error: str_at(error, &["Message"]),
        log_tail: logs.into_iter().skip(skip).collect(),
        ..Step::default()
    })
}

/// `Dockerfile:6` (the first line of buildx's source excerpt) -> 6.
fn source_excerpt_line(excerpt: &str) -> Option<u32> {
    excerpt.lines().find_map(|line| {
        let (file, number) = line.trim().rsplit_once(':')?;
        if file.is_empty() || file.contains(' ') {
            return None;
        }
        number.parse::<u32>().ok().filter(|n| *n > 0)
    })
}

/// What a build-history record's `externalError` blob says about the failure: BuildKit stores a
/// protobuf `google.rpc.Status` whose details carry the failing vertex
/// (`errdefs.Vertex+json`), its place in the Dockerfile (`errdefs.Source+json`) and the exit
/// code (`gatewayapi.ExitMessage+json`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalError {
    pub message: Option<String>,
    /// Digest of the vertex that failed.
    pub vertex_digest: Option<String>,
    /// The file the failing instruction is in (`Dockerfile`).
    pub dockerfile: Option<String>,
    pub dockerfile_line: Option<u32>,
    pub exit_code: Option<i64>,
}

/// Reads an `application/vnd.googeapis.google.rpc.status+proto` blob. `None` when the bytes
/// are not such a record.
pub fn parse_external_error(bytes: &[u8]) -> Option<ExternalError> {
    use prost::Message;
    let status = rpc::Status::decode(bytes).ok()?;
    let mut out = ExternalError {
        message: Some(status.message).filter(|m| !m.is_empty()),
        ..ExternalError::default()
    };
    for detail in status.details {
        // `github.com/moby/buildkit/errdefs.Vertex+json`, with or without a host before it.
        let kind = detail
            .type_url
            .rsplit('/')
            .next()
            .unwrap_or(&detail.type_url);
        match kind {
            "errdefs.Vertex+json" => {
                #[derive(Deserialize)]
                struct VertexDetail {
                    digest: MaybeString,
                }
                if let Ok(v) = serde_json::from_slice::<VertexDetail>(&detail.value) {
                    out.vertex_digest = out.vertex_digest.or(v.digest.0);
                }
            }
            "errdefs.Source+json" => {
                #[derive(Deserialize)]
                struct SourceDetail {
                    info: Option<SourceInfo>,
                    ranges: Option<Vec<WarningRange>>,
                }
                #[derive(Deserialize)]
                struct SourceInfo {
                    filename: MaybeString,
                }
                if let Ok(s) = serde_json::from_slice::<SourceDetail>(&detail.value)
                    && out.dockerfile_line.is_none()
                {
                    out.dockerfile = s.info.and_then(|i| i.filename.0);
                    out.dockerfile_line = s
                        .ranges
                        .into_iter()
                        .flatten()
                        .filter_map(|r| u32::try_from(r.start?.line?).ok())
                        .filter(|l| *l > 0)
                        .min();
                }
            }
            "gatewayapi.ExitMessage+json" => {
                #[derive(Deserialize)]
                struct Exit {
                    #[serde(rename = "Code")]
                    code: Option<i64>,
                }
                if let Ok(e) = serde_json::from_slice::<Exit>(&detail.value) {
                    out.exit_code = out.exit_code.or(e.code);
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// `google.rpc.Status` and `google.protobuf.Any`, the fields read.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
}

fn count(value: &Value, key: &str) -> Option<u32> {
    value
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// RFC 3339 text or a protobuf `{seconds, nanos}` timestamp.
pub(crate) fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Object(o) => {
            let seconds = o.get("seconds").and_then(Value::as_i64)?;
            let nanos = o.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Utc.timestamp_opt(seconds, u32::try_from(nanos).ok()?)
                .single()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keys_in_any_order_and_unused_values_are_skipped() {
        let numbers = vec!["7"; 100_000].join(",");
        let text = format!(
            r#"{{"unused": [{numbers}], "image.name": "r/app:1,r/app:latest",
                "buildx.build.ref": "b/n/ref1", "containerimage.descriptor": {{"digest": "sha256:d"}}}}"#
        );
        let fragment = read_metadata_reader(text.as_bytes(), None).unwrap();
        let info = &fragment.build.build;
        assert_eq!(info.image_names, ["r/app:1", "r/app:latest"]);
        assert_eq!(info.image_digest.as_deref(), Some("sha256:d"));
        assert_eq!(info.build_ref.as_deref(), Some("b/n/ref1"));
    }

    #[test]
    fn bake_targets_are_chosen_by_name() {
        let text = r#"{"api": {"buildx.build.ref": "b/n/a"}, "worker": {"buildx.build.ref": "b/n/w"}, "buildx.build.warnings": []}"#;
        assert!(matches!(
            read_metadata_reader(text.as_bytes(), None),
            Err(RecordError::SeveralTargets { .. })
        ));
        let api = read_metadata_reader(text.as_bytes(), Some("api")).unwrap();
        assert_eq!(api.build.build.build_ref.as_deref(), Some("b/n/a"));
        assert!(matches!(
            read_metadata_reader(text.as_bytes(), Some("web")),
            Err(RecordError::UnknownTarget { .. })
        ));
        assert!(matches!(
            read_metadata_reader(&b"{\"x\": 1}"[..], None),
            Err(RecordError::NoMetadataKeys)
        ));
        assert!(matches!(
            read_metadata_reader(&b"[1]"[..], None),
            Err(RecordError::Json(_))
        ));
    }

    #[test]
    fn embedded_provenance_inline_or_base64() {
        let predicate = r#"{"buildType":"https://mobyproject.org/buildkit@v1","invocation":{"parameters":{"args":{"build-arg:A":"1"}}}}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(predicate);
        for text in [
            format!(r#"{{"buildx.build.provenance": {predicate}}}"#),
            format!(r#"{{"buildx.build.provenance": "{encoded}"}}"#),
        ] {
            let fragment = read_metadata_reader(text.as_bytes(), None).unwrap();
            assert_eq!(fragment.provenance.len(), 1, "{text}");
            assert!(fragment.provenance[0].in_metadata_file);
            assert!(!fragment.provenance[0].has_build_graph);
            assert_eq!(fragment.provenance[0].build_args["A"], "1");
        }
    }

    #[test]
    fn source_excerpts_name_the_line() {
        assert_eq!(
            source_excerpt_line("Dockerfile:6\n----\n   6 | >>> RUN x\n"),
            Some(6)
        );
        assert_eq!(source_excerpt_line("no line here"), None);
    }

    #[test]
    fn external_error_blob() {
        use prost::Message;
        let detail = |kind: &str, json: &str| rpc::Any {
            type_url: format!("type.googleapis.com/github.com/moby/buildkit/{kind}"),
            value: json.as_bytes().to_vec(),
        };
        let status = rpc::Status {
            code: 2,
            message: "exit code: 2".into(),
            details: vec![
                detail("stack.Stack+json", r#"{"frames":[]}"#),
                detail(
                    "errdefs.Source+json",
                    r#"{"info":{"filename":"Dockerfile"},"ranges":[{"start":{"line":6},"end":{"line":6}}]}"#,
                ),
                detail("errdefs.Vertex+json", r#"{"digest":"sha256:b6"}"#),
                detail("gatewayapi.ExitMessage+json", r#"{"Code":2}"#),
            ],
        };
        let parsed = parse_external_error(&status.encode_to_vec()).unwrap();
        assert_eq!(
            parsed,
            ExternalError {
                message: Some("exit code: 2".into()),
                vertex_digest: Some("sha256:b6".into()),
                dockerfile: Some("Dockerfile".into()),
                dockerfile_line: Some(6),
                exit_code: Some(2),
            }
        );
        assert_eq!(parse_external_error(&[0xff, 0xff, 0xff]), None);
    }
}
