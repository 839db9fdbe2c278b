//! Why each step was rebuilt: one primary cause per rebuilt step.
//!
//! A step rebuilt because an input step was rebuilt is `upstream-rebuilt`, naming the input:
//! the first rebuilt step of each chain carries the change. For that step, the engine compares
//! its definition with its match in the previous release (`matching`): the instruction text,
//! the build arguments it depends on, the base image under it, its input steps and the
//! build-context files it reads. What differs is the cause; when nothing does, the cache did
//! not deliver the step (or nothing was ever exported to the cache: its first build).
//!
//! Causes are read from definitions, not from what the previous release's cache did, so they
//! are the same against a previous release that was itself built cold.
//!
//! Every step that reads the build context has a new vertex digest on every build (the local
//! source carries the build's session), so equal digests prove a step unchanged but different
//! ones prove nothing: the comparison is on the instruction, its inputs and their causes.

mod args;
pub mod cache;

use std::collections::HashMap;

use crate::analysis::dockerfile::WrittenSteps;
use crate::analysis::matching::MatchKind;
use crate::model::{
    ArgChange, ArgEvidence, Build, Material, RebuildReason, Step, StepKind, StepStatus,
};

pub use cache::judge_cache_imports;

/// What is known of the build-context files that changed since the previous release.
pub trait ContextFiles {
    /// The changed files `step` reads, relative to the build context (empty: it reads none of
    /// them); `None` when that cannot be known.
    fn changed_files_read_by(&self, step: &Step) -> Option<Vec<String>>;
}

/// The previous release, and each current step's match in it (`matching::match_steps`).
#[derive(Clone, Copy)]
pub struct Previous<'a> {
    pub build: &'a Build,
    pub matches: &'a [Option<(usize, MatchKind)>],
}

/// What the analysis knows besides the two builds' records.
#[derive(Clone, Copy, Default)]
pub struct Knowledge<'a> {
    /// The Dockerfile's steps as written (`${NAME}` unexpanded, the `ARG`s in scope).
    pub dockerfile: Option<&'a WrittenSteps>,
    /// The build-context files changed since the previous release.
    pub context: Option<&'a dyn ContextFiles>,
}

/// Sets `rebuild_reason` on every step that did work (and clears it elsewhere), and, with a
/// previous release, `same_definition` on every step.
pub fn explain(build: &mut Build, previous: Option<Previous<'_>>, knowledge: Knowledge<'_>) {
    let inputs = input_steps(&build.steps);
    let mut all_args = previous
        .map(|p| args::recorded_changes(build, p.build))
        .unwrap_or_default();
    if let (Some(dockerfile), Some(previous)) = (knowledge.dockerfile, previous) {
        for change in args_from_instructions(build, previous, dockerfile) {
            if !all_args.iter().any(|c| c.name == change.name) {
                all_args.push(change);
            }
        }
    }
    let engine = Engine {
        build,
        previous,
        knowledge,
        inputs: &inputs,
        all_args,
        imports_empty: cache::imports_empty(build),
        first_cache_build: cache::first_build_of(build, previous.map(|p| p.build)),
        served_any: cache::served_any(build),
    };
    let definitions = engine.definitions();
    let reasons: Vec<Option<RebuildReason>> = (0..build.steps.len())
        .map(|i| {
            build.steps[i]
                .status
                .did_work()
                .then(|| engine.primary_cause(i, &definitions))
        })
        .collect();
    let compared = previous.is_some();
    for ((step, reason), definition) in build.steps.iter_mut().zip(reasons).zip(&definitions) {
        step.rebuild_reason = reason;
        step.same_definition = match definition {
            _ if !compared => None,
            Definition::Same => Some(true),
            Definition::Changed(_) => Some(false),
            Definition::Unknown => None,
        };
    }
}

/// A step's definition against its match in the previous release.
#[derive(Clone, Debug, PartialEq)]
enum Definition {
    Same,
    Changed(Change),
    /// Not compared, or the records cannot tell (a rebuilt step reading the build context
    /// when the changed files are not known, or a step built on such a step).
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
enum Change {
    New,
    Instruction {
        before: String,
        after: String,
    },
    Args {
        args: Vec<ArgChange>,
        evidence: ArgEvidence,
    },
    /// A `FROM` that resolved to another image.
    Base {
        before: String,
        after: String,
    },
    Context {
        files: Vec<String>,
    },
    /// An input step's definition changed although it was served from the cache (or it is a
    /// `FROM`).
    Input(usize),
}

struct Engine<'a> {
    build: &'a Build,
    previous: Option<Previous<'a>>,
    knowledge: Knowledge<'a>,
    inputs: &'a [Vec<usize>],
    /// Build arguments changed since the previous release: those the records carry, and
    /// those read back from the steps' expanded instructions through the Dockerfile (so a
    /// changed argument is named even when the records carry none, as plain logs do).
    all_args: Vec<ArgChange>,
    /// What the cache imports gave, for the whole build.
    imports_empty: bool,
    first_cache_build: Option<String>,
    served_any: bool,
}

