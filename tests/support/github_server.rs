//! A local HTTP server following GitHub's documented REST contract for the endpoints cachehit
//! uses, and a second one on another port standing for GitHub's blob storage.
//!
//! - Tokens have an identity, as on GitHub: an installation token (`GITHUB_TOKEN`, a GitHub
//!   App) gets 403 "Resource not accessible by integration" from `GET /user` and writes
//!   comments as a `Bot`; a personal access token reads its login from `GET /user` and writes
//!   comments as a `User`. Unknown tokens get 401 "Bad credentials".
//! - Issue comments: list with `Link` pagination, create 201, update 200, delete 204.
//! - Artifacts: list by name or by run (paginated, `workflow_run` with `repository_id` and
//!   `head_repository_id`); the download is a 302 to storage, serving a zip, or the bytes as
//!   uploaded for an unzipped artifact (`skipArchive`). Workflow runs carry `event`,
//!   `repository` and `head_repository`.
//! - Pull requests: listed by `head=OWNER:BRANCH` and `state`, and by commit
//!   (`/commits/{sha}/pulls`), forks' included.
//! - Releases: listed newest first with `Link` pagination; an asset is its JSON metadata,
//!   or, with `Accept: application/octet-stream`, a 302 to storage.
//! - Actions cache: the usage (`active_caches_size_in_bytes`, `active_caches_count`) and the
//!   entries (`total_count`, `actions_caches[]`: `id`, `ref`, `key`, `version`,
//!   `last_accessed_at`, `created_at`, `size_in_bytes`), filtered by `ref` and `key` prefix,
//!   sorted by `sort` (`last_accessed_at` by default, `created_at`, `size_in_bytes`) and
//!   `direction` (`desc` by default), with `Link` pagination.
//! - Storage: another origin, signed URLs; like S3 or Azure Blob it refuses a request that
//!   also carries an `Authorization` header, and records every request.
//! - Error bodies are `{"message", "documentation_url", "status"}`; every API answer carries
//!   the `x-ratelimit-*` headers. Failures can be injected.
//! - GitHub Enterprise Server ([`GitHubServer::start_ghes`]) serves the API under `/api/v3`
//!   only, and its `Link` headers keep that prefix.
//! - Requests are answered concurrently, as GitHub does, each after an optional latency
//!   ([`GitHubServer::set_latency`], for benchmarks); the state is locked per request.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// `GITHUB_TOKEN` or a GitHub App installation token: acts as a bot, cannot read `/user`.
    Installation,
    /// A personal access token: acts as its user.
    User,
}

#[derive(Clone, Debug)]
pub struct Identity {
    pub login: String,
    pub id: u64,
    pub kind: TokenKind,
}

impl Identity {
    pub fn installation(login: &str) -> Identity {
        Identity {
            login: login.to_string(),
            id: 41_898_282 + login.len() as u64,
            kind: TokenKind::Installation,
        }
    }

    pub fn user(login: &str) -> Identity {
        Identity {
            login: login.to_string(),
            id: 583_231 + login.len() as u64,
            kind: TokenKind::User,
        }
    }

