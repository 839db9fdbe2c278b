//! Stage 2: facts from outside the records: image layers from registries, per-step sizes from
//! the local Docker Engine, the baseline report (a file, or GitHub's artifacts and
//! releases), and the repository's GitHub Actions cache when the build uses `type=gha`.
//!
//! The lookups are independent and run concurrently. Each is its own function that never
//! fails the run: it returns what it found or why not, so any of them can be wrapped in a
//! timeout (an elapsed one is one more reason) and the report still comes out with the rest.
//! The registry client blocks on its own thread, each request bounded by
//! `RegistryAccess::timeout` and all of one image's by `RegistryAccess::budget`; GitHub's
//! client bounds its calls the same way (`github::api::Deadlines`), so no server holds the
//! run longer than its budget.

use crate::analysis::Baseline;
use crate::analysis::gha_cache::{GhaCache, GhaRun, gha_scopes};
use crate::github::actions_cache::{self, ActionsCacheApi, CacheLookupError};
use crate::github::baseline::{BaselineApi, BaselineOutcome, SearchProblem, find_auto};
use crate::model::{Build, PlatformImage, Problem, ProblemKind, Step};
use crate::pipeline::Failure;
use crate::pipeline::settings::{BaselineChoice, RegistryAccess, Settings};
use crate::report::load::{self, LoadError};
use crate::sources::engine::{self, EngineError};
use crate::sources::registry::{
    ImageRef, ImageRefError, Images, MAX_PLATFORMS, RegistryClient, RegistryError,
};

/// What the sources outside the records gave.
#[derive(Debug, Default)]
pub struct External {
    pub image: Option<Vec<PlatformImage>>,
    pub baseline_image: Option<Vec<PlatformImage>>,
    pub engine_step_bytes: Option<Vec<Option<u64>>>,
    pub baseline: Option<Baseline>,
    /// Why there is no baseline, when one was asked for: for the job summary and comment.
    pub baseline_note: Option<String>,
    /// Sources that did not deliver: recorded in the report.
    pub problems: Vec<Problem>,
    /// GitHub errors met looking for the baseline: shown, not recorded in the report.
    pub search_problems: Vec<SearchProblem>,
    /// The repository's GitHub Actions cache, when the build uses `type=gha`.
    pub gha_cache: Option<GhaCache>,
    /// Why the Actions cache could not be read: shown, not recorded in the report.
    pub gha_cache_problem: Option<CacheLookupError>,
}

/// Why a registry gave no image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ImageRefError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the registry lookup stopped: {0}")]
    Interrupted(String),
}

/// Runs every lookup the settings ask for, concurrently. Fails only when a baseline file the
/// run requires cannot be used.
pub async fn external_facts(
    settings: &Settings,
    build: &Build,
    github: Option<&(impl BaselineApi + ActionsCacheApi)>,
) -> Result<External, Failure> {
    let images = &settings.images;
    let (image, baseline_image, engine, baseline, gha) = tokio::join!(
        registry_image(images.current.as_deref(), &images.registry),
        registry_image(images.baseline.as_deref(), &images.registry),
        engine_step_bytes(images.engine.as_deref(), &build.steps),
        baseline_report(&settings.baseline, github),
        gha_cache(settings.evidence.gha.as_ref(), build, github),
    );
    let mut external = External::default();
    match gha {
        Some(Ok(cache)) => external.gha_cache = Some(cache),
        Some(Err(e)) => external.gha_cache_problem = Some(e),
        None => {}
    }
    if let (Some(reference), Some(result)) = (&images.current, image) {
        match result {
            Ok(found) => external.image = Some(found.keep(reference, &mut external.problems)),
            Err(e) => external.problems.push(Problem::new(
                ProblemKind::ImageSource,
                reference,
                format!("image layers unavailable: {e}"),
            )),
        }
    }
    if let (Some(name), Some(result)) = (&images.engine, engine) {
        match result {
            Ok(sizes) => external.engine_step_bytes = Some(sizes),
            Err(e) => external.problems.push(Problem::new(
                ProblemKind::ImageSource,
                name,
                format!("engine image unavailable: {e}"),
            )),
        }
    }
    if let (Some(reference), Some(result)) = (&images.baseline, baseline_image) {
        match result {
            Ok(found) => {
                external.baseline_image = Some(found.keep(reference, &mut external.problems))
            }
            Err(e) => external.problems.push(Problem::new(
                ProblemKind::ImageSource,
                reference,
                format!("baseline image layers unavailable: {e}"),
            )),
        }
    }
    let lookup = baseline.map_err(Failure::Baseline)?;
    external.baseline = lookup.found;
    external.baseline_note = lookup.note;
    external.problems.extend(lookup.problem);
    external.search_problems = lookup.search_problems;
    Ok(external)
}

