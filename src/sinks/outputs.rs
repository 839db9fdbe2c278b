//! The action's outputs (`GITHUB_OUTPUT`), every one of them on every run (empty when
//! unknown), so later steps can always refer to them.
//!
//! A run that reports several builds (bake targets, build records) gives the figures over all
//! of them in the plain outputs (counts summed, the ratio over every finished step, rebuilt
//! steps named with their build, report paths one per line) and each build's own in the
//! `reports` output, a JSON object keyed by build.

use std::path::Path;

use serde_json::json;

use crate::github::runner::write_output;
use crate::model::StepStatus;
use crate::report::Report;
use crate::sinks::SinkError;

/// What the outputs say beyond the report.
pub struct Written<'a> {
    /// The report file as later steps reach it, when it was written.
    pub report_path: Option<&'a str>,
    /// The pull-request comment, when one was written.
    pub comment_url: Option<&'a str>,
}

/// One build's report, and its name when the run reports several.
pub struct Reported<'a> {
    pub label: Option<&'a str>,
    pub report: &'a Report,
    pub report_path: Option<&'a str>,
}

/// The `reports` key of a run that reports one build.
pub const SINGLE_KEY: &str = "default";

/// Writes every output for one report; stops at the first that cannot be written.
pub fn write(file: &Path, report: &Report, written: &Written) -> Result<(), SinkError> {
    write_all(
        file,
        &[Reported {
            label: None,
            report,
            report_path: written.report_path,
        }],
        written.comment_url,
    )
}

/// Writes every output for the run's reports; stops at the first that cannot be written.
pub fn write_all(
    file: &Path,
    reports: &[Reported],
    comment_url: Option<&str>,
) -> Result<(), SinkError> {
    for (name, value) in values(reports, comment_url) {
        write_output(file, name, &value).map_err(|source| SinkError::Output {
            name,
            path: file.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn rebuilt(report: &Report) -> impl Iterator<Item = &str> {
    report
        .build
        .steps
        .iter()
        .filter(|st| matches!(st.status, StepStatus::Rebuilt | StepStatus::Failed))
        .map(|st| st.name.as_str())
}

fn ratio(cached: u32, finished: u32) -> String {
    if finished == 0 {
        String::new()
    } else {
        format!("{:.4}", f64::from(cached) / f64::from(finished))
    }
}

/// Each output's name (as action.yml declares it) and value.
fn values(reports: &[Reported], comment_url: Option<&str>) -> [(&'static str, String); 8] {
    let several = reports.len() > 1;
    let (mut cached, mut total, mut finished) = (0u32, 0u32, 0u32);
    let mut pull_bytes: Option<u64> = None;
    let mut rebuilt_steps: Vec<String> = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    let mut each = serde_json::Map::new();
    for reported in reports {
        let s = &reported.report.summary;
        cached += s.steps_cached;
        total += s.steps_total;
        finished += s.steps_cached + s.steps_rebuilt + s.steps_failed;
        if let Some(bytes) = s.pull_bytes {
            pull_bytes = Some(pull_bytes.unwrap_or(0).saturating_add(bytes));
        }
        let label = reported.label.unwrap_or(SINGLE_KEY);
        for name in rebuilt(reported.report) {
            rebuilt_steps.push(if several {
                format!("{label}: {name}")
            } else {
                name.to_string()
            });
        }
        paths.extend(reported.report_path);
        each.insert(
            label.to_string(),
            json!({
                "cache-hit-ratio": s.cache_hit_ratio,
                "steps-cached": s.steps_cached,
                "steps-total": s.steps_total,
                "rebuilt-steps": rebuilt(reported.report).collect::<Vec<_>>(),
                "pull-bytes": s.pull_bytes,
                "report-path": reported.report_path,
            }),
        );
    }
    // One report: its own ratio, as it computed it.
    let hit_ratio = match reports {
        [one] => one
            .report
            .summary
            .cache_hit_ratio
            .map(|r| format!("{r:.4}"))
            .unwrap_or_default(),
        _ => ratio(cached, finished),
    };
    [
        ("cache-hit-ratio", hit_ratio),
        ("steps-cached", cached.to_string()),
        ("steps-total", total.to_string()),
        ("rebuilt-steps", rebuilt_steps.join("\n")),
        (
            "pull-bytes",
            pull_bytes.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("report-path", paths.join("\n")),
        ("comment-url", comment_url.unwrap_or_default().to_string()),
        ("reports", serde_json::Value::Object(each).to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, Step, StepKind};

    fn report(cached: usize, rebuilt: usize) -> Report {
        let steps = (0..cached + rebuilt)
            .map(|i| Step {
                name: format!("[{}/9] RUN step-{i}", i + 1),
                kind: StepKind::Run,
                status: if i < cached {
                    StepStatus::Cached
                } else {
                    StepStatus::Rebuilt
                },
                ..Step::default()
            })
            .collect();
        crate::analysis::analyze(Build {
            steps,
            ..Build::default()
        })
    }

    #[test]
    fn several_reports_sum_up_and_each_keeps_its_own() {
        let (api, worker) = (report(3, 3), report(1, 0));
        let values = values(
            &[
                Reported {
                    label: Some("api"),
                    report: &api,
                    report_path: Some("cachehit-report-api.json"),
                },
                Reported {
                    label: Some("worker"),
                    report: &worker,
                    report_path: Some("cachehit-report-worker.json"),
                },
            ],
            None,
        );
        let get = |name: &str| values.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(get("steps-cached"), "4");
        assert_eq!(get("steps-total"), "7");
        assert_eq!(get("cache-hit-ratio"), "0.5714");
        assert_eq!(
            get("report-path"),
            "cachehit-report-api.json\ncachehit-report-worker.json"
        );
        assert!(get("rebuilt-steps").starts_with("api: [4/9] RUN step-3\n"));
        let each: serde_json::Value = serde_json::from_str(&get("reports")).unwrap();
        assert_eq!(each["worker"]["cache-hit-ratio"], 1.0);
        assert_eq!(each["api"]["steps-total"], 6);
        assert_eq!(each["api"]["report-path"], "cachehit-report-api.json");
    }
}
