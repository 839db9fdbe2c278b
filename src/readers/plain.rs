//! `--progress=plain` logs, as printed by buildx/buildctl and by the Docker Engine 20.10 client
//! (which adds a `#N sha256:<vertex digest>` line under each step header).
//!
//! Lines are turned into the same updates a rawjson stream carries and fed to the shared
//! `StatusAccumulator`, so the cache rules live in one place. Plain logs carry no `cached`
//! flag for remote-cache hits; those are inferred (and marked so) by the accumulator.

use std::collections::HashMap;
use std::io::BufRead;

use crate::model::{Build, BuildStatus, Problem, ProblemKind, Step, StepStatus};
use crate::readers::error::ReadError;
use crate::readers::rawjson::ClientErrorText;
use crate::readers::solve_status::{
    StatusAccumulator, Vertex, VertexLog, VertexStatus, VertexWarning, order_steps,
};

const MAX_TEXT_LINES: usize = 400;

pub fn read_plain(mut reader: impl BufRead, source: &str) -> Result<Build, ReadError> {
    let mut parser = PlainParser::default();
    let mut raw = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut any_bytes = false;
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if parser.vertex_lines == 0 {
                    return Err(ReadError::Io {
                        path: source.to_string(),
                        source: e,
                    });
                }
                parser
                    .problems
                    .push(format!("reading stopped after line {line_no}: {e}"));
                break;
            }
        }
        line_no += 1;
        if !raw.iter().all(u8::is_ascii_whitespace) {
            any_bytes = true;
        }
        let line = String::from_utf8_lossy(&raw);
        parser.line(line.trim_end_matches(['\n', '\r']));
    }
    if !any_bytes {
        return Err(ReadError::Empty {
            path: source.to_string(),
        });
    }
    if parser.vertex_lines == 0 {
        return Err(ReadError::Unrecognized {
            path: source.to_string(),
            detail: "no `#N ...` progress lines found".to_string(),
        });
    }
    Ok(parser.finish(source))
}

#[derive(Default)]
struct PlainParser {
    accumulator: Option<StatusAccumulator>,
    /// `#N` -> vertex key (the digest when the log shows it, else `plain:#N`).
    keys: HashMap<u64, String>,
    names: HashMap<u64, String>,
    /// A header whose key is decided by the next line (20.10 logs put the digest there).
    pending: Option<(u64, String)>,
    text_lines: Vec<String>,
    vertex_lines: u64,
    problems: Vec<String>,
}

impl PlainParser {
    fn acc(&mut self) -> &mut StatusAccumulator {
        self.accumulator
            .get_or_insert_with(StatusAccumulator::for_plain_logs)
    }

    fn line(&mut self, line: &str) {
        let Some((number, rest)) = split_vertex_line(line) else {
            self.flush_pending();
            if self.text_lines.len() < MAX_TEXT_LINES && !line.trim().is_empty() {
                self.text_lines.push(line.to_string());
            }
            return;
        };
        self.vertex_lines += 1;
        if let Some((pending_number, name)) = self.pending.take() {
            if pending_number == number
                && let Some(digest) = bare_digest(rest)
            {
                self.register(number, name, digest.to_string());
                return;
            }
            self.register(pending_number, name, format!("plain:#{pending_number}"));
        }
        let Some(key) = self.keys.get(&number).cloned() else {
            // First line of a vertex: its name.
            self.pending = Some((number, rest.to_string()));
            return;
        };
        self.vertex_event(number, &key, rest);
    }

    fn flush_pending(&mut self) {
        if let Some((number, name)) = self.pending.take() {
            self.register(number, name, format!("plain:#{number}"));
        }
    }

    fn register(&mut self, number: u64, name: String, key: String) {
        self.keys.insert(number, key.clone());
        self.names.insert(number, name.clone());
        self.acc().on_vertex(Vertex {
            digest: key,
            name,
            ..Vertex::default()
        });
    }

