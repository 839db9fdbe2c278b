//! `cache-import-failed`: a cache import failed, but every step was served or explained, so
//! nothing was rebuilt because of it (when something was, `cache-not-delivered` or
//! `first-cache-build` says so).

use crate::analysis::diagnose::{Evidence, is_cache_cause};
use crate::model::OutcomeStatus;
use crate::report::{Diagnosis, DiagnosisKind, Severity};

pub(super) fn find(evidence: &Evidence) -> Option<Diagnosis> {
    let import = evidence
        .current
        .build
        .cache_imports
        .iter()
        .find(|i| i.status == OutcomeStatus::Failed)?;
    if evidence.current.build.steps.iter().any(|s| {
        s.status.did_work()
            && !evidence.explained.contains(&s.stage)
            && s.rebuild_reason.as_ref().is_some_and(is_cache_cause)
    }) {
        return None;
    }
    Some(Diagnosis {
        kind: DiagnosisKind::CacheImportFailed,
        severity: Severity::Warning,
        message: format!(
            "The cache import from `{}` failed: {}.",
            import.reference,
            import.error.as_deref().unwrap_or("no error message")
        ),
        fix: "Point --cache-from at a cache that a previous build exported, or remove it.".into(),
        step: None,
        dockerfile_line: None,
        wasted_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::model::{Build, CacheImport, OutcomeStatus, Step, StepKind, StepStatus};
    use crate::report::DiagnosisKind;

    fn step(name: &str, kind: StepKind, status: StepStatus) -> Step {
        Step {
            name: name.into(),
            instruction: name.split_once("] ").map_or(name, |(_, i)| i).into(),
            kind,
            status,
            ..Step::default()
        }
    }

    fn failed_import() -> CacheImport {
        CacheImport {
            reference: "registry.example/app:buildcache".into(),
            cache_type: Some("registry".into()),
            status: OutcomeStatus::Failed,
            error: Some("registry.example/app:buildcache: not found".into()),
            ..CacheImport::default()
        }
    }

    /// A registry that answers "not found" on a warm builder (the Engine's record of a refused
    /// import with every step served is in `tests/causes_fixtures.rs`): the build is made here,
    /// as such a builder's second build would record it.
    #[test]
    fn a_failed_import_with_every_step_served_is_a_warning_on_its_own() {
        let report = crate::analysis::analyze(Build {
            steps: vec![
                step("[1/3] FROM base:1", StepKind::From, StepStatus::Base),
                step("[2/3] COPY . .", StepKind::Copy, StepStatus::Cached),
                step("[3/3] RUN make", StepKind::Run, StepStatus::Cached),
            ],
            cache_imports: vec![failed_import()],
            ..Build::default()
        });
        let kinds: Vec<&DiagnosisKind> = report.diagnoses.iter().map(|d| &d.kind).collect();
        assert_eq!(kinds, [&DiagnosisKind::CacheImportFailed]);
        let found = &report.diagnoses[0];
        assert_eq!(
            found.message,
            "The cache import from `registry.example/app:buildcache` failed: \
             registry.example/app:buildcache: not found."
        );
        assert_eq!(found.severity, crate::report::Severity::Warning);
        assert_eq!(found.step, None);
    }

    #[test]
    fn a_failed_import_that_cost_rebuilds_is_cache_not_delivered_instead() {
        let refused = CacheImport {
            error: Some("unexpected status from HEAD request: 401 Unauthorized".into()),
            ..failed_import()
        };
        let report = crate::analysis::analyze(Build {
            steps: vec![
                step("[1/2] FROM base:1", StepKind::From, StepStatus::Base),
                step("[2/2] RUN make", StepKind::Run, StepStatus::Rebuilt),
            ],
            cache_imports: vec![refused],
            ..Build::default()
        });
        let kinds: Vec<&DiagnosisKind> = report.diagnoses.iter().map(|d| &d.kind).collect();
        assert_eq!(kinds, [&DiagnosisKind::CacheNotDelivered]);
        // A cache ref that does not exist yet, on a build with no earlier release: its first
        // build, a notice.
        let first = crate::analysis::analyze(Build {
            steps: vec![
                step("[1/2] FROM base:1", StepKind::From, StepStatus::Base),
                step("[2/2] RUN make", StepKind::Run, StepStatus::Rebuilt),
            ],
            cache_imports: vec![failed_import()],
            ..Build::default()
        });
        let kinds: Vec<&DiagnosisKind> = first.diagnoses.iter().map(|d| &d.kind).collect();
        assert_eq!(kinds, [&DiagnosisKind::FirstCacheBuild]);
        assert_eq!(first.diagnoses[0].severity, crate::report::Severity::Notice);
    }
}
