//! The status log layer of a build-history record: `[u32 little-endian length][protobuf
//! moby.buildkit.v1.StatusResponse]...`, decoded in place into the accumulator.
//!
//! Messages are walked field by field in the read buffer: strings are borrowed (and checked
//! to be UTF-8, as protobuf requires), log output is handed over as bytes, nothing is built
//! per update. A message is checked whole before any of it is applied, and its updates are
//! applied vertices first, then statuses, logs and warnings, as BuildKit's client does.

use std::io::Read;

use chrono::{DateTime, TimeZone, Utc};

use crate::readers::solve_status::{StatusAccumulator, VertexUpdate, VertexWarning};

/// A single status message larger than this is damage, not data.
pub(super) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// The read buffer to begin with; it grows only with bytes that arrive.
const INITIAL_BUFFER_BYTES: usize = 256 * 1024;

/// Why the rest of a status log could not be read (what came before it was kept).
#[derive(Debug, thiserror::Error)]
pub enum StatusLogError {
    #[error("status log cut off after {count} messages: {source}")]
    Cut {
        count: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("status log damaged after {count} messages (length {length})")]
    Length { count: u64, length: usize },
    #[error("status log damaged after {count} messages: {source}")]
    Damaged {
        count: u64,
        #[source]
        source: WireError,
    },
}

/// A protobuf message that does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("invalid varint")]
    Varint,
    #[error("a field runs past the end of its message")]
    Truncated,
    #[error("field {field} has wire type {found}, expected {expected}")]
    WireType { field: u32, found: u8, expected: u8 },
    #[error("unsupported wire type {0}")]
    UnknownWireType(u8),
    #[error("field {0} is not valid UTF-8")]
    Utf8(u32),
}

/// Reads length-prefixed messages from `reader` into `accumulator`; stops at the first
/// damaged message, keeping everything before it.
pub struct StatusLogReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    count: u64,
}

impl Default for StatusLogReader {
    fn default() -> Self {
        StatusLogReader {
            buf: vec![0; INITIAL_BUFFER_BYTES],
            start: 0,
            end: 0,
            count: 0,
        }
    }
}

impl StatusLogReader {
    pub fn decode(
        &mut self,
        mut reader: impl Read,
        accumulator: &mut StatusAccumulator,
    ) -> Result<(), StatusLogError> {
        loop {
            if !self.fill(&mut reader, 4)? {
                return Ok(());
            }
            let prefix: [u8; 4] = self.buf[self.start..self.start + 4]
                .try_into()
                .expect("four bytes");
            let length = u32::from_le_bytes(prefix) as usize;
            if length > MAX_MESSAGE_BYTES {
                return Err(StatusLogError::Length {
                    count: self.count,
                    length,
                });
            }
            if !self.fill(&mut reader, 4 + length)? {
                return Err(self.cut(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let message = &self.buf[self.start + 4..self.start + 4 + length];
            apply(message, accumulator).map_err(|source| StatusLogError::Damaged {
                count: self.count,
                source,
            })?;
            self.start += 4 + length;
            self.count += 1;
        }
    }

    /// The buffer's size: what the log made it allocate.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn cut(&self, source: std::io::Error) -> StatusLogError {
        StatusLogError::Cut {
            count: self.count,
            source,
        }
    }

    /// Makes `needed` bytes available from `start`; `false` at a clean end of the log
    /// (nothing at all left), an error when it ends inside a message.
    fn fill(&mut self, reader: &mut impl Read, needed: usize) -> Result<bool, StatusLogError> {
        if self.end - self.start >= needed {
            return Ok(true);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < needed {
            if self.end == self.buf.len() {
                // Doubled as bytes arrive, never sized by a length prefix alone.
                let grown = (self.buf.len() * 2).min(needed.max(INITIAL_BUFFER_BYTES));
                self.buf.resize(grown.max(self.buf.len() + 1), 0);
            }
            match reader.read(&mut self.buf[self.end..]) {
                Ok(0) if self.end == 0 => return Ok(false),
                Ok(0) => {
                    let arrived = self.end;
                    return Err(self.cut(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("a message of {} bytes ends after {arrived}", needed - 4),
                    )));
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.cut(e)),
            }
        }
        Ok(true)
    }
}

/// One field of a message.
#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl Field<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Field::Varint(_) => 0,
            Field::Bytes(_) => 2,
            Field::Fixed => 1,
        }
    }
}