    fn vertex_event(&mut self, number: u64, key: &str, rest: &str) {
        let rest = rest.trim_end();
        if rest == "CACHED" {
            let acc = self.acc();
            acc.on_vertex(Vertex {
                digest: key.to_string(),
                cached: true,
                ..Vertex::default()
            });
            acc.mark_progress(key, true, true);
        } else if let Some(seconds) = rest.strip_prefix("DONE") {
            let acc = self.acc();
            acc.mark_progress(key, true, true);
            if let Some(ms) = parse_seconds(seconds.trim()) {
                acc.set_stated_duration(key, ms);
            }
        } else if rest == "CANCELED" || rest == "CANCELLED" {
            let acc = self.acc();
            acc.on_vertex(Vertex {
                digest: key.to_string(),
                error: Some("context canceled".to_string()),
                ..Vertex::default()
            });
        } else if rest == "ERROR" || rest.starts_with("ERROR:") {
            let message = rest
                .trim_start_matches("ERROR")
                .trim_start_matches(':')
                .trim();
            let message = if message.is_empty() {
                "failed"
            } else {
                message
            };
            self.acc().on_vertex(Vertex {
                digest: key.to_string(),
                error: Some(message.to_string()),
                ..Vertex::default()
            });
        } else if rest == "..." || self.names.get(&number).is_some_and(|n| n == rest) {
            // Interrupted by another vertex, or its header repeated on resumption.
        } else if let Some(warning) = rest.strip_prefix("WARN:") {
            self.acc().on_warning(VertexWarning {
                vertex: key.to_string(),
                short: warning.trim().as_bytes().to_vec(),
                ..VertexWarning::default()
            });
        } else if let Some(output) = log_output(rest) {
            self.acc().on_log(VertexLog {
                vertex: key.to_string(),
                data: format!("{output}\n").into_bytes(),
                ..VertexLog::default()
            });
            self.acc().mark_progress(key, true, false);
        } else {
            let (id, total) = status_row(rest);
            let acc = self.acc();
            acc.mark_progress(key, true, false);
            acc.on_status(VertexStatus {
                id,
                vertex: key.to_string(),
                total,
                ..VertexStatus::default()
            });
        }
    }

    fn finish(mut self, source: &str) -> Build {
        self.flush_pending();
        let trailer = ClientErrorText::parse(&self.text_lines);
        let mut accumulator = self
            .accumulator
            .take()
            .unwrap_or_else(StatusAccumulator::for_plain_logs);
        if let Some(line) = trailer.dockerfile_line {
            accumulator.set_dockerfile_line_of_failed_step(line);
        }
        let mut build = accumulator.finish();
        if let Some(error) = trailer.error {
            build.build.error = Some(error);
            if matches!(
                build.build.status,
                BuildStatus::Unknown | BuildStatus::Completed
            ) {
                build.build.status = BuildStatus::Failed;
            }
        }
        if matches!(
            build.build.status,
            BuildStatus::Failed | BuildStatus::Canceled
        ) {
            add_unlisted_steps(&mut build);
        }
        build
            .problems
            .extend(self.problems.into_iter().map(|message| Problem {
                source: source.to_string(),
                kind: ProblemKind::Input,
                message,
            }));
        build
    }
}

/// A plain log lists a step only once it starts, so after a failure the steps that never
/// started are missing. Their stage's `[i/N]` labels say how many there are: they are added,
/// as not run, with the position BuildKit would have named them by (the instruction is unknown).
fn add_unlisted_steps(build: &mut Build) {
    let mut groups: Vec<(Option<String>, Option<String>, u32)> = Vec::new();
    for step in &build.steps {
        let Some(total) = step.total else { continue };
        let group = (step.platform.clone(), step.stage.clone(), total);
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    for (platform, stage, total) in groups {
        // A corrupt label must not make thousands of steps up.
        if total > 1000 {
            continue;
        }
        let listed: Vec<u32> = build
            .steps
            .iter()
            .filter(|s| s.platform == platform && s.stage == stage && s.total == Some(total))
            .filter_map(|s| s.index)
            .collect();
        let Some(&last_listed) = listed.iter().max() else {
            continue;
        };
        for index in (last_listed + 1)..=total {
            let label: Vec<&str> = [platform.as_deref(), stage.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let prefix = if label.is_empty() {
                String::new()
            } else {
                format!("{} ", label.join(" "))
            };
            build.steps.push(Step {
                name: format!("[{prefix}{index}/{total}]"),
                platform: platform.clone(),
                stage: stage.clone(),
                index: Some(index),
                total: Some(total),
                status: StepStatus::NotRun,
                ..Step::default()
            });
        }
    }
    // The placeholders join their stage, in the accumulator's order.
    let steps = std::mem::take(&mut build.steps);
    build.steps = order_steps(steps.into_iter().enumerate().collect());
}

/// `#12 rest` -> (12, "rest").
fn split_vertex_line(line: &str) -> Option<(u64, &str)> {
    let rest = line.strip_prefix('#')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].parse().ok()?;
    let text = rest[digits..].strip_prefix(' ')?;
    Some((number, text))
}

/// A line holding only a vertex digest (Docker Engine 20.10 prints one under each header).
fn bare_digest(text: &str) -> Option<&str> {
    let text = text.trim();
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(text)
}

/// `0.043 compile error` -> `compile error` (RUN output prefixed with elapsed seconds).
fn log_output(text: &str) -> Option<&str> {
    let (first, rest) = match text.split_once(' ') {
        Some((first, rest)) => (first, rest),
        None => (text, ""),
    };
    let (whole, fraction) = first.split_once('.')?;
    let numeric = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit());
    numeric.then_some(rest)
}

