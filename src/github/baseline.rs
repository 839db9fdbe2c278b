//! Baseline `auto`: find the previous release's report without any wiring by the user.
//!
//! Order of search: the newest non-expired artifact named `artifact_name` (default
//! `cachehit-report`, uploaded with actions/upload-artifact) from a successful workflow run on
//! the default branch or on the previous release tag; else a release asset named
//! `cachehit-report.json` on the latest published release. It never fails the job: the
//! outcome is a report or a sentence saying why there is none.

use std::future::Future;
use std::io::{Cursor, Read};

use chrono::{DateTime, Utc};

use crate::report::{OLDEST_READABLE_SCHEMA, Report};

pub const DEFAULT_ARTIFACT_NAME: &str = "cachehit-report";
pub const RELEASE_ASSET_NAME: &str = "cachehit-report.json";

/// Artifacts looked at before giving up: each costs a run lookup and maybe a download.
const MAX_CANDIDATES: usize = 10;
/// A report JSON bigger than this inside an artifact zip is not ours.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArtifactInfo {
    pub id: u64,
    pub name: String,
    pub expired: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// The run that uploaded it, as the artifact listing gives it.
    pub run_id: Option<u64>,
    pub head_branch: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    pub id: u64,
    /// `success`, `failure`, ...; `None` while the run is in progress.
    pub conclusion: Option<String>,
    pub head_branch: Option<String>,
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

