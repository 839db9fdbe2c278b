//! Terminal rendering: the step table within a width, in colour when asked. The text is
//! made inert for the Actions runner (`render::inert`): a step name or build output cannot
//! become a workflow command when the table is printed in a step's log.

use comfy_table::{
    Attribute, Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};

use crate::model::StepStatus;
use crate::render::inert;
use crate::render::{bytes, cache_time, duration, status_label, summary_line, title, why};
use crate::report::Report;

const INSTRUCTION_WIDTH: usize = 60;

/// How the table is laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// Columns the table fits in (cells wrap); `None`: as wide as its content, or the
    /// terminal's width when standard output is one.
    pub width: Option<u16>,
    /// Statuses in colour and a bold header (ANSI escapes).
    pub colour: bool,
}

/// The report as plain text, the table within `width` columns.
pub fn render(report: &Report, width: Option<u16>) -> String {
    render_styled(
        report,
        &TableStyle {
            width,
            colour: false,
        },
    )
}

/// The colour a status reads in: green for what the cache served, yellow for what was
/// rebuilt, red for a failure, grey for what did not run.
fn status_colour(status: StepStatus) -> Option<Color> {
    match status {
        StepStatus::Cached => Some(Color::Green),
        StepStatus::Rebuilt => Some(Color::Yellow),
        StepStatus::Failed => Some(Color::Red),
        StepStatus::Canceled | StepStatus::NotRun | StepStatus::Incomplete => Some(Color::DarkGrey),
        StepStatus::Base | StepStatus::Shared | StepStatus::Unknown => None,
    }
}

