//! Baseline `auto`: find the previous release's report without any wiring by the user.
//!
//! Order of search: the newest non-expired artifact named `artifact_name` (default
//! `cachehit-report`, uploaded with actions/upload-artifact) from a successful workflow run of
//! the repository itself (never a fork's, never a pull-request run) on the default branch or
//! on the previous release's tag; else the report asset of the newest published release
//! before the one being built. It never fails the job: the outcome is a report or a sentence
//! saying why there is none, plus the GitHub errors met on the way, typed, so that what to do
//! next can depend on what went wrong (a rate limit, a refused token, a missing resource, no
//! connection).
//!
//! Every report found is read by the one report loader (`report::load`): a report of a schema
//! this cachehit cannot read is passed over with the same message as everywhere.

use std::fmt;
use std::future::Future;
use std::io::Cursor;

use chrono::{DateTime, Utc};

use crate::github::error::ApiError;
use crate::github::key::encode_key;
use crate::report::Report;
use crate::report::load::{self, LoadError};

pub const DEFAULT_ARTIFACT_NAME: &str = "cachehit-report";
/// The report's file name when one image is reported: inside the artifact zip, and as the
/// release asset.
pub const RELEASE_ASSET_NAME: &str = "cachehit-report.json";

/// Artifacts (or releases) looked at before giving up: each costs a lookup and a download.
const MAX_CANDIDATES: usize = 10;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArtifactInfo {
    pub id: u64,
    pub name: String,
    pub expired: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// The run that uploaded it, as the artifact listing gives it.
    pub run_id: Option<u64>,
    pub head_branch: Option<String>,
    /// The repository the run belongs to, and the one its code came from: they differ for a
    /// fork's pull request, whose branch may well be called `main` too.
    pub repository_id: Option<u64>,
    pub head_repository_id: Option<u64>,
    /// Bytes of the stored artifact, as the listing gives them.
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    pub id: u64,
    /// `success`, `failure`, ...; `None` while the run is in progress.
    pub conclusion: Option<String>,
    pub head_branch: Option<String>,
    /// The event that triggered it: `push`, `release`, `pull_request`, ...
    pub event: Option<String>,
    pub repository_id: Option<u64>,
    pub head_repository_id: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseAsset {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseInfo {
    pub tag_name: String,
    pub draft: bool,
    pub prerelease: bool,
    pub assets: Vec<ReleaseAsset>,
}

/// The report's file name for a comment key: `cachehit-report.json` for the default key,
/// `cachehit-report-KEY.json` (key encoded, no `/`) when a workflow reports several images,
/// so their reports neither overwrite each other in the workspace nor get mixed up in an
/// artifact that holds several.
pub fn report_file_name(key: &str) -> String {
    let encoded = encode_key(key, false);
    if encoded == "default" {
        RELEASE_ASSET_NAME.to_string()
    } else {
        format!("cachehit-report-{encoded}.json")
    }
}

impl ReleaseInfo {
    fn published(&self) -> bool {
        !self.draft && !self.prerelease
    }
}

/// The GitHub calls the search needs, each failing with a typed [`ApiError`].
/// Implemented over the REST client; tests implement it on data.
pub trait BaselineApi {
    /// Artifacts of the repository with exactly this name, any order.
    fn list_artifacts(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ArtifactInfo>, ApiError>> + Send;
    fn get_workflow_run(
        &self,
        run_id: u64,
    ) -> impl Future<Output = Result<RunInfo, ApiError>> + Send;
    /// The artifact's zip, after following the download redirect.
    fn download_artifact_zip(
        &self,
        artifact_id: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ApiError>> + Send;
    /// Every release (all pages), newest first, as GitHub lists them.
    fn list_releases(&self) -> impl Future<Output = Result<Vec<ReleaseInfo>, ApiError>> + Send;
    fn download_release_asset(
        &self,
        asset_id: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ApiError>> + Send;
}

/// What to look for.
#[derive(Clone, Debug, Default)]
pub struct AutoQuery {
    pub artifact_name: String,
    pub default_branch: Option<String>,
    /// The tag this run builds (a tag push, or a release event): its own release is not a
    /// baseline, the published release before it is.
    pub current_tag: Option<String>,
    /// This run: its own artifact is never its baseline.
    pub current_run_id: Option<u64>,
    /// The run whose build is reported, when it is another (the run that triggered a
    /// `workflow_run` job): its report is the build's own, not an earlier one.
    pub reported_run_id: Option<u64>,
    /// The report's file name as the action writes it (`cachehit-report.json`, or keyed
    /// per image): looked for first inside the zip and among release assets.
    pub report_file: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum BaselineOutcome {
    Found {
        report: Box<Report>,
        /// Where it came from, for `Comparison::baseline_source`.
        source: String,
    },
    NotFound {
        reason: String,
    },
}

/// The outcome, and the GitHub errors met on the way (which the action prints as warnings:
/// a rate limit or a refused token must be visible even when an older report was found).
#[derive(Debug)]
pub struct AutoSearch {
    pub outcome: BaselineOutcome,
    pub problems: Vec<SearchProblem>,
}

/// A GitHub error met during the search, with the step of the search it stopped.
#[derive(Debug)]
pub struct SearchProblem {
    /// `cannot list releases`, `run 4000`, `artifact 77`, `release v1.3.0 asset NAME`.
    pub context: String,
    pub error: ApiError,
}

impl fmt::Display for SearchProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.error)
    }
}

/// A report that an artifact zip should hold but does not yield.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a zip archive: {0}")]
    NotZip(#[source] zip::result::ZipError),
    #[error("the zip holds no {wanted} (files: {}{})", .names.join(", "), more_files(*.more))]
    NoReport {
        wanted: String,
        /// The first [`NAMES_SHOWN`] names.
        names: Vec<String>,
        /// How many more the zip holds.
        more: usize,
    },
    #[error("cannot open {name} in the zip: {source}")]
    Entry {
        name: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(transparent)]
    Report(#[from] LoadError),
}

/// File names of a zip quoted in an error at most: an artifact may hold thousands.
const NAMES_SHOWN: usize = 10;

fn more_files(more: usize) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" and {more} more")
    }
}

/// The published releases before the one this run builds, newest first. With no current
/// tag, every published release. A tag pushed before its release exists is simply skipped.
pub fn releases_before<'a>(
    releases: &'a [ReleaseInfo],
    current_tag: Option<&str>,
) -> Vec<&'a ReleaseInfo> {
    let older: &[ReleaseInfo] =
        match current_tag.and_then(|tag| releases.iter().position(|r| r.tag_name == tag)) {
            Some(i) => &releases[i + 1..],
            None => releases,
        };
    older
        .iter()
        .filter(|r| r.published() && Some(r.tag_name.as_str()) != current_tag)
        .collect()
}

