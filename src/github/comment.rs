//! The sticky pull-request comment: one per build (per marker key), created once and then
//! updated, never duplicated.

use crate::github::api::{ApiError, Comment, GitHub};
use crate::render::markdown;
use crate::report::Report;

/// GitHub rejects comment bodies longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// `<!-- cachehit:KEY -->`; the key keeps to characters that cannot end the comment.
pub fn marker(key: &str) -> String {
    let key: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        .take(100)
        .collect();
    let key = if key.is_empty() {
        "default".to_string()
    } else {
        key
    };
    format!("<!-- cachehit:{key} -->")
}

/// Marker first, then the report within GitHub's limit (the table is cut, never the summary).
pub fn body(report: &Report, key: &str, baseline_note: Option<&str>) -> String {
    let marker = marker(key);
    let note = baseline_note
        .map(|n| format!("\n_{}_\n", markdown::escape_text(n)))
        .unwrap_or_default();
    let footer = "\n<sub>Posted by cachehit; updated on every build.</sub>\n";
    let budget = GITHUB_COMMENT_LIMIT - marker.len() - note.chars().count() - footer.len() - 16;
    format!(
        "{marker}\n{}{note}{footer}",
        markdown::render_within(report, budget)
    )
}

/// Creates the comment, or updates the one this workflow already has. Two jobs finishing
/// together may both create one: afterwards the oldest is kept and the others deleted.
pub async fn upsert(
    github: &GitHub,
    issue: u64,
    key: &str,
    body: &str,
) -> Result<Comment, ApiError> {
    let marker = marker(key);
    // Only comments by the token's own user count: a person pasting the marker into their
    // comment does not take it over.
    let me = github.viewer_login().await;
    let ours = |comments: &[Comment]| -> Vec<Comment> {
        let mut marked: Vec<Comment> = comments
            .iter()
            .filter(|c| c.body.starts_with(&marker) && c.user.as_deref() == Some(me.as_str()))
            .cloned()
            .collect();
        marked.sort_by_key(|c| c.id);
        marked
    };
    let existing = ours(&github.list_comments(issue).await?);
    let kept = match existing.first() {
        Some(oldest) => github.update_comment(oldest.id, body).await?,
        None => {
            let created = github.create_comment(issue, body).await?;
            let now = ours(&github.list_comments(issue).await?);
            match now.first() {
                Some(oldest) if oldest.id != created.id => {
                    github.update_comment(oldest.id, body).await?
                }
                _ => created,
            }
        }
    };
    for duplicate in ours(&github.list_comments(issue).await?)
        .iter()
        .filter(|c| c.id != kept.id)
    {
        match github.delete_comment(duplicate.id).await {
            // Another job deleted it first.
            Ok(()) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_cannot_be_broken_out_of() {
        assert_eq!(marker("api image"), "<!-- cachehit:apiimage -->");
        assert_eq!(marker("x-->y"), "<!-- cachehit:x--y -->");
        assert_eq!(marker(""), "<!-- cachehit:default -->");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use crate::model::{Build, Step, StepKind, StepStatus};

    #[test]
    fn a_huge_build_fits_the_limit_keeping_the_summary() {
        let steps = (0..4000)
            .map(|i| Step {
                name: format!("[{i}/4000] RUN make target-{i} | <b>@team</b> #{i}"),
                instruction: format!("RUN make target-{i} | <b>@team</b> #{i} {}", "x".repeat(60)),
                kind: StepKind::Run,
                status: if i % 3 == 0 {
                    StepStatus::Rebuilt
                } else {
                    StepStatus::Cached
                },
                index: Some(i),
                total: Some(4000),
                ..Step::default()
            })
            .collect();
        let report = crate::analysis::analyze(Build {
            steps,
            ..Build::default()
        });
        let text = body(&report, "default", Some("No baseline: none uploaded."));
        assert!(
            text.chars().count() <= GITHUB_COMMENT_LIMIT,
            "{}",
            text.chars().count()
        );
        assert!(text.starts_with("<!-- cachehit:default -->\n### cachehit"));
        assert!(text.contains("2666/4000 steps cached"), "summary kept");
        assert!(text.contains("more steps not shown"));
        assert!(text.contains("No baseline: none uploaded."));
        // Build text cannot open HTML, mention, reference or fake a marker.
        let after_marker = &text["<!-- cachehit:default -->".len()..];
        assert!(!after_marker.contains("<!--"));
        assert!(!after_marker.contains("<b>"));
        assert!(!after_marker.contains("@team"));
        assert!(!after_marker.contains(" #12 "));
    }
}
