//! The command line behaves as command-line tools do: `-` is standard input, folders get a
//! clear word, warnings come once, the table fits the width it is given and is in colour only
//! on a terminal, gates that could never trip are refused, two reports given the wrong way
//! round are pointed out, and the step order does not depend on which inputs were given.
//! Every test runs the real binary on real BuildKit records.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn cachehit() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cachehit"));
    command.env_remove("COLUMNS").env_remove("NO_COLOR");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command` with `stdin` on its standard input.
fn with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The reader may stop early (an error): a closed pipe is not this test's concern.
        let _ = pipe.write_all(&bytes);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn json_report(args: &[&Path]) -> serde_json::Value {
    let output = cachehit()
        .args(["report", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn step_names(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// `cachehit report --format json -o DIR/NAME` on a fixture release.
fn report_file(dir: &Path, name: &str, input: &str) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = cachehit()
        .args(["report", "--format", "json", "-o"])
        .arg(&out)
        .arg(fixture(input))
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn a_dash_reads_standard_input_whatever_its_format() {
    for rel in [
        "buildkit-v0.24/p2-deps-first/v2.rawjson",
        "buildkit-v0.24/p2-deps-first/v2.plain.log",
        "buildx-v0.36/p1-copy-before-deps/v2.dockerbuild",
    ] {
        let from_file = json_report(&[&fixture(rel)]);
        let piped = with_stdin(
            cachehit().args(["report", "--format", "json", "-"]),
            &std::fs::read(fixture(rel)).unwrap(),
        );
        assert!(piped.status.success(), "{rel}: {}", text(&piped.stderr));
        let from_stdin: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
        assert_eq!(from_stdin["steps"], from_file["steps"], "{rel}");
        assert_eq!(from_stdin["summary"], from_file["summary"], "{rel}");
        assert_eq!(from_stdin["inputs"][0]["path"], "standard input", "{rel}");
    }
    // Standard input combines with files like any input: the log piped, the metadata named.
    let dir = "buildkit-v0.24/p2-deps-first";
    let combined = with_stdin(
        cachehit()
            .args(["report", "--format", "json", "-"])
            .arg(fixture(&format!("{dir}/v2.metadata.json"))),
        &std::fs::read(fixture(&format!("{dir}/v2.rawjson"))).unwrap(),
    );
    assert!(combined.status.success(), "{}", text(&combined.stderr));
    let report: serde_json::Value = serde_json::from_slice(&combined.stdout).unwrap();
    assert_eq!(report["inputs"].as_array().unwrap().len(), 2);

    // A CI log whose progress starts after more text than detection's first look: piped, it
    // is found as in a file.
    let mut pasted = Vec::new();
    for i in 0..2_000 {
        pasted.extend_from_slice(
            format!("step {i}: installing the toolchain, please wait\n").as_bytes(),
        );
    }
    assert!(pasted.len() > 64 * 1024);
    pasted.extend(std::fs::read(fixture("buildkit-v0.24/p2-deps-first/v2.plain.log")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ci.log");
    std::fs::write(&file, &pasted).unwrap();
    let from_file = json_report(&[&file]);
    let piped = with_stdin(
        cachehit().args(["report", "--format", "json", "-"]),
        &pasted,
    );
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let from_stdin: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(from_stdin["steps"], from_file["steps"]);
    assert_eq!(from_stdin["inputs"][0]["format"], "plain");
    assert!(!from_file["steps"].as_array().unwrap().is_empty());

    // The baseline of `compare` can be piped too.
    let dir = tempfile::tempdir().unwrap();
    let v1 = report_file(
        dir.path(),
        "v1.json",
        "buildkit-v0.24/p2-deps-first/v1.rawjson",
    );
    let compared = with_stdin(
        cachehit()
            .args(["compare", "--format", "json", "-"])
            .arg(fixture("buildkit-v0.24/p2-deps-first/v2.rawjson")),
        &std::fs::read(&v1).unwrap(),
    );
    assert!(compared.status.success(), "{}", text(&compared.stderr));
    let report: serde_json::Value = serde_json::from_slice(&compared.stdout).unwrap();
    assert_eq!(report["comparison"]["baseline_source"], "standard input");

    let twice = cachehit().args(["report", "-", "-"]).output().unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        text(&twice.stderr).contains("more than once"),
        "{}",
        text(&twice.stderr)
    );
}

#[test]
fn a_folder_is_named_as_a_folder() {
    let folder = fixture("buildkit-v0.24/p1-copy-before-deps");
    let output = cachehit().arg("report").arg(&folder).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{} is a folder", folder.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("Is a directory"), "{stderr}");
    let output = cachehit()
        .arg("compare")
        .arg(&folder)
        .arg(folder.join("v2.rawjson"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("is a folder"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn audit_walks_downloaded_artifact_folders_and_labels_by_release() {
    let dir = tempfile::tempdir().unwrap();
    // `gh run download` / download-artifact: one folder per artifact, the same file name in each.
    let downloads = dir.path().join("downloads");
    report_file(
        &downloads,
        "cachehit-report-1/cachehit-report.json",
        "buildkit-v0.24/p1-copy-before-deps/v1.rawjson",
    );
    report_file(
        &downloads,
        "nested/cachehit-report-2/cachehit-report.json",
        "buildkit-v0.24/p1-copy-before-deps/v2.rawjson",
    );
    // Another JSON document next to them (a metadata file) is passed over.
    std::fs::copy(
        fixture("buildkit-v0.24/p1-copy-before-deps/v2.metadata.json"),
        downloads.join("metadata.json"),
    )
    .unwrap();

    let output = cachehit()
        .args(["audit", "--format", "markdown"])
        .arg(&downloads)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // Labelled with the image tag and build time the reports record, oldest first.
    let v1 = stdout.find("| v1 (2026-").expect(&stdout);
    let v2 = stdout.find("| v2 (2026-").expect(&stdout);
    assert!(v1 < v2, "{stdout}");
    assert!(!stdout.contains("| cachehit-report |"), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1 JSON file(s) in the folders are not cachehit reports"),
        "{stderr}"
    );

    let table = cachehit()
        .args(["audit", "--format", "table"])
        .arg(&downloads)
        .output()
        .unwrap();
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(table.contains("│ release"), "{table}");
    assert!(
        table.contains("v1 (2026-") && table.contains("25%"),
        "{table}"
    );
    assert!(
        table.lines().all(|l| l.chars().count() <= 100),
        "wider than 100 columns:\n{table}"
    );
}

#[test]
fn compare_warns_when_the_baseline_was_built_after_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = report_file(
        dir.path(),
        "v1.json",
        "buildkit-v0.24/p1-copy-before-deps/v1.rawjson",
    );
    let v2 = report_file(
        dir.path(),
        "v2.json",
        "buildkit-v0.24/p1-copy-before-deps/v2.rawjson",
    );
    let swapped = cachehit()
        .args(["compare", "--format", "json"])
        .arg(&v2)
        .arg(&v1)
        .output()
        .unwrap();
    assert!(swapped.status.success());
    let stderr = text(&swapped.stderr);
    assert!(
        stderr.contains("the baseline was built after this build"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&swapped.stdout).unwrap();
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("built after")),
        "{report}"
    );
    let in_order = cachehit()
        .args(["compare", "--format", "json"])
        .arg(&v1)
        .arg(&v2)
        .output()
        .unwrap();
    assert!(!text(&in_order.stderr).contains("built after"));
}

#[test]
fn gates_that_could_never_trip_are_configuration_errors() {
    let log = fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson");
    for (gate, said) in [
        ("diagnosis:nope", "unknown diagnosis kind `nope`"),
        ("hit-ratio<150", "at most 100"),
        ("hit-ratio-drop>250", "at most 100"),
        ("regression:", "expected the text of a step"),
    ] {
        let output = cachehit()
            .args(["report", "--fail-on", gate])
            .arg(&log)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{gate}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&format!("`{gate}`")), "{gate}: {stderr}");
        assert!(stderr.contains(said), "{gate}: {stderr}");
        assert!(output.stdout.is_empty(), "{gate}: no work before the check");
    }
    // A step text that names no step of the build or its baseline cannot trip: said each run.
    let dir = tempfile::tempdir().unwrap();
    let v1 = report_file(
        dir.path(),
        "v1.json",
        "buildkit-v0.24/p1-copy-before-deps/v1.rawjson",
    );
    let output = cachehit()
        .args([
            "compare",
            "--format",
            "json",
            "--fail-on",
            "regression:NoSuchStep",
        ])
        .arg(&v1)
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        text(&output.stderr).contains(
            "regression:NoSuchStep can never trip: no step of this build or of its baseline \
             contains `NoSuchStep`"
        ),
        "{}",
        text(&output.stderr)
    );
    let output = cachehit()
        .args([
            "compare",
            "--format",
            "json",
            "--fail-on",
            "regression:COPY . .",
        ])
        .arg(&v1)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        !text(&output.stderr).contains("never trip"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn each_warning_is_printed_once() {
    // Bake metadata without a target among other inputs: a problem, listed in the report.
    let bake = "buildx-v0.36/d2-bake-two-targets";
    let inputs = [
        fixture(&format!("{bake}/v2.api.dockerbuild")),
        fixture(&format!("{bake}/v2.metadata.json")),
    ];
    let needle = "holds several bake targets";
    for format in ["table", "markdown", "json"] {
        let output = cachehit()
            .args(["report", "--format", format])
            .args(&inputs)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        // Wrapped lines are one sentence.
        let flat = |bytes: &[u8]| text(bytes).split_whitespace().collect::<Vec<_>>().join(" ");
        let (stdout, stderr) = (flat(&output.stdout), flat(&output.stderr));
        if format == "json" {
            // JSON is data for programs (it lists the problem): the person reads standard error.
            assert_eq!(stderr.matches(needle).count(), 1, "{stderr}");
        } else {
            let shown = stdout.matches(needle).count() + stderr.matches(needle).count();
            assert_eq!(shown, 1, "{format}:\n{stdout}\n---\n{stderr}");
            assert!(!stderr.contains(needle), "{format}: {stderr}");
        }
    }
    // Written to a file, the report is not what the person reads: standard error says it.
    let dir = tempfile::tempdir().unwrap();
    let output = cachehit()
        .args(["report", "--format", "table", "-o"])
        .arg(dir.path().join("report.txt"))
        .args(&inputs)
        .output()
        .unwrap();
    assert_eq!(text(&output.stderr).matches(needle).count(), 1);
}

#[test]
fn the_table_fits_the_width_when_piped() {
    let log = fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson");
    let widest = |columns: Option<&str>| {
        let mut command = cachehit();
        command.args(["report", "--format", "table"]).arg(&log);
        if let Some(columns) = columns {
            command.env("COLUMNS", columns);
        }
        let output = command.output().unwrap();
        assert!(output.status.success());
        let stdout = text(&output.stdout);
        assert!(!stdout.contains('\u{1b}'), "no colour when piped");
        assert!(stdout.contains("COPY . ."), "{stdout}");
        stdout.lines().map(|l| l.chars().count()).max().unwrap()
    };
    let default = widest(None);
    assert!((90..=100).contains(&default), "{default}");
    let narrow = widest(Some("72"));
    assert!((60..=72).contains(&narrow), "{narrow}");
    assert!(widest(Some("180")) > 100);
}

/// `script` runs the command on a pseudo-terminal, as a person's shell does.
fn on_a_terminal(args: &[&str], no_color: bool) -> Option<String> {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script to give cachehit a terminal");
        return None;
    }
    let mut line = String::from(env!("CARGO_BIN_EXE_cachehit"));
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut command = Command::new(script);
    command
        .args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120");
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    Some(text(&output.stdout))
}

#[test]
fn the_table_is_in_colour_on_a_terminal_unless_no_color() {
    let log = fixture("buildkit-v0.24/p1-copy-before-deps/v2.rawjson");
    let log = log.to_str().unwrap();
    let Some(coloured) = on_a_terminal(&["report", log], false) else {
        return;
    };
    // A table by default on a terminal, the statuses in colour.
    assert!(coloured.contains("rebuilt"), "{coloured}");
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    let plain = on_a_terminal(&["report", log], true).unwrap();
    assert!(plain.contains("rebuilt"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "{plain}");
}

#[test]
fn the_step_order_does_not_depend_on_the_inputs() {
    // Multi-stage: BuildKit reaches the final stage first in the rawjson stream; the plain
    // log replays builder first. Both, and both with the Dockerfile, read builder first.
    let dir = "buildkit-v0.24/p4-multistage-mode-max";
    let dockerfile = fixture(&format!("{dir}/Dockerfile"));
    let rawjson = fixture(&format!("{dir}/v2.rawjson"));
    let plain = fixture(&format!("{dir}/v2.plain.log"));
    let orders = [
        step_names(&json_report(&[&rawjson])),
        step_names(&json_report(&[&plain])),
        step_names(&json_report(&[
            &rawjson,
            &fixture(&format!("{dir}/v2.metadata.json")),
        ])),
    ];
    let with_dockerfile = cachehit()
        .args(["report", "--format", "json", "--dockerfile"])
        .arg(&dockerfile)
        .arg(&rawjson)
        .output()
        .unwrap();
    let with_dockerfile: serde_json::Value =
        serde_json::from_slice(&with_dockerfile.stdout).unwrap();
    let expected = &orders[1];
    assert!(expected[0].starts_with("[builder 1/6]"), "{expected:?}");
    assert!(
        expected.last().unwrap().starts_with("[runtime 3/3]"),
        "{expected:?}"
    );
    for order in orders.iter().chain([&step_names(&with_dockerfile)]) {
        assert_eq!(order, expected);
    }
    // Bake: the bundle alone, and with the metadata's provenance (lines per step).
    let bake = "buildx-v0.36/d2-bake-two-targets";
    let bundle = fixture(&format!("{bake}/v2.worker.dockerbuild"));
    let alone = step_names(&json_report(&[&bundle]));
    let output = cachehit()
        .args(["report", "--format", "json", "--target", "worker"])
        .arg(&bundle)
        .arg(fixture(&format!("{bake}/v2.metadata.json")))
        .output()
        .unwrap();
    let with_metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(step_names(&with_metadata), alone);
    assert!(alone[0].starts_with("[base 1/"), "{alone:?}");
}