impl Images {
    /// The images, with a problem saying how many platforms were left out.
    fn keep(self, reference: &str, problems: &mut Vec<Problem>) -> Vec<PlatformImage> {
        if self.platforms_left_out > 0 {
            problems.push(Problem::new(
                ProblemKind::ImageSource,
                reference,
                format!(
                    "the image index lists {} platforms; the first {MAX_PLATFORMS} were read",
                    self.images.len() + self.platforms_left_out
                ),
            ));
        }
        self.images
    }
}

/// Every platform image of `reference` in its registry; `None` when none was asked for.
pub async fn registry_image(
    reference: Option<&str>,
    access: &RegistryAccess,
) -> Option<Result<Images, ImageError>> {
    let reference = reference?.to_string();
    let access = access.clone();
    // The registry client blocks; it gets a thread of its own so the other lookups go on.
    let fetched = tokio::task::spawn_blocking(move || -> Result<_, ImageError> {
        let image = ImageRef::parse(&reference)?;
        let credentials = access.credentials.for_registry(&image.registry);
        Ok(
            RegistryClient::new(credentials, access.insecure, access.timeout)
                .with_budget(access.budget)
                .images_of(&image)?,
        )
    })
    .await;
    Some(fetched.unwrap_or_else(|e| Err(ImageError::Interrupted(e.to_string()))))
}

/// Per step, the size the local Docker Engine's history of image `name` gives; `None` when
/// no image was named.
pub async fn engine_step_bytes(
    name: Option<&str>,
    steps: &[Step],
) -> Option<Result<Vec<Option<u64>>, EngineError>> {
    let image = engine::inspect(name?).await;
    Some(image.map(|image| engine::step_sizes(steps, &image.history)))
}

/// The repository's Actions cache as it concerns this build; `None` when the build uses no
/// `type=gha` cache, or the run cannot read it (no run, no GitHub).
pub async fn gha_cache(
    run: Option<&GhaRun>,
    build: &Build,
    github: Option<&impl ActionsCacheApi>,
) -> Option<Result<GhaCache, CacheLookupError>> {
    let (run, github) = (run?, github?);
    let scopes = gha_scopes(build)?;
    Some(actions_cache::read(github, run.clone(), scopes).await)
}

/// The baseline report, or why there is none.
#[derive(Debug, Default)]
pub struct BaselineLookup {
    pub found: Option<Baseline>,
    /// Why there is none, for the job summary and comment.
    pub note: Option<String>,
    /// A file that cannot serve as the baseline: recorded in the report.
    pub problem: Option<Problem>,
    pub search_problems: Vec<SearchProblem>,
}

/// A report file; `-` is standard input.
fn load_file(path: &std::path::Path) -> Result<crate::report::Report, LoadError> {
    if path.as_os_str() == "-" {
        load::from_reader(std::io::stdin().lock(), crate::readers::input::STDIN_NAME)
    } else {
        load::from_path(path)
    }
}

/// Loads or looks up the baseline the settings name. Fails only for a required file.
pub async fn baseline_report(
    choice: &BaselineChoice,
    github: Option<&impl BaselineApi>,
) -> Result<BaselineLookup, LoadError> {
    match choice {
        BaselineChoice::None => Ok(BaselineLookup::default()),
        BaselineChoice::File {
            path,
            label,
            required,
        } => match load_file(path) {
            Ok(report) => Ok(BaselineLookup {
                found: Some(Baseline {
                    report,
                    source: label.clone(),
                }),
                ..BaselineLookup::default()
            }),
            Err(e) if *required => Err(e),
            Err(e) => Ok(BaselineLookup {
                note: Some(format!("No baseline: {label}: {}.", e.detail())),
                problem: Some(Problem::new(
                    ProblemKind::Baseline,
                    label,
                    format!("{}; reported without comparison", e.detail()),
                )),
                ..BaselineLookup::default()
            }),
        },
        BaselineChoice::Auto(query) => {
            let Some(github) = github else {
                return Ok(BaselineLookup {
                    note: Some("No baseline: no repository or token to look it up with.".into()),
                    ..BaselineLookup::default()
                });
            };
            let search = find_auto(github, query).await;
            let (found, note) = match search.outcome {
                BaselineOutcome::Found { report, source } => (
                    Some(Baseline {
                        report: *report,
                        source,
                    }),
                    None,
                ),
                BaselineOutcome::NotFound { reason } => {
                    (None, Some(format!("{reason}. Compared with nothing.")))
                }
            };
            Ok(BaselineLookup {
                found,
                note,
                problem: None,
                search_problems: search.problems,
            })
        }
    }
}
