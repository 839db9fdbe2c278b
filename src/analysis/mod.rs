//! Analysis on the normalized model alone: no I/O, so it is tested on data.
//!
//! [`analyze_facts`] is the one analysis of a build: it takes every fact at once (the build
//! as read, image layers and sizes from sources outside the records, the baseline) and
//! returns the finished report; nothing is patched into a report afterwards. Dockerfile lines
//! (`dockerfile`) and gates (`gates`) are later stages of the pipeline, over the report.

pub mod audit;
pub mod causes;
pub mod compare;
pub mod cost;
pub mod diagnose;
pub mod dockerfile;
pub mod gates;
pub mod matching;
pub mod summary;

use crate::model::{Build, PlatformImage};
use crate::report::{Generator, Report, SCHEMA_VERSION};

/// Everything the analysis of one build looks at.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The build as its records give it.
    pub build: Build,
    /// This build's image as a registry serves it: its layers replace what the records say
    /// (when it has any).
    pub image: Option<Vec<PlatformImage>>,
    /// Per step of `build.steps` (same order), the size the local Docker Engine's image
    /// history gives, for the steps whose size the records do not give.
    pub engine_step_bytes: Option<Vec<Option<u64>>>,
    /// The earlier build to compare with.
    pub baseline: Option<Baseline>,
    /// The previous release's image as a registry serves it: its layers stand for the
    /// baseline's in the pull cost, with or without a baseline report.
    pub baseline_image: Option<Vec<PlatformImage>>,
    /// The Dockerfile's text, where one was given: each step's instruction before BuildKit
    /// expanded its arguments, and the `ARG`s in scope, for the causes.
    pub dockerfile: Option<String>,
}

/// An earlier build's report and where it came from (a path, an artifact, a release asset).
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub report: Report,
    pub source: String,
}

impl From<Build> for Facts {
    fn from(build: Build) -> Self {
        Facts {
            build,
            ..Facts::default()
        }
    }
}

/// Turns a build into a report: why each step was rebuilt, whether cache imports delivered,
/// the summary, and the findings that need no baseline.
pub fn analyze(build: Build) -> Report {
    analyze_facts(Facts::from(build))
}

/// The report over every fact: sizes from the image sources, why each step was rebuilt,
/// whether cache imports delivered, the summary, the comparison with the baseline and the
/// pull cost, what the cache cost and saved, and the findings with all that evidence.
pub fn analyze_facts(facts: Facts) -> Report {
    let Facts {
        mut build,
        image,
        engine_step_bytes,
        baseline,
        baseline_image,
        dockerfile,
    } = facts;
    if let Some(images) = image.filter(|images| !images.is_empty()) {
        build.images = images;
    }
    if let Some(sizes) = engine_step_bytes {
        for (step, size) in build.steps.iter_mut().zip(sizes) {
            if step.layer_bytes.is_none() {
                step.layer_bytes = size;
            }
        }
    }
    causes::judge_cache_imports(&mut build);
    let summary = summary::summarize(&build);
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        generator: Generator::default(),
        build,
        summary,
        diagnoses: Vec::new(),
        comparison: None,
    };
    let baseline = baseline.map(|mut baseline| {
        if let Some(images) = &baseline_image {
            baseline.report.build.images = images.clone();
        }
        baseline
    });
    let written = dockerfile.as_deref().map(dockerfile::written_steps);
    let knowledge = causes::Knowledge {
        dockerfile: written.as_ref(),
        ..causes::Knowledge::default()
    };
    match (&baseline, &baseline_image) {
        (Some(baseline), _) => {
            explain_and_compare(
                &mut report,
                Some((&baseline.report, &baseline.source)),
                knowledge,
            );
        }
        (None, images) => {
            explain_and_compare(&mut report, None, knowledge);
            if let Some(images) = images {
                let cost = compare::pull_cost(&report.build.images, images);
                report.summary.pull_bytes = compare::upgrade_bytes(&cost);
            }
        }
    }
    report
}

/// Compares a report already analysed without a baseline with `baseline`, and redoes the
/// causes and findings with that evidence: what [`analyze_facts`] does given the baseline, for
/// callers that hold the report rather than the build (tests, the comparison benchmark).
pub fn analyze_against(report: &mut Report, baseline: &Report, baseline_source: &str) {
    explain_and_compare(
        report,
        Some((baseline, baseline_source)),
        causes::Knowledge::default(),
    );
}

/// Why each step was rebuilt, the comparison, what the cache cost, and the findings: every
/// stage that depends on the baseline.
fn explain_and_compare(
    report: &mut Report,
    baseline: Option<(&Report, &str)>,
    knowledge: causes::Knowledge<'_>,
) {
    let matches = baseline.map(|(b, _)| matching::match_steps(&report.build.steps, &b.build.steps));
    let previous = baseline
        .zip(matches.as_deref())
        .map(|((b, _), matches)| causes::Previous {
            build: &b.build,
            matches,
        });
    causes::explain(&mut report.build, previous, knowledge);
    if let (Some((baseline, source)), Some(matches)) = (baseline, &matches) {
        compare::compare_matched(report, baseline, source, matches);
    }
    cost::carry_build_times(&mut report.build, previous);
    cost::summarize(report);
    report.diagnoses = diagnose::diagnose_matched(
        report,
        baseline.map(|(b, _)| b),
        matches.as_deref().unwrap_or_default(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, Step, StepKind, StepStatus};

    fn image(layers: &[(&str, u64)]) -> Vec<PlatformImage> {
        vec![PlatformImage {
            platform: None,
            layers: layers
                .iter()
                .map(|(digest, size)| Layer {
                    digest: digest.to_string(),
                    size: Some(*size),
                    media_type: None,
                })
                .collect(),
            ..PlatformImage::default()
        }]
    }

    #[test]
    fn one_analysis_over_every_fact() {
        let build = Build {
            steps: vec![Step {
                name: "[1/1] RUN make".into(),
                instruction: "RUN make".into(),
                kind: StepKind::Run,
                status: StepStatus::Rebuilt,
                ..Step::default()
            }],
            ..Build::default()
        };
        let report = analyze_facts(Facts {
            image: Some(image(&[("a", 100), ("b", 30)])),
            engine_step_bytes: Some(vec![Some(4096)]),
            baseline_image: Some(image(&[("a", 100)])),
            ..Facts::from(build.clone())
        });
        assert_eq!(report.summary.image_bytes, Some(130));
        assert_eq!(
            report.summary.pull_bytes,
            Some(30),
            "pull cost without a report"
        );
        assert_eq!(report.build.steps[0].layer_bytes, Some(4096));
        assert!(report.comparison.is_none());

        // With a baseline report, the baseline image's layers stand for the report's.
        let baseline = analyze(build.clone());
        let compared = analyze_facts(Facts {
            image: Some(image(&[("a", 100), ("b", 30)])),
            baseline: Some(Baseline {
                report: baseline.clone(),
                source: "v1.json".into(),
            }),
            baseline_image: Some(image(&[("b", 30)])),
            ..Facts::from(build.clone())
        });
        assert_eq!(compared.summary.pull_bytes, Some(100));
        assert_eq!(
            compared.comparison.as_ref().unwrap().baseline_source,
            "v1.json"
        );
        // The same as analysing first and comparing afterwards.
        let mut afterwards = analyze_facts(Facts {
            image: Some(image(&[("a", 100), ("b", 30)])),
            ..Facts::from(build)
        });
        let mut with_image = baseline;
        with_image.build.images = image(&[("b", 30)]);
        analyze_against(&mut afterwards, &with_image, "v1.json");
        assert_eq!(compared, afterwards);
    }
}
