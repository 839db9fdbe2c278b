//! The OCI distribution API: an image reference to its platform manifests and their
//! compressed layers. Anonymous access, basic auth, and the bearer-token flow that ghcr.io
//! and Docker Hub use (a `401` with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`).
//!
//! Credentials are guarded: they go only over TLS, or to a loopback address (`localhost`,
//! `127.0.0.0/8`, `::1`, parsed, never matched on a prefix); Basic credentials only after the
//! registry asked for them, and to a token realm only when it is on the registry's own host
//! or over TLS. Every request has a deadline (its body included) within a budget for the
//! whole image; an index's platform manifests are fetched a few at a time, at most
//! [`MAX_PLATFORMS`] of them.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model::{Layer, PlatformImage};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(
        "{url}: unauthorized (401): {detail}; pass credentials (--registry-user, CACHEHIT_REGISTRY_PASSWORD)"
    )]
    Unauthorized { url: String, detail: String },
    #[error("{url}: not found (404): no such image or tag")]
    NotFound { url: String },
    #[error("{url}: the registry answered {status}")]
    Server { url: String, status: u16 },
    #[error("{url}: timeout: no complete answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error(
        "{url}: the registry wants credentials, which cachehit sends only over TLS or to a loopback address"
    )]
    InsecureCredentials { url: String },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
}

/// Text that is not an image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an image reference (registry/repository:tag)")]
pub struct ImageRefError(pub String);

