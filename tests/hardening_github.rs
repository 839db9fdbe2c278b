//! The GitHub client against servers that misbehave: an answer that drips, one that never
//! comes, a server that is gone, answers far larger than any report, answers that are not
//! JSON, pagination that loops; for every endpoint (the baseline search, the comment, a run's
//! build-record artifacts and pull requests, the Actions cache). Each ends in a typed error naming what happened, within the
//! client's deadlines, and a server that did not answer is not called again.

mod support;

use std::time::Duration;

use cachehit::github::actions_cache::ActionsCacheApi;
use cachehit::github::api::{
    ApiError, ApiErrorKind, Deadlines, GitHub, MAX_DOWNLOAD_BYTES, RetryPolicy,
};
use cachehit::github::baseline::BaselineApi;
use cachehit::github::records::RecordApi;
use support::hostile_server::{Behavior, HostileServer};

/// One runtime for every test: the client's middleware starts a task when it is made.
static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

fn client(url: &str, deadlines: Deadlines) -> GitHub {
    let _runtime = RUNTIME.enter();
    let retry = RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(5),
        max_wait: Duration::from_millis(40),
    };
    GitHub::new(url, Some("ghs_token"), "o", "r", retry)
        .unwrap()
        .with_deadlines(deadlines)
}

fn short() -> Deadlines {
    Deadlines {
        request: Duration::from_millis(800),
        phase: Duration::from_secs(30),
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

#[test]
fn a_dripping_answer_is_a_timeout_and_the_server_is_not_called_again() {
    // Headers at once, then one byte every 300 ms: every read is quick, the answer never ends.
    let server = HostileServer::start(|_, _| Behavior::Drip {
        every: Duration::from_millis(300),
    });
    let github = client(&server.url, short());
    let err = block_on(github.list_releases()).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Timeout { .. }), "{err:?}");
    assert!(err.to_string().starts_with("timeout: "), "{err}");
    assert!(err.is_transport() && err.is_timeout());
    // Every later call is refused at once, without a request.
    let err = block_on(github.list_artifacts("cachehit-report")).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Skipped { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("failed to answer an earlier call (timeout after"),
        "{err}"
    );
    let err = block_on(github.create_comment(7, "x")).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Skipped { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
}

#[test]
fn a_server_that_never_answers_is_asked_once() {
    let server = HostileServer::start(|_, _| Behavior::Silent);
    let github = client(&server.url, short());
    let err = block_on(github.get_workflow_run(4000)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("GitHub did not answer reading a workflow run within 0.80 s"),
        "{err}"
    );
    for run in 4001..4010 {
        assert!(
            block_on(github.get_workflow_run(run))
                .unwrap_err()
                .is_transport()
        );
    }
    assert_eq!(server.requests().len(), 1, "no retry, no further call");
}

#[test]
fn a_refused_connection_is_tried_twice_then_no_more() {
    let port = support::free_port();
    let github = client(&format!("http://127.0.0.1:{port}"), short());
    let err = block_on(github.list_releases()).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::Transport { .. }),
        "{err:?}"
    );
    // The cause is named, not only the client's "client error (Connect)".
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    let err = block_on(github.list_artifacts("cachehit-report")).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Skipped { .. }), "{err:?}");
}

#[test]
fn the_budget_stops_calls_to_a_slow_but_answering_server() {
    // Each answer takes 300 ms (within the request's deadline); the budget is 500 ms.
    let server = HostileServer::start(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        Behavior::json(200, "[]")
    });
    let github = client(
        &server.url,
        Deadlines {
            request: Duration::from_secs(5),
            phase: Duration::from_millis(500),
        },
    );
    assert!(block_on(github.list_releases()).is_ok());
    let err = block_on(github.list_comments(7)).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::OutOfTime { .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("timeout: "), "{err}");
    let err = block_on(github.list_comments(7)).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::OutOfTime { .. }),
        "{err:?}"
    );
    assert!(server.requests().len() <= 2, "{:?}", server.requests());
}