    fn account_type(&self) -> &'static str {
        match self.kind {
            TokenKind::Installation => "Bot",
            TokenKind::User => "User",
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoredComment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: String,
    /// `Bot` or `User`.
    pub user_type: String,
}

/// A failure served instead of the real answer, `times` times, to requests whose method and
/// path (without query) match.
#[derive(Clone, Debug)]
pub struct Injected {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// GitHub's `message`; by default the one GitHub gives for that status and headers.
    pub message: Option<String>,
    pub times: u32,
}

/// The repository the API serves (`o/r`) and a fork of it.
pub const REPOSITORY_ID: u64 = 1;
pub const FORK_REPOSITORY_ID: u64 = 2;

#[derive(Default)]
pub struct State {
    pub requests: Vec<Recorded>,
    pub storage_requests: Vec<Recorded>,
    pub comments: Vec<StoredComment>,
    pub next_id: u64,
    pub artifacts: Vec<Value>,
    pub runs: Vec<Value>,
    pub pulls: Vec<Value>,
    /// Oldest first; listed newest first.
    pub releases: Vec<Value>,
    pub blobs: Vec<(String, Vec<u8>)>,
    /// Actions cache entries, as GitHub lists them.
    pub caches: Vec<Value>,
    pub failures: VecDeque<Injected>,
    pub tokens: Vec<(String, Identity)>,
    /// `/api/v3` on GitHub Enterprise Server, empty on github.com.
    pub prefix: String,
    pub storage_url: String,
    /// Added before every answer, API and storage alike.
    pub latency: std::time::Duration,
    /// A file read whenever a comment is written (created or updated)...
    pub watched: Option<std::path::PathBuf>,
    /// ... and what it held each time.
    pub watched_at_comment: Vec<String>,
}

pub struct GitHubServer {
    /// The origin: `http://127.0.0.1:PORT`.
    pub url: String,
    /// What `GITHUB_API_URL` is set to: the origin, plus `/api/v3` on GHES.
    pub api_url: String,
    /// The storage's origin.
    pub storage_url: String,
    pub state: Arc<Mutex<State>>,
    servers: Vec<Arc<tiny_http::Server>>,
    threads: Vec<JoinHandle<()>>,
}

const DOCS: &str = "https://docs.github.com/rest";
const SECONDARY_LIMIT_MESSAGE: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0400:2B5E:1A2B3C:4D5E6F:67890ABC.";

impl GitHubServer {
    /// github.com: the API at the root. `token` is an installation token acting as
    /// `github-actions[bot]`, as the job's `GITHUB_TOKEN` does.
    pub fn start(token: &str) -> GitHubServer {
        Self::start_with_prefix(token, "")
    }

    /// GitHub Enterprise Server: the API under `/api/v3` only.
    pub fn start_ghes(token: &str) -> GitHubServer {
        Self::start_with_prefix(token, "/api/v3")
    }