impl Engine<'_> {
    /// Every step's definition, inputs first (an explicit stack: graphs can be deep).
    fn definitions(&self) -> Vec<Definition> {
        let n = self.build.steps.len();
        let mut done: Vec<Option<Definition>> = vec![None; n];
        let mut entered = vec![false; n];
        for root in 0..n {
            let mut stack = vec![root];
            while let Some(&i) = stack.last() {
                if done[i].is_some() {
                    stack.pop();
                    continue;
                }
                if !entered[i] {
                    entered[i] = true;
                    stack.extend(self.inputs[i].iter().filter(|u| done[**u].is_none()));
                    continue;
                }
                // A cycle (damaged records) leaves an input undecided: unknown.
                let inputs: Vec<(usize, Definition)> = self.inputs[i]
                    .iter()
                    .map(|&u| (u, done[u].clone().unwrap_or(Definition::Unknown)))
                    .collect();
                done[i] = Some(self.definition(i, &inputs));
                stack.pop();
            }
        }
        done.into_iter()
            .map(|d| d.unwrap_or(Definition::Unknown))
            .collect()
    }

    fn definition(&self, i: usize, inputs: &[(usize, Definition)]) -> Definition {
        let step = &self.build.steps[i];
        let Some(previous) = self.previous else {
            return Definition::Unknown;
        };
        let Some((j, how)) = previous.matches.get(i).copied().flatten() else {
            return Definition::Changed(Change::New);
        };
        let before = &previous.build.steps[j];
        if step.kind == StepKind::From {
            return self.base_definition(step, before, previous.build);
        }
        // The same LLB operation on the same inputs, unless an input's content is not pinned
        // in the graph (a `FROM` of a local image, which names no digest).
        // A step served from the cache matched it with its whole chain: whatever its inputs'
        // records leave open, they were those of a build the cache holds.
        let unknown_inputs = step.status != StepStatus::Cached
            && inputs.iter().any(|(_, d)| *d == Definition::Unknown);
        let changed_input = inputs
            .iter()
            .find(|(_, d)| matches!(d, Definition::Changed(_)));
        if how == MatchKind::SameVertex {
            return match (changed_input, unknown_inputs) {
                (Some((u, _)), _) => Definition::Changed(Change::Input(*u)),
                (None, true) => Definition::Unknown,
                (None, false) => Definition::Same,
            };
        }
        if step.instruction.is_empty() || before.instruction.is_empty() {
            return Definition::Unknown;
        }
        if fold(&step.instruction) != fold(&before.instruction) {
            return Definition::Changed(self.instruction_change(step, before));
        }
        if let Some((u, _)) = changed_input {
            return Definition::Changed(Change::Input(*u));
        }
        let mut unknown = unknown_inputs;
        if reads_context(step) {
            match self.changed_files(step) {
                Some(files) if !files.is_empty() => {
                    return Definition::Changed(Change::Context { files });
                }
                Some(_) => {}
                // Served from the cache: its files were those of a build the cache holds.
                None if step.status == StepStatus::Cached => {}
                // The same layer as before: it copied the same files.
                None if same_layers(step, before) => {}
                None => unknown = true,
            }
        }
        if unknown {
            return Definition::Unknown;
        }
        if step.kind == StepKind::Run && step.status.did_work() {
            let args = self.args_in_environment(step);
            let confirmed = self.knowledge.dockerfile.and_then(|d| d.of(step)).is_some();
            if !args.is_empty() {
                // Inferred, and a cache that gave nothing explains the rebuild as well.
                if !confirmed && self.imports_empty {
                    return Definition::Unknown;
                }
                return Definition::Changed(Change::Args {
                    args,
                    evidence: ArgEvidence::Environment,
                });
            }
        }
        Definition::Same
    }

    /// How an instruction whose text changed differs: by the values of build arguments alone
    /// (read back through the Dockerfile's `${NAME}`s, or from the recorded arguments), or in
    /// its text.
    fn instruction_change(&self, step: &Step, before: &Step) -> Change {
        if let Some(written) = self.knowledge.dockerfile.and_then(|d| d.of(step))
            && let Some(now) = args::expanded_values(&written.text, &step.instruction)
            && let Some(then) = args::expanded_values(&written.text, &before.instruction)
        {
            let changed: Vec<ArgChange> = now
                .iter()
                .filter(|(name, value)| then.get(*name) != Some(value))
                .map(|(name, value)| ArgChange {
                    name: name.clone(),
                    before: then.get(name).cloned(),
                    after: Some(value.clone()),
                })
                .collect();
            // Only build arguments: an `ENV` value edited in the Dockerfile is an edit.
            if !changed.is_empty()
                && changed
                    .iter()
                    .all(|c| written.args_in_scope.contains(&c.name))
            {
                return Change::Args {
                    args: changed,
                    evidence: ArgEvidence::Instruction,
                };
            }
        }
        if let Some(args) = args::explained_by_values(
            &fold(&before.instruction),
            &fold(&step.instruction),
            &self.all_args,
        ) {
            return Change::Args {
                args,
                evidence: ArgEvidence::Instruction,
            };
        }
        Change::Instruction {
            before: before.instruction.clone(),
            after: step.instruction.clone(),
        }
    }

    /// Changed arguments in the environment of `step` (a `RUN`): with the Dockerfile, those
    /// declared in its stage before it; without, every changed argument (inferred).
    fn args_in_environment(&self, step: &Step) -> Vec<ArgChange> {
        let written = self.knowledge.dockerfile.and_then(|d| d.of(step));
        self.all_args
            .iter()
            .filter(|c| written.is_none_or(|w| w.args_in_scope.contains(&c.name)))
            .cloned()
            .collect()
    }

    fn base_definition(&self, step: &Step, before: &Step, previous: &Build) -> Definition {
        let now = base_reference(step, &self.build.build.materials);
        let then = base_reference(before, &previous.build.materials);
        let (Some(now), Some(then)) = (now, then) else {
            return Definition::Unknown;
        };
        let moved = !same_image(&now.name, &then.name)
            || match (&now.digest, &then.digest) {
                (Some(a), Some(b)) => a != b,
                // Without digests, a `FROM` vertex of another digest resolved another image;
                // one of the same digest may have too (a local image's tag moved).
                _ => match (&step.vertex_digest, &before.vertex_digest) {
                    (Some(a), Some(b)) if a != b => true,
                    _ => return Definition::Unknown,
                },
            };
        if moved {
            Definition::Changed(Change::Base {
                before: then.display(),
                after: now.display(),
            })
        } else {
            Definition::Same
        }
    }

    fn changed_files(&self, step: &Step) -> Option<Vec<String>> {
        self.knowledge
            .context
            .and_then(|c| c.changed_files_read_by(step))
    }

    fn primary_cause(&self, i: usize, definitions: &[Definition]) -> RebuildReason {
        let steps = &self.build.steps;
        if let Some(&u) = self.inputs[i].iter().find(|u| steps[**u].status.did_work()) {
            return RebuildReason::UpstreamRebuilt {
                upstream: steps[u].name.clone(),
            };
        }
        match &definitions[i] {
            Definition::Changed(change) => self.cause_of(change, definitions),
            Definition::Same => self.cache_cause(i),
            Definition::Unknown => self.unknown_cause(i),
        }
    }

    fn cause_of(&self, change: &Change, definitions: &[Definition]) -> RebuildReason {
        match change {
            Change::New => RebuildReason::NewStep,
            Change::Instruction { before, after } => RebuildReason::InstructionChanged {
                before: before.clone(),
                after: after.clone(),
            },
            Change::Args { args, evidence } => RebuildReason::BuildArgChanged {
                args: args.clone(),
                evidence: *evidence,
            },
            Change::Base { before, after } => RebuildReason::BaseImageChanged {
                before: before.clone(),
                after: after.clone(),
            },
            Change::Context { files } => RebuildReason::ContextChanged {
                files: files.clone(),
            },
            Change::Input(u) => match root_change(*u, definitions) {
                Some(Change::Base { before, after }) => RebuildReason::BaseImageChanged {
                    before: before.clone(),
                    after: after.clone(),
                },
                // Its input was served from the cache but is not the previous release's.
                _ => RebuildReason::NoCacheMatch,
            },
        }
    }

    /// The step is defined as in the previous release.
    fn cache_cause(&self, i: usize) -> RebuildReason {
        let build = self.build;
        if self.imports_empty {
            return match &self.first_cache_build {
                Some(cache) => RebuildReason::FirstCacheBuild {
                    cache: cache.clone(),
                },
                None => RebuildReason::CacheNotDelivered,
            };
        }
        // The cache served this `RUN`'s input but not the `RUN`: what changed does not show in
        // the records (an `ENV`, `ARG` default, `USER` or `SHELL` line before it), or the
        // cache lost it.
        let step = &build.steps[i];
        if step.kind == StepKind::Run
            && self.inputs[i]
                .iter()
                .any(|u| build.steps[*u].status == StepStatus::Cached)
        {
            return RebuildReason::NoCacheMatch;
        }
        RebuildReason::CacheNotDelivered
    }

    /// Not compared, or the records cannot tell whether its definition changed.
    fn unknown_cause(&self, i: usize) -> RebuildReason {
        if self.imports_empty {
            return match &self.first_cache_build {
                Some(cache) => RebuildReason::FirstCacheBuild {
                    cache: cache.clone(),
                },
                None => RebuildReason::CacheImportEmpty,
            };
        }
        let step = &self.build.steps[i];
        // Its other inputs were served from the cache: the files it copies changed.
        if reads_context(step) && self.served_any {
            return RebuildReason::ContextChanged {
                files: self.changed_files(step).unwrap_or_default(),
            };
        }
        RebuildReason::NoCacheMatch
    }
}

