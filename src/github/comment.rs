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
