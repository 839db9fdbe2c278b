//! GitHub REST calls cachehit makes, over octocrab's authenticated client: the sticky
//! pull-request comment and the baseline search (artifacts, runs, releases).
//!
//! Requests go out raw so that every status code, `Link` header and `retry-after` is handled
//! here, as GitHub documents them: 5xx and secondary rate limits (403/429 with `retry-after`
//! or an exhausted `x-ratelimit-remaining`) are retried a bounded number of times with
//! backoff; everything else is returned to the caller as a typed error.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde_json::Value;

use crate::github::baseline::{ArtifactInfo, BaselineApi, ReleaseAsset, ReleaseInfo, RunInfo};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The token may not do this (fork pull requests, read-only tokens).
    #[error("GitHub refused {what} ({status}): {message}")]
    Forbidden {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what} not found on GitHub (404): {message}")]
    NotFound { what: String, message: String },
    #[error("GitHub answered {status} to {what} after {attempts} attempt(s): {message}")]
    Failed {
        what: String,
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error("cannot reach GitHub for {what}: {message}")]
    Transport { what: String, message: String },
}

/// How hard to retry; tests shrink the waits.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    /// No single wait is longer than this, whatever `retry-after` says.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
        }
    }
}

pub struct GitHub {
    client: Octocrab,
    api: String,
    owner: String,
    repo: String,
    retry: RetryPolicy,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl GitHub {
    pub fn new(
        api_url: &str,
        token: Option<&str>,
        owner: &str,
        repo: &str,
        retry: RetryPolicy,
    ) -> Result<Self, ApiError> {
        let transport = |message: String| ApiError::Transport {
            what: "the API client".into(),
            message,
        };
        let mut builder = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| transport(format!("bad API URL {api_url}: {e}")))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        if let Some(token) = token {
            builder = builder.personal_token(token.to_string());
        }
        let client = builder.build().map_err(|e| transport(e.to_string()))?;
        Ok(GitHub {
            client,
            api: api_url.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            retry,
        })
    }

    fn repo_url(&self, path: &str) -> String {
        format!("{}/repos/{}/{}{path}", self.api, self.owner, self.repo)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Response, ApiError> {
        self.send_with(method, url, body, None, what).await
    }

    async fn send_with(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: Option<&HeaderMap>,
        what: &str,
    ) -> Result<Response, ApiError> {
        let mut attempt = 0;
        let mut backoff = self.retry.first_backoff;
        loop {
            attempt += 1;
            let sent = match method {
                Method::Get => self.client._get_with_headers(url, headers.cloned()).await,
                Method::Post => self.client._post(url, body).await,
                Method::Patch => self.client._patch(url, body).await,
                Method::Delete => self.client._delete(url, body).await,
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    if attempt < self.retry.attempts {
                        tokio::time::sleep(backoff.min(self.retry.max_wait)).await;
                        backoff *= 2;
                        continue;
                    }
                    return Err(ApiError::Transport {
                        what: what.to_string(),
                        message: e.to_string(),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let response = Response {
                status,
                headers,
                body,
            };
            if status.is_success() || status.is_redirection() {
                return Ok(response);
            }
            let message = response
                .json()
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&response.body)
                        .chars()
                        .take(200)
                        .collect()
                });
            let wait = retry_wait(&response, backoff);
            if let Some(wait) = wait
                && attempt < self.retry.attempts
            {
                tokio::time::sleep(wait.min(self.retry.max_wait)).await;
                backoff *= 2;
                continue;
            }
            return Err(match status.as_u16() {
                403 | 401 if wait.is_none() => ApiError::Forbidden {
                    what: what.to_string(),
                    status: status.as_u16(),
                    message,
                },
                404 => ApiError::NotFound {
                    what: what.to_string(),
                    message,
                },
                code => ApiError::Failed {
                    what: what.to_string(),
                    status: code,
                    attempts: attempt,
                    message,
                },
            });
        }
    }

    /// Every page of a list endpoint, following `Link: <...>; rel="next"`.
    async fn get_pages(
        &self,
        first_url: &str,
        what: &str,
        items_key: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut url = Some(first_url.to_string());
        let mut items = Vec::new();
        let mut pages = 0;
        while let Some(next) = url.take() {
            pages += 1;
            let response = self.send(Method::Get, &next, None, what).await?;
            let json = response.json();
            let page = match items_key {
                Some(key) => json.get(key).cloned().unwrap_or(Value::Null),
                None => json,
            };
            items.extend(page.as_array().cloned().unwrap_or_default());
            // A bound against a server that links to itself forever.
            if pages < 100 {
                url = next_link(&response.headers);
            }
        }
        Ok(items)
    }

    /// The login the token acts as. Installation tokens (`GITHUB_TOKEN`) may not read `/user`
    /// (403): they act as `github-actions[bot]`.
    pub async fn viewer_login(&self) -> String {
        let url = format!("{}/user", self.api);
        match self
            .send(Method::Get, &url, None, "reading the token's user")
            .await
        {
            Ok(r) => r
                .json()
                .get("login")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| "github-actions[bot]".to_string()),
            Err(_) => "github-actions[bot]".to_string(),
        }
    }

    /// Issue comments of a pull request, oldest first.
    pub async fn list_comments(&self, issue: u64) -> Result<Vec<Comment>, ApiError> {
        let url = self.repo_url(&format!("/issues/{issue}/comments?per_page=100"));
        Ok(self
            .get_pages(&url, "listing pull-request comments", None)
            .await?
            .iter()
            .filter_map(Comment::from_json)
            .collect())
    }

