//! BuildKit's `client.SolveStatus`, the unit of every progress stream: rawjson lines, the
//! aggregated `application/vnd.buildkit.solvestatus.v0` JSON, and (decoded from protobuf) the
//! status log inside build-history records and `.dockerbuild` bundles.
//!
//! Readers feed status updates to `StatusAccumulator`, which keeps only per-vertex state
//! (never the whole stream) and produces the normalized `Build`. Two ways in: the owned
//! updates below (`on_vertex`, `on_status`, `on_log`, ...), and borrowed ones
//! (`vertex`, `status`, `log_base64`, `log_bytes`) for readers that parse in place, so a
//! large stream is read without an allocation per update. Output is kept raw per vertex and
//! decoded at the end, only for the steps whose last lines the report shows.
//!
//! Per-vertex and per-warning collections are indexed and bounded ([`limits`]); what goes
//! past a bound is counted and reported as a problem, never silently dropped.

mod steps;
mod tail;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{Build, BuildWarning, Problem, ProblemKind};
use tail::{Encoding, OutputTail, TailBudget};

pub use steps::StreamError;
pub(crate) use steps::order_steps;

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
    #[serde(rename = "sourceInfo", deserialize_with = "null_as_default")]
    pub source_info: WarningSource,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WarningSource {
    pub filename: String,
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

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn base64_bytes<'de, D>(d: D) -> Result<Vec<u8>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Cow<'de, str>>::deserialize(d)?
        .map(|s| tail::decode_base64(s.as_bytes()))
        .unwrap_or_default())
}

fn base64_list<'de, D>(d: D) -> Result<Vec<Vec<u8>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Vec<Cow<'de, str>>>::deserialize(d)?
        .unwrap_or_default()
        .iter()
        .map(|s| tail::decode_base64(s.as_bytes()))
        .collect())
}

/// A vertex update borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct VertexUpdate<'a, S = &'a str> {
    pub digest: &'a str,
    pub name: &'a str,
    pub inputs: &'a [S],
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub cached: bool,
    pub error: Option<&'a str>,
}

/// How much the accumulator keeps, whatever the stream holds.
pub mod limits {
    /// Distinct vertices; a real build has hundreds.
    pub const VERTICES: usize = 200_000;
    /// Distinct warnings kept in the report.
    pub const WARNINGS: usize = 1_000;
    /// Runs (start times) per vertex.
    pub const RUNS: usize = 10_000;
    /// Distinct layers per vertex (downloaded or written).
    pub const LAYERS: usize = 10_000;
    /// Distinct push targets per export.
    pub const PUSHES: usize = 1_000;
    /// Distinct names per vertex (a bake target names a shared vertex its own way).
    pub const NAMES: usize = 16;
}

/// Vertices remembered without a lookup.
const RECENT: usize = 4;

/// Builds the normalized model from a stream of status updates, keeping only per-vertex state.
#[derive(Debug)]
pub struct StatusAccumulator {
    index: HashMap<Box<str>, u32>,
    vertices: Vec<VertexState>,
    /// The vertices of the latest updates, most recent first: consecutive updates are mostly
    /// about the few vertices running at the time.
    recent: [u32; RECENT],
    warnings: Vec<BuildWarning>,
    warning_index: HashMap<u64, Vec<u32>>,
    tails: TailBudget,
    /// Plain logs state no `cached` flag for remote-cache hits: infer them (see `finish`).
    infer_remote_hits: bool,
    /// Progress formats without timestamps report durations directly.
    has_timestamps: bool,
    /// Counts updates, to order events of records without timestamps.
    sequence: u64,
    overflow: Overflow,
    /// Names the problems the accumulator reports.
    source: String,
}

/// What went past a bound, counted for the problem that says so.
#[derive(Debug, Default)]
struct Overflow {
    vertices: u64,
    warnings: u64,
    runs: u64,
    layers: u64,
    pushes: u64,
    names: u64,
}

