//! Causes named against a previous release that was itself built cold, on records the Docker
//! Engine makes here: release 1 on an empty builder, release 2 on a pruned builder importing
//! release 1's inline cache from a real registry, with one thing changed — a build argument,
//! or the image the base's tag points to. The Engine's plain logs carry neither the build
//! arguments nor the base image's digest: the argument is named through the Dockerfile, the
//! base through its `FROM` vertex.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{
    BASE_IMAGE, DOCKER, Registry, build, cachehit, docker, engine_available, ensure_base_image,
    write_tree,
};

/// `cachehit report --format json` on a plain log, with a baseline report and a Dockerfile.
fn report(log: &Path, baseline: Option<&Path>, dockerfile: Option<&Path>) -> Value {
    let mut command = cachehit();
    command.args(["report", "--format", "json"]);
    if let Some(baseline) = baseline {
        command.arg("--baseline").arg(baseline);
    }
    if let Some(dockerfile) = dockerfile {
        command.arg("--dockerfile").arg(dockerfile);
    }
    let output = command.arg(log).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Builds release 1 cold and pushes it; prunes the builder as a fresh runner would; builds
/// release 2 importing release 1's inline cache. Returns both plain logs' paths.
fn two_releases(
    dir: &Path,
    context: &Path,
    repo: &str,
    v1_args: &[&str],
    between: impl FnOnce(),
    v2_args: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    docker(&["builder", "prune", "-af"]);
    let v1_tag = format!("{repo}:v1");
    let mut args = vec!["--build-arg", "BUILDKIT_INLINE_CACHE=1"];
    args.extend(v1_args);
    let v1 = build(context, &v1_tag, &args);
    assert!(v1.success, "v1:\n{}", v1.log);
    assert!(!v1.log.contains("CACHED"), "release 1 is cold:\n{}", v1.log);
    docker(&["push", &v1_tag]);
    docker(&["builder", "prune", "-af"]);
    docker(&["rmi", &v1_tag]);
    between();
    let v2_tag = format!("{repo}:v2");
    let mut args = vec![
        "--build-arg",
        "BUILDKIT_INLINE_CACHE=1",
        "--cache-from",
        &v1_tag,
    ];
    args.extend(v2_args);
    let v2 = build(context, &v2_tag, &args);
    assert!(v2.success, "v2:\n{}", v2.log);
    let _ = std::process::Command::new(DOCKER)
        .args(["rmi", "-f", &v2_tag])
        .output();
    let (p1, p2) = (dir.join("v1.plain.log"), dir.join("v2.plain.log"));
    std::fs::write(&p1, v1.log).unwrap();
    std::fs::write(&p2, v2.log).unwrap();
    (p1, p2)
}

fn step<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix}: {report:#}"))
}

fn finding<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}: {:#}", report["diagnoses"]))
}

