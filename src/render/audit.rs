//! The audit over several releases as GitHub markdown.

use crate::analysis::audit::Audit;
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
