//! `.dockerbuild` bundles: a gzip-compressed tar of an OCI image layout holding one or more
//! BuildKit build-history records. Per record: a config (the history record JSON), a status
//! log layer (`[u32 little-endian length][protobuf StatusResponse]...`), provenance, the
//! error details of a failed build (`externalError`), and more.
//!
//! The bundle is read in one pass: buildx writes blobs sorted by digest and `index.json`
//! last, so which blob is the status log is known only at the end. JSON documents and small
//! blobs are kept; a large binary blob is decoded as a status log while it streams by (the
//! one the chosen record names is used), so a large log never sits in memory and the
//! archive is decompressed once. Decompression runs on its own thread, next to the decoding.

mod status_log;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::Value;

use crate::model::ProblemKind;
use crate::readers::records::{parse_external_error, parse_time, read_history_record};
use crate::readers::solve_status::{SolveStatus, StatusAccumulator};
use crate::readers::{Fragment, Notes, ReadError, merge, provenance};
pub use status_log::{StatusLogError, StatusLogReader, WireError};

const MEDIA_RECORD: &str = "application/vnd.buildkit.historyrecord.v0";
const MEDIA_STATUS_LOG: &str = "application/vnd.buildkit.status.v0";
const MEDIA_SOLVE_STATUS: &str = "application/vnd.buildkit.solvestatus.v0";
const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";
const MEDIA_RPC_STATUS: &str = "application/vnd.googeapis.google.rpc.status+proto";
const REFERENCE_ANNOTATION: &str = "vnd.buildkit.history.reference";
/// JSON documents kept from the archive; larger ones are damage.
const SMALL_BLOB_BYTES: u64 = 32 * 1024 * 1024;
/// Binary blobs kept whole (status logs of small builds, error details); larger ones are
/// decoded as status logs while they stream by.
const KEPT_BINARY_BYTES: u64 = 4 * 1024 * 1024;
/// Large status logs decoded at once; past this, the chosen one is read in a second pass.
const STREAMED_LOGS: usize = 8;
/// All kept blobs together. Real ones come to a few MB; past this the bundle is damaged or a
/// decompression bomb, and reading on would only exhaust memory.
const SMALL_BLOBS_TOTAL_BYTES: usize = 256 * 1024 * 1024;
/// Nested indexes followed below `index.json`: a record is one or two levels down.
const MAX_INDEX_DEPTH: usize = 8;

