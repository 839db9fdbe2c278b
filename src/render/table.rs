//! Terminal rendering. The text is made inert for the Actions runner (`render::inert`):
//! a step name or build output cannot become a workflow command when the table is printed
//! in a step's log.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::render::{bytes, cache_time, duration, status_label, summary_line, title, why};
use crate::report::Report;

const INSTRUCTION_WIDTH: usize = 60;

pub fn render(report: &Report, width: Option<u16>) -> String {
    let mut out = String::new();
    let info = &report.build.build;
    out.push_str(&format!("{} — {:?}\n", title(report), info.status).to_lowercase());
    out.push_str(&summary_line(report));
    out.push('\n');
    if let Some(error) = &info.error {
        out.push_str(&format!("error: {error}\n"));
    }
    if !report.build.steps.is_empty() {
        let mut table = Table::new();
        table.load_style(UTF8_FULL_CONDENSED);
        table.set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(width) = width {
            table.set_width(width);
        }
        let compared = report.build.steps.iter().any(|s| s.transition.is_some());
        let mut header = vec!["step", "instruction", "status", "time", "layer"];
        if compared {
            header.push("before");
        }
        header.push("why");
        table.set_header(header);
        for step in &report.build.steps {
            let mut row = vec![
                step.position_label(),
                shorten(&step.instruction, INSTRUCTION_WIDTH),
                status_label(step),
                step.duration_ms.map(duration).unwrap_or_default(),
                step.layer_bytes.map(bytes).unwrap_or_default(),
            ];
            if compared {
                row.push(
                    step.baseline_status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "new".to_string()),
                );
            }
            row.push(shorten(&why(step), 80));
            table.add_row(row);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        if report.build.steps.iter().any(|s| s.status_inferred) {
            out.push_str("* inferred: the log shows layer downloads but no CACHED line (a remote-cache hit)\n");
        }
    }
    for import in &report.build.cache_imports {
        let outcome = match (&import.error, import.delivered) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(true)) => "delivered".to_string(),
            (None, Some(false)) => "imported, but served no step".to_string(),
            (None, None) => format!("{:?}", import.status).to_lowercase(),
        };
        out.push_str(&format!("cache import  {}  {outcome}\n", import.reference));
    }
    for export in &report.build.cache_exports {
        let mut line = format!(
            "cache export  {}",
            export.reference.as_deref().unwrap_or(&export.name)
        );
        if let Some(mode) = &export.mode {
            line.push_str(&format!(" (mode={mode})"));
        }
        if let Some(n) = export.layers_written {
            line.push_str(&format!("  {n} layers written"));
        }
        if let Some(e) = &export.error {
            line.push_str(&format!("  failed: {e}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(time) = cache_time(report) {
        out.push_str(&format!("cache time    {time}\n"));
    }
    for d in &report.diagnoses {
        let at = d
            .dockerfile_line
            .map(|l| format!(" (Dockerfile line {l})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{}: {}{at}\n  fix: {}\n",
            d.severity, d.message, d.fix
        ));
    }
    if let Some(removed) = report.comparison.as_ref().map(|c| &c.removed_steps)
        && !removed.is_empty()
    {
        out.push_str(&format!(
            "\nremoved since the baseline: {}\n",
            removed.len()
        ));
        for step in removed {
            out.push_str(&format!("  - {}\n", step.name));
        }
    }
    for problem in &report.build.problems {
        out.push_str(&format!("note: {}: {}\n", problem.source, problem.message));
    }
    for w in &report.build.warnings {
        match crate::render::warning_location(w) {
            Some(at) => out.push_str(&format!("warning ({at}): {}\n", w.message)),
            None => out.push_str(&format!("warning: {}\n", w.message)),
        }
    }
    crate::render::inert::lines(&out)
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}
