//! Build records that a workflow run uploaded as artifacts, for a job that runs after the
//! build (in the same run, or in a `workflow_run` job triggered by it), and the pull request
//! such a run built.
//!
//! docker/build-push-action (and bake-action) export the build's record after the build and
//! upload it as an artifact named `OWNER~REPO~REF6.dockerbuild` (`+N` when it holds N more
//! records). Releases of the actions upload it in two ways, and GitHub's artifact download
//! (`GET .../artifacts/{id}/zip`, a redirect to blob storage) serves what was uploaded:
//! - through the artifact service with the bundle as the blob itself (build-push-action v6),
//!   or zipped as actions/upload-artifact does (a copy uploaded by hand): a zip holding the
//!   `.dockerbuild` file;
//! - with `skipArchive` (build-push-action v7, `@actions/artifact`): the bundle unzipped, a
//!   gzip stream.
//!
//! Both are recognized by their first bytes, never by the name. The bundles are data from the
//! run that built them, a fork's included: they are read as a build's records (bounded,
//! never trusted for anything else, never a baseline), and written under names of cachehit's
//! own.
//!
//! A fork's pull request is not in `workflow_run.pull_requests` (GitHub fills it only for
//! branches of the repository itself). As GitHub documents, it is found from the run's head
//! commit (`GET /repos/{o}/{r}/commits/{sha}/pulls`), else from the head repository's owner
//! and branch (`GET /repos/{o}/{r}/pulls?head=OWNER:BRANCH`).

use std::future::Future;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::github::baseline::{ArtifactInfo, BaselineApi};
use crate::github::error::ApiError;

/// The suffix build-push-action gives its record artifacts.
pub const RECORD_SUFFIX: &str = ".dockerbuild";
/// A record artifact larger than this is not read: real bundles are a few MB.
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;
/// Record artifacts of one run read at most: a matrix of builds, not a crawl.
const MAX_RECORD_ARTIFACTS: usize = 32;

/// An open pull request, as far as finding the one a run built needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PullInfo {
    pub number: u64,
    /// `open` or `closed`.
    pub state: Option<String>,
    pub head_sha: Option<String>,
    /// `owner/name` of the repository its branch lives in (a fork's, for a fork).
    pub head_repository: Option<String>,
}

/// The GitHub calls reading record artifacts and pull requests need, each failing with a
/// typed [`ApiError`]. Implemented over the REST client; tests implement it on data.
pub trait RecordApi: BaselineApi {
    /// Every artifact of one workflow run.
    fn list_run_artifacts(
        &self,
        run_id: u64,
    ) -> impl Future<Output = Result<Vec<ArtifactInfo>, ApiError>> + Send;
    /// An artifact's bytes (`GET .../artifacts/{id}/zip`), at most [`MAX_RECORD_BYTES`]: a
    /// build record may be larger than a report.
    fn download_record_zip(
        &self,
        artifact_id: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ApiError>> + Send;
    /// Pull requests whose head is (or contained) the commit.
    fn pulls_of_commit(
        &self,
        sha: &str,
    ) -> impl Future<Output = Result<Vec<PullInfo>, ApiError>> + Send;
    /// Open pull requests from `OWNER:BRANCH`.
    fn pulls_from_head(
        &self,
        head: &str,
    ) -> impl Future<Output = Result<Vec<PullInfo>, ApiError>> + Send;
}

/// Which run's record artifacts to read, and why that one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRun {
    pub run_id: u64,
    /// Said in messages: `this run`, `run 123 (the workflow_run that triggered this one)`.
    pub described: String,
}

/// A build record read from an artifact, written to a file of cachehit's own naming.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFile {
    pub path: PathBuf,
    /// The artifact it came from: `OWNER~REPO~REF6.dockerbuild`.
    pub artifact: String,
}

/// Why no record could be read from the run.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot list the artifacts of {run}: {error}")]
    List { run: String, error: ApiError },
    #[error(
        "{run} has no build-record artifact (`*{RECORD_SUFFIX}`){expired}: docker/build-push-action \
         uploads one after each build unless DOCKER_BUILD_RECORD_UPLOAD is false (and not on \
         GitHub Enterprise Server); the job reading it needs `actions: read`"
    )]
    None { run: String, expired: String },
    #[error("no build-record artifact of {run} could be read: {}", .problems.join("; "))]
    Unreadable { run: String, problems: Vec<String> },
}

