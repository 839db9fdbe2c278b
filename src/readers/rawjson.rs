//! `--progress=rawjson` logs: a stream of BuildKit `SolveStatus` JSON objects, one per line
//! (buildx >= 0.15) or pretty-printed over several lines (older), possibly followed by the
//! client's plain-text error output. Also reads the aggregated single-object
//! `application/vnd.buildkit.solvestatus.v0` JSON.
//!
//! Lines are split on bytes in the reader's buffer and each object is parsed in place (see
//! `parse`), so memory stays flat whatever the size of the log. An object spread over
//! several lines is framed by brace depth. A line that is not JSON in the middle of the
//! stream (a stray message another program wrote to the same stderr) is skipped and named
//! by its line number; text after the last object is the client's error report.
//!
//! A bake writes every target into one stream, each vertex name prefixed with its target;
//! `read_rawjson_target` reports one target (see `solve_status`).

mod parse;

use std::io::BufRead;

use crate::model::{Build, BuildStatus, Problem, ProblemKind};
use crate::readers::error::ReadError;
use crate::readers::solve_status::StatusAccumulator;
use parse::Rejected;

/// One status object larger than this is skipped: no real update comes near it.
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
/// Non-JSON text kept for error extraction (the client's error block is short).
const MAX_TEXT_LINES: usize = 200;
/// Characters of a skipped line quoted in the problem that names it.
const QUOTED_CHARS: usize = 80;

/// Reads a rawjson stream of one build (or of a bake with a single target).
pub fn read_rawjson(reader: impl BufRead, source: &str) -> Result<Build, ReadError> {
    read_rawjson_target(reader, source, None)
}

/// Reads a rawjson stream; for a bake stream, the steps, imports and exports of `target`
/// (required when the stream holds several targets).
pub fn read_rawjson_target(
    mut reader: impl BufRead,
    source: &str,
    target: Option<&str>,
) -> Result<Build, ReadError> {
    let mut stream = Stream::new(source);
    // A line that runs past the end of the reader's buffer.
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_oversized = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if stream.parsed == 0 {
                    return Err(ReadError::Io {
                        path: source.to_string(),
                        source: e,
                    });
                }
                stream.problem(format!("reading stopped at byte {}: {e}", stream.bytes));
                break;
            }
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        stream.bytes += len as u64;
        let mut start = 0;
        if !carry.is_empty() || carry_oversized {
            let Some(end) = memchr::memchr(b'\n', chunk) else {
                append_bounded(&mut carry, &mut carry_oversized, chunk);
                reader.consume(len);
                continue;
            };
            append_bounded(&mut carry, &mut carry_oversized, &chunk[..end]);
            stream.line_or_oversized(&carry, carry_oversized);
            carry.clear();
            carry_oversized = false;
            start = end + 1;
        }
        let rest = &chunk[start..];
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', rest) {
            stream.line(&rest[from..end]);
            from = end + 1;
        }
        append_bounded(&mut carry, &mut carry_oversized, &rest[from..]);
        reader.consume(len);
    }
    if !carry.is_empty() || carry_oversized {
        stream.line_or_oversized(&carry, carry_oversized);
    }
    stream.finish(target)
}

fn append_bounded(carry: &mut Vec<u8>, oversized: &mut bool, bytes: &[u8]) {
    if *oversized {
        return;
    }
    if carry.len() + bytes.len() > MAX_OBJECT_BYTES {
        *oversized = true;
        *carry = Vec::new();
        return;
    }
    carry.extend_from_slice(bytes);
}

struct Stream<'s> {
    source: &'s str,
    accumulator: StatusAccumulator,
    line: u64,
    bytes: u64,
    /// Anything but whitespace seen.
    content: bool,
    parsed: u64,
    bad_objects: u64,
    first_bad: Option<String>,
    /// An object spread over several lines, being assembled.
    framing: Option<Framer>,
    /// Text since the last object: the client's error report if nothing follows it.
    text: Vec<String>,
    text_start: u64,
    text_lines: u64,
    text_bytes: u64,
    /// Text lines followed by more objects: stray lines.
    stray_lines: u64,
    first_stray: Option<(u64, String)>,
    problems: Vec<Problem>,
}

impl<'s> Stream<'s> {
    fn new(source: &'s str) -> Self {
        let mut accumulator = StatusAccumulator::new();
        accumulator.set_source(source);
        Stream {
            source,
            accumulator,
            line: 0,
            bytes: 0,
            content: false,
            parsed: 0,
            bad_objects: 0,
            first_bad: None,
            framing: None,
            text: Vec::new(),
            text_start: 0,
            text_lines: 0,
            text_bytes: 0,
            stray_lines: 0,
            first_stray: None,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, message: String) {
        self.problems
            .push(Problem::new(ProblemKind::Input, self.source, message));
    }

    fn bad(&mut self, line: u64, why: impl std::fmt::Display) {
        self.bad_objects += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some(format!("line {line}: {why}"));
        }
    }