/// A release whose asset download is `behavior` (after the API's redirect to storage).
fn release_with_asset(behavior: impl Fn() -> Behavior + Send + Sync + 'static) -> HostileServer {
    HostileServer::start(move |request, url| match request.path.as_str() {
        "/repos/o/r/releases/assets/9" => Behavior::Answer {
            status: 302,
            headers: vec![("Location".into(), format!("{url}/storage/blob?sig=x"))],
            body: Vec::new(),
        },
        path if path.starts_with("/storage/") => behavior(),
        _ => Behavior::json(404, r#"{"message":"Not Found"}"#),
    })
}

#[test]
fn a_512_mib_download_is_refused_at_the_limit_announced_or_not() {
    const HUGE: u64 = 512 * 1024 * 1024;
    // Announced: refused before reading the body.
    let server = release_with_asset(|| Behavior::Stream {
        len: HUGE,
        announced: true,
    });
    let github = client(&server.url, short());
    let err = block_on(github.download_release_asset(9)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("larger than cachehit reads (32 MiB)"),
        "{err}"
    );
    // Not announced (chunked): read up to the limit, then dropped. What the server could
    // send is bounded by the limit and the socket buffers, not by the answer's size.
    let server = release_with_asset(|| Behavior::Stream {
        len: HUGE,
        announced: false,
    });
    let github = client(
        &server.url,
        Deadlines {
            request: Duration::from_secs(60),
            phase: Duration::from_secs(120),
        },
    );
    let err = block_on(github.download_release_asset(9)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::TooLarge { .. }), "{err:?}");
    drop(github);
    let sent = server.bytes_sent();
    assert!(
        sent < MAX_DOWNLOAD_BYTES as u64 + 32 * 1024 * 1024,
        "{sent} bytes sent of {HUGE}"
    );
}

