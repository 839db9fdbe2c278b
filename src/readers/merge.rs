//! Combining what several inputs say about one build.

use std::collections::HashSet;

use crate::model::{Build, InputFormat, OutcomeStatus, Problem, ProblemKind, Step, StepStatus};
use crate::readers::Fragment;

/// Progress streams first (they state per-step status), richest first; then records.
fn precedence(format: InputFormat) -> u8 {
    match format {
        InputFormat::Rawjson => 0,
        InputFormat::Dockerbuild => 1,
        InputFormat::Report => 2,
        InputFormat::Plain | InputFormat::Tty => 3,
        InputFormat::History | InputFormat::HistoryInspect => 4,
        InputFormat::Metadata | InputFormat::Provenance => 5,
    }
}

/// Whether the format records per-step progress (as opposed to facts about the build).
fn records_progress(format: InputFormat) -> bool {
    match format {
        InputFormat::Rawjson | InputFormat::Plain | InputFormat::Tty | InputFormat::Dockerbuild => {
            true
        }
        InputFormat::Metadata
        | InputFormat::Provenance
        | InputFormat::History
        | InputFormat::HistoryInspect
        | InputFormat::Report => false,
    }
}

pub fn merge_fragments(mut fragments: Vec<(InputFormat, Fragment)>) -> Build {
    fragments.sort_by_key(|(format, _)| precedence(*format));
    let mut merged = Build::default();
    let mut provenance = Vec::new();
    let mut identity = Identity::default();
    let mut left_out = Vec::new();
    for (_, fragment) in fragments {
        let theirs = Identity::of(&fragment);
        if let Some(difference) = identity.differs_from(&theirs) {
            // Mixing two builds (this release's log with the last release's metadata) would
            // give one build's steps the other's layers and pull cost.
            left_out.push(Problem::new(
                ProblemKind::OtherBuild,
                input_names(&fragment.build),
                format!(
                    "describes another build than {} ({difference}); left out of the report",
                    input_names(&merged)
                ),
            ));
            continue;
        }
        identity.absorb(theirs);
        merge_build(&mut merged, fragment.build);
        provenance.extend(fragment.provenance);
    }
    merged.problems.extend(left_out);
    let has_progress = merged.inputs.iter().any(|i| records_progress(i.format));
    let from_provenance = merged.steps.is_empty() && !has_progress;
    if from_provenance {
        merged.steps = steps_of_provenance(&provenance);
    }
    for p in &provenance {
        apply_provenance(&mut merged, p);
    }
    crate::readers::provenance::share_lines_by_position(&mut merged.steps);
    if let Some(hint) = crate::readers::records::min_provenance_hint(&provenance, &merged) {
        merged.problems.push(Problem::new(
            ProblemKind::Input,
            input_names(&merged),
            hint.to_string(),
        ));
    }
    let explained = merged
        .problems
        .iter()
        .any(|p| p.kind.explains_missing_steps());
    if merged.build.image_names.is_empty() {
        merged.build.image_names = identity.pushed_names;
    }
    let unfinished = merged
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Incomplete)
        .count();
    if unfinished > 0 && merged.build.status == crate::model::BuildStatus::Completed {
        merged.problems.push(Problem::new(
            ProblemKind::Unfinished,
            input_names(&merged),
            format!(
                "the build completed, but the progress record ends before {unfinished} step(s) \
                 did: their outcome is unknown (was the log cut short?)"
            ),
        ));
    }
    if from_provenance && !merged.steps.is_empty() {
        merged.problems.push(Problem::new(
            ProblemKind::NoProgress,
            input_names(&merged),
            "no per-step progress among the inputs: the steps, their Dockerfile lines and layers \
             are the provenance's, which does not say whether BuildKit took each from cache; pass \
             the build's rawjson or plain progress log (or a .dockerbuild bundle) to see it",
        ));
    } else if merged.steps.is_empty() && !merged.inputs.is_empty() && !explained {
        merged.problems.push(if has_progress {
            Problem::new(
                ProblemKind::NoSteps,
                input_names(&merged),
                "the progress log shows no Dockerfile step: the build stopped before its first \
                 step, or it did not build a Dockerfile",
            )
        } else {
            Problem::new(
                ProblemKind::NoProgress,
                input_names(&merged),
                "no per-step progress among the inputs: pass the build's rawjson or plain \
                 progress log (or a .dockerbuild bundle) to see what was cached",
            )
        });
    }
    // The Dockerfile's text, when there is one, is applied by the caller.
    crate::readers::order::dockerfile_order(&mut merged.steps, None);
    merged
}

