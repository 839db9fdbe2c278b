//! `cachehit report` printed in a workflow's `run:` step: nothing a build puts in its step
//! names, errors or output may become a workflow command for the runner, which reads the
//! output line by line (CR, LF, CRLF) and runs a line starting with `::` after white space,
//! or holding `##[`.

mod support;

use cachehit::render::inert::is_command;

/// A rawjson log whose step names and error carry workflow commands behind CRs and spaces.
fn hostile_log() -> String {
    let vertex = |i: u32, name: &str, extra: serde_json::Value| {
        let mut v = serde_json::json!({
            "digest": format!("sha256:{i:064x}"), "name": name,
            "started": "2026-11-22T20:36:33.1Z", "completed": "2026-11-22T20:36:34.1Z"
        });
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::json!({"vertexes": [v]}).to_string()
    };
    [
        vertex(1, "[1/3] RUN echo ok\r::add-mask::hidden", serde_json::json!({"cached": true})),
        vertex(
            2,
            "[2/3] RUN x \u{3000}\r\n  ::stop-commands::resume-token",
            serde_json::json!({}),
        ),
        vertex(
            3,
            "[3/3] RUN make ##[set-output name=a]b",
            serde_json::json!({"error": "process failed\r::error file=x::spoofed\n\t::warning::y ##[error]z"}),
        ),
    ]
    .join("\n")
}

#[test]
fn no_line_of_any_format_is_a_workflow_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("build.rawjson");
    std::fs::write(&log, hostile_log()).unwrap();
    for format in ["table", "markdown", "json"] {
        let out = support::cachehit()
            .args(["report", "--format", format])
            .arg(&log)
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("[3/3]"), "{format}: {stdout}");
        for line in stdout.split(['\r', '\n']).chain(stderr.split(['\r', '\n'])) {
            assert!(!is_command(line), "{format}: {line:?}\n{stdout}");
        }
    }
    // The JSON is still the same data.
    let out = support::cachehit()
        .args(["report", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("##[set-output name=a]b")),
        "{names:?}"
    );
}