/// Searches artifacts, then release assets. Never errors: failures become the reason and
/// the problems.
pub async fn find_auto(api: &impl BaselineApi, query: &AutoQuery) -> AutoSearch {
    let artifact_name = if query.artifact_name.trim().is_empty() {
        DEFAULT_ARTIFACT_NAME
    } else {
        query.artifact_name.trim()
    };
    let report_file = if query.report_file.trim().is_empty() {
        RELEASE_ASSET_NAME
    } else {
        query.report_file.trim()
    };
    let mut problems = Vec::new();
    // Both listings at once: the previous release's tag is only needed to pick artifacts.
    let (releases, artifacts) =
        tokio::join!(api.list_releases(), api.list_artifacts(artifact_name));
    let releases = match releases {
        Ok(releases) => Some(releases),
        Err(error) => {
            problems.push(SearchProblem {
                context: "cannot list releases".into(),
                error,
            });
            None
        }
    };
    let older = releases
        .as_deref()
        .map(|r| releases_before(r, query.current_tag.as_deref()));
    let previous_tag = older
        .as_ref()
        .and_then(|o| o.first())
        .map(|r| r.tag_name.as_str());

    let mut notes = Vec::new();
    match from_artifacts(
        api,
        artifacts,
        query,
        artifact_name,
        previous_tag,
        report_file,
        &mut problems,
    )
    .await
    {
        found @ BaselineOutcome::Found { .. } => {
            return AutoSearch {
                outcome: found,
                problems,
            };
        }
        BaselineOutcome::NotFound { reason } => notes.push(reason),
    }
    match older {
        Some(older) => match from_releases(api, &older, query, report_file, &mut problems).await {
            found @ BaselineOutcome::Found { .. } => {
                return AutoSearch {
                    outcome: found,
                    problems,
                };
            }
            BaselineOutcome::NotFound { reason } => notes.push(reason),
        },
        None => notes.push("releases could not be listed".into()),
    }
    AutoSearch {
        outcome: BaselineOutcome::NotFound {
            reason: format!("no baseline: {}", notes.join("; ")),
        },
        problems,
    }
}