/// Downloads the run's record artifacts into `folder`. Artifacts that cannot be read are
/// reported in the second list when others could; with none readable it is an error.
pub async fn download_records(
    api: &impl RecordApi,
    run: &RecordRun,
    folder: &Path,
) -> Result<(Vec<RecordFile>, Vec<String>), RecordError> {
    let artifacts =
        api.list_run_artifacts(run.run_id)
            .await
            .map_err(|error| RecordError::List {
                run: run.described.clone(),
                error,
            })?;
    let named: Vec<ArtifactInfo> = artifacts
        .into_iter()
        .filter(|a| a.name.ends_with(RECORD_SUFFIX))
        .collect();
    let expired = named.iter().filter(|a| a.expired).count();
    let mut live: Vec<ArtifactInfo> = named.into_iter().filter(|a| !a.expired).collect();
    if live.is_empty() {
        return Err(RecordError::None {
            run: run.described.clone(),
            expired: if expired > 0 {
                format!(" that has not expired ({expired} expired)")
            } else {
                String::new()
            },
        });
    }
    // The order the builds were uploaded in, whatever order the listing has.
    live.sort_by_key(|a| (a.created_at, a.id));
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let read = live.len().min(MAX_RECORD_ARTIFACTS);
    for (i, artifact) in live.iter().take(read).enumerate() {
        if artifact.size.is_some_and(|size| size > MAX_RECORD_BYTES) {
            problems.push(format!(
                "artifact {} is larger than {} MiB: not a build record",
                artifact.name,
                MAX_RECORD_BYTES >> 20
            ));
            continue;
        }
        let bytes = match api.download_record_zip(artifact.id).await {
            Ok(bytes) => bytes,
            // GitHub did not answer: the next download would not be answered either.
            Err(e) if e.is_transport() => {
                problems.push(format!("artifact {}: {e}", artifact.name));
                let untried = read - i - 1;
                if untried > 0 {
                    problems.push(format!(
                        "{untried} more build-record artifacts were not tried"
                    ));
                }
                break;
            }
            Err(e) => {
                problems.push(format!("artifact {}: {e}", artifact.name));
                continue;
            }
        };
        match bundles_in(&bytes) {
            Ok(bundles) if !bundles.is_empty() => {
                for (n, bundle) in bundles.into_iter().enumerate() {
                    let path = folder.join(format!("record-{}-{n}{RECORD_SUFFIX}", artifact.id));
                    if let Err(e) = std::fs::write(&path, bundle) {
                        problems.push(format!("cannot write {}: {e}", path.display()));
                        continue;
                    }
                    files.push(RecordFile {
                        path,
                        artifact: artifact.name.clone(),
                    });
                }
            }
            Ok(_) => problems.push(format!(
                "artifact {} holds no build record (neither a .dockerbuild bundle nor a zip of one)",
                artifact.name
            )),
            Err(e) => problems.push(format!("artifact {}: {e}", artifact.name)),
        }
    }
    if live.len() > MAX_RECORD_ARTIFACTS {
        problems.push(format!(
            "{} more build-record artifacts were not read (at most {MAX_RECORD_ARTIFACTS})",
            live.len() - MAX_RECORD_ARTIFACTS
        ));
    }
    if files.is_empty() {
        return Err(RecordError::Unreadable {
            run: run.described.clone(),
            problems,
        });
    }
    Ok((files, problems))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// The `.dockerbuild` bundles in what an artifact download served: the bundle itself (a gzip
/// stream), or a zip holding bundles (recognized by content, any entry name).
pub fn bundles_in(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.starts_with(&GZIP_MAGIC) {
        return Ok(vec![bytes.to_vec()]);
    }
    if !bytes.starts_with(&ZIP_MAGIC) {
        return Err("neither a zip nor a gzip .dockerbuild bundle".into());
    }
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut bundles = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("cannot open zip entry {i}: {e}"))?;
        if entry.is_dir() || entry.size() > MAX_RECORD_BYTES {
            continue;
        }
        let mut content = Vec::new();
        entry
            .by_ref()
            .take(MAX_RECORD_BYTES)
            .read_to_end(&mut content)
            .map_err(|e| format!("cannot read zip entry {i}: {e}"))?;
        if content.starts_with(&GZIP_MAGIC) {
            bundles.push(content);
        }
    }
    Ok(bundles)
}

