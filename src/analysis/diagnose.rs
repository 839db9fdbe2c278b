//! Findings about a build's caching, each shown only when its evidence is in the records, with
//! the evidence named and a concrete fix.

use std::collections::{HashMap, HashSet};

use crate::model::{OutcomeStatus, RebuildReason, Step, StepKind, StepStatus};
use crate::report::{Diagnosis, Report};

pub fn diagnose(current: &Report, baseline: Option<&Report>) -> Vec<Diagnosis> {
    let mut found = Vec::new();
    build_failed(current, &mut found);
    let intermediate = intermediate_stages(current);
    // Under mode=min, intermediate stages are never in the cache: that finding explains them.
    let explained = if cache_mode_min(current, &intermediate, &mut found) {
        intermediate
    } else {
        HashSet::new()
    };
    cache_not_delivered(current, baseline, &explained, &mut found);
    cache_busting_order(current, &mut found);
    if let Some(baseline) = baseline {
        build_args_changed(current, baseline, &mut found);
        base_image_changed(current, baseline, &mut found);
    }
    found
}

/// Steps that did work although no change of theirs explains it: first in their chain and
/// not reading the build context.
fn first_in_chain_without_cause(step: &Step) -> bool {
    step.status.did_work()
        && matches!(
            step.rebuild_reason,
            Some(RebuildReason::NoCacheMatch | RebuildReason::CacheImportEmpty)
        )
}

/// Summed step durations; they come from the records, so the sum saturates.
fn total_ms<'a>(steps: impl Iterator<Item = &'a Step>) -> u64 {
    steps
        .filter_map(|s| s.duration_ms)
        .fold(0, u64::saturating_add)
}

fn chain_time(report: &Report, from: &Step) -> u64 {
    // The step and everything rebuilt only because of it, transitively.
    let mut names: HashSet<&str> = HashSet::from([from.name.as_str()]);
    let mut total = from.duration_ms.unwrap_or(0);
    for step in &report.build.steps {
        if let Some(RebuildReason::UpstreamRebuilt { upstream }) = &step.rebuild_reason
            && names.contains(upstream.as_str())
        {
            names.insert(step.name.as_str());
            total = total.saturating_add(step.duration_ms.unwrap_or(0));
        }
    }
    total
}

fn build_failed(report: &Report, found: &mut Vec<Diagnosis>) {
    let Some(step) = report
        .build
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
    else {
        return;
    };
    let output = step
        .log_tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(" Last output: `{}`.", l.trim()))
        .unwrap_or_default();
    let later = report
        .build
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::NotRun)
        .count();
    found.push(Diagnosis {
        kind: "build-failed".into(),
        severity: "error".into(),
        message: format!(
            "`{}` failed: {}.{output}{}",
            step.name,
            step.error.as_deref().unwrap_or("no error message"),
            if later > 0 {
                format!(" {later} later step(s) never ran.")
            } else {
                String::new()
            }
        ),
        fix: "Fix the failing command; the steps before it were served as the report shows, so \
              a rerun starts from there."
            .into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: None,
    });
}

