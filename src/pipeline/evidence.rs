//! Stage 2b, once the baseline is known: this build's commit and ref, and the build-context
//! files changed since the baseline's commit (`sources::git`, on a thread of its own: the
//! repository is read with blocking file I/O).
//!
//! This build's commit is the one checked out in the context's repository (its tree is what
//! was built), else the runner's (`GITHUB_SHA`), else the provenance's `vcs:revision`. The
//! ref is the runner's (`GITHUB_REF`: CI checkouts are detached), else the branch checked out.

use crate::analysis::Baseline;
use crate::analysis::context::{ContextEvidence, ContextUnknown};
use crate::model::BuildInfo;
use crate::pipeline::settings::EvidenceSources;
use crate::sources::git::{self, Head, Limits};

/// Records this build's commit and ref in `info`, and returns the context changes since the
/// baseline's commit: `None` when there is no baseline or no repository to read.
pub async fn source_facts(
    sources: &EvidenceSources,
    info: &mut BuildInfo,
    baseline: Option<&Baseline>,
) -> Option<ContextEvidence> {
    let head = match &sources.context {
        Some(location) => {
            let dir = location.context_dir.clone();
            tokio::task::spawn_blocking(move || git::head(&dir))
                .await
                .ok()
                .and_then(Result::ok)
        }
        None => None,
    };
    record_identity(sources, head, info);

    let location = sources.context.clone()?;
    let baseline = &baseline?.report.build.build;
    let Some(from) = baseline
        .git_commit
        .clone()
        .or_else(|| baseline.vcs_revision.clone())
    else {
        return Some(unknown(ContextUnknown::BaselineHasNoCommit));
    };
    let Some(to) = info.git_commit.clone() else {
        return Some(unknown(ContextUnknown::NoCurrentCommit));
    };
    let read = tokio::task::spawn_blocking(move || {
        git::context_changes(&location, &from, &to, Limits::default())
    })
    .await;
    Some(read.unwrap_or_else(|e| {
        unknown(ContextUnknown::Unreadable {
            message: e.to_string(),
        })
    }))
}

fn unknown(reason: ContextUnknown) -> ContextEvidence {
    ContextEvidence::Unknown { reason }
}

/// Fills the commit and ref the records did not give.
fn record_identity(sources: &EvidenceSources, head: Option<Head>, info: &mut BuildInfo) {
    let (head_commit, head_ref) = match head {
        Some(head) => (Some(head.commit), head.git_ref),
        None => (None, None),
    };
    if info.git_commit.is_none() {
        info.git_commit = head_commit
            .or_else(|| sources.git.commit.clone())
            .or_else(|| info.vcs_revision.clone());
    }
    if info.git_ref.is_none() {
        info.git_ref = sources.git.git_ref.clone().or(head_ref);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::settings::GitIdentity;

    #[test]
    fn the_checked_out_commit_first_then_the_runner_s_then_provenance() {
        let runner = EvidenceSources {
            git: GitIdentity {
                commit: Some("c".repeat(40)),
                git_ref: Some("refs/tags/v2".into()),
            },
            ..EvidenceSources::default()
        };
        let head = Head {
            commit: "a".repeat(40),
            git_ref: Some("refs/heads/main".into()),
        };
        let provenance = BuildInfo {
            vcs_revision: Some("b".repeat(40)),
            ..BuildInfo::default()
        };

        let mut info = provenance.clone();
        record_identity(&runner, Some(head.clone()), &mut info);
        assert_eq!(info.git_commit, Some("a".repeat(40)));
        // CI checkouts are detached: the runner names the ref.
        assert_eq!(info.git_ref.as_deref(), Some("refs/tags/v2"));

        let mut info = provenance.clone();
        record_identity(&runner, None, &mut info);
        assert_eq!(info.git_commit, Some("c".repeat(40)));

        let mut info = provenance.clone();
        record_identity(&EvidenceSources::default(), None, &mut info);
        assert_eq!(info.git_commit, Some("b".repeat(40)));
        assert_eq!(info.git_ref, None);

        let mut info = BuildInfo::default();
        record_identity(&EvidenceSources::default(), Some(head), &mut info);
        assert_eq!(info.git_ref.as_deref(), Some("refs/heads/main"));
    }
}