/// `registry/repository:tag` or `registry/repository@sha256:...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, ImageRefError> {
        let text = text.trim();
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(ImageRefError(text.to_string()));
        }
        let (name, reference) = match text.split_once('@') {
            Some((name, digest)) => (name, digest.to_string()),
            None => match text.rfind(':') {
                Some(i) if !text[i..].contains('/') => (&text[..i], text[i + 1..].to_string()),
                _ => (text, "latest".to_string()),
            },
        };
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let (registry, repository) =
            if first.contains('.') || first.contains(':') || first == "localhost" {
                (first.to_string(), rest.to_string())
            } else if first.is_empty() {
                (
                    "registry-1.docker.io".to_string(),
                    format!("library/{rest}"),
                )
            } else {
                ("registry-1.docker.io".to_string(), name.to_string())
            };
        if repository.is_empty() || reference.is_empty() {
            return Err(ImageRefError(text.to_string()));
        }
        Ok(ImageRef {
            registry,
            repository,
            reference,
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// An index's platform manifests read at most: real multi-platform images have a handful.
pub const MAX_PLATFORMS: usize = 64;
/// Platform manifests asked for at the same time.
const CONCURRENT_REQUESTS: usize = 4;
/// The largest manifest or token answer read.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// Every request of one image together.
const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

/// The platform images of a reference, and what was left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Images {
    pub images: Vec<PlatformImage>,
    /// Platforms of the index beyond [`MAX_PLATFORMS`], not read.
    pub platforms_left_out: usize,
}

pub struct RegistryClient {
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    insecure: bool,
    timeout: Duration,
    budget: Duration,
    token: Mutex<Option<String>>,
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`) is this machine: `localhost` or a
/// loopback IP address, parsed.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            // One colon: a port; several: an IPv6 address without brackets.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        },
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` of an `http(s)://host:port/...` URL, and whether it is TLS.
fn authority(url: &str) -> (String, bool) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (
        host.to_ascii_lowercase(),
        scheme.eq_ignore_ascii_case("https"),
    )
}

/// Whether credentials may go to `url`: over TLS, or to this machine.
fn may_carry_credentials(url: &str) -> bool {
    let (host, tls) = authority(url);
    tls || is_loopback(&host)
}

/// Whether credentials may go to a token `realm` of the registry at `registry_url`: over
/// TLS, or when both are this machine.
fn realm_may_carry_credentials(realm: &str, registry_url: &str) -> bool {
    let (realm_host, tls) = authority(realm);
    let (registry_host, _) = authority(registry_url);
    tls || (is_loopback(&realm_host) && is_loopback(&registry_host))
}

impl RegistryClient {
    pub fn new(credentials: Option<Credentials>, insecure: bool, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build();
        RegistryClient {
            agent: config.into(),
            credentials,
            insecure,
            timeout,
            budget: DEFAULT_BUDGET,
            token: Mutex::new(None),
        }
    }

    /// The same client with another budget for all requests of one image.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    fn base(&self, image: &ImageRef) -> String {
        let scheme = if self.insecure || is_loopback(&image.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", image.registry, image.repository)
    }

    /// Every platform image of the reference (attestation manifests left out).
    pub fn images(&self, image: &ImageRef) -> Result<Vec<PlatformImage>, RegistryError> {
        self.images_of(image).map(|found| found.images)
    }

    /// Every platform image of the reference (attestation manifests left out), at most
    /// [`MAX_PLATFORMS`] of an index, fetched a few at a time.
    pub fn images_of(&self, image: &ImageRef) -> Result<Images, RegistryError> {
        let started = Instant::now();
        let url = format!("{}/manifests/{}", self.base(image), image.reference);
        let (digest, manifest) = self.get_json(&url, MANIFEST_TYPES, started)?;
        let Some(entries) = manifest.get("manifests") else {
            return Ok(Images {
                images: vec![platform_image(None, digest, &manifest)],
                platforms_left_out: 0,
            });
        };
        let mut wanted = Vec::new();
        for entry in entries.as_array().into_iter().flatten() {
            let attestation = entry
                .get("annotations")
                .and_then(|a| a.get("vnd.docker.reference.type"))
                .and_then(Value::as_str)
                == Some("attestation-manifest");
            let platform = entry.get("platform").map(|p| {
                let os = p.get("os").and_then(Value::as_str).unwrap_or("unknown");
                let arch = p
                    .get("architecture")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                match p.get("variant").and_then(Value::as_str) {
                    Some(v) => format!("{os}/{arch}/{v}"),
                    None => format!("{os}/{arch}"),
                }
            });
            if attestation || platform.as_deref() == Some("unknown/unknown") {
                continue;
            }
            let Some(child) = entry.get("digest").and_then(Value::as_str) else {
                continue;
            };
            wanted.push((platform, child.to_string()));
        }
        let platforms_left_out = wanted.len().saturating_sub(MAX_PLATFORMS);
        wanted.truncate(MAX_PLATFORMS);
        let base = self.base(image);
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<PlatformImage, RegistryError>>>> =
            wanted.iter().map(|_| Mutex::new(None)).collect();
        let failed = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..CONCURRENT_REQUESTS.min(wanted.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        // After one failure, nothing more is asked of that registry.
                        if i >= wanted.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let (platform, child) = &wanted[i];
                        let url = format!("{base}/manifests/{child}");
                        let result = self.get_json(&url, MANIFEST_TYPES, started).map(|(_, m)| {
                            platform_image(platform.clone(), Some(child.clone()), &m)
                        });
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                    }
                });
            }
        });
        let mut images = Vec::with_capacity(results.len());
        for slot in results {
            match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                Some(Ok(image)) => images.push(image),
                Some(Err(e)) => return Err(e),
                // Not asked after another platform failed: that failure is returned above
                // or below, in index order.
                None => {}
            }
        }
        Ok(Images {
            images,
            platforms_left_out,
        })
    }

    /// The deadline of the next request: its own, within what is left of the budget.
    fn deadline(&self, url: &str, started: Instant) -> Result<Duration, RegistryError> {
        let left = self.budget.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(RegistryError::Timeout {
                url: url.into(),
                seconds: self.budget.as_secs().max(1),
            });
        }
        Ok(self.timeout.min(left))
    }

    fn bearer(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn get_json(
        &self,
        url: &str,
        accept: &str,
        started: Instant,
    ) -> Result<(Option<String>, Value), RegistryError> {
        // Basic credentials go only after the registry asked for them.
        let mut basic_asked = false;
        let mut challenge_answered = false;
        loop {
            let deadline = self.deadline(url, started)?;
            let mut request = self
                .agent
                .get(url)
                .header("Accept", accept)
                .config()
                .timeout_global(Some(deadline))
                .build();
            let bearer = self.bearer();
            if let Some(token) = &bearer {
                request = request.header("Authorization", &format!("Bearer {token}"));
            } else if let (true, Some(c)) = (basic_asked, &self.credentials) {
                request = request.header("Authorization", &basic(c));
            }
            let mut response = request
                .call()
                .map_err(|e| self.transport(url, e, deadline))?;
            let status = response.status().as_u16();
            if status == 401 && !challenge_answered {
                challenge_answered = true;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if let Some(params) = strip_scheme(&challenge, "Bearer") {
                    let token = self.fetch_token(url, params, started)?;
                    *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
                    continue;
                }
                if strip_scheme(&challenge, "Basic").is_some()
                    && bearer.is_none()
                    && self.credentials.is_some()
                {
                    if !may_carry_credentials(url) {
                        return Err(RegistryError::InsecureCredentials { url: url.into() });
                    }
                    basic_asked = true;
                    continue;
                }
                return Err(RegistryError::Unauthorized {
                    url: url.into(),
                    detail: if self.credentials.is_some() {
                        "the credentials were refused".into()
                    } else {
                        "the registry wants credentials".into()
                    },
                });
            }
            match status {
                200 => {}
                401 => {
                    return Err(RegistryError::Unauthorized {
                        url: url.into(),
                        detail: "the credentials were refused".into(),
                    });
                }
                404 => return Err(RegistryError::NotFound { url: url.into() }),
                s => {
                    return Err(RegistryError::Server {
                        url: url.into(),
                        status: s,
                    });
                }
            }
            let digest = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_MANIFEST_BYTES)
                .read_to_vec()
                .map_err(|e| self.transport(url, e, deadline))?;
            let json = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                url: url.into(),
                detail: format!("the manifest is not JSON: {e}"),
            })?;
            return Ok((digest, json));
        }
    }

    /// `realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"`.
    /// Credentials go to the realm only when it is over TLS or on the registry's own host;
    /// otherwise a token is asked for anonymously.
    fn fetch_token(
        &self,
        url: &str,
        params: &str,
        started: Instant,
    ) -> Result<String, RegistryError> {
        let mut realm = None;
        let mut query = Vec::new();
        for part in split_params(params) {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value.to_string()),
                k @ ("service" | "scope") => query.push(format!("{k}={}", encode_query(value))),
                _ => {}
            }
        }
        let realm = realm.ok_or_else(|| RegistryError::Protocol {
            url: url.into(),
            detail: "bearer challenge without realm".into(),
        })?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Protocol {
                url: url.into(),
                detail: format!("bearer realm `{realm}` is not an http(s) URL"),
            });
        }
        let token_url = format!(
            "{realm}{}{}",
            if realm.contains('?') { "&" } else { "?" },
            query.join("&")
        );
        let deadline = self.deadline(&token_url, started)?;
        let mut request = self
            .agent
            .get(&token_url)
            .config()
            .timeout_global(Some(deadline))
            .build();
        if let Some(c) = &self.credentials
            && realm_may_carry_credentials(&realm, url)
        {
            request = request.header("Authorization", &basic(c));
        }
        let mut response = request
            .call()
            .map_err(|e| self.transport(&token_url, e, deadline))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(RegistryError::Unauthorized {
                    url: token_url,
                    detail: "the token service refused the credentials".into(),
                });
            }
            s => {
                return Err(RegistryError::Server {
                    url: token_url,
                    status: s,
                });
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_TOKEN_BYTES)
            .read_to_vec()
            .map_err(|e| self.transport(&token_url, e, deadline))?;
        let body: Value = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            url: token_url.clone(),
            detail: format!("token answer: {e}"),
        })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(RegistryError::Protocol {
                url: token_url,
                detail: "no token in the answer".into(),
            })
    }

    fn transport(&self, url: &str, error: ureq::Error, deadline: Duration) -> RegistryError {
        match error {
            ureq::Error::Timeout(_) => RegistryError::Timeout {
                url: url.into(),
                seconds: deadline.as_secs().max(1),
            },
            other => RegistryError::Protocol {
                url: url.into(),
                detail: other.to_string(),
            },
        }
    }
}

