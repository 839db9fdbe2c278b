//! The sticky pull-request comment, on pull-request events (and on `workflow_run` events for
//! the pull request the triggering run built). One comment per key, with a section per build
//! when the run reports several. GitHub problems become warnings, never a failed step.
//!
//! Two halves, so the network round trips overlap the rest of the run: [`look_up`] (whose
//! comments are ours, which exist) runs while the reports are made, [`post`] writes the
//! comment once they are there.

use crate::github::api::GitHub;
use crate::github::comment::{self, Existing};
use crate::github::error::ApiError;
use crate::render;
use crate::render::github::Section;
use crate::report::Report;
use crate::sinks::workflow_log::warning;

/// The `comment` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentMode {
    On,
    Off,
    /// Only when a step regressed or something was found; an earlier comment of this
    /// workflow is always refreshed, so it does not mislead.
    OnRegression,
}

/// What to post, and where.
pub struct Comment<'a> {
    pub mode: CommentMode,
    /// The marker key: one comment per key.
    pub key: &'a str,
    /// One section per build the run reports (bake targets, build records).
    pub sections: &'a [Section<'a>],
}

/// What [`look_up`] found.
#[derive(Debug)]
pub enum Lookup {
    /// No comment is wanted: not a pull request, or `comment: off`.
    NotWanted,
    /// Wanted, but there is no client to post it with.
    NoGitHub,
    Found(Result<Existing, ApiError>),
}

/// The pull request's existing comments, when a comment is wanted: `issue` is the pull
/// request the event is about. Prints nothing; [`post`] reports what went wrong.
pub async fn look_up(
    github: Option<&GitHub>,
    issue: Option<u64>,
    mode: CommentMode,
    key: &str,
) -> Lookup {
    let Some(issue) = issue.filter(|_| mode != CommentMode::Off) else {
        return Lookup::NotWanted;
    };
    match github {
        Some(github) => Lookup::Found(comment::look_up(github, issue, key).await),
        None => Lookup::NoGitHub,
    }
}

/// Posts or updates the comment [`look_up`] prepared; its URL when written.
pub async fn post(
    github: Option<&GitHub>,
    lookup: Lookup,
    comment: &Comment<'_>,
) -> Option<String> {
    let existing = match (lookup, github) {
        (Lookup::NotWanted, _) => return None,
        (Lookup::NoGitHub, _) | (_, None) => {
            warning("no GITHUB_REPOSITORY or usable token: the pull-request comment was skipped");
            return None;
        }
        (Lookup::Found(existing), Some(github)) => existing.map(|e| (e, github)),
    };
    let written = match existing {
        Ok((existing, github)) => upsert(github, &existing, comment).await,
        Err(e) => Err(e),
    };
    match written {
        Ok(url) => url,
        Err(e) if e.is_forbidden() => {
            warning(&format!(
                "{e}. Fork pull requests and read-only tokens cannot comment; the report is in \
                 the job summary. To comment on a fork's pull request, report from a \
                 `workflow_run` job (see the action's docs, \"Pull requests from forks\")."
            ));
            None
        }
        Err(e) => {
            warning(&format!("the pull-request comment was not posted: {e}"));
            None
        }
    }
}

/// Whether a report holds something worth a comment in `on-regression` mode.
fn noteworthy(report: &Report) -> bool {
    !report.diagnoses.is_empty()
        || report
            .comparison
            .as_ref()
            .is_some_and(|c| c.steps_regressed > 0)
}

async fn upsert(
    github: &GitHub,
    existing: &Existing,
    comment: &Comment<'_>,
) -> Result<Option<String>, ApiError> {
    let noteworthy = comment.sections.iter().any(|s| noteworthy(s.report));
    // Still refresh a comment an earlier, worse build left, so it does not mislead.
    if comment.mode == CommentMode::OnRegression && !noteworthy && existing.ours.is_empty() {
        return Ok(None);
    }
    let body = render::github::comment_sections(comment.sections, &comment::marker(comment.key));
    comment::upsert(github, comment.key, &body, existing)
        .await
        .map(|c| Some(c.html_url))
}
