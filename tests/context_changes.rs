//! The build-context files changed between two releases, from a real Git repository made
//! here: read in-process (no `git` binary at run time; the tests use it only to make the
//! repositories), honouring `.dockerignore` and the context folder, a shallow clone that
//! lacks the previous commit, and real Engine builds of the commits whose report names the
//! files that invalidated each COPY.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cachehit::analysis::context::{ChangedFile, ContextEvidence, ContextUnknown};
use cachehit::sources::git::{self, ContextLocation, Limits};
use serde_json::Value;
use support::{BASE_IMAGE, build, cachehit, engine_available, ensure_base_image, run, write_tree};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = run(Command::new("git")
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Release Bot")
        .env("GIT_AUTHOR_EMAIL", "release@example.com")
        .env("GIT_COMMITTER_NAME", "Release Bot")
        .env("GIT_COMMITTER_EMAIL", "release@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(args));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn init(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
}

/// Commits everything in the working tree; returns the commit id.
fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn known(evidence: ContextEvidence) -> Vec<ChangedFile> {
    match evidence {
        ContextEvidence::Known(changes) => changes.files,
        ContextEvidence::Unknown { reason } => panic!("unknown: {reason}"),
    }
}

fn file(path: &str, ignored: bool) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        ignored_by_dockerignore: ignored,
    }
}

#[test]
fn changed_files_are_relative_to_the_context_folder_and_marked_by_its_dockerignore() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    init(root);
    write_tree(
        root,
        &[
            ("README.md", "# monorepo\n"),
            ("web/app.js", "1\n"),
            ("api/Dockerfile", "FROM scratch\nCOPY . .\n"),
            ("api/.dockerignore", "*.md\n!KEEP.md\n**/__pycache__\n"),
            ("api/main.py", "print(1)\n"),
            ("api/README.md", "api\n"),
            ("api/KEEP.md", "kept\n"),
            ("api/lib/util.py", "x = 1\n"),
            ("api/run.sh", "#!/bin/sh\n"),
        ],
    );
    let first = commit(root, "release 1");
    write_tree(
        root,
        &[
            ("README.md", "# monorepo, changed\n"),
            ("web/app.js", "2\n"),
            ("api/main.py", "print(2)\n"),
            ("api/README.md", "api, changed\n"),
            ("api/KEEP.md", "kept, changed\n"),
            ("api/lib/__pycache__/util.pyc", "bytecode\n"),
            ("api/lib/new.py", "y = 2\n"),
        ],
    );
    std::fs::remove_file(root.join("api/lib/util.py")).unwrap();
    let mut executable = std::fs::metadata(root.join("api/run.sh"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut executable, 0o755);
    std::fs::set_permissions(root.join("api/run.sh"), executable).unwrap();
    let second = commit(root, "release 2");

    let location = ContextLocation {
        context_dir: root.join("api"),
        dockerfile: Some(root.join("api/Dockerfile")),
    };
    let files = known(git::context_changes(
        &location,
        &first,
        &second,
        Limits::default(),
    ));
    // Outside the context folder (README.md, web/) nothing counts; inside, paths are relative
    // to it; a deleted file and a mode change are changes too.
    assert_eq!(
        files,
        vec![
            file("KEEP.md", false),
            file("README.md", true),
            file("lib/__pycache__/util.pyc", true),
            file("lib/new.py", false),
            file("lib/util.py", false),
            file("main.py", false),
            file("run.sh", false),
        ]
    );

    // A Dockerfile-specific ignore file next to the Dockerfile replaces the context's.
    std::fs::create_dir_all(root.join("build")).unwrap();
    write_tree(
        root,
        &[
            ("build/api.Dockerfile", "FROM scratch\nCOPY . .\n"),
            ("build/api.Dockerfile.dockerignore", "lib\n"),
        ],
    );
    let third = commit(root, "Dockerfile moved");
    let location = ContextLocation {
        context_dir: root.join("api"),
        dockerfile: Some(root.join("build/api.Dockerfile")),
    };
    let files = known(git::context_changes(
        &location,
        &first,
        &third,
        Limits::default(),
    ));
    let ignored: Vec<&str> = files
        .iter()
        .filter(|f| f.ignored_by_dockerignore)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        ignored,
        ["lib/__pycache__/util.pyc", "lib/new.py", "lib/util.py"]
    );

    // The same commit twice: nothing changed.
    assert!(
        known(git::context_changes(
            &location,
            &third,
            &third,
            Limits::default()
        ))
        .is_empty()
    );
    // The walk is bounded.
    assert_eq!(
        git::context_changes(
            &location,
            &first,
            &third,
            Limits {
                tree_entries: 5,
                files: 10
            }
        ),
        ContextEvidence::Unknown {
            reason: ContextUnknown::TooLarge { limit: 5 }
        }
    );
    let kept = git::context_changes(
        &location,
        &first,
        &second,
        Limits {
            tree_entries: 1_000,
            files: 2,
        },
    );
    let ContextEvidence::Known(kept) = kept else {
        panic!("{kept:?}")
    };
    assert_eq!((kept.files.len(), kept.truncated), (2, true));

    let head = git::head(&root.join("api")).unwrap();
    assert_eq!(head.commit, third);
    assert_eq!(head.git_ref.as_deref(), Some("refs/heads/main"));
}