struct Fields<'a> {
    bytes: &'a [u8],
}

fn fields(bytes: &[u8]) -> Fields<'_> {
    Fields { bytes }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        // Tags, lengths and small numbers take one byte.
        if let Some(&b) = self.bytes.first()
            && b < 0x80
        {
            self.bytes = &self.bytes[1..];
            return Ok(u64::from(b));
        }
        let mut value = 0u64;
        for (i, &b) in self.bytes.iter().enumerate().take(10) {
            if i == 9 && b > 1 {
                return Err(WireError::Varint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::Varint)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.bytes.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u32, Field<'a>), WireError> {
        let key = self.varint()?;
        let wire_type = (key & 7) as u8;
        let number = u32::try_from(key >> 3).map_err(|_| WireError::Varint)?;
        let field = match wire_type {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed
            }
            other => return Err(WireError::UnknownWireType(other)),
        };
        Ok((number, field))
    }
}

fn bytes_of(number: u32, field: Field<'_>) -> Result<&[u8], WireError> {
    match field {
        Field::Bytes(b) => Ok(b),
        other => Err(WireError::WireType {
            field: number,
            found: other.wire_type(),
            expected: 2,
        }),
    }
}

fn string_of(number: u32, field: Field<'_>) -> Result<&str, WireError> {
    std::str::from_utf8(bytes_of(number, field)?).map_err(|_| WireError::Utf8(number))
}

fn varint_of(number: u32, field: Field<'_>) -> Result<u64, WireError> {
    match field {
        Field::Varint(v) => Ok(v),
        other => Err(WireError::WireType {
            field: number,
            found: other.wire_type(),
            expected: 0,
        }),
    }
}

/// A `google.protobuf.Timestamp` the report does not use: its encoding checked, its value not.
fn skip_timestamp(bytes: &[u8]) -> Result<(), WireError> {
    for field in fields(bytes) {
        let (number, field) = field?;
        if matches!(number, 1 | 2) {
            varint_of(number, field)?;
        }
    }
    Ok(())
}

/// `google.protobuf.Timestamp`.
fn timestamp(bytes: &[u8]) -> Result<Option<DateTime<Utc>>, WireError> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for field in fields(bytes) {
        let (number, field) = field?;
        match number {
            1 => seconds = varint_of(number, field)? as i64,
            2 => nanos = varint_of(number, field)? as i32,
            _ => {}
        }
    }
    Ok(u32::try_from(nanos)
        .ok()
        .and_then(|n| Utc.timestamp_opt(seconds, n).single()))
}

#[derive(Default)]
struct VertexPb<'a> {
    digest: &'a str,
    inputs: Vec<&'a str>,
    name: &'a str,
    cached: bool,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    error: &'a str,
}

fn vertex(bytes: &[u8]) -> Result<VertexPb<'_>, WireError> {
    let mut v = VertexPb::default();
    for field in fields(bytes) {
        let (number, field) = field?;
        match number {
            1 => v.digest = string_of(number, field)?,
            2 => v.inputs.push(string_of(number, field)?),
            3 => v.name = string_of(number, field)?,
            4 => v.cached = varint_of(number, field)? != 0,
            5 => v.started = timestamp(bytes_of(number, field)?)?,
            6 => v.completed = timestamp(bytes_of(number, field)?)?,
            7 => v.error = string_of(number, field)?,
            _ => {}
        }
    }
    Ok(v)
}

#[derive(Default)]
struct StatusPb<'a> {
    id: &'a str,
    vertex: &'a str,
    total: i64,
}

