//! GitHub-flavoured markdown: job summaries and pull-request comments.
//!
//! Everything that comes from the build (step names, commands, errors, refs) goes through
//! `escape_text`, so a build cannot break the table, inject HTML, notify people, reference
//! issues, make links or fake the comment marker. Text is normalised first (invisible and
//! format characters dropped: [`is_invisible`]) and escaped after, so no invisible character
//! can hide a pattern from the escaping and appear again once dropped.

use crate::model::Transition;
use crate::render::{bytes, cache_time, duration, percent, status_label, summary_line, title, why};
use crate::report::{Report, Severity};

/// A zero-width space as an entity: it breaks a mention, a reference or an autolink where
/// it stands, and is not there to read.
const BREAK: &str = "&#8203;";

/// Characters that are not seen: Unicode's Default_Ignorable_Code_Point, format (Cf) and
/// control (Cc) characters (Unicode 15): zero-width spaces and joiners, bidirectional
/// controls, the soft hyphen, the Arabic letter mark, Hangul fillers, variation selectors,
/// tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x0..=0x1F
            | 0x7F..=0x9F
            | 0xAD
            | 0x34F
            | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// The text as it is seen: line breaks and tabs (and the line and paragraph separators) as
/// one space, every other invisible character dropped.
pub fn visible(text: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}') {
            if out.last() != Some(&' ') {
                out.push(' ');
            }
        } else if !is_invisible(c) {
            out.push(c);
        }
    }
    out
}

/// Escapes text for a markdown table cell or paragraph.
pub fn escape_text(text: &str) -> String {
    let chars = visible(text);
    let mut out = String::with_capacity(text.len() + 16);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
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
            // A mention (`@team`, an e-mail autolink).
            '@' => {
                out.push('@');
                out.push_str(BREAK);
            }
            // An issue reference, of this repository or another (`#12`, `owner/repo#12`).
            '#' if next.is_some_and(char::is_alphanumeric) => {
                out.push('#');
                out.push_str(BREAK);
            }
            // The other reference form, `GH-12`.
            '-' if ends_with_ignoring_case(&out, "gh")
                && next.is_some_and(|n| n.is_ascii_digit()) =>
            {
                out.push('-');
                out.push_str(BREAK);
            }
            // An autolinked URL (`https://`, which would also reference issues by address).
            ':' if next == Some('/') && chars.get(i + 2) == Some(&'/') => {
                out.push(':');
                out.push_str(BREAK);
            }
            // An autolinked `www.` address.
            '.' if ends_with_ignoring_case(&out, "www") => {
                out.push_str(BREAK);
                out.push('.');
            }
            c => out.push(c),
        }
    }
    out
}

fn ends_with_ignoring_case(text: &str, tail: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= tail.len()
        && bytes[bytes.len() - tail.len()..].eq_ignore_ascii_case(tail.as_bytes())
}

/// The whole report as markdown.
pub fn render(report: &Report) -> String {
    render_within(report, usize::MAX)
}

/// The report within `budget` characters: the step table is cut first (with a line saying
/// how many steps were left out), never the summary.
pub fn render_within(report: &Report, budget: usize) -> String {
    let total = report.build.steps.len();
    let full = compose(report, total).text;
    if full.chars().count() <= budget {
        return full;
    }
    // Find the largest number of rows that fits.
    let (mut low, mut high) = (0usize, total);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if compose(report, mid).text.chars().count() <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let composed = compose(report, low);
    if composed.text.chars().count() <= budget {
        return composed.text;
    }
    // Even without rows it does not fit: keep the head (summary first), cut the rest.
    let closing = "\n\n… (truncated to fit)\n\n</details>\n";
    let kept = budget.saturating_sub(closing.chars().count());
    let mut cut: String = composed.text.chars().take(kept).collect();
    // Whether the cut falls inside the details this renderer opened; text of the build
    // (a `</details>` in a code span) does not count.
    let open_details = composed.details_at.is_some_and(|at| kept > at);
    cut.push_str(if open_details {
        closing
    } else {
        "\n\n… (truncated to fit)\n"
    });
    cut
}

/// The rendered report, and where (in characters) its `<details>` opens.
struct Composed {
    text: String,
    details_at: Option<usize>,
}