/// The newest trusted artifact's report, or why there is none.
async fn from_artifacts(
    api: &impl BaselineApi,
    artifacts: Result<Vec<ArtifactInfo>, ApiError>,
    query: &AutoQuery,
    artifact_name: &str,
    previous_tag: Option<&str>,
    report_file: &str,
    problems: &mut Vec<SearchProblem>,
) -> BaselineOutcome {
    let artifacts = match artifacts {
        Ok(a) => a,
        Err(error) => {
            problems.push(SearchProblem {
                context: "cannot list artifacts".into(),
                error,
            });
            return not_found(format!("cannot list artifacts named {artifact_name}"));
        }
    };
    let wanted_refs: Vec<&str> = [query.default_branch.as_deref(), previous_tag]
        .into_iter()
        .flatten()
        .collect();
    let refs_text = if wanted_refs.is_empty() {
        "the default branch".to_string()
    } else {
        wanted_refs.join(" or ")
    };
    let candidates = artifact_candidates(artifacts, artifact_name, query, &wanted_refs);
    let mut last_problem = None;
    for artifact in candidates.into_iter().take(MAX_CANDIDATES) {
        let Some(run_id) = artifact.run_id else {
            continue;
        };
        let run = match api.get_workflow_run(run_id).await {
            Ok(run) => run,
            Err(error) => {
                // GitHub did not answer: the next call would not be answered either.
                let unanswered = error.is_transport();
                let problem = SearchProblem {
                    context: format!("run {run_id}"),
                    error,
                };
                last_problem = Some(problem.to_string());
                problems.push(problem);
                if unanswered {
                    break;
                }
                continue;
            }
        };
        if run.conclusion.as_deref() != Some("success") || !trusted_run(&artifact, &run) {
            continue;
        }
        let zip = match api.download_artifact_zip(artifact.id).await {
            Ok(zip) => zip,
            Err(error) => {
                let unanswered = error.is_transport();
                let problem = SearchProblem {
                    context: format!("artifact {}", artifact.id),
                    error,
                };
                last_problem = Some(problem.to_string());
                problems.push(problem);
                if unanswered {
                    break;
                }
                continue;
            }
        };
        match report_from_zip(&zip, report_file) {
            Ok(report) => {
                return BaselineOutcome::Found {
                    report: Box::new(report),
                    source: format!(
                        "artifact {artifact_name} (id {}) from run {run_id} on {}",
                        artifact.id,
                        run.head_branch
                            .or(artifact.head_branch)
                            .unwrap_or_else(|| "?".into())
                    ),
                };
            }
            Err(e) => last_problem = Some(format!("artifact {}: {e}", artifact.id)),
        }
    }
    let mut note =
        format!("no successful run on {refs_text} uploaded an artifact named {artifact_name}");
    if let Some(problem) = last_problem {
        note.push_str(&format!(" ({problem})"));
    }
    not_found(note)
}

fn not_found(reason: String) -> BaselineOutcome {
    BaselineOutcome::NotFound { reason }
}

/// Whether a run's code is the repository's own (its head repository is the repository),
/// `None` when the ids are not given.
fn own_code(repository_id: Option<u64>, head_repository_id: Option<u64>) -> Option<bool> {
    Some(repository_id? == head_repository_id?)
}