#[derive(Debug, Default)]
pub(crate) struct VertexState {
    digest: Box<str>,
    /// Every distinct name, in order of appearance; `name_at` is the latest.
    names: Vec<String>,
    name_at: usize,
    inputs: Vec<String>,
    cached: bool,
    /// Update number of the first `cached` flag (records without timestamps).
    cached_at: Option<u64>,
    error: Option<String>,
    error_at: Option<u64>,
    /// Run start -> completion, per run of the vertex (a vertex can run several times).
    runs: HashMap<DateTime<Utc>, Option<DateTime<Utc>>>,
    started: bool,
    completed: bool,
    /// Duration stated by the record itself (plain logs), in milliseconds.
    stated_duration_ms: Option<u64>,
    /// Largest `total` seen per layer status id (`sha256:...`).
    layer_bytes: HashMap<String, u64>,
    saw_output: bool,
    output: OutputTail,
    manifest_type: Option<String>,
    /// BuildKit repeats a layer's `writing layer` status as it progresses: count ids once.
    layers_written: HashSet<String>,
    skipped_empty: bool,
    pushed: Vec<String>,
    pushed_index: HashSet<String>,
    dockerfile_line: Option<u32>,
}

impl VertexState {
    pub(crate) fn name(&self) -> &str {
        self.names.get(self.name_at).map_or("", String::as_str)
    }
}

impl Default for StatusAccumulator {
    fn default() -> Self {
        StatusAccumulator {
            index: HashMap::new(),
            vertices: Vec::new(),
            recent: [u32::MAX; RECENT],
            warnings: Vec::new(),
            warning_index: HashMap::new(),
            tails: TailBudget::default(),
            infer_remote_hits: false,
            has_timestamps: false,
            sequence: 0,
            overflow: Overflow::default(),
            source: String::new(),
        }
    }
}

impl StatusAccumulator {
    pub fn new() -> Self {
        StatusAccumulator {
            has_timestamps: true,
            ..Self::default()
        }
    }

    /// For records that carry no `cached` flag for remote-cache hits nor timestamps (plain logs).
    pub fn for_plain_logs() -> Self {
        StatusAccumulator {
            infer_remote_hits: true,
            has_timestamps: false,
            ..Self::default()
        }
    }

    /// The file the updates come from, named by the problems `finish` reports.
    pub fn set_source(&mut self, source: &str) {
        self.source = source.to_string();
    }

    pub fn push(&mut self, status: SolveStatus) {
        for vertex in status.vertexes {
            self.on_vertex(vertex);
        }
        for row in status.statuses {
            self.on_status(row);
        }
        for log in status.logs {
            self.on_log(log);
        }
        for warning in status.warnings {
            self.on_warning(warning);
        }
    }

    /// The state of `digest`, created on first sight; `None` past the vertex bound.
    fn state(&mut self, digest: &str) -> Option<(u32, &mut VertexState)> {
        let i = self.state_index(digest)?;
        Some((i, &mut self.vertices[i as usize]))
    }

    fn state_index(&mut self, digest: &str) -> Option<u32> {
        self.sequence += 1;
        for at in 0..RECENT {
            let i = self.recent[at];
            if let Some(state) = self.vertices.get(i as usize)
                && *state.digest == *digest
            {
                self.recent.copy_within(0..at, 1);
                self.recent[0] = i;
                return Some(i);
            }
        }
        let i = match self.index.get(digest) {
            Some(&i) => i,
            None => {
                if self.vertices.len() >= limits::VERTICES {
                    self.overflow.vertices += 1;
                    return None;
                }
                let i = self.vertices.len() as u32;
                self.index.insert(digest.into(), i);
                self.vertices.push(VertexState {
                    digest: digest.into(),
                    ..VertexState::default()
                });
                i
            }
        };
        self.recent.copy_within(0..RECENT - 1, 1);
        self.recent[0] = i;
        Some(i)
    }

