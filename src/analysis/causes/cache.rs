//! What the cache imports gave this build: whether each delivered, why one gave nothing, and
//! whether this is the first build of its cache (nothing was ever exported to it).

use crate::model::{Build, CacheImport, InputFormat, OutcomeStatus, StepKind, StepStatus};

/// How one cache import ended, from its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It succeeded and steps were served from the cache.
    Served,
    /// It succeeded but no step was served: a cold `type=gha` scope ends like this (it finds
    /// no index and loads nothing, without an error), as does a cache holding other steps.
    ServedNothing,
    /// The cache reference does not exist: nothing was exported to it, or it was deleted.
    NotFound,
    /// The reference is not a valid image reference.
    InvalidReference,
    /// Another failure (authorization, network, a damaged manifest).
    Failed,
    /// The records do not say how it ended.
    Unknown,
}

/// BuildKit reports why an import failed only in its error text; this is the one place that
/// reads it.
pub fn outcome(import: &CacheImport, served_any: bool) -> ImportOutcome {
    match import.status {
        OutcomeStatus::Ok if served_any => ImportOutcome::Served,
        OutcomeStatus::Ok => ImportOutcome::ServedNothing,
        OutcomeStatus::Unknown => ImportOutcome::Unknown,
        OutcomeStatus::Failed => {
            let error = import.error.as_deref().unwrap_or("").to_ascii_lowercase();
            if error.contains("invalid reference format") || error.contains("must be lowercase") {
                ImportOutcome::InvalidReference
            } else if error.contains("not found") || error.contains("manifest unknown") {
                ImportOutcome::NotFound
            } else {
                ImportOutcome::Failed
            }
        }
    }
}

/// Whether any step (other than a `FROM`) was served from a cache, local or imported.
pub fn served_any(build: &Build) -> bool {
    build
        .steps
        .iter()
        .any(|s| s.status == StepStatus::Cached && s.kind != StepKind::From)
}

/// Whether each cache import delivered: it succeeded and steps were served from cache.
pub fn judge_cache_imports(build: &mut Build) {
    let served = served_any(build);
    for import in &mut build.cache_imports {
        import.delivered = match import.status {
            OutcomeStatus::Failed => Some(false),
            OutcomeStatus::Ok => Some(served),
            OutcomeStatus::Unknown => None,
        };
    }
}

/// The build imported a cache but nothing came of it: every import failed, or nothing at all
/// was served from a cache.
pub fn imports_empty(build: &Build) -> bool {
    !build.cache_imports.is_empty()
        && (!served_any(build)
            || build
                .cache_imports
                .iter()
                .all(|i| i.status == OutcomeStatus::Failed))
}

/// The cache this build imports, when the records say it was never exported to: every import
/// found nothing (a registry ref that does not exist, a `type=gha` scope that loaded nothing),
/// no configuration error explains it (a release tag in the ref), and the previous release,
/// where there is one, exported no cache. Returns the cache's name.
pub fn first_build_of(build: &Build, previous: Option<&Build>) -> Option<String> {
    if !imports_empty(build) || misconfigured(build).is_some() {
        return None;
    }
    let served = served_any(build);
    let all_empty = build.cache_imports.iter().all(|i| {
        matches!(
            outcome(i, served),
            ImportOutcome::NotFound | ImportOutcome::ServedNothing
        )
    });
    if !all_empty {
        return None;
    }
    if let Some(previous) = previous
        && !(previous.cache_exports.is_empty() && records_progress(previous))
    {
        return None;
    }
    build.cache_imports.first().map(cache_name)
}

/// `REF`, or `type=gha scope=NAME` (`buildkit`, the default scope, when none is set).
pub fn cache_name(import: &CacheImport) -> String {
    if import.cache_type.as_deref() == Some("gha") {
        let scope = import
            .attrs
            .get("scope")
            .map(String::as_str)
            .unwrap_or("buildkit");
        return format!("type=gha scope={scope}");
    }
    import.reference.clone()
}

/// Whether the build's records include its progress (where cache exports show).
fn records_progress(build: &Build) -> bool {
    build.inputs.iter().any(|i| {
        matches!(
            i.format,
            InputFormat::Rawjson
                | InputFormat::Plain
                | InputFormat::Dockerbuild
                | InputFormat::Report
        )
    })
}

/// A configuration that makes every import find nothing, whatever was exported before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misconfiguration {
    /// The cache ref's tag carries this release's version tag: each release imports a ref that
    /// no earlier release exported.
    ReleaseTagInRef {
        reference: String,
        cache_tag: String,
        release_tag: String,
    },
    /// The cache ref is not a valid image reference.
    InvalidReference { reference: String },
}

/// The first import whose configuration explains an empty import.
pub fn misconfigured(build: &Build) -> Option<Misconfiguration> {
    let tags: Vec<&str> = build
        .build
        .image_names
        .iter()
        .filter_map(|n| n.rsplit_once(':').map(|(_, t)| t))
        .filter(|t| !t.contains('/') && is_version(t))
        .collect();
    let served = served_any(build);
    for import in &build.cache_imports {
        if outcome(import, served) == ImportOutcome::InvalidReference {
            return Some(Misconfiguration::InvalidReference {
                reference: import.reference.clone(),
            });
        }
        let cache_tag = import
            .reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        if let Some(cache_tag) = cache_tag
            && let Some(tag) = tags.iter().find(|t| cache_tag.contains(**t))
        {
            return Some(Misconfiguration::ReleaseTagInRef {
                reference: import.reference.clone(),
                cache_tag: cache_tag.to_string(),
                release_tag: tag.to_string(),
            });
        }
    }
    None
}

/// `v2`, `1.4.0`, `v1.2.3-rc1`: a release's tag, as opposed to a branch's (`main`), whose
/// own cache ref (`:buildcache-main`) is a sound setup that the next build of the branch reads.
fn is_version(tag: &str) -> bool {
    tag.strip_prefix('v')
        .unwrap_or(tag)
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tags_look_like_versions() {
        for tag in ["v2", "1.4.0", "v1.2.3-rc1", "2024.05"] {
            assert!(is_version(tag), "{tag}");
        }
        for tag in ["main", "latest", "feature-x", "pr-12", "vnext"] {
            assert!(!is_version(tag), "{tag}");
        }
    }
}
