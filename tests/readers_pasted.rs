//! Logs as people have them: a CI job's log with a timestamp or colour codes on every line and
//! the job's own output around the build, several builds in one log (one after another, or in
//! parallel with their lines interleaved), and the TTY display, captured from a terminal or
//! pasted from it. Built on real logs (`tests/fixtures`); the CI decorations are added here the
//! way each CI writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cachehit::model::{Build, BuildStatus, StatusSource, StepKind, StepStatus};
use cachehit::readers::{InputFormat, ReadError, ReadOptions, detect, read_inputs};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read(path: &Path) -> Build {
    read_inputs(&[path.to_path_buf()], &ReadOptions::default()).unwrap()
}

/// Non-`FROM` steps by name, as the report gives them.
fn statuses(build: &Build) -> BTreeMap<String, StepStatus> {
    build
        .steps
        .iter()
        .filter(|s| s.kind != StepKind::From)
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

/// What a plain log itself states per step: the last of `CACHED`/`DONE`/`ERROR`/`CANCELED`
/// under the step's `#N`, read without cachehit (only for logs of one build).
fn stated(log: &str) -> BTreeMap<String, StepStatus> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        if !number.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') && !names.contains_key(number) {
            names.insert(number.to_string(), rest.to_string());
        }
        let status = match rest {
            "CACHED" => StepStatus::Cached,
            "CANCELED" => StepStatus::Canceled,
            r if r.starts_with("DONE") => StepStatus::Rebuilt,
            r if r.starts_with("ERROR") => StepStatus::Failed,
            _ => continue,
        };
        if let Some(name) = names.get(number)
            && !name.contains("] FROM ")
            && !name.starts_with("[internal]")
            && !name.starts_with("[auth]")
        {
            let entry = out.entry(name.clone()).or_insert(status);
            if *entry != StepStatus::Cached {
                *entry = status;
            }
        }
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn live_plain() -> String {
    std::fs::read_to_string(fixture(
        "buildx-v0.36/p1-copy-before-deps/p1-v2.live-plain.log",
    ))
    .unwrap()
}

#[test]
fn ci_decorations_do_not_change_what_a_log_says() {
    let tmp = tempfile::tempdir().unwrap();
    let log = live_plain();
    let plain = read(&write(tmp.path(), "plain.log", &log));
    // `[2/5] WORKDIR /app` cached (a remote-cache hit), the rest rebuilt: as the log states.
    assert_eq!(statuses(&plain), stated(&log));
    assert_eq!(statuses(&plain).len(), 4);

    let github = format!(
        "2026-11-29T13:08:40.1000000Z ##[group]Run docker buildx build .\n\
         2026-11-29T13:08:40.1000001Z docker buildx build --progress=plain .\n\
         2026-11-29T13:08:40.1000002Z ##[endgroup]\n{}",
        log.lines()
            .map(|l| format!("2026-11-29T13:08:41.2345678Z {l}\n"))
            .collect::<String>()
    );
    let jenkins = format!(
        "Started by user admin\n[Pipeline] sh\n{}",
        log.lines()
            .map(|l| format!("13:08:41  {l}\n"))
            .collect::<String>()
    );
    let gitlab = format!(
        "\u{1b}[0KRunning with gitlab-runner 16.3.0\n\
         \u{1b}[0Ksection_start:1699089051:step_script\r\u{1b}[0K\u{1b}[0K\u{1b}[36;1mExecuting \"step_script\" stage\u{1b}[0;m\n\
         \u{1b}[32;1m$ docker build --progress=plain .\u{1b}[0;m\n{}\
         \u{1b}[0Ksection_end:1699089095:step_script\r\u{1b}[0K\n",
        // GitLab's job log drops the empty lines between vertex blocks.
        log.lines()
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let gitlab_timestamped: String = gitlab
        .lines()
        .map(|l| format!("2026-11-29T13:08:41.123456Z 00O {l}\n"))
        .collect();
    for (name, text, skipped) in [
        ("github.log", github, 3),
        ("jenkins.log", jenkins, 2),
        ("gitlab.log", gitlab, 3),
        ("gitlab-timestamps.log", gitlab_timestamped, 3),
    ] {
        let path = write(tmp.path(), name, &text);
        assert_eq!(detect::detect(&path).unwrap(), InputFormat::Plain, "{name}");
        let build = read(&path);
        assert_eq!(statuses(&build), statuses(&plain), "{name}");
        assert_eq!(build.build.status, BuildStatus::Completed, "{name}");
        let note = format!("{skipped} line(s) before the first progress line");
        assert!(
            build.problems.iter().any(|p| p.message.starts_with(&note)),
            "{name}: {:?}",
            build.problems
        );
    }
}

#[test]
fn builds_one_after_another_in_one_job_log_are_reported_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let first =
        std::fs::read_to_string(fixture("engine-20.10/tty-failure/warm.plain.log")).unwrap();
    let second = live_plain();
    let job = format!("+ docker build app\n{first}\n+ docker buildx build web\n{second}");
    let build = read(&write(tmp.path(), "job.log", &job));
    let mut want = stated(&first);
    want.extend(stated(&second));
    assert_eq!(statuses(&build), want);
    let note = build
        .problems
        .iter()
        .find(|p| p.message.contains("holds 2 builds"))
        .expect("the builds are named");
    assert!(!note.message.contains("parallel"), "{}", note.message);
    // The first build failed: so does the log as a whole.
    assert_eq!(build.build.status, BuildStatus::Failed);
}