#[test]
fn a_shallow_clone_says_what_to_fetch_and_the_documented_fetch_makes_it_known() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("origin");
    init(&origin);
    write_tree(&origin, &[("app.py", "1\n"), ("README.md", "r\n")]);
    let first = commit(&origin, "release 1");
    write_tree(&origin, &[("app.py", "2\n")]);
    let second = commit(&origin, "release 2");

    // actions/checkout's default: the last commit only.
    let url = format!("file://{}", origin.display());
    git(
        dir.path(),
        &["clone", "-q", "--depth", "1", &url, "checkout"],
    );
    let checkout = dir.path().join("checkout");
    let location = ContextLocation {
        context_dir: checkout.clone(),
        dockerfile: None,
    };
    let evidence = git::context_changes(&location, &first, &second, Limits::default());
    let ContextEvidence::Unknown { reason } = &evidence else {
        panic!("a shallow clone cannot know: {evidence:?}")
    };
    assert_eq!(
        reason,
        &ContextUnknown::CommitMissing {
            commit: first.clone(),
            shallow: true
        }
    );
    let text = reason.to_string();
    assert!(text.contains("shallow clone"), "{text}");
    assert!(text.contains("fetch-depth: 0"), "{text}");
    let fetch = format!("git fetch --depth=1 origin {first}");
    assert!(text.contains(&fetch), "{text}");

    // The command the message gives, run as a step before the action would.
    git(&checkout, &["fetch", "-q", "--depth=1", "origin", &first]);
    let files = known(git::context_changes(
        &location,
        &first,
        &second,
        Limits::default(),
    ));
    // The checkout has no .dockerignore: `.git` is in the context as well.
    assert_eq!(files, vec![file("app.py", false)]);

    // Not a repository at all.
    let plain = tempfile::tempdir().unwrap();
    let evidence = git::context_changes(
        &ContextLocation {
            context_dir: plain.path().to_path_buf(),
            dockerfile: None,
        },
        &first,
        &second,
        Limits::default(),
    );
    assert!(
        matches!(
            evidence,
            ContextEvidence::Unknown {
                reason: ContextUnknown::NotARepository { .. }
            }
        ),
        "{evidence:?}"
    );
}

const DOCKERFILE: &str = "WORKDIR /app\nCOPY requirements.txt .\nRUN echo installing && cat requirements.txt > /app/deps.txt\nCOPY . .\nRUN cat app.py > /app/compiled.txt\n";

/// Builds the checkout with the Engine and reports on it with the context flag (and the
/// baseline), writing the JSON report next to the log.
fn build_and_report(repo: &Path, out: &Path, name: &str, baseline: Option<&Path>) -> Value {
    let built = build(repo, &format!("cachehit-context-test:{name}"), &[]);
    assert!(built.success, "{name}:\n{}", built.log);
    let log = out.join(format!("{name}.plain.log"));
    std::fs::write(&log, &built.log).unwrap();
    let report_path: PathBuf = out.join(format!("{name}.json"));
    let mut command = cachehit();
    command
        .args(["report", "--format", "json", "--output"])
        .arg(&report_path)
        .arg("--context")
        .arg(repo)
        .arg(&log);
    if let Some(baseline) = baseline {
        command.arg("--baseline").arg(baseline);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap()
}

fn context_findings(report: &Value) -> Vec<&Value> {
    report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "context-changed")
        .collect()
}

