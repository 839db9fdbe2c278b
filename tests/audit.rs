//! `cachehit audit` on real reports: produced by `cachehit report` from the BuildKit fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;

use cachehit::analysis::audit::{ReleaseReport, audit};
use cachehit::report::Report;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/buildkit-v0.24");

fn cachehit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachehit"))
}

/// Runs the real `cachehit report` on one fixture release and returns the JSON file.
fn report_file(dir: &Path, scenario: &str, release: &str) -> PathBuf {
    let out = dir.join(format!("{scenario}-{release}.json"));
    let input = Path::new(FIXTURES)
        .join(scenario)
        .join(format!("{release}.rawjson"));
    let status = cachehit()
        .arg("report")
        .arg(&input)
        .args(["--format", "json", "-o"])
        .arg(&out)
        .status()
        .expect("cachehit runs");
    assert!(status.success(), "report on {} failed", input.display());
    out
}

fn load(path: &Path, label: &str) -> ReleaseReport {
    let text = std::fs::read_to_string(path).expect("report written");
    let report: Report = serde_json::from_str(&text).expect("report parses");
    ReleaseReport {
        label: label.into(),
        report,
    }
}

const INSTALL_STEP: &str = "[4/5] RUN echo \"installing requirements\" && mkdir -p /opt && dd if=/dev/urandom of=/opt/site-packages.bin bs=1M count=6 2>/dev/null";

#[test]
fn rows_carry_each_release_figures() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = load(&report_file(dir.path(), "p1-copy-before-deps", "v1"), "v1");
    let v2 = load(&report_file(dir.path(), "p1-copy-before-deps", "v2"), "v2");
    let result = audit(&[v1.clone(), v2.clone()]);

    assert_eq!(result.rows.len(), 2);
    let (row1, row2) = (&result.rows[0], &result.rows[1]);
    assert_eq!(row1.label, "v1");
    assert_eq!(row1.cache_hit_ratio, v1.report.summary.cache_hit_ratio);
    assert_eq!(row2.cache_hit_ratio, Some(0.25));
    assert_eq!((row2.steps_cached, row2.steps_total), (1, 4));
    // COPY . . before the install: the install is rebuilt in both releases.
    assert!(row1.rebuilt_steps.iter().any(|s| s == INSTALL_STEP));
    assert!(row2.rebuilt_steps.iter().any(|s| s == INSTALL_STEP));
    assert!(!row2.rebuilt_steps.iter().any(|s| s.contains("WORKDIR")));
    assert_eq!(row2.duration_ms, v2.report.summary.duration_ms);
}

#[test]
fn a_diagnosis_in_consecutive_releases_persists_and_a_gap_breaks_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // `COPY . .` before the install: after a source change (p1 v2) `cachehit report`
    // diagnoses cache-busting-order; its cold first build (v1) has nothing to blame on the
    // order; p2 installs dependencies first and has no diagnosis.
    let cold = report_file(dir.path(), "p1-copy-before-deps", "v1");
    let busting_v2 = report_file(dir.path(), "p1-copy-before-deps", "v2");
    let fixed = report_file(dir.path(), "p2-deps-first", "v2");
    assert!(load(&cold, "cold").report.diagnoses.is_empty());
    let releases = [
        load(&busting_v2, "1.0.0"),
        load(&busting_v2, "1.1.0"),
        load(&fixed, "1.2.0"),
        load(&busting_v2, "1.3.0"),
    ];
    let wasted: u64 = releases[..2]
        .iter()
        .flat_map(|r| &r.report.diagnoses)
        .filter_map(|d| d.wasted_ms)
        .sum();
    let result = audit(&releases);

    assert_eq!(result.persistent.len(), 1, "{:?}", result.persistent);
    let found = &result.persistent[0];
    assert_eq!(found.kind, "cache-busting-order");
    assert_eq!(found.step.as_deref(), Some("[3/5] COPY . ."));
    // 1.3.0 has it again, but alone after the gap: not part of the run.
    assert_eq!(found.releases, ["1.0.0", "1.1.0"]);
    assert!(wasted > 0);
    assert_eq!(found.wasted_ms, Some(wasted));
    assert_eq!(found.message, releases[1].report.diagnoses[0].message);
}

#[test]
fn the_same_kind_on_another_step_is_another_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = report_file(dir.path(), "p1-copy-before-deps", "v2");
    let first = load(&path, "v1");
    let mut second = load(&path, "v2");
    for diagnosis in &mut second.report.diagnoses {
        diagnosis.step = Some(INSTALL_STEP.into());
    }
    assert!(!second.report.diagnoses.is_empty());
    assert!(audit(&[first, second]).persistent.is_empty());
}

#[test]
fn cli_audits_a_folder_in_name_order_and_survives_a_broken_report() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::rename(
        report_file(dir.path(), "p1-copy-before-deps", "v1"),
        reports.join("1.0.0.json"),
    )
    .unwrap();
    std::fs::rename(
        report_file(dir.path(), "p2-deps-first", "v2"),
        reports.join("1.1.0.json"),
    )
    .unwrap();
    std::fs::write(reports.join("1.2.0.json"), "{ not a report").unwrap();
    let summary = dir.path().join("summary.md");

    let output = cachehit()
        .args(["audit", "--summary"])
        .arg(&reports)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();

    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("1.2.0.json is not a cachehit JSON report"),
        "{stderr}"
    );
    let first = stdout.find("| 1.0.0 | 0% | 0/4 |").expect(&stdout);
    let second = stdout.find("| 1.1.0 |").expect(&stdout);
    assert!(first < second);
    assert!(
        stdout.contains("1.0.0 ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ 0%"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), stdout);
}

#[test]
fn cli_fails_when_no_report_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[]").unwrap();
    let output = cachehit().arg("audit").arg(&broken).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn cli_keeps_only_the_last_releases() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = report_file(dir.path(), "p1-copy-before-deps", "v1");
    let v2 = report_file(dir.path(), "p1-copy-before-deps", "v2");
    let output = cachehit()
        .args(["audit", "--last", "1"])
        .arg(&v1)
        .arg(&v2)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("| p1-copy-before-deps-v2 | 25% | 1/4 |"),
        "{stdout}"
    );
    assert!(!stdout.contains("p1-copy-before-deps-v1"), "{stdout}");
    // One release cannot show a problem persisting.
    assert!(stdout.contains("No diagnosis came back in consecutive releases."));
}

#[test]
fn cli_orders_releases_by_build_time_not_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    // By plain name order `1.10.0` would come first; it was built after `1.9.0`.
    std::fs::rename(
        report_file(dir.path(), "p1-copy-before-deps", "v2"),
        reports.join("1.10.0.json"),
    )
    .unwrap();
    std::fs::rename(
        report_file(dir.path(), "p1-copy-before-deps", "v1"),
        reports.join("1.9.0.json"),
    )
    .unwrap();

    let output = cachehit().arg("audit").arg(&reports).output().unwrap();

    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let older = stdout.find("| 1.9.0 | 0% |").expect(&stdout);
    let newer = stdout.find("| 1.10.0 | 25% |").expect(&stdout);
    assert!(older < newer, "{stdout}");
}
