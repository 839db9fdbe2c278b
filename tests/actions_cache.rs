//! The repository's GitHub Actions cache read through the real REST client from a local
//! server following GitHub's documented contract (usage, paginated entries, errors), and the
//! findings it gives a build that imports and exports `type=gha`.

mod support;

use std::time::Duration;

use cachehit::analysis::gha_cache::{GhaCache, GhaRun};
use cachehit::analysis::{self, Facts};
use cachehit::github::actions_cache::{self, ActionsCacheApi};
use cachehit::github::api::{GitHub, RetryPolicy};
use cachehit::model::{Build, CacheExport, CacheImport, OutcomeStatus, Step, StepKind, StepStatus};
use cachehit::pipeline::fetch;
use support::github_server::GitHubServer;

const TOKEN: &str = "ghs_actionsCacheToken";
const MAIN: &str = "refs/heads/main";

fn client(server: &GitHubServer) -> GitHub {
    GitHub::new(
        &server.api_url,
        Some(TOKEN),
        "o",
        "r",
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(5),
            max_wait: Duration::from_millis(200),
        },
    )
    .unwrap()
}

/// The process's runtime, as the front-ends make it; the client is made inside it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tag_run(tag: &str) -> GhaRun {
    GhaRun {
        git_ref: Some(format!("refs/tags/{tag}")),
        default_branch: Some(MAIN.into()),
        base_ref: None,
    }
}

