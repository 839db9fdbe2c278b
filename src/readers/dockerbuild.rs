//! `.dockerbuild` bundles: a gzip-compressed tar of an OCI image layout holding one or more
//! BuildKit build-history records. Per record: a config (the history record JSON), a status log
//! layer (`[u32 little-endian length][protobuf StatusResponse]...`), provenance, and more.
//!
//! The bundle is read twice: once for the small JSON documents, once to stream the status log
//! through the shared accumulator, so a large log never sits in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use serde_json::Value;

use crate::model::ProblemKind;
use crate::readers::records::{parse_time, read_history_record};
use crate::readers::solve_status::{
    SolveStatus, StatusAccumulator, Vertex, VertexLog, VertexStatus, VertexWarning,
};
use crate::readers::{Fragment, Notes, ReadError, merge, provenance};

const MEDIA_RECORD: &str = "application/vnd.buildkit.historyrecord.v0";
const MEDIA_STATUS_LOG: &str = "application/vnd.buildkit.status.v0";
const MEDIA_SOLVE_STATUS: &str = "application/vnd.buildkit.solvestatus.v0";
const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";
const REFERENCE_ANNOTATION: &str = "vnd.buildkit.history.reference";
/// JSON documents kept from the first pass; larger blobs are streamed in the second.
const SMALL_BLOB_BYTES: u64 = 32 * 1024 * 1024;
/// A single status message larger than this is damage, not data.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// All JSON documents of a bundle together. Real ones come to a few MB; past this the bundle
/// is damaged or a decompression bomb, and reading on would only exhaust memory.
const SMALL_BLOBS_TOTAL_BYTES: usize = 256 * 1024 * 1024;