    fn start_with_prefix(token: &str, prefix: &str) -> GitHubServer {
        let api = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let storage = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let origin = |s: &tiny_http::Server| {
            format!(
                "http://127.0.0.1:{}",
                s.server_addr().to_ip().unwrap().port()
            )
        };
        let url = origin(&api);
        let storage_url = origin(&storage);
        let state = Arc::new(Mutex::new(State {
            next_id: 1_000,
            tokens: vec![(
                token.to_string(),
                Identity::installation("github-actions[bot]"),
            )],
            prefix: prefix.to_string(),
            storage_url: storage_url.clone(),
            ..State::default()
        }));
        let api_thread = {
            let server = Arc::clone(&api);
            let state = Arc::clone(&state);
            let origin = url.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let state = Arc::clone(&state);
                    let origin = origin.clone();
                    // Each request locks the state while it is handled: consistent, as the
                    // API is, and concurrent with the others' latency.
                    std::thread::spawn(move || {
                        wait_latency(&state);
                        handle(request, &state, &origin);
                    });
                }
            })
        };
        let storage_thread = {
            let server = Arc::clone(&storage);
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || {
                        wait_latency(&state);
                        handle_storage(request, &state);
                    });
                }
            })
        };
        GitHubServer {
            api_url: format!("{url}{prefix}"),
            url,
            storage_url,
            state,
            servers: vec![api, storage],
            threads: vec![api_thread, storage_thread],
        }
    }

    /// A delay before every answer, as a distant server has.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Another token the API accepts, acting as `identity`.
    pub fn add_token(&self, token: &str, identity: Identity) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .push((token.to_string(), identity));
    }

    pub fn inject(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        headers: &[(&str, &str)],
        times: u32,
    ) {
        self.inject_failure(method, path_contains, status, headers, None, times);
    }

    pub fn inject_failure(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        headers: &[(&str, &str)],
        message: Option<&str>,
        times: u32,
    ) {
        self.state.lock().unwrap().failures.push_back(Injected {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            message: message.map(str::to_string),
            times,
        });
    }

    /// Reads `file` each time a comment is written: what the client had written by then.
    pub fn watch_on_comment(&self, file: &std::path::Path) {
        self.state.lock().unwrap().watched = Some(file.to_path_buf());
    }

    /// What the watched file held at each comment written, in order.
    pub fn watched_at_comment(&self) -> Vec<String> {
        self.state.lock().unwrap().watched_at_comment.clone()
    }

    pub fn comments(&self) -> Vec<StoredComment> {
        self.state.lock().unwrap().comments.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn storage_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().storage_requests.clone()
    }

    /// A comment by a person.
    pub fn add_comment(&self, issue: u64, body: &str, user: &str) -> u64 {
        self.add_comment_as(issue, body, user, "User")
    }

    /// A comment by `user`, of GitHub account type `user_type` (`User` or `Bot`).
    pub fn add_comment_as(&self, issue: u64, body: &str, user: &str, user_type: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        s.comments.push(StoredComment {
            id,
            issue,
            body: body.to_string(),
            user: user.to_string(),
            user_type: user_type.to_string(),
        });
        id
    }

    /// An artifact holding `files` (name, content) as GitHub serves it: a zip behind a
    /// redirect to storage. Its `workflow_run` comes from the run `run_id` (added first).
    pub fn add_artifact(
        &self,
        id: u64,
        name: &str,
        run_id: u64,
        branch: &str,
        files: &[(&str, &[u8])],
    ) {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (file, content) in files {
            zip.start_file(*file, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, content).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let mut s = self.state.lock().unwrap();
        let head_repository_id = s
            .runs
            .iter()
            .find(|r| r["id"] == run_id)
            .and_then(|r| r["head_repository"]["id"].as_u64())
            .unwrap_or(REPOSITORY_ID);
        let size = bytes.len();
        s.blobs.push((format!("artifact-{id}"), bytes));
        s.artifacts.push(json!({
            "id": id, "node_id": format!("MDg6QXJ0aWZhY3Q{id}"), "name": name, "size_in_bytes": size,
            "url": format!("/repos/o/r/actions/artifacts/{id}"),
            "archive_download_url": format!("/repos/o/r/actions/artifacts/{id}/zip"),
            "expired": false,
            "created_at": format!("2026-11-{:02}T10:00:00Z", 1 + (id % 27)),
            "updated_at": "2026-11-20T10:00:00Z", "expires_at": "2027-02-20T10:00:00Z",
            "digest": "sha256:cfc3236bdad15b5898bca8408945c9e19e1917da8704adc20eaa618444290a8c",
            "workflow_run": {
                "id": run_id, "repository_id": REPOSITORY_ID,
                "head_repository_id": head_repository_id,
                "head_branch": branch, "head_sha": "328faa0536e6fef19753d9d91dc96a9931694ce3"
            }
        }));
    }

    /// An artifact stored as uploaded, unzipped (`@actions/artifact` with `skipArchive`, as
    /// docker/build-push-action v7 uploads its build record): the download redirects to the
    /// bytes themselves.
    pub fn add_artifact_unzipped(&self, id: u64, name: &str, run_id: u64, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.blobs.push((format!("artifact-{id}"), bytes.to_vec()));
        let head_repository_id = s
            .runs
            .iter()
            .find(|r| r["id"] == run_id)
            .and_then(|r| r["head_repository"]["id"].as_u64())
            .unwrap_or(REPOSITORY_ID);
        s.artifacts.push(json!({
            "id": id, "node_id": format!("MDg6QXJ0aWZhY3Q{id}"), "name": name,
            "size_in_bytes": bytes.len(),
            "url": format!("/repos/o/r/actions/artifacts/{id}"),
            "archive_download_url": format!("/repos/o/r/actions/artifacts/{id}/zip"),
            "expired": false,
            "created_at": format!("2026-11-{:02}T10:00:00Z", 1 + (id % 27)),
            "updated_at": "2026-11-20T10:00:00Z", "expires_at": "2027-02-20T10:00:00Z",
            "digest": "sha256:0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
            "workflow_run": {
                "id": run_id, "repository_id": REPOSITORY_ID,
                "head_repository_id": head_repository_id,
                "head_branch": "main", "head_sha": "328faa0536e6fef19753d9d91dc96a9931694ce3"
            }
        }));
    }

    /// An open pull request of `o/r` whose head is `head_branch` at `head_sha` in
    /// `head_repository` (`o/r`, or a fork's `forker/r`).
    pub fn add_pull(&self, number: u64, head_repository: &str, head_branch: &str, head_sha: &str) {
        let (owner, _) = head_repository.split_once('/').unwrap();
        let fork = head_repository != "o/r";
        self.state.lock().unwrap().pulls.push(json!({
            "url": format!("/repos/o/r/pulls/{number}"), "id": 1_000_000 + number,
            "number": number, "state": "open", "title": "Change things", "draft": false,
            "html_url": format!("https://github.com/o/r/pull/{number}"),
            "user": {"login": owner, "type": "User"},
            "head": {
                "label": format!("{owner}:{head_branch}"), "ref": head_branch, "sha": head_sha,
                "user": {"login": owner, "type": "User"},
                "repo": {"id": if fork { FORK_REPOSITORY_ID } else { REPOSITORY_ID },
                         "name": "r", "full_name": head_repository, "fork": fork}
            },
            "base": {"label": "o:main", "ref": "main", "sha": "9b1f4a2c7d3e5f6a8b0c1d2e3f4a5b6c7d8e9f01",
                     "repo": {"id": REPOSITORY_ID, "name": "r", "full_name": "o/r", "fork": false}}
        }));
    }

    /// A run of the repository's own code, triggered by a push.
    pub fn add_run(&self, id: u64, branch: &str, conclusion: &str) {
        self.add_run_from(id, branch, conclusion, "push", REPOSITORY_ID);
    }

    /// A run triggered by `event`, whose code comes from repository `head_repository_id`
    /// ([`FORK_REPOSITORY_ID`] for a fork's pull request).
    pub fn add_run_from(
        &self,
        id: u64,
        branch: &str,
        conclusion: &str,
        event: &str,
        head_repository_id: u64,
    ) {
        let repository = |rid: u64| {
            let full_name = if rid == REPOSITORY_ID {
                "o/r"
            } else {
                "forker/r"
            };
            json!({"id": rid, "node_id": format!("R_{rid}"), "name": "r", "full_name": full_name,
                   "fork": rid != REPOSITORY_ID, "private": false})
        };
        self.state.lock().unwrap().runs.push(json!({
            "id": id, "name": "build", "node_id": format!("WFR_{id}"), "head_branch": branch,
            "head_sha": "328faa0536e6fef19753d9d91dc96a9931694ce3", "run_number": id,
            "event": event, "status": "completed", "conclusion": conclusion,
            "workflow_id": 1903133, "pull_requests": [],
            "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:05:00Z",
            "repository": repository(REPOSITORY_ID),
            "head_repository": repository(head_repository_id)
        }));
    }

    /// An Actions cache entry (`key`, `ref` such as `refs/heads/main`, size, last access in
    /// RFC 3339).
    pub fn add_cache(&self, key: &str, git_ref: &str, size_in_bytes: u64, last_accessed_at: &str) {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        s.caches.push(json!({
            "id": id, "ref": git_ref, "key": key,
            "version": "73885106f58cc52a7df9ec4d4a5622a5614813162cb516c759a30af6bf56e6f0",
            "last_accessed_at": last_accessed_at, "created_at": last_accessed_at,
            "size_in_bytes": size_in_bytes
        }));
    }

    /// A release, newer than those added before it, with assets (name, content).
    pub fn add_release(
        &self,
        tag: &str,
        draft: bool,
        prerelease: bool,
        assets: &[(&str, &[u8])],
    ) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        let n = s.releases.len();
        let created = format!("2026-{:02}-{:02}T10:00:00Z", 1 + (n / 28) % 12, 1 + n % 28);
        let mut asset_json = Vec::new();
        for (name, bytes) in assets {
            s.next_id += 1;
            let asset_id = s.next_id;
            s.blobs.push((format!("asset-{asset_id}"), bytes.to_vec()));
            asset_json.push(json!({
                "url": format!("/repos/o/r/releases/assets/{asset_id}"),
                "browser_download_url": format!("https://github.com/o/r/releases/download/{tag}/{name}"),
                "id": asset_id, "node_id": format!("RA_{asset_id}"), "name": name, "label": "",
                "state": "uploaded", "content_type": "application/json", "size": bytes.len(),
                "download_count": 0, "created_at": created, "updated_at": created,
                "uploader": {"login": "github-actions[bot]", "type": "Bot"}
            }));
        }
        s.releases.push(json!({
            "url": format!("/repos/o/r/releases/{id}"), "html_url": format!("https://github.com/o/r/releases/tag/{tag}"),
            "id": id, "node_id": format!("RE_{id}"), "tag_name": tag, "target_commitish": "main",
            "name": tag, "body": "", "draft": draft, "prerelease": prerelease,
            "created_at": created, "published_at": if draft { Value::Null } else { created.clone().into() },
            "author": {"login": "octocat", "type": "User"}, "assets": asset_json
        }));
        id
    }
}

