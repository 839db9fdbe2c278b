//! `--progress=rawjson` logs: a stream of BuildKit `SolveStatus` JSON objects, one per line
//! (buildx >= 0.15) or pretty-printed over several lines (older), possibly followed by the
//! client's plain-text error output. Also reads the aggregated single-object
//! `application/vnd.buildkit.solvestatus.v0` JSON.
//!
//! Objects are framed by brace depth (outside strings) and parsed one at a time, so memory
//! stays flat whatever the size of the log.

use std::io::BufRead;

use crate::model::{Build, Problem, ProblemKind};
use crate::readers::error::ReadError;
use crate::readers::solve_status::{SolveStatus, StatusAccumulator};

/// One status object larger than this is skipped: no real update comes near it.
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
/// Non-JSON text kept for error extraction (the client's error block is short).
const MAX_TEXT_LINES: usize = 200;

pub fn read_rawjson(mut reader: impl BufRead, source: &str) -> Result<Build, ReadError> {
    let mut framer = Framer::default();
    let mut accumulator = StatusAccumulator::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut parsed = 0u64;
    let mut bad_objects = 0u64;
    let mut first_bad: Option<String> = None;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if parsed == 0 {
                    return Err(ReadError::Io {
                        path: source.to_string(),
                        source: e,
                    });
                }
                problems.push(Problem {
                    source: source.to_string(),
                    kind: ProblemKind::Input,
                    message: format!("reading stopped at byte {}: {e}", framer.offset),
                });
                break;
            }
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        framer.feed(chunk, &mut |event| match event {
            Frame::Object(bytes, line) => match serde_json::from_slice::<SolveStatus>(bytes) {
                Ok(status) => {
                    parsed += 1;
                    accumulator.push(status);
                }
                Err(e) => {
                    bad_objects += 1;
                    first_bad.get_or_insert_with(|| format!("line {line}: {e}"));
                }
            },
            Frame::Oversized(line) => {
                bad_objects += 1;
                first_bad.get_or_insert_with(|| {
                    format!("line {line}: object larger than {MAX_OBJECT_BYTES} bytes skipped")
                });
            }
        });
        reader.consume(len);
    }
    if framer.offset == 0 || (framer.only_whitespace && parsed == 0) {
        return Err(ReadError::Empty {
            path: source.to_string(),
        });
    }
    if parsed == 0 {
        let detail = match &first_bad {
            Some(e) => format!("no BuildKit status object could be parsed; first error at {e}"),
            None => "no JSON status objects found".to_string(),
        };
        return Err(ReadError::Unrecognized {
            path: source.to_string(),
            detail,
        });
    }
    if let Some(line) = framer.truncated_at() {
        problems.push(Problem {
            source: source.to_string(),
            kind: ProblemKind::Input,
            message: format!(
                "the log ends in the middle of a JSON object (started on line {line}): it was cut off; steps after that point are missing"
            ),
        });
    }
    if bad_objects > 0 {
        problems.push(Problem {
            source: source.to_string(),
            kind: ProblemKind::Input,
            message: format!(
                "{bad_objects} object(s) were not BuildKit status updates and were skipped (first at {})",
                first_bad.unwrap_or_default()
            ),
        });
    }
    let trailer = ClientErrorText::parse(&framer.text_lines);
    if let Some(line) = trailer.dockerfile_line {
        accumulator.set_dockerfile_line_of_failed_step(line);
    }
    let mut build = accumulator.finish();
    if let Some(error) = trailer.error {
        build.build.error = Some(error);
        if build.build.status == crate::model::BuildStatus::Unknown
            || build.build.status == crate::model::BuildStatus::Completed
        {
            build.build.status = crate::model::BuildStatus::Failed;
        }
    } else if framer.garbage_text_bytes > 0 {
        problems.push(Problem {
            source: source.to_string(),
            kind: ProblemKind::Input,
            message: format!(
                "{} bytes of text that is not JSON were ignored",
                framer.garbage_text_bytes
            ),
        });
    }
    build.problems.extend(problems);
    Ok(build)
}

enum Frame<'a> {
    Object(&'a [u8], u64),
    Oversized(u64),
}

#[derive(Default)]
struct Framer {
    depth: usize,
    in_string: bool,
    escaped: bool,
    object: Vec<u8>,
    oversized: bool,
    object_line: u64,
    line: u64,
    offset: u64,
    only_whitespace: bool,
    started: bool,
    /// Inside a line of plain text between objects.
    in_text: bool,
    text: Vec<u8>,
    text_lines: Vec<String>,
    garbage_text_bytes: u64,
}