pub fn read_bundle(path: &Path, wanted_ref: Option<&str>) -> Result<Fragment, ReadError> {
    let name = path.display().to_string();
    let malformed = |detail: String| ReadError::Malformed {
        path: name.clone(),
        detail,
    };
    let (blobs, damage) = collect_small_blobs(path, SMALL_BLOBS_TOTAL_BYTES).map_err(&malformed)?;
    // Damage after the documents were read (a bundle cut at its very end) leaves them usable.
    let with_damage = |detail: &str| match &damage {
        Some(damage) => format!("{detail} ({damage})"),
        None => detail.to_string(),
    };
    let index: Value = blobs
        .get("index.json")
        .and_then(|b| serde_json::from_slice(b).ok())
        .ok_or_else(|| malformed(with_damage("no readable index.json: not an OCI layout")))?;
    let json_blob = |digest: &str| -> Option<Value> {
        serde_json::from_slice(blobs.get(blob_path(digest)?.as_str())?).ok()
    };
    let records = list_records(&index, &json_blob);
    if records.is_empty() {
        return Err(malformed(with_damage(
            "the bundle holds no build-history record",
        )));
    }
    let mut notes: Notes = damage.into_iter().collect();
    let chosen = match wanted_ref {
        Some(want) => records
            .iter()
            .find(|r| {
                r.reference.as_deref() == Some(want)
                    || record_ref(r, &json_blob).as_deref() == Some(want)
            })
            .ok_or_else(|| {
                malformed(format!(
                    "no record `{want}` in the bundle (records: {})",
                    records
                        .iter()
                        .filter_map(|r| r.reference.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None => {
            let newest = newest_record(&records, &json_blob);
            if records.len() > 1 {
                notes.push(format!(
                    "the bundle holds {} records; reporting the newest ({}); choose another with --record",
                    records.len(),
                    newest.reference.clone().unwrap_or_default()
                ));
            }
            newest
        }
    };
    let manifest = json_blob(&chosen.manifest_digest)
        .ok_or_else(|| malformed(format!("manifest {} is missing", chosen.manifest_digest)))?;

    let mut fragments: Vec<(crate::readers::InputFormat, Fragment)> = Vec::new();
    if let Some(config) = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .and_then(json_blob)
    {
        match read_history_record(&config) {
            Ok(f) => fragments.push((crate::readers::InputFormat::History, f)),
            Err(e) => notes.push(format!("history record: {e}")),
        }
    }
    let mut progress: Option<Fragment> = None;
    for layer in manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let media = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let Some(digest) = layer.get("digest").and_then(Value::as_str) else {
            continue;
        };
        match media {
            MEDIA_STATUS_LOG => {
                let (build, problem) = stream_status_log(path, digest);
                if let Some(problem) = problem {
                    notes.push((ProblemKind::StatusLog, problem));
                }
                progress = Some(Fragment {
                    build,
                    ..Fragment::default()
                });
            }
            MEDIA_SOLVE_STATUS if progress.is_none() => {
                if let Some(value) = json_blob(digest)
                    && let Ok(status) = serde_json::from_value::<SolveStatus>(value)
                {
                    let mut acc = StatusAccumulator::new();
                    acc.push(status);
                    progress = Some(Fragment {
                        build: acc.finish(),
                        ..Fragment::default()
                    });
                }
            }
            MEDIA_IN_TOTO => {
                if let Some(p) = json_blob(digest).as_ref().and_then(provenance::parse) {
                    fragments.push((
                        crate::readers::InputFormat::Provenance,
                        Fragment {
                            provenance: vec![p],
                            ..Fragment::default()
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    let had_status_log = progress.is_some();
    if let Some(progress) = progress {
        fragments.push((crate::readers::InputFormat::Rawjson, progress));
    }
    let mut build = merge::merge_fragments(fragments);
    build.problems.retain(|p| p.kind != ProblemKind::NoProgress);
    if build.steps.is_empty() {
        notes.push((ProblemKind::NoSteps, if had_status_log {
            "the record's status log shows no Dockerfile step: the build stopped before any step ran".into()
        } else {
            "the record holds no status log: per-step cache status is unknown".into()
        }));
    }
    Ok(Fragment {
        build,
        notes,
        ..Fragment::default()
    })
}

struct RecordRef {
    manifest_digest: String,
    reference: Option<String>,
}

fn blob_path(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':')?;
    Some(format!("blobs/{algorithm}/{hex}"))
}

/// index.json -> manifests, following one level of nested index (several records).
fn list_records(index: &Value, json_blob: &dyn Fn(&str) -> Option<Value>) -> Vec<RecordRef> {
    let mut out = Vec::new();
    for entry in index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(digest) = entry.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let media = entry.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if media.contains("image.index") {
            if let Some(nested) = json_blob(digest) {
                out.extend(list_records(&nested, json_blob));
            }
            continue;
        }
        out.push(RecordRef {
            manifest_digest: digest.to_string(),
            reference: entry
                .get("annotations")
                .and_then(|a| a.get(REFERENCE_ANNOTATION))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    out
}

fn record_config(r: &RecordRef, json_blob: &dyn Fn(&str) -> Option<Value>) -> Option<Value> {
    let manifest = json_blob(&r.manifest_digest)?;
    let config = manifest.get("config")?;
    if config.get("mediaType").and_then(Value::as_str) != Some(MEDIA_RECORD) {
        return None;
    }
    json_blob(config.get("digest")?.as_str()?)
}

fn record_ref(r: &RecordRef, json_blob: &dyn Fn(&str) -> Option<Value>) -> Option<String> {
    record_config(r, json_blob)?
        .get("Ref")?
        .as_str()
        .map(str::to_string)
}

fn newest_record<'a>(
    records: &'a [RecordRef],
    json_blob: &dyn Fn(&str) -> Option<Value>,
) -> &'a RecordRef {
    records
        .iter()
        .max_by_key(|r| {
            record_config(r, json_blob)
                .and_then(|c| c.get("CreatedAt").and_then(parse_time))
                .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
                .unwrap_or(i64::MIN)
        })
        .unwrap_or(&records[0])
}

fn open_tar(path: &Path) -> Result<tar::Archive<GzDecoder<BufReader<File>>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    Ok(tar::Archive::new(GzDecoder::new(BufReader::new(file))))
}

/// The small documents of the bundle, and what stopped the reading early when it is damaged.
type SmallBlobs = (HashMap<String, Vec<u8>>, Option<String>);

fn collect_small_blobs(path: &Path, max_total: usize) -> Result<SmallBlobs, String> {
    let mut archive = open_tar(path)?;
    let mut blobs = HashMap::new();
    let mut total = 0usize;
    let entries = archive
        .entries()
        .map_err(|e| format!("not a gzip-compressed tar: {e}"))?;
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) if blobs.is_empty() => return Err(format!("damaged bundle (gzip/tar): {e}")),
            Err(e) => {
                let damage = format!("the bundle is damaged after {} files: {e}", blobs.len());
                return Ok((blobs, Some(damage)));
            }
        };
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
            .unwrap_or_default();
        if entry.header().entry_type().is_dir() || entry.size() > SMALL_BLOB_BYTES {
            continue;
        }
        // Sized by what arrives, not by the header's claim.
        let mut bytes = Vec::new();
        if let Err(e) = entry.read_to_end(&mut bytes) {
            let damage = format!("the bundle is damaged: cannot read {name}: {e}");
            if blobs.is_empty() {
                return Err(damage);
            }
            return Ok((blobs, Some(damage)));
        }
        // Only JSON documents are looked up; binary blobs (status logs) are streamed later.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if !matches!(first, Some(b'{' | b'[')) {
            continue;
        }
        total += bytes.len();
        if total > max_total {
            let damage = format!(
                "the bundle's JSON documents exceed {} MiB: it is damaged or not a build-history export",
                max_total >> 20
            );
            if blobs.is_empty() {
                return Err(damage);
            }
            return Ok((blobs, Some(damage)));
        }
        blobs.insert(name, bytes);
    }
    Ok((blobs, None))
}

/// Second pass: decode the status log blob as it streams out of the archive.
fn stream_status_log(path: &Path, digest: &str) -> (crate::model::Build, Option<String>) {
    let mut acc = StatusAccumulator::new();
    let Some(wanted) = blob_path(digest) else {
        return (
            acc.finish(),
            Some(format!("bad status log digest {digest}")),
        );
    };
    let problem = (|| -> Result<(), String> {
        let mut archive = open_tar(path)?;
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| format!("damaged bundle: {e}"))?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
                .unwrap_or_default();
            if name == wanted {
                return decode_status_log(BufReader::new(entry), &mut acc);
            }
        }
        Err(format!("status log {digest} is missing from the bundle"))
    })()
    .err();
    (acc.finish(), problem)
}

/// `[u32 LE length][StatusResponse]...`; stops at the first damaged message, keeping the rest.
pub fn decode_status_log(mut reader: impl Read, acc: &mut StatusAccumulator) -> Result<(), String> {
    let mut message = Vec::new();
    let mut count = 0u64;
    loop {
        let mut length = [0u8; 4];
        match read_exact_or_eof(&mut reader, &mut length) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(format!("status log cut off after {count} messages: {e}")),
        }
        let len = u32::from_le_bytes(length) as usize;
        if len > MAX_MESSAGE_BYTES {
            return Err(format!(
                "status log damaged after {count} messages (length {len})"
            ));
        }
        read_message(&mut reader, len, &mut message)
            .map_err(|e| format!("status log cut off after {count} messages: {e}"))?;
        let decoded = <pb::StatusResponse as prost::Message>::decode(message.as_slice())
            .map_err(|e| format!("status log damaged after {count} messages: {e}"))?;
        acc.push(decoded.into());
        count += 1;
    }
}

/// Reads a message of `len` bytes into `buf`. The buffer grows with the bytes that arrive, not
/// with the length prefix, so a damaged prefix cannot make it allocate what the log lacks.
fn read_message(reader: &mut impl Read, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let read = reader.by_ref().take(len as u64).read_to_end(buf)?;
    if read < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("a message of {len} bytes ends after {read}"),
        ));
    }
    Ok(())
}

