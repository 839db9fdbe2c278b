//! `--progress=tty` output: what a terminal shows of a build, and what people paste from it.
//!
//! A raw capture (`script`, a CI's terminal log) holds every frame the display drew, with
//! cursor movement and colours; a paste holds the final screen only. Either way the final screen
//! (the last `[+] Building ... FINISHED` frame) lists every vertex once:
//! ` => CACHED [2/5] WORKDIR /app  0.0s`, ` => [3/5] COPY . .  0.1s`, ` => ERROR [6/7] RUN ...`,
//! ` => CANCELED ...`, with its status rows (` => => sha256:... 1.08MB / 1.08MB`) and, while a
//! vertex runs, its last output lines (` => => # ...`).
//!
//! The view is coarse: no vertex digests, names cut at the terminal's width, durations in tenths
//! of seconds, and a step served from a remote cache may show `CACHED` in an early frame only
//! (later frames redraw it as it pulls its layers). A step counts as cached when any frame says
//! so; every step read here is marked as coming from the TTY view.

use std::collections::HashSet;
use std::io::BufRead;

use crate::model::{Build, Problem, ProblemKind, StatusSource};
use crate::readers::error::ReadError;
use crate::readers::line_clean;
use crate::readers::plain::{
    conclude_with_client_error, for_each_line, log_output, parse_seconds, status_row,
};
use crate::readers::rawjson::ClientErrorText;
use crate::readers::solve_status::{StatusAccumulator, Vertex, VertexLog, VertexStatus};

const MAX_LINE_BYTES: usize = 64 * 1024;
/// Lines of one frame kept; a final screen of a very large build lists a few thousand.
const MAX_FRAME_LINES: usize = 20_000;
/// Vertices remembered as cached across frames.
const MAX_CACHED_NAMES: usize = 20_000;
const MAX_ERROR_LINES: usize = 200;

/// Whether text (the first lines of a file) looks like TTY progress.
pub fn is_frame_header(line: &[u8]) -> bool {
    line.starts_with(b"[+] Building ")
}

/// A vertex or status row of the display: ` => ...`.
pub fn is_display_row(line: &[u8]) -> bool {
    let start = line.iter().take_while(|b| **b == b' ').count();
    line[start..].starts_with(b"=> ")
}

pub fn read_tty(reader: impl BufRead, source: &str) -> Result<Build, ReadError> {
    let mut screen = Screen::default();
    let read = for_each_line(reader, MAX_LINE_BYTES, |line| screen.line(line));
    if let Err((e, lines)) = read {
        if screen.frame.is_empty() {
            return Err(ReadError::Io {
                path: source.to_string(),
                source: e,
            });
        }
        screen
            .problems
            .push(format!("reading stopped after line {lines}: {e}"));
    }
    if !screen.any_text {
        return Err(ReadError::Empty {
            path: source.to_string(),
        });
    }
    if screen.frame.is_empty() {
        return Err(ReadError::Unrecognized {
            path: source.to_string(),
            detail: if screen.plain_lines {
                "no ` => ...` rows of the TTY progress display found; it holds `#N ...` lines of \
                 a plain log: `--input-format plain` reads it"
                    .to_string()
            } else {
                "no ` => ...` rows of the TTY progress display found".to_string()
            },
        });
    }
    Ok(screen.finish(source))
}

/// What a vertex row's colour says (raw captures only; a paste has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Colour {
    None,
    /// Blue: the vertex completed.
    Done,
    /// Red: it failed.
    Error,
    Other,
}

struct Row {
    text: String,
    colour: Colour,
}

#[derive(Default)]
struct Screen {
    /// Rows of the last frame seen.
    frame: Vec<Row>,
    frame_finished: bool,
    frames: u64,
    /// Vertices marked `CACHED` in any frame (their step label or name).
    cached: HashSet<String>,
    /// Lines after the last frame (the client's error block).
    after_frame: Vec<String>,
    any_text: bool,
    skipped_before: u64,
    /// Lines of a plain log seen (said when no display follows).
    plain_lines: bool,
    problems: Vec<String>,
    scratch: Vec<u8>,
}

