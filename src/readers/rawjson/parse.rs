//! One rawjson object into the accumulator, parsed in place: strings are borrowed from the
//! line (`Cow` only where JSON escapes force a copy), skipped fields are never built, log
//! data stays base64 until a step's output is shown, and only vertex timestamps (the ones
//! the report uses) are parsed.
//!
//! Lines holding one log chunk, most of a verbose build's bytes, take a shorter road: their
//! layout is fixed (buildx writes the fields in one order), so they are recognized by their
//! bytes and their two strings found with `memchr`; anything else goes through serde, with
//! sonic-rs as the parser (on vertex and status lines it takes about 0.7 of serde_json's
//! time; see docs/performance.md). Both roads accept and reject the same lines and deliver
//! the same update.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::readers::solve_status::{
    StatusAccumulator, VertexUpdate, VertexWarning, null_as_default,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct StatusRef<'a> {
    #[serde(borrow, deserialize_with = "null_as_default")]
    vertexes: Vec<VertexRef<'a>>,
    #[serde(borrow, deserialize_with = "null_as_default")]
    statuses: Vec<StatusRowRef<'a>>,
    #[serde(borrow, deserialize_with = "null_as_default")]
    logs: Vec<LogRef<'a>>,
    #[serde(deserialize_with = "null_as_default")]
    warnings: Vec<VertexWarning>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct VertexRef<'a> {
    #[serde(borrow)]
    digest: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "null_as_default")]
    inputs: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    started: Option<Cow<'a, str>>,
    #[serde(borrow)]
    completed: Option<Cow<'a, str>>,
    cached: bool,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct StatusRowRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    vertex: Cow<'a, str>,
    total: i64,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LogRef<'a> {
    #[serde(borrow)]
    vertex: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

/// sonic-rs recurses once per level of nesting, with no limit: an object with fewer opening
/// brackets than this cannot nest deep enough to exhaust the stack. Others go to serde_json,
/// which stops at its recursion limit (128).
const SONIC_BRACKETS: usize = 100;

/// Why an object was not applied.
pub(super) enum Rejected {
    /// The object ends early: more lines follow (pretty-printed), or it was cut.
    Incomplete,
    Invalid(String),
}

/// Parses one JSON object (possibly with surrounding whitespace) and applies it.
pub(super) fn apply(bytes: &[u8], accumulator: &mut StatusAccumulator) -> Result<(), Rejected> {
    if let Some(log) = one_log_chunk(bytes) {
        accumulator.log_base64(log.vertex, log.data);
        return Ok(());
    }
    let status: StatusRef<'_> = if memchr::memchr2_iter(b'[', b'{', bytes).count() < SONIC_BRACKETS
    {
        sonic_rs::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                Rejected::Incomplete
            } else {
                // The first line says what and where; the next ones quote the input.
                let text = e.to_string();
                Rejected::Invalid(text.lines().next().unwrap_or_default().to_string())
            }
        })?
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                Rejected::Incomplete
            } else {
                Rejected::Invalid(e.to_string())
            }
        })?
    };
    // Timestamps are checked before anything is applied: an object is taken whole or not at all.
    let mut times = Vec::with_capacity(status.vertexes.len());
    for vertex in &status.vertexes {
        times.push((
            time(vertex.started.as_deref())?,
            time(vertex.completed.as_deref())?,
        ));
    }
    for (vertex, (started, completed)) in status.vertexes.iter().zip(times) {
        accumulator.vertex(VertexUpdate {
            digest: &vertex.digest,
            name: &vertex.name,
            inputs: &vertex.inputs,
            started,
            completed,
            cached: vertex.cached,
            error: vertex.error.as_deref(),
        });
    }
    for row in &status.statuses {
        accumulator.status(&row.vertex, &row.id, row.total);
    }
    for log in &status.logs {
        accumulator.log_base64(&log.vertex, log.data.as_deref().unwrap_or("").as_bytes());
    }
    for warning in status.warnings {
        accumulator.on_warning(warning);
    }
    Ok(())
}

fn time(text: Option<&str>) -> Result<Option<DateTime<Utc>>, Rejected> {
    text.map(|t| {
        t.parse::<DateTime<Utc>>()
            .map_err(|e| Rejected::Invalid(format!("timestamp `{t}`: {e}")))
    })
    .transpose()
}

struct LogChunk<'a> {
    vertex: &'a str,
    data: &'a [u8],
}

