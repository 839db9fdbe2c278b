//! From per-vertex state to the build's steps, imports and exports.
//!
//! A Dockerfile step is usually one vertex, but not always:
//! - `COPY --link` / `ADD --link` is two vertices of one step: the copy onto scratch and
//!   `LINK COPY ...`, which merges it onto the previous step. They are one step.
//! - A bake stream holds every target; buildx prefixes each vertex name with its target
//!   (`[api base 2/5] WORKDIR /srv`, `[api] importing cache manifest from ...`). A step
//!   shared by two targets runs once: the other target's own vertex of it then says `cached`
//!   although no cache was involved, and its stream also carries the run of the target that
//!   built it. That step is reported `shared`, built by that target, not a cache hit.
//! - Two builds interleaved in one stream each have their own `load build definition`
//!   vertex: they are refused rather than mixed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{VertexState, is_cancellation};
use crate::model::{
    Build, BuildStatus, CacheExport, CacheImport, OutcomeStatus, ResultExport, Step, StepKind,
    StepStatus,
};
use crate::readers::vertex_name::{StepName, VertexClass, classify, reads_build_context};

/// Why a stream cannot be reported as one build.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(
        "it holds the progress of {} bake targets ({}): choose one with --target",
        .targets.len(),
        .targets.join(", ")
    )]
    SeveralTargets { targets: Vec<String> },
    #[error("bake target `{wanted}` is not in it (targets: {})", .targets.join(", "))]
    UnknownTarget {
        wanted: String,
        targets: Vec<String>,
    },
    #[error(
        "it holds {count} builds interleaved (each has its own `[internal] load build definition` \
         step); one report would mix their steps: pass each build's own log"
    )]
    SeveralBuilds { count: usize },
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Selection<'a> {
    /// Report what is there: several targets or builds together, with a problem saying so.
    Lenient,
    /// One bake target (`None`: the only one); several builds or targets are an error.
    Strict(Option<&'a str>),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub infer_remote_hits: bool,
    pub has_timestamps: bool,
}

const DEFINITION: &str = "[internal] load build definition";

/// A vertex as the chosen target sees it.
struct Member<'v> {
    state: &'v VertexState,
    /// Its name without the target prefix.
    name: Cow<'v, str>,
    /// Another bake target that names it too: that target's run of a shared step.
    foreign: Option<&'v str>,
}

pub(super) fn build(
    vertices: &[VertexState],
    selection: Selection<'_>,
    settings: Settings,
    notes: &mut Vec<String>,
) -> Result<Build, StreamError> {
    let targets = bake_targets(vertices);
    let target = match selection {
        Selection::Strict(wanted) => match (wanted, targets.len()) {
            (_, 0) => None,
            (Some(want), _) => match targets.iter().find(|t| **t == want) {
                Some(t) => Some(*t),
                None => {
                    return Err(StreamError::UnknownTarget {
                        wanted: want.to_string(),
                        targets: targets.iter().map(|t| t.to_string()).collect(),
                    });
                }
            },
            (None, 1) => Some(targets[0]),
            (None, _) => {
                return Err(StreamError::SeveralTargets {
                    targets: targets.iter().map(|t| t.to_string()).collect(),
                });
            }
        },
        Selection::Lenient => {
            // Reported as the names give them, each target's steps under its own prefix.
            if targets.len() > 1 {
                notes.push(format!(
                    "it holds the progress of {} bake targets ({}), reported together",
                    targets.len(),
                    targets.join(", ")
                ));
            }
            None
        }
    };
    let members = view(vertices, target, &targets);
    let definitions = members
        .iter()
        .filter(|m| m.name.starts_with(DEFINITION))
        .count();
    if definitions > 1 {
        match selection {
            Selection::Strict(_) => {
                return Err(StreamError::SeveralBuilds { count: definitions });
            }
            Selection::Lenient => notes.push(format!(
                "it holds {definitions} builds interleaved, reported together"
            )),
        }
    }
    Ok(assemble(&members, settings))
}

