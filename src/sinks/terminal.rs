//! The command line's sinks: the report on standard output (or in `--output FILE`), and
//! warnings, errors and tripped gates on standard error.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::render;
use crate::report::Report;
use crate::sinks::SinkError;

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Json,
}

/// Writes the report to `output`, else to standard output: as `format`, else as a table on a
/// terminal and JSON otherwise.
pub fn write_report(
    report: &Report,
    format: Option<Format>,
    output: Option<&Path>,
) -> Result<(), SinkError> {
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let format = format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Json
    });
    // Made inert for the Actions runner: the report may be printed in a step's log.
    let text = match format {
        Format::Table => {
            let width = to_terminal.then(terminal_width).flatten();
            render::table::render(report, width)
        }
        Format::Markdown => render::inert::lines(&render::markdown::render(report)),
        Format::Json => render::inert::json(&render::json::render(report)),
    };
    write_text("report", &text, output)
}

/// Text rendered elsewhere (`what`: the audit) to `output`, else to standard output.
pub fn write_text(what: &'static str, text: &str, output: Option<&Path>) -> Result<(), SinkError> {
    match output {
        Some(path) => std::fs::write(path, text).map_err(|source| SinkError::File {
            what,
            path: path.to_path_buf(),
            source,
        }),
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            match stdout.write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(SinkError::Stdout(e)),
                _ => Ok(()),
            }
        }
    }
}

fn terminal_width() -> Option<u16> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}

/// Messages quote build text (step names, errors): inert for the Actions runner.
fn inert(message: &str) -> String {
    render::inert::lines(message)
}

pub fn warning(message: &str) {
    eprintln!("cachehit: warning: {}", inert(message));
}

pub fn error(message: &str) {
    eprintln!("cachehit: error: {}", inert(message));
}

pub fn gate_failed(reason: &str) {
    eprintln!("cachehit: gate failed: {}", inert(reason));
}
