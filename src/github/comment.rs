//! The sticky pull-request comment: one per build (per marker key), created once and then
//! updated, never duplicated. Its body is rendered by `render::github`.

use crate::github::api::{Comment, GitHub};
use crate::github::error::ApiError;
use crate::github::key::encode_key;

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
    /// From `GET /user`'s login, `None` for a token that may not read it.
    fn from_login(login: Option<String>) -> Owner {
        match login {
            Some(login) => Owner::Login(login),
            None => Owner::AnyBot,
        }
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

/// What the pull request holds before the comment is written: whose comments are ours, and
/// which they are. Looked up while the report is being made.
#[derive(Clone, Debug, PartialEq)]
pub struct Existing {
    pub issue: u64,
    pub owner: Owner,
    /// This workflow's comments for the key, oldest first.
    pub ours: Vec<Comment>,
}

/// The token's identity and the pull request's comments, asked for together.
pub async fn look_up(github: &GitHub, issue: u64, key: &str) -> Result<Existing, ApiError> {
    let (login, comments) = tokio::join!(github.viewer_login(), github.list_comments(issue));
    let owner = Owner::from_login(login?);
    let ours = ours(&comments?, &marker(key), &owner);
    Ok(Existing { issue, owner, ours })
}

/// Creates the comment, or updates the one this workflow already has (as `existing` found
/// them). Two jobs finishing together may both create one: afterwards the oldest is kept and
/// the others deleted.
pub async fn upsert(
    github: &GitHub,
    key: &str,
    body: &str,
    existing: &Existing,
) -> Result<Comment, ApiError> {
    let Existing { issue, owner, ours } = existing;
    let (kept, others) = match ours.split_first() {
        Some((oldest, others)) => (
            github.update_comment(oldest.id, body).await?,
            others.to_vec(),
        ),
        None => {
            let created = github.create_comment(*issue, body).await?;
            // Another job may have created one at the same time: the oldest is kept.
            let now = find_ours(github, *issue, key, owner).await?;
            let kept = match now.first() {
                Some(oldest) if oldest.id != created.id => {
                    github.update_comment(oldest.id, body).await?
                }
                _ => created,
            };
            let others = now.into_iter().filter(|c| c.id != kept.id).collect();
            (kept, others)
        }
    };
    for duplicate in others {
        match github.delete_comment(duplicate.id).await {
            // Another job deleted it first.
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
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
