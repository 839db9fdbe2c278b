//! A registry following the distribution API for what cachehit asks of it (an image index
//! by tag, platform manifests by digest), with as many platforms as wanted, basic or bearer
//! authentication (the token realm anywhere), an optional latency, and a record of every
//! request and of how many were in flight at once. For what the real registry binary cannot
//! be made to do: hundreds of platforms, foreign token realms, latency.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// `WWW-Authenticate: Basic`; these credentials are accepted.
    Basic {
        user: String,
        password: String,
    },
    /// `WWW-Authenticate: Bearer realm=REALM`; `REALM` defaults to this server's `/token`,
    /// which hands out `token` for these basic credentials (or anonymously when `None`).
    Bearer {
        realm: Option<String>,
        token: String,
        credentials: Option<(String, String)>,
    },
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
}

struct State {
    platforms: usize,
    auth: Auth,
    latency: Duration,
    requests: Vec<Seen>,
    in_flight: usize,
    most_in_flight: usize,
}

pub struct FakeRegistry {
    /// `127.0.0.1:PORT`, as an image reference names it.
    pub addr: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    /// A registry holding `repo:tag` of every repository and tag, with `platforms` platforms.
    pub fn start(platforms: usize, auth: Auth) -> FakeRegistry {
        Self::start_on("127.0.0.1:0", platforms, auth)
    }

    /// The same on another address (`0.0.0.0:0` to be reached on every interface).
    pub fn start_on(bind: &str, platforms: usize, auth: Auth) -> FakeRegistry {
        let server = Arc::new(tiny_http::Server::http(bind).expect("bind"));
        let port = server.server_addr().to_ip().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            platforms,
            auth,
            latency: Duration::ZERO,
            requests: Vec::new(),
            in_flight: 0,
            most_in_flight: 0,
        }));
        let thread = {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || handle(request, &state));
                }
            })
        };
        FakeRegistry {
            addr,
            state,
            server,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.server_addr().to_ip().unwrap().port()
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The most requests the registry was answering at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.state.lock().unwrap().most_in_flight
    }

    /// The digest of platform `i`'s manifest.
    pub fn platform_digest(i: usize) -> String {
        format!("sha256:{:064x}", 0xa000 + i)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn handle(mut request: tiny_http::Request, state: &Arc<Mutex<State>>) {
    let _ = std::io::Read::read_to_end(request.as_reader(), &mut Vec::new());
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.to_string());
    let host = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.to_string())
        .unwrap_or_default();
    let path = request.url().to_string();
    let (latency, platforms, auth) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Seen {
            path: path.clone(),
            authorization: authorization.clone(),
        });
        s.in_flight += 1;
        s.most_in_flight = s.most_in_flight.max(s.in_flight);
        (s.latency, s.platforms, s.auth.clone())
    };
    std::thread::sleep(latency);
    let (status, body, headers) = answer(&path, &host, authorization.as_deref(), platforms, &auth);
    state.lock().unwrap().in_flight -= 1;
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    for (k, v) in headers {
        response.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = request.respond(response);
}

type Answer = (u16, Vec<u8>, Vec<(String, String)>);

fn answer(
    path: &str,
    host: &str,
    authorization: Option<&str>,
    platforms: usize,
    auth: &Auth,
) -> Answer {
    let unauthorized = |challenge: String| -> Answer {
        (
            401,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
            vec![("WWW-Authenticate".into(), challenge)],
        )
    };
    if let Some(query) = path.strip_prefix("/token") {
        let Auth::Bearer {
            token, credentials, ..
        } = auth
        else {
            return (404, Vec::new(), vec![]);
        };
        let allowed = match credentials {
            Some((user, password)) => authorization == Some(basic(user, password).as_str()),
            None => true,
        };
        return if allowed && query.contains("scope=repository") {
            (
                200,
                json!({"token": token}).to_string().into_bytes(),
                vec![],
            )
        } else {
            (401, br#"{"details":"refused"}"#.to_vec(), vec![])
        };
    }
    match auth {
        Auth::None => {}
        Auth::Basic { user, password } => {
            if authorization != Some(basic(user, password).as_str()) {
                return unauthorized("Basic realm=\"fake-registry\"".into());
            }
        }
        Auth::Bearer { realm, token, .. } => {
            if authorization != Some(format!("Bearer {token}").as_str()) {
                let realm = realm
                    .clone()
                    .unwrap_or_else(|| format!("http://{host}/token"));
                return unauthorized(format!(
                    "Bearer realm=\"{realm}\",service=\"fake-registry\",scope=\"repository:app:pull\""
                ));
            }
        }
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return (404, Vec::new(), vec![]);
    };
    let Some((_repository, reference)) = rest.split_once("/manifests/") else {
        return (404, Vec::new(), vec![]);
    };
    let oci = |media: &str, body: serde_json::Value, digest: &str| -> Answer {
        (
            200,
            body.to_string().into_bytes(),
            vec![
                ("Content-Type".into(), media.to_string()),
                ("Docker-Content-Digest".into(), digest.to_string()),
            ],
        )
    };
    if let Some(i) = (0..platforms).find(|&i| reference == FakeRegistry::platform_digest(i)) {
        let layer = |n: usize| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": format!("sha256:{:064x}", 0xb000 + i * 10 + n), "size": 1000 * (n + 1)})
        };
        return oci(
            "application/vnd.oci.image.manifest.v1+json",
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                              "digest": format!("sha256:{:064x}", 0xc000 + i), "size": 500},
                   "layers": [layer(0), layer(1)]}),
            reference,
        );
    }
    if reference.starts_with("sha256:") {
        return (404, Vec::new(), vec![]);
    }
    let architectures = ["amd64", "arm64", "s390x", "ppc64le", "riscv64", "386"];
    let mut manifests: Vec<serde_json::Value> = (0..platforms)
        .map(|i| {
            let architecture = architectures
                .get(i)
                .map(|a| a.to_string())
                .unwrap_or_else(|| format!("arch{i}"));
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": FakeRegistry::platform_digest(i), "size": 700,
                   "platform": {"os": "linux", "architecture": architecture}})
        })
        .collect();
    manifests.push(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{:064x}", 0xdddd), "size": 800,
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}),
    );
    oci(
        "application/vnd.oci.image.index.v1+json",
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": manifests}),
        &format!("sha256:{:064x}", 0xeeee),
    )
}
