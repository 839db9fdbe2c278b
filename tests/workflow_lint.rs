//! Every workflow of the project (.github/workflows) and every example users copy
//! (examples/workflows), and action.yml, pass actionlint (syntax, expressions, action inputs,
//! deprecated runtimes) and zizmor (GitHub Actions security analysis: template injection,
//! dangerous triggers, persisted credentials, unpinned actions), both as installed by
//! scripts/setup (pinned versions from PyPI). zizmor runs offline with .github/zizmor.yml.
//!
//! Without the tools the tests are skipped with a message, unless `CACHEHIT_E2E=1` (set by
//! scripts/test), which makes a missing tool a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Where scripts/setup installs the linters (a Python virtual environment).
fn tools_dir() -> PathBuf {
    match std::env::var_os("CACHEHIT_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/cachehit/tools"),
    }
}

/// The tool from scripts/setup's environment, else from PATH.
fn tool(name: &str) -> Option<PathBuf> {
    let installed = tools_dir().join("bin").join(name);
    if installed.is_file() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn required_tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        assert!(
            std::env::var("CACHEHIT_E2E").as_deref() != Ok("1"),
            "{test}: {name} is required (CACHEHIT_E2E=1) but not installed; run scripts/setup"
        );
        eprintln!("{test}: skipped: {name} is not installed (scripts/setup installs it)");
    }
    found
}

/// The workflow files: the project's own and the examples.
fn workflows() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [".github/workflows", "examples/workflows"] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.strip_prefix(ROOT).unwrap().display().to_string())
        .collect()
}

#[test]
fn the_project_has_ci_and_release_workflows() {
    let names = relative(&workflows());
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/workflows/audit.yml",
        "examples/workflows/build-and-report.yml",
        "examples/workflows/consume-report.yml",
        "examples/workflows/pr-comment.yml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[test]
fn actionlint_passes_on_every_workflow() {
    let Some(actionlint) = required_tool("actionlint", "actionlint_passes_on_every_workflow")
    else {
        return;
    };
    let files = relative(&workflows());
    let output = Command::new(&actionlint)
        .current_dir(ROOT)
        .args(["-no-color", "-oneline"])
        .args(&files)
        .output()
        .expect("actionlint runs");
    assert!(
        output.status.success(),
        "actionlint on {files:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn zizmor_finds_nothing_in_the_workflows_and_the_action() {
    let Some(zizmor) = required_tool(
        "zizmor",
        "zizmor_finds_nothing_in_the_workflows_and_the_action",
    ) else {
        return;
    };
    let mut files = relative(&workflows());
    files.push("action.yml".into());
    let output = Command::new(&zizmor)
        .current_dir(ROOT)
        .args([
            "--offline",
            "--no-progress",
            "--config",
            ".github/zizmor.yml",
        ])
        .args(&files)
        .output()
        .expect("zizmor runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("No findings"),
        "zizmor on {files:?}:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The release workflow pins action.yml to the pushed image with scripts/pin-action-image: the
/// result is still a valid action whose report step pulls that image, and nothing else changes.
#[test]
fn the_release_pin_points_the_action_at_the_image_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("action.yml");
    let original = std::fs::read_to_string(Path::new(ROOT).join("action.yml")).unwrap();
    std::fs::write(&copy, &original).unwrap();
    let image = format!("ghcr.io/cachehit/cachehit:1.2.3@sha256:{}", "ab".repeat(32));
    let status = Command::new(Path::new(ROOT).join("scripts/pin-action-image"))
        .arg(&image)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let pinned_text = std::fs::read_to_string(&copy).unwrap();
    let pinned: serde_yaml_ng::Value = serde_yaml_ng::from_str(&pinned_text).unwrap();
    let steps = pinned["runs"]["steps"].as_sequence().unwrap();
    let report = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("report"))
        .unwrap();
    assert_eq!(
        report["env"]["CACHEHIT_RELEASE_IMAGE"].as_str(),
        Some(image.as_str())
    );
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(pinned_text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(original.lines().count(), pinned_text.lines().count());

    // On the branches the image is not pinned: the action builds it from source.
    let action: serde_yaml_ng::Value = serde_yaml_ng::from_str(&original).unwrap();
    let report = action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str() == Some("report"))
        .unwrap();
    assert_eq!(report["env"]["CACHEHIT_RELEASE_IMAGE"].as_str(), Some(""));

    // A tag without a digest is refused: users must get exactly the image that was released.
    let refused = Command::new(Path::new(ROOT).join("scripts/pin-action-image"))
        .arg("ghcr.io/cachehit/cachehit:1.2.3")
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