fn status(bytes: &[u8]) -> Result<StatusPb<'_>, WireError> {
    let mut s = StatusPb::default();
    for field in fields(bytes) {
        let (number, field) = field?;
        match number {
            1 => s.id = string_of(number, field)?,
            2 => s.vertex = string_of(number, field)?,
            3 => {
                string_of(number, field)?;
            }
            4 => {
                varint_of(number, field)?;
            }
            5 => s.total = varint_of(number, field)? as i64,
            6..=8 => skip_timestamp(bytes_of(number, field)?)?,
            _ => {}
        }
    }
    Ok(s)
}

#[derive(Default)]
struct LogPb<'a> {
    vertex: &'a str,
    data: &'a [u8],
}

fn log(bytes: &[u8]) -> Result<LogPb<'_>, WireError> {
    let mut l = LogPb::default();
    for field in fields(bytes) {
        let (number, field) = field?;
        match number {
            1 => l.vertex = string_of(number, field)?,
            2 => skip_timestamp(bytes_of(number, field)?)?,
            3 => {
                varint_of(number, field)?;
            }
            4 => l.data = bytes_of(number, field)?,
            _ => {}
        }
    }
    Ok(l)
}

fn warning(bytes: &[u8]) -> Result<VertexWarning, WireError> {
    let mut w = VertexWarning::default();
    for field in fields(bytes) {
        let (number, field) = field?;
        match number {
            1 => w.vertex = string_of(number, field)?.to_string(),
            2 => w.level = varint_of(number, field)? as i64,
            3 => w.short = bytes_of(number, field)?.to_vec(),
            4 => w.detail.push(bytes_of(number, field)?.to_vec()),
            5 => w.url = string_of(number, field)?.to_string(),
            _ => {}
        }
    }
    Ok(w)
}

const VERTEXES: u32 = 1;
const STATUSES: u32 = 2;
const LOGS: u32 = 3;
const WARNINGS: u32 = 4;