/// Bake targets: buildx prefixes every vertex name of a target with the target's name,
/// `[api internal] load build definition from Dockerfile`, `[api] exporting to image`.
fn bake_targets(vertices: &[VertexState]) -> Vec<&str> {
    let mut targets: Vec<&str> = Vec::new();
    for name in vertices.iter().flat_map(|v| &v.names) {
        let Some(rest) = name.strip_prefix('[') else {
            continue;
        };
        let target = if let Some((target, _)) = rest.split_once(" internal] ") {
            target
        } else if let Some((target, unbracketed)) = rest.split_once("] ")
            && (unbracketed.starts_with("resolving provenance")
                || matches!(
                    classify(unbracketed),
                    VertexClass::CacheImport { .. }
                        | VertexClass::CacheExport { .. }
                        | VertexClass::ResultExport
                ))
        {
            target
        } else {
            continue;
        };
        let one_token = !target.is_empty() && !target.contains([' ', '/', '[', ']']);
        if one_token && target != "internal" && !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// `[api base 2/5] X` -> `[base 2/5] X`, `[api] X` -> `X`, for target `api`.
fn strip_target<'n>(name: &'n str, target: &str) -> Option<Cow<'n, str>> {
    let rest = name.strip_prefix('[')?.strip_prefix(target)?;
    if let Some(unbracketed) = rest.strip_prefix("] ") {
        Some(Cow::Borrowed(unbracketed))
    } else {
        rest.strip_prefix(' ').map(|r| Cow::Owned(format!("[{r}")))
    }
}

fn view<'v>(
    vertices: &'v [VertexState],
    target: Option<&'v str>,
    targets: &[&'v str],
) -> Vec<Member<'v>> {
    let Some(target) = target else {
        return vertices
            .iter()
            .map(|state| Member {
                state,
                name: Cow::Borrowed(state.name()),
                foreign: None,
            })
            .collect();
    };
    vertices
        .iter()
        .filter_map(|state| {
            let name = strip_target(state.name(), target)
                .or_else(|| state.names.iter().find_map(|n| strip_target(n, target)))?;
            let foreign = targets.iter().copied().find(|other| {
                *other != target && state.names.iter().any(|n| strip_target(n, other).is_some())
            });
            Some(Member {
                state,
                name,
                foreign,
            })
        })
        .collect()
}

/// The label (`linux/386 builder 3/6`) and the instruction: what names a step.
type StepKey = (String, String);

/// The vertices of one step, as one: `COPY --link` halves, or a bake target's own vertex
/// with the run of the target that built it.
struct Group<'m, 'v> {
    position: usize,
    step: StepName,
    members: Vec<&'m Member<'v>>,
}

