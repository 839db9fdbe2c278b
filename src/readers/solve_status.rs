//! BuildKit's `client.SolveStatus`, the unit of every progress stream: rawjson lines, the
//! aggregated `application/vnd.buildkit.solvestatus.v0` JSON, and (decoded from protobuf) the
//! status log inside build-history records and `.dockerbuild` bundles.
//!
//! Readers turn their input into a sequence of `SolveStatus` values and feed them to
//! `StatusAccumulator`, which keeps only per-vertex state (never the whole stream) and
//! produces the normalized `Build`.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{
    Build, BuildStatus, BuildWarning, CacheExport, CacheImport, OutcomeStatus, ResultExport, Step,
    StepKind, StepStatus,
};
use crate::readers::vertex_name::{StepName, VertexClass, classify, reads_build_context};

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

/// Builds the normalized model from a stream of status updates, keeping only per-vertex state.
#[derive(Debug, Default)]
pub struct StatusAccumulator {
    vertices: HashMap<String, VertexState>,
    order: Vec<String>,
    warnings: Vec<BuildWarning>,
    /// Plain logs state no `cached` flag for remote-cache hits: infer them (see `finish`).
    infer_remote_hits: bool,
    /// Progress formats without timestamps report durations directly.
    has_timestamps: bool,
}

/// Lines of output kept per vertex: enough to show why a step failed.
const LOG_TAIL_LINES: usize = 20;
const LOG_LINE_MAX_CHARS: usize = 400;

#[derive(Debug, Default)]
struct VertexState {
    name: String,
    inputs: Vec<String>,
    cached: bool,
    error: Option<String>,
    /// (started, completed) per run of the vertex.
    intervals: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    started: bool,
    completed: bool,
    /// Duration stated by the record itself (plain logs), in milliseconds.
    stated_duration_ms: Option<u64>,
    /// Largest `total` seen per layer status id (`sha256:...`).
    layer_bytes: HashMap<String, u64>,
    saw_output: bool,
    log_tail: VecDeque<String>,
    partial_line: String,
    manifest_type: Option<String>,
    /// BuildKit repeats a layer's `writing layer` status as it progresses: count ids once.
    layers_written: HashSet<String>,
    skipped_empty: bool,
    pushed: Vec<String>,
    dockerfile_line: Option<u32>,
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

    fn state(&mut self, digest: &str) -> &mut VertexState {
        if !self.vertices.contains_key(digest) {
            self.order.push(digest.to_string());
        }
        self.vertices.entry(digest.to_string()).or_default()
    }

    pub fn on_vertex(&mut self, vertex: Vertex) {
        if vertex.digest.is_empty() {
            return;
        }
        let state = self.state(&vertex.digest);
        if !vertex.name.is_empty() {
            state.name = vertex.name;
        }
        if !vertex.inputs.is_empty() {
            state.inputs = vertex.inputs;
        }
        state.cached |= vertex.cached;
        if let Some(error) = vertex.error.filter(|e| !e.is_empty()) {
            state.error = Some(error);
            state.completed = true;
        }
        if let Some(started) = vertex.started {
            state.started = true;
            match state.intervals.iter_mut().find(|(s, _)| *s == started) {
                Some(interval) => {
                    if vertex.completed.is_some() {
                        interval.1 = vertex.completed;
                    }
                }
                None => state.intervals.push((started, vertex.completed)),
            }
        }
        if vertex.completed.is_some() {
            state.completed = true;
            state.started = true;
        }
    }