/// One decoded update of a `StatusResponse`.
enum Update<'a> {
    Vertex(VertexPb<'a>),
    Status(StatusPb<'a>),
    Log(LogPb<'a>),
    Warning(VertexWarning),
}

fn decode(number: u32, bytes: &[u8]) -> Result<Option<Update<'_>>, WireError> {
    Ok(Some(match number {
        VERTEXES => Update::Vertex(vertex(bytes)?),
        STATUSES => Update::Status(status(bytes)?),
        LOGS => Update::Log(log(bytes)?),
        WARNINGS => Update::Warning(warning(bytes)?),
        _ => return Ok(None),
    }))
}

fn apply_update(update: Update<'_>, accumulator: &mut StatusAccumulator) {
    match update {
        Update::Vertex(v) => accumulator.vertex(VertexUpdate {
            digest: v.digest,
            name: v.name,
            inputs: &v.inputs,
            started: v.started,
            completed: v.completed,
            cached: v.cached,
            error: (!v.error.is_empty()).then_some(v.error),
        }),
        Update::Status(s) => accumulator.status(s.vertex, s.id, s.total),
        Update::Log(l) => accumulator.log_bytes(l.vertex, l.data),
        Update::Warning(w) => accumulator.on_warning(w),
    }
}

/// Checks one `StatusResponse` whole, then applies it.
fn apply(message: &[u8], accumulator: &mut StatusAccumulator) -> Result<(), WireError> {
    let mut kinds = [false; 5];
    let mut count = 0usize;
    // Most messages hold one update: it is applied as decoded, without a second pass.
    let mut first = None;
    for field in fields(message) {
        let (number, field) = field?;
        if !(VERTEXES..=WARNINGS).contains(&number) {
            continue;
        }
        let update = decode(number, bytes_of(number, field)?)?;
        if count == 0 {
            first = update;
        }
        count += 1;
        kinds[number as usize] = true;
    }
    if count == 1 {
        if let Some(update) = first {
            apply_update(update, accumulator);
        }
        return Ok(());
    }
    for kind in [VERTEXES, STATUSES, LOGS, WARNINGS] {
        if !kinds[kind as usize] {
            continue;
        }
        for field in fields(message) {
            let (number, field) = field?;
            if number == kind
                && let Some(update) = decode(number, bytes_of(number, field)?)?
            {
                apply_update(update, accumulator);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub(crate) fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
        varint(out, u64::from(field << 3 | 2));
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    pub(crate) fn framed(message: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(message.len()).unwrap().to_le_bytes().to_vec();
        out.extend_from_slice(message);
        out
    }

    /// A `StatusResponse` with one vertex.
    pub(crate) fn vertex_message(digest: &str, name: &str, completed: Option<i64>) -> Vec<u8> {
        let mut v = Vec::new();
        bytes_field(&mut v, 1, digest.as_bytes());
        bytes_field(&mut v, 3, name.as_bytes());
        if let Some(seconds) = completed {
            let mut t = Vec::new();
            varint(&mut t, 1 << 3);
            varint(&mut t, seconds as u64);
            bytes_field(&mut v, 6, &t);
        }
        let mut m = Vec::new();
        bytes_field(&mut m, VERTEXES, &v);
        m
    }

    #[test]
    fn a_length_prefix_beyond_the_data_keeps_what_was_decoded_and_allocates_nothing_for_it() {
        let mut log = framed(&vertex_message("sha256:a", "[1/1] RUN true", Some(1)));
        // A second message that claims 48 MiB (under the per-message limit) but holds 5 bytes.
        log.extend_from_slice(&(48u32 << 20).to_le_bytes());
        log.extend_from_slice(b"\x0a\x03abc");
        let mut acc = StatusAccumulator::new();
        let mut reader = StatusLogReader::default();
        let err = reader.decode(log.as_slice(), &mut acc).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("status log cut off after 1 messages"),
            "{err}"
        );
        assert_eq!(acc.finish().steps.len(), 1, "the first message is kept");
        assert!(
            reader.capacity() <= 2 * INITIAL_BUFFER_BYTES,
            "{} bytes allocated for a 5-byte message",
            reader.capacity()
        );
    }

    #[test]
    fn a_damaged_message_stops_the_log_and_applies_nothing_of_itself() {
        let good = vertex_message("sha256:a", "[1/2] RUN a", Some(1));
        // A vertex followed by a field that runs past the end of the message.
        let mut bad = vertex_message("sha256:b", "[2/2] RUN b", Some(2));
        bad.extend_from_slice(&[0x1a, 0x7f, 0x00]);
        let log = [framed(&good), framed(&bad)].concat();
        let mut acc = StatusAccumulator::new();
        let err = StatusLogReader::default()
            .decode(log.as_slice(), &mut acc)
            .unwrap_err();
        assert!(
            matches!(
                err,
                StatusLogError::Damaged {
                    count: 1,
                    source: WireError::Truncated
                }
            ),
            "{err}"
        );
        let build = acc.finish();
        assert_eq!(build.steps.len(), 1);
        assert_eq!(build.steps[0].name, "[1/2] RUN a");
    }

    #[test]
    fn strings_must_be_utf8_and_fields_their_wire_type() {
        let mut v = Vec::new();
        bytes_field(&mut v, 1, b"sha256:\xff");
        let mut m = Vec::new();
        bytes_field(&mut m, VERTEXES, &v);
        let mut acc = StatusAccumulator::new();
        assert_eq!(apply(&m, &mut acc), Err(WireError::Utf8(1)));
        // Field 1 (vertexes) as a varint.
        assert!(matches!(
            apply(&[0x08, 0x01], &mut acc),
            Err(WireError::WireType { field: 1, .. })
        ));
        // Unknown fields are skipped.
        assert_eq!(apply(&[0x48, 0x01], &mut acc), Ok(()));
    }
}