fn cache_not_delivered(
    report: &Report,
    baseline: Option<&Report>,
    explained: &HashSet<Option<String>>,
    found: &mut Vec<Diagnosis>,
) {
    let steps = &report.build.steps;
    let imports = &report.build.cache_imports;
    // Steps the previous release had with the same vertex digest: identical work, redone.
    let baseline_digests: HashSet<&str> = baseline
        .map(|b| {
            b.build
                .steps
                .iter()
                .filter_map(|s| s.vertex_digest.as_deref())
                .collect()
        })
        .unwrap_or_default();
    let identical_rebuilt = steps
        .iter()
        .filter(|s| s.status.did_work() && !explained.contains(&s.stage))
        .filter(|s| {
            s.vertex_digest
                .as_deref()
                .is_some_and(|d| baseline_digests.contains(d))
        })
        .count();
    let redone: Vec<&Step> = steps
        .iter()
        .filter(|s| s.kind != StepKind::From && first_in_chain_without_cause(s))
        .filter(|s| !explained.contains(&s.stage))
        .filter(|s| {
            s.vertex_digest
                .as_deref()
                .is_some_and(|d| baseline_digests.contains(d))
                || matches!(s.rebuild_reason, Some(RebuildReason::CacheImportEmpty))
        })
        .collect();
    let failed_import = imports.iter().find(|i| i.status == OutcomeStatus::Failed);
    if redone.is_empty() && failed_import.is_none() {
        return;
    }
    let Some(first) = redone.first().copied().or_else(|| {
        steps
            .iter()
            .filter(|s| !explained.contains(&s.stage))
            .find(|s| first_in_chain_without_cause(s))
    }) else {
        // The import failed but every step was served or explained: a warning about the import.
        if let Some(import) = failed_import {
            found.push(import_failed_only(import));
        }
        return;
    };
    let mut evidence = Vec::new();
    if let Some(import) = failed_import {
        evidence.push(format!(
            "the cache import from `{}` failed: {}",
            import.reference,
            import.error.as_deref().unwrap_or("no error message")
        ));
    } else if imports.is_empty() {
        evidence.push("the build imported no cache (no --cache-from)".to_string());
    } else if imports.iter().all(|i| i.delivered == Some(false)) {
        evidence.push(format!(
            "the cache import from `{}` succeeded but served no step",
            imports[0].reference
        ));
    }
    let cause = likely_cause(report);
    let identical = if baseline.is_some() && !redone.is_empty() {
        format!(
            "{} step(s) identical to the previous release (same vertex digests) were rebuilt, starting with `{}`",
            identical_rebuilt.max(1),
            first.name
        )
    } else {
        format!(
            "`{}` and the steps after it were rebuilt from scratch",
            first.name
        )
    };
    let wasted: u64 = chain_time(report, first);
    found.push(Diagnosis {
        kind: "cache-not-delivered".into(),
        severity: "error".into(),
        message: format!(
            "The cache did not deliver: {identical}{}.{}",
            evidence
                .iter()
                .map(|e| format!("; {e}"))
                .collect::<String>(),
            cause
                .as_ref()
                .map(|(c, _)| format!(" Likely cause: {c}"))
                .unwrap_or_default()
        ),
        fix: cause.map(|(_, fix)| fix).unwrap_or_else(|| {
            "Import the cache the previous release exported: use the same cache ref (or scope) in \
             --cache-to and --cache-from across releases, e.g. \
             `type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max`."
                .to_string()
        }),
        step: Some(first.name.clone()),
        dockerfile_line: first.dockerfile_line,
        wasted_ms: Some(wasted),
    });
}

fn import_failed_only(import: &crate::model::CacheImport) -> Diagnosis {
    Diagnosis {
        kind: "cache-import-failed".into(),
        severity: "warning".into(),
        message: format!(
            "The cache import from `{}` failed: {}.",
            import.reference,
            import.error.as_deref().unwrap_or("no error message")
        ),
        fix: "Point --cache-from at a cache that a previous build exported, or remove it.".into(),
        step: None,
        dockerfile_line: None,
        wasted_ms: None,
    }
}

/// Why an import finds nothing, from the evidence in the refs and settings.
fn likely_cause(report: &Report) -> Option<(String, String)> {
    let tags: Vec<&str> = report
        .build
        .build
        .image_names
        .iter()
        .filter_map(|n| n.rsplit_once(':').map(|(_, t)| t))
        .filter(|t| !t.contains('/') && *t != "latest")
        .collect();
    for import in &report.build.cache_imports {
        if import.cache_type.as_deref() == Some("gha") && !import.attrs.contains_key("scope") {
            return Some((
                "a `type=gha` cache without `scope` is scoped per git ref, so a release tag never sees the cache of the branch or of the previous tag.".into(),
                "Give the cache a fixed scope on both sides (`type=gha,scope=IMAGE` in --cache-to \
                 and --cache-from), or move to a registry cache: \
                 `type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max`."
                    .into(),
            ));
        }
        let cache_tag = import
            .reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        if let Some(cache_tag) = cache_tag
            && let Some(tag) = tags.iter().find(|t| cache_tag.contains(**t))
        {
            return Some((
                format!(
                    "the cache ref's tag `{cache_tag}` contains this release's tag `{tag}`: each release imports a cache that no earlier release exported."
                ),
                format!(
                    "Use one cache ref for every release, without the version in it, in both \
                     --cache-to and --cache-from (e.g. `{}:buildcache`).",
                    import
                        .reference
                        .rsplit_once(':')
                        .map(|(r, _)| r)
                        .unwrap_or(&import.reference)
                ),
            ));
        }
        if let Some(error) = &import.error
            && (error.contains("invalid reference format") || error.contains("must be lowercase"))
        {
            return Some((
                format!(
                    "`{}` is not a valid image reference, so nothing can be imported from it.",
                    import.reference
                ),
                "Use a lowercase reference without spaces, the same in --cache-to and \
                 --cache-from (with build-push-action, derive it from a lowercased repository \
                 name, not `github.repository` as is)."
                    .into(),
            ));
        }
        if let Some(error) = &import.error
            && error.contains("not found")
        {
            return Some((
                "the cache ref does not exist: no build exported to it, or it expired or was evicted.".into(),
                "Export to the same ref the next build imports (`--cache-to type=registry,ref=REF,mode=max`), and check registry retention policies.".into(),
            ));
        }
    }
    None
}

