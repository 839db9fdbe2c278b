//! The report in GitHub's places, within GitHub's limits: the job summary (counted in bytes)
//! and the pull-request comment (counted in characters). The step table is cut first, never
//! the summary line.

use crate::render::markdown;
use crate::report::Report;

/// GitHub rejects comment bodies longer than this many characters.
pub const COMMENT_LIMIT_CHARS: usize = 65_536;
/// GitHub refuses a step's summary above 1 MiB (counted in bytes).
const SUMMARY_LIMIT_BYTES: usize = 1024 * 1024;
/// What cachehit writes at most to the job summary, well under the limit.
pub const SUMMARY_TARGET_BYTES: usize = SUMMARY_LIMIT_BYTES - 64 * 1024;
/// A baseline note longer than this is cut: it is one sentence, or an error message.
const NOTE_MAX_CHARS: usize = 2_000;

/// The job summary: the markdown report and the baseline note, within GitHub's byte limit.
pub fn job_summary(report: &Report, note: Option<&str>) -> String {
    summary_within(report, note, SUMMARY_TARGET_BYTES)
}

/// The job summary of a run that produced no report.
pub fn no_report_summary(error: &str) -> String {
    format!(
        "### cachehit\n\nNo report: {}\n",
        markdown::escape_text(error)
    )
}

/// The markdown report plus the baseline note, within `max_bytes` bytes: the table is cut
/// first, the summary line kept. The renderer counts characters, so its budget shrinks
/// until the bytes fit.
pub fn summary_within(report: &Report, note: Option<&str>, max_bytes: usize) -> String {
    let note = note.map(note_paragraph).unwrap_or_default();
    let target = max_bytes.saturating_sub(note.len());
    // A character is at least one byte: a budget of `target` characters is the most that
    // can fit.
    let mut budget = target;
    let mut text = markdown::render_within(report, budget);
    for _ in 0..16 {
        if text.len() <= target {
            break;
        }
        let scaled = (budget as u128 * target as u128 / text.len() as u128) as usize;
        budget = scaled.saturating_sub(scaled / 100 + 1);
        text = markdown::render_within(report, budget);
    }
    if text.len() > target {
        let mut cut = target;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text.push_str(&note);
    text
}

/// The baseline note as an italic paragraph, cut at [`NOTE_MAX_CHARS`].
fn note_paragraph(note: &str) -> String {
    let mut cut: String = note.chars().take(NOTE_MAX_CHARS).collect();
    if note.chars().nth(NOTE_MAX_CHARS).is_some() {
        cut.push('…');
    }
    format!("\n_{}_\n", markdown::escape_text(&cut))
}

/// The sticky comment: its `marker` first, then the report within GitHub's limit.
pub fn comment_body(report: &Report, marker: &str, baseline_note: Option<&str>) -> String {
    comment_sections(
        &[Section {
            heading: None,
            report,
            note: baseline_note,
        }],
        marker,
    )
}

/// One report among those of a run (a bake target, a build record), with what the comment or
/// summary says of it.
pub struct Section<'a> {
    /// Markdown naming the build when the run reports several (``bake target `api` ``).
    pub heading: Option<String>,
    pub report: &'a Report,
    pub note: Option<&'a str>,
}

impl Section<'_> {
    /// The heading, the report within `budget` characters, and the note.
    fn text(&self, budget: usize) -> String {
        let heading = self
            .heading
            .as_ref()
            .map(|h| format!("## {h}\n\n"))
            .unwrap_or_default();
        let note = self.note.map(note_paragraph).unwrap_or_default();
        let fixed = heading.chars().count() + note.chars().count();
        format!(
            "{heading}{}{note}",
            markdown::render_within(self.report, budget.saturating_sub(fixed))
        )
    }
}

/// The sticky comment of one build or several (one section each, sharing GitHub's limit):
/// its `marker` first.
pub fn comment_sections(sections: &[Section], marker: &str) -> String {
    let footer = "\n<sub>Posted by cachehit; updated on every build.</sub>\n";
    let separator = "\n---\n\n";
    let count = sections.len().max(1);
    let budget = COMMENT_LIMIT_CHARS
        .saturating_sub(marker.chars().count())
        .saturating_sub(footer.chars().count())
        .saturating_sub(16)
        .saturating_sub(separator.len().saturating_mul(count));
    let each = budget / count;
    let body: Vec<String> = sections.iter().map(|s| s.text(each)).collect();
    format!("{marker}\n{}{footer}", body.join(separator))
}