fn assemble(members: &[Member<'_>], settings: Settings) -> Build {
    let mut build = Build::default();
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut latest: Option<DateTime<Utc>> = None;
    let context_vertices: HashSet<&str> = members
        .iter()
        .filter(|m| reads_build_context(&m.name))
        .map(|m| &*m.state.digest)
        .collect();
    let mut groups: Vec<Group<'_, '_>> = Vec::new();
    let mut group_of: HashMap<StepKey, usize> = HashMap::new();
    for (position, member) in members.iter().enumerate() {
        let state = member.state;
        for (s, c) in &state.runs {
            earliest = Some(earliest.map_or(*s, |e| e.min(*s)));
            if let Some(c) = c {
                latest = Some(latest.map_or(*c, |l| l.max(*c)));
            }
        }
        match classify(&member.name) {
            VertexClass::Step(step) => {
                let label = member
                    .name
                    .strip_prefix('[')
                    .and_then(|n| n.split_once(']'))
                    .map_or("", |(label, _)| label);
                let key = (label.to_string(), step.linked_instruction().to_string());
                match group_of.get(&key) {
                    Some(&g) => groups[g].members.push(member),
                    None => {
                        group_of.insert(key, groups.len());
                        groups.push(Group {
                            position,
                            step,
                            members: vec![member],
                        });
                    }
                }
            }
            VertexClass::CacheImport {
                reference,
                cache_type,
            } => build.cache_imports.push(CacheImport {
                reference,
                cache_type,
                status: outcome(state),
                error: state.error.clone(),
                manifest_type: state.manifest_type.clone(),
                duration_ms: duration_ms(state.stated_duration_ms, state.runs.iter()),
                ..CacheImport::default()
            }),
            VertexClass::CacheExport { cache_type } => build.cache_exports.push(CacheExport {
                name: member.name.to_string(),
                cache_type,
                status: outcome(state),
                error: state.error.clone(),
                layers_written: u32::try_from(state.layers_written.len())
                    .ok()
                    .filter(|n| *n > 0),
                skipped_empty: state.skipped_empty,
                duration_ms: duration_ms(state.stated_duration_ms, state.runs.iter()),
                ..CacheExport::default()
            }),
            VertexClass::ResultExport => build.exports.push(ResultExport {
                name: member.name.to_string(),
                status: outcome(state),
                error: state.error.clone(),
                duration_ms: duration_ms(state.stated_duration_ms, state.runs.iter()),
                pushed: state.pushed.clone(),
            }),
            VertexClass::Internal | VertexClass::Other => {}
        }
    }
    let failure = Failure::of(&groups, settings);
    let mut steps: Vec<(usize, Step)> = groups
        .iter()
        .map(|g| {
            (
                g.position,
                make_step(g, &context_vertices, settings, &failure),
            )
        })
        .collect();
    // A later step names the vertex it builds on, which may be the `LINK` half or another
    // target's run of a step: point it at the step.
    let step_of: HashMap<&str, &str> = groups
        .iter()
        .zip(&steps)
        .filter_map(|(g, (_, step))| Some((g, step.vertex_digest.as_deref()?)))
        .flat_map(|(g, digest)| g.members.iter().map(move |m| (&*m.state.digest, digest)))
        .filter(|(member, digest)| member != digest)
        .collect();
    let renamed: Vec<Vec<String>> = steps
        .iter()
        .map(|(_, step)| {
            step.inputs
                .iter()
                .map(|i| {
                    step_of
                        .get(i.as_str())
                        .map_or(i.as_str(), |d| d)
                        .to_string()
                })
                .collect()
        })
        .collect();
    for ((_, step), inputs) in steps.iter_mut().zip(renamed) {
        step.inputs = inputs;
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
            if step.status == StepStatus::NotRun && !step.status_inferred {
                step.status = StepStatus::Incomplete;
            }
        }
    }
    if settings.has_timestamps {
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

/// When the build failed: steps that arrive `cached` after that were skipped, not served
/// from a cache (BuildKit prints them `CACHED` all the same).
struct Failure {
    at: Option<DateTime<Utc>>,
    /// Update number, for records without timestamps.
    update: Option<u64>,
}

impl Failure {
    fn of(groups: &[Group<'_, '_>], settings: Settings) -> Failure {
        let failed = groups.iter().flat_map(|g| &g.members).filter(|m| {
            m.state
                .error
                .as_deref()
                .is_some_and(|e| !is_cancellation(e))
        });
        let mut failure = Failure {
            at: None,
            update: None,
        };
        for member in failed {
            let (_, completed) = span(member.state.runs.iter());
            if settings.has_timestamps
                && let Some(c) = completed
            {
                failure.at = Some(failure.at.map_or(c, |a| a.min(c)));
            }
            if let Some(u) = member.state.error_at {
                failure.update = Some(failure.update.map_or(u, |a| a.min(u)));
            }
        }
        failure
    }

    /// Whether a step that says cached came after the failure.
    fn skipped(&self, combined: &Combined<'_>) -> bool {
        if let Some(at) = self.at {
            let (started, completed) = span(combined.runs.iter().copied());
            return started.or(completed).is_some_and(|s| s > at);
        }
        match (self.update, combined.cached_at) {
            (Some(failure), Some(cached)) => cached > failure,
            _ => false,
        }
    }
}

/// Several vertices' state as one.
struct Combined<'v> {
    name: &'v str,
    digest: &'v str,
    cached: bool,
    cached_at: Option<u64>,
    error: Option<&'v str>,
    started: bool,
    completed: bool,
    runs: Vec<(&'v DateTime<Utc>, &'v Option<DateTime<Utc>>)>,
    stated_duration_ms: Option<u64>,
    layer_bytes: HashMap<&'v str, u64>,
    saw_output: bool,
    inputs: Vec<&'v str>,
    dockerfile_line: Option<u32>,
    /// Where the output is, if any.
    output_of: Vec<&'v VertexState>,
}

impl<'v> Combined<'v> {
    fn of(members: &[&'v Member<'v>]) -> Combined<'v> {
        // The step is named by its first vertex that is not the `LINK` half.
        let lead = members
            .iter()
            .find(|m| !is_link_half(&m.name))
            .unwrap_or(&members[0]);
        let own: HashSet<&str> = members.iter().map(|m| &*m.state.digest).collect();
        let mut combined = Combined {
            name: &lead.name,
            digest: &lead.state.digest,
            cached: false,
            cached_at: None,
            error: None,
            started: false,
            completed: true,
            runs: Vec::new(),
            stated_duration_ms: None,
            layer_bytes: HashMap::new(),
            saw_output: false,
            inputs: Vec::new(),
            dockerfile_line: None,
            output_of: Vec::new(),
        };
        for member in
            std::iter::once(lead).chain(members.iter().filter(|m| !std::ptr::eq(**m, *lead)))
        {
            let s = member.state;
            combined.cached |= s.cached;
            combined.cached_at = min_option(combined.cached_at, s.cached_at);
            combined.error = combined.error.or(s.error.as_deref());
            combined.started |= s.started;
            combined.completed &= s.completed;
            combined.runs.extend(s.runs.iter());
            combined.stated_duration_ms = combined.stated_duration_ms.or(s.stated_duration_ms);
            for (id, bytes) in &s.layer_bytes {
                let seen = combined.layer_bytes.entry(id).or_default();
                *seen = (*seen).max(*bytes);
            }
            combined.saw_output |= s.saw_output;
            for input in &s.inputs {
                // The `LINK` half's input is the copy half: not an input of the step.
                let repeated = members.len() > 1 && combined.inputs.contains(&input.as_str());
                if !own.contains(input.as_str()) && !repeated {
                    combined.inputs.push(input);
                }
            }
            combined.dockerfile_line = combined.dockerfile_line.or(s.dockerfile_line);
            if s.output.len() > 0 {
                combined.output_of.push(s);
            }
        }
        combined
    }

    fn log_tail(&self) -> Vec<String> {
        self.output_of
            .first()
            .map(|s| s.output.lines())
            .unwrap_or_default()
    }
}