/// Stages whose results other stages copy (`COPY --from=NAME`, or graph inputs).
fn intermediate_stages(report: &Report) -> HashSet<Option<String>> {
    let steps = &report.build.steps;
    let stage_of: HashMap<&str, &Option<String>> = steps
        .iter()
        .filter_map(|s| Some((s.vertex_digest.as_deref()?, &s.stage)))
        .collect();
    let mut stages = HashSet::new();
    for step in steps {
        if let Some(from) = step
            .instruction
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--from="))
        {
            stages.insert(Some(from.to_string()));
        }
        for input in &step.inputs {
            if let Some(stage) = stage_of.get(input.as_str())
                && **stage != step.stage
            {
                stages.insert((*stage).clone());
            }
        }
    }
    stages
}

/// Returns whether it found the build exporting its cache with mode=min.
fn cache_mode_min(
    report: &Report,
    intermediate: &HashSet<Option<String>>,
    found: &mut Vec<Diagnosis>,
) -> bool {
    let steps = &report.build.steps;
    let known_stages: HashSet<&Option<String>> = steps.iter().map(|s| &s.stage).collect();
    if intermediate.is_empty() || !intermediate.iter().any(|s| known_stages.contains(s)) {
        return false;
    }
    let (inner, last): (Vec<&Step>, Vec<&Step>) = steps
        .iter()
        .filter(|s| s.kind != StepKind::From)
        .partition(|s| intermediate.contains(&s.stage));
    let final_cached = last.iter().any(|s| s.status == StepStatus::Cached);
    let inner_cached = inner.iter().any(|s| s.status == StepStatus::Cached);
    let Some(first) = inner.iter().find(|s| first_in_chain_without_cause(s)) else {
        return false;
    };
    if !final_cached || inner_cached {
        return false;
    }
    let export_mode = report
        .build
        .cache_exports
        .iter()
        .find_map(|e| e.mode.as_deref())
        .map(|m| format!(" (this build exports with mode={m})"))
        .unwrap_or_default();
    found.push(Diagnosis {
        kind: "cache-mode-min".into(),
        severity: "warning".into(),
        message: format!(
            "Steps of the final stage came from the cache but no step of stage `{}` did: `{}` was rebuilt with nothing changed before it. The cache holds only the final stage's layers, as `mode=min` exports (the default, and inline cache){export_mode}.",
            first.stage.as_deref().unwrap_or("?"),
            first.name
        ),
        fix: "Export every stage's layers: `--cache-to type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max` (or `mode=max` on your gha/local cache).".into(),
        step: Some(first.name.clone()),
        dockerfile_line: first.dockerfile_line,
        wasted_ms: Some(total_ms(inner.iter().filter(|s| s.status.did_work()).copied())),
    });
    true
}

const INSTALL_WORDS: &[&str] = &[
    "install", "pip ", "pip3 ", "poetry", "uv sync", "uv pip", "npm ", "yarn", "pnpm", "bundle ",
    "composer", "go mod", "go build", "cargo ", "apt-get", "apk add", "dnf ", "yum ", "mvn ",
    "gradle", "download", "restore",
];

/// `COPY . .`, `COPY . /app`, `ADD . /src`, `COPY ./ ./`: the whole build context.
fn copies_whole_context(step: &Step) -> bool {
    if !matches!(step.kind, StepKind::Copy | StepKind::Add) || step.instruction.contains("--from") {
        return false;
    }
    let args: Vec<&str> = step
        .instruction
        .split_whitespace()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    args.len() >= 2
        && args[..args.len() - 1]
            .iter()
            .all(|a| matches!(*a, "." | "./" | "*"))
}

