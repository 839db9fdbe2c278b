//! `cache-not-delivered`: steps defined as in the previous release were rebuilt (same
//! instruction, build arguments, inputs and build-context files), or the cache import gave
//! nothing for a reason that is not a first build; says whether the import failed or served
//! nothing, and the likely cause.

use crate::analysis::causes::cache::{self, ImportOutcome, Misconfiguration};
use crate::analysis::diagnose::{Chain, Evidence, count};
use crate::model::{RebuildReason, Step, StepKind};
use crate::report::{Diagnosis, DiagnosisKind, Report, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let explained = evidence.explained;
    let steps = &report.build.steps;
    let imports = &report.build.cache_imports;
    // First in their chain, and the cache is to blame: defined as in the previous release,
    // or (without one) the import gave nothing for a reason other than a first build.
    let first = steps
        .iter()
        .filter(|s| s.kind != StepKind::From && !explained.contains(&s.stage))
        .find(|s| {
            s.status.did_work()
                && matches!(
                    s.rebuild_reason,
                    Some(RebuildReason::CacheNotDelivered | RebuildReason::CacheImportEmpty)
                )
        })?;
    let rebuilt = |s: &&Step| s.status.did_work() && !explained.contains(&s.stage);
    let identical = steps
        .iter()
        .filter(rebuilt)
        .filter(|s| s.same_definition == Some(true))
        .count();
    let undecided = steps
        .iter()
        .filter(rebuilt)
        .filter(|s| s.kind != StepKind::From && s.same_definition.is_none())
        .count();
    let served = cache::served_any(&report.build);
    let mut found_evidence = Vec::new();
    if let Some(import) = imports
        .iter()
        .find(|i| i.status == crate::model::OutcomeStatus::Failed)
    {
        found_evidence.push(format!(
            "the cache import from `{}` failed: {}",
            import.reference,
            import.error.as_deref().unwrap_or("no error message")
        ));
    } else if imports.is_empty() {
        found_evidence.push("the build imported no cache (no --cache-from)".to_string());
    } else if let Some(import) = imports
        .iter()
        .find(|i| cache::outcome(i, served) == ImportOutcome::ServedNothing)
    {
        found_evidence.push(format!(
            "the cache import from `{}` completed but served no step",
            cache::cache_name(import)
        ));
    }
    let what = if evidence.baseline.is_some() && identical > 0 {
        format!(
            "{} defined exactly as in the previous release (same instruction, build arguments, inputs and build-context files) {} rebuilt, starting with `{}`{}",
            count(identical, "step"),
            if identical == 1 { "was" } else { "were" },
            first.name,
            if undecided > 0 {
                format!(
                    "; {undecided} more may be (the records do not say whether the build-context files they copy changed)"
                )
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "`{}` and the steps after it were rebuilt from scratch",
            first.name
        )
    };
    let cause = likely_cause(report, evidence.baseline);
    Some(Diagnosis {
        kind: DiagnosisKind::CacheNotDelivered,
        severity: Severity::Error,
        message: format!(
            "The cache did not deliver: {what}{}.{}",
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
            "Import the cache the previous release exported: use the same cache ref in \
             --cache-to and --cache-from across releases, e.g. \
             `type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max`."
                .to_string()
        }),
        step: Some(first.name.clone()),
        dockerfile_line: first.dockerfile_line,
        wasted_ms: Some(Chain::of(report, first).ms),
    })
}

