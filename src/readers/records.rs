//! JSON build records that describe a build as a whole: buildx metadata files (and
//! build-push-action's `metadata` output), provenance attestations, BuildKit build-history
//! records and `docker buildx history inspect --format json` output.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::model::{
    Build, BuildStatus, BuildWarning, CacheExport, CacheImport, Material, OutcomeStatus,
};
use crate::readers::Fragment;
use crate::readers::provenance::{self, str_at, value_at};

/// `detail` of a `ReadError::Malformed` when the JSON does not have the expected shape.
pub type ShapeError = String;

pub fn read_metadata(value: &Value, bake_target: Option<&str>) -> Result<Fragment, ShapeError> {
    let object = value
        .as_object()
        .ok_or("the metadata file is not a JSON object")?;
    let (target, object) = select_target(object, bake_target)?;
    let mut fragment = Fragment::default();
    let info = &mut fragment.build.build;
    if let Some(names) = object.get("image.name").and_then(Value::as_str) {
        info.image_names = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
    }
    info.image_digest = str_at(&Value::Object(object.clone()), &["containerimage.digest"]);
    info.config_digest = object
        .get("containerimage.config.digest")
        .and_then(Value::as_str)
        .map(str::to_string);
    info.build_ref = object
        .get("buildx.build.ref")
        .and_then(Value::as_str)
        .map(str::to_string);
    if info.image_digest.is_none() {
        info.image_digest = str_at(
            &Value::Object(object.clone()),
            &["containerimage.descriptor", "digest"],
        );
    }
    for (key, val) in object {
        if key == "buildx.build.provenance" || key.starts_with("buildx.build.provenance/") {
            // Older buildx stored it base64-encoded; newer inlines the JSON.
            let decoded = decode_embedded_json(val);
            if let Some(p) = decoded.as_ref().and_then(provenance::parse) {
                fragment.provenance.push(p);
            }
        }
    }
    let warnings = object
        .get("buildx.build.warnings")
        .or_else(|| value.get("buildx.build.warnings"));
    // Bake lists every target's warnings together: a target keeps those about its own
    // Dockerfile (and those that name no file).
    let dockerfile = fragment
        .provenance
        .iter()
        .find_map(|p| p.dockerfile.clone());
    for warning in warnings.and_then(Value::as_array).into_iter().flatten() {
        if let Some(w) = parse_warning(warning) {
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
fn select_target<'a>(
    object: &'a Map<String, Value>,
    wanted: Option<&str>,
) -> Result<(Option<String>, &'a Map<String, Value>), ShapeError> {
    if is_flat(object) {
        return Ok((None, object));
    }
    let targets: Vec<(&String, &Map<String, Value>)> = object
        .iter()
        .filter(|(k, _)| k.as_str() != "buildx.build.warnings")
        .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
        .collect();
    let names = || {
        targets
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (wanted, targets.len()) {
        (_, 0) => Err("no build metadata keys (containerimage.*, buildx.build.*) in it".into()),
        (Some(want), _) => targets
            .iter()
            .find(|(k, _)| k.as_str() == want)
            .map(|(k, o)| (Some((*k).clone()), *o))
            .ok_or_else(|| format!("bake target `{want}` is not in it (targets: {})", names())),
        (None, 1) => Ok((Some(targets[0].0.clone()), targets[0].1)),
        (None, _) => Err(format!(
            "it holds several bake targets ({}): choose one with --target",
            names()
        )),
    }
}

/// Whether metadata describes one build at its top level (as opposed to bake's per target).
fn is_flat(object: &Map<String, Value>) -> bool {
    object.keys().any(|k| {
        k.starts_with("containerimage.")
            || k.starts_with("image.")
            || k.starts_with("cache.")
            || (k.starts_with("buildx.build.") && k != "buildx.build.warnings")
    })
}

/// A target of bake metadata, and the build record it names (`buildx.build.ref`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BakeTarget {
    pub name: String,
    pub build_ref: Option<String>,
}

/// The targets of bake metadata, in name order; empty for a single build's metadata.
pub fn bake_targets(value: &Value) -> Vec<BakeTarget> {
    let Some(object) = value.as_object().filter(|o| !is_flat(o)) else {
        return Vec::new();
    };
    object
        .iter()
        .filter(|(k, _)| k.as_str() != "buildx.build.warnings")
        .filter_map(|(name, v)| {
            let target = v.as_object()?;
            Some(BakeTarget {
                name: name.clone(),
                build_ref: target
                    .get("buildx.build.ref")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

fn decode_embedded_json(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            serde_json::from_slice(&bytes).ok()
        }
        other => Some(other.clone()),
    }
}

fn parse_warning(value: &Value) -> Option<BuildWarning> {
    use base64::Engine;
    let decode = |v: &Value| -> Option<String> {
        let s = v.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|_| s.as_bytes().to_vec());
        Some(String::from_utf8_lossy(&bytes).trim().to_string())
    };
    let message = value.get("short").and_then(decode)?;
    let detail: Vec<String> = value
        .get("detail")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(decode)
        .collect();
    Some(BuildWarning {
        message,
        detail: (!detail.is_empty()).then(|| detail.join("\n")),
        url: str_at(value, &["url"]),
        file: str_at(value, &["sourceInfo", "filename"]),
        dockerfile_line: value
            .get("range")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| value_at(r, &["start", "line"]))
            .and_then(Value::as_u64)
            .and_then(|l| u32::try_from(l).ok()),
    })
}

pub fn read_provenance(value: &Value) -> Result<Fragment, ShapeError> {
    let parsed = provenance::parse(value)
        .ok_or("no SLSA provenance predicate (buildType/invocation) in it")?;
    Ok(Fragment {
        provenance: vec![parsed],
        ..Fragment::default()
    })
}

/// A BuildKit build-history record (Go field names, as `buildx history` and bundles store it).
pub fn read_history_record(value: &Value) -> Result<Fragment, ShapeError> {
    let record = value.as_object().ok_or("the record is not a JSON object")?;
    if !record.contains_key("Ref") {
        return Err("no `Ref` field: not a build-history record".into());
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
    let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let kind = entry.get("Type").and_then(Value::as_str)?.to_string();
            let attrs = entry
                .get("Attrs")
                .and_then(Value::as_object)
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            Some((kind, attrs))
        })
        .collect()
}

/// `docker buildx history inspect --format json` output (one object, or an array of them).
pub fn read_history_inspect(value: &Value) -> Result<Fragment, ShapeError> {
    let value = match value {
        Value::Array(items) => items.first().ok_or("an empty array")?,
        other => other,
    };
    if value.get("Ref").is_none() {
        return Err("no `Ref` field: not `history inspect` output".into());
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
    Ok(fragment)
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
