//! A local HTTP server following GitHub's documented REST contract for the endpoints cachehit
//! uses: issue comments (list with `Link` pagination, create 201, update 200, delete 204),
//! artifacts (list by name, paginated; zip download as a 302 to storage), workflow runs,
//! releases and release assets. Error bodies are `{"message", "documentation_url"}`. It
//! records every request and can inject failures. Serves under `/` and `/api/v3` (GitHub
//! Enterprise Server).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct StoredComment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: String,
}

/// A failure served instead of the real answer, `times` times, to requests whose method and
/// path (without query) match.
#[derive(Clone, Debug)]
pub struct Injected {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub times: u32,
}

#[derive(Default)]
pub struct State {
    pub requests: Vec<Recorded>,
    pub comments: Vec<StoredComment>,
    pub next_id: u64,
    pub artifacts: Vec<Value>,
    pub runs: Vec<Value>,
    pub releases: Vec<Value>,
    pub blobs: Vec<(String, Vec<u8>)>,
    pub failures: VecDeque<Injected>,
    pub token: String,
    pub bot_login: String,
}

pub struct GitHubServer {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

const DOCS: &str = "https://docs.github.com/rest";

impl GitHubServer {
    pub fn start(token: &str) -> GitHubServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let port = server.server_addr().to_ip().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            next_id: 1_000,
            token: token.to_string(),
            bot_login: "github-actions[bot]".to_string(),
            ..State::default()
        }));
        let thread = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            let base = url.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    // One request at a time keeps the state consistent, as the API is.
                    handle(request, &state, &base);
                }
            })
        };
        GitHubServer {
            url,
            state,
            server,
            thread: Some(thread),
        }
    }

    pub fn inject(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        headers: &[(&str, &str)],
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
            times,
        });
    }

    pub fn comments(&self) -> Vec<StoredComment> {
        self.state.lock().unwrap().comments.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn add_comment(&self, issue: u64, body: &str, user: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        s.comments.push(StoredComment {
            id,
            issue,
            body: body.to_string(),
            user: user.to_string(),
        });
        id
    }

    /// An artifact holding `files` (name, content) as GitHub serves it: a zip behind a redirect.
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
        s.blobs.push((format!("artifact-{id}"), bytes));
        s.artifacts.push(json!({
            "id": id, "node_id": format!("MDg6QXJ0aWZhY3Q{id}"), "name": name, "size_in_bytes": 1000,
            "url": "", "archive_download_url": "", "expired": false,
            "created_at": format!("2026-11-{:02}T10:00:00Z", 1 + (id % 27)),
            "updated_at": "2026-11-20T10:00:00Z", "expires_at": "2027-02-20T10:00:00Z",
            "workflow_run": {"id": run_id, "repository_id": 1, "head_repository_id": 1, "head_branch": branch, "head_sha": "abc"}
        }));
    }

    pub fn add_run(&self, id: u64, branch: &str, conclusion: &str) {
        self.state.lock().unwrap().runs.push(json!({
            "id": id, "name": "build", "head_branch": branch, "status": "completed", "conclusion": conclusion, "event": "push"
        }));
    }
}

impl Drop for GitHubServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    request: tiny_http::Request,
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
) {
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

fn error(status: u16, message: &str) -> (u16, Vec<u8>, Vec<(String, String)>) {
    (
        status,
        json!({"message": message, "documentation_url": DOCS})
            .to_string()
            .into_bytes(),
        vec![],
    )
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%20", " ").replace("%2F", "/"))
    })
}

/// One page of `items` with GitHub's `Link` header.
fn page(
    items: &[Value],
    query: &str,
    base_path: &str,
    base: &str,
    wrap: Option<&str>,
) -> (u16, Vec<u8>, Vec<(String, String)>) {
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
    let link = |p: usize, rel: &str| format!("<{base}{base_path}?{other}page={p}>; rel=\"{rel}\"");
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
        "body": c.body, "user": {"login": c.user, "id": 41898282, "type": "Bot"},
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "author_association": "NONE", "performed_via_github_app": null,
        "reactions": {"url": "", "total_count": 0}
    })
}