/// A run whose artifact may serve as the baseline: the repository's own code, not a pull
/// request's. A fork's pull request runs in this repository with the fork's code and may
/// upload an artifact of the same name from a branch also called `main`. Nor a run triggered
/// by `workflow_run`: it runs on the default branch with the repository's own code, but
/// reports on the run that triggered it, which may be a fork's pull request.
pub fn trusted_run(artifact: &ArtifactInfo, run: &RunInfo) -> bool {
    let from_listing = own_code(artifact.repository_id, artifact.head_repository_id);
    let from_run = own_code(run.repository_id, run.head_repository_id);
    // Either source may lack the ids (older servers); at least one must vouch, none object.
    let vouched = !matches!(
        (from_listing, from_run),
        (Some(false), _) | (_, Some(false)) | (None, None)
    );
    let reports_another_run = run
        .event
        .as_deref()
        .is_some_and(|e| e.starts_with("pull_request") || e == "workflow_run");
    vouched && !reports_another_run
}

/// Non-expired artifacts of that name from the wanted refs, not from this run nor from a
/// fork, newest first.
pub fn artifact_candidates(
    artifacts: Vec<ArtifactInfo>,
    artifact_name: &str,
    query: &AutoQuery,
    wanted_refs: &[&str],
) -> Vec<ArtifactInfo> {
    let mut candidates: Vec<ArtifactInfo> = artifacts
        .into_iter()
        .filter(|a| a.name == artifact_name && !a.expired)
        .filter(|a| {
            a.run_id.is_some()
                && a.run_id != query.current_run_id
                && a.run_id != query.reported_run_id
        })
        .filter(|a| own_code(a.repository_id, a.head_repository_id) != Some(false))
        .filter(|a| {
            // Without a known default branch, any ref's successful run is better than none.
            wanted_refs.is_empty()
                || a.head_branch
                    .as_deref()
                    .is_some_and(|b| wanted_refs.contains(&b))
        })
        .collect();
    candidates.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    candidates
}

/// The report asset of the newest release (of those before the current one) that has it.
async fn from_releases(
    api: &impl BaselineApi,
    older: &[&ReleaseInfo],
    query: &AutoQuery,
    report_file: &str,
    problems: &mut Vec<SearchProblem>,
) -> BaselineOutcome {
    let before = query
        .current_tag
        .as_deref()
        .map(|t| format!(" before {t}"))
        .unwrap_or_default();
    if older.is_empty() {
        return not_found(format!("no published release{before}"));
    }
    let mut last_problem = None;
    let with_asset = older.iter().filter_map(|release| {
        [report_file, RELEASE_ASSET_NAME]
            .iter()
            .find_map(|name| release.assets.iter().find(|a| a.name == *name))
            .map(|asset| (release, asset))
    });
    for (release, asset) in with_asset.take(MAX_CANDIDATES) {
        let origin = format!("release {} asset {}", release.tag_name, asset.name);
        let bytes = match api.download_release_asset(asset.id).await {
            Ok(bytes) => bytes,
            Err(error) => {
                let unanswered = error.is_transport();
                let problem = SearchProblem {
                    context: origin,
                    error,
                };
                last_problem = Some(problem.to_string());
                problems.push(problem);
                if unanswered {
                    break;
                }
                continue;
            }
        };
        match load::from_bytes(&bytes, &origin) {
            Ok(report) => {
                return BaselineOutcome::Found {
                    report: Box::new(report),
                    source: origin,
                };
            }
            Err(e) => last_problem = Some(e.to_string()),
        }
    }
    let mut note = format!("no published release{before} has a {report_file} asset");
    if let Some(problem) = last_problem {
        note.push_str(&format!(" ({problem})"));
    }
    not_found(note)
}

/// Reports of the last `count` published releases (their `cachehit-report.json` assets),
/// oldest first, for `cachehit audit`. A release without a readable report is skipped and
/// named in the returned notes; only listing the releases can fail.
pub async fn release_reports(
    api: &impl BaselineApi,
    count: usize,
) -> Result<(Vec<(String, Report)>, Vec<String>), ApiError> {
    let releases = api.list_releases().await?;
    let mut reports = Vec::new();
    let mut notes = Vec::new();
    for release in releases.iter().filter(|r| r.published()).take(count) {
        let Some(asset) = release.assets.iter().find(|a| a.name == RELEASE_ASSET_NAME) else {
            notes.push(format!(
                "release {} has no {RELEASE_ASSET_NAME}",
                release.tag_name
            ));
            continue;
        };
        let origin = format!("release {} asset {}", release.tag_name, asset.name);
        match api.download_release_asset(asset.id).await {
            Ok(bytes) => match load::from_bytes(&bytes, &origin) {
                Ok(report) => reports.push((release.tag_name.clone(), report)),
                Err(e) => notes.push(e.to_string()),
            },
            Err(e) => notes.push(format!("{origin}: {e}")),
        }
    }
    // GitHub lists newest first; the audit reads oldest first.
    reports.reverse();
    Ok((reports, notes))
}

