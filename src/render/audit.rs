//! The audit over several releases: GitHub markdown, or a table for the terminal.

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::analysis::audit::{Audit, ReleaseRow};
use crate::render::table::TableStyle;
use crate::render::{
    self,
    markdown::{code_span, escape_text, with_code_spans},
};

const BAR_WIDTH: usize = 30;

/// The audit as GitHub markdown: a table, a bar chart of hit ratios, and recurring diagnoses.
pub fn render_markdown(audit: &Audit) -> String {
    let mut out = String::from("## cachehit audit\n\n");
    out.push_str(
        "| Release | Cache hit ratio | Cached / total | Rebuilt steps | Pull cost | Build time |\n",
    );
    out.push_str("|---|---:|---:|---|---:|---:|\n");
    for row in &audit.rows {
        let rebuilt = if row.rebuilt_steps.is_empty() {
            "none".to_string()
        } else {
            row.rebuilt_steps
                .iter()
                .map(|s| code_span(s))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} |\n",
            escape_text(&row.label),
            row.cache_hit_ratio.map_or("n/a".into(), render::percent),
            row.steps_cached,
            row.steps_total,
            rebuilt.replace('|', "\\|"),
            row.pull_bytes.map_or("n/a".into(), render::bytes),
            row.duration_ms.map_or("n/a".into(), render::duration),
        ));
    }
    // A text chart renders the same in a terminal, a PR comment and a job summary.
    out.push_str("\nCache hit ratio per release:\n\n```text\n");
    let label_width = audit
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    for row in &audit.rows {
        // Inside a fenced block: a line of backticks could close it early.
        let label = row.label.replace('`', "'").replace(['\n', '\r'], " ");
        match row.cache_hit_ratio {
            Some(ratio) => {
                let filled = (ratio.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
                out.push_str(&format!(
                    "{label:<label_width$} {}{} {}\n",
                    "█".repeat(filled),
                    "░".repeat(BAR_WIDTH - filled),
                    render::percent(ratio)
                ));
            }
            None => out.push_str(&format!("{label:<label_width$} (no finished step)\n")),
        }
    }
    out.push_str("```\n\n");
    if audit.persistent.is_empty() {
        out.push_str("No diagnosis came back in consecutive releases.\n");
        return out;
    }
    out.push_str("### Problems that persist across releases\n\n");
    for found in &audit.persistent {
        let step = found
            .step
            .as_deref()
            .map(|s| format!(" on {}", code_span(s)))
            .unwrap_or_default();
        let wasted = found
            .wasted_ms
            .map(|ms| format!(", {} of rebuilds", render::duration(ms)))
            .unwrap_or_default();
        out.push_str(&format!(
            "- **{}** ({}){step}: in {} consecutive releases ({}){wasted}. {} Fix: {}\n",
            escape_text(found.kind.as_str()),
            escape_text(found.severity.as_str()),
            found.releases.len(),
            escape_text(&found.releases.join(", ")),
            with_code_spans(&found.message),
            with_code_spans(&found.fix),
        ));
    }
    out
}

/// The rebuilt steps of a row, one per line, or `none`.
fn rebuilt_lines(row: &ReleaseRow) -> String {
    if row.rebuilt_steps.is_empty() {
        return "none".to_string();
    }
    row.rebuilt_steps
        .iter()
        .map(|s| s.replace(['\n', '\r'], " "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The audit for a terminal: a table of the releases, then the problems that persist.
pub fn render_table(audit: &Audit, style: &TableStyle) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(width) = style.width {
        table.set_width(width);
    }
    if style.colour {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header([
        "release",
        "hit ratio",
        "cached / total",
        "rebuilt steps",
        "pull cost",
        "build time",
    ]);
    for row in &audit.rows {
        let line = |text: &str| text.replace(['\n', '\r'], " ");
        table.add_row([
            Cell::new(line(&row.label)),
            Cell::new(row.cache_hit_ratio.map_or("n/a".into(), render::percent))
                .set_alignment(CellAlignment::Right),
            Cell::new(format!("{}/{}", row.steps_cached, row.steps_total))
                .set_alignment(CellAlignment::Right),
            Cell::new(rebuilt_lines(row)),
            Cell::new(row.pull_bytes.map_or("n/a".into(), render::bytes))
                .set_alignment(CellAlignment::Right),
            Cell::new(row.duration_ms.map_or("n/a".into(), render::duration))
                .set_alignment(CellAlignment::Right),
        ]);
    }
    let mut out = String::from("cachehit audit\n");
    out.push_str(&table.to_string());
    out.push('\n');
    if audit.persistent.is_empty() {
        out.push_str("No diagnosis came back in consecutive releases.\n");
        return out;
    }
    out.push_str("\nProblems that persist across releases:\n");
    for found in &audit.persistent {
        let step = found
            .step
            .as_deref()
            .map(|s| format!(" on {s}"))
            .unwrap_or_default();
        let wasted = found
            .wasted_ms
            .map(|ms| format!(", {} of rebuilds", render::duration(ms)))
            .unwrap_or_default();
        out.push_str(&format!(
            "- {} ({}){step}: in {} consecutive releases ({}){wasted}.\n  {}\n  fix: {}\n",
            found.kind.as_str(),
            found.severity.as_str(),
            found.releases.len(),
            found.releases.join(", "),
            found.message,
            found.fix,
        ));
    }
    crate::render::table::wrap_lines(&out, style.width)
}