/// Argument values that differ between steps' expanded instructions now and in the previous
/// release, read through the Dockerfile's `${NAME}`s.
fn args_from_instructions(
    build: &Build,
    previous: Previous<'_>,
    dockerfile: &WrittenSteps,
) -> Vec<ArgChange> {
    let mut found: Vec<ArgChange> = Vec::new();
    for (i, step) in build.steps.iter().enumerate() {
        let Some((j, _)) = previous.matches.get(i).copied().flatten() else {
            continue;
        };
        let Some(written) = dockerfile.of(step) else {
            continue;
        };
        let (Some(now), Some(then)) = (
            args::expanded_values(&written.text, &step.instruction),
            args::expanded_values(&written.text, &previous.build.steps[j].instruction),
        ) else {
            continue;
        };
        for (name, value) in now {
            if written.args_in_scope.contains(&name)
                && then.get(&name) != Some(&value)
                && !found.iter().any(|c| c.name == name)
            {
                found.push(ArgChange {
                    before: then.get(&name).cloned(),
                    after: Some(value),
                    name,
                });
            }
        }
    }
    found
}

fn same_layers(step: &Step, before: &Step) -> bool {
    !step.layers.is_empty()
        && step.layers.len() == before.layers.len()
        && step
            .layers
            .iter()
            .zip(&before.layers)
            .all(|(a, b)| a.digest == b.digest)
}

