//! GitHub-flavoured markdown: job summaries and pull-request comments.
//!
//! Everything that comes from the build (step names, commands, errors, refs) goes through
//! `escape_text`, so a build cannot break the table, inject HTML, notify people or fake the
//! comment marker.

use crate::model::Transition;
use crate::render::{bytes, cache_time, duration, percent, status_label, summary_line, title, why};
use crate::report::{Report, Severity};

/// Escapes text for a markdown table cell or paragraph.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => {
                if previous != Some(' ') {
                    out.push(' ');
                }
            }
            // A zero-width space after `@` / `#` stops mentions and issue references, after
            // `GH-` the other reference form, and after `:` in `://` autolinked URLs (which
            // would cross-reference issues by their address).
            '@' => out.push_str("@&#8203;"),
            '#' if chars.peek().is_some_and(|n| n.is_ascii_alphanumeric()) => {
                out.push_str("#&#8203;")
            }
            '-' if ends_with_gh(&out) && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("-&#8203;")
            }
            ':' if chars.clone().take(2).eq("//".chars()) => out.push_str(":&#8203;"),
            // Bidirectional overrides and invisible characters could make the text read
            // differently from what it is.
            c if c.is_control() || is_invisible_format(c) => {}
            c => out.push(c),
        }
        previous = Some(if c.is_whitespace() { ' ' } else { c });
    }
    out
}

fn ends_with_gh(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && bytes[bytes.len() - 2..].eq_ignore_ascii_case(b"GH")
}

fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The whole report as markdown.
pub fn render(report: &Report) -> String {
    render_within(report, usize::MAX)
}

/// The report within `budget` characters: the step table is cut first (with a line saying
/// how many steps were left out), never the summary.
pub fn render_within(report: &Report, budget: usize) -> String {
    let total = report.build.steps.len();
    let full = compose(report, total);
    if full.chars().count() <= budget {
        return full;
    }
    // Find the largest number of rows that fits.
    let (mut low, mut high) = (0usize, total);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if compose(report, mid).chars().count() <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let text = compose(report, low);
    if text.chars().count() <= budget {
        return text;
    }
    // Even without rows it does not fit: keep the head (summary first), cut the rest.
    let closing = "\n\n… (truncated to fit)\n\n</details>\n";
    let mut cut: String = text
        .chars()
        .take(budget.saturating_sub(closing.chars().count()))
        .collect();
    let open_details = cut.matches("<details>").count() > cut.matches("</details>").count();
    cut.push_str(if open_details {
        closing
    } else {
        "\n\n… (truncated to fit)\n"
    });
    cut
}

fn compose(report: &Report, rows: usize) -> String {
    let mut out = String::new();
    let info = &report.build.build;
    let status = match info.status {
        crate::model::BuildStatus::Failed => " ❌ build failed",
        crate::model::BuildStatus::Canceled => " ⚠️ build canceled",
        _ => "",
    };
    out.push_str(&format!(
        "### cachehit: {}{status}\n\n**{}**\n\n",
        escape_text(&title(report)),
        escape_text(&summary_line(report))
    ));
    if let Some(error) = &info.error {
        out.push_str(&format!("Error: {}\n\n", escape_text(error)));
    }
    if !report.diagnoses.is_empty() {
        out.push_str("#### Findings\n\n");
        for d in &report.diagnoses {
            let at = d
                .dockerfile_line
                .map(|l| format!(" (Dockerfile line {l})"))
                .unwrap_or_default();
            let icon = match d.severity {
                Severity::Error => "🔴",
                Severity::Warning => "🟠",
                Severity::Notice => "🔵",
            };
            out.push_str(&format!(
                "- {icon} **{}**{at}: {}\n  - Fix: {}\n",
                escape_text(d.kind.as_str()),
                with_code_spans(&d.message),
                with_code_spans(&d.fix)
            ));
        }
        out.push('\n');
    }
    let steps = &report.build.steps;
    if !steps.is_empty() {
        let compared = steps.iter().any(|s| s.transition.is_some());
        out.push_str("| step | instruction | status | time | layer |");
        out.push_str(if compared {
            " previous | why |\n"
        } else {
            " why |\n"
        });
        out.push_str("|---|---|---|--:|--:|");
        out.push_str(if compared { "---|---|\n" } else { "---|\n" });
        for step in steps.iter().take(rows) {
            let status = match step.transition {
                Some(Transition::Regressed) => format!("⚠️ {}", status_label(step)),
                _ => status_label(step),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |",
                escape_text(&step.position_label()),
                escape_text(&shorten(&step.instruction, 80)),
                escape_text(&status),
                step.duration_ms.map(duration).unwrap_or_default(),
                step.layer_bytes.map(bytes).unwrap_or_default(),
            ));
            if compared {
                let before = step
                    .baseline_status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "new".to_string());
                out.push_str(&format!(" {before} |"));
            }
            out.push_str(&format!(" {} |\n", escape_text(&shorten(&why(step), 120))));
        }
        if rows < steps.len() {
            out.push_str(&format!(
                "\n… {} more steps not shown (see the JSON report).\n",
                steps.len() - rows
            ));
        }
        if steps.iter().any(|s| s.status_inferred) {
            out.push_str("\n\\* inferred: the log shows layer downloads but no CACHED line (a remote-cache hit).\n");
        }
        out.push('\n');
    }
    out.push_str(&details(report));
    out
}