fn handle(mut request: tiny_http::Request, state: &Arc<Mutex<State>>, base: &str) {
    let method = request.method().as_str().to_string();
    let full = request.url().to_string();
    let (path, query) = full.split_once('?').unwrap_or((full.as_str(), ""));
    let path = path.strip_prefix("/api/v3").unwrap_or(path).to_string();
    let query = query.to_string();
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.clone(),
        path: full.clone(),
        authorization: authorization.clone(),
        body: body.clone(),
    });

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
        let message = match f.status {
            403 => "Resource not accessible by integration",
            429 => "You have exceeded a secondary rate limit",
            _ => "Server Error",
        };
        let (status, body, _) = error(f.status, message);
        return respond(request, status, body, f.headers);
    }
    let base_repo = format!("{base}/api/v3");
    let _ = base_repo;
    if !path.starts_with("/blob/") {
        let expected = [format!("Bearer {}", s.token), format!("token {}", s.token)];
        if !authorization.as_ref().is_some_and(|a| expected.contains(a)) {
            drop(s);
            let (st, b, h) = error(401, "Bad credentials");
            return respond(request, st, b, h);
        }
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, out, headers) = match (method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let mut items: Vec<&StoredComment> =
                s.comments.iter().filter(|c| c.issue == n).collect();
            items.sort_by_key(|c| c.id);
            let items: Vec<Value> = items.iter().map(|c| comment_json(c, base)).collect();
            page(&items, &query, &path, base, None)
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
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
                        user: s.bot_login.clone(),
                    };
                    s.comments.push(c.clone());
                    (
                        201,
                        comment_json(&c, base).to_string().into_bytes(),
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
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b["body"].as_str().map(str::to_string));
            match (s.comments.iter_mut().find(|c| c.id == id), text) {
                (Some(c), Some(text)) => {
                    c.body = text;
                    let c = c.clone();
                    (200, comment_json(&c, base).to_string().into_bytes(), vec![])
                }
                (None, _) => error(404, "Not Found"),
                (_, None) => error(422, "Validation Failed"),
            }
        }
        ("DELETE", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let before = s.comments.len();
            s.comments.retain(|c| c.id != id);
            if s.comments.len() < before {
                (204, Vec::new(), vec![])
            } else {
                error(404, "Not Found")
            }
        }
        ("GET", ["repos", _, _, "actions", "artifacts"]) => {
            let name = query_param(&query, "name");
            let mut items: Vec<Value> = s
                .artifacts
                .iter()
                .filter(|a| name.as_ref().is_none_or(|n| a["name"] == n.as_str()))
                .cloned()
                .collect();
            items.sort_by_key(|a| std::cmp::Reverse(a["id"].as_u64()));
            page(&items, &query, &path, base, Some("artifacts"))
        }
        ("GET", ["repos", _, _, "actions", "artifacts", id, "zip"]) => {
            let key = format!("artifact-{id}");
            if s.blobs.iter().any(|(k, _)| *k == key) {
                (
                    302,
                    Vec::new(),
                    vec![("Location".into(), format!("{base}/blob/{key}"))],
                )
            } else {
                error(404, "Not Found")
            }
        }
        ("GET", ["repos", _, _, "actions", "runs", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match s.runs.iter().find(|r| r["id"] == id) {
                Some(r) => (200, r.to_string().into_bytes(), vec![]),
                None => error(404, "Not Found"),
            }
        }
        ("GET", ["repos", _, _, "releases"]) => {
            page(&s.releases.clone(), &query, &path, base, None)
        }
        ("GET", ["repos", _, _, "releases", "assets", id]) => (
            302,
            Vec::new(),
            vec![("Location".into(), format!("{base}/blob/asset-{id}"))],
        ),
        // Installation tokens may not read the authenticated user.
        ("GET", ["user"]) => error(403, "Resource not accessible by integration"),
        ("GET", ["blob", key]) => match s.blobs.iter().find(|(k, _)| k == key) {
            Some((_, bytes)) => (
                200,
                bytes.clone(),
                vec![("Content-Type".into(), "application/zip".into())],
            ),
            None => error(404, "Not Found"),
        },
        _ => error(404, "Not Found"),
    };
    drop(s);
    respond(request, status, out, headers);
}
