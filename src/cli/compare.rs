//! `cachehit compare`, and the `--baseline` / `--fail-on` options `report` shares with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::analysis::{self, gates};
use crate::cli::report::{OutputArgs, ReadArgs, emit, read_report};
use crate::model::{Problem, ProblemKind};
use crate::report::Report;

#[derive(Debug, Default, clap::Args)]
pub struct BaselineArgs {
    /// JSON report of an earlier build (the previous release) to compare with.
    #[arg(long, value_name = "REPORT")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub checks: CheckArgs,
    /// `compare` exists to compare: a baseline it cannot use is an error there, not a warning.
    #[arg(skip)]
    pub baseline_required: bool,
}

/// What `report` and `compare` share beyond the baseline: gates, Dockerfile, image sources.
#[derive(Debug, Default, clap::Args)]
pub struct CheckArgs {
    /// Exit 1 when a condition holds: hit-ratio-drop>POINTS, hit-ratio<PERCENT,
    /// pull-bytes>SIZE, rebuilt>N, regression, regression:STEP, diagnosis:KIND, failed.
    /// Comma-separated or repeated.
    #[arg(long, value_name = "CONDITION")]
    pub fail_on: Vec<String>,
    /// The Dockerfile, to point steps and findings at their lines when the records do not.
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
    #[command(flatten)]
    pub images: ImageArgs,
}

/// Image layers from a registry, for sizes and the upgrade pull cost.
#[derive(Debug, Default, clap::Args)]
pub struct ImageArgs {
    /// This build's image in a registry (`registry/repo:tag` or `@sha256:...`).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// The previous release's image, for the pull cost when the baseline report has no layers.
    #[arg(long, value_name = "REF")]
    pub baseline_image: Option<String>,
    /// Registry user; the password comes from CACHEHIT_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER", env = "CACHEHIT_REGISTRY_USER")]
    pub registry_user: Option<String>,
    /// Use plain HTTP for the registry (always so for localhost and 127.x).
    #[arg(long)]
    pub insecure_registry: bool,
    /// An image loaded into the local Docker Engine (`load: true`): per-step layer sizes from
    /// its history (uncompressed, as the engine stores them).
    #[arg(long, value_name = "NAME")]
    pub engine_image: Option<String>,
}

impl ImageArgs {
    fn fetch(&self, reference: &str) -> Result<Vec<crate::model::PlatformImage>, String> {
        use crate::sources::registry::{Credentials, ImageRef, RegistryClient};
        let image = ImageRef::parse(reference)?;
        let credentials = self.registry_user.as_ref().map(|user| Credentials {
            username: user.clone(),
            password: std::env::var("CACHEHIT_REGISTRY_PASSWORD").unwrap_or_default(),
        });
        RegistryClient::new(
            credentials,
            self.insecure_registry,
            std::time::Duration::from_secs(20),
        )
        .images(&image)
        .map_err(|e| e.to_string())
    }
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// JSON report of the earlier build.
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The current build: its JSON report, or its records (as for `report`).
    #[command(flatten)]
    pub current: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub checks: CheckArgs,
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let baseline = BaselineArgs {
        baseline: Some(args.baseline),
        checks: args.checks,
        baseline_required: true,
    };
    run_with_baseline(&args.current, &args.out, &baseline)
}

/// Reads, compares, renders, and turns tripped gates into exit code 1.
pub fn run_with_baseline(
    read: &ReadArgs,
    out: &OutputArgs,
    baseline: &BaselineArgs,
) -> anyhow::Result<ExitCode> {
    let gates = gates::parse_gates(&baseline.checks.fail_on)?;
    let Some(mut report) = read_report(read)? else {
        return Ok(ExitCode::from(2));
    };
    let problem = |report: &mut Report, source: &str, message: String| {
        eprintln!("cachehit: warning: {source}: {message}");
        report.build.problems.push(Problem {
            source: source.to_string(),
            kind: ProblemKind::ImageSource,
            message,
        });
    };
    if let Some(reference) = &baseline.checks.images.image {
        match baseline.checks.images.fetch(reference) {
            Ok(images) => {
                report.build.images = images;
                report.summary.image_bytes =
                    analysis::summary::summarize(&report.build).image_bytes;
            }
            Err(e) => problem(
                &mut report,
                reference,
                format!("image layers unavailable: {e}"),
            ),
        }
    }
    if let Some(name) = &baseline.checks.images.engine_image {
        let inspected = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(crate::sources::engine::inspect(name))
                    .map_err(|e| e.to_string())
            });
        match inspected {
            Ok(image) => {
                let sizes = crate::sources::engine::step_sizes(&report.build.steps, &image.history);
                for (step, size) in report.build.steps.iter_mut().zip(sizes) {
                    if step.layer_bytes.is_none() {
                        step.layer_bytes = size;
                    }
                }
            }
            Err(e) => problem(&mut report, name, format!("engine image unavailable: {e}")),
        }
    }
    let previous_images = match &baseline.checks.images.baseline_image {
        Some(reference) => match baseline.checks.images.fetch(reference) {
            Ok(images) => Some(images),
            Err(e) => {
                problem(
                    &mut report,
                    reference,
                    format!("baseline image layers unavailable: {e}"),
                );
                None
            }
        },
        None => None,
    };
    if let Some(path) = &baseline.baseline {
        match load_baseline(path) {
            Ok(mut previous) => {
                if let Some(images) = &previous_images {
                    previous.build.images = images.clone();
                }
                analysis::analyze_against(&mut report, &previous, &path.display().to_string());
            }
            Err(e) if baseline.baseline_required => {
                eprintln!("cachehit: error: {e}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                let message = e.detail();
                eprintln!(
                    "cachehit: warning: {}: {message}; reporting without comparison",
                    path.display()
                );
                report.build.problems.push(Problem {
                    source: path.display().to_string(),
                    kind: ProblemKind::Baseline,
                    message: format!("{message}; reported without comparison"),
                });
            }
        }
    }
    if let (Some(images), None) = (&previous_images, &report.comparison) {
        let cost = analysis::compare::pull_cost(&report.build.images, images);
        report.summary.pull_bytes = analysis::compare::upgrade_bytes(&cost);
    }
    if let Some(path) = &baseline.checks.dockerfile {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the Dockerfile {}", path.display()))?;
        analysis::dockerfile::locate_lines(&mut report, &text);
    }
    for problem in report
        .build
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::OtherImage)
    {
        eprintln!("cachehit: warning: {}: {}", problem.source, problem.message);
    }
    emit(&report, out)?;
    for missing in gates::unevaluated(&gates, &report) {
        eprintln!("cachehit: warning: --fail-on {missing}");
    }
    let tripped = gates::evaluate(&gates, &report);
    for reason in &tripped {
        eprintln!("cachehit: gate failed: {reason}");
    }
    Ok(if tripped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A baseline report, or why it cannot serve as one.
pub fn load_baseline(path: &Path) -> Result<Report, crate::report::load::LoadError> {
    crate::report::load::from_path(path)
}