/// `{"logs":[{"vertex":"V","stream":N,"data":"D","timestamp":"T"}]}`, exactly as buildx
/// writes one log chunk, with strings that hold no escapes: its vertex and base64 data.
fn one_log_chunk(line: &[u8]) -> Option<LogChunk<'_>> {
    let rest = line.strip_prefix(b"{\"logs\":[{\"vertex\":\"")?;
    let (vertex, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(b",\"stream\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // A JSON number: no leading zero.
    if digits == 0 || digits > 18 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let rest = rest[digits..].strip_prefix(b",\"data\":\"")?;
    let (data, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(b",\"timestamp\":\"")?;
    let (_, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(b"}]}")?;
    if !rest
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    // Printable ASCII without escapes: the same text serde would give, and valid UTF-8.
    let vertex = std::str::from_utf8(vertex).ok()?;
    Some(LogChunk { vertex, data })
}

/// The text of a JSON string up to its closing quote, when it is printable ASCII without
/// escapes; and what follows the quote.
fn plain_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b'"', bytes)?;
    let text = &bytes[..end];
    // Branch-free over the whole string, so it vectorizes.
    let bad = text.iter().fold(false, |bad, &b| {
        bad | !(0x20..=0x7e).contains(&b) | (b == b'\\')
    });
    (!bad).then(|| (text, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_chunk_layout_is_recognized_only_when_exact() {
        let line = br#"{"logs":[{"vertex":"sha256:ab","stream":1,"data":"aGkK","timestamp":"2026-11-29T13:05:42.1Z"}]}"#;
        let chunk = one_log_chunk(line).unwrap();
        assert_eq!(chunk.vertex, "sha256:ab");
        assert_eq!(chunk.data, b"aGkK");
        assert!(one_log_chunk(&[line.as_slice(), b" \r\n"].concat()).is_some());
        // Anything else goes to serde: other field orders, escapes, more chunks, trailing text.
        for other in [
            &br#"{"logs":[{"stream":1,"vertex":"sha256:ab","data":"aGkK","timestamp":"t"}]}"#[..],
            br#"{"logs":[{"vertex":"sha256:a\u0062","stream":1,"data":"aGkK","timestamp":"t"}]}"#,
            br#"{"logs":[{"vertex":"sha256:ab","stream":1,"data":"aGkK","timestamp":"t"},{"vertex":"x"}]}"#,
            br#"{"logs":[{"vertex":"sha256:ab","stream":1,"data":"aGkK","timestamp":"t"}]} x"#,
            br#"{"logs":[{"vertex":"sha256:ab","stream":-1,"data":"aGkK","timestamp":"t"}]}"#,
            "{\"logs\":[{\"vertex\":\"sha256:\u{e9}\",\"stream\":1,\"data\":\"aGkK\",\"timestamp\":\"t\"}]}".as_bytes(),
        ] {
            assert!(one_log_chunk(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn both_roads_give_the_same_update() {
        let fast = br#"{"logs":[{"vertex":"sha256:ab","stream":2,"data":"ZXJyb3IK","timestamp":"2026-11-29T13:05:42.1Z"}]}"#;
        let slow = br#"{"logs":[{"timestamp":"2026-11-29T13:05:42.1Z","data":"ZXJyb3IK","stream":2,"vertex":"sha256:ab"}]}"#;
        let finish = |line: &[u8]| {
            let mut acc = StatusAccumulator::new();
            apply(
                br#"{"vertexes":[{"digest":"sha256:ab","name":"[1/1] RUN x","error":"boom"}]}"#,
                &mut acc,
            )
            .ok()
            .unwrap();
            apply(line, &mut acc).ok().unwrap();
            acc.finish()
        };
        let (a, b) = (finish(fast), finish(slow));
        assert_eq!(a.steps[0].log_tail, ["error"]);
        assert_eq!(a, b);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = |key: &str| {
            let n = 200_000;
            format!("{{\"{key}\":{}{}}}", "[".repeat(n), "]".repeat(n))
        };
        let mut acc = StatusAccumulator::new();
        for key in ["vertexes", "logs"] {
            let line = deep(key);
            assert!(
                matches!(apply(line.as_bytes(), &mut acc), Err(Rejected::Invalid(_))),
                "{key}"
            );
        }
        // An unknown field is skipped, however deep.
        assert!(apply(deep("unknown").as_bytes(), &mut acc).is_ok());
    }

    #[test]
    fn an_object_is_applied_whole_or_not_at_all() {
        let mut acc = StatusAccumulator::new();
        let bad_time = br#"{"vertexes":[{"digest":"sha256:a","name":"[1/2] RUN a"},{"digest":"sha256:b","name":"[2/2] RUN b","started":"yesterday"}]}"#;
        assert!(matches!(
            apply(bad_time, &mut acc),
            Err(Rejected::Invalid(_))
        ));
        assert!(matches!(
            apply(br#"{"vertexes":[{"digest":"#, &mut acc),
            Err(Rejected::Incomplete)
        ));
        assert!(acc.finish().steps.is_empty());
    }
}