#[test]
fn parallel_builds_with_interleaved_lines_are_not_merged() {
    // Two builds run at once (a CI's parallel branches): their vertex blocks alternate and
    // both number their vertices from #1.
    let blocks = |log: &str| -> Vec<String> {
        log.split("\n\n")
            .map(|b| format!("{}\n", b.trim_end()))
            .collect()
    };
    let a = std::fs::read_to_string(fixture("buildkit-v0.24/p2-deps-first/v2.plain.log")).unwrap();
    let b = live_plain();
    let (blocks_a, blocks_b) = (blocks(&a), blocks(&b));
    let mut mixed = String::new();
    for i in 0..blocks_a.len().max(blocks_b.len()) {
        for side in [&blocks_a, &blocks_b] {
            if let Some(block) = side.get(i) {
                mixed.push_str(block);
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let build = read(&write(tmp.path(), "parallel.log", &mixed));
    // Each build reads as it does alone.
    let mut want = statuses(&read(&write(tmp.path(), "a.log", &a)));
    want.extend(statuses(&read(&write(tmp.path(), "b.log", &b))));
    assert_eq!(statuses(&build), want);
    assert_eq!(build.steps.len(), 6 + 5);
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.message.contains("2 builds, run in parallel")),
        "{:?}",
        build.problems
    );
}

#[test]
fn tty_captures_of_the_engine_read_as_the_plain_log_states() {
    let dir = fixture("engine-20.10/tty-failure");
    let plain = std::fs::read_to_string(dir.join("warm.plain.log")).unwrap();
    let want = stated(&plain);
    let warm = read(&dir.join("warm.tty.log"));
    // The TTY view cuts names at the terminal's width: compare by step label.
    let by_label = |m: &BTreeMap<String, StepStatus>| -> BTreeMap<String, StepStatus> {
        m.iter()
            .map(|(name, status)| (name[..=name.find(']').unwrap()].to_string(), *status))
            .collect()
    };
    assert_eq!(by_label(&statuses(&warm)), by_label(&want));
    assert!(
        warm.steps
            .iter()
            .all(|s| s.status_source == Some(StatusSource::Tty))
    );
    assert_eq!(warm.build.status, BuildStatus::Failed);
    let failed = warm
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(failed.log_tail, ["failing on purpose"]);
    assert!(failed.error.as_deref().unwrap().contains("exit code: 3"));
    // script(1)'s own first and last lines are not reported as skipped text.
    assert!(warm.problems.is_empty(), "{:?}", warm.problems);

    // The cold run: nothing cached, the last step failed.
    let cold = read(&dir.join("cold.tty.log"));
    let cold_statuses = statuses(&cold);
    assert_eq!(cold_statuses.len(), 6);
    assert_eq!(
        cold_statuses
            .values()
            .filter(|s| **s == StepStatus::Rebuilt)
            .count(),
        5
    );
}

#[test]
fn a_pasted_final_screen_reads_like_the_capture() {
    // What a person copies from the terminal: the last screen, without colours.
    let capture = std::fs::read(fixture("buildx-v0.36/p1-copy-before-deps/p1-v2.tty.log")).unwrap();
    let text = String::from_utf8_lossy(&capture);
    let last = text.rfind("[+] Building").unwrap();
    let mut screen = String::new();
    for line in text[last..].split("\r\n") {
        let mut clean = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: `[`, parameters, one final letter.
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else if c != '\r' {
                clean.push(c);
            }
        }
        if clean.starts_with("Script done") {
            break;
        }
        screen.push_str(clean.trim_end());
        screen.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let pasted = write(tmp.path(), "screen.txt", &screen);
    assert_eq!(detect::detect(&pasted).unwrap(), InputFormat::Tty);
    let from_paste = read(&pasted);
    let from_capture = read(&fixture("buildx-v0.36/p1-copy-before-deps/p1-v2.tty.log"));
    assert_eq!(statuses(&from_paste), statuses(&from_capture));
    // On the final screen alone, the remote-cache hit shows as layer pulls: inferred.
    let workdir = &from_paste.steps[1];
    assert_eq!(workdir.status, StepStatus::Cached);
    assert!(workdir.status_inferred);
}

#[test]
fn text_without_progress_is_described_with_the_format_that_would_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "notes.txt",
        "Deploy notes\nthe build took 3 minutes\n",
    );
    let err = read_inputs(&[path], &ReadOptions::default()).unwrap_err();
    let ReadError::Unrecognized { detail, .. } = &err else {
        panic!("{err}");
    };
    assert!(detail.contains("`Deploy notes`"), "{detail}");
    assert!(detail.contains("--input-format plain"), "{detail}");
    assert!(detail.contains("--input-format tty"), "{detail}");
}