    fn line_or_oversized(&mut self, bytes: &[u8], oversized: bool) {
        if oversized {
            self.line += 1;
            self.content = true;
            self.bad(
                self.line,
                format!("object larger than {MAX_OBJECT_BYTES} bytes skipped"),
            );
        } else {
            self.line(bytes);
        }
    }

    fn line(&mut self, bytes: &[u8]) {
        self.line += 1;
        if self.framing.is_some() {
            self.continue_object(bytes);
            return;
        }
        self.start(bytes.trim_ascii_start());
    }

    /// A line outside any object: an object (or its first line), or text.
    fn start(&mut self, bytes: &[u8]) {
        let Some(&first) = bytes.first() else {
            return;
        };
        self.content = true;
        if first != b'{' {
            self.text_line(bytes);
            return;
        }
        match parse::apply(bytes, &mut self.accumulator) {
            Ok(()) => self.object_done(),
            Err(Rejected::Incomplete) => {
                let mut framer = Framer::new(self.line);
                match framer.feed(bytes) {
                    // Complete after all (several objects on one line, say): apply them.
                    Some(end) => {
                        self.object(framer);
                        self.start(bytes[end..].trim_ascii_start());
                    }
                    None => {
                        framer.push_newline();
                        self.framing = Some(framer);
                    }
                }
            }
            Err(Rejected::Invalid(e)) => {
                // Two objects on one line are not a single JSON value; frame them.
                let mut framer = Framer::new(self.line);
                match framer.feed(bytes) {
                    Some(end) if end < bytes.len() => {
                        self.object(framer);
                        self.start(bytes[end..].trim_ascii_start());
                    }
                    _ => self.bad(self.line, e),
                }
            }
        }
    }

    /// A line inside an object spread over several lines.
    fn continue_object(&mut self, bytes: &[u8]) {
        // Inside a pretty-printed object only its closing brace starts a line unindented:
        // anything else means the object was cut and this line starts something new.
        let unindented = bytes
            .first()
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'}' | b']'));
        if unindented {
            let framer = self.framing.take().expect("framing");
            self.bad(
                framer.line,
                format!("the object is cut off by line {}", self.line),
            );
            self.start(bytes.trim_ascii_start());
            return;
        }
        let framer = self.framing.as_mut().expect("framing");
        match framer.feed(bytes) {
            Some(end) => {
                let framer = self.framing.take().expect("framing");
                self.object(framer);
                self.start(bytes[end..].trim_ascii_start());
            }
            None => framer.push_newline(),
        }
    }

    fn object(&mut self, framer: Framer) {
        if framer.oversized {
            self.bad(
                framer.line,
                format!("object larger than {MAX_OBJECT_BYTES} bytes skipped"),
            );
            return;
        }
        match parse::apply(&framer.object, &mut self.accumulator) {
            Ok(()) => self.object_done(),
            Err(Rejected::Incomplete) => self.bad(framer.line, "the object ends early"),
            Err(Rejected::Invalid(e)) => self.bad(framer.line, e),
        }
    }

    fn object_done(&mut self) {
        self.parsed += 1;
        if self.text_lines > 0 {
            // Text between objects: not the client's error report, a stray line.
            self.stray_lines += self.text_lines;
            if self.first_stray.is_none() {
                let quoted = self.text.first().cloned().unwrap_or_default();
                self.first_stray = Some((self.text_start, quoted));
            }
            self.text.clear();
            self.text_lines = 0;
            self.text_bytes = 0;
        }
    }

    fn text_line(&mut self, bytes: &[u8]) {
        if self.text_lines == 0 {
            self.text_start = self.line;
        }
        self.text_lines += 1;
        self.text_bytes += bytes.len() as u64 + 1;
        if self.text.len() < MAX_TEXT_LINES {
            let bytes = &bytes[..bytes.len().min(4096)];
            self.text
                .push(String::from_utf8_lossy(bytes).trim_end().to_string());
        }
    }

    fn finish(mut self, target: Option<&str>) -> Result<Build, ReadError> {
        let path = || self.source.to_string();
        if self.bytes == 0 || (!self.content && self.parsed == 0) {
            return Err(ReadError::Empty { path: path() });
        }
        if self.parsed == 0 {
            let detail = match &self.first_bad {
                Some(e) => format!("no BuildKit status object could be parsed; first error at {e}"),
                None => "no JSON status objects found".to_string(),
            };
            return Err(ReadError::Unrecognized {
                path: path(),
                detail,
            });
        }
        if let Some(framer) = self.framing.take() {
            self.problem(format!(
                "the log ends in the middle of a JSON object (started on line {}): it was cut off; steps after that point are missing",
                framer.line
            ));
        }
        if self.bad_objects > 0 {
            let first = self.first_bad.take().unwrap_or_default();
            self.problem(format!(
                "{} object(s) were not BuildKit status updates and were skipped (first at {first})",
                self.bad_objects
            ));
        }
        if let Some((line, text)) = self.first_stray.take() {
            let quoted = quote(&text);
            self.problem(match self.stray_lines {
                1 => format!("line {line} is not JSON and was skipped: `{quoted}`"),
                n => format!(
                    "{n} lines that are not JSON were skipped (the first, line {line}: `{quoted}`)"
                ),
            });
        }
        let trailer = ClientErrorText::parse(&self.text);
        if let Some(line) = trailer.dockerfile_line {
            self.accumulator.set_dockerfile_line_of_failed_step(line);
        }
        let mut build = std::mem::take(&mut self.accumulator)
            .finish_target(target)
            .map_err(|e| ReadError::Malformed {
                path: self.source.to_string(),
                detail: e.to_string(),
            })?;
        if let Some(error) = trailer.error {
            build.build.error = Some(error);
            if matches!(
                build.build.status,
                BuildStatus::Unknown | BuildStatus::Completed
            ) {
                build.build.status = BuildStatus::Failed;
            }
        } else if self.text_bytes > 0 {
            self.problem(format!(
                "{} bytes of text that is not JSON were ignored",
                self.text_bytes
            ));
        }
        build.problems.extend(self.problems);
        Ok(build)
    }
}

