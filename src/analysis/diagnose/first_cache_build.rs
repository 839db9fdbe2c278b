//! `first-cache-build`: nothing was ever exported to the cache this build imports, so it could
//! serve nothing: the first build of a cache ref (a notice, not a fault).

use crate::analysis::diagnose::{Chain, Evidence, count};
use crate::model::RebuildReason;
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let report = evidence.current;
    let step = report.build.steps.iter().find(|s| {
        s.status.did_work()
            && matches!(
                s.rebuild_reason,
                Some(RebuildReason::FirstCacheBuild { .. })
            )
    })?;
    let Some(RebuildReason::FirstCacheBuild { cache }) = &step.rebuild_reason else {
        return None;
    };
    let gha = cache.starts_with("type=gha");
    let exports = !report.build.cache_exports.is_empty();
    let built = format!(
        "`{}` and the {} after it were built",
        step.name,
        count(Chain::of(report, step).following, "step")
    );
    let message = if gha {
        format!(
            "The GitHub Actions cache (`{cache}`) held nothing this run can restore, so {built}: the import completed and loaded nothing. Either nothing was exported to it yet (its first build), or this run's ref cannot reach what was: a run restores only the caches saved by its own ref (branch or tag), its base branch and the default branch."
        )
    } else {
        format!(
            "Nothing was ever exported to the cache `{cache}` (the import found no such ref): this is its first build, so {built}.{}",
            if exports {
                " The next build imports what this one exports."
            } else {
                ""
            }
        )
    };
    let fix = match (gha, exports) {
        (true, _) => "Nothing to fix for a first build. So that every tag and pull-request build finds a cache, export it from pushes to the default branch (`--cache-to type=gha,mode=max`).".to_string(),
        (false, true) => "Nothing to fix: the next build is served from what this one exports (keep the same ref in --cache-to and --cache-from).".to_string(),
        (false, false) => format!(
            "This build exports no cache, so the next one will find nothing either: add `--cache-to type=registry,ref={cache},mode=max`."
        ),
    };
    Some(Diagnosis {
        kind: DiagnosisKind::FirstCacheBuild,
        severity: Severity::Notice,
        message,
        fix,
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: None,
    })
}