    pub fn on_vertex(&mut self, vertex: Vertex) {
        self.vertex(VertexUpdate {
            digest: &vertex.digest,
            name: &vertex.name,
            inputs: &vertex.inputs,
            started: vertex.started,
            completed: vertex.completed,
            cached: vertex.cached,
            error: vertex.error.as_deref(),
        });
    }

    /// A vertex update, borrowed.
    pub fn vertex<S: AsRef<str>>(&mut self, vertex: VertexUpdate<'_, S>) {
        if vertex.digest.is_empty() {
            return;
        }
        let sequence = self.sequence + 1;
        let Some(i) = self.state_index(vertex.digest) else {
            return;
        };
        let state = &mut self.vertices[i as usize];
        let completed_before = state.completed && state.error.is_none();
        if !vertex.name.is_empty() && state.name() != vertex.name {
            match state.names.iter().position(|n| n == vertex.name) {
                Some(at) => state.name_at = at,
                None if state.names.len() < limits::NAMES => {
                    state.names.push(vertex.name.to_string());
                    state.name_at = state.names.len() - 1;
                }
                None => self.overflow.names += 1,
            }
        }
        if !vertex.inputs.is_empty()
            && (state.inputs.len() != vertex.inputs.len()
                || state
                    .inputs
                    .iter()
                    .zip(vertex.inputs)
                    .any(|(a, b)| a != b.as_ref()))
        {
            state.inputs = vertex
                .inputs
                .iter()
                .map(|s| s.as_ref().to_string())
                .collect();
        }
        if vertex.cached && !state.cached {
            state.cached = true;
            state.cached_at = Some(sequence);
        }
        if let Some(error) = vertex.error.filter(|e| !e.is_empty()) {
            if state.error.as_deref() != Some(error) {
                state.error = Some(error.to_string());
            }
            state.error_at.get_or_insert(sequence);
            state.completed = true;
        }
        if let Some(started) = vertex.started {
            state.started = true;
            if let Some(completed) = state.runs.get_mut(&started) {
                if vertex.completed.is_some() {
                    *completed = vertex.completed;
                }
            } else if state.runs.len() < limits::RUNS {
                state.runs.insert(started, vertex.completed);
            } else {
                self.overflow.runs += 1;
            }
        }
        if vertex.completed.is_some() {
            state.completed = true;
            state.started = true;
        }
        let completed_ok = state.completed && state.error.is_none();
        if completed_ok && !completed_before && state.output.len() > 0 {
            self.tails.completed(i);
        }
    }

    pub fn on_status(&mut self, row: VertexStatus) {
        self.status(&row.vertex, &row.id, row.total);
    }

    /// A status row of a vertex: its id and total size, the only fields the report uses.
    pub fn status(&mut self, vertex: &str, id: &str, total: i64) {
        if vertex.is_empty() {
            return;
        }
        let Some(i) = self.state_index(vertex) else {
            return;
        };
        let state = &mut self.vertices[i as usize];
        let id = id.trim();
        if let Some(kind) = id.strip_prefix("inferred cache manifest type:") {
            let kind = kind.trim().trim_end_matches(" done");
            if state.manifest_type.as_deref() != Some(kind) {
                state.manifest_type = Some(kind.to_string());
            }
        } else if id.starts_with("writing layer ") {
            // `writing layer sha256:... 0.1s done` and its earlier updates are one layer.
            let layer = id.split_whitespace().nth(2).unwrap_or(id);
            if !state.layers_written.contains(layer) {
                if state.layers_written.len() < limits::LAYERS {
                    state.layers_written.insert(layer.to_string());
                } else {
                    self.overflow.layers += 1;
                }
            }
        } else if id.starts_with("skipping cache export for empty result") {
            state.skipped_empty = true;
        } else if let Some(target) = id.strip_prefix("pushing manifest for ") {
            let target = target.trim();
            if !state.pushed_index.contains(target) {
                if state.pushed.len() < limits::PUSHES {
                    state.pushed.push(target.to_string());
                    state.pushed_index.insert(target.to_string());
                } else {
                    self.overflow.pushes += 1;
                }
            }
        } else if id.starts_with("sha256:") && !id.contains(' ') && total > 0 {
            let total = total as u64;
            if let Some(seen) = state.layer_bytes.get_mut(id) {
                *seen = (*seen).max(total);
            } else if state.layer_bytes.len() < limits::LAYERS {
                state.layer_bytes.insert(id.to_string(), total);
            } else {
                self.overflow.layers += 1;
            }
        }
    }