/// A line as it can be quoted in a message: printable, short.
fn quote(text: &str) -> String {
    let mut quoted: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != '`')
        .take(QUOTED_CHARS)
        .collect();
    if text.chars().count() > QUOTED_CHARS {
        quoted.push('…');
    }
    quoted
}

/// An object spread over several lines, framed by brace depth outside strings.
struct Framer {
    object: Vec<u8>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The line the object starts on.
    line: u64,
    oversized: bool,
}

impl Framer {
    fn new(line: u64) -> Self {
        Framer {
            object: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            line,
            oversized: false,
        }
    }

    /// Takes `bytes` until the object closes; returns where it closed, if it did.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        self.append(&bytes[..end.unwrap_or(bytes.len())]);
        end
    }

    fn push_newline(&mut self) {
        self.append(b"\n");
    }

    fn append(&mut self, bytes: &[u8]) {
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
    fn two_objects_on_one_line_are_both_read() {
        let text = format!(
            "{STEP}{}",
            r#"{"vertexes":[{"digest":"sha256:a","cached":true}]}"#
        );
        let build = read(&text).unwrap();
        assert_eq!(build.steps[0].status, StepStatus::Cached);
        assert!(build.problems.is_empty(), "{:?}", build.problems);
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

    #[test]
    fn a_stray_line_is_skipped_and_named_by_its_line_number() {
        let text = format!(
            "{STEP}\nhttp2: server connection error from localhost: connection error: PROTOCOL_ERROR\n{}\n",
            r#"{"vertexes":[{"digest":"sha256:b","name":"[2/2] RUN y","completed":"2026-01-01T00:00:02Z"}]}"#
        );
        let build = read(&text).unwrap();
        assert_eq!(build.steps.len(), 2);
        assert_eq!(build.problems.len(), 1, "{:?}", build.problems);
        let message = &build.problems[0].message;
        assert!(message.starts_with("line 2 is not JSON"), "{message}");
        assert!(
            message.contains("http2: server connection error"),
            "{message}"
        );
    }

    #[test]
    fn a_line_cut_by_another_writer_loses_that_update_only() {
        let cut =
            r#"{"vertexes":[{"digest":"sha256:b","name":"[2/2] RUhttp2: server connection error"#;
        let text = format!(
            "{STEP}\n{cut}\nN y\",\"completed\":\"2026-01-01T00:00:02Z\"}}]}}\n{}\n",
            r#"{"vertexes":[{"digest":"sha256:c","name":"[2/2] RUN z","completed":"2026-01-01T00:00:03Z"}]}"#
        );
        let build = read(&text).unwrap();
        let names: Vec<&str> = build.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["[1/2] RUN x", "[2/2] RUN z"]);
        let messages: Vec<&str> = build.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].contains("first at line 2: the object is cut off by line 3"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("line 3 is not JSON"),
            "{messages:?}"
        );
    }
}