/// Why a bundle cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot open: {0}")]
    Open(#[source] std::io::Error),
    #[error("not a gzip-compressed tar: {0}")]
    NotTar(#[source] std::io::Error),
    #[error("damaged bundle (gzip/tar): {0}")]
    Damaged(#[source] std::io::Error),
    #[error("the bundle is damaged: cannot read {name}: {source}")]
    Entry {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the bundle's JSON documents exceed {} MiB: it is damaged or not a build-history export",
        .0 >> 20
    )]
    TooLarge(usize),
    #[error("no readable index.json: not an OCI layout")]
    NoIndex,
    #[error("the bundle holds no build-history record")]
    NoRecord,
    #[error("no record `{wanted}` in the bundle (records: {})", .records.join(", "))]
    NoSuchRecord {
        wanted: String,
        records: Vec<String>,
    },
    #[error("manifest {0} is missing")]
    NoManifest(String),
    #[error("bad status log digest {0}")]
    BadDigest(String),
    #[error("status log {0} is missing from the bundle")]
    NoStatusLog(String),
    #[error(transparent)]
    StatusLog(#[from] StatusLogError),
}

impl BundleError {
    /// Stopping here still leaves the blobs read before usable.
    fn after_some(&self) -> bool {
        matches!(
            self,
            BundleError::Damaged(_) | BundleError::Entry { .. } | BundleError::TooLarge(_)
        )
    }
}

pub fn read_bundle(path: &Path, wanted_ref: Option<&str>) -> Result<Fragment, ReadError> {
    read_bundle_within(path, wanted_ref, Budget::default())
}

fn read_bundle_within(
    path: &Path,
    wanted_ref: Option<&str>,
    budget: Budget,
) -> Result<Fragment, ReadError> {
    let name = path.display().to_string();
    let malformed = |detail: String| ReadError::Malformed {
        path: name.clone(),
        detail,
    };
    let contents = Contents::read(path, budget).map_err(|e| malformed(e.to_string()))?;
    // Damage after the documents were read (a bundle cut at its very end) leaves them usable.
    let with_damage = |e: BundleError| match &contents.damage {
        Some(damage) => format!("{e} ({damage})"),
        None => e.to_string(),
    };
    let documents = Documents::new(&contents.json);
    let index = documents
        .get_path("index.json")
        .ok_or_else(|| malformed(with_damage(BundleError::NoIndex)))?;
    let mut index_notes = Vec::new();
    let records = list_records(&index, &documents, &mut index_notes);
    if records.is_empty() {
        let mut detail = with_damage(BundleError::NoRecord);
        if !index_notes.is_empty() {
            detail = format!("{detail} ({})", index_notes.join("; "));
        }
        return Err(malformed(detail));
    }
    let mut notes: Notes = contents.damage.iter().cloned().chain(index_notes).collect();
    let chosen = match wanted_ref {
        Some(want) => records
            .iter()
            .find(|r| {
                r.reference.as_deref() == Some(want)
                    || record_head(r, &documents)
                        .and_then(|h| h.reference.clone())
                        .as_deref()
                        == Some(want)
            })
            .ok_or_else(|| {
                malformed(
                    BundleError::NoSuchRecord {
                        wanted: want.to_string(),
                        records: records.iter().filter_map(|r| r.reference.clone()).collect(),
                    }
                    .to_string(),
                )
            })?,
        None => {
            let newest = newest_record(&records, &documents);
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
    let manifest = documents.get(&chosen.manifest_digest).ok_or_else(|| {
        malformed(BundleError::NoManifest(chosen.manifest_digest.clone()).to_string())
    })?;

    let mut fragments: Vec<(crate::readers::InputFormat, Fragment)> = Vec::new();
    let config = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .and_then(|d| documents.get(d));
    if let Some(config) = &config {
        match read_history_record(config) {
            Ok(f) => fragments.push((crate::readers::InputFormat::History, f)),
            Err(e) => notes.push(format!("history record: {e}")),
        }
    }
    // The failing vertex and its Dockerfile line, from the record's error details.
    let failure = layers(&manifest)
        .find(|(media, _)| *media == MEDIA_RPC_STATUS)
        .map(|(_, digest)| digest.to_string())
        .or_else(|| {
            config
                .as_ref()
                .and_then(|c| c.pointer("/externalError/digest"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .and_then(|digest| contents.binary.get(&blob_path(&digest)?))
        .and_then(|bytes| parse_external_error(bytes));
    let mut progress: Option<StatusAccumulator> = None;
    for (media, digest) in layers(&manifest) {
        match media {
            MEDIA_STATUS_LOG => {
                let (accumulator, problem) = contents.status_log(path, digest);
                if let Some(problem) = problem {
                    notes.push((ProblemKind::StatusLog, problem.to_string()));
                }
                progress = Some(accumulator);
            }
            MEDIA_SOLVE_STATUS if progress.is_none() => {
                if let Some(value) = documents.get(digest)
                    && let Ok(status) = SolveStatus::deserialize(&*value)
                {
                    let mut acc = StatusAccumulator::new();
                    acc.push(status);
                    progress = Some(acc);
                }
            }
            MEDIA_IN_TOTO => {
                if let Some(p) = documents.get(digest).as_deref().and_then(provenance::parse) {
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
    if let Some(mut accumulator) = progress {
        if let Some(failure) = &failure
            && let Some(line) = failure.dockerfile_line
        {
            match &failure.vertex_digest {
                Some(vertex) => accumulator.set_dockerfile_line(vertex, line),
                None => accumulator.set_dockerfile_line_of_failed_step(line),
            }
        }
        accumulator.set_source(&name);
        fragments.push((
            crate::readers::InputFormat::Rawjson,
            Fragment {
                build: accumulator.finish(),
                ..Fragment::default()
            },
        ));
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

/// `(mediaType, digest)` of a manifest's layers.
fn layers(manifest: &Value) -> impl Iterator<Item = (&str, &str)> {
    manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|layer| {
            let media = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
            Some((media, layer.get("digest").and_then(Value::as_str)?))
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

/// The bundle's JSON documents, each parsed once however often it is looked up.
struct Documents<'c> {
    raw: &'c HashMap<String, Vec<u8>>,
    parsed: RefCell<HashMap<String, Option<Rc<Value>>>>,
    heads: RefCell<HashMap<String, Option<Rc<RecordHead>>>>,
    /// Documents parsed, to show each is parsed once.
    parses: std::cell::Cell<usize>,
}

impl<'c> Documents<'c> {
    fn new(raw: &'c HashMap<String, Vec<u8>>) -> Self {
        Documents {
            raw,
            parsed: RefCell::new(HashMap::new()),
            heads: RefCell::new(HashMap::new()),
            parses: std::cell::Cell::new(0),
        }
    }

    fn get(&self, digest: &str) -> Option<Rc<Value>> {
        self.get_path(&blob_path(digest)?)
    }

    fn get_path(&self, path: &str) -> Option<Rc<Value>> {
        if let Some(parsed) = self.parsed.borrow().get(path) {
            return parsed.clone();
        }
        let parsed = self.raw.get(path).and_then(|bytes| {
            self.parses.set(self.parses.get() + 1);
            serde_json::from_slice::<Value>(bytes).ok().map(Rc::new)
        });
        self.parsed
            .borrow_mut()
            .insert(path.to_string(), parsed.clone());
        parsed
    }

    /// The fields of a history record needed to choose among records, without building the
    /// whole (possibly large) document.
    fn head(&self, digest: &str) -> Option<Rc<RecordHead>> {
        let path = blob_path(digest)?;
        if let Some(head) = self.heads.borrow().get(&path) {
            return head.clone();
        }
        let head = self.read_head(&path).map(Rc::new);
        self.heads.borrow_mut().insert(path, head.clone());
        head
    }

    fn read_head(&self, path: &str) -> Option<RecordHead> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "Ref")]
            reference: Option<String>,
            #[serde(rename = "CreatedAt")]
            created_at: Option<Value>,
        }
        let raw = self.raw.get(path)?;
        self.parses.set(self.parses.get() + 1);
        let head: Head = serde_json::from_slice(raw).ok()?;
        Some(RecordHead {
            reference: head.reference,
            created_at: head.created_at.as_ref().and_then(parse_time),
        })
    }
}

struct RecordHead {
    reference: Option<String>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// index.json -> manifests, following nested indexes (several records), each index once
/// and no deeper than [`MAX_INDEX_DEPTH`].
fn list_records(
    index: &Value,
    documents: &Documents<'_>,
    notes: &mut Vec<String>,
) -> Vec<RecordRef> {
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    collect_records(index, documents, &mut visited, 0, notes, &mut out);
    out
}

fn collect_records(
    index: &Value,
    documents: &Documents<'_>,
    visited: &mut HashSet<String>,
    depth: usize,
    notes: &mut Vec<String>,
    out: &mut Vec<RecordRef>,
) {
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
            if !visited.insert(digest.to_string()) {
                notes.push(format!(
                    "the bundle's index lists {digest} again, inside itself: ignored"
                ));
            } else if depth + 1 > MAX_INDEX_DEPTH {
                notes.push(format!(
                    "the bundle's indexes nest deeper than {MAX_INDEX_DEPTH} levels: {digest} ignored"
                ));
            } else if let Some(nested) = documents.get(digest) {
                collect_records(&nested, documents, visited, depth + 1, notes, out);
            }
            continue;
        }
        if out.iter().any(|r: &RecordRef| r.manifest_digest == digest) {
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
}

fn record_head(r: &RecordRef, documents: &Documents<'_>) -> Option<Rc<RecordHead>> {
    let manifest = documents.get(&r.manifest_digest)?;
    let config = manifest.get("config")?;
    if config.get("mediaType").and_then(Value::as_str) != Some(MEDIA_RECORD) {
        return None;
    }
    documents.head(config.get("digest")?.as_str()?)
}

fn newest_record<'a>(records: &'a [RecordRef], documents: &Documents<'_>) -> &'a RecordRef {
    records
        .iter()
        .max_by_key(|r| {
            record_head(r, documents)
                .and_then(|h| h.created_at)
                .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
                .unwrap_or(i64::MIN)
        })
        .unwrap_or(&records[0])
}

/// What the one pass over the archive kept.
#[derive(Default)]
struct Contents {
    /// JSON documents by path.
    json: HashMap<String, Vec<u8>>,
    /// Small binary blobs by path.
    binary: HashMap<String, Vec<u8>>,
    /// Large binary blobs, decoded as status logs while they streamed by.
    streamed: RefCell<HashMap<String, (StatusAccumulator, Option<StatusLogError>)>>,
    /// What stopped the reading early when the bundle is damaged.
    damage: Option<String>,
}

#[derive(Clone, Copy)]
struct Budget {
    total: usize,
    kept_binary: u64,
    streamed_logs: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            total: SMALL_BLOBS_TOTAL_BYTES,
            kept_binary: KEPT_BINARY_BYTES,
            streamed_logs: STREAMED_LOGS,
        }
    }
}

impl Contents {
    fn read(path: &Path, budget: Budget) -> Result<Contents, BundleError> {
        let mut contents = Contents::default();
        let mut archive = open_tar(path)?;
        let entries = archive.entries().map_err(BundleError::NotTar)?;
        let mut total = 0usize;
        let mut streamed = 0usize;
        let stop = |contents: &mut Contents, e: BundleError| -> Result<(), BundleError> {
            if contents.json.is_empty() && contents.binary.is_empty() || !e.after_some() {
                return Err(e);
            }
            contents.damage = Some(match e {
                BundleError::Damaged(e) => format!(
                    "the bundle is damaged after {} files: {e}",
                    contents.json.len() + contents.binary.len()
                ),
                other => other.to_string(),
            });
            Ok(())
        };
        for entry in entries {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    stop(&mut contents, BundleError::Damaged(e))?;
                    break;
                }
            };
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
                .unwrap_or_default();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            let size = entry.size();
            let mut head = [0u8; 1];
            let first = match read_head(&mut entry, &mut head) {
                Ok(first) => first,
                Err(source) => {
                    stop(&mut contents, BundleError::Entry { name, source })?;
                    break;
                }
            };
            let is_json = matches!(first, Some(b'{' | b'[' | b' ' | b'\n' | b'\t' | b'\r'));
            if is_json && size > SMALL_BLOB_BYTES {
                continue;
            }
            if !is_json && size > budget.kept_binary {
                // A status log, most likely: decoded now, kept if the chosen record names it.
                if streamed < budget.streamed_logs {
                    streamed += 1;
                    let mut acc = StatusAccumulator::new();
                    let reader = head[..usize::from(first.is_some())].chain(&mut entry);
                    let problem = StatusLogReader::default().decode(reader, &mut acc).err();
                    contents.streamed.get_mut().insert(name, (acc, problem));
                }
                continue;
            }
            // Sized by what arrives, not by the header's claim.
            let mut bytes = head[..usize::from(first.is_some())].to_vec();
            if let Err(source) = entry.read_to_end(&mut bytes) {
                stop(&mut contents, BundleError::Entry { name, source })?;
                break;
            }
            total += bytes.len();
            if total > budget.total {
                stop(&mut contents, BundleError::TooLarge(budget.total))?;
                break;
            }
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if matches!(first, Some(b'{' | b'[')) {
                contents.json.insert(name, bytes);
            } else {
                contents.binary.insert(name, bytes);
            }
        }
        Ok(contents)
    }

    /// The status log at `digest`, decoded, and what stopped its reading early.
    fn status_log(&self, path: &Path, digest: &str) -> (StatusAccumulator, Option<BundleError>) {
        let mut acc = StatusAccumulator::new();
        let Some(wanted) = blob_path(digest) else {
            return (acc, Some(BundleError::BadDigest(digest.to_string())));
        };
        if let Some((acc, problem)) = self.streamed.borrow_mut().remove(&wanted) {
            return (acc, problem.map(BundleError::from));
        }
        if let Some(bytes) = self.binary.get(&wanted) {
            let problem = StatusLogReader::default()
                .decode(bytes.as_slice(), &mut acc)
                .err()
                .map(BundleError::from);
            return (acc, problem);
        }
        // Not kept: more large blobs than were decoded at once. Read it again.
        let problem = reread_status_log(path, &wanted, &mut acc)
            .err()
            .map(|e| match e {
                BundleError::NoStatusLog(_) => BundleError::NoStatusLog(digest.to_string()),
                other => other,
            });
        (acc, problem)
    }
}

fn reread_status_log(
    path: &Path,
    wanted: &str,
    acc: &mut StatusAccumulator,
) -> Result<(), BundleError> {
    let mut archive = open_tar(path)?;
    for entry in archive.entries().map_err(BundleError::NotTar)? {
        let entry = entry.map_err(BundleError::Damaged)?;
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
            .unwrap_or_default();
        if name == wanted {
            return Ok(StatusLogReader::default().decode(entry, acc)?);
        }
    }
    Err(BundleError::NoStatusLog(wanted.to_string()))
}

/// The first byte of an entry (`None` when it is empty).
fn read_head(entry: &mut impl Read, head: &mut [u8; 1]) -> std::io::Result<Option<u8>> {
    loop {
        match entry.read(head) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(head[0])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

type Archive = tar::Archive<Inflated>;

fn open_tar(path: &Path) -> Result<Archive, BundleError> {
    let file = File::open(path).map_err(BundleError::Open)?;
    Ok(tar::Archive::new(Inflated::spawn(file)))
}

/// Decompressed bytes of a gzip file, inflated ahead on another thread: decompression is
/// the larger part of reading a bundle, and it overlaps with decoding this way.
struct Inflated {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Emptied chunks go back to the inflating thread, so memory stays at a few chunks.
    recycle: std::sync::mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
}

/// Bytes per chunk handed from the inflating thread, and chunks in flight.
const INFLATE_CHUNK_BYTES: usize = 1 << 20;
const INFLATE_CHUNKS: usize = 4;

impl Inflated {
    fn spawn(file: File) -> Inflated {
        let (send, chunks) = std::sync::mpsc::sync_channel(INFLATE_CHUNKS);
        let (recycle, returned) = std::sync::mpsc::sync_channel::<Vec<u8>>(INFLATE_CHUNKS + 2);
        std::thread::spawn(move || {
            let mut gzip = GzDecoder::new(BufReader::with_capacity(1 << 16, file));
            loop {
                let mut chunk = returned.try_recv().unwrap_or_default();
                chunk.resize(INFLATE_CHUNK_BYTES, 0);
                let mut filled = 0;
                let result = loop {
                    match gzip.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                let last = filled == 0 || result.is_err();
                let message = match result {
                    Ok(()) => Ok(chunk),
                    Err(e) if filled == 0 => Err(e),
                    Err(e) => {
                        // Hand over what was inflated, then the error.
                        if send.send(Ok(chunk)).is_err() {
                            return;
                        }
                        Err(e)
                    }
                };
                // The reader went away (it stopped early): stop inflating.
                if send.send(message).is_err() || last {
                    return;
                }
            }
        });
        Inflated {
            chunks,
            recycle,
            chunk: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl Read for Inflated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.chunks.recv() {
                Ok(next) => next,
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            };
            let chunk = match next {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            if chunk.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let used = std::mem::replace(&mut self.chunk, chunk);
            let _ = self.recycle.try_send(used);
            self.at = 0;
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// `[u32 LE length][StatusResponse]...`; stops at the first damaged message, keeping the rest.
pub fn decode_status_log(
    reader: impl Read,
    acc: &mut StatusAccumulator,
) -> Result<(), StatusLogError> {
    StatusLogReader::default().decode(reader, acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use status_log::tests::{bytes_field, framed, vertex_message};

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
    fn the_pass_keeps_documents_and_small_blobs_within_a_budget() {
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
        let budget = |total| Budget {
            total,
            ..Budget::default()
        };
        let contents = Contents::read(&path, budget(1 << 20)).unwrap();
        assert!(contents.damage.is_none(), "{:?}", contents.damage);
        let mut names: Vec<&str> = contents.json.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["blobs/sha256/one", "blobs/sha256/two", "index.json"]
        );
        assert!(contents.binary.contains_key("blobs/sha256/log"));

        // Past the budget, reading stops with what was kept so far and says why.
        let contents = Contents::read(&path, budget(5300)).unwrap();
        assert_eq!(contents.json.len() + contents.binary.len(), 3);
        assert!(contents.damage.unwrap().contains("exceed"));
        let err = Contents::read(&path, budget(50)).err().unwrap();
        assert!(matches!(err, BundleError::TooLarge(50)), "{err}");
    }

    fn manifest(log: &str, config: &str) -> Vec<u8> {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": MEDIA_RECORD, "digest": config},
            "layers": [{"mediaType": MEDIA_STATUS_LOG, "digest": log}],
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_large_status_log_is_decoded_as_it_streams_by() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = framed(&vertex_message("sha256:a", "[1/1] RUN x", Some(1)));
        // Output enough to pass the size of blobs kept whole.
        let mut message = Vec::new();
        let mut chunk = Vec::new();
        bytes_field(&mut chunk, 1, b"sha256:a");
        bytes_field(&mut chunk, 4, &vec![b'x'; 1 << 20]);
        bytes_field(&mut message, 3, &chunk);
        for _ in 0..5 {
            log.extend(framed(&message));
        }
        let index = serde_json::json!({"manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:m",
        }]});
        let path = bundle(
            dir.path(),
            &[
                ("blobs/sha256/c", br#"{"Ref": "r1"}"#.to_vec()),
                ("blobs/sha256/log", log),
                ("blobs/sha256/m", manifest("sha256:log", "sha256:c")),
                ("index.json", index.to_string().into_bytes()),
            ],
        );
        let contents = Contents::read(&path, Budget::default()).unwrap();
        assert!(contents.binary.is_empty());
        assert!(contents.streamed.borrow().contains_key("blobs/sha256/log"));
        let fragment = read_bundle(&path, None).unwrap();
        assert_eq!(fragment.build.steps.len(), 1);
        assert_eq!(fragment.build.build.build_ref.as_deref(), Some("r1"));
        assert!(fragment.notes.0.is_empty(), "{:?}", fragment.notes);

        // Past the logs decoded at once, the chosen one is read again, with the same result.
        let none_at_once = Budget {
            streamed_logs: 0,
            ..Budget::default()
        };
        let contents = Contents::read(&path, none_at_once).unwrap();
        assert!(contents.streamed.borrow().is_empty() && contents.binary.is_empty());
        let again = read_bundle_within(&path, None, none_at_once).unwrap();
        assert_eq!(again.build, fragment.build);
        assert!(again.notes.0.is_empty(), "{:?}", again.notes);
    }

    #[test]
    fn nested_indexes_that_list_themselves_end_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let nested = |digest: &str| {
            serde_json::json!({"manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest,
            }]})
            .to_string()
            .into_bytes()
        };
        // index.json -> a -> a, and index.json -> b -> c -> b.
        let path = bundle(
            dir.path(),
            &[
                ("blobs/sha256/a", nested("sha256:a")),
                ("blobs/sha256/b", nested("sha256:c")),
                ("blobs/sha256/c", nested("sha256:b")),
                (
                    "index.json",
                    serde_json::json!({"manifests": [
                        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:a"},
                        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:b"},
                    ]})
                    .to_string()
                    .into_bytes(),
                ),
            ],
        );
        let err = read_bundle(&path, None).unwrap_err().to_string();
        assert!(err.contains("holds no build-history record"), "{err}");
        assert!(err.contains("lists sha256:a again"), "{err}");
        assert!(err.contains("lists sha256:b again"), "{err}");
    }

    #[test]
    fn records_sharing_a_config_parse_it_once() {
        let config = format!(
            r#"{{"Ref": "shared", "CreatedAt": "2026-11-29T13:00:00Z", "FrontendAttrs": {{"x": "{}"}}}}"#,
            "y".repeat(1 << 20)
        );
        let mut raw = HashMap::new();
        raw.insert("blobs/sha256/config".to_string(), config.into_bytes());
        let mut records = Vec::new();
        for n in 0..100 {
            raw.insert(
                format!("blobs/sha256/m{n}"),
                serde_json::json!({"config": {"mediaType": MEDIA_RECORD, "digest": "sha256:config"}})
                    .to_string()
                    .into_bytes(),
            );
            records.push(RecordRef {
                manifest_digest: format!("sha256:m{n}"),
                reference: None,
            });
        }
        let documents = Documents::new(&raw);
        newest_record(&records, &documents);
        assert!(records.iter().all(|r| {
            record_head(r, &documents)
                .and_then(|h| h.reference.clone())
                .as_deref()
                == Some("shared")
        }));
        // 100 manifests and the one config.
        assert_eq!(documents.parses.get(), 101);
    }

    #[test]
    fn indexes_nested_past_the_limit_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for level in 0..20 {
            files.push((
                format!("blobs/sha256/i{level}"),
                serde_json::json!({"manifests": [{
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": format!("sha256:i{}", level + 1),
                }]})
                .to_string()
                .into_bytes(),
            ));
        }
        files.push((
            "index.json".to_string(),
            br#"{"manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:i0"}]}"#.to_vec(),
        ));
        let files: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        let path = bundle(dir.path(), &files);
        let err = read_bundle(&path, None).unwrap_err().to_string();
        assert!(err.contains("nest deeper than 8 levels"), "{err}");
    }
}
