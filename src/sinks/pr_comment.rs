//! The sticky pull-request comment, on pull-request events. GitHub problems become
//! warnings, never a failed step.

use crate::github::api::GitHub;
use crate::github::comment;
use crate::github::error::ApiError;
use crate::github::runner::pull_request_number;
use crate::render;
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
    pub report: &'a Report,
    pub baseline_note: Option<&'a str>,
}

/// Posts or updates the comment when `event` is about a pull request; its URL when written.
pub async fn post(
    github: Option<&GitHub>,
    event: &serde_json::Value,
    comment: &Comment<'_>,
) -> Option<String> {
    let issue = pull_request_number(event)?;
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
                "{e}. Fork pull requests and read-only tokens cannot comment; the report is in the job summary."
            ));
            None
        }
        Err(e) => {
            warning(&format!("the pull-request comment was not posted: {e}"));
            None
        }
    }
}

async fn upsert(
    github: &GitHub,
    issue: u64,
    comment: &Comment<'_>,
) -> Result<Option<String>, ApiError> {
    let owner = comment::Owner::of(github).await?;
    let report = comment.report;
    let noteworthy = !report.diagnoses.is_empty()
        || report
            .comparison
            .as_ref()
            .is_some_and(|c| c.steps_regressed > 0);
    // Still refresh a comment an earlier, worse build left, so it does not mislead.
    if comment.mode == CommentMode::OnRegression
        && !noteworthy
        && comment::find_ours(github, issue, comment.key, &owner)
            .await?
            .is_empty()
    {
        return Ok(None);
    }
    let body =
        render::github::comment_body(report, &comment::marker(comment.key), comment.baseline_note);
    comment::upsert(github, issue, comment.key, &body, &owner)
        .await
        .map(|c| Some(c.html_url))
}