/// The change at the root of a chain of changed inputs.
fn root_change(mut u: usize, definitions: &[Definition]) -> Option<&Change> {
    for _ in 0..definitions.len() {
        match &definitions[u] {
            Definition::Changed(Change::Input(next)) => u = *next,
            Definition::Changed(change) => return Some(change),
            _ => return None,
        }
    }
    None
}

/// Each step's input steps: from the LLB graph (`inputs` digests), or, when the records have
/// no graph (plain logs), the previous step of its stage and the stage a `COPY --from` names.
fn input_steps(steps: &[Step]) -> Vec<Vec<usize>> {
    let mut by_digest: HashMap<&str, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(d) = step.vertex_digest.as_deref() {
            by_digest.entry(d).or_insert(i);
        }
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            if !step.inputs.is_empty() && !by_digest.is_empty() {
                let mut found: Vec<usize> = Vec::new();
                for u in step.inputs.iter().filter_map(|d| by_digest.get(d.as_str())) {
                    if *u != i && !found.contains(u) {
                        found.push(*u);
                    }
                }
                return found;
            }
            let mut found: Vec<usize> = predecessor(step, steps).into_iter().collect();
            if let Some(stage) = copied_stage(step)
                && let Some(last) = last_step_of(stage, step.platform.as_deref(), steps)
                && !found.contains(&last)
            {
                found.push(last);
            }
            found
        })
        .collect()
}