    pub fn on_log(&mut self, log: VertexLog) {
        self.output(&log.vertex, Encoding::Raw, &log.data);
    }

    /// Output of a vertex as rawjson carries it: base64 text, decoded only if shown.
    pub fn log_base64(&mut self, vertex: &str, data: &[u8]) {
        self.output(vertex, Encoding::Base64, data);
    }

    /// Output of a vertex as raw bytes.
    pub fn log_bytes(&mut self, vertex: &str, data: &[u8]) {
        self.output(vertex, Encoding::Raw, data);
    }

    /// Appends an output line to a vertex (plain logs deliver output line by line).
    pub fn push_log_line(&mut self, digest: &str, line: &str) {
        self.output(digest, Encoding::Line, line.as_bytes());
    }

    fn output(&mut self, vertex: &str, encoding: Encoding, data: &[u8]) {
        if vertex.is_empty() {
            return;
        }
        let Some(i) = self.state_index(vertex) else {
            return;
        };
        let state = &mut self.vertices[i as usize];
        state.saw_output = true;
        let was_empty = state.output.len() == 0;
        let grew = state.output.push(encoding, data);
        self.tails.grew(i, grew, was_empty && grew > 0);
        if self.tails.over_soft() {
            self.release_tails();
        }
    }

    /// Keeps all windows within the budget: completed vertices' output goes first.
    fn release_tails(&mut self) {
        while let Some((vertex, running)) = self.tails.next_to_release() {
            let state = &mut self.vertices[vertex as usize];
            let completed_ok = state.completed && state.error.is_none();
            if !running && !completed_ok {
                continue;
            }
            let had_output = state.output.len() > 0;
            let freed = state.output.release();
            if running && had_output && !completed_ok {
                self.tails.dropped_running += 1;
            }
            self.tails.released(freed);
        }
    }

    pub fn on_warning(&mut self, warning: VertexWarning) {
        let message = String::from_utf8_lossy(&warning.short).trim().to_string();
        if message.is_empty() {
            return;
        }
        let detail: Vec<String> = warning
            .detail
            .iter()
            .map(|d| String::from_utf8_lossy(d).trim().to_string())
            .filter(|d| !d.is_empty())
            .collect();
        let line = warning
            .range
            .first()
            .and_then(|r| u32::try_from(r.start.line).ok())
            .filter(|l| *l > 0);
        let warning = BuildWarning {
            message,
            detail: (!detail.is_empty()).then(|| detail.join("\n")),
            url: (!warning.url.is_empty()).then_some(warning.url),
            dockerfile_line: line,
            file: (!warning.source_info.filename.is_empty())
                .then_some(warning.source_info.filename),
        };
        let key = warning_key(&warning);
        let same = self.warning_index.entry(key).or_default();
        if same.iter().any(|&i| self.warnings[i as usize] == warning) {
            return;
        }
        if self.warnings.len() >= limits::WARNINGS {
            self.overflow.warnings += 1;
            return;
        }
        same.push(self.warnings.len() as u32);
        self.warnings.push(warning);
    }

    /// Records a duration stated by the record (plain logs: `DONE 1.2s`).
    pub fn set_stated_duration(&mut self, digest: &str, duration_ms: u64) {
        if let Some((_, state)) = self.state(digest) {
            state.stated_duration_ms = Some(duration_ms);
        }
    }