    pub fn on_status(&mut self, row: VertexStatus) {
        if row.vertex.is_empty() {
            return;
        }
        let state = self.state(&row.vertex);
        let id = row.id.trim();
        if let Some(kind) = id.strip_prefix("inferred cache manifest type:") {
            state.manifest_type = Some(kind.trim().trim_end_matches(" done").to_string());
        } else if id.starts_with("writing layer ") {
            // `writing layer sha256:... 0.1s done` and its earlier updates are one layer.
            let layer = id.split_whitespace().nth(2).unwrap_or(id);
            if !state.layers_written.contains(layer) {
                state.layers_written.insert(layer.to_string());
            }
        } else if id.starts_with("skipping cache export for empty result") {
            state.skipped_empty = true;
        } else if let Some(target) = id.strip_prefix("pushing manifest for ") {
            let target = target.trim().to_string();
            if !state.pushed.contains(&target) {
                state.pushed.push(target);
            }
        } else if id.starts_with("sha256:") && !id.contains(' ') && row.total > 0 {
            let total = row.total as u64;
            let seen = state.layer_bytes.entry(id.to_string()).or_default();
            *seen = (*seen).max(total);
        }
    }

    pub fn on_log(&mut self, log: VertexLog) {
        if log.vertex.is_empty() {
            return;
        }
        let state = self.state(&log.vertex);
        state.saw_output = true;
        let text = String::from_utf8_lossy(&log.data);
        let mut pending = std::mem::take(&mut state.partial_line);
        pending.push_str(&text);
        let mut lines = pending.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                // No newline yet: keep the fragment for the next chunk, bounded.
                state.partial_line = truncate_chars(line, LOG_LINE_MAX_CHARS);
                break;
            }
            state.push_log_line(line);
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
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Records a duration stated by the record (plain logs: `DONE 1.2s`).
    pub fn set_stated_duration(&mut self, digest: &str, duration_ms: u64) {
        self.state(digest).stated_duration_ms = Some(duration_ms);
    }

    /// Marks a vertex as started and/or completed when the record has no timestamps.
    pub fn mark_progress(&mut self, digest: &str, started: bool, completed: bool) {
        let state = self.state(digest);
        state.started |= started || completed;
        state.completed |= completed;
    }

    /// Records the Dockerfile line of a vertex when the record states it (a build error block).
    pub fn set_dockerfile_line_of_failed_step(&mut self, line: u32) {
        for digest in &self.order {
            if let Some(state) = self.vertices.get_mut(digest)
                && state.error.is_some()
                && matches!(classify(&state.name), VertexClass::Step(_))
                && !is_cancellation(state.error.as_deref().unwrap_or_default())
            {
                state.dockerfile_line.get_or_insert(line);
                return;
            }
        }
    }

    /// Appends an output line to a vertex (plain logs deliver output line by line).
    pub fn push_log_line(&mut self, digest: &str, line: &str) {
        let state = self.state(digest);
        state.saw_output = true;
        state.push_log_line(line);
    }