impl Screen {
    fn line(&mut self, raw: &[u8]) {
        let raw = line_clean::trim_line_end(raw);
        // What the terminal shows of a line redrawn after `\r` is its last part.
        let raw = match memchr::memrchr(b'\r', raw) {
            Some(cr) => &raw[cr + 1..],
            None => raw,
        };
        let colour = row_colour(raw);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        line_clean::strip_escapes(raw, &mut scratch);
        let line = line_clean::strip_prefixes(&scratch);
        let text = trim_end(line);
        if text.starts_with(b"Script started on ") || text.starts_with(b"Script done on ") {
            // script(1)'s own lines around a capture.
            self.scratch = scratch;
            return;
        }
        if !text.is_empty() {
            self.any_text = true;
        }
        if let Some(pos) = memchr::memmem::find(text, b"[+] Building ") {
            // A new frame (the cursor moved up: the display is drawn again).
            self.frames += 1;
            self.frame.clear();
            self.after_frame.clear();
            let header = &text[pos..];
            self.frame_finished = memchr::memmem::find(header, b"FINISHED").is_some();
        } else if is_display_row(text) {
            if !self.after_frame.is_empty() && self.frames > 0 {
                // Rows after text that is not the display: a paste of several screens.
                self.after_frame.clear();
            }
            if self.frame.len() < MAX_FRAME_LINES {
                let text = String::from_utf8_lossy(text).trim_start().to_string();
                if let Some(rest) = text.strip_prefix("=> CACHED ")
                    && self.cached.len() < MAX_CACHED_NAMES
                {
                    self.cached.insert(vertex_key(strip_duration(rest)));
                }
                self.frame.push(Row { text, colour });
            }
        } else if !text.is_empty() {
            if self.frame.is_empty() {
                self.skipped_before += 1;
                self.plain_lines |= crate::readers::plain::split_vertex_line(text).is_some();
            } else if self.after_frame.len() < MAX_ERROR_LINES {
                self.after_frame
                    .push(String::from_utf8_lossy(text).into_owned());
            }
        }
        self.scratch = scratch;
    }

