//! Findings from the repository's GitHub Actions cache (`gha_cache`, read when the build
//! uses `type=gha`):
//!
//! - `gha-cache-usage`: BuildKit's entries per ref and scope, the total against the 10 GB
//!   repository limit (least recently used entries are evicted beyond it), and the entries
//!   unused for 7 days (evicted);
//! - `gha-cache-ref`: the refs this run can restore from: a tag run only reaches its own tag
//!   and the default branch, whatever the scope;
//! - `gha-cache-shared-scope`: the default scope `buildkit`, whose index every image built
//!   without `scope` replaces.

use crate::analysis::diagnose::Evidence;
use crate::analysis::gha_cache::{DEFAULT_SCOPE, GhaCache, UNUSED_DAYS};
use crate::model::{CacheImport, OutcomeStatus};
use crate::report::{Diagnosis, DiagnosisKind, Report, Severity, format_bytes};

/// Refs named in the usage finding; the rest are counted.
const MAX_REFS: usize = 5;

/// The share of the limit past which the usage is a warning.
const NEAR_LIMIT_PERCENT: u64 = 80;

pub(super) fn find(evidence: &Evidence) -> Vec<Diagnosis> {
    let report = evidence.current;
    let Some(cache) = &report.gha_cache else {
        return Vec::new();
    };
    let mut found = vec![usage(cache)];
    found.extend(reach(report, cache));
    found.extend(shared_scope(report, cache));
    found
}

fn finding(kind: DiagnosisKind, severity: Severity, message: String, fix: &str) -> Diagnosis {
    Diagnosis {
        kind,
        severity,
        message,
        fix: fix.into(),
        step: None,
        dockerfile_line: None,
        wasted_ms: None,
    }
}

fn usage(cache: &GhaCache) -> Diagnosis {
    let total = cache.total_bytes();
    let percent = total.saturating_mul(100) / cache.limit_bytes.max(1);
    let mut refs: Vec<String> = cache
        .refs
        .iter()
        .take(MAX_REFS)
        .map(|r| {
            let scopes: Vec<String> = r.indexes.iter().map(|i| format!("`{}`", i.scope)).collect();
            let scopes = if scopes.is_empty() {
                "no index".to_string()
            } else {
                format!("scope {}", scopes.join(", "))
            };
            format!(
                "`{}`: {} blobs, {} ({scopes})",
                r.git_ref,
                r.blobs,
                format_bytes(r.blob_bytes)
            )
        })
        .collect();
    if cache.refs.len() > MAX_REFS {
        refs.push(format!("{} more refs", cache.refs.len() - MAX_REFS));
    }
    let listed = if refs.is_empty() {
        "no BuildKit entries".to_string()
    } else {
        format!("BuildKit entries per ref: {}", refs.join("; "))
    };
    let truncated = if cache.listing_truncated {
        format!(
            " (the {} most recently used entries were read)",
            cache.entries_listed
        )
    } else {
        String::new()
    };
    let unused = if cache.unused_entries > 0 {
        format!(
            " {} BuildKit entries ({}) were not used for {UNUSED_DAYS} days: GitHub evicts them.",
            cache.unused_entries,
            format_bytes(cache.unused_bytes)
        )
    } else {
        String::new()
    };
    let severity = if percent >= NEAR_LIMIT_PERCENT {
        Severity::Warning
    } else {
        Severity::Notice
    };
    finding(
        DiagnosisKind::GhaCacheUsage,
        severity,
        format!(
            "The repository's Actions cache holds {} of its 10 GB limit ({percent}%); beyond it GitHub evicts the least recently used entries. {listed}{truncated}.{unused}",
            format_bytes(total)
        ),
        "Keep the cache under the limit: export `mode=max` from one branch only (the default branch), give each image its own `scope`, and delete stale refs' entries (`gh cache delete`); or move to a registry cache (`type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max`), which has no such limit.",
    )
}