    pub fn finish(self) -> Build {
        let mut build = Build::default();
        let mut earliest: Option<DateTime<Utc>> = None;
        let mut latest: Option<DateTime<Utc>> = None;
        let context_vertices: HashSet<&str> = self
            .vertices
            .iter()
            .filter(|(_, v)| reads_build_context(&v.name))
            .map(|(d, _)| d.as_str())
            .collect();
        let mut steps = Vec::new();
        for (position, digest) in self.order.iter().enumerate() {
            let Some(state) = self.vertices.get(digest) else {
                continue;
            };
            for (s, c) in &state.intervals {
                earliest = Some(earliest.map_or(*s, |e| e.min(*s)));
                if let Some(c) = c {
                    latest = Some(latest.map_or(*c, |l| l.max(*c)));
                }
            }
            let duration_ms = state.duration_ms();
            let outcome = state.outcome();
            match classify(&state.name) {
                VertexClass::Step(name) => {
                    let step = self.make_step(digest, state, name, &context_vertices);
                    steps.push((position, step));
                }
                VertexClass::CacheImport {
                    reference,
                    cache_type,
                } => build.cache_imports.push(CacheImport {
                    reference,
                    cache_type,
                    status: outcome,
                    error: state.error.clone(),
                    manifest_type: state.manifest_type.clone(),
                    duration_ms,
                    ..CacheImport::default()
                }),
                VertexClass::CacheExport { cache_type } => build.cache_exports.push(CacheExport {
                    name: state.name.clone(),
                    cache_type,
                    status: outcome,
                    error: state.error.clone(),
                    layers_written: u32::try_from(state.layers_written.len())
                        .ok()
                        .filter(|n| *n > 0),
                    skipped_empty: state.skipped_empty,
                    duration_ms,
                    ..CacheExport::default()
                }),
                VertexClass::ResultExport => build.exports.push(ResultExport {
                    name: state.name.clone(),
                    status: outcome,
                    error: state.error.clone(),
                    duration_ms,
                    pushed: state.pushed.clone(),
                }),
                VertexClass::Internal | VertexClass::Other => {}
            }
        }
        build.steps = order_steps(steps);
        // Steps that never started are "not run" only after a failure; otherwise the record
        // ends before they did (a truncated log, a build still running).
        let failed = build
            .steps
            .iter()
            .any(|s| matches!(s.status, StepStatus::Failed | StepStatus::Canceled));
        if !failed {
            for step in &mut build.steps {
                if step.status == StepStatus::NotRun {
                    step.status = StepStatus::Incomplete;
                }
            }
        }
        build.warnings = self.warnings;
        if self.has_timestamps {
            build.build.started = earliest;
            build.build.completed = latest;
            if let (Some(s), Some(c)) = (earliest, latest) {
                build.build.duration_ms = u64::try_from((c - s).num_milliseconds()).ok();
            }
        }
        let mut platforms: Vec<String> = Vec::new();
        for step in &build.steps {
            if let Some(p) = &step.platform
                && !platforms.contains(p)
            {
                platforms.push(p.clone());
            }
        }
        build.build.platforms = platforms;
        build.build.status = overall_status(&build);
        build.build.error = build
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .and_then(|s| s.error.clone());
        build
    }

    fn make_step(
        &self,
        digest: &str,
        state: &VertexState,
        name: StepName,
        context_vertices: &HashSet<&str>,
    ) -> Step {
        let is_from = name.kind == StepKind::From;
        let mut status_inferred = false;
        let status = if is_from && state.error.is_none() && (state.cached || state.completed) {
            // A base image is resolved or pulled, never built: a "cached" flag on it means
            // only that it was already pulled.
            StepStatus::Base
        } else if state.cached {
            StepStatus::Cached
        } else if let Some(error) = &state.error {
            if is_cancellation(error) {
                StepStatus::Canceled
            } else {
                StepStatus::Failed
            }
        } else if state.completed {
            if self.infer_remote_hits && !state.layer_bytes.is_empty() && !state.saw_output {
                // A remote-cache hit: BuildKit pulled the step's layers and ran nothing.
                status_inferred = true;
                StepStatus::Cached
            } else {
                StepStatus::Rebuilt
            }
        } else if state.started {
            StepStatus::Incomplete
        } else {
            StepStatus::NotRun
        };
        let remote_cache_bytes = (status == StepStatus::Cached && !state.layer_bytes.is_empty())
            .then(|| {
                // Sizes come from the record: saturate rather than overflow.
                state
                    .layer_bytes
                    .values()
                    .fold(0u64, |total, bytes| total.saturating_add(*bytes))
            });
        let (started, completed) = state.span();
        let keep_log = matches!(status, StepStatus::Failed | StepStatus::Canceled);
        let mut log_tail: Vec<String> = if keep_log {
            state.log_tail.iter().cloned().collect()
        } else {
            Vec::new()
        };
        if keep_log && !state.partial_line.is_empty() {
            log_tail.push(state.partial_line.clone());
        }
        Step {
            name: state.name.clone(),
            stage: name.stage,
            platform: name.platform,
            index: name.index,
            total: name.total,
            instruction: name.instruction,
            kind: name.kind,
            status,
            status_inferred,
            duration_ms: state.duration_ms(),
            started: if self.has_timestamps { started } else { None },
            completed: if self.has_timestamps { completed } else { None },
            vertex_digest: digest.starts_with("sha256:").then(|| digest.to_string()),
            inputs: state.inputs.clone(),
            reads_context: state
                .inputs
                .iter()
                .any(|i| context_vertices.contains(i.as_str())),
            dockerfile_line: state.dockerfile_line,
            remote_cache_bytes,
            error: state.error.clone(),
            log_tail,
            ..Step::default()
        }
    }
}