    fn finish(self, source: &str) -> Build {
        let mut acc = StatusAccumulator::for_plain_logs();
        let mut current: Option<String> = None;
        let mut failed: Vec<(String, String)> = Vec::new();
        for (index, row) in self.frame.iter().enumerate() {
            let Some(rest) = row.text.strip_prefix("=> ") else {
                continue;
            };
            if let Some(sub) = rest.strip_prefix("=> ") {
                let Some(key) = &current else { continue };
                if let Some(output) = sub.strip_prefix('#') {
                    acc.on_log(VertexLog {
                        vertex: key.clone(),
                        data: format!("{}\n", output.trim()).into_bytes(),
                        ..VertexLog::default()
                    });
                } else {
                    let (id, total) = status_row(sub);
                    acc.on_status(VertexStatus {
                        id: id.into_owned(),
                        vertex: key.clone(),
                        total,
                        ..VertexStatus::default()
                    });
                }
                continue;
            }
            let key = format!("tty:{index}");
            let (marker, name) = vertex_marker(rest);
            let (name, duration) = split_duration(name);
            let cached = marker == Marker::Cached || self.cached.contains(&vertex_key(name));
            let error = match marker {
                Marker::Error => Some("failed".to_string()),
                Marker::Canceled => Some("context canceled".to_string()),
                _ if row.colour == Colour::Error => Some("failed".to_string()),
                _ => None,
            };
            if marker == Marker::Error || row.colour == Colour::Error {
                failed.push((key.clone(), name.to_string()));
            }
            acc.on_vertex(Vertex {
                digest: key.clone(),
                name: name.to_string(),
                cached,
                error,
                ..Vertex::default()
            });
            let completed = self.frame_finished
                || row.colour == Colour::Done
                || matches!(marker, Marker::Cached | Marker::Error);
            acc.mark_progress(&key, true, completed);
            if let Some(ms) = duration.and_then(parse_seconds) {
                acc.set_stated_duration(&key, ms);
            }
            current = Some(key);
        }
        // The client's error block: ` > [6/7] RUN ...:` and the failed step's last output.
        let mut block_vertex: Option<String> = None;
        for line in &self.after_frame {
            if line.trim() == "------" {
                block_vertex = None;
            } else if let Some(name) = line.trim().strip_prefix("> ") {
                let name = name.trim_end_matches(':');
                block_vertex = failed
                    .iter()
                    .find(|(_, cut)| {
                        name.starts_with(cut.trim_end()) || vertex_key(cut) == vertex_key(name)
                    })
                    .map(|(key, _)| key.clone());
            } else if let Some(key) = &block_vertex {
                // `#11 0.121 text` (Engine 20.10) or `0.085 text` (buildx).
                let text = line.trim_start();
                let text = match text.strip_prefix('#') {
                    Some(rest) => rest.split_once(' ').map_or("", |(_, t)| t),
                    None => text,
                };
                let text = log_output(text.as_bytes()).map_or(text.as_bytes(), |t| t);
                acc.push_log_line(key, &String::from_utf8_lossy(text));
            }
        }
        let trailer = ClientErrorText::parse(&self.after_frame);
        if let Some(line) = trailer.dockerfile_line {
            acc.set_dockerfile_line_of_failed_step(line);
        }
        let mut build = acc.finish();
        let error = trailer.error.or_else(|| {
            // Engine 20.10 prints the error without a prefix, after the failed step's block.
            let last_block = self
                .after_frame
                .iter()
                .rposition(|l| l.trim() == "------")?;
            if failed.is_empty() {
                return None;
            }
            self.after_frame[last_block + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("Script done on "))
                .map(str::to_string)
        });
        // The frame shows no step's message, only that it failed: the client's error is the
        // failed step's.
        if let Some(error) = &error
            && let Some(step) = build
                .steps
                .iter_mut()
                .find(|s| s.status == crate::model::StepStatus::Failed)
        {
            step.error = Some(error.clone());
        }
        conclude_with_client_error(&mut build, error);
        for step in &mut build.steps {
            step.status_source = Some(StatusSource::Tty);
        }
        let mut problems = self.problems;
        if self.skipped_before > 0 {
            problems.push(format!(
                "{} line(s) before the progress display are not BuildKit progress: skipped",
                self.skipped_before
            ));
        }
        if !self.frame_finished && self.frames > 0 {
            problems.push(
                "the last screen of the display is not a finished build's: steps still running \
                 on it are reported incomplete"
                    .to_string(),
            );
        }
        build.problems.extend(
            problems
                .into_iter()
                .map(|message| Problem::new(ProblemKind::Input, source, message)),
        );
        build
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Cached,
    Error,
    Canceled,
}

fn vertex_marker(row: &str) -> (Marker, &str) {
    for (prefix, marker) in [
        ("CACHED ", Marker::Cached),
        ("ERROR ", Marker::Error),
        ("CANCELED ", Marker::Canceled),
    ] {
        if let Some(rest) = row.strip_prefix(prefix) {
            return (marker, rest);
        }
    }
    (Marker::None, row)
}

/// `[2/5] RUN x        1.2s` -> (`[2/5] RUN x`, Some(`1.2s`)).
fn split_duration(row: &str) -> (&str, Option<&str>) {
    let row = row.trim_end();
    match row.rsplit_once(' ') {
        Some((name, last)) if is_duration(last) => (name.trim_end(), Some(last)),
        _ => (row, None),
    }
}

fn strip_duration(row: &str) -> &str {
    split_duration(row).0
}

fn is_duration(token: &str) -> bool {
    token
        .strip_suffix('s')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// How a vertex is recognized across frames whose names are cut at different widths: a step
/// by its label (`[builder 2/5]`), anything else by the start of its name.
fn vertex_key(name: &str) -> String {
    let name = name.trim();
    if name.starts_with('[')
        && let Some(close) = name.find(']')
        && name[..close].contains('/')
    {
        return name[..=close].to_string();
    }
    name.chars().take(48).collect()
}

/// The colour a raw row is drawn in: the last SGR colour set before its ` => `.
fn row_colour(raw: &[u8]) -> Colour {
    let end = memchr::memmem::find(raw, b"=> ").unwrap_or(raw.len());
    let mut colour = Colour::None;
    let mut i = 0;
    while let Some(offset) = memchr::memmem::find(&raw[i..end], b"\x1b[") {
        let start = i + offset + 2;
        let Some(len) = raw[start..end].iter().position(|b| *b == b'm') else {
            break;
        };
        for code in raw[start..start + len].split(|b| *b == b';') {
            colour = match code {
                b"34" => Colour::Done,
                b"31" => Colour::Error,
                b"0" | b"" => Colour::None,
                _ if code.starts_with(b"3") => Colour::Other,
                _ => colour,
            };
        }
        i = start + len;
    }
    colour
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BuildStatus, StepStatus};

    fn read(text: &str) -> Build {
        read_tty(text.as_bytes(), "t.log").unwrap()
    }

    #[test]
    fn a_pasted_final_screen() {
        let screen = "\
[+] Building 12.1s (9/9) FINISHED
 => [internal] load build definition from Dockerfile                  0.0s
 => [1/4] FROM docker.io/library/alpine:3                             0.0s
 => CACHED [2/4] RUN apk add --no-cache curl                          0.0s
 => [3/4] COPY . .                                                    0.1s
 => [4/4] RUN make                                                   11.5s
 => exporting to image                                                0.2s
 => => naming to docker.io/library/app:1                              0.0s
";
        let build = read(screen);
        let got: Vec<(&str, StepStatus, Option<u64>)> = build
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.status, s.duration_ms))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "[1/4] FROM docker.io/library/alpine:3",
                    StepStatus::Base,
                    Some(0)
                ),
                (
                    "[2/4] RUN apk add --no-cache curl",
                    StepStatus::Cached,
                    Some(0)
                ),
                ("[3/4] COPY . .", StepStatus::Rebuilt, Some(100)),
                ("[4/4] RUN make", StepStatus::Rebuilt, Some(11_500)),
            ]
        );
        assert!(
            build
                .steps
                .iter()
                .all(|s| s.status_source == Some(StatusSource::Tty))
        );
        assert!(build.steps.iter().all(|s| s.vertex_digest.is_none()));
        assert_eq!(build.build.status, BuildStatus::Completed);
    }

    #[test]
    fn cached_in_an_early_frame_counts() {
        let frames = "\
[+] Building 0.5s (3/4)
 => CACHED [2/3] WORKDIR /app                                          0.0s
 => [3/3] RUN x                                                        0.2s
[+] Building 1.0s (4/4) FINISHED
 => [2/3] WORKDIR /app                                                 0.4s
 => => sha256:3fc5 92B / 92B                                           0.0s
 => [3/3] RUN x                                                        0.5s
";
        let build = read(frames);
        assert_eq!(build.steps[0].status, StepStatus::Cached);
        assert!(!build.steps[0].status_inferred);
        assert_eq!(build.steps[1].status, StepStatus::Rebuilt);
    }

    #[test]
    fn an_unfinished_screen_leaves_running_steps_incomplete() {
        let screen = "[+] Building 3.0s (3/5)\n => CACHED [1/2] COPY a b   0.0s\n => [2/2] RUN sleep 9   2.9s\n => => # still going\n";
        let build = read(screen);
        assert_eq!(build.steps[1].status, StepStatus::Incomplete);
        assert!(
            build
                .problems
                .iter()
                .any(|p| p.message.contains("not a finished"))
        );
    }

    #[test]
    fn names_cut_at_different_widths_match_by_label() {
        assert_eq!(
            vertex_key("[linux/amd64 builder 3/6] RUN mkdir -p -m 0700 ~/.ss"),
            "[linux/amd64 builder 3/6]"
        );
        assert_eq!(
            split_duration("[2/5] RUN x   12.3s"),
            ("[2/5] RUN x", Some("12.3s"))
        );
        assert_eq!(row_colour(b"\x1b[0m\x1b[34m => [2/5] x"), Colour::Done);
        assert_eq!(
            row_colour(b"\x1b[0m\x1b[31m => ERROR [2/5] x"),
            Colour::Error
        );
        assert_eq!(row_colour(b" => [2/5] x"), Colour::None);
    }
}