fn gha_imports(report: &Report) -> impl Iterator<Item = &CacheImport> {
    report
        .build
        .cache_imports
        .iter()
        .filter(|i| i.cache_type.as_deref() == Some("gha"))
}

fn delivered_nothing(report: &Report) -> bool {
    let mut imports = gha_imports(report).peekable();
    imports.peek().is_some()
        && imports.all(|i| i.delivered == Some(false) || i.status == OutcomeStatus::Failed)
}

/// Which refs this run restores from, and whether they hold the scopes it imports.
fn reach(report: &Report, cache: &GhaCache) -> Option<Diagnosis> {
    let run = &cache.run;
    let missing: Vec<&String> = cache
        .scopes
        .iter()
        .filter(|scope| cache.reachable_index(scope).is_none())
        .collect();
    let default_branch = run
        .default_branch
        .as_deref()
        .unwrap_or("the default branch");
    let own = run.git_ref.as_deref().unwrap_or("this run's ref");
    let fix = "Export the cache from pushes to the default branch (a workflow on `push: branches: [main]` with `cache-to: type=gha,mode=max,scope=IMAGE`), so tags and pull requests import it; or use a registry cache (`type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max`), which every ref reads.";
    if run.is_tag() {
        let held = if missing.is_empty() {
            format!(
                "`{default_branch}` holds an index for {}",
                scope_list(&cache.scopes)
            )
        } else {
            format!(
                "`{default_branch}` holds no index for {}, so this build started cold",
                scope_list(&missing)
            )
        };
        let severity = if missing.is_empty() {
            Severity::Notice
        } else {
            Severity::Warning
        };
        return Some(finding(
            DiagnosisKind::GhaCacheRef,
            severity,
            format!(
                "This is a tag run (`{own}`): GitHub lets it restore caches of its own tag and of the default branch only, whatever the `scope`; another tag's cache is never reachable. {held}."
            ),
            fix,
        ));
    }
    if missing.is_empty() || !delivered_nothing(report) {
        return None;
    }
    let mut reachable = vec![format!("`{own}`"), format!("`{default_branch}`")];
    if let Some(base) = &run.base_ref {
        reachable.push(format!("`{base}`"));
    }
    Some(finding(
        DiagnosisKind::GhaCacheRef,
        Severity::Warning,
        format!(
            "The `type=gha` import served nothing: none of the refs this run can restore from ({}) holds an index for {}. GitHub isolates caches by ref; entries exported on other branches or tags are not reachable.",
            reachable.join(", "),
            scope_list(&missing)
        ),
        fix,
    ))
}

/// The default scope is one index per ref for every image that leaves `scope` unset.
fn shared_scope(report: &Report, cache: &GhaCache) -> Option<Diagnosis> {
    if !cache.scopes.iter().any(|s| s == DEFAULT_SCOPE) {
        return None;
    }
    let overwritten = delivered_nothing(report) && cache.reachable_index(DEFAULT_SCOPE).is_some();
    let (severity, evidence) = if overwritten {
        let on = cache
            .reachable_index(DEFAULT_SCOPE)
            .map(|r| r.git_ref.as_str())
            .unwrap_or_default();
        (
            Severity::Warning,
            format!(
                " The index on `{on}` was there but served no step: another image's export most likely replaced it."
            ),
        )
    } else {
        (Severity::Notice, String::new())
    };
    Some(finding(
        DiagnosisKind::GhaCacheSharedScope,
        severity,
        format!(
            "This build uses the default `type=gha` scope `{DEFAULT_SCOPE}`: every image built in this repository without `scope` writes the same index on a ref and each export replaces the previous one, so when several images share it they evict each other's cache.{evidence}"
        ),
        "Give each image its own scope on both sides: `cache-from: type=gha,scope=IMAGE` and `cache-to: type=gha,mode=max,scope=IMAGE`.",
    ))
}

fn scope_list(scopes: &[impl AsRef<str>]) -> String {
    let names: Vec<String> = scopes.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match names.len() {
        1 => format!("scope {}", names[0]),
        _ => format!("scopes {}", names.join(", ")),
    }
}
