//! Image layers from a real distribution registry (anonymous, basic auth, and the bearer-token
//! flow of ghcr.io and Docker Hub through a token-checking proxy), and the failures a registry
//! can answer with. Two real releases are built with the Docker Engine and pushed.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use cachehit::analysis::compare::pull_cost;
use cachehit::sources::registry::{Credentials, ImageRef, RegistryClient, RegistryError};
use serde_json::Value;
use support::{
    BASE_IMAGE, DOCKER, Registry, build, docker, engine_available, ensure_base_image, write_tree,
};

const OCI_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The layers of a pushed manifest, fetched with curl: (digest, size).
fn manifest_layers(
    addr: &str,
    repo: &str,
    tag: &str,
    user: Option<(&str, &str)>,
) -> Vec<(String, u64)> {
    let mut curl = Command::new("curl");
    curl.args(["-sf", "-H", &format!("Accept: {OCI_ACCEPT}")]);
    if let Some((u, p)) = user {
        curl.args(["-u", &format!("{u}:{p}")]);
    }
    let out = support::run(curl.arg(format!("http://{addr}/v2/{repo}/manifests/{tag}")));
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Builds and pushes two releases whose second adds one layer on top of unchanged ones.
fn push_two_releases(registry: &Registry, repo: &str, login: Option<(&str, &str)>) {
    if let Some((user, password)) = login {
        docker(&["login", "-u", user, "-p", password, &registry.addr]);
    }
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path();
    write_tree(
        context,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE_IMAGE}\nRUN dd if=/dev/urandom of=/deps.bin bs=1k count=300 2>/dev/null\nCOPY app.txt /app.txt\n"
                ),
            ),
            ("app.txt", "release 1\n"),
        ],
    );
    for release in ["v1", "v2"] {
        if release == "v2" {
            write_tree(context, &[("app.txt", "release 2, with more text in it\n")]);
        }
        let tag = format!("{}/{repo}:{release}", registry.addr);
        let run = build(context, &tag, &[]);
        assert!(run.success, "{}", run.log);
        docker(&["push", &tag]);
    }
    // The registry holds them now; the engine's tags of a throwaway registry only pile up.
    for release in ["v1", "v2"] {
        docker(&["rmi", &format!("{}/{repo}:{release}", registry.addr)]);
    }
    if login.is_some() {
        docker(&["logout", &registry.addr]);
    }
}

fn client(credentials: Option<(&str, &str)>) -> RegistryClient {
    RegistryClient::new(
        credentials.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        }),
        false,
        Duration::from_secs(5),
    )
}

#[test]
fn pull_cost_from_a_real_registry_with_and_without_auth() {
    if !engine_available("pull_cost_from_a_real_registry_with_and_without_auth") {
        return;
    }
    ensure_base_image();
    for auth in [None, Some(("cachehit", "s3cret-pass"))] {
        let registry = Registry::start(auth);
        let repo = format!("pullcost-{}", std::process::id());
        push_two_releases(&registry, &repo, auth);
        let get = |tag: &str| {
            client(auth)
                .images(&ImageRef::parse(&format!("{}/{repo}:{tag}", registry.addr)).unwrap())
                .unwrap()
        };
        let (v1, v2) = (get("v1"), get("v2"));
        let before: HashSet<String> = manifest_layers(&registry.addr, &repo, "v1", auth)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let after = manifest_layers(&registry.addr, &repo, "v2", auth);
        let expected: u64 = after
            .iter()
            .filter(|(d, _)| !before.contains(d))
            .map(|(_, s)| s)
            .sum();
        assert!(expected > 0);
        // Layer sizes byte for byte as the manifest lists them.
        let sizes: Vec<(String, u64)> = v2[0]
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size.unwrap()))
            .collect();
        assert_eq!(sizes, after);
        let cost = pull_cost(&v2, &v1);
        assert_eq!(cost[0].new_layer_bytes, expected, "auth: {auth:?}");
        assert_eq!(cost[0].new_layers, 1);
        if auth.is_some() {
            // Wrong password and no password: a clear 401 naming the registry.
            let err = client(Some(("cachehit", "wrong")))
                .images(&ImageRef::parse(&format!("{}/{repo}:v1", registry.addr)).unwrap())
                .unwrap_err();
            assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
            assert!(err.to_string().contains(&registry.addr));
            let err = client(None)
                .images(&ImageRef::parse(&format!("{}/{repo}:v1", registry.addr)).unwrap())
                .unwrap_err();
            assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
            let _ = Command::new(DOCKER)
                .args(["logout", &registry.addr])
                .output();
        }
        let err = client(auth)
            .images(&ImageRef::parse(&format!("{}/{repo}:no-such-tag", registry.addr)).unwrap())
            .unwrap_err();
        assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    }
}

