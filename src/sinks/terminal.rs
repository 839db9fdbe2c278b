//! The command line's sinks: the report on standard output (or in `--output FILE`), and
//! warnings, errors and tripped gates on standard error.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::render;
use crate::render::table::TableStyle;
use crate::report::Report;
use crate::sinks::SinkError;

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Json,
}

/// Where the report goes and how it looks there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    pub format: Format,
    /// Standard output (as opposed to `--output FILE`).
    pub stdout: bool,
    pub table: TableStyle,
}

impl Destination {
    /// `format`, else a table on a terminal and JSON otherwise. A table fits the terminal
    /// (or `COLUMNS`, or 100 columns when piped or written to a file) and is in colour only on
    /// a terminal, unless `NO_COLOR` is set or `TERM` is `dumb`.
    pub fn resolve(format: Option<Format>, output: Option<&Path>) -> Destination {
        let to_terminal = output.is_none() && std::io::stdout().is_terminal();
        let format = format.unwrap_or(if to_terminal {
            Format::Table
        } else {
            Format::Json
        });
        Destination {
            format,
            stdout: output.is_none(),
            table: TableStyle {
                width: Some(table_width(to_terminal, env("COLUMNS").as_deref())),
                colour: to_terminal && colour_allowed(env("NO_COLOR"), env("TERM")),
            },
        }
    }

    /// Whether the report's own problems show where the user reads warnings: a table or
    /// markdown on standard output lists them, so they are not repeated on standard error.
    pub fn shows_problems(&self) -> bool {
        self.stdout && self.format != Format::Json
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Columns when piped or written to a file, unless `COLUMNS` says otherwise.
const DEFAULT_WIDTH: u16 = 100;
/// Narrower than this, a table of six columns is unreadable whatever `COLUMNS` says.
const MIN_WIDTH: u16 = 40;

/// `COLUMNS` when it is a usable number, else the terminal's width, else 100.
fn table_width(to_terminal: bool, columns: Option<&str>) -> u16 {
    let from_env = columns
        .and_then(|c| c.trim().parse::<u16>().ok())
        .map(|c| c.max(MIN_WIDTH));
    let from_terminal = || {
        to_terminal
            .then(|| comfy_table::Table::new().width())
            .flatten()
            .filter(|w| *w >= MIN_WIDTH)
    };
    from_env.or_else(from_terminal).unwrap_or(DEFAULT_WIDTH)
}

/// <https://no-color.org>: any non-empty `NO_COLOR` turns colour off; so does a dumb terminal.
fn colour_allowed(no_color: Option<String>, term: Option<String>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.as_deref() != Some("dumb")
}

/// Writes the report where `destination` says (`output`, else standard output).
pub fn write_report(
    report: &Report,
    destination: &Destination,
    output: Option<&Path>,
) -> Result<(), SinkError> {
    // Made inert for the Actions runner: the report may be printed in a step's log (the
    // table makes its own text inert, keeping its colours).
    let text = match destination.format {
        Format::Table => render::table::render_styled(report, &destination.table),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_and_colour_follow_the_environment() {
        assert_eq!(table_width(false, None), 100);
        assert_eq!(table_width(false, Some("72")), 72);
        assert_eq!(table_width(true, Some(" 132 ")), 132);
        assert_eq!(table_width(false, Some("10")), MIN_WIDTH);
        assert_eq!(table_width(false, Some("wide")), 100);
        assert!(colour_allowed(None, Some("xterm-256color".into())));
        assert!(colour_allowed(Some(String::new()), None));
        assert!(!colour_allowed(Some("1".into()), None));
        assert!(!colour_allowed(None, Some("dumb".into())));
    }
}