    /// Marks a vertex as started and/or completed when the record has no timestamps.
    pub fn mark_progress(&mut self, digest: &str, started: bool, completed: bool) {
        let Some((i, state)) = self.state(digest) else {
            return;
        };
        let completed_before = state.completed && state.error.is_none();
        state.started |= started || completed;
        state.completed |= completed;
        if !completed_before && state.completed && state.error.is_none() && state.output.len() > 0 {
            self.tails.completed(i);
        }
    }

    /// Records the Dockerfile line of the failed step when the record states it (a build
    /// error block).
    pub fn set_dockerfile_line_of_failed_step(&mut self, line: u32) {
        steps::set_line_of_failed_step(&mut self.vertices, line);
    }

    /// Records the Dockerfile line of a vertex the record names (a bundle's error details).
    pub fn set_dockerfile_line(&mut self, digest: &str, line: u32) {
        if let Some(&i) = self.index.get(digest) {
            self.vertices[i as usize].dockerfile_line = Some(line);
        }
    }

    /// The build, with every bake target's steps when the stream holds several, and builds
    /// that the stream interleaves reported together (with a problem saying so).
    pub fn finish(self) -> Build {
        let lenient = steps::Selection::Lenient;
        self.finish_selected(lenient)
            .expect("the lenient selection never fails")
    }

    /// The build of one bake target (`None`: the only one), refusing a stream that holds
    /// several builds or several targets without a choice.
    pub fn finish_target(self, target: Option<&str>) -> Result<Build, StreamError> {
        self.finish_selected(steps::Selection::Strict(target))
    }

    fn finish_selected(self, selection: steps::Selection<'_>) -> Result<Build, StreamError> {
        let source = self.source.clone();
        let mut notes = self.overflow_notes();
        let mut build = steps::build(
            &self.vertices,
            selection,
            steps::Settings {
                infer_remote_hits: self.infer_remote_hits,
                has_timestamps: self.has_timestamps,
            },
            &mut notes,
        )?;
        build.warnings = self.warnings;
        build.problems.extend(
            notes
                .into_iter()
                .map(|message| Problem::new(ProblemKind::Input, source.as_str(), message)),
        );
        Ok(build)
    }

    fn overflow_notes(&self) -> Vec<String> {
        let o = &self.overflow;
        let mut notes = Vec::new();
        let mut note = |count: u64, what: String| {
            if count > 0 {
                notes.push(what);
            }
        };
        note(
            o.vertices,
            format!(
                "more than {} vertices: {} updates of further vertices were not read",
                limits::VERTICES,
                o.vertices
            ),
        );
        note(
            o.warnings,
            format!(
                "{} more distinct warnings than the {} kept",
                o.warnings,
                limits::WARNINGS
            ),
        );
        note(
            o.runs,
            format!(
                "a vertex ran more than {} times: {} further runs are left out of its duration",
                limits::RUNS,
                o.runs
            ),
        );
        note(
            o.layers,
            format!(
                "a vertex named more than {} layers: {} further layers are not counted",
                limits::LAYERS,
                o.layers
            ),
        );
        note(
            o.pushes,
            format!(
                "an export pushed more than {} targets: {} further pushes are not listed",
                limits::PUSHES,
                o.pushes
            ),
        );
        note(
            o.names,
            format!(
                "a vertex had more than {} names: {} further names were ignored",
                limits::NAMES,
                o.names
            ),
        );
        note(
            self.tails.dropped_running,
            format!(
                "the output of {} running steps went past the memory kept for output: their last lines are not shown",
                self.tails.dropped_running
            ),
        );
        notes
    }
}

fn warning_key(warning: &BuildWarning) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    warning.message.hash(&mut hasher);
    warning.detail.hash(&mut hasher);
    warning.url.hash(&mut hasher);
    warning.dockerfile_line.hash(&mut hasher);
    warning.file.hash(&mut hasher);
    hasher.finish()
}

pub(crate) fn is_cancellation(error: &str) -> bool {
    let error = error.trim().to_ascii_lowercase();
    error.ends_with("context canceled") || error == "canceled" || error == "cancelled"
}