/// What a repository whose releases export `type=gha` per tag holds: each tag's blobs and
/// index, a default branch that never exported, and another tool's entries.
fn per_tag_cache(server: &GitHubServer) {
    let ago = |hours: i64| {
        (chrono::Utc::now() - chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (tag, hours) in [("v1.0.0", 20 * 24), ("v1.1.0", 10 * 24), ("v1.2.0", 24)] {
        let accessed = ago(hours);
        for layer in 0..60 {
            server.add_cache(
                &format!("buildkit-blob-1-sha256:{tag}{layer:058}"),
                &format!("refs/tags/{tag}"),
                25_000_000,
                &accessed,
            );
        }
        server.add_cache(
            "index-buildkit-1-4f2a9c1e",
            &format!("refs/tags/{tag}"),
            9_000,
            &accessed,
        );
    }
    server.add_cache("Linux-node-958aff96db2d75d6", MAIN, 80_000_000, &ago(2));
}

#[test]
fn entries_are_read_across_pages_and_grouped_per_ref_and_scope() {
    let rt = runtime();
    let _inside = rt.enter();
    let server = GitHubServer::start(TOKEN);
    per_tag_cache(&server);
    let github = client(&server);
    let cache = rt
        .block_on(actions_cache::read(
            &github,
            tag_run("v1.3.0"),
            vec!["buildkit".into()],
        ))
        .unwrap();

    // 184 entries: two pages of 100, most recently used first.
    assert_eq!(cache.entries_listed, 184);
    assert!(!cache.listing_truncated);
    let pages: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/actions/caches"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[0].contains("per_page=100") && pages[0].contains("sort=last_accessed_at"));
    assert!(pages[1].contains("page=2"), "{pages:?}");
    // The usage endpoint gives the total, other tools' entries included.
    assert_eq!(
        cache.usage_bytes,
        Some(3 * (60 * 25_000_000 + 9_000) + 80_000_000)
    );
    assert_eq!(cache.usage_entries, Some(184));

    // Per ref: each tag its own blobs and index; none reachable from a new tag's run.
    let refs: Vec<(&str, u64, bool)> = cache
        .refs
        .iter()
        .map(|r| (r.git_ref.as_str(), r.blobs, r.reachable))
        .collect();
    assert_eq!(
        refs,
        [
            ("refs/tags/v1.0.0", 60, false),
            ("refs/tags/v1.1.0", 60, false),
            ("refs/tags/v1.2.0", 60, false),
        ]
    );
    assert!(
        cache
            .refs
            .iter()
            .all(|r| r.indexes.len() == 1 && r.indexes[0].scope == "buildkit")
    );
    // The two older tags' entries were not used for 7 days: GitHub evicts them.
    assert_eq!(cache.unused_entries, 122);
    assert_eq!(cache.unused_bytes, 2 * (60 * 25_000_000 + 9_000));

    // What the report says about it.
    let findings = findings_for(tag_build(), cache);
    let reach = findings
        .iter()
        .find(|d| d.kind == "gha-cache-ref")
        .expect("tag run finding");
    assert_eq!(reach.severity.as_str(), "warning");
    assert!(reach.message.starts_with(
        "This is a tag run (`refs/tags/v1.3.0`): GitHub lets it restore caches of its own tag and of the default branch only, whatever the `scope`"
    ), "{}", reach.message);
    assert!(
        reach.message.contains(
            "`refs/heads/main` holds no index for scope `buildkit`, so this build started cold"
        ),
        "{}",
        reach.message
    );
    assert!(reach.fix.contains("pushes to the default branch"));
    let usage = findings
        .iter()
        .find(|d| d.kind == "gha-cache-usage")
        .unwrap();
    assert!(
        usage.message.contains("of its 10 GB limit"),
        "{}",
        usage.message
    );
    assert!(
        usage
            .message
            .contains("`refs/tags/v1.0.0`: 60 blobs, 1.5 GB (scope `buildkit`)"),
        "{}",
        usage.message
    );
    let shared = findings
        .iter()
        .find(|d| d.kind == "gha-cache-shared-scope")
        .unwrap();
    assert!(
        shared.message.contains("evict each other"),
        "{}",
        shared.message
    );
}

#[test]
fn a_default_branch_cache_is_what_a_tag_run_reaches() {
    let rt = runtime();
    let _inside = rt.enter();
    let server = GitHubServer::start(TOKEN);
    server.add_cache(
        "buildkit-blob-1-sha256:aa",
        MAIN,
        40_000_000,
        "2026-11-20T10:00:00Z",
    );
    server.add_cache("index-web-1-0a1b2c3d", MAIN, 4_000, "2026-11-20T10:00:00Z");
    let cache = rt
        .block_on(actions_cache::read(
            &client(&server),
            tag_run("v2.0.0"),
            vec!["web".into()],
        ))
        .unwrap();
    assert_eq!(cache.reachable_index("web").unwrap().git_ref, MAIN);
    let mut build = tag_build();
    build.cache_imports[0]
        .attrs
        .insert("scope".into(), "web".into());
    let findings = findings_for(build, cache);
    let reach = findings.iter().find(|d| d.kind == "gha-cache-ref").unwrap();
    assert_eq!(reach.severity.as_str(), "notice");
    assert!(
        reach
            .message
            .contains("`refs/heads/main` holds an index for scope `web`")
    );
    // Its own scope: no shared-scope finding.
    assert!(!findings.iter().any(|d| d.kind == "gha-cache-shared-scope"));
}

#[test]
fn the_listing_is_bounded_in_pages() {
    let rt = runtime();
    let _inside = rt.enter();
    let server = GitHubServer::start(TOKEN);
    per_tag_cache(&server);
    let listing = rt.block_on(client(&server).list_actions_caches(1)).unwrap();
    assert_eq!(listing.entries.len(), 100);
    assert!(listing.truncated);
    // Most recently used first: the other tool's entry, then the newest tag's.
    assert_eq!(listing.entries[0].git_ref, MAIN);
    assert!(
        listing.entries[1..62]
            .iter()
            .all(|e| e.git_ref == "refs/tags/v1.2.0")
    );
}

#[test]
fn without_actions_read_or_under_a_rate_limit_it_is_a_warning() {
    let rt = runtime();
    let _inside = rt.enter();
    let server = GitHubServer::start(TOKEN);
    per_tag_cache(&server);
    server.inject("GET", "/actions/caches", 403, &[], 1);
    let github = client(&server);
    let build = tag_build();
    let run = tag_run("v1.3.0");
    let error = rt
        .block_on(fetch::gha_cache(Some(&run), &build, Some(&github)))
        .expect("looked up for a type=gha build")
        .expect_err("403");
    let text = error.to_string();
    assert!(text.starts_with("GitHub Actions cache not read:"), "{text}");
    assert!(
        text.contains("Resource not accessible by integration"),
        "{text}"
    );
    assert!(text.contains("needs `actions: read`"), "{text}");

    // A rate limit asking for a longer wait than cachehit waits is not retried early.
    server.inject(
        "GET",
        "/actions/caches",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "4102444800"),
        ],
        1,
    );
    let error = rt
        .block_on(fetch::gha_cache(Some(&run), &build, Some(&github)))
        .unwrap()
        .expect_err("rate limited");
    assert!(error.to_string().contains("rate limit"), "{error}");
    assert!(!error.to_string().contains("actions: read"), "{error}");

    // A server error is retried, then the cache is read.
    server.inject("GET", "/actions/caches", 502, &[], 1);
    let cache = rt
        .block_on(fetch::gha_cache(Some(&run), &build, Some(&github)))
        .unwrap()
        .unwrap();
    assert_eq!(cache.entries_listed, 184);

    // A build without type=gha caches asks nothing.
    let before = server.requests().len();
    let registry_only = Build::default();
    assert!(
        rt.block_on(fetch::gha_cache(Some(&run), &registry_only, Some(&github)))
            .is_none()
    );
    assert_eq!(server.requests().len(), before);
}

/// A build importing and exporting `type=gha` (default scope) whose import served nothing.
fn tag_build() -> Build {
    Build {
        steps: vec![Step {
            name: "[2/2] RUN make".into(),
            instruction: "RUN make".into(),
            kind: StepKind::Run,
            status: StepStatus::Rebuilt,
            index: Some(2),
            total: Some(2),
            ..Step::default()
        }],
        cache_imports: vec![CacheImport {
            reference: "gha:15821783609297185231".into(),
            cache_type: Some("gha".into()),
            status: OutcomeStatus::Ok,
            ..CacheImport::default()
        }],
        cache_exports: vec![CacheExport {
            name: "exporting to GitHub Actions Cache".into(),
            cache_type: Some("gha".into()),
            status: OutcomeStatus::Ok,
            ..CacheExport::default()
        }],
        ..Build::default()
    }
}

fn findings_for(build: Build, cache: GhaCache) -> Vec<cachehit::report::Diagnosis> {
    let report = analysis::analyze_facts(Facts {
        gha_cache: Some(cache),
        ..Facts::from(build)
    });
    assert!(report.gha_cache.is_some());
    report.diagnoses
}
