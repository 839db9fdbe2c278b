//! The one pipeline every front-end runs (`report`, `compare`, `action`):
//!
//! 1. `read`: the build records (and the Dockerfile) → a `model::Build`;
//! 2. `fetch`: facts from outside the records (registry images, the local engine's image,
//!    the baseline report), looked up concurrently;
//! 3. `analysis::analyze_facts`: one analysis over all those facts → the report;
//! 4. `analysis::dockerfile::locate_lines`: Dockerfile lines the records did not give;
//! 5. `analysis::gates`: the gates that trip, and those the report holds no evidence for.
//!
//! [`Settings`] are resolved by the front-end before anything runs; [`run`] calls each stage
//! once and hands back an [`Outcome`] for the front-end's sinks (`crate::sinks`). Stages
//! that talk to the network report what they could not get instead of failing, so the
//! report and every sink still come out.

pub mod fetch;
pub mod read;
pub mod settings;

use std::fmt;
use std::path::PathBuf;

use crate::analysis::{self, Facts, gates};
use crate::github::api::GitHub;
use crate::github::baseline::{BaselineApi, SearchProblem};
use crate::model::Problem;
use crate::readers::ReadError;
use crate::report::Report;
use crate::report::load::LoadError;

pub use settings::{
    BaselineChoice, CredentialPolicy, DockerfileSource, ImageSources, RegistryAccess, Settings,
};

/// For runs without GitHub (the command line): no baseline search.
pub const NO_GITHUB: Option<&GitHub> = None;

/// What a run produced, for the sinks.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// Everything to show as a warning, in the order met: the inputs' problems, the sources
    /// that did not deliver, GitHub errors of the baseline search, the comparison's doubts.
    pub warnings: Vec<Warning>,
    /// Why the report has no comparison although a baseline was asked for.
    pub baseline_note: Option<String>,
    pub gates: GateResults,
}

/// A warning to show; the problems among them are also in the report.
#[derive(Debug)]
pub enum Warning {
    Problem(Problem),
    BaselineSearch(SearchProblem),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Problem(p) => write!(f, "{}: {}", p.source, p.message),
            Warning::BaselineSearch(p) => write!(f, "baseline search: {p}"),
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct GateResults {
    /// Why each tripped gate tripped.
    pub tripped: Vec<String>,
    /// Gates that could not be evaluated, with what was missing: they cannot trip, and a
    /// gate that silently passes would look like a pass.
    pub unevaluated: Vec<String>,
}

/// Why a run produced no report.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Nothing in the inputs could be read.
    #[error(transparent)]
    Read(ReadError),
    /// A baseline the run requires (`compare`) cannot be used.
    #[error(transparent)]
    Baseline(LoadError),
    /// A Dockerfile given on the command line cannot be read.
    #[error(transparent)]
    Dockerfile(DockerfileError),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the Dockerfile {}: {source}", .path.display())]
pub struct DockerfileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Runs every stage once, in order. `github` serves `baseline: auto`.
pub async fn run(
    settings: &Settings,
    github: Option<&impl BaselineApi>,
) -> Result<Outcome, Failure> {
    let records = read::records(settings)?;
    let external = fetch::external_facts(settings, &records.build.steps, github).await?;

    let mut warnings: Vec<Warning> = records
        .build
        .problems
        .iter()
        .chain(&external.problems)
        .cloned()
        .map(Warning::Problem)
        .collect();
    warnings.extend(
        external
            .search_problems
            .into_iter()
            .map(Warning::BaselineSearch),
    );
    let mut build = records.build;
    build.problems.extend(external.problems);
    let recorded = build.problems.len();

    let mut report = analysis::analyze_facts(Facts {
        build,
        image: external.image,
        engine_step_bytes: external.engine_step_bytes,
        baseline: external.baseline,
        baseline_image: external.baseline_image,
        dockerfile: records.dockerfile.clone(),
    });
    // What the comparison found doubtful (a baseline of another image).
    warnings.extend(
        report.build.problems[recorded..]
            .iter()
            .cloned()
            .map(Warning::Problem),
    );

    if let Some(text) = &records.dockerfile {
        analysis::dockerfile::locate_lines(&mut report, text);
    }

    let gates = GateResults {
        tripped: gates::evaluate(&settings.gates, &report),
        unevaluated: gates::unevaluated(&settings.gates, &report),
    };
    Ok(Outcome {
        report,
        warnings,
        baseline_note: external.baseline_note,
        gates,
    })
}