fn min_option(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_link_half(name: &str) -> bool {
    matches!(classify(name), VertexClass::Step(s) if s.link)
}

/// Whether a vertex ran (as opposed to being cached or never finishing).
fn ran(state: &VertexState) -> bool {
    state.completed && !state.cached && state.error.is_none()
}

/// The step's own vertices, and the run of it by another bake target (if any).
fn split_by_owner<'m, 'v>(group: &Group<'m, 'v>) -> (Vec<&'m Member<'v>>, Vec<&'m Member<'v>>) {
    let mut foreign: Vec<&Member<'_>> = group
        .members
        .iter()
        .copied()
        .filter(|m| m.foreign.is_some())
        .collect();
    let bases: Vec<&Member<'_>> = group
        .members
        .iter()
        .copied()
        .filter(|m| !is_link_half(&m.name))
        .collect();
    if foreign.is_empty()
        && bases.len() > 1
        && bases.iter().any(|m| m.state.cached)
        && bases.iter().any(|m| ran(m.state))
    {
        // A record of one bake target names no targets: the run next to its own cached
        // vertex of the same step is the other target's.
        foreign = bases.into_iter().filter(|m| ran(m.state)).collect();
    }
    let own: Vec<&Member<'_>> = group
        .members
        .iter()
        .copied()
        .filter(|m| !foreign.iter().any(|f| std::ptr::eq(*f, *m)))
        .collect();
    if own.is_empty() {
        // Every vertex is named by several targets: one run, theirs alike.
        (group.members.clone(), Vec::new())
    } else {
        (own, foreign)
    }
}

fn make_step(
    group: &Group<'_, '_>,
    context_vertices: &HashSet<&str>,
    settings: Settings,
    failure: &Failure,
) -> Step {
    let (own, foreign) = split_by_owner(group);
    let state = Combined::of(&own);
    let name = &group.step;
    let is_from = name.kind == StepKind::From;
    let mut status_inferred = false;
    let mut built_by = None;
    let mut status = if is_from && state.error.is_none() && (state.cached || state.completed) {
        // A base image is resolved or pulled, never built: a "cached" flag on it means
        // only that it was already pulled.
        StepStatus::Base
    } else if state.cached {
        StepStatus::Cached
    } else if let Some(error) = state.error {
        if is_cancellation(error) {
            StepStatus::Canceled
        } else {
            StepStatus::Failed
        }
    } else if state.completed {
        if settings.infer_remote_hits && !state.layer_bytes.is_empty() && !state.saw_output {
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
    if status == StepStatus::Cached {
        if let Some(builder) = foreign.iter().find(|m| ran(m.state)) {
            status = StepStatus::Shared;
            built_by = builder.foreign.map(str::to_string);
            status_inferred = builder.foreign.is_none();
        } else if !status_inferred && failure.skipped(&state) {
            status = StepStatus::NotRun;
            status_inferred = true;
        }
    }
    let remote_cache_bytes =
        (status == StepStatus::Cached && !state.layer_bytes.is_empty()).then(|| {
            // Sizes come from the record: saturate rather than overflow.
            state
                .layer_bytes
                .values()
                .fold(0u64, |total, bytes| total.saturating_add(*bytes))
        });
    let (started, completed) = span(state.runs.iter().copied());
    let keep_log = matches!(status, StepStatus::Failed | StepStatus::Canceled);
    Step {
        name: state.name.to_string(),
        stage: name.stage.clone(),
        platform: name.platform.clone(),
        index: name.index,
        total: name.total,
        instruction: name.linked_instruction().to_string(),
        kind: name.kind,
        status,
        status_inferred,
        duration_ms: duration_ms(state.stated_duration_ms, state.runs.iter().copied()),
        started: if settings.has_timestamps {
            started
        } else {
            None
        },
        completed: if settings.has_timestamps {
            completed
        } else {
            None
        },
        vertex_digest: state
            .digest
            .starts_with("sha256:")
            .then(|| state.digest.to_string()),
        inputs: state.inputs.iter().map(|s| s.to_string()).collect(),
        reads_context: state.inputs.iter().any(|i| context_vertices.contains(i)),
        dockerfile_line: state.dockerfile_line,
        remote_cache_bytes,
        error: state.error.map(str::to_string),
        log_tail: if keep_log {
            state.log_tail()
        } else {
            Vec::new()
        },
        built_by,
        ..Step::default()
    }
}

fn span<'a>(
    runs: impl Iterator<Item = (&'a DateTime<Utc>, &'a Option<DateTime<Utc>>)>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut started: Option<DateTime<Utc>> = None;
    let mut completed: Option<DateTime<Utc>> = None;
    for (s, c) in runs {
        started = Some(started.map_or(*s, |e| e.min(*s)));
        if let Some(c) = c {
            completed = Some(completed.map_or(*c, |l| l.max(*c)));
        }
    }
    (started, completed)
}

/// Union of a vertex's run intervals: a vertex can be started and completed several times.
fn duration_ms<'a>(
    stated: Option<u64>,
    runs: impl Iterator<Item = (&'a DateTime<Utc>, &'a Option<DateTime<Utc>>)>,
) -> Option<u64> {
    if let Some(ms) = stated {
        return Some(ms);
    }
    let mut closed: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
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

fn outcome(state: &VertexState) -> OutcomeStatus {
    if state.error.is_some() {
        OutcomeStatus::Failed
    } else if state.completed {
        OutcomeStatus::Ok
    } else {
        OutcomeStatus::Unknown
    }
}

/// The first failed step (by first appearance) gets the line the error block names.
pub(super) fn set_line_of_failed_step(vertices: &mut [VertexState], line: u32) {
    for state in vertices {
        let failed = state.error.as_deref().is_some_and(|e| !is_cancellation(e));
        if failed && matches!(classify(state.name()), VertexClass::Step(_)) {
            state.dockerfile_line.get_or_insert(line);
            return;
        }
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

#[cfg(test)]
mod tests {
    use crate::model::StepStatus;
    use crate::readers::solve_status::{StatusAccumulator, Vertex};

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Vertex::default()
        }
    }

    #[test]
    fn targets_are_found_by_their_prefixes() {
        let mut acc = StatusAccumulator::new();
        for (digest, name) in [
            ("d", "[internal] load local bake definitions"),
            ("a", "[api internal] load .dockerignore"),
            ("w", "[worker] exporting to image"),
            ("x", "[linux/amd64 internal] load metadata for x"),
            ("s", "[api 2/3] RUN make"),
        ] {
            acc.on_vertex(vertex(digest, name));
        }
        let err = acc.finish_target(None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it holds the progress of 2 bake targets (api, worker): choose one with --target"
        );
    }

    #[test]
    fn without_a_choice_every_target_is_reported_under_its_own_prefix() {
        let mut acc = StatusAccumulator::for_plain_logs();
        for (digest, name) in [
            ("a", "[api internal] load build definition from Dockerfile"),
            (
                "b",
                "[worker internal] load build definition from Dockerfile",
            ),
            ("c", "[api base 2/3] COPY x ."),
            ("d", "[worker base 2/3] COPY x ."),
        ] {
            acc.on_vertex(vertex(digest, name));
            acc.mark_progress(digest, true, true);
        }
        let build = acc.finish();
        let names: Vec<&str> = build.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["[api base 2/3] COPY x .", "[worker base 2/3] COPY x ."]
        );
        assert_eq!(
            build.problems[0].message,
            "it holds the progress of 2 bake targets (api, worker), reported together"
        );
    }

    #[test]
    fn without_timestamps_a_cached_mark_after_the_failure_is_a_skip() {
        let mut acc = StatusAccumulator::for_plain_logs();
        acc.on_vertex(vertex("a", "[2/4] RUN a"));
        acc.on_vertex(Vertex {
            cached: true,
            ..vertex("a", "")
        });
        acc.on_vertex(vertex("b", "[3/4] RUN b"));
        acc.on_vertex(Vertex {
            error: Some("exit code: 1".into()),
            ..vertex("b", "")
        });
        acc.on_vertex(vertex("c", "[4/4] RUN c"));
        acc.on_vertex(Vertex {
            cached: true,
            ..vertex("c", "")
        });
        let build = acc.finish();
        let statuses: Vec<(StepStatus, bool)> = build
            .steps
            .iter()
            .map(|s| (s.status, s.status_inferred))
            .collect();
        assert_eq!(
            statuses,
            [
                (StepStatus::Cached, false),
                (StepStatus::Failed, false),
                (StepStatus::NotRun, true)
            ]
        );
    }

    #[test]
    fn the_link_half_never_makes_a_step_of_its_own() {
        let mut acc = StatusAccumulator::new();
        acc.on_vertex(Vertex {
            inputs: vec!["prev".into(), "copy".into()],
            cached: true,
            ..vertex("link", "[3/4] LINK COPY --link a /b")
        });
        acc.on_vertex(Vertex {
            inputs: vec!["context".into()],
            ..vertex("copy", "[3/4] COPY --link a /b")
        });
        acc.mark_progress("copy", true, true);
        let build = acc.finish();
        assert_eq!(build.steps.len(), 1);
        let step = &build.steps[0];
        assert_eq!(step.name, "[3/4] COPY --link a /b");
        assert_eq!(step.status, StepStatus::Cached);
        // The copy's input and the previous step; not the copy half itself.
        assert_eq!(step.inputs, ["context", "prev"]);
    }
}
