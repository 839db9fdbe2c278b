//! The action's outputs (`GITHUB_OUTPUT`), every one of them on every run (empty when
//! unknown), so later steps can always refer to them.
//!
//! A run that reports several builds (bake targets, build records) gives the figures over all
//! of them in the plain outputs (counts summed, the ratio over every finished step, rebuilt
//! steps named with their build, report paths one per line) and each build's own in the
//! `reports` output, a JSON object keyed by build.
//!
//! GitHub allows 1 MB of outputs per job, counted in UTF-16: cachehit's own stay under
//! [`MAX_LIST_BYTES`] for the list of rebuilt steps (one step per line, the rest cut with a
//! note), as much again for the `reports` object (each build's list within its share), and a
//! few bytes for the others.

use std::path::Path;

use serde_json::json;

use crate::github::runner::write_output;
use crate::model::StepStatus;
use crate::report::Report;
use crate::sinks::SinkError;

/// The most `rebuilt-steps` holds, in bytes as GitHub counts them (UTF-16); the rebuilt-step
/// lists of the `reports` object share as much.
pub const MAX_LIST_BYTES: usize = 64 * 1024;
/// A step name longer than this is cut in the list.
const MAX_NAME_CHARS: usize = 300;

/// One build's report, and its name when the run reports several.
pub struct Reported<'a> {
    pub label: Option<&'a str>,
    pub report: &'a Report,
    /// The report file as later steps reach it, when it was written.
    pub report_path: Option<&'a str>,
}

/// The `reports` key of a run that reports one build.
pub const SINGLE_KEY: &str = "default";

/// Writes every output for the run's reports but `comment-url` (written by
/// [`write_comment_url`] once the comment is done, so that nothing GitHub does can hold the
/// others). Stops at the first that cannot be written.
pub fn write_all(file: &Path, reports: &[Reported]) -> Result<(), SinkError> {
    for (name, value) in values(reports) {
        write_one(file, name, &value)?;
    }
    Ok(())
}

/// `comment-url`: the pull-request comment, when one was written.
pub fn write_comment_url(file: &Path, url: Option<&str>) -> Result<(), SinkError> {
    write_one(file, "comment-url", url.unwrap_or_default())
}