    pub async fn create_comment(&self, issue: u64, body: &str) -> Result<Comment, ApiError> {
        let url = self.repo_url(&format!("/issues/{issue}/comments"));
        self.write_comment(
            Method::Post,
            &url,
            body,
            "creating the pull-request comment",
        )
        .await
    }

    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment, ApiError> {
        let url = self.repo_url(&format!("/issues/comments/{id}"));
        self.write_comment(
            Method::Patch,
            &url,
            body,
            "updating the pull-request comment",
        )
        .await
    }

    /// POST or PATCH a comment body; GitHub answers with the comment.
    async fn write_comment(
        &self,
        method: Method,
        url: &str,
        body: &str,
        what: &str,
    ) -> Result<Comment, ApiError> {
        let response = self
            .send(
                method,
                url,
                Some(&serde_json::json!({ "body": body })),
                what,
            )
            .await?;
        Comment::from_json(&response.json()).ok_or_else(|| ApiError::Transport {
            what: what.into(),
            message: "the answer is not a comment".into(),
        })
    }

    pub async fn delete_comment(&self, id: u64) -> Result<(), ApiError> {
        let url = self.repo_url(&format!("/issues/comments/{id}"));
        self.send(Method::Delete, &url, None, "deleting a duplicate comment")
            .await?;
        Ok(())
    }

    async fn download(&self, url: &str, what: &str) -> Result<Vec<u8>, ApiError> {
        let mut url = url.to_string();
        // Release assets come as bytes only when asked for them.
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        // GitHub answers downloads with a redirect to short-lived storage.
        for _ in 0..5 {
            let response = self
                .send_with(Method::Get, &url, None, Some(&headers), what)
                .await?;
            if response.status.is_redirection() {
                url = response
                    .headers
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| ApiError::Transport {
                        what: what.to_string(),
                        message: "redirect without a location".into(),
                    })?
                    .to_string();
                continue;
            }
            return Ok(response.body);
        }
        Err(ApiError::Transport {
            what: what.to_string(),
            message: "too many redirects".into(),
        })
    }
}

/// A wait before retrying, when the answer is worth retrying.
fn retry_wait(response: &Response, backoff: Duration) -> Option<Duration> {
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status.as_u16();
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok())
        && matches!(status, 403 | 429 | 503)
    {
        return Some(Duration::from_secs(seconds));
    }
    if matches!(status, 403 | 429) && header("x-ratelimit-remaining").as_deref() == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok());
        let now = chrono::Utc::now().timestamp();
        return Some(Duration::from_secs(
            reset.map_or(60, |r| (r - now).max(1) as u64),
        ));
    }
    if status == 429 || status >= 500 {
        return Some(backoff);
    }
    None
}

/// `<https://...&page=2>; rel="next", <...>; rel="last"` -> the next URL.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub html_url: String,
    pub user: Option<String>,
}

impl Comment {
    fn from_json(value: &Value) -> Option<Comment> {
        Some(Comment {
            id: value.get("id")?.as_u64()?,
            body: value
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            html_url: value
                .get("html_url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            user: value
                .get("user")
                .and_then(|u| u.get("login"))
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

impl BaselineApi for GitHub {
    async fn list_artifacts(&self, name: &str) -> Result<Vec<ArtifactInfo>, String> {
        let url = self.repo_url(&format!(
            "/actions/artifacts?per_page=100&name={}",
            encode(name)
        ));
        let items = self
            .get_pages(&url, "listing artifacts", Some("artifacts"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(items
            .iter()
            .filter_map(|a| {
                Some(ArtifactInfo {
                    id: a.get("id")?.as_u64()?,
                    name: a.get("name")?.as_str()?.to_string(),
                    expired: a.get("expired").and_then(Value::as_bool).unwrap_or(false),
                    created_at: a
                        .get("created_at")
                        .and_then(Value::as_str)
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc)),
                    run_id: a
                        .get("workflow_run")
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_u64),
                    head_branch: a
                        .get("workflow_run")
                        .and_then(|r| r.get("head_branch"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .collect())
    }

    async fn get_workflow_run(&self, run_id: u64) -> Result<RunInfo, String> {
        let url = self.repo_url(&format!("/actions/runs/{run_id}"));
        let run = self
            .send(Method::Get, &url, None, "reading a workflow run")
            .await
            .map_err(|e| e.to_string())?
            .json();
        Ok(RunInfo {
            id: run_id,
            conclusion: run
                .get("conclusion")
                .and_then(Value::as_str)
                .map(str::to_string),
            head_branch: run
                .get("head_branch")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    async fn download_artifact_zip(&self, artifact_id: u64) -> Result<Vec<u8>, String> {
        let url = self.repo_url(&format!("/actions/artifacts/{artifact_id}/zip"));
        self.download(&url, "downloading the baseline artifact")
            .await
            .map_err(|e| e.to_string())
    }

    async fn list_releases(&self) -> Result<Vec<ReleaseInfo>, String> {
        let url = self.repo_url("/releases?per_page=30");
        let response = self
            .send(Method::Get, &url, None, "listing releases")
            .await
            .map_err(|e| e.to_string())?;
        Ok(response
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(ReleaseInfo {
                    tag_name: r.get("tag_name")?.as_str()?.to_string(),
                    draft: r.get("draft").and_then(Value::as_bool).unwrap_or(false),
                    prerelease: r
                        .get("prerelease")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    assets: r
                        .get("assets")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| {
                            Some(ReleaseAsset {
                                id: a.get("id")?.as_u64()?,
                                name: a.get("name")?.as_str()?.to_string(),
                            })
                        })
                        .collect(),
                })
            })
            .collect())
    }

    async fn download_release_asset(&self, asset_id: u64) -> Result<Vec<u8>, String> {
        let url = self.repo_url(&format!("/releases/assets/{asset_id}"));
        self.download(&url, "downloading the baseline release asset")
            .await
            .map_err(|e| e.to_string())
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