/// The Dockerfile steps mode=max provenance lists, for a build without a progress record:
/// a base image is a base image whatever happened, any other step's outcome is unknown.
/// Each platform's steps in Dockerfile order; a step two records list (one build's image
/// attestation and its metadata file) once.
fn steps_of_provenance(provenance: &[crate::readers::provenance::Provenance]) -> Vec<Step> {
    let mut listed: Vec<&crate::readers::provenance::ProvenanceStep> =
        provenance.iter().flat_map(|p| &p.steps).collect();
    listed.sort_by(|a, b| (&a.platform, a.dockerfile_line).cmp(&(&b.platform, b.dockerfile_line)));
    // BuildKit names a step's platform only in multi-platform builds: the same here.
    let platforms: HashSet<&Option<String>> = listed.iter().map(|s| &s.platform).collect();
    let several_platforms = platforms.len() > 1;
    let mut seen = HashSet::new();
    listed
        .into_iter()
        .filter(|step| seen.insert(step.vertex_digest.as_str()))
        .map(|step| {
            let kind = crate::model::StepKind::from_keyword(
                step.instruction
                    .split_whitespace()
                    .next()
                    .unwrap_or_default(),
            );
            Step {
                name: step.instruction.clone(),
                platform: step.platform.clone().filter(|_| several_platforms),
                instruction: step.instruction.clone(),
                kind,
                status: if kind == crate::model::StepKind::From {
                    StepStatus::Base
                } else {
                    StepStatus::Unknown
                },
                vertex_digest: Some(step.vertex_digest.clone()),
                dockerfile_line: Some(step.dockerfile_line),
                ..Step::default()
            }
        })
        .collect()
}