fn compose(report: &Report, rows: usize) -> Composed {
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
    let details = details(report);
    let details_at = (!details.is_empty()).then(|| out.chars().count());
    out.push_str(&details);
    Composed {
        text: out,
        details_at,
    }
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

/// Text for inside a code span (markup, HTML and mentions are inert there): as seen (no
/// invisible characters, no line breaks), no backticks, which would end it, no comment
/// opener that could pass for a marker, and no `##[` the runner would take for a command
/// when the markdown is printed in a step's log.
fn code(text: &str) -> String {
    visible(text)
        .into_iter()
        .map(|c| if c == '`' { '\'' } else { c })
        .collect::<String>()
        .replace("<!--", "<!-\u{200b}-")
        .replace("##[", "##\u{200b}[")
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

    /// What GitHub would make live in escaped text: the zero-width space entity breaks a
    /// pattern where it stands.
    fn live_patterns(escaped: &str) -> Vec<String> {
        let text = escaped.replace(BREAK, "\u{200b}");
        let chars: Vec<char> = text.chars().collect();
        let mut found = Vec::new();
        for (i, &c) in chars.iter().enumerate() {
            let next = chars.get(i + 1).copied();
            let before: String = chars[i.saturating_sub(3)..i].iter().collect();
            if c == '@' && next != Some('\u{200b}') {
                found.push(format!("mention at {i}"));
            }
            if c == '#' && next.is_some_and(char::is_alphanumeric) {
                found.push(format!("reference at {i}"));
            }
            if c == '-'
                && before.to_ascii_lowercase().ends_with("gh")
                && next.is_some_and(|n| n.is_ascii_digit())
            {
                found.push(format!("GH- reference at {i}"));
            }
            if c == ':' && next == Some('/') && chars.get(i + 2) == Some(&'/') {
                found.push(format!("URL at {i}"));
            }
            if c == '.' && before.eq_ignore_ascii_case("www") {
                found.push(format!("www. at {i}"));
            }
            if c == '<' || (c != '\u{200b}' && is_invisible(c)) {
                found.push(format!("{c:?} at {i}"));
            }
        }
        found
    }

    #[test]
    fn invisible_characters_cannot_hide_a_reference_mention_or_link() {
        let invisible = [
            "\u{200b}",
            "\u{200c}",
            "\u{200d}",
            "\u{2060}",
            "\u{feff}",
            "\u{061c}",
            "\u{00ad}",
            "\u{e0041}",
            "\u{e007f}",
            "\u{3164}",
            "\u{ffa0}",
            "\u{115f}",
            "\u{202e}",
            "\u{2066}",
            "\u{fe0f}",
            "\u{034f}",
            "\u{180e}",
            "\u{0007}",
            "\u{001b}",
            "\u{0085}",
        ];
        for hidden in invisible {
            for spoof in [
                format!("#{hidden}12"),
                format!("GH-{hidden}12"),
                format!("G{hidden}H-12"),
                format!("owner/repo#{hidden}12"),
                format!("@{hidden}team"),
                format!("https:{hidden}//evil.example/o/r/issues/1"),
                format!("https:/{hidden}/evil.example"),
                format!("www{hidden}.evil.example"),
                format!("w{hidden}ww.evil.example"),
                format!("<{hidden}img src=x>"),
            ] {
                let escaped = escape_text(&spoof);
                assert_eq!(
                    live_patterns(&escaped),
                    Vec::<String>::new(),
                    "{spoof:?} -> {escaped}"
                );
            }
        }
        // Plain forms too, and a bare `www.`.
        for plain in [
            "#12",
            "gh-12",
            "o/r#1",
            "@me",
            "http://x.example",
            "WWW.x.example",
            "a www. b",
        ] {
            let escaped = escape_text(plain);
            assert!(live_patterns(&escaped).is_empty(), "{plain} -> {escaped}");
        }
        // The visible text is kept.
        assert_eq!(
            escape_text("see www.example.com"),
            format!("see www{BREAK}.example.com")
        );
        assert_eq!(escape_text("a\u{00ad}b\u{e0041}c"), "abc");
    }

    #[test]
    fn a_closing_details_tag_in_a_code_span_does_not_close_the_real_one() {
        let build = crate::model::Build {
            cache_imports: (0..50)
                .map(|i| crate::model::CacheImport {
                    // Build text: a closing tag inside a code span, ahead of the cut.
                    reference: format!("registry.example/cache:{i}</details>"),
                    status: crate::model::OutcomeStatus::Ok,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let report = crate::analysis::analyze(build);
        let full = render(&report);
        let opened = full.find("<details>").expect("details");
        // Cut after several imports, each carrying `</details>` in its code span.
        let budget = full[..opened + 600].chars().count();
        let cut = render_within(&report, budget);
        assert!(
            cut.matches("`registry.example/cache:").count() >= 3,
            "{cut}"
        );
        assert!(cut.ends_with("\n\n</details>\n"), "{cut}");
        assert!(cut.chars().count() <= budget);
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