fn read_exact_or_eof(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// BuildKit's `moby.buildkit.v1.StatusResponse` (api/services/control/control.proto), the
/// fields cachehit reads.
mod pb {
    use chrono::{DateTime, TimeZone, Utc};

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusResponse {
        #[prost(message, repeated, tag = "1")]
        pub vertexes: Vec<Vertex>,
        #[prost(message, repeated, tag = "2")]
        pub statuses: Vec<VertexStatus>,
        #[prost(message, repeated, tag = "3")]
        pub logs: Vec<VertexLog>,
        #[prost(message, repeated, tag = "4")]
        pub warnings: Vec<VertexWarning>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Vertex {
        #[prost(string, tag = "1")]
        pub digest: String,
        #[prost(string, repeated, tag = "2")]
        pub inputs: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(bool, tag = "4")]
        pub cached: bool,
        #[prost(message, optional, tag = "5")]
        pub started: Option<Timestamp>,
        #[prost(message, optional, tag = "6")]
        pub completed: Option<Timestamp>,
        #[prost(string, tag = "7")]
        pub error: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VertexStatus {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub vertex: String,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(int64, tag = "4")]
        pub current: i64,
        #[prost(int64, tag = "5")]
        pub total: i64,
        #[prost(message, optional, tag = "6")]
        pub timestamp: Option<Timestamp>,
        #[prost(message, optional, tag = "7")]
        pub started: Option<Timestamp>,
        #[prost(message, optional, tag = "8")]
        pub completed: Option<Timestamp>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VertexLog {
        #[prost(string, tag = "1")]
        pub vertex: String,
        #[prost(message, optional, tag = "2")]
        pub timestamp: Option<Timestamp>,
        #[prost(int64, tag = "3")]
        pub stream: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub msg: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VertexWarning {
        #[prost(string, tag = "1")]
        pub vertex: String,
        #[prost(int64, tag = "2")]
        pub level: i64,
        #[prost(bytes = "vec", tag = "3")]
        pub short: Vec<u8>,
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub detail: Vec<Vec<u8>>,
        #[prost(string, tag = "5")]
        pub url: String,
    }

    pub fn time(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
        let t = t?;
        Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?)
            .single()
    }
}

impl From<pb::StatusResponse> for SolveStatus {
    fn from(r: pb::StatusResponse) -> Self {
        SolveStatus {
            vertexes: r
                .vertexes
                .into_iter()
                .map(|v| Vertex {
                    digest: v.digest,
                    inputs: v.inputs,
                    name: v.name,
                    started: pb::time(v.started),
                    completed: pb::time(v.completed),
                    cached: v.cached,
                    error: (!v.error.is_empty()).then_some(v.error),
                })
                .collect(),
            statuses: r
                .statuses
                .into_iter()
                .map(|s| VertexStatus {
                    id: s.id,
                    vertex: s.vertex,
                    name: s.name,
                    total: s.total,
                    current: s.current,
                    timestamp: pb::time(s.timestamp),
                    started: pb::time(s.started),
                    completed: pb::time(s.completed),
                })
                .collect(),
            logs: r
                .logs
                .into_iter()
                .map(|l| VertexLog {
                    vertex: l.vertex,
                    stream: l.stream,
                    data: l.msg,
                    timestamp: pb::time(l.timestamp),
                })
                .collect(),
            warnings: r
                .warnings
                .into_iter()
                .map(|w| VertexWarning {
                    vertex: w.vertex,
                    level: w.level,
                    short: w.short,
                    detail: w.detail,
                    url: w.url,
                    ..VertexWarning::default()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzip-compressed tar holding `files`.
    fn bundle(dir: &Path, files: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
        let path = dir.join("test.dockerbuild");
        let gzip = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gzip);
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o444);
            header.set_cksum();
            tar.append_data(&mut header, name, data.as_slice()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn the_first_pass_keeps_json_documents_only_and_within_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let json = |n: usize| format!("{{\"x\":\"{}\"}}", "a".repeat(n)).into_bytes();
        let path = bundle(
            dir.path(),
            &[
                ("index.json", json(100)),
                ("blobs/sha256/log", vec![0xff; 4096]),
                ("blobs/sha256/one", json(1000)),
                ("blobs/sha256/two", json(1000)),
            ],
        );
        let (blobs, damage) = collect_small_blobs(&path, 1 << 20).unwrap();
        assert!(damage.is_none(), "{damage:?}");
        let mut names: Vec<&str> = blobs.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["blobs/sha256/one", "blobs/sha256/two", "index.json"]
        );

        // Past the budget, reading stops with what was kept so far and says why.
        let (blobs, damage) = collect_small_blobs(&path, 1500).unwrap();
        assert_eq!(blobs.len(), 2);
        assert!(damage.unwrap().contains("exceed"));
        let err = collect_small_blobs(&path, 50).unwrap_err();
        assert!(err.contains("exceed"), "{err}");
    }

    fn framed(response: &pb::StatusResponse) -> Vec<u8> {
        let body = prost::Message::encode_to_vec(response);
        let mut out = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn a_length_prefix_beyond_the_data_keeps_what_was_decoded_and_allocates_nothing_for_it() {
        let step = pb::StatusResponse {
            vertexes: vec![pb::Vertex {
                digest: "sha256:a".into(),
                name: "[1/1] RUN true".into(),
                completed: Some(pb::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        // A second message that claims 48 MiB (under the per-message limit) but holds 5 bytes.
        let claimed: usize = 48 << 20;
        let mut log = framed(&step);
        log.extend_from_slice(&u32::try_from(claimed).unwrap().to_le_bytes());
        log.extend_from_slice(b"\x0a\x03abc");

        let mut acc = StatusAccumulator::new();
        let err = decode_status_log(log.as_slice(), &mut acc).unwrap_err();
        assert!(err.contains("cut off after 1 messages"), "{err}");
        assert_eq!(acc.finish().steps.len(), 1, "the first message is kept");

        let mut buf = Vec::new();
        let err = read_message(&mut &b"\x0a\x03abc"[..], claimed, &mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(
            buf.capacity() < 1 << 20,
            "{} bytes allocated for a 5-byte message",
            buf.capacity()
        );
    }
}