fn input_names(build: &Build) -> String {
    build
        .inputs
        .iter()
        .map(|i| i.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What names a build across its records: the images it produced (by name and digest) and its
/// build-history reference.
#[derive(Debug, Default)]
struct Identity {
    names: HashSet<String>,
    digests: HashSet<String>,
    build_ref: Option<String>,
    /// Names the progress stream pushed to, for builds no other input names.
    pushed_names: Vec<String>,
}

impl Identity {
    fn of(fragment: &Fragment) -> Identity {
        let info = &fragment.build.build;
        let mut identity = Identity {
            // `builder/node/ref` (buildx) and the bare `ref` (BuildKit) are the same record.
            build_ref: info
                .build_ref
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_string),
            ..Identity::default()
        };
        let names = info
            .image_names
            .iter()
            .chain(fragment.provenance.iter().flat_map(|p| &p.image_refs));
        for name in names {
            match name.split_once('@') {
                Some((name, _)) if !name.is_empty() => identity.names.insert(name.to_string()),
                Some(_) => false,
                None => identity.names.insert(name.clone()),
            };
        }
        identity.digests.extend(info.image_digest.clone());
        for pushed in fragment.build.exports.iter().flat_map(|e| &e.pushed) {
            if let Some((name, digest)) = pushed.split_once('@') {
                identity.names.insert(name.to_string());
                identity.digests.insert(digest.to_string());
                if !identity.pushed_names.iter().any(|n| n == name) {
                    identity.pushed_names.push(name.to_string());
                }
            }
        }
        identity
    }

    /// Why `other` cannot be the same build, when what both state disagrees.
    fn differs_from(&self, other: &Identity) -> Option<String> {
        if let (Some(a), Some(b)) = (&self.build_ref, &other.build_ref)
            && a != b
        {
            return Some(format!("build record {a} vs {b}"));
        }
        let disjoint = |a: &HashSet<String>, b: &HashSet<String>| {
            !a.is_empty() && !b.is_empty() && a.is_disjoint(b)
        };
        let list = |set: &HashSet<String>| {
            let mut items: Vec<&str> = set.iter().map(String::as_str).collect();
            items.sort_unstable();
            items.join(", ")
        };
        if disjoint(&self.digests, &other.digests) {
            return Some(format!(
                "image digest {} vs {}",
                list(&self.digests),
                list(&other.digests)
            ));
        }
        if disjoint(&self.names, &other.names) {
            return Some(format!(
                "image {} vs {}",
                list(&self.names),
                list(&other.names)
            ));
        }
        None
    }

    fn absorb(&mut self, other: Identity) {
        self.names.extend(other.names);
        self.digests.extend(other.digests);
        self.build_ref = self.build_ref.take().or(other.build_ref);
        for name in other.pushed_names {
            if !self.pushed_names.contains(&name) {
                self.pushed_names.push(name);
            }
        }
    }
}

/// Folds `other` into `base`; `base` wins where both state a fact.
pub fn merge_build(base: &mut Build, other: Build) {
    let Build {
        build,
        steps,
        cache_imports,
        cache_exports,
        exports,
        images,
        warnings,
        inputs,
        problems,
    } = other;
    merge_info(&mut base.build, build);
    if base.steps.is_empty() {
        base.steps = steps;
    } else {
        for step in steps {
            // Steps only one input knows of are left out: the richest input defines the build.
            if let Some(existing) = base.steps.iter_mut().find(|s| same_step(s, &step)) {
                fill_step(existing, step);
            }
        }
    }
    for import in cache_imports {
        match base
            .cache_imports
            .iter_mut()
            .find(|i| i.reference == import.reference)
        {
            Some(existing) => {
                existing.cache_type = existing.cache_type.take().or(import.cache_type);
                if existing.status == OutcomeStatus::Unknown {
                    existing.status = import.status;
                    existing.error = existing.error.take().or(import.error);
                }
                for (k, v) in import.attrs {
                    existing.attrs.entry(k).or_insert(v);
                }
            }
            None => base.cache_imports.push(import),
        }
    }
    for export in cache_exports {
        match base
            .cache_exports
            .iter_mut()
            .find(|e| e.cache_type.is_some() && e.cache_type == export.cache_type)
        {
            Some(existing) => {
                existing.reference = existing.reference.take().or(export.reference);
                existing.mode = existing.mode.take().or(export.mode);
                for (k, v) in export.attrs {
                    existing.attrs.entry(k).or_insert(v);
                }
            }
            None => base.cache_exports.push(export),
        }
    }
    extend_unique(&mut base.exports, exports);
    for image in images {
        if !base.images.iter().any(|i| i.platform == image.platform) {
            base.images.push(image);
        }
    }
    extend_unique(&mut base.warnings, warnings);
    extend_unique(&mut base.inputs, inputs);
    extend_unique(&mut base.problems, problems);
}

fn extend_unique<T: PartialEq>(into: &mut Vec<T>, items: Vec<T>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

fn same_step(a: &Step, b: &Step) -> bool {
    match (&a.vertex_digest, &b.vertex_digest) {
        (Some(x), Some(y)) => x == y,
        _ => a.name == b.name && a.platform == b.platform,
    }
}

fn fill_step(base: &mut Step, other: Step) {
    // A stated status beats an inferred or unfinished one.
    let base_weak =
        base.status_inferred || matches!(base.status, StepStatus::Incomplete | StepStatus::NotRun);
    let other_strong = !other.status_inferred
        && !matches!(other.status, StepStatus::Incomplete | StepStatus::NotRun);
    if base_weak && other_strong {
        base.status = other.status;
        base.status_inferred = false;
    }
    macro_rules! fill {
        ($($field:ident),*) => { $( if base.$field.is_none() { base.$field = other.$field; } )* };
    }
    fill!(
        duration_ms,
        started,
        completed,
        vertex_digest,
        dockerfile_line,
        remote_cache_bytes,
        layer_bytes,
        error
    );
    if base.inputs.is_empty() {
        base.inputs = other.inputs;
    }
    if base.layers.is_empty() {
        base.layers = other.layers;
    }
    if base.log_tail.is_empty() {
        base.log_tail = other.log_tail;
    }
    base.reads_context |= other.reads_context;
}

fn merge_info(base: &mut crate::model::BuildInfo, other: crate::model::BuildInfo) {
    macro_rules! fill {
        ($($field:ident),*) => { $( if base.$field.is_none() { base.$field = other.$field; } )* };
    }
    // A progress record can cover part of the build; a history record spans all of it.
    if other.duration_ms > base.duration_ms && other.started.is_some() {
        base.started = other.started;
        base.completed = other.completed;
        base.duration_ms = other.duration_ms;
    }
    fill!(
        image_digest,
        config_digest,
        build_ref,
        name,
        error,
        started,
        completed,
        duration_ms,
        dockerfile,
        vcs_revision,
        vcs_source,
        buildkit_cached_vertices,
        buildkit_total_vertices
    );
    if base.status == crate::model::BuildStatus::Unknown {
        base.status = other.status;
    }
    if base.image_names.is_empty() {
        base.image_names = other.image_names;
    }
    if base.platforms.is_empty() {
        base.platforms = other.platforms;
    }
    for (k, v) in other.build_args {
        base.build_args.entry(k).or_insert(v);
    }
    extend_unique(&mut base.materials, other.materials);
}

fn apply_provenance(build: &mut Build, provenance: &crate::readers::provenance::Provenance) {
    for step in &mut build.steps {
        let Some(facts) = step
            .vertex_digest
            .as_ref()
            .and_then(|d| provenance.vertices.get(d))
        else {
            continue;
        };
        if step.dockerfile_line.is_none() {
            step.dockerfile_line = facts.dockerfile_line;
        }
        if step.layers.is_empty() && !facts.layers.is_empty() {
            step.layers = facts.layers.clone();
            step.layer_bytes = crate::model::layers_size(&step.layers);
        }
        step.reads_context |= facts.reads_context;
    }
    let info = &mut build.build;
    extend_unique(&mut info.materials, provenance.materials.clone());
    for (k, v) in &provenance.build_args {
        info.build_args
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    if info.vcs_source.is_none() {
        info.vcs_source = provenance.vcs_source.clone();
    }
    if info.vcs_revision.is_none() {
        info.vcs_revision = provenance.vcs_revision.clone();
    }
    if let Some(image) = &provenance.image
        && !build.images.iter().any(|i| i.platform == image.platform)
    {
        build.images.push(image.clone());
    }
}