/// The report inside an artifact zip: `preferred` (the file name the action writes), else
/// `cachehit-report.json`, else the only `.json`.
pub fn report_from_zip(bytes: &[u8], preferred: &str) -> Result<Report, ArtifactError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(ArtifactError::NotZip)?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let json_names: Vec<&String> = names.iter().filter(|n| n.ends_with(".json")).collect();
    let named = |wanted: &str| {
        json_names
            .iter()
            .find(|n| n.rsplit('/').next() == Some(wanted))
            .copied()
    };
    let chosen = named(preferred)
        .or_else(|| named(RELEASE_ASSET_NAME))
        .or_else(|| (json_names.len() == 1).then(|| json_names[0]))
        .ok_or_else(|| ArtifactError::NoReport {
            wanted: preferred.to_string(),
            names: names.iter().take(NAMES_SHOWN).cloned().collect(),
            more: names.len().saturating_sub(NAMES_SHOWN),
        })?;
    let entry = archive
        .by_name(chosen)
        .map_err(|source| ArtifactError::Entry {
            name: chosen.clone(),
            source,
        })?;
    Ok(load::from_reader(entry, chosen)?)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::github::records::zip_of;

    use super::*;
    use crate::github::error::ApiErrorKind;
    use crate::readers::{ReadOptions, read_inputs};

    /// A real report: `cachehit report` on the p2 fixture's first release.
    fn fixture_report() -> Report {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/buildkit-v0.24/p2-deps-first/v1.rawjson");
        crate::analysis::analyze(read_inputs(&[path], &ReadOptions::default()).unwrap())
    }

    #[derive(Default)]
    struct FakeGitHub {
        artifacts: Vec<ArtifactInfo>,
        runs: Vec<RunInfo>,
        zips: Vec<(u64, Vec<u8>)>,
        releases: Vec<ReleaseInfo>,
        assets: Vec<(u64, Vec<u8>)>,
    }

    impl BaselineApi for FakeGitHub {
        async fn list_artifacts(&self, name: &str) -> Result<Vec<ArtifactInfo>, ApiError> {
            Ok(self
                .artifacts
                .iter()
                .filter(|a| a.name == name)
                .cloned()
                .collect())
        }
        async fn get_workflow_run(&self, run_id: u64) -> Result<RunInfo, ApiError> {
            self.runs
                .iter()
                .find(|r| r.id == run_id)
                .cloned()
                .ok_or_else(|| not_found("reading a workflow run"))
        }
        async fn download_artifact_zip(&self, artifact_id: u64) -> Result<Vec<u8>, ApiError> {
            self.zips
                .iter()
                .find(|(id, _)| *id == artifact_id)
                .map(|(_, z)| z.clone())
                .ok_or_else(|| {
                    ApiError::new(
                        "downloading the baseline artifact",
                        ApiErrorKind::Failed {
                            status: 410,
                            attempts: 1,
                            message: "Gone".into(),
                        },
                    )
                })
        }
        async fn list_releases(&self) -> Result<Vec<ReleaseInfo>, ApiError> {
            Ok(self.releases.clone())
        }
        async fn download_release_asset(&self, asset_id: u64) -> Result<Vec<u8>, ApiError> {
            self.assets
                .iter()
                .find(|(id, _)| *id == asset_id)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| not_found("downloading the baseline release asset"))
        }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError::new(
            what,
            ApiErrorKind::NotFound {
                message: "Not Found".into(),
            },
        )
    }

    fn artifact(id: u64, run_id: u64, branch: &str, day: u32) -> ArtifactInfo {
        ArtifactInfo {
            id,
            name: DEFAULT_ARTIFACT_NAME.into(),
            expired: false,
            created_at: Some(
                DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z"))
                    .unwrap()
                    .into(),
            ),
            run_id: Some(run_id),
            head_branch: Some(branch.into()),
            repository_id: Some(1),
            head_repository_id: Some(1),
            size: None,
        }
    }

    fn run(id: u64, conclusion: &str, branch: &str) -> RunInfo {
        RunInfo {
            id,
            conclusion: Some(conclusion.into()),
            head_branch: Some(branch.into()),
            event: Some("push".into()),
            repository_id: Some(1),
            head_repository_id: Some(1),
        }
    }

    fn release(tag: &str, asset: Option<u64>) -> ReleaseInfo {
        ReleaseInfo {
            tag_name: tag.into(),
            assets: asset
                .map(|id| ReleaseAsset {
                    id,
                    name: RELEASE_ASSET_NAME.into(),
                })
                .into_iter()
                .collect(),
            ..ReleaseInfo::default()
        }
    }

    /// A run for tag v1.4.0, whose release is already published (a `release` event).
    fn query() -> AutoQuery {
        AutoQuery {
            artifact_name: String::new(),
            default_branch: Some("main".into()),
            current_tag: Some("v1.4.0".into()),
            current_run_id: Some(99),
            reported_run_id: None,
            report_file: RELEASE_ASSET_NAME.into(),
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn takes_the_newest_successful_run_on_main_or_the_previous_tag() {
        let report = fixture_report();
        let json = serde_json::to_vec(&report).unwrap();
        let api = FakeGitHub {
            artifacts: vec![
                artifact(1, 10, "main", 1),
                artifact(2, 20, "v1.3.0", 3),
                // Newer, but from a failed run, a feature branch, expired, or this very run.
                artifact(3, 30, "main", 5),
                artifact(4, 40, "feature/x", 6),
                ArtifactInfo {
                    expired: true,
                    ..artifact(5, 50, "main", 7)
                },
                artifact(6, 99, "main", 8),
            ],
            runs: vec![
                run(10, "success", "main"),
                run(20, "success", "v1.3.0"),
                run(30, "failure", "main"),
                run(40, "success", "feature/x"),
                run(50, "success", "main"),
                run(99, "success", "main"),
            ],
            zips: vec![
                (1, zip_of(&[("cachehit-report.json", b"{}")])),
                (2, zip_of(&[("cachehit-report.json", &json)])),
            ],
            releases: vec![
                release("v1.4.0", None),
                ReleaseInfo {
                    prerelease: true,
                    ..release("v1.4.0-rc1", None)
                },
                release("v1.3.0", None),
            ],
            ..FakeGitHub::default()
        };
        let search = block_on(find_auto(&api, &query()));
        assert!(search.problems.is_empty(), "{:?}", search.problems);
        match search.outcome {
            BaselineOutcome::Found {
                report: found,
                source,
            } => {
                assert_eq!(*found, report);
                assert!(
                    source.contains("id 2") && source.contains("v1.3.0"),
                    "{source}"
                );
            }
            other => panic!("expected a baseline, got {other:?}"),
        }
    }

    #[test]
    fn a_fork_or_pull_request_artifact_is_never_the_baseline() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let api = FakeGitHub {
            artifacts: vec![
                artifact(1, 10, "main", 1),
                // The fork's code from its own `main`, newer.
                ArtifactInfo {
                    head_repository_id: Some(2),
                    ..artifact(2, 20, "main", 2)
                },
                // The listing agrees, but the run says pull_request.
                artifact(3, 30, "main", 3),
                // The listing lacks the ids; the run shows the fork.
                ArtifactInfo {
                    repository_id: None,
                    head_repository_id: None,
                    ..artifact(4, 40, "main", 4)
                },
            ],
            runs: vec![
                run(10, "success", "main"),
                // A workflow_run job: the repository's own code on main, reporting on
                // the run that triggered it (a fork's pull request, maybe).
                RunInfo {
                    event: Some("workflow_run".into()),
                    ..run(20, "success", "main")
                },
                RunInfo {
                    event: Some("pull_request_target".into()),
                    ..run(30, "success", "main")
                },
                RunInfo {
                    head_repository_id: Some(2),
                    ..run(40, "success", "main")
                },
            ],
            zips: (1..=4)
                .map(|id| (id, zip_of(&[("cachehit-report.json", &json)])))
                .collect(),
            ..FakeGitHub::default()
        };
        let outcome = block_on(find_auto(&api, &query())).outcome;
        assert!(
            matches!(&outcome, BaselineOutcome::Found { source, .. } if source.contains("id 1")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_broken_artifact_falls_back_to_an_older_one() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let api = FakeGitHub {
            artifacts: vec![artifact(1, 10, "main", 1), artifact(2, 20, "main", 2)],
            runs: vec![run(10, "success", "main"), run(20, "success", "main")],
            zips: vec![
                (1, zip_of(&[("report/cachehit-report.json", &json)])),
                (2, b"not a zip".to_vec()),
            ],
            ..FakeGitHub::default()
        };
        let outcome = block_on(find_auto(&api, &query())).outcome;
        assert!(
            matches!(&outcome, BaselineOutcome::Found { source, .. } if source.contains("id 1")),
            "{outcome:?}"
        );
    }

    #[test]
    fn falls_back_to_the_latest_release_asset() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let api = FakeGitHub {
            releases: vec![
                ReleaseInfo {
                    prerelease: true,
                    ..release("v1.4.0-rc1", Some(8))
                },
                release("v1.3.0", Some(7)),
            ],
            assets: vec![(7, json.clone()), (8, json)],
            ..FakeGitHub::default()
        };
        // Not a tag run (a pull request, a push to main): the latest published release.
        let query = AutoQuery {
            current_tag: None,
            ..query()
        };
        let outcome = block_on(find_auto(&api, &query)).outcome;
        assert!(
            matches!(&outcome, BaselineOutcome::Found { source, .. } if source == "release v1.3.0 asset cachehit-report.json"),
            "{outcome:?}"
        );
    }

    #[test]
    fn the_current_release_is_skipped_and_the_newest_with_the_asset_taken() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let api = FakeGitHub {
            releases: vec![
                // The release this run builds: its asset (a re-run) is not its own baseline.
                release("v1.4.0", Some(4)),
                release("v1.3.0", None),
                release("v1.2.0", Some(2)),
                release("v1.1.0", Some(1)),
            ],
            assets: vec![(4, json.clone()), (2, json.clone()), (1, json)],
            ..FakeGitHub::default()
        };
        let search = block_on(find_auto(&api, &query()));
        assert!(
            matches!(&search.outcome, BaselineOutcome::Found { source, .. } if source == "release v1.2.0 asset cachehit-report.json"),
            "{search:?}"
        );
    }

    #[test]
    fn the_previous_release_of_a_tag_without_a_release_yet_is_the_newest() {
        let releases = [
            release("v1.3.0", None),
            ReleaseInfo {
                draft: true,
                ..release("v1.2.9", None)
            },
            release("v1.2.0", None),
        ];
        let tags = |current: Option<&str>| -> Vec<String> {
            releases_before(&releases, current)
                .iter()
                .map(|r| r.tag_name.clone())
                .collect()
        };
        assert_eq!(tags(Some("v1.4.0")), ["v1.3.0", "v1.2.0"]);
        assert_eq!(tags(Some("v1.3.0")), ["v1.2.0"]);
        assert_eq!(tags(None), ["v1.3.0", "v1.2.0"]);
    }

    #[test]
    fn nothing_found_says_why_and_does_not_fail() {
        let api = FakeGitHub {
            artifacts: vec![artifact(3, 30, "main", 5)],
            runs: vec![run(30, "failure", "main")],
            releases: vec![release("v1.4.0", None), release("v1.3.0", None)],
            ..FakeGitHub::default()
        };
        match block_on(find_auto(&api, &query())).outcome {
            BaselineOutcome::NotFound { reason } => assert_eq!(
                reason,
                "no baseline: no successful run on main or v1.3.0 uploaded an artifact named \
                 cachehit-report; no published release before v1.4.0 has a \
                 cachehit-report.json asset"
            ),
            other => panic!("expected no baseline, got {other:?}"),
        }
        let empty = FakeGitHub::default();
        match block_on(find_auto(&empty, &query())).outcome {
            BaselineOutcome::NotFound { reason } => assert_eq!(
                reason,
                "no baseline: no successful run on main uploaded an artifact named \
                 cachehit-report; no published release before v1.4.0"
            ),
            other => panic!("expected no baseline, got {other:?}"),
        }
    }

    #[test]
    fn release_reports_are_the_last_published_ones_oldest_first() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let api = FakeGitHub {
            releases: vec![
                ReleaseInfo {
                    draft: true,
                    ..release("v1.4.0", Some(4))
                },
                release("v1.3.0", Some(3)),
                release("v1.2.0", None),
                release("v1.1.0", Some(1)),
                release("v1.0.0", Some(9)),
            ],
            assets: vec![(3, json.clone()), (1, json), (4, b"{}".to_vec())],
            ..FakeGitHub::default()
        };
        let (reports, notes) = block_on(release_reports(&api, 3)).unwrap();
        let tags: Vec<&str> = reports.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tags, ["v1.1.0", "v1.3.0"]);
        assert_eq!(notes, ["release v1.2.0 has no cachehit-report.json"]);
    }

    #[test]
    fn a_newer_report_is_passed_over_with_the_loader_s_message() {
        let mut newer = serde_json::to_value(fixture_report()).unwrap();
        newer["schema_version"] = (crate::report::SCHEMA_VERSION + 1).into();
        let newer = serde_json::to_vec(&newer).unwrap();
        let refusal = format!(
            "the report has schema version {}, newer than this cachehit reads ({}); upgrade cachehit",
            crate::report::SCHEMA_VERSION + 1,
            crate::report::SCHEMA_VERSION
        );
        let api = FakeGitHub {
            artifacts: vec![artifact(1, 10, "main", 1)],
            runs: vec![run(10, "success", "main")],
            zips: vec![(1, zip_of(&[("cachehit-report.json", &newer)]))],
            releases: vec![release("v1.3.0", Some(7))],
            assets: vec![(7, newer.clone())],
        };
        match block_on(find_auto(&api, &query())).outcome {
            BaselineOutcome::NotFound { reason } => {
                assert!(
                    reason.contains(&format!("artifact 1: cachehit-report.json: {refusal}")),
                    "{reason}"
                );
                assert!(
                    reason.contains(&format!(
                        "release v1.3.0 asset cachehit-report.json: {refusal}"
                    )),
                    "{reason}"
                );
            }
            other => panic!("a newer report is no baseline: {other:?}"),
        }
        let (reports, notes) = block_on(release_reports(&api, 3)).unwrap();
        assert!(reports.is_empty());
        assert_eq!(
            notes,
            [format!(
                "release v1.3.0 asset cachehit-report.json: {refusal}"
            )]
        );
    }

    #[test]
    fn search_problems_keep_the_kind_of_github_error() {
        let api = FakeGitHub {
            artifacts: vec![artifact(1, 10, "main", 1)],
            ..FakeGitHub::default()
        };
        let search = block_on(find_auto(&api, &query()));
        assert_eq!(search.problems.len(), 1, "{:?}", search.problems);
        let problem = &search.problems[0];
        assert_eq!(problem.context, "run 10");
        assert!(problem.error.is_not_found() && !problem.error.is_transport());
    }

    #[test]
    fn a_zip_without_a_report_names_its_files() {
        let err = report_from_zip(
            &zip_of(&[("a.txt", b"x"), ("b.json", b"{}"), ("c.json", b"{}")]),
            RELEASE_ASSET_NAME,
        )
        .unwrap_err();
        assert!(err.to_string().contains("a.txt, b.json, c.json)"), "{err}");
        // Thousands of entries: ten names and a count.
        let names: Vec<String> = (0..5_000).map(|i| format!("entry-{i:04}.txt")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let err = report_from_zip(&zip_of(&files), RELEASE_ASSET_NAME).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("entry-0009.txt and 4990 more)"), "{text}");
        assert!(!text.contains("entry-0010.txt"), "{text}");
        assert!(text.len() < 400, "{}", text.len());
    }

    #[test]
    fn the_keyed_report_file_is_taken_from_a_zip_of_several() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let zip = zip_of(&[
            ("cachehit-report-api.json", b"{}"),
            ("cachehit-report-worker.json", &json),
        ]);
        assert!(report_from_zip(&zip, "cachehit-report-worker.json").is_ok());
        assert!(report_from_zip(&zip, "cachehit-report-api.json").is_err());
    }
}
