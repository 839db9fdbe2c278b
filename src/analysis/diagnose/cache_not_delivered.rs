//! `cache-not-delivered`: steps identical to the previous release (same vertex digest), or
//! first in their chain with an empty import, were rebuilt; says whether the import failed or
//! served nothing, and the likely cause.

use std::collections::HashSet;

use crate::analysis::diagnose::{
    Evidence, chain_time, first_in_chain_without_cause, first_unexplained_rebuild,
};
use crate::model::{OutcomeStatus, RebuildReason, Step, StepKind};
use crate::report::{Diagnosis, DiagnosisKind, Report, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let explained = evidence.explained;
    let steps = &report.build.steps;
    let imports = &report.build.cache_imports;
    // Steps the previous release had with the same vertex digest: identical work, redone.
    let baseline_digests: HashSet<&str> = evidence
        .baseline
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
        return None;
    }
    // Without a step to blame, a failed import is `cache-import-failed` on its own.
    let first = redone
        .first()
        .copied()
        .or_else(|| first_unexplained_rebuild(evidence))?;
    let mut found_evidence = Vec::new();
    if let Some(import) = failed_import {
        found_evidence.push(format!(
            "the cache import from `{}` failed: {}",
            import.reference,
            import.error.as_deref().unwrap_or("no error message")
        ));
    } else if imports.is_empty() {
        found_evidence.push("the build imported no cache (no --cache-from)".to_string());
    } else if imports.iter().all(|i| i.delivered == Some(false)) {
        found_evidence.push(format!(
            "the cache import from `{}` succeeded but served no step",
            imports[0].reference
        ));
    }
    let cause = likely_cause(report);
    let identical = if evidence.baseline.is_some() && !redone.is_empty() {
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
    Some(Diagnosis {
        kind: DiagnosisKind::CacheNotDelivered,
        severity: Severity::Error,
        message: format!(
            "The cache did not deliver: {identical}{}.{}",
            found_evidence
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
    })
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

#[cfg(test)]
mod tests {
    use crate::model::{Build, CacheImport, OutcomeStatus, Step, StepKind, StepStatus};
    use crate::report::DiagnosisKind;

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
            .find(|d| d.kind == DiagnosisKind::CacheNotDelivered)
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