pub fn render_styled(report: &Report, style: &TableStyle) -> String {
    let width = style.width;
    let mut out = String::new();
    let info = &report.build.build;
    out.push_str(&format!("{} — {:?}\n", title(report), info.status).to_lowercase());
    out.push_str(&summary_line(report));
    out.push('\n');
    if let Some(error) = &info.error {
        out.push_str(&format!("error: {error}\n"));
    }
    let mut out = inert::lines(&wrap_lines(&out, width));
    if !report.build.steps.is_empty() {
        let mut table = Table::new();
        table.load_style(UTF8_FULL_CONDENSED);
        table.set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(width) = width {
            table.set_width(width);
        }
        // Colour is decided by the caller (a terminal, NO_COLOR), never by the table.
        if style.colour {
            table.enforce_styling();
        } else if width.is_some() {
            table.force_no_tty();
        }
        let compared = report.build.steps.iter().any(|s| s.transition.is_some());
        let mut header = vec!["step", "instruction", "status", "time", "layer"];
        if compared {
            header.push("before");
        }
        header.push("why");
        table.set_header(
            header
                .into_iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
        for step in &report.build.steps {
            let mut status = Cell::new(status_label(step));
            if let Some(colour) = status_colour(step.status) {
                status = status.fg(colour);
            }
            let mut row = vec![
                Cell::new(inert::lines(&step.position_label())),
                Cell::new(inert::lines(&shorten(&step.instruction, INSTRUCTION_WIDTH))),
                status,
                Cell::new(step.duration_ms.map(duration).unwrap_or_default()),
                Cell::new(step.layer_bytes.map(bytes).unwrap_or_default()),
            ];
            if compared {
                row.push(Cell::new(
                    step.baseline_status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "new".to_string()),
                ));
            }
            row.push(Cell::new(inert::lines(&shorten(&why(step), 80))));
            table.add_row(row);
        }
        // The cells' build text is inert already; the colour escapes are the table's own.
        let table = table.to_string();
        out.push_str(&if style.colour {
            inert::coloured_lines(&table)
        } else {
            inert::lines(&table)
        });
        out.push('\n');
        if report.build.steps.iter().any(|s| s.status_inferred) {
            out.push_str("* inferred: the log shows layer downloads but no CACHED line (a remote-cache hit)\n");
        }
    }
    // Free text wraps to the width too, indented under its first line.
    let mut after = String::new();
    for import in &report.build.cache_imports {
        let outcome = match (&import.error, import.delivered) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(true)) => "delivered".to_string(),
            (None, Some(false)) => "imported, but served no step".to_string(),
            (None, None) => format!("{:?}", import.status).to_lowercase(),
        };
        after.push_str(&format!("cache import  {}  {outcome}\n", import.reference));
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
        after.push_str(&line);
        after.push('\n');
    }
    if let Some(time) = cache_time(report) {
        after.push_str(&format!("cache time    {time}\n"));
    }
    for d in &report.diagnoses {
        let at = d
            .dockerfile_line
            .map(|l| format!(" (Dockerfile line {l})"))
            .unwrap_or_default();
        after.push_str(&format!(
            "\n{}: {}{at}\n  fix: {}\n",
            d.severity, d.message, d.fix
        ));
    }
    if let Some(removed) = report.comparison.as_ref().map(|c| &c.removed_steps)
        && !removed.is_empty()
    {
        after.push_str(&format!(
            "\nremoved since the baseline: {}\n",
            removed.len()
        ));
        for step in removed {
            after.push_str(&format!("  - {}\n", step.name));
        }
    }
    for problem in &report.build.problems {
        after.push_str(&format!("note: {}: {}\n", problem.source, problem.message));
    }
    for w in &report.build.warnings {
        match crate::render::warning_location(w) {
            Some(at) => after.push_str(&format!("warning ({at}): {}\n", w.message)),
            None => after.push_str(&format!("warning: {}\n", w.message)),
        }
    }
    out.push_str(&inert::lines(&wrap_lines(&after, width)));
    out
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Each line of `text` cut at spaces to fit `width` columns; continuation lines are indented
/// two spaces more than the line they continue. A word longer than the width stays whole.
pub(crate) fn wrap_lines(text: &str, width: Option<u16>) -> String {
    let Some(width) = width.map(usize::from) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (line, newline) = match line.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (line, ""),
        };
        if line.chars().count() <= width {
            out.push_str(line);
            out.push_str(newline);
            continue;
        }
        let indent = line.len() - line.trim_start().len() + 2;
        let mut column = 0;
        let words = line.trim_start().split(' ').filter(|w| !w.is_empty());
        for (i, word) in words.enumerate() {
            let len = word.chars().count();
            if i == 0 {
                out.push_str(&line[..indent - 2]);
                column = indent - 2;
            } else if column + 1 + len > width {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(' ');
                column += 1;
            }
            out.push_str(word);
            column += len;
        }
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, Step, StepKind};
    use crate::render::inert::is_command;

    #[test]
    fn a_table_in_colour_keeps_its_colours_and_no_workflow_command() {
        let step = |name: &str, status| Step {
            name: name.to_string(),
            instruction: name.to_string(),
            stage: Some("::stage\x1b[8m".into()),
            kind: StepKind::Run,
            status,
            ..Step::default()
        };
        let report = crate::analysis::analyze(Build {
            steps: vec![
                step("RUN a\r::error::spoofed ##[x]", StepStatus::Rebuilt),
                step("RUN b \x1b[8m::add-mask::y", StepStatus::Cached),
            ],
            ..Build::default()
        });
        let text = render_styled(
            &report,
            &TableStyle {
                width: Some(100),
                colour: true,
            },
        );
        for line in text.split(['\r', '\n']) {
            assert!(!is_command(line), "{line:?}");
        }
        // The table's own colours stay; the build's escapes do not.
        assert!(text.contains("\x1b["), "{text:?}");
        assert!(!text.contains("\x1b[8m"), "{text:?}");
    }

    #[test]
    fn long_lines_wrap_with_an_indent() {
        let text = "short\n  fix: one two three four five six\n";
        assert_eq!(
            wrap_lines(text, Some(16)),
            "short\n  fix: one two\n    three four\n    five six\n"
        );
        assert_eq!(wrap_lines(text, None), text);
        assert_eq!(
            wrap_lines("averyveryverylongword x", Some(5)),
            "averyveryverylongword\n  x"
        );
    }
}