/// A server that answers every request with `status`, or never answers.
fn stub_server(status: Option<u16>) -> (String, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_secs(10)) {
            match status {
                Some(code) => {
                    let _ = request
                        .respond(tiny_http::Response::from_string("boom").with_status_code(code));
                }
                None => std::thread::sleep(Duration::from_secs(4)),
            }
        }
    });
    (addr, handle)
}

#[test]
fn server_errors_and_timeouts_are_clear() {
    let (addr, handle) = stub_server(Some(500));
    let err = client(None)
        .images(&ImageRef::parse(&format!("{addr}/app:v1")).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        RegistryError::Server {
            url: format!("http://{addr}/v2/app/manifests/v1"),
            status: 500
        }
    );
    handle.join().unwrap();
    let (addr, handle) = stub_server(None);
    let slow = RegistryClient::new(None, false, Duration::from_secs(1));
    let err = slow
        .images(&ImageRef::parse(&format!("{addr}/app:v1")).unwrap())
        .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&addr));
    handle.join().unwrap();
}

/// Bearer flow as ghcr.io does it: 401 with a `Bearer` challenge, a token from the realm (with
/// basic credentials), then the same request with `Authorization: Bearer TOKEN`. The proxy
/// checks the token and forwards to the real registry.
#[test]
fn bearer_token_flow_through_a_token_checking_proxy() {
    if !engine_available("bearer_token_flow_through_a_token_checking_proxy") {
        return;
    }
    ensure_base_image();
    let registry = Registry::start(None);
    let repo = format!("bearer-{}", std::process::id());
    push_two_releases(&registry, &repo, None);
    let proxy = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.server_addr().to_ip().unwrap().to_string();
    let upstream = registry.addr.clone();
    let realm = format!("http://{proxy_addr}/token");
    let handle = std::thread::spawn(move || {
        for _ in 0..20 {
            let Ok(Some(request)) = proxy.recv_timeout(Duration::from_secs(10)) else {
                break;
            };
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string());
            let url = request.url().to_string();
            if url.starts_with("/token") {
                let ok = url.contains("scope=repository:")
                    && url.contains("service=test-registry")
                    && auth.as_deref() == Some("Basic dXNlcjpwYXNz"); // user:pass
                let body = if ok {
                    r#"{"token":"tkn-123"}"#
                } else {
                    r#"{"errors":[]}"#
                };
                let _ = request.respond(
                    tiny_http::Response::from_string(body).with_status_code(if ok {
                        200
                    } else {
                        401
                    }),
                );
                continue;
            }
            if auth.as_deref() != Some("Bearer tkn-123") {
                let challenge = format!(
                    "Bearer realm=\"{realm}\",service=\"test-registry\",scope=\"repository:{}:pull\"",
                    "x"
                );
                let response = tiny_http::Response::from_string("{}")
                    .with_status_code(401)
                    .with_header(
                        tiny_http::Header::from_bytes("WWW-Authenticate", challenge.as_bytes())
                            .unwrap(),
                    );
                let _ = request.respond(response);
                continue;
            }
            let accept = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let out = Command::new("curl")
                .args(["-s", "-D", "-", "-H", &format!("Accept: {accept}")])
                .arg(format!("http://{upstream}{url}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(502);
            let mut response =
                tiny_http::Response::from_string(body.to_string()).with_status_code(status);
            for line in head.lines().skip(1) {
                if let Some((k, v)) = line.split_once(": ")
                    && (k.eq_ignore_ascii_case("docker-content-digest")
                        || k.eq_ignore_ascii_case("content-type"))
                {
                    response.add_header(
                        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                    );
                }
            }
            let _ = request.respond(response);
        }
    });
    let images = client(Some(("user", "pass")))
        .images(&ImageRef::parse(&format!("{proxy_addr}/{repo}:v2")).unwrap())
        .unwrap();
    let direct = client(None)
        .images(&ImageRef::parse(&format!("{}/{repo}:v2", registry.addr)).unwrap())
        .unwrap();
    assert_eq!(images[0].layers, direct[0].layers);
    let refused = client(Some(("user", "nope")))
        .images(&ImageRef::parse(&format!("{proxy_addr}/{repo}:v2")).unwrap())
        .unwrap_err();
    assert!(
        matches!(refused, RegistryError::Unauthorized { .. }),
        "{refused}"
    );
    drop(handle);
}