fn predecessor(step: &Step, steps: &[Step]) -> Option<usize> {
    let index = step.index?.checked_sub(1)?;
    steps.iter().position(|s| {
        s.platform == step.platform && s.stage == step.stage && s.index == Some(index)
    })
}

/// `COPY --from=builder ...` → `builder`.
fn copied_stage(step: &Step) -> Option<&str> {
    if !matches!(step.kind, StepKind::Copy | StepKind::Add) {
        return None;
    }
    step.instruction
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--from="))
}

fn last_step_of(stage: &str, platform: Option<&str>, steps: &[Step]) -> Option<usize> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.stage.as_deref() == Some(stage) && s.platform.as_deref() == platform)
        .max_by_key(|(_, s)| s.index)
        .map(|(i, _)| i)
}

/// Whether the step reads the build context: the graph says so, or (without a graph) it is a
/// `COPY`/`ADD` that names no other stage, image or URL.
pub fn reads_context(step: &Step) -> bool {
    if step.reads_context {
        return true;
    }
    if !step.inputs.is_empty() || !matches!(step.kind, StepKind::Copy | StepKind::Add) {
        return false;
    }
    let mut words = step.instruction.split_whitespace().skip(1);
    if step.instruction.contains("--from") {
        return false;
    }
    !words.any(|w| w.contains("://") || w.starts_with("git@"))
}

/// A base image reference: `name[:tag]` and its digest, where known.
struct BaseRef {
    name: String,
    digest: Option<String>,
}

impl BaseRef {
    fn display(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The image a `FROM` step resolved, from its name (`FROM img:tag@sha256:...`) or, without a
/// digest there, from the build's materials.
fn base_reference(step: &Step, materials: &[Material]) -> Option<BaseRef> {
    let reference = step
        .instruction
        .split_whitespace()
        .skip(1)
        .find(|w| !w.starts_with("--"))?;
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name.to_string(), Some(digest.to_string())),
        None => (reference.to_string(), None),
    };
    let digest = digest.or_else(|| {
        materials
            .iter()
            .find(|m| material_image(&m.uri).is_some_and(|image| same_image(&image, &name)))
            .and_then(|m| m.digest.clone())
    });
    Some(BaseRef { name, digest })
}

/// `pkg:docker/127.0.0.1%3A5066/busybox@1?platform=...` → `127.0.0.1:5066/busybox:1`.
fn material_image(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("pkg:docker/")?;
    let rest = rest
        .split(['?', '#'])
        .next()?
        .replace("%3A", ":")
        .replace("%3a", ":");
    Some(match rest.split_once('@') {
        Some((name, tag)) if !tag.starts_with("sha256") => format!("{name}:{tag}"),
        Some((name, _)) => name.to_string(),
        None => rest,
    })
}

/// Image names equal once Docker Hub's implied prefixes are dropped.
fn same_image(a: &str, b: &str) -> bool {
    let bare = |n: &str| {
        n.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    bare(a) == bare(b)
}

/// `NAME: old → new` (`unset` for an argument not set on one side).
pub fn describe_arg_change(change: &ArgChange) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
    format!(
        "{}: {} → {}",
        change.name,
        value(&change.before),
        value(&change.after)
    )
}

/// `busybox:1 (f724e1c5cdb3 → 9f9f9f9f9f9f)`, `busybox:1 → busybox:2`, or, when the records
/// give no digest, that the name resolved to another image.
pub fn describe_base_move(before: &str, after: &str) -> String {
    let split = |r: &str| -> (String, Option<String>) {
        match r.split_once('@') {
            Some((name, digest)) => (name.to_string(), Some(short(digest).to_string())),
            None => (r.to_string(), None),
        }
    };
    match (split(before), split(after)) {
        ((old, Some(a)), (new, Some(b))) if old == new => format!("`{new}` ({a} → {b})"),
        ((old, _), (new, _)) if old == new => {
            format!("`{new}` resolved to another image (its digest is not in the records)")
        }
        ((old, a), (new, b)) => format!(
            "`{old}`{} → `{new}`{}",
            a.map(|d| format!(" ({d})")).unwrap_or_default(),
            b.map(|d| format!(" ({d})")).unwrap_or_default()
        ),
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    // Char-wise: the digest comes from the record and need not be ASCII.
    match hex.char_indices().nth(12) {
        Some((cut, _)) => &hex[..cut],
        None => hex,
    }
}

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
