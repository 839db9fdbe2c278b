//! The sticky pull-request comment, on pull-request events (and on `workflow_run` events for
//! the pull request the triggering run built). One comment per key, with a section per build
//! when the run reports several. GitHub problems become warnings, never a failed step.

use crate::github::api::GitHub;
use crate::github::comment;
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

/// Posts or updates the comment on pull request `issue` (when the event is about one); its
/// URL when written.
pub async fn post(
    github: Option<&GitHub>,
    issue: Option<u64>,
    comment: &Comment<'_>,
) -> Option<String> {
    let issue = issue?;
    if comment.mode == CommentMode::Off {
        return None;
    }
    let Some(github) = github else {
        warning("no GITHUB_REPOSITORY or token: the pull-request comment was skipped");
        return None;
    };
    match upsert(github, issue, comment).await {
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
    issue: u64,
    comment: &Comment<'_>,
) -> Result<Option<String>, ApiError> {
    let owner = comment::Owner::of(github).await?;
    let noteworthy = comment.sections.iter().any(|s| noteworthy(s.report));
    // Still refresh a comment an earlier, worse build left, so it does not mislead.
    if comment.mode == CommentMode::OnRegression
        && !noteworthy
        && comment::find_ours(github, issue, comment.key, &owner)
            .await?
            .is_empty()
    {
        return Ok(None);
    }
    let body = render::github::comment_sections(comment.sections, &comment::marker(comment.key));
    comment::upsert(github, issue, comment.key, &body, &owner)
        .await
        .map(|c| Some(c.html_url))
}
