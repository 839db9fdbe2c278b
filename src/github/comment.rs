//! The sticky pull-request comment: one per build (per marker key), created once and then
//! updated, never duplicated.

use crate::github::api::{ApiError, Comment, GitHub};
use crate::render::markdown;
use crate::report::Report;

/// GitHub rejects comment bodies longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Encoded keys longer than this are cut and end in a hash of the whole key.
const MAX_ENCODED_KEY: usize = 200;

/// A key as it appears in markers (`keep_slash`) and file names: ASCII letters, digits and
/// `-`, `_`, `.` kept, every other UTF-8 byte percent-encoded, so distinct keys stay distinct
/// and nothing in the key can end an HTML comment or leave a folder. An empty key is
/// `default`.
pub fn encode_key(key: &str, keep_slash: bool) -> String {
    if key.is_empty() {
        return "default".to_string();
    }
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.len() > MAX_ENCODED_KEY {
        // `~` is always encoded above, so this suffix cannot come from a key.
        let mut cut = MAX_ENCODED_KEY;
        while out[..cut].ends_with('%') || out[..cut.saturating_sub(1)].ends_with('%') {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], fnv1a(key.as_bytes()));
    }
    out
}

/// FNV-1a, 64 bits: a stable hash that needs no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `<!-- cachehit:KEY -->`, with the key encoded by [`encode_key`].
pub fn marker(key: &str) -> String {
    format!("<!-- cachehit:{} -->", encode_key(key, true))
}

/// Whose marked comments belong to this workflow, so that a person pasting the marker into
/// their own comment does not take it over.
#[derive(Clone, Debug, PartialEq)]
pub enum Owner {
    /// The token's user, as `GET /user` names it (personal access tokens, user tokens).
    Login(String),
    /// A token that may not read `/user`: installation tokens (`GITHUB_TOKEN` acting as
    /// `github-actions[bot]`, a GitHub App acting as `its-name[bot]`). Their comments are
    /// authored by a bot account, never by a person.
    AnyBot,
}

impl Owner {
    pub async fn of(github: &GitHub) -> Result<Owner, ApiError> {
        Ok(match github.viewer_login().await? {
            Some(login) => Owner::Login(login),
            None => Owner::AnyBot,
        })
    }

    /// Whether `comment` is this workflow's comment for `marker`.
    pub fn owns(&self, comment: &Comment, marker: &str) -> bool {
        comment.body.starts_with(marker)
            && match self {
                Owner::Login(login) => comment.user.as_deref() == Some(login.as_str()),
                Owner::AnyBot => comment.user_type.as_deref() == Some("Bot"),
            }
    }
}

/// This workflow's comments for `key` on the pull request, oldest first.
pub async fn find_ours(
    github: &GitHub,
    issue: u64,
    key: &str,
    owner: &Owner,
) -> Result<Vec<Comment>, ApiError> {
    Ok(ours(
        &github.list_comments(issue).await?,
        &marker(key),
        owner,
    ))
}

fn ours(comments: &[Comment], marker: &str, owner: &Owner) -> Vec<Comment> {
    let mut marked: Vec<Comment> = comments
        .iter()
        .filter(|c| owner.owns(c, marker))
        .cloned()
        .collect();
    marked.sort_by_key(|c| c.id);
    marked
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
    owner: &Owner,
) -> Result<Comment, ApiError> {
    let existing = find_ours(github, issue, key, owner).await?;
    let kept = match existing.first() {
        Some(oldest) => github.update_comment(oldest.id, body).await?,
        None => {
            let created = github.create_comment(issue, body).await?;
            let now = find_ours(github, issue, key, owner).await?;
            match now.first() {
                Some(oldest) if oldest.id != created.id => {
                    github.update_comment(oldest.id, body).await?
                }
                _ => created,
            }
        }
    };
    for duplicate in find_ours(github, issue, key, owner)
        .await?
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
        assert_eq!(marker("worker-image"), "<!-- cachehit:worker-image -->");
        assert_eq!(marker("apps/api"), "<!-- cachehit:apps/api -->");
        assert_eq!(marker("x-->y"), "<!-- cachehit:x--%3Ey -->");
        assert_eq!(marker("a--!>b"), "<!-- cachehit:a--%21%3Eb -->");
        assert_eq!(marker(""), "<!-- cachehit:default -->");
        assert_eq!(marker("é"), "<!-- cachehit:%C3%A9 -->");
    }

    #[test]
    fn distinct_keys_give_distinct_markers() {
        let keys = [
            "api image",
            "apiimage",
            "api%20image",
            "日本",
            "中文",
            "default",
            "",
            "é",
            "e",
        ];
        let markers: std::collections::BTreeSet<String> = keys.iter().map(|k| marker(k)).collect();
        // "" and "default" are the same key by definition; every other pair differs.
        assert_eq!(markers.len(), keys.len() - 1, "{markers:?}");
        let long_a = "x".repeat(300);
        let long_b = format!("{}y", "x".repeat(299));
        assert_ne!(marker(&long_a), marker(&long_b));
        assert!(marker(&long_a).len() < 260);
        // A cut never splits an escape.
        let cut = encode_key(&"ü".repeat(200), true);
        let (head, _hash) = cut.split_once('~').unwrap();
        assert_eq!(head.len() % 3, 0, "{head}");
        for key in keys.iter().copied().chain([long_a.as_str(), "-->", "--!>"]) {
            let m = marker(key);
            let inner = &m["<!-- ".len()..m.len() - " -->".len()];
            assert!(!inner.contains("-->") && !inner.contains('>'), "{m}");
        }
        assert_eq!(encode_key("a/b c", false), "a%2Fb%20c");
    }

    fn comment(user: &str, user_type: &str, body: &str) -> Comment {
        Comment {
            id: 1,
            body: body.into(),
            html_url: String::new(),
            user: Some(user.into()),
            user_type: Some(user_type.into()),
        }
    }

    #[test]
    fn ownership_is_the_login_or_any_bot_never_a_person() {
        let marker = marker("default");
        let body = format!("{marker}\nreport");
        let app = comment("my-app[bot]", "Bot", &body);
        let person = comment("someone", "User", &body);
        assert!(Owner::AnyBot.owns(&app, &marker));
        assert!(!Owner::AnyBot.owns(&person, &marker));
        assert!(Owner::Login("someone".into()).owns(&person, &marker));
        assert!(!Owner::Login("someone".into()).owns(&app, &marker));
        assert!(!Owner::AnyBot.owns(&comment("my-app[bot]", "Bot", "no marker"), &marker));
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