/// The parameters of a `WWW-Authenticate` challenge of `scheme` (case-insensitive).
fn strip_scheme<'a>(challenge: &'a str, scheme: &str) -> Option<&'a str> {
    let challenge = challenge.trim_start();
    let head = challenge.get(..scheme.len())?;
    let rest = &challenge[scheme.len()..];
    (head.eq_ignore_ascii_case(scheme) && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| rest.trim_start())
}

/// A query value: unreserved characters and those scopes use (`:`, `/`, `,`) as they are.
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'/'
            | b',' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn split_params(params: &str) -> Vec<String> {
    // Commas inside quoted values (scopes with several actions) do not split.
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in params.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn basic(c: &Credentials) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

fn platform_image(
    platform: Option<String>,
    digest: Option<String>,
    manifest: &Value,
) -> PlatformImage {
    let layers: Vec<Layer> = manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some(Layer {
                digest: l.get("digest")?.as_str()?.to_string(),
                size: l.get("size").and_then(Value::as_u64),
                media_type: l
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect();
    PlatformImage {
        platform,
        manifest_digest: digest,
        config_digest: manifest
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .map(str::to_string),
        total_bytes: crate::model::layers_size(&layers),
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("127.0.0.1:5000/acme/app:v2").unwrap();
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("127.0.0.1:5000", "acme/app", "v2")
        );
        let r = ImageRef::parse("ghcr.io/acme/app@sha256:ab").unwrap();
        assert_eq!(r.reference, "sha256:ab");
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("registry-1.docker.io", "library/busybox", "latest")
        );
        assert!(ImageRef::parse("").is_err());
    }

    #[test]
    fn loopback_is_parsed_not_prefix_matched() {
        for host in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.1.2.3:443",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.attacker.example",
            "localhost.attacker.example:5000",
            "127.0.0.1.nip.io",
            "127.attacker.example",
            "localhostx",
            "10.0.0.1:5000",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
        let client = RegistryClient::new(None, false, Duration::from_secs(1));
        let image = ImageRef::parse("localhost.attacker.example/app:1").unwrap();
        assert_eq!(image.registry, "localhost.attacker.example");
        assert!(
            client.base(&image).starts_with("https://"),
            "{}",
            client.base(&image)
        );
        let image = ImageRef::parse("localhost:5000/app:1").unwrap();
        assert!(client.base(&image).starts_with("http://"));
    }

    #[test]
    fn credentials_go_over_tls_or_to_this_machine_only() {
        assert!(may_carry_credentials("https://registry.example/v2/"));
        assert!(may_carry_credentials("http://127.0.0.1:5000/v2/"));
        assert!(!may_carry_credentials("http://registry.example/v2/"));
        assert!(!may_carry_credentials(
            "http://localhost.attacker.example/v2/"
        ));
        let registry = "https://registry.example/v2/app/manifests/1";
        assert!(realm_may_carry_credentials(
            "https://auth.example/token",
            registry
        ));
        assert!(!realm_may_carry_credentials(
            "http://auth.example/token",
            registry
        ));
        let local = "http://127.0.0.1:5000/v2/app/manifests/1";
        assert!(realm_may_carry_credentials(
            "http://127.0.0.1:5001/token",
            local
        ));
        assert!(!realm_may_carry_credentials(
            "http://auth.example/token",
            local
        ));
    }

    #[test]
    fn challenge_parameters() {
        let parts = split_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull,push""#,
        );
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], r#"scope="repository:o/r:pull,push""#);
    }
}