fn details(report: &Report) -> String {
    let mut body = String::new();
    for import in &report.build.cache_imports {
        let outcome = match (&import.error, import.delivered) {
            (Some(e), _) => format!("failed: {}", escape_text(e)),
            (None, Some(true)) => "delivered".to_string(),
            (None, Some(false)) => "imported, but served no step".to_string(),
            (None, None) => "outcome unknown".to_string(),
        };
        body.push_str(&format!(
            "- cache import `{}`: {outcome}\n",
            code(&import.reference)
        ));
    }
    for export in &report.build.cache_exports {
        let target = export.reference.as_deref().unwrap_or(&export.name);
        let mut line = format!("- cache export `{}`", code(target));
        if let Some(mode) = &export.mode {
            line.push_str(&format!(" (mode={})", escape_text(mode)));
        }
        if let Some(n) = export.layers_written {
            line.push_str(&format!(": {n} layers written"));
        }
        if let Some(e) = &export.error {
            line.push_str(&format!(": failed: {}", escape_text(e)));
        }
        body.push_str(&line);
        body.push('\n');
    }
    if let Some(time) = cache_time(report) {
        body.push_str(&format!("- cache time: {time}\n"));
    }
    if let Some(c) = &report.comparison {
        body.push_str(&format!("- compared with `{}`", code(&c.baseline_source)));
        if let Some(points) = c.hit_ratio_change_points {
            body.push_str(&format!(": hit ratio {points:+.1} points"));
        }
        body.push('\n');
        for cost in &c.pull_cost {
            body.push_str(&format!(
                "- upgrade pull{}: {} in {} new layers ({} reused)\n",
                cost.platform
                    .as_deref()
                    .map(|p| format!(" ({})", escape_text(p)))
                    .unwrap_or_default(),
                bytes(cost.new_layer_bytes),
                cost.new_layers,
                cost.reused_layers
            ));
        }
        for step in &c.removed_steps {
            body.push_str(&format!("- removed: {}\n", escape_text(&step.name)));
        }
    }
    if let Some(ratio) = report.summary.cache_hit_ratio {
        body.push_str(&format!("- cache hit ratio: {}\n", percent(ratio)));
    }
    if let Some(b) = report.summary.image_bytes {
        body.push_str(&format!("- image size (compressed): {}\n", bytes(b)));
    }
    if let Some(ms) = report.summary.duration_ms {
        body.push_str(&format!("- build time: {}\n", duration(ms)));
    }
    for w in &report.build.warnings {
        let at = crate::render::warning_location(w)
            .map(|at| format!(" ({})", escape_text(&at)))
            .unwrap_or_default();
        body.push_str(&format!(
            "- build warning{at}: {}\n",
            escape_text(&w.message)
        ));
    }
    for p in &report.build.problems {
        body.push_str(&format!(
            "- note: {}: {}\n",
            escape_text(&p.source),
            escape_text(&p.message)
        ));
    }
    if body.is_empty() {
        return String::new();
    }
    format!(
        "<details><summary>Cache imports, exports and details</summary>\n\n{body}\n</details>\n"
    )
}