impl Framer {
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Frame<'_>)) {
        if !self.started {
            self.started = true;
            self.only_whitespace = true;
            self.line = 1;
        }
        let mut i = 0;
        while i < chunk.len() {
            if self.depth > 0 {
                // Fast path: copy runs of bytes that cannot change the framing state.
                let start = i;
                while i < chunk.len() {
                    let b = chunk[i];
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        } else if b == b'\n' {
                            self.line += 1;
                        }
                    } else {
                        match b {
                            b'"' => self.in_string = true,
                            b'{' | b'[' => self.depth += 1,
                            b'}' | b']' => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    i += 1;
                                    break;
                                }
                            }
                            b'\n' => self.line += 1,
                            _ => {}
                        }
                    }
                    i += 1;
                }
                self.append_object(&chunk[start..i]);
                if self.depth == 0 {
                    if self.oversized {
                        emit(Frame::Oversized(self.object_line));
                    } else {
                        emit(Frame::Object(&self.object, self.object_line));
                    }
                    self.object.clear();
                    self.oversized = false;
                }
                continue;
            }
            let b = chunk[i];
            if self.in_text {
                if b == b'\n' {
                    self.end_text_line();
                    self.line += 1;
                } else if self.text.len() < 4096 {
                    self.text.push(b);
                }
                i += 1;
                continue;
            }
            match b {
                b'{' => {
                    self.only_whitespace = false;
                    self.depth = 1;
                    self.object_line = self.line;
                    self.object.push(b);
                }
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => {
                    self.only_whitespace = false;
                    self.in_text = true;
                    self.text.push(b);
                }
            }
            i += 1;
        }
        self.offset += chunk.len() as u64;
    }

    fn append_object(&mut self, bytes: &[u8]) {
        if self.oversized {
            return;
        }
        if self.object.len() + bytes.len() > MAX_OBJECT_BYTES {
            self.oversized = true;
            self.object = Vec::new();
            return;
        }
        self.object.extend_from_slice(bytes);
    }

    fn end_text_line(&mut self) {
        self.in_text = false;
        let line = String::from_utf8_lossy(&self.text).trim_end().to_string();
        self.garbage_text_bytes += self.text.len() as u64 + 1;
        self.text.clear();
        if self.text_lines.len() < MAX_TEXT_LINES {
            self.text_lines.push(line);
        }
    }

    fn truncated_at(&mut self) -> Option<u64> {
        if self.in_text {
            self.end_text_line();
        }
        (self.depth > 0).then_some(self.object_line)
    }
}

/// What buildctl/buildx print after the stream when a build fails:
/// `Dockerfile:6`, a framed excerpt, then `error: failed to solve: ...`.
#[derive(Debug, Default)]
pub(crate) struct ClientErrorText {
    pub error: Option<String>,
    pub dockerfile_line: Option<u32>,
}

impl ClientErrorText {
    pub(crate) fn parse(lines: &[String]) -> Self {
        let mut found = ClientErrorText::default();
        for line in lines {
            let trimmed = line.trim();
            if let Some(message) = trimmed
                .strip_prefix("error: failed to solve: ")
                .or_else(|| trimmed.strip_prefix("ERROR: failed to solve: "))
                .or_else(|| trimmed.strip_prefix("ERROR: failed to build: "))
            {
                found.error = Some(message.to_string());
            } else if let Some((file, line)) = trimmed.rsplit_once(':')
                && file.to_ascii_lowercase().contains("dockerfile")
                && !file.contains(' ')
                && let Ok(line) = line.parse::<u32>()
            {
                found.dockerfile_line.get_or_insert(line);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StepStatus;

    fn read(text: &str) -> Result<Build, ReadError> {
        read_rawjson(text.as_bytes(), "test.rawjson")
    }

    const STEP: &str = r#"{"vertexes":[{"digest":"sha256:a","name":"[1/2] RUN x","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01.5Z"}]}"#;

    #[test]
    fn one_object_per_line_and_pretty_printed_agree() {
        let lines = read(STEP).unwrap();
        let value: serde_json::Value = serde_json::from_str(STEP).unwrap();
        let pretty = read(&serde_json::to_string_pretty(&value).unwrap()).unwrap();
        assert_eq!(lines.steps, pretty.steps);
        assert_eq!(lines.steps[0].status, StepStatus::Rebuilt);
        assert_eq!(lines.steps[0].duration_ms, Some(1500));
    }

    #[test]
    fn braces_inside_strings_do_not_break_framing() {
        let text = r#"{"vertexes":[{"digest":"sha256:a","name":"[1/1] RUN echo '}{' \"\\\"}\"","completed":"2026-01-01T00:00:01Z"}]}
{"vertexes":[{"digest":"sha256:a","cached":true}]}"#;
        let build = read(text).unwrap();
        assert_eq!(build.steps.len(), 1);
        assert_eq!(build.steps[0].instruction, r#"RUN echo '}{' "\"}""#);
        assert_eq!(build.steps[0].status, StepStatus::Cached);
        assert!(build.problems.is_empty());
    }

    #[test]
    fn empty_and_garbage_are_errors_naming_the_file() {
        let empty = read(" \n\n").unwrap_err();
        assert!(matches!(empty, ReadError::Empty { .. }));
        assert!(empty.to_string().starts_with("test.rawjson: "));
        let garbage = read_rawjson(&[0xff, 0x00, 0x13, b'x', b'\n'][..], "g.bin").unwrap_err();
        assert!(
            matches!(garbage, ReadError::Unrecognized { .. }),
            "{garbage}"
        );
        let not_status = read("{\"a\": [1, 2}").unwrap_err();
        assert!(not_status.to_string().contains("test.rawjson"));
    }

    #[test]
    fn truncated_stream_keeps_what_was_read() {
        let text = format!("{STEP}\n{{\"vertexes\":[{{\"digest\":\"sha256:b\",\"name\":\"[2/2] RU");
        let build = read(&text).unwrap();
        assert_eq!(build.steps.len(), 1);
        assert_eq!(build.problems.len(), 1);
        assert!(
            build.problems[0].message.contains("cut off"),
            "{:?}",
            build.problems
        );
    }

    #[test]
    fn client_error_text_after_the_stream() {
        let text = format!(
            "{STEP}\nDockerfile:6\n--------------------\n   6 | >>> RUN x\n--------------------\nerror: failed to solve: process did not complete successfully: exit code: 2\n"
        );
        let build = read(&text).unwrap();
        assert_eq!(
            build.build.error.as_deref(),
            Some("process did not complete successfully: exit code: 2")
        );
        assert!(build.problems.is_empty(), "{:?}", build.problems);
    }
}