/// One section of the job summary, within its share (`of` sections) of GitHub's byte limit.
pub fn job_summary_section(section: &Section, of: usize) -> String {
    let heading = section
        .heading
        .as_ref()
        .map(|h| format!("## {h}\n\n"))
        .unwrap_or_default();
    let share = SUMMARY_TARGET_BYTES / of.max(1);
    format!(
        "{heading}{}",
        summary_within(
            section.report,
            section.note,
            share.saturating_sub(heading.len())
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, Step, StepKind, StepStatus};

    fn huge_report() -> Report {
        let steps = (0..4000)
            .map(|i| Step {
                name: format!("[{i}/4000] RUN make target-{i} | <b>@team</b> #{i}"),
                instruction: format!("RUN make target-{i} | <b>@team</b> #{i} {}", "x".repeat(60)),
                kind: StepKind::Run,
                status: if i % 3 == 0 {
                    StepStatus::Rebuilt
                } else {
                    StepStatus::Cached
                },
                index: Some(i),
                total: Some(4000),
                ..Step::default()
            })
            .collect();
        crate::analysis::analyze(Build {
            steps,
            ..Build::default()
        })
    }

    #[test]
    fn a_huge_build_fits_the_limit_keeping_the_summary() {
        let report = huge_report();
        let marker = crate::github::comment::marker("default");
        let text = comment_body(&report, &marker, Some("No baseline: none uploaded."));
        assert!(
            text.chars().count() <= COMMENT_LIMIT_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.starts_with("<!-- cachehit:default -->\n### cachehit"));
        assert!(text.contains("2666/4000 steps cached"), "summary kept");
        assert!(text.contains("more steps not shown"));
        assert!(text.contains("No baseline: none uploaded."));
        // Build text cannot open HTML, mention, reference or fake a marker.
        let after_marker = &text["<!-- cachehit:default -->".len()..];
        assert!(!after_marker.contains("<!--"));
        assert!(!after_marker.contains("<b>"));
        assert!(!after_marker.contains("@team"));
        assert!(!after_marker.contains(" #12 "));
    }

    #[test]
    fn sections_share_the_comment_limit() {
        let report = huge_report();
        let marker = crate::github::comment::marker("default");
        let sections: Vec<Section> = ["api", "worker", "web"]
            .iter()
            .map(|t| Section {
                heading: Some(format!("bake target `{t}`")),
                report: &report,
                note: Some("No baseline."),
            })
            .collect();
        let text = comment_sections(&sections, &marker);
        assert!(text.chars().count() <= COMMENT_LIMIT_CHARS);
        for t in ["api", "worker", "web"] {
            assert!(
                text.contains(&format!("## bake target `{t}`\n\n### cachehit")),
                "{t}"
            );
        }
        assert_eq!(text.matches("2666/4000 steps cached").count(), 3);
        assert_eq!(text.matches("No baseline.").count(), 3);
        for section in &sections {
            assert!(job_summary_section(section, 3).len() <= SUMMARY_TARGET_BYTES / 3);
        }
    }

    #[test]
    fn the_summary_fits_its_byte_budget_with_the_note() {
        let report = huge_report();
        let note = "é".repeat(5_000);
        let text = summary_within(&report, Some(&note), 20_000);
        assert!(text.len() <= 20_000, "{}", text.len());
        assert!(text.contains("2666/4000 steps cached"), "summary kept");
        assert!(text.ends_with(&format!("_{}…_\n", "é".repeat(NOTE_MAX_CHARS))));
    }

    #[test]
    fn a_note_or_marker_longer_than_the_limit_cannot_wrap_the_budget() {
        let report = huge_report();
        let note = "no baseline: the zip holds no cachehit-report.json ".repeat(4_000);
        let marker = format!("<!-- cachehit:{} -->", "k".repeat(70_000));
        let text = comment_body(&report, &marker, Some(&note));
        // The marker itself is over the limit: nothing else can fit, and nothing wraps.
        assert!(text.starts_with(&marker));
        let text = comment_body(&report, "<!-- cachehit:default -->", Some(&note));
        assert!(
            text.chars().count() <= COMMENT_LIMIT_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.contains("2666/4000 steps cached"), "summary kept");
    }
}