impl VertexState {
    fn push_log_line(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        if self.log_tail.len() == LOG_TAIL_LINES {
            self.log_tail.pop_front();
        }
        self.log_tail
            .push_back(truncate_chars(line, LOG_LINE_MAX_CHARS));
    }

    fn span(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let started = self.intervals.iter().map(|(s, _)| *s).min();
        let completed = self.intervals.iter().filter_map(|(_, c)| *c).max();
        (started, completed)
    }

    /// Union of the vertex's run intervals: a vertex can be started and completed several times.
    fn duration_ms(&self) -> Option<u64> {
        if let Some(ms) = self.stated_duration_ms {
            return Some(ms);
        }
        let mut closed: Vec<(DateTime<Utc>, DateTime<Utc>)> = self
            .intervals
            .iter()
            .filter_map(|(s, c)| c.map(|c| (*s, c.max(*s))))
            .collect();
        if closed.is_empty() {
            return None;
        }
        closed.sort();
        let mut total = chrono::Duration::zero();
        let (mut start, mut end) = closed[0];
        for (s, e) in closed.into_iter().skip(1) {
            if s > end {
                total += end - start;
                start = s;
                end = e;
            } else {
                end = end.max(e);
            }
        }
        total += end - start;
        u64::try_from(total.num_milliseconds()).ok()
    }

    fn outcome(&self) -> OutcomeStatus {
        if self.error.is_some() {
            OutcomeStatus::Failed
        } else if self.completed {
            OutcomeStatus::Ok
        } else {
            OutcomeStatus::Unknown
        }
    }
}

fn is_cancellation(error: &str) -> bool {
    let error = error.trim().to_ascii_lowercase();
    error.ends_with("context canceled") || error == "canceled" || error == "cancelled"
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Steps grouped by platform, then stage (both in order of first appearance), then position.
pub(crate) fn order_steps(steps: Vec<(usize, Step)>) -> Vec<Step> {
    let mut platform_rank: HashMap<Option<String>, usize> = HashMap::new();
    let mut stage_rank: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    for (position, step) in &steps {
        platform_rank
            .entry(step.platform.clone())
            .or_insert(*position);
        stage_rank
            .entry((step.platform.clone(), step.stage.clone()))
            .or_insert(*position);
    }
    let mut keyed: Vec<((usize, usize, u32, usize), Step)> = steps
        .into_iter()
        .map(|(position, step)| {
            let key = (
                platform_rank[&step.platform],
                stage_rank[&(step.platform.clone(), step.stage.clone())],
                step.index.unwrap_or(u32::MAX),
                position,
            );
            (key, step)
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, step)| step).collect()
}

fn overall_status(build: &Build) -> BuildStatus {
    let steps = &build.steps;
    if steps.iter().any(|s| s.status == StepStatus::Failed)
        || build
            .exports
            .iter()
            .any(|e| e.status == OutcomeStatus::Failed)
    {
        BuildStatus::Failed
    } else if steps.iter().any(|s| s.status == StepStatus::Canceled) {
        BuildStatus::Canceled
    } else if !steps.is_empty()
        && steps
            .iter()
            .all(|s| !matches!(s.status, StepStatus::Incomplete | StepStatus::NotRun))
    {
        BuildStatus::Completed
    } else {
        BuildStatus::Unknown
    }
}