/// The pull request a `workflow_run` event's run built, when that run was a pull request's:
/// from the event for a branch of this repository, else from the head commit, else from the
/// head repository's owner and branch. `None` for other runs (a push) and when none is open.
pub async fn pull_request_of_run(
    api: &impl RecordApi,
    event: &Value,
) -> Result<Option<u64>, ApiError> {
    let Some(run) = event.get("workflow_run") else {
        return Ok(None);
    };
    let text = |pointer: &str| run.pointer(pointer).and_then(Value::as_str);
    if !text("/event").is_some_and(|e| e.starts_with("pull_request")) {
        return Ok(None);
    }
    let head_sha = text("/head_sha");
    // GitHub may list pull requests of other repositories whose head is the same branch:
    // only this repository's count.
    let this_repository = run
        .pointer("/repository/id")
        .or_else(|| event.pointer("/repository/id"))
        .and_then(Value::as_u64);
    let listed: Vec<PullInfo> = run
        .get("pull_requests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|pr| {
            let base = pr.pointer("/base/repo/id").and_then(Value::as_u64);
            base.is_none() || this_repository.is_none() || base == this_repository
        })
        .filter_map(|pr| {
            Some(PullInfo {
                number: pr.get("number")?.as_u64()?,
                state: None,
                head_sha: pr
                    .pointer("/head/sha")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                head_repository: None,
            })
        })
        .collect();
    if let Some(number) = choose(&listed, head_sha, None) {
        return Ok(Some(number));
    }
    let head_repository = text("/head_repository/full_name");
    if let Some(sha) = head_sha {
        let of_commit = api.pulls_of_commit(sha).await?;
        let open: Vec<PullInfo> = of_commit
            .into_iter()
            .filter(|p| p.state.as_deref() != Some("closed"))
            .collect();
        if let Some(number) = choose(&open, Some(sha), head_repository) {
            return Ok(Some(number));
        }
    }
    if let (Some(owner), Some(branch)) =
        (text("/head_repository/owner/login"), text("/head_branch"))
    {
        let from_head = api.pulls_from_head(&format!("{owner}:{branch}")).await?;
        return Ok(choose(&from_head, head_sha, head_repository));
    }
    Ok(None)
}

/// The pull request whose head is the run's commit, else the only one from its repository.
fn choose(pulls: &[PullInfo], sha: Option<&str>, repository: Option<&str>) -> Option<u64> {
    let from_repository = |p: &&PullInfo| {
        repository.is_none()
            || p.head_repository.is_none()
            || p.head_repository.as_deref() == repository
    };
    pulls
        .iter()
        .filter(from_repository)
        .find(|p| sha.is_some() && p.head_sha.as_deref() == sha)
        .or_else(|| {
            let mut candidates = pulls.iter().filter(from_repository);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        })
        .map(|p| p.number)
}

/// A zip archive holding `files`, as GitHub serves an artifact.
#[cfg(test)]
pub(super) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn bundles_are_found_by_content_zipped_or_not() {
        let bundle = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/buildx-v0.36/p1-copy-before-deps/v2.dockerbuild"),
        )
        .unwrap();
        assert_eq!(bundles_in(&bundle).unwrap(), vec![bundle.clone()]);
        let zipped = zip_of(&[("o~r~ABCDEF.dockerbuild", &bundle), ("notes.txt", b"hello")]);
        assert_eq!(bundles_in(&zipped).unwrap(), vec![bundle.clone()]);
        assert!(bundles_in(&zip_of(&[("a.txt", b"x")])).unwrap().is_empty());
        assert!(bundles_in(b"<html>").is_err());
    }

    #[test]
    fn the_pull_request_is_the_one_whose_head_is_the_run_s_commit() {
        let pr = |number, sha: &str, repo: &str| PullInfo {
            number,
            state: Some("open".into()),
            head_sha: Some(sha.into()),
            head_repository: Some(repo.into()),
        };
        let pulls = [pr(3, "aaa", "forker/r"), pr(4, "bbb", "forker/r")];
        assert_eq!(choose(&pulls, Some("bbb"), Some("forker/r")), Some(4));
        // The branch moved on: the only pull request of that repository is still the one.
        assert_eq!(choose(&pulls[..1], Some("ccc"), Some("forker/r")), Some(3));
        assert_eq!(choose(&pulls, Some("ccc"), Some("forker/r")), None);
        assert_eq!(choose(&pulls, Some("aaa"), Some("other/r")), None);
    }
}