#[test]
fn real_builds_name_the_files_that_invalidated_each_copy() {
    if !engine_available("real_builds_name_the_files_that_invalidated_each_copy") {
        return;
    }
    ensure_base_image();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    init(&repo);
    // Content of this run only: the engine's cache holds earlier runs' layers.
    let nonce = format!(
        "# run {} {:?}\nflask==3.0\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    write_tree(
        &repo,
        &[
            ("Dockerfile", &format!("FROM {BASE_IMAGE}\n{DOCKERFILE}")),
            (".dockerignore", ".git\ndocs/\n"),
            ("requirements.txt", &nonce),
            ("app.py", "print('release 1')\n"),
            ("README.md", "# app\n"),
            ("docs/guide.md", "guide\n"),
        ],
    );
    let first = commit(&repo, "release 1");
    let v1 = build_and_report(&repo, &out, "v1", None);
    assert_eq!(v1["build"]["git_commit"], first.as_str());
    assert_eq!(v1["build"]["git_ref"], "refs/heads/main");
    assert!(context_findings(&v1).is_empty());

    // Release 2: documentation only. `docs/` is ignored, README.md is not.
    write_tree(
        &repo,
        &[
            ("README.md", "# app\n\nUsage.\n"),
            ("docs/guide.md", "guide 2\n"),
        ],
    );
    let second = commit(&repo, "docs");
    let v2 = build_and_report(&repo, &out, "v2", Some(&out.join("v1.json")));
    let status = |report: &Value, prefix: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no step {prefix}"))
    };
    assert_eq!(status(&v2, "[4/6] RUN echo installing"), "cached");
    assert_eq!(status(&v2, "[5/6] COPY . ."), "rebuilt");
    let context = &v2["comparison"]["context"];
    assert_eq!(context["state"], "known");
    assert_eq!(context["from_commit"], first.as_str());
    assert_eq!(context["to_commit"], second.as_str());
    let findings = context_findings(&v2);
    assert_eq!(findings.len(), 1, "{findings:#?}\n{:#}", v2["steps"]);
    assert_eq!(findings[0]["step"], "[5/6] COPY . .");
    assert_eq!(findings[0]["severity"], "warning");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "`[5/6] COPY . .` was invalidated by `README.md` (since the previous release's commit"
        ),
        "{message}"
    );
    assert!(message.contains("add them to .dockerignore"), "{message}");
    assert!(
        !message.contains("docs"),
        "ignored files are not named: {message}"
    );
    assert!(findings[0]["fix"].as_str().unwrap().contains("`README.md`"));

    // Release 3: a dependency changed: the install reran, as it should.
    write_tree(&repo, &[("requirements.txt", &nonce.replace("3.0", "3.1"))]);
    commit(&repo, "flask 3.1");
    let v3 = build_and_report(&repo, &out, "v3", Some(&out.join("v2.json")));
    assert_eq!(status(&v3, "[3/6] COPY requirements.txt"), "rebuilt");
    assert_eq!(status(&v3, "[4/6] RUN echo installing"), "rebuilt");
    let findings = context_findings(&v3);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["step"], "[3/6] COPY requirements.txt .");
    assert_eq!(findings[0]["severity"], "notice");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("`[3/6] COPY requirements.txt .` changed: `requirements.txt` changed since the previous release's commit"),
        "{message}"
    );
    assert!(message.contains("reran as expected"), "{message}");

    // A baseline without a commit: the report says it cannot know.
    write_tree(&repo, &[("app.py", "print('release 4')\n")]);
    commit(&repo, "release 4");
    let mut old: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("v3.json")).unwrap()).unwrap();
    old["build"].as_object_mut().unwrap().remove("git_commit");
    std::fs::write(out.join("v3-old.json"), old.to_string()).unwrap();
    let v4 = build_and_report(&repo, &out, "v4", Some(&out.join("v3-old.json")));
    let findings = context_findings(&v4);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["step"], "[5/6] COPY . .");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot be known: the previous report records no commit."),
        "{}",
        findings[0]["message"]
    );
    for name in ["v1", "v2", "v3", "v4"] {
        let _ = Command::new(support::DOCKER)
            .args(["rmi", "-f", &format!("cachehit-context-test:{name}")])
            .output();
    }
}