fn write_one(file: &Path, name: &'static str, value: &str) -> Result<(), SinkError> {
    write_output(file, name, value).map_err(|source| SinkError::Output {
        name,
        path: file.to_path_buf(),
        source,
    })
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

/// Each output's name (as action.yml declares it) and value, `comment-url` aside.
fn values(reports: &[Reported]) -> [(&'static str, String); 7] {
    let several = reports.len() > 1;
    let (mut cached, mut total, mut finished) = (0u32, 0u32, 0u32);
    let mut pull_bytes: Option<u64> = None;
    let mut rebuilt_steps: Vec<String> = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    let mut each = serde_json::Map::new();
    // Each build's list of rebuilt steps gets an equal share.
    let share = MAX_LIST_BYTES / reports.len().max(1);
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
        let names: Vec<&str> = rebuilt(reported.report).collect();
        each.insert(
            label.to_string(),
            json!({
                "cache-hit-ratio": s.cache_hit_ratio,
                "steps-cached": s.steps_cached,
                "steps-total": s.steps_total,
                "rebuilt-steps": within(&names, share, json_item_bytes),
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
    let rebuilt_steps: Vec<&str> = rebuilt_steps.iter().map(String::as_str).collect();
    [
        ("cache-hit-ratio", hit_ratio),
        ("steps-cached", cached.to_string()),
        ("steps-total", total.to_string()),
        (
            "rebuilt-steps",
            one_per_line(&rebuilt_steps, MAX_LIST_BYTES),
        ),
        (
            "pull-bytes",
            pull_bytes.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("report-path", paths.join("\n")),
        ("reports", serde_json::Value::Object(each).to_string()),
    ]
}

/// Names one per line (line breaks inside a name become spaces), within `max_bytes` as
/// GitHub counts them; what does not fit is counted on a last line.
pub fn one_per_line(names: &[&str], max_bytes: usize) -> String {
    within(names, max_bytes, line_bytes).join("\n")
}

/// A line of the list and its line break.
fn line_bytes(line: &str) -> usize {
    utf16_bytes(line) + 2
}

/// An item of a JSON list: quoted, escaped, and its comma.
fn json_item_bytes(item: &str) -> usize {
    utf16_bytes(&serde_json::Value::from(item).to_string()) + 2
}

/// The names each on one line, as many as fit in `max_bytes` as `cost` counts each; when
/// some do not, a last item says how many.
fn within(names: &[&str], max_bytes: usize, cost: fn(&str) -> usize) -> Vec<String> {
    let total = names.len();
    let note = |left: usize| format!("… and {left} more (the JSON report lists every step)");
    // Room for the note, whatever the count.
    let budget = max_bytes.saturating_sub(cost(&note(total)));
    let mut out = Vec::new();
    let mut used = 0usize;
    for (i, name) in names.iter().enumerate() {
        let line = one_line(name);
        let line_cost = cost(&line);
        if used.saturating_add(line_cost) > budget {
            out.push(note(total - i));
            return out;
        }
        out.push(line);
        used += line_cost;
    }
    out
}

/// The name on one line, cut at [`MAX_NAME_CHARS`].
fn one_line(name: &str) -> String {
    let mut line: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .take(MAX_NAME_CHARS)
        .collect();
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        line.push('…');
    }
    line
}

fn utf16_bytes(text: &str) -> usize {
    text.encode_utf16().count() * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, Step, StepKind};

    fn report(cached: usize, rebuilt: usize) -> Report {
        named_report(cached, rebuilt, "")
    }

    fn named_report(cached: usize, rebuilt: usize, suffix: &str) -> Report {
        let steps = (0..cached + rebuilt)
            .map(|i| Step {
                name: format!("[{}/9] RUN step-{i}{suffix}", i + 1),
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
        let values = values(&[
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
        ]);
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
        assert_eq!(
            each["api"]["rebuilt-steps"],
            json!(["[4/9] RUN step-3", "[5/9] RUN step-4", "[6/9] RUN step-5"])
        );
        assert!(values.iter().all(|(name, _)| *name != "comment-url"));
    }

    #[test]
    fn each_build_s_list_in_reports_stays_within_its_share() {
        let long = format!(" \"{}\"", "x".repeat(400));
        let builds: Vec<Report> = (0..4).map(|_| named_report(0, 2_000, &long)).collect();
        let reported: Vec<Reported> = builds
            .iter()
            .enumerate()
            .map(|(i, report)| Reported {
                label: Some(["a", "b", "c", "d"][i]),
                report,
                report_path: None,
            })
            .collect();
        let values = values(&reported);
        let get = |name: &str| values.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        let reports = get("reports");
        assert!(
            utf16_bytes(&reports) <= MAX_LIST_BYTES + 4 * 512,
            "{}",
            utf16_bytes(&reports)
        );
        let each: serde_json::Value = serde_json::from_str(&reports).unwrap();
        for label in ["a", "b", "c", "d"] {
            let list = each[label]["rebuilt-steps"].as_array().unwrap();
            let text = serde_json::to_string(list).unwrap();
            assert!(utf16_bytes(&text) <= MAX_LIST_BYTES / 4, "{label}");
            assert!(list[0].as_str().unwrap().starts_with("[1/9] RUN step-0 \""));
            assert_eq!(
                list.last().unwrap().as_str().unwrap(),
                format!(
                    "… and {} more (the JSON report lists every step)",
                    2_000 - (list.len() - 1)
                )
            );
        }
        assert!(utf16_bytes(&get("rebuilt-steps")) <= MAX_LIST_BYTES);
    }

    #[test]
    fn the_list_stays_within_its_bound_one_name_per_line() {
        let names: Vec<String> = (0..5_000)
            .map(|i| {
                format!(
                    "[{i}/5000] RUN build {}\r\n::error::x\u{2028}y",
                    "x".repeat(600)
                )
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let list = one_per_line(&names, MAX_LIST_BYTES);
        assert!(
            utf16_bytes(&list) <= MAX_LIST_BYTES,
            "{}",
            utf16_bytes(&list)
        );
        let lines: Vec<&str> = list.lines().collect();
        assert!(lines.len() > 10, "{}", lines.len());
        // Every name is one line: no line starts with what followed a line break.
        assert!(lines.iter().all(|l| !l.starts_with("::")), "{list}");
        assert!(lines[0].starts_with("[0/5000] RUN build"), "{}", lines[0]);
        assert!(lines[0].ends_with('…'));
        let last = lines.last().unwrap();
        assert_eq!(
            *last,
            format!(
                "… and {} more (the JSON report lists every step)",
                5_000 - (lines.len() - 1)
            )
        );
    }

    #[test]
    fn a_short_list_is_whole() {
        let list = one_per_line(&["a", "b\nc"], MAX_LIST_BYTES);
        assert_eq!(list, "a\nb c");
        assert_eq!(one_per_line(&[], MAX_LIST_BYTES), "");
    }
}
