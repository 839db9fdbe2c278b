//! The registry client against registries that ask too much: credentials before any
//! challenge, credentials in clear to a host that is not this machine (or only looks like
//! `localhost`), a token realm elsewhere, an index of hundreds of platforms. A registry
//! following the distribution API stands in (`support::fake_registry`).

mod support;

use std::process::Command;
use std::time::Duration;

use cachehit::sources::registry::{
    Credentials, ImageRef, MAX_PLATFORMS, RegistryClient, RegistryError,
};
use support::fake_registry::{Auth, FakeRegistry};

fn credentials() -> Option<Credentials> {
    Some(Credentials {
        username: "ci".into(),
        password: "s3cret".into(),
    })
}

fn image(reference: &str) -> ImageRef {
    ImageRef::parse(reference).unwrap()
}

/// An IPv4 address of this machine that is not loopback, when it has one: a host reached in
/// clear that is not this machine as far as cachehit can tell from its address.
fn outside_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn basic_credentials_go_only_after_the_registry_asks_for_them() {
    let registry = FakeRegistry::start(
        2,
        Auth::Basic {
            user: "ci".into(),
            password: "s3cret".into(),
        },
    );
    let client = RegistryClient::new(credentials(), false, Duration::from_secs(5));
    let images = client
        .images(&image(&format!("{}/app:v1", registry.addr)))
        .unwrap();
    assert_eq!(images.len(), 2);
    let seen = registry.requests();
    assert_eq!(
        seen[0].authorization, None,
        "credentials before a challenge"
    );
    assert!(
        seen[1]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    );

    // A registry that asks for nothing never sees them.
    let open = FakeRegistry::start(1, Auth::None);
    client
        .images(&image(&format!("{}/app:v1", open.addr)))
        .unwrap();
    assert!(open.requests().iter().all(|r| r.authorization.is_none()));
}

#[test]
fn credentials_never_go_in_clear_to_another_host() {
    let Some(address) = outside_address() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let registry = FakeRegistry::start_on(
        "0.0.0.0:0",
        1,
        Auth::Basic {
            user: "ci".into(),
            password: "s3cret".into(),
        },
    );
    // Plain HTTP asked for (`--insecure-registry`), to an address that is not loopback.
    let client = RegistryClient::new(credentials(), true, Duration::from_secs(5));
    let err = client
        .images(&image(&format!("{address}:{}/app:v1", registry.port())))
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InsecureCredentials { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("only over TLS or to a loopback address"),
        "{err}"
    );
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| r.authorization.is_none())
    );
}

#[test]
fn a_name_that_starts_with_localhost_is_not_loopback() {
    // The report goes on; the registry is asked over TLS (and cannot be found here).
    let out = support::cachehit()
        .args([
            "report",
            "--format",
            "json",
            "--image",
            "localhost.attacker.example/app:1",
        ])
        .args(["--registry-user", "ci"])
        .env("CACHEHIT_REGISTRY_PASSWORD", "s3cret")
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/buildkit-v0.24/p2-deps-first/v2.rawjson"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("https://localhost.attacker.example/v2/app/manifests/1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("http://localhost.attacker.example"),
        "{stderr}"
    );
}

#[test]
fn a_token_realm_elsewhere_in_clear_gets_no_credentials() {
    let Some(address) = outside_address() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    // The token service, on a host that is not this machine by its address, over HTTP.
    let token_service = FakeRegistry::start_on(
        "0.0.0.0:0",
        0,
        Auth::Bearer {
            realm: None,
            token: "anonymous-token".into(),
            credentials: None,
        },
    );
    let registry = FakeRegistry::start(
        2,
        Auth::Bearer {
            realm: Some(format!("http://{address}:{}/token", token_service.port())),
            token: "anonymous-token".into(),
            credentials: None,
        },
    );
    let client = RegistryClient::new(credentials(), false, Duration::from_secs(5));
    let images = client
        .images(&image(&format!("{}/app:v1", registry.addr)))
        .unwrap();
    assert_eq!(images.len(), 2);
    let asked = token_service.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        asked[0].authorization, None,
        "credentials sent to a foreign realm"
    );

    // The realm on the registry's own (loopback) host gets them, as the flow requires.
    let own = FakeRegistry::start(
        1,
        Auth::Bearer {
            realm: None,
            token: "tkn".into(),
            credentials: Some(("ci".into(), "s3cret".into())),
        },
    );
    let images = client
        .images(&image(&format!("{}/app:v1", own.addr)))
        .unwrap();
    assert_eq!(images.len(), 1);
}

#[test]
fn an_index_of_hundreds_of_platforms_is_read_a_few_at_a_time_up_to_a_cap() {
    let registry = FakeRegistry::start(300, Auth::None);
    registry.set_latency(Duration::from_millis(10));
    let client = RegistryClient::new(None, false, Duration::from_secs(5));
    let found = client
        .images_of(&image(&format!("{}/app:v1", registry.addr)))
        .unwrap();
    assert_eq!(found.images.len(), MAX_PLATFORMS);
    assert_eq!(found.platforms_left_out, 300 - MAX_PLATFORMS);
    assert_eq!(found.images[1].platform.as_deref(), Some("linux/arm64"));
    assert_eq!(registry.requests().len(), 1 + MAX_PLATFORMS);
    assert!(
        registry.most_in_flight() <= 4,
        "{}",
        registry.most_in_flight()
    );

    // Through the command line: a note in the report.
    let out = support::cachehit()
        .args(["report", "--format", "json", "--image"])
        .arg(format!("{}/app:v1", registry.addr))
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/buildkit-v0.24/p2-deps-first/v2.rawjson"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the image index lists 300 platforms; the first 64 were read"),
        "{stderr}"
    );
}