/// The GitHub calls the search needs, each failing with a message fit for a log line.
/// Implemented over the REST client; tests implement it on data.
pub trait BaselineApi {
    /// Artifacts of the repository with exactly this name, any order.
    fn list_artifacts(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ArtifactInfo>, String>> + Send;
    fn get_workflow_run(&self, run_id: u64)
    -> impl Future<Output = Result<RunInfo, String>> + Send;
    /// The artifact's zip, after following the download redirect.
    fn download_artifact_zip(
        &self,
        artifact_id: u64,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
    /// Releases newest first, as GitHub lists them.
    fn list_releases(&self) -> impl Future<Output = Result<Vec<ReleaseInfo>, String>> + Send;
    fn download_release_asset(
        &self,
        asset_id: u64,
    ) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
}

/// What to look for.
#[derive(Clone, Debug, Default)]
pub struct AutoQuery {
    pub artifact_name: String,
    pub default_branch: Option<String>,
    /// The release before the one being built (e.g. `v1.3.0` when building `v1.4.0`).
    pub previous_tag: Option<String>,
    /// This run: its own artifact is never its baseline.
    pub current_run_id: Option<u64>,
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

/// Searches artifacts, then release assets. Never errors: failures become the reason.
pub async fn find_auto(api: &impl BaselineApi, query: &AutoQuery) -> BaselineOutcome {
    let artifact_name = if query.artifact_name.trim().is_empty() {
        DEFAULT_ARTIFACT_NAME
    } else {
        query.artifact_name.trim()
    };
    let mut notes = Vec::new();
    match from_artifacts(api, query, artifact_name).await {
        Ok(found) => return found,
        Err(note) => notes.push(note),
    }
    match from_latest_release(api).await {
        Ok(found) => return found,
        Err(note) => notes.push(note),
    }
    BaselineOutcome::NotFound {
        reason: format!("no baseline: {}", notes.join("; ")),
    }
}

async fn from_artifacts(
    api: &impl BaselineApi,
    query: &AutoQuery,
    artifact_name: &str,
) -> Result<BaselineOutcome, String> {
    let artifacts = api
        .list_artifacts(artifact_name)
        .await
        .map_err(|e| format!("cannot list artifacts: {e}"))?;
    let wanted_refs: Vec<&str> = [
        query.default_branch.as_deref(),
        query.previous_tag.as_deref(),
    ]
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
            Err(e) => {
                last_problem = Some(format!("run {run_id}: {e}"));
                continue;
            }
        };
        if run.conclusion.as_deref() != Some("success") {
            continue;
        }
        let zip = match api.download_artifact_zip(artifact.id).await {
            Ok(zip) => zip,
            Err(e) => {
                last_problem = Some(format!("artifact {}: {e}", artifact.id));
                continue;
            }
        };
        match report_from_zip(&zip) {
            Ok(report) => {
                return Ok(BaselineOutcome::Found {
                    report: Box::new(report),
                    source: format!(
                        "artifact {artifact_name} (id {}) from run {run_id} on {}",
                        artifact.id,
                        run.head_branch
                            .or(artifact.head_branch)
                            .unwrap_or_else(|| "?".into())
                    ),
                });
            }
            Err(e) => last_problem = Some(format!("artifact {}: {e}", artifact.id)),
        }
    }
    let mut note =
        format!("no successful run on {refs_text} uploaded an artifact named {artifact_name}");
    if let Some(problem) = last_problem {
        note.push_str(&format!(" ({problem})"));
    }
    Err(note)
}

/// Non-expired artifacts of that name from the wanted refs, not from this run, newest first.
pub fn artifact_candidates(
    artifacts: Vec<ArtifactInfo>,
    artifact_name: &str,
    query: &AutoQuery,
    wanted_refs: &[&str],
) -> Vec<ArtifactInfo> {
    let mut candidates: Vec<ArtifactInfo> = artifacts
        .into_iter()
        .filter(|a| a.name == artifact_name && !a.expired)
        .filter(|a| a.run_id.is_some() && a.run_id != query.current_run_id)
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

async fn from_latest_release(api: &impl BaselineApi) -> Result<BaselineOutcome, String> {
    let releases = api
        .list_releases()
        .await
        .map_err(|e| format!("cannot list releases: {e}"))?;
    let Some(latest) = releases.iter().find(|r| !r.draft && !r.prerelease) else {
        return Err("no published release".into());
    };
    let Some(asset) = latest.assets.iter().find(|a| a.name == RELEASE_ASSET_NAME) else {
        return Err(format!(
            "latest release {} has no {RELEASE_ASSET_NAME} asset",
            latest.tag_name
        ));
    };
    let bytes = api
        .download_release_asset(asset.id)
        .await
        .map_err(|e| format!("cannot download {RELEASE_ASSET_NAME}: {e}"))?;
    let report = parse_report(&bytes)
        .map_err(|e| format!("{RELEASE_ASSET_NAME} of release {}: {e}", latest.tag_name))?;
    Ok(BaselineOutcome::Found {
        report: Box::new(report),
        source: format!("release {} asset {RELEASE_ASSET_NAME}", latest.tag_name),
    })
}

/// Reports of the last `count` published releases (their `cachehit-report.json` assets),
/// oldest first, for `cachehit audit`. A release without a readable report is skipped and
/// named in the returned notes.
pub async fn release_reports(
    api: &impl BaselineApi,
    count: usize,
) -> Result<(Vec<(String, Report)>, Vec<String>), String> {
    let releases = api
        .list_releases()
        .await
        .map_err(|e| format!("cannot list releases: {e}"))?;
    let mut reports = Vec::new();
    let mut notes = Vec::new();
    for release in releases
        .iter()
        .filter(|r| !r.draft && !r.prerelease)
        .take(count)
    {
        let Some(asset) = release.assets.iter().find(|a| a.name == RELEASE_ASSET_NAME) else {
            notes.push(format!(
                "release {} has no {RELEASE_ASSET_NAME}",
                release.tag_name
            ));
            continue;
        };
        match api.download_release_asset(asset.id).await {
            Ok(bytes) => match parse_report(&bytes) {
                Ok(report) => reports.push((release.tag_name.clone(), report)),
                Err(e) => notes.push(format!("release {}: {e}", release.tag_name)),
            },
            Err(e) => notes.push(format!("release {}: {e}", release.tag_name)),
        }
    }
    // GitHub lists newest first; the audit reads oldest first.
    reports.reverse();
    Ok((reports, notes))
}

/// The report inside an artifact zip: `cachehit-report.json` if present, else the only `.json`.
pub fn report_from_zip(bytes: &[u8]) -> Result<Report, String> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip archive: {e}"))?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let json_names: Vec<&String> = names.iter().filter(|n| n.ends_with(".json")).collect();
    let chosen = json_names
        .iter()
        .find(|n| n.rsplit('/').next() == Some(RELEASE_ASSET_NAME))
        .or_else(|| (json_names.len() == 1).then(|| &json_names[0]))
        .ok_or_else(|| {
            format!(
                "the zip holds no {RELEASE_ASSET_NAME} (files: {})",
                names.join(", ")
            )
        })?;
    let entry = archive
        .by_name(chosen)
        .map_err(|e| format!("cannot open {chosen} in the zip: {e}"))?;
    let mut text = Vec::new();
    entry
        .take(MAX_REPORT_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read {chosen} from the zip: {e}"))?;
    parse_report(&text).map_err(|e| format!("{chosen}: {e}"))
}

fn parse_report(bytes: &[u8]) -> Result<Report, String> {
    let report: Report =
        serde_json::from_slice(bytes).map_err(|e| format!("not a cachehit report: {e}"))?;
    if report.schema_version < OLDEST_READABLE_SCHEMA {
        return Err(format!(
            "report schema {} is older than this cachehit reads",
            report.schema_version
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::readers::{ReadOptions, read_inputs};

    /// A real report: `cachehit report` on the p2 fixture's first release.
    fn fixture_report() -> Report {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/buildkit-v0.24/p2-deps-first/v1.rawjson");
        crate::analysis::analyze(read_inputs(&[path], &ReadOptions::default()).unwrap())
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
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
        async fn list_artifacts(&self, name: &str) -> Result<Vec<ArtifactInfo>, String> {
            Ok(self
                .artifacts
                .iter()
                .filter(|a| a.name == name)
                .cloned()
                .collect())
        }
        async fn get_workflow_run(&self, run_id: u64) -> Result<RunInfo, String> {
            self.runs
                .iter()
                .find(|r| r.id == run_id)
                .cloned()
                .ok_or_else(|| "404 Not Found".into())
        }
        async fn download_artifact_zip(&self, artifact_id: u64) -> Result<Vec<u8>, String> {
            self.zips
                .iter()
                .find(|(id, _)| *id == artifact_id)
                .map(|(_, z)| z.clone())
                .ok_or_else(|| "410 Gone".into())
        }
        async fn list_releases(&self) -> Result<Vec<ReleaseInfo>, String> {
            Ok(self.releases.clone())
        }
        async fn download_release_asset(&self, asset_id: u64) -> Result<Vec<u8>, String> {
            self.assets
                .iter()
                .find(|(id, _)| *id == asset_id)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| "404 Not Found".into())
        }
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
        }
    }

    fn run(id: u64, conclusion: &str, branch: &str) -> RunInfo {
        RunInfo {
            id,
            conclusion: Some(conclusion.into()),
            head_branch: Some(branch.into()),
        }
    }

    fn query() -> AutoQuery {
        AutoQuery {
            artifact_name: String::new(),
            default_branch: Some("main".into()),
            previous_tag: Some("v1.3.0".into()),
            current_run_id: Some(99),
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
            ..FakeGitHub::default()
        };
        match block_on(find_auto(&api, &query())) {
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
        let outcome = block_on(find_auto(&api, &query()));
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
                    tag_name: "v1.4.0-rc1".into(),
                    prerelease: true,
                    ..ReleaseInfo::default()
                },
                ReleaseInfo {
                    tag_name: "v1.3.0".into(),
                    assets: vec![ReleaseAsset {
                        id: 7,
                        name: RELEASE_ASSET_NAME.into(),
                    }],
                    ..ReleaseInfo::default()
                },
            ],
            assets: vec![(7, json)],
            ..FakeGitHub::default()
        };
        let outcome = block_on(find_auto(&api, &query()));
        assert!(
            matches!(&outcome, BaselineOutcome::Found { source, .. } if source == "release v1.3.0 asset cachehit-report.json"),
            "{outcome:?}"
        );
    }

    #[test]
    fn nothing_found_says_why_and_does_not_fail() {
        let api = FakeGitHub {
            artifacts: vec![artifact(3, 30, "main", 5)],
            runs: vec![run(30, "failure", "main")],
            ..FakeGitHub::default()
        };
        match block_on(find_auto(&api, &query())) {
            BaselineOutcome::NotFound { reason } => assert_eq!(
                reason,
                "no baseline: no successful run on main or v1.3.0 uploaded an artifact named \
                 cachehit-report; no published release"
            ),
            other => panic!("expected no baseline, got {other:?}"),
        }
    }

    #[test]
    fn release_reports_are_the_last_published_ones_oldest_first() {
        let json = serde_json::to_vec(&fixture_report()).unwrap();
        let release = |tag: &str, asset: Option<u64>| ReleaseInfo {
            tag_name: tag.into(),
            assets: asset
                .map(|id| ReleaseAsset {
                    id,
                    name: RELEASE_ASSET_NAME.into(),
                })
                .into_iter()
                .collect(),
            ..ReleaseInfo::default()
        };
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
    fn a_zip_without_a_report_names_its_files() {
        let err = report_from_zip(&zip_of(&[
            ("a.txt", b"x"),
            ("b.json", b"{}"),
            ("c.json", b"{}"),
        ]))
        .unwrap_err();
        assert!(err.contains("a.txt, b.json, c.json"), "{err}");
    }
}