#[test]
fn a_build_argument_and_a_base_image_changed_since_a_cold_release() {
    if !engine_available("a_build_argument_and_a_base_image_changed_since_a_cold_release") {
        return;
    }
    ensure_base_image();
    let registry = Registry::start(None);
    let run = std::process::id();

    // A build argument: declared before a RUN that does not use it, then used by the next.
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    let dockerfile = format!(
        "FROM {BASE_IMAGE}\nWORKDIR /app\nRUN echo prepare > /app/prepare.txt\nARG TOOL_VERSION=1.0\nRUN echo unrelated > /app/unrelated.txt\nRUN echo \"tool ${{TOOL_VERSION}}\" > /app/tool.txt\n"
    );
    write_tree(&context, &[("Dockerfile", &dockerfile)]);
    let repo = format!("{}/cachehit-causes-arg-{run}", registry.addr);
    let (v1, v2) = two_releases(
        dir.path(),
        &context,
        &repo,
        &["--build-arg", "TOOL_VERSION=1.0"],
        || {},
        &["--build-arg", "TOOL_VERSION=1.1"],
    );
    let dockerfile_path = context.join("Dockerfile");
    let previous = report(&v1, None, Some(&dockerfile_path));
    assert_eq!(previous["summary"]["steps_cached"], 0);
    for d in previous["diagnoses"].as_array().unwrap() {
        assert_eq!(d["severity"], "notice", "first release: {d:#}");
    }
    let previous_path = dir.path().join("v1.json");
    std::fs::write(&previous_path, previous.to_string()).unwrap();
    let now = report(&v2, Some(&previous_path), Some(&dockerfile_path));
    assert_eq!(step(&now, "[3/5] RUN echo prepare")["status"], "cached");
    let unrelated = step(&now, "[4/5] RUN echo unrelated");
    assert_eq!(unrelated["status"], "rebuilt");
    assert_eq!(
        unrelated["rebuild_reason"],
        serde_json::json!({
            "kind": "build-arg-changed",
            "args": [{"name": "TOOL_VERSION", "before": "1.0", "after": "1.1"}],
            "evidence": "environment"
        })
    );
    assert_eq!(
        step(&now, "[5/5] RUN echo \"tool 1.1\"")["rebuild_reason"]["kind"],
        "upstream-rebuilt"
    );
    let found = finding(&now, "build-arg-changed");
    assert!(
        found["message"].as_str().unwrap().starts_with(
            "TOOL_VERSION changed 1.0 → 1.1 since the previous release, which invalidated `[4/5] RUN echo unrelated > /app/unrelated.txt` and what follows: 2 steps rebuilt"
        ),
        "{found:#}"
    );
    assert_eq!(found["dockerfile_line"], 5);
    assert!(
        now["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["kind"] != "cache-not-delivered"),
        "{:#}",
        now["diagnoses"]
    );

    // The base: the same tag in the registry, pointing at another image for release 2.
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    let base = format!("{}/cachehit-causes-base-{run}:current", registry.addr);
    let other = format!("cachehit-causes-other-{run}:1");
    let base_dir = dir.path().join("base");
    write_tree(
        &base_dir,
        &[(
            "Dockerfile",
            &format!("FROM {BASE_IMAGE}\nRUN echo other > /base.txt\n"),
        )],
    );
    let _cleanup = RemoveImages(vec![other.clone()]);
    let built = build(&base_dir, &other, &[]);
    assert!(built.success, "{}", built.log);
    let publish = |image: &str| {
        docker(&["tag", image, &base]);
        docker(&["push", &base]);
        // Only the registry has it: the build resolves the tag there.
        docker(&["rmi", &base]);
    };
    publish(BASE_IMAGE);
    write_tree(
        &context,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nWORKDIR /srv\nRUN echo hello > /srv/hello.txt\n"),
        )],
    );
    let repo = format!("{}/cachehit-causes-app-{run}", registry.addr);
    let (v1, v2) = two_releases(dir.path(), &context, &repo, &[], || publish(&other), &[]);
    let previous = report(&v1, None, None);
    let previous_path = dir.path().join("v1.json");
    std::fs::write(&previous_path, previous.to_string()).unwrap();
    let now = report(&v2, Some(&previous_path), None);
    let workdir = step(&now, "[2/3] WORKDIR /srv");
    assert_eq!(workdir["status"], "rebuilt");
    assert_eq!(
        workdir["rebuild_reason"]["kind"], "base-image-changed",
        "{now:#}"
    );
    let found = finding(&now, "base-image-changed");
    let message = found["message"].as_str().unwrap();
    let from = |r: &Value| {
        step(r, "[1/3] FROM")["instruction"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let digest = |r: &Value| {
        let instruction = from(r);
        let (_, digest) = instruction.split_once("@sha256:").unwrap();
        digest[..12].to_string()
    };
    assert!(
        message.starts_with(&format!(
            "The base image moved since the previous release: `{base}` ({} → {}), which invalidated `[2/3] WORKDIR /srv` and what follows: 2 steps rebuilt",
            digest(&previous),
            digest(&now)
        )),
        "{message}"
    );
    assert!(
        now["diagnoses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["severity"] == "notice"),
        "{:#}",
        now["diagnoses"]
    );
}

/// Removes the images it names when dropped, also when an assertion failed.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = std::process::Command::new(DOCKER)
                .args(["rmi", "-f", image])
                .output();
        }
    }
}