/// Why an import gives nothing, from the evidence in the refs and settings.
fn likely_cause(report: &Report, baseline: Option<&Report>) -> Option<(String, String)> {
    match cache::misconfigured(&report.build) {
        Some(Misconfiguration::ReleaseTagInRef {
            reference,
            cache_tag,
            release_tag,
        }) => {
            return Some((
                format!(
                    "the cache ref's tag `{cache_tag}` contains this release's tag `{release_tag}`: each release imports a cache that no earlier release exported."
                ),
                format!(
                    "Use one cache ref for every release, without the version in it, in both \
                     --cache-to and --cache-from (e.g. `{}:buildcache`).",
                    reference
                        .rsplit_once(':')
                        .map(|(r, _)| r)
                        .unwrap_or(&reference)
                ),
            ));
        }
        Some(Misconfiguration::InvalidReference { reference }) => {
            return Some((
                format!(
                    "`{reference}` is not a valid image reference, so nothing can be imported from it."
                ),
                "Use a lowercase reference without spaces, the same in --cache-to and \
                 --cache-from (with build-push-action, derive it from a lowercased repository \
                 name, not `github.repository` as is)."
                    .into(),
            ));
        }
        None => {}
    }
    let served = cache::served_any(&report.build);
    for import in &report.build.cache_imports {
        if import.cache_type.as_deref() == Some("gha") {
            let scope = import.attrs.get("scope").map_or_else(
                || "without `scope`, the default scope `buildkit`".to_string(),
                |s| format!("scope `{s}`"),
            );
            return Some((
                format!(
                    "a `type=gha` cache ({scope}) is stored in GitHub's Actions cache, and a workflow run restores only the caches saved by its own ref (branch or tag), its base branch and the default branch: a tag build never sees the cache another tag saved, whatever the scope. Entries unused for 7 days, or beyond the repository's 10 GB, are evicted."
                ),
                "Export the cache from pushes to the default branch (the same `--cache-to \
                 type=gha,mode=max` in the workflow that builds it), so tag and pull-request \
                 builds restore it; or use a registry cache: \
                 `type=registry,ref=REGISTRY/IMAGE:buildcache,mode=max` in both --cache-to and \
                 --cache-from."
                    .into(),
            ));
        }
        if cache::outcome(import, served) == ImportOutcome::NotFound {
            let exported = baseline.is_some_and(|b| !b.build.cache_exports.is_empty());
            return Some((
                if exported {
                    "the cache ref does not exist although the previous release exported a cache: it exported to another ref, or the cache expired or was deleted.".into()
                } else {
                    "the cache ref does not exist: no build exported to it, or it expired or was deleted.".into()
                },
                "Export to the same ref the next build imports (`--cache-to type=registry,ref=REF,mode=max`), and check registry retention policies.".into(),
            ));
        }
    }
    // A `FROM` of an image whose digest the records do not give (a local image): a tag that
    // moved since leaves no trace in them.
    let from = report
        .build
        .steps
        .iter()
        .find(|s| s.kind == StepKind::From && !s.instruction.contains('@'))?;
    Some((
        format!(
            "the records do not give the digest of the base image (`{}`): if its tag now points to another image, no step built on it can come from the cache.",
            from.instruction.trim_start_matches("FROM ").trim()
        ),
        "Pin the base image by digest (`FROM image:tag@sha256:...`), or pull it from a registry so the records name its digest.".into(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::model::{
        Build, CacheExport, CacheImport, InputFile, InputFormat, OutcomeStatus, Step, StepKind,
        StepStatus,
    };
    use crate::report::{DiagnosisKind, Severity};

    fn gha_build(status: StepStatus) -> Build {
        let step = |name: &str, kind, status| Step {
            name: name.into(),
            instruction: name.split_once("] ").unwrap().1.into(),
            kind,
            status,
            index: name[1..2].parse().ok(),
            total: Some(2),
            ..Step::default()
        };
        Build {
            steps: vec![
                step(
                    "[1/2] FROM busybox:1@sha256:aa",
                    StepKind::From,
                    StepStatus::Base,
                ),
                step("[2/2] RUN make", StepKind::Run, status),
            ],
            cache_imports: vec![CacheImport {
                reference: "gha:15821783609297185231".into(),
                cache_type: Some("gha".into()),
                status: OutcomeStatus::Ok,
                ..CacheImport::default()
            }],
            cache_exports: vec![CacheExport {
                name: "exporting to GitHub Actions Cache".into(),
                status: OutcomeStatus::Ok,
                ..CacheExport::default()
            }],
            inputs: vec![InputFile {
                path: "build.rawjson".into(),
                format: InputFormat::Rawjson,
            }],
            ..Build::default()
        }
    }

    /// A `type=gha` import completes and loads nothing when GitHub gives this run no cache.
    #[test]
    fn an_empty_gha_cache_is_explained_by_github_s_rule_not_by_its_scope() {
        let previous = crate::analysis::analyze(gha_build(StepStatus::Rebuilt));
        // The first build of the cache: a notice.
        assert_eq!(previous.diagnoses.len(), 1);
        let first = &previous.diagnoses[0];
        assert_eq!(first.kind, DiagnosisKind::FirstCacheBuild);
        assert_eq!(first.severity, Severity::Notice);
        assert!(
            first.message.contains("`type=gha scope=buildkit`")
                && first.message.contains(
                    "its own ref (branch or tag), its base branch and the default branch"
                ),
            "{}",
            first.message
        );
        // The previous release exported it, and this run restored nothing: not delivered.
        let mut report = crate::analysis::analyze(gha_build(StepStatus::Rebuilt));
        crate::analysis::analyze_against(&mut report, &previous, "previous.json");
        let found = report
            .diagnoses
            .iter()
            .find(|d| d.kind == DiagnosisKind::CacheNotDelivered)
            .expect("cache-not-delivered");
        assert!(
            found.message.contains("completed but served no step")
                && found.message.contains("the default scope `buildkit`")
                && found.message.contains(
                    "a tag build never sees the cache another tag saved, whatever the scope"
                ),
            "{}",
            found.message
        );
        assert!(!found.message.contains("scoped per"), "{}", found.message);
        assert!(
            found.fix.contains("pushes to the default branch")
                && found.fix.contains("type=registry"),
            "{}",
            found.fix
        );
    }

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