impl Drop for GitHubServer {
    fn drop(&mut self) {
        for server in &self.servers {
            server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn wait_latency(state: &Arc<Mutex<State>>) {
    let latency = state.lock().unwrap().latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
}

type Answer = (u16, Vec<u8>, Vec<(String, String)>);

fn respond(request: tiny_http::Request, (status, body, headers): Answer) {
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    let mut has_type = false;
    for (k, v) in headers {
        has_type |= k.eq_ignore_ascii_case("content-type");
        response.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    if !has_type {
        response.add_header(
            tiny_http::Header::from_bytes("Content-Type", "application/json; charset=utf-8")
                .unwrap(),
        );
    }
    let _ = request.respond(response);
}

fn error(status: u16, message: &str) -> Answer {
    (
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.to_string()})
            .to_string()
            .into_bytes(),
        vec![],
    )
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

/// One page of `items` with GitHub's `Link` header; `base` is the API URL (origin and prefix).
fn page(items: &[Value], query: &str, path: &str, base: &str, wrap: Option<&str>) -> Answer {
    let per_page: usize = query_param(query, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = query_param(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let other: String = query
        .split('&')
        .filter(|kv| !kv.starts_with("page=") && !kv.is_empty())
        .map(|kv| format!("{kv}&"))
        .collect();
    let link = |p: usize, rel: &str| format!("<{base}{path}?{other}page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let body = match wrap {
        Some(key) => json!({"total_count": items.len(), key: slice}),
        None => Value::Array(slice),
    };
    let headers = if links.is_empty() {
        vec![]
    } else {
        vec![("Link".to_string(), links.join(", "))]
    };
    (200, body.to_string().into_bytes(), headers)
}

fn comment_json(c: &StoredComment, base: &str) -> Value {
    json!({
        "id": c.id, "node_id": format!("IC_{}", c.id),
        "url": format!("{base}/repos/o/r/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/o/r/pull/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("{base}/repos/o/r/issues/{}", c.issue),
        "body": c.body,
        "user": {"login": c.user, "id": 1000 + c.user.len(), "type": c.user_type, "site_admin": false},
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "author_association": "NONE", "performed_via_github_app": null,
        "reactions": {"url": "", "total_count": 0}
    })
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

fn record(request: &mut tiny_http::Request) -> Recorded {
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    Recorded {
        method: request.method().as_str().to_string(),
        path: request.url().to_string(),
        authorization: header(request, "Authorization"),
        accept: header(request, "Accept"),
        body,
    }
}

/// A signed, short-lived storage URL for a blob, as GitHub's redirects give.
fn storage_location(storage_url: &str, key: &str) -> String {
    format!("{storage_url}/blobs/{key}?se=2026-11-22T10%3A05%3A00Z&sp=r&sig=c2lnbmF0dXJl")
}

fn handle_storage(mut request: tiny_http::Request, state: &Arc<Mutex<State>>) {
    let recorded = record(&mut request);
    let mut s = state.lock().unwrap();
    s.storage_requests.push(recorded.clone());
    let (path, query) = recorded
        .path
        .split_once('?')
        .unwrap_or((recorded.path.as_str(), ""));
    let xml = |status: u16, code: &str, message: &str| -> Answer {
        (
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            )
            .into_bytes(),
            vec![("Content-Type".into(), "application/xml".into())],
        )
    };
    let answer = if recorded.authorization.is_some() {
        // A signed URL is its own credential: a second one is an error, as on S3 and Azure.
        xml(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the signature query parameter or the Authorization header should be specified",
        )
    } else if query_param(query, "sig").is_none() {
        xml(403, "AuthenticationFailed", "Signature not present")
    } else {
        match path
            .strip_prefix("/blobs/")
            .and_then(|key| s.blobs.iter().find(|(k, _)| k == key))
        {
            Some((_, bytes)) => (
                200,
                bytes.clone(),
                vec![("Content-Type".into(), "application/octet-stream".into())],
            ),
            None => xml(404, "BlobNotFound", "The specified blob does not exist."),
        }
    };
    drop(s);
    respond(request, answer);
}

fn default_message(status: u16, headers: &[(String, String)]) -> &'static str {
    let has = |name: &str, value: Option<&str>| {
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && value.is_none_or(|want| v == want))
    };
    match status {
        403 | 429 if has("x-ratelimit-remaining", Some("0")) => {
            "API rate limit exceeded for installation ID 1."
        }
        403 if has("retry-after", None) => SECONDARY_LIMIT_MESSAGE,
        403 => "Resource not accessible by integration",
        429 => SECONDARY_LIMIT_MESSAGE,
        _ => "Server Error",
    }
}

/// Keeps what the watched file holds when a comment is written.
fn watch(s: &mut State) {
    if let Some(file) = &s.watched {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        s.watched_at_comment.push(text);
    }
}

fn handle(mut request: tiny_http::Request, state: &Arc<Mutex<State>>, origin: &str) {
    let recorded = record(&mut request);
    let method = recorded.method.clone();
    let full = recorded.path.clone();
    let body = recorded.body.clone();
    let authorization = recorded.authorization.clone();
    let accept = recorded.accept.clone().unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.requests.push(recorded);
    let (path, query) = full.split_once('?').unwrap_or((full.as_str(), ""));
    let prefix = s.prefix.clone();
    let Some(path) = path.strip_prefix(prefix.as_str()).map(str::to_string) else {
        drop(s);
        return respond(
            request,
            (
                404,
                b"<html><body>Not Found</body></html>".to_vec(),
                vec![("Content-Type".into(), "text/html".into())],
            ),
        );
    };
    let query = query.to_string();
    let base = format!("{origin}{prefix}");

    if let Some(i) = s
        .failures
        .iter()
        .position(|f| f.method == method && path.contains(&f.path_contains))
    {
        let f = s.failures[i].clone();
        if f.times <= 1 {
            s.failures.remove(i);
        } else {
            s.failures[i].times -= 1;
        }
        drop(s);
        let message = f
            .message
            .clone()
            .unwrap_or_else(|| default_message(f.status, &f.headers).to_string());
        let (status, body, _) = error(f.status, &message);
        return respond(request, (status, body, f.headers));
    }

    let identity = authorization.as_deref().and_then(|a| {
        let token = a
            .strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))?;
        s.tokens
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, id)| id.clone())
    });
    let Some(identity) = identity else {
        drop(s);
        return respond(request, error(401, "Bad credentials"));
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, out, mut headers) = match (method.as_str(), parts.as_slice()) {
        ("GET", ["user"]) => match identity.kind {
            TokenKind::Installation => (
                403,
                json!({
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                    "status": "403"
                })
                .to_string()
                .into_bytes(),
                vec![],
            ),
            TokenKind::User => (
                200,
                json!({
                    "login": identity.login, "id": identity.id, "node_id": format!("U_{}", identity.id),
                    "type": "User", "site_admin": false, "name": identity.login
                })
                .to_string()
                .into_bytes(),
                vec![],
            ),
        },
        ("GET", ["repos", "o", "r", "issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let mut items: Vec<&StoredComment> =
                s.comments.iter().filter(|c| c.issue == n).collect();
            items.sort_by_key(|c| c.id);
            let items: Vec<Value> = items.iter().map(|c| comment_json(c, &base)).collect();
            page(&items, &query, &path, &base, None)
        }
        ("POST", ["repos", "o", "r", "issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            match serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b["body"].as_str().map(str::to_string))
            {
                Some(text) if text.chars().count() <= 65_536 => {
                    s.next_id += 1;
                    let c = StoredComment {
                        id: s.next_id,
                        issue: n,
                        body: text,
                        user: identity.login.clone(),
                        user_type: identity.account_type().to_string(),
                    };
                    s.comments.push(c.clone());
                    watch(&mut s);
                    (
                        201,
                        comment_json(&c, &base).to_string().into_bytes(),
                        vec![(
                            "Location".into(),
                            format!("{base}/repos/o/r/issues/comments/{}", c.id),
                        )],
                    )
                }
                Some(_) => error(
                    422,
                    "Validation Failed: body is too long (maximum is 65536 characters)",
                ),
                None => error(422, "Validation Failed"),
            }
        }
        ("PATCH", ["repos", "o", "r", "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b["body"].as_str().map(str::to_string));
            match (s.comments.iter_mut().find(|c| c.id == id), text) {
                (Some(c), Some(text)) => {
                    c.body = text;
                    let c = c.clone();
                    watch(&mut s);
                    (200, comment_json(&c, &base).to_string().into_bytes(), vec![])
                }
                (None, _) => error(404, "Not Found"),
                (_, None) => error(422, "Validation Failed"),
            }
        }
        ("DELETE", ["repos", "o", "r", "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let before = s.comments.len();
            s.comments.retain(|c| c.id != id);
            if s.comments.len() < before {
                (204, Vec::new(), vec![])
            } else {
                error(404, "Not Found")
            }
        }
        ("GET", ["repos", "o", "r", "actions", "artifacts"]) => {
            let name = query_param(&query, "name");
            let mut items: Vec<Value> = s
                .artifacts
                .iter()
                .filter(|a| name.as_ref().is_none_or(|n| a["name"] == n.as_str()))
                .cloned()
                .collect();
            items.sort_by_key(|a| std::cmp::Reverse(a["id"].as_u64()));
            page(&items, &query, &path, &base, Some("artifacts"))
        }
        ("GET", ["repos", "o", "r", "actions", "artifacts", id, "zip"]) => {
            let key = format!("artifact-{id}");
            if s.blobs.iter().any(|(k, _)| *k == key) {
                (
                    302,
                    Vec::new(),
                    vec![("Location".into(), storage_location(&s.storage_url, &key))],
                )
            } else {
                error(404, "Not Found")
            }
        }
        ("GET", ["repos", "o", "r", "actions", "runs", id, "artifacts"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if s.runs.iter().any(|r| r["id"] == id) {
                let mut items: Vec<Value> = s
                    .artifacts
                    .iter()
                    .filter(|a| a["workflow_run"]["id"] == id)
                    .cloned()
                    .collect();
                items.sort_by_key(|a| std::cmp::Reverse(a["id"].as_u64()));
                page(&items, &query, &path, &base, Some("artifacts"))
            } else {
                error(404, "Not Found")
            }
        }
        ("GET", ["repos", "o", "r", "commits", sha, "pulls"]) => {
            // The pull requests whose head is the commit (a fork's too: GitHub keeps its
            // commits under refs/pull/N/head).
            let items: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| p["head"]["sha"] == *sha)
                .cloned()
                .collect();
            page(&items, &query, &path, &base, None)
        }
        ("GET", ["repos", "o", "r", "pulls"]) => {
            let head = query_param(&query, "head");
            let state = query_param(&query, "state").unwrap_or_else(|| "open".into());
            let items: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| state == "all" || p["state"] == state.as_str())
                .filter(|p| head.as_ref().is_none_or(|h| p["head"]["label"] == h.as_str()))
                .cloned()
                .collect();
            page(&items, &query, &path, &base, None)
        }
        ("GET", ["repos", "o", "r", "actions", "runs", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match s.runs.iter().find(|r| r["id"] == id) {
                Some(r) => (200, r.to_string().into_bytes(), vec![]),
                None => error(404, "Not Found"),
            }
        }
        ("GET", ["repos", "o", "r", "actions", "cache", "usage"]) => (
            200,
            json!({
                "full_name": "o/r",
                "active_caches_size_in_bytes": s.caches.iter().filter_map(|c| c["size_in_bytes"].as_u64()).sum::<u64>(),
                "active_caches_count": s.caches.len()
            })
            .to_string()
            .into_bytes(),
            vec![],
        ),
        ("GET", ["repos", "o", "r", "actions", "caches"]) => {
            let git_ref = query_param(&query, "ref");
            let key = query_param(&query, "key");
            let mut items: Vec<Value> = s
                .caches
                .iter()
                .filter(|c| git_ref.as_ref().is_none_or(|r| c["ref"] == r.as_str()))
                .filter(|c| {
                    key.as_ref()
                        .is_none_or(|k| c["key"].as_str().is_some_and(|v| v.starts_with(k.as_str())))
                })
                .cloned()
                .collect();
            let sort = query_param(&query, "sort").unwrap_or_else(|| "last_accessed_at".into());
            items.sort_by(|a, b| match sort.as_str() {
                "size_in_bytes" => a[&sort].as_u64().cmp(&b[&sort].as_u64()),
                _ => a[&sort].as_str().cmp(&b[&sort].as_str()),
            });
            if query_param(&query, "direction").as_deref() != Some("asc") {
                items.reverse();
            }
            page(&items, &query, &path, &base, Some("actions_caches"))
        }
        ("GET", ["repos", "o", "r", "releases"]) => {
            let newest_first: Vec<Value> = s.releases.iter().rev().cloned().collect();
            page(&newest_first, &query, &path, &base, None)
        }
        ("GET", ["repos", "o", "r", "releases", "assets", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let asset = s
                .releases
                .iter()
                .flat_map(|r| r["assets"].as_array().cloned().unwrap_or_default())
                .find(|a| a["id"] == id);
            match asset {
                // The bytes only when asked for them; the metadata otherwise.
                Some(_) if accept.contains("application/octet-stream") => (
                    302,
                    Vec::new(),
                    vec![(
                        "Location".into(),
                        storage_location(&s.storage_url, &format!("asset-{id}")),
                    )],
                ),
                Some(a) => (200, a.to_string().into_bytes(), vec![]),
                None => error(404, "Not Found"),
            }
        }
        _ => error(404, "Not Found"),
    };
    drop(s);
    for (name, value) in [
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4990"),
        ("x-ratelimit-used", "10"),
        ("x-ratelimit-reset", "1893456000"),
        ("x-ratelimit-resource", "core"),
        ("x-github-api-version-selected", "2022-11-28"),
    ] {
        headers.push((name.to_string(), value.to_string()));
    }
    respond(request, (status, out, headers));
}
