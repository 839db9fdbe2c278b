//! The action's outputs (`GITHUB_OUTPUT`), every one of them on every run (empty when
//! unknown), so later steps can always refer to them.
//!
//! GitHub allows 1 MB of outputs per job, counted in UTF-16: cachehit's own stay under
//! [`MAX_LIST_BYTES`] for the list of rebuilt steps (one step per line, the rest cut with a
//! note) and a few bytes for the others.

use std::path::Path;

use crate::github::runner::write_output;
use crate::model::StepStatus;
use crate::report::Report;
use crate::sinks::SinkError;

/// The most `rebuilt-steps` holds, in bytes as GitHub counts them (UTF-16).
pub const MAX_LIST_BYTES: usize = 64 * 1024;
/// A step name longer than this is cut in the list.
const MAX_NAME_CHARS: usize = 300;

/// Writes every output but `comment-url` (written by [`write_comment_url`] once the comment
/// is done, so that nothing GitHub does can hold the others); `report_path` is the report
/// file as later steps reach it, when it was written. Stops at the first that cannot be
/// written.
pub fn write(file: &Path, report: &Report, report_path: Option<&str>) -> Result<(), SinkError> {
    for (name, value) in values(report, report_path) {
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

/// Each output's name (as action.yml declares it) and value.
fn values(report: &Report, report_path: Option<&str>) -> [(&'static str, String); 6] {
    let s = &report.summary;
    let rebuilt: Vec<&str> = report
        .build
        .steps
        .iter()
        .filter(|st| matches!(st.status, StepStatus::Rebuilt | StepStatus::Failed))
        .map(|st| st.name.as_str())
        .collect();
    [
        (
            "cache-hit-ratio",
            s.cache_hit_ratio
                .map(|r| format!("{r:.4}"))
                .unwrap_or_default(),
        ),
        ("steps-cached", s.steps_cached.to_string()),
        ("steps-total", s.steps_total.to_string()),
        ("rebuilt-steps", one_per_line(&rebuilt, MAX_LIST_BYTES)),
        (
            "pull-bytes",
            s.pull_bytes.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("report-path", report_path.unwrap_or_default().to_string()),
    ]
}

/// Names one per line (line breaks inside a name become spaces), within `max_bytes` as
/// GitHub counts them; what does not fit is counted on a last line.
pub fn one_per_line(names: &[&str], max_bytes: usize) -> String {
    let total = names.len();
    let note = |left: usize| format!("… and {left} more (the JSON report lists every step)");
    // Room for the note, whatever the count.
    let budget = max_bytes.saturating_sub(utf16_bytes(&note(total)) + 2);
    let mut out = String::new();
    let mut used = 0usize;
    for (i, name) in names.iter().enumerate() {
        let line = one_line(name);
        let cost = utf16_bytes(&line) + 2;
        if used.saturating_add(cost) > budget {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&note(total - i));
            return out;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line);
        used += cost;
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
