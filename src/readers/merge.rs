//! Combining what several inputs say about one build.

use crate::model::{Build, OutcomeStatus, Problem, Step, StepStatus};
use crate::readers::{Fragment, InputFormat};

/// Progress streams first (they state per-step status), richest first; then records.
fn precedence(format: InputFormat) -> u8 {
    match format {
        InputFormat::Rawjson => 0,
        InputFormat::Dockerbuild => 1,
        InputFormat::Report => 2,
        InputFormat::Plain => 3,
        InputFormat::History | InputFormat::HistoryInspect => 4,
        InputFormat::Metadata | InputFormat::Provenance => 5,
    }
}

pub fn merge_fragments(mut fragments: Vec<(InputFormat, Fragment)>) -> Build {
    fragments.sort_by_key(|(format, _)| precedence(*format));
    let mut merged = Build::default();
    let mut provenance = Vec::new();
    for (_, fragment) in fragments {
        merge_build(&mut merged, fragment.build);
        provenance.extend(fragment.provenance);
    }
    for p in &provenance {
        apply_provenance(&mut merged, p);
    }
    let explained = merged
        .problems
        .iter()
        .any(|p| p.message.contains("Dockerfile step") || p.message.contains("status log"));
    if merged.steps.is_empty() && !merged.inputs.is_empty() && !explained {
        merged.problems.push(Problem {
            source: merged
                .inputs
                .iter()
                .map(|i| i.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            message: "no per-step progress among the inputs: pass the build's rawjson or plain \
                      progress log (or a .dockerbuild bundle) to see what was cached"
                .to_string(),
        });
    }
    merged
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
    fill!(
        image_digest,
        config_digest,
        build_ref,
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
            step.layer_bytes = step.layers.iter().map(|l| l.size).sum();
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
