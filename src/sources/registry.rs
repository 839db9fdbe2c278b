//! The OCI distribution API: an image reference to its platform manifests and their
//! compressed layers. Anonymous access, basic auth, and the bearer-token flow that ghcr.io
//! and Docker Hub use (a `401` with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`).

use std::time::Duration;

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
    #[error("{url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
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

pub struct RegistryClient {
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    insecure: bool,
    timeout: Duration,
    token: std::cell::RefCell<Option<String>>,
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
            token: std::cell::RefCell::new(None),
        }
    }

    fn base(&self, image: &ImageRef) -> String {
        let local = image.registry.starts_with("localhost") || image.registry.starts_with("127.");
        let scheme = if self.insecure || local {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", image.registry, image.repository)
    }

    /// Every platform image of the reference (attestation manifests left out).
    pub fn images(&self, image: &ImageRef) -> Result<Vec<PlatformImage>, RegistryError> {
        let url = format!("{}/manifests/{}", self.base(image), image.reference);
        let (digest, manifest) = self.get_json(&url, MANIFEST_TYPES)?;
        if manifest.get("manifests").is_none() {
            return Ok(vec![platform_image(None, digest, &manifest)]);
        }
        let mut images = Vec::new();
        for entry in manifest["manifests"].as_array().into_iter().flatten() {
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
            let url = format!("{}/manifests/{child}", self.base(image));
            let (_, m) = self.get_json(&url, MANIFEST_TYPES)?;
            images.push(platform_image(platform, Some(child.to_string()), &m));
        }
        Ok(images)
    }

    fn get_json(&self, url: &str, accept: &str) -> Result<(Option<String>, Value), RegistryError> {
        let mut challenge_answered = false;
        loop {
            let mut request = self.agent.get(url).header("Accept", accept);
            if let Some(token) = self.token.borrow().as_ref() {
                request = request.header("Authorization", &format!("Bearer {token}"));
            } else if let Some(c) = &self.credentials {
                request = request.header("Authorization", &basic(c));
            }
            let mut response = request.call().map_err(|e| self.transport(url, e))?;
            let status = response.status().as_u16();
            if status == 401 && !challenge_answered {
                challenge_answered = true;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if let Some(params) = challenge.strip_prefix("Bearer ") {
                    *self.token.borrow_mut() = Some(self.fetch_token(url, params)?);
                    continue;
                }
                if challenge.starts_with("Basic")
                    && self.credentials.is_some()
                    && self.token.borrow().is_none()
                {
                    // Credentials were sent already and refused.
                    return Err(RegistryError::Unauthorized {
                        url: url.into(),
                        detail: "the credentials were refused".into(),
                    });
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
                .limit(16 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| self.transport(url, e))?;
            let json = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                url: url.into(),
                detail: format!("the manifest is not JSON: {e}"),
            })?;
            return Ok((digest, json));
        }
    }

    /// `realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"`.
    fn fetch_token(&self, url: &str, params: &str) -> Result<String, RegistryError> {
        let mut realm = None;
        let mut query = Vec::new();
        for part in split_params(params) {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"');
            match key.trim() {
                "realm" => realm = Some(value.to_string()),
                k @ ("service" | "scope") => {
                    query.push(format!("{k}={}", value.replace(' ', "%20")))
                }
                _ => {}
            }
        }
        let realm = realm.ok_or_else(|| RegistryError::Protocol {
            url: url.into(),
            detail: "bearer challenge without realm".into(),
        })?;
        let token_url = format!(
            "{realm}{}{}",
            if realm.contains('?') { "&" } else { "?" },
            query.join("&")
        );
        let mut request = self.agent.get(&token_url);
        if let Some(c) = &self.credentials {
            request = request.header("Authorization", &basic(c));
        }
        let mut response = request.call().map_err(|e| self.transport(&token_url, e))?;
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
        let body: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| RegistryError::Protocol {
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

    fn transport(&self, url: &str, error: ureq::Error) -> RegistryError {
        match error {
            ureq::Error::Timeout(_) => RegistryError::Timeout {
                url: url.into(),
                seconds: self.timeout.as_secs().max(1),
            },
            other => RegistryError::Protocol {
                url: url.into(),
                detail: other.to_string(),
            },
        }
    }
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
    fn challenge_parameters() {
        let parts = split_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull,push""#,
        );
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], r#"scope="repository:o/r:pull,push""#);
    }
}