/// `0.1s` -> 100.
fn parse_seconds(text: &str) -> Option<u64> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// A status row: its id without the timing suffix, and the total size when it shows
/// `current / total` (layer transfers: `sha256:… 6.29MB / 6.29MB 0.0s done`).
fn status_row(text: &str) -> (String, i64) {
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.last() == Some(&"done") {
        tokens.pop();
    }
    if tokens.last().is_some_and(|t| parse_seconds(t).is_some()) {
        tokens.pop();
    }
    let mut total = 0;
    if let Some(slash) = tokens.iter().position(|t| *t == "/")
        && slash >= 1
        && let Some(size) = tokens.get(slash + 1).and_then(|t| parse_size(t))
    {
        total = size;
        tokens.truncate(slash - 1);
    } else if tokens.len() == 2
        && tokens[0].starts_with("sha256:")
        && let Some(size) = parse_size(tokens[1])
    {
        total = size;
        tokens.truncate(1);
    }
    (tokens.join(" "), total)
}

/// `6.29MB` -> 6290000 (BuildKit prints decimal units).
fn parse_size(text: &str) -> Option<i64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    Some((number * factor).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StepStatus;

    #[test]
    fn line_grammar() {
        assert_eq!(split_vertex_line("#12 DONE 0.1s"), Some((12, "DONE 0.1s")));
        assert_eq!(split_vertex_line("#x DONE"), None);
        assert_eq!(
            log_output("0.043 compile error: x"),
            Some("compile error: x")
        );
        assert_eq!(log_output("transferring context: 101B done"), None);
        assert_eq!(parse_seconds("1.25s"), Some(1250));
        assert_eq!(
            status_row("sha256:ea72 6.29MB / 6.29MB 0.0s done"),
            ("sha256:ea72".to_string(), 6_290_000)
        );
        assert_eq!(
            status_row("pushing manifest for r:v2@sha256:15 0.0s done"),
            ("pushing manifest for r:v2@sha256:15".to_string(), 0)
        );
    }

    #[test]
    fn engine_20_10_digest_lines_key_the_vertex() {
        let log = format!(
            "#5 [2/2] RUN true\n#5 sha256:{}\n#5 CACHED\n",
            "a".repeat(64)
        );
        let build = read_plain(log.as_bytes(), "b.log").unwrap();
        assert_eq!(build.steps.len(), 1);
        assert_eq!(
            build.steps[0].vertex_digest.as_deref(),
            Some(format!("sha256:{}", "a".repeat(64)).as_str())
        );
        assert_eq!(build.steps[0].status, StepStatus::Cached);
        assert!(!build.steps[0].status_inferred);
    }

    #[test]
    fn remote_hit_without_cached_line_is_inferred() {
        let log = "#9 [4/6] RUN install\n#9 sha256:163a 157B / 157B done\n#9 extracting sha256:163a done\n#9 DONE 0.1s\n\n#10 [5/6] COPY . .\n#10 DONE 0.0s\n";
        let build = read_plain(log.as_bytes(), "b.log").unwrap();
        assert_eq!(build.steps[0].status, StepStatus::Cached);
        assert!(build.steps[0].status_inferred);
        assert_eq!(build.steps[0].remote_cache_bytes, Some(157));
        assert_eq!(build.steps[1].status, StepStatus::Rebuilt);
        assert!(!build.steps[1].status_inferred);
    }

    #[test]
    fn empty_and_foreign_text() {
        assert!(matches!(
            read_plain(&b"\n \n"[..], "e.log").unwrap_err(),
            ReadError::Empty { .. }
        ));
        assert!(matches!(
            read_plain(&b"hello\nworld\n"[..], "e.log").unwrap_err(),
            ReadError::Unrecognized { .. }
        ));
    }
}