#[test]
fn an_api_answer_that_is_not_json_is_malformed_not_empty() {
    let server = HostileServer::start(|request, _| match request.path.as_str() {
        p if p.starts_with("/repos/o/r/actions/artifacts") => {
            Behavior::json(200, r#"{"total_count": 3, "artifacts": [{"id": 1,"#)
        }
        p if p.starts_with("/repos/o/r/releases") => Behavior::json(200, r#"{"not": "a list"}"#),
        p if p.starts_with("/repos/o/r/actions/runs/") => Behavior::json(200, "<html>"),
        _ => Behavior::json(200, r#"{"total_count": 0}"#),
    });
    let github = client(&server.url, short());
    let err = block_on(github.list_artifacts("cachehit-report")).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::Malformed { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("GitHub's answer to listing artifacts is malformed: not JSON"),
        "{err}"
    );
    let err = block_on(github.list_releases()).unwrap_err();
    assert!(err.to_string().contains("page 1 is not a list"), "{err}");
    let err = block_on(github.get_workflow_run(1)).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::Malformed { .. }),
        "{err:?}"
    );
}

#[test]
fn a_pagination_loop_stops_with_an_error_naming_it() {
    // Page 1 links to page 2, which links back to page 1; comments link to themselves.
    let server = HostileServer::start(|request, url| {
        let path = request.path.as_str();
        if path.starts_with("/repos/o/r/releases") {
            let next = if path.contains("page=2") {
                format!("{url}/repos/o/r/releases?per_page=100")
            } else {
                format!("{url}/repos/o/r/releases?per_page=100&page=2")
            };
            Behavior::json(200, "[]").with_header("Link", &format!("<{next}>; rel=\"next\""))
        } else {
            Behavior::json(200, "[]").with_header(
                "Link",
                &format!("<{url}{path}>; rel=\"next\", <{url}{path}>; rel=\"last\""),
            )
        }
    });
    let github = client(&server.url, short());
    let err = block_on(github.list_releases()).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::Malformed { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the `Link: rel=\"next\"` of page 2 points back to a page already read"),
        "{err}"
    );
    let err = block_on(github.list_comments(7)).unwrap_err();
    assert!(err.to_string().contains("of page 1 points back"), "{err}");
    assert_eq!(server.requests().len(), 3, "{:?}", server.requests());
}

#[test]
fn pagination_stops_after_its_page_limit() {
    let server = HostileServer::start(|request, url| {
        let page: usize = request
            .path
            .rsplit_once("page=")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(1);
        Behavior::json(200, "[]").with_header(
            "Link",
            &format!(
                "<{url}/repos/o/r/releases?per_page=100&page={}>; rel=\"next\"",
                page + 1
            ),
        )
    });
    let github = client(&server.url, short());
    let err = block_on(github.list_releases()).unwrap_err();
    assert!(
        matches!(err.kind, ApiErrorKind::TooManyPages { pages: 100 }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 100);
}

#[test]
fn a_token_that_is_not_one_line_is_refused_by_the_client_without_a_panic() {
    let _runtime = RUNTIME.enter();
    let err = GitHub::new(
        "http://127.0.0.1:1",
        Some("ghs_abc\nsecond line"),
        "o",
        "r",
        RetryPolicy::default(),
    )
    .err()
    .expect("refused");
    assert!(!err.to_string().contains("second line"), "{err}");
}

#[test]
fn a_run_s_artifacts_its_pull_requests_and_the_actions_cache_are_read_like_every_call() {
    let server = HostileServer::start(|request, url| {
        let path = request.path.as_str();
        if path.starts_with("/repos/o/r/actions/runs/5/artifacts")
            || path.starts_with("/repos/o/r/actions/caches")
        {
            // A page that links to itself.
            Behavior::json(
                200,
                r#"{"total_count":1,"artifacts":[],"actions_caches":[]}"#,
            )
            .with_header("Link", &format!("<{url}{path}>; rel=\"next\""))
        } else if path.starts_with("/repos/o/r/commits/") {
            Behavior::json(200, "<html>")
        } else if path.starts_with("/repos/o/r/pulls") {
            Behavior::json(200, r#"{"number": 1}"#)
        } else if path == "/repos/o/r/actions/cache/usage" {
            Behavior::json(200, "")
        } else {
            Behavior::json(404, r#"{"message":"Not Found"}"#)
        }
    });
    let github = client(&server.url, short());
    let malformed = |err: ApiError, says: &str| {
        assert!(
            matches!(err.kind, ApiErrorKind::Malformed { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(says), "{err}");
    };
    malformed(
        block_on(github.list_run_artifacts(5)).unwrap_err(),
        "listing the run's artifacts is malformed: the `Link: rel=\"next\"` of page 1 points back",
    );
    malformed(
        block_on(github.pulls_of_commit("abc")).unwrap_err(),
        "not JSON",
    );
    malformed(
        block_on(github.pulls_from_head("fork:main")).unwrap_err(),
        "page 1 is not a list",
    );
    malformed(
        block_on(github.actions_cache_usage()).unwrap_err(),
        "reading the Actions cache usage is malformed: not JSON",
    );
    malformed(
        block_on(github.list_actions_caches(20)).unwrap_err(),
        "listing the Actions caches is malformed: the `Link: rel=\"next\"` of page 1 points back",
    );
}

#[test]
fn a_build_record_download_is_bounded_and_a_silent_storage_is_not_asked_again() {
    const HUGE: u64 = 512 * 1024 * 1024;
    let server = HostileServer::start(|request, url| match request.path.as_str() {
        p if p.starts_with("/repos/o/r/actions/artifacts/") => Behavior::Answer {
            status: 302,
            headers: vec![(
                "Location".into(),
                format!(
                    "{url}/storage{}",
                    &p["/repos/o/r/actions/artifacts".len()..]
                ),
            )],
            body: Vec::new(),
        },
        "/storage/1/zip" => Behavior::Stream {
            len: HUGE,
            announced: true,
        },
        _ => Behavior::Silent,
    });
    let github = client(&server.url, short());
    let err = block_on(github.download_record_zip(1)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "downloading a build-record artifact is larger than cachehit reads (256 MiB)"
        ),
        "{err}"
    );
    let err = block_on(github.download_record_zip(2)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Timeout { .. }), "{err:?}");
    // The storage did not answer: the next download is not sent there.
    let err = block_on(github.download_record_zip(3)).unwrap_err();
    assert!(matches!(err.kind, ApiErrorKind::Skipped { .. }), "{err:?}");
    let storage_calls = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/storage/"))
        .count();
    assert_eq!(storage_calls, 2, "{:?}", server.requests());
}