fn cache_busting_order(report: &Report, found: &mut Vec<Diagnosis>) {
    let steps = &report.build.steps;
    // Only when the copy itself was rebuilt because the context changed: on a cold build
    // everything is rebuilt anyway, and the order is not what cost the install.
    for copy in steps.iter().filter(|s| {
        copies_whole_context(s)
            && s.status.did_work()
            && s.rebuild_reason == Some(RebuildReason::ContextChanged)
    }) {
        // Expensive steps rebuilt only because this copy changed.
        let mut chain: HashSet<&str> = HashSet::from([copy.name.as_str()]);
        let mut victims: Vec<&Step> = Vec::new();
        for step in steps {
            if let Some(RebuildReason::UpstreamRebuilt { upstream }) = &step.rebuild_reason
                && chain.contains(upstream.as_str())
            {
                chain.insert(step.name.as_str());
                let lower = step.instruction.to_lowercase();
                if step.kind == StepKind::Run && INSTALL_WORDS.iter().any(|w| lower.contains(w)) {
                    victims.push(step);
                }
            }
        }
        let Some(install) = victims.first() else {
            continue;
        };
        found.push(Diagnosis {
            kind: "cache-busting-order".into(),
            severity: "warning".into(),
            message: format!(
                "`{}` copies the whole build context before `{}`: any source change invalidates the dependency install, which was rebuilt ({}).",
                copy.name,
                install.name,
                install.duration_ms.map(crate::report::format_duration).unwrap_or_else(|| "time unknown".into())
            ),
            fix: "Copy only the dependency manifests first (e.g. `COPY requirements.txt .` or `COPY package.json package-lock.json ./`), run the install, then `COPY . .`.".into(),
            step: Some(copy.name.clone()),
            dockerfile_line: copy.dockerfile_line,
            wasted_ms: Some(total_ms(victims.iter().copied())),
        });
    }
}

fn first_regressed(report: &Report) -> Option<&Step> {
    report.build.steps.iter().find(|s| {
        s.transition == Some(crate::model::Transition::Regressed) && first_in_chain_without_cause(s)
    })
}

fn build_args_changed(current: &Report, baseline: &Report, found: &mut Vec<Diagnosis>) {
    let now = &current.build.build.build_args;
    let before = &baseline.build.build.build_args;
    let changed: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
        .map(|(k, v)| format!("{k} ({} → {v})", before[k]))
        .collect();
    if changed.is_empty() {
        return;
    }
    let Some(step) = first_regressed(current) else {
        return;
    };
    found.push(Diagnosis {
        kind: "build-arg-changed".into(),
        severity: "notice".into(),
        message: format!(
            "Build argument(s) changed since the previous release: {}. `{}` and everything after it were rebuilt.",
            changed.join(", "),
            step.name
        ),
        fix: "Declare each ARG just before the first step that needs it, so a changed value only invalidates the steps that use it.".into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(chain_time(current, step)),
    });
}

fn base_image_changed(current: &Report, baseline: &Report, found: &mut Vec<Diagnosis>) {
    let base = |r: &Report| -> Vec<(String, String)> {
        r.build
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::From)
            .filter_map(|s| {
                let (name, digest) = s.instruction.trim_start_matches("FROM ").split_once('@')?;
                Some((
                    name.trim().to_string(),
                    digest.split_whitespace().next()?.to_string(),
                ))
            })
            .collect()
    };
    let before = base(baseline);
    let moved: Vec<String> = base(current)
        .into_iter()
        .filter_map(|(name, digest)| {
            let old = before.iter().find(|(n, _)| *n == name)?;
            (old.1 != digest).then(|| format!("{name} ({} → {})", short(&old.1), short(&digest)))
        })
        .collect();
    if moved.is_empty() {
        return;
    }
    let Some(step) = first_regressed(current) else {
        return;
    };
    found.push(Diagnosis {
        kind: "base-image-changed".into(),
        severity: "notice".into(),
        message: format!(
            "The base image moved since the previous release: {}. Every step on top of it was rebuilt, starting with `{}`.",
            moved.join(", "),
            step.name
        ),
        fix: "Expected after a base image update. To control when it happens, pin the base image by digest (`FROM image:tag@sha256:...`) and update it deliberately.".into(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: Some(chain_time(current, step)),
    });
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    // Char-wise: the digest comes from the record and need not be ASCII.
    match hex.char_indices().nth(12) {
        Some((cut, _)) => &hex[..cut],
        None => hex,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, CacheImport, Step};

    #[test]
    fn an_invalid_cache_ref_is_named_as_the_cause() {
        let build = Build {
            steps: vec![Step {
                name: "[2/2] RUN make".into(),
                instruction: "RUN make".into(),
                kind: StepKind::Run,
                status: StepStatus::Rebuilt,
                ..Step::default()
            }],
            cache_imports: vec![CacheImport {
                reference: "ghcr.io/Acme/App:buildcache".into(),
                status: OutcomeStatus::Failed,
                error: Some("invalid reference format: repository name must be lowercase".into()),
                ..CacheImport::default()
            }],
            ..Build::default()
        };
        let report = crate::analysis::analyze(build);
        let found = report
            .diagnoses
            .iter()
            .find(|d| d.kind == "cache-not-delivered")
            .expect("a finding");
        assert!(
            found
                .message
                .contains("`ghcr.io/Acme/App:buildcache` is not a valid image reference"),
            "{}",
            found.message
        );
        assert!(found.fix.contains("lowercase"), "{}", found.fix);
    }
}