/// Findings quote steps and commands in backticks: those parts become code spans and the
/// rest is escaped. Text with an unpaired backtick is escaped whole, so a backtick from the
/// build cannot turn escaped text into markup.
pub fn with_code_spans(text: &str) -> String {
    if text.matches('`').count() % 2 != 0 {
        return escape_text(text);
    }
    text.split('`')
        .enumerate()
        .map(|(i, part)| match (i % 2, part.is_empty()) {
            (0, _) => escape_text(part),
            (_, true) => String::new(),
            (_, false) => format!("`{}`", code(part)),
        })
        .collect()
}

/// Build text (a step name, a ref) as one inline code span that cannot break a table row.
pub fn code_span(text: &str) -> String {
    format!("`{}`", code(text).replace('|', "\\|"))
}

/// Text for inside a code span (markup, HTML and mentions are inert there): no backticks,
/// which would end it, no line breaks, and no comment opener that could pass for a marker.
fn code(text: &str) -> String {
    text.replace('`', "'")
        .replace(['\n', '\r'], " ")
        .replace("<!--", "<!-\u{200b}-")
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_break_out() {
        let escaped = escape_text(
            "RUN a | b <script>x</script> @org/team #12 <!-- cachehit:default --> `x`\nnext",
        );
        assert!(!escaped.contains('<'), "{escaped}");
        assert!(!escaped.contains('\n'));
        assert!(!escaped.contains(" | "), "{escaped}");
        assert!(escaped.contains("@&#8203;org"));
        assert!(escaped.contains("#&#8203;12"));
        assert!(!escaped.contains("<!--"));
        assert!(escaped.contains("\\`x\\`"));
    }

    #[test]
    fn a_hard_cut_closes_the_details_it_opened() {
        let build = crate::model::Build {
            cache_imports: (0..50)
                .map(|i| crate::model::CacheImport {
                    reference: format!("registry.example/cache:{i}"),
                    status: crate::model::OutcomeStatus::Ok,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let report = crate::analysis::analyze(build);
        let full = render(&report);
        let opened = full.find("<details>").expect("details") + 200;
        let budget = full[..opened].chars().count();
        let cut = render_within(&report, budget);
        assert!(cut.chars().count() <= budget, "{cut}");
        assert!(cut.contains("truncated to fit"), "{cut}");
        assert_eq!(
            cut.matches("<details>").count(),
            cut.matches("</details>").count(),
            "{cut}"
        );
    }

    #[test]
    fn references_links_and_invisible_characters_are_neutralized() {
        let escaped = escape_text(
            "see GH-42 and gh-7, GH-x, https://github.com/o/r/issues/1; a\u{202e}b\u{200b}c; x-1 12:30",
        );
        assert!(escaped.contains("GH-&#8203;42"), "{escaped}");
        assert!(escaped.contains("gh-&#8203;7"), "{escaped}");
        assert!(escaped.contains("GH-x"), "{escaped}");
        assert!(escaped.contains("https:&#8203;//github.com"), "{escaped}");
        assert!(escaped.contains("abc;"), "{escaped}");
        // Ordinary text is left alone.
        assert!(escaped.ends_with("x-1 12:30"), "{escaped}");
    }

    #[test]
    fn findings_keep_their_code_spans_and_escape_the_rest() {
        assert_eq!(
            with_code_spans("`[3/5] COPY . .` copies <all> before `RUN a && b | c`."),
            "`[3/5] COPY . .` copies &lt;all&gt; before `RUN a && b | c`."
        );
        // An unpaired backtick (from an error message, say) makes the whole text plain.
        assert_eq!(
            with_code_spans("`RUN x` failed: unexpected `( @team"),
            "\\`RUN x\\` failed: unexpected \\`( @&#8203;team"
        );
        let spoof = with_code_spans("`<!-- cachehit:default -->` ran");
        assert!(!spoof.contains("<!--"), "{spoof}");
        assert!(spoof.starts_with('`'), "{spoof}");
    }
}
