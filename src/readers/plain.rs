//! `--progress=plain` logs, as printed by buildx/buildctl and by the Docker Engine 20.10 client
//! (which adds a `#N sha256:<vertex digest>` line under each step header), and as people have
//! them: pasted from a CI job with its step header and command line first, with a timestamp or
//! colour codes on every line (see `line_clean`), cut to the last lines of a build, or holding
//! several builds, one after another or run in parallel with their lines interleaved.
//!
//! Lines are turned into the same updates a rawjson stream carries and fed to the shared
//! `StatusAccumulator`, so the cache rules live in one place. Plain logs carry no `cached`
//! flag for remote-cache hits; those are inferred (and marked so) by the accumulator.
//!
//! The log is read as bytes, line by line, keeping no more than `MAX_LINE_BYTES` of a line;
//! only text that ends up in the report (names, errors, the last output lines of a running
//! step) is copied or converted to UTF-8.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

use crate::model::{Build, BuildStatus, Problem, ProblemKind, Step, StepStatus};
use crate::readers::error::ReadError;
use crate::readers::line_clean;
use crate::readers::rawjson::ClientErrorText;
use crate::readers::solve_status::{
    StatusAccumulator, Vertex, VertexLog, VertexStatus, VertexWarning, order_steps,
};

/// The part of a line kept; the rest of a longer line is read and dropped. Real progress lines
/// are far shorter; a step's output line can be anything.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Output lines kept per running step (the accumulator keeps as many for a failed step).
const TAIL_LINES: usize = 20;
/// Bytes kept of one output line (the report shows 400 characters of it at most).
const TAIL_LINE_BYTES: usize = 1600;
/// Error-text lines kept per build for the client's error block.
const MAX_ERROR_LINES: usize = 64;
/// Builds one log may hold before the rest are left out.
const MAX_BUILDS: usize = 64;

pub fn read_plain(reader: impl BufRead, source: &str) -> Result<Build, ReadError> {
    let mut parser = PlainParser::default();
    if let Err((e, lines)) = for_each_marked_line(reader, MAX_LINE_BYTES, |line, escaped| {
        parser.line(line, escaped)
    }) {
        if !parser.seen_progress {
            return Err(ReadError::Io {
                path: source.to_string(),
                source: e,
            });
        }
        parser
            .problems
            .push(format!("reading stopped after line {lines}: {e}"));
    }
    if !parser.any_text {
        return Err(ReadError::Empty {
            path: source.to_string(),
        });
    }
    if !parser.seen_progress {
        return Err(ReadError::Unrecognized {
            path: source.to_string(),
            detail: if parser.tty_rows {
                "no `#N ...` progress lines found; it holds the TTY display (`[+] Building`, \
                 ` => ` rows): `--input-format tty` reads it"
                    .to_string()
            } else {
                "no `#N ...` progress lines found".to_string()
            },
        });
    }
    Ok(parser.finish(source))
}

/// Calls `each` with every line (without its `\n`), keeping at most `max_bytes` of a line.
/// The error carries the number of lines read before it.
pub(crate) fn for_each_line(
    reader: impl BufRead,
    max_bytes: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<(), (std::io::Error, u64)> {
    for_each_marked_line(reader, max_bytes, |line, _| each(line))
}

/// `for_each_line`, also telling whether the line holds an escape byte (`ESC`): searched once
/// per buffer rather than once per line, so lines without one are never scanned for it.
pub(crate) fn for_each_marked_line(
    mut reader: impl BufRead,
    max_bytes: usize,
    mut each: impl FnMut(&[u8], bool),
) -> Result<(), (std::io::Error, u64)> {
    let mut carry: Vec<u8> = Vec::new();
    let mut lines = 0u64;
    // Bytes ahead of the read position already searched, and where the next escape is in them.
    let mut searched = 0usize;
    let mut next_escape: Option<usize> = None;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, lines)),
        };
        if buf.is_empty() {
            if !carry.is_empty() {
                each(&carry, memchr::memchr(0x1b, &carry).is_some());
            }
            return Ok(());
        }
        if searched == 0 {
            searched = buf.len();
            next_escape = memchr::memchr(0x1b, buf);
        }
        let len = buf.len();
        let consumed = match memchr::memchr(b'\n', buf) {
            Some(end) if carry.is_empty() => {
                let escaped = next_escape.is_some_and(|e| e < end);
                each(&buf[..end.min(max_bytes)], escaped);
                lines += 1;
                end + 1
            }
            Some(end) => {
                let room = max_bytes.saturating_sub(carry.len());
                carry.extend_from_slice(&buf[..end.min(room)]);
                each(&carry, memchr::memchr(0x1b, &carry).is_some());
                lines += 1;
                carry.clear();
                end + 1
            }
            None => {
                let room = max_bytes.saturating_sub(carry.len());
                carry.extend_from_slice(&buf[..len.min(room)]);
                len
            }
        };
        searched = searched.saturating_sub(consumed);
        next_escape = match next_escape {
            Some(e) if e >= consumed => Some(e - consumed),
            // The escape was in what was consumed: find the next one in the rest.
            Some(_) => {
                let rest = &buf[consumed..];
                memchr::memchr(0x1b, &rest[..searched.min(rest.len())])
            }
            None => None,
        };
        reader.consume(consumed);
    }
}

/// One build in the log: its own vertex numbers and accumulator.
struct BuildState {
    acc: StatusAccumulator,
    /// Highest `#N` seen: BuildKit numbers a build's vertices in the order it prints them.
    max_number: u64,
    slots: usize,
    /// Vertices not finished yet.
    running: usize,
    /// It printed more than the vertices every build starts with.
    past_start: bool,
    /// Its export finished, or it had nothing running when another build started: a header
    /// reusing one of its numbers belongs to another build.
    closed: bool,
    first_line: u64,
    /// Another build printed lines while this one was running.
    interleaved: bool,
    error_lines: Vec<String>,
    /// `naming to NAME` / `pushing manifest for NAME@...`: what the build produced.
    image: Option<String>,
    /// `(stage, total)` of its step labels, to tell parallel builds apart.
    labels: Vec<(Option<String>, u32)>,
    /// Images it resolved (`[internal] load metadata for IMAGE`).
    images: Vec<String>,
}

impl BuildState {
    fn new(first_line: u64) -> Self {
        BuildState {
            acc: StatusAccumulator::for_plain_logs(),
            max_number: 0,
            slots: 0,
            running: 0,
            past_start: false,
            closed: false,
            first_line,
            interleaved: false,
            error_lines: Vec::new(),
            image: None,
            labels: Vec::new(),
            images: Vec::new(),
        }
    }
}

/// One vertex (`#N` of one build).
struct Slot {
    build: usize,
    number: u64,
    key: String,
    name: Option<String>,
    registered: bool,
    finished: bool,
    started: bool,
    saw_output: bool,
    /// When its header was last printed (for lines whose build is ambiguous).
    header_seq: u64,
    tail: VecDeque<Vec<u8>>,
    /// Layer rows already passed on, with their size.
    layers: Vec<(u64, i64)>,
}

#[derive(Default)]
struct PlainParser {
    builds: Vec<BuildState>,
    slots: Vec<Slot>,
    by_number: HashMap<u64, Vec<usize>, foldhash::fast::RandomState>,
    /// The previous progress line's `#N` and vertex.
    last: Option<(u64, usize)>,
    /// A header whose key the next line decides (20.10 logs put the digest there).
    pending: Option<usize>,
    seq: u64,
    line_no: u64,
    current_build: usize,
    seen_progress: bool,
    any_text: bool,
    skipped_before_progress: u64,
    /// Lines of the TTY display seen (said when no plain progress follows).
    tty_rows: bool,
    cut_lines: u64,
    builds_left_out: bool,
    problems: Vec<String>,
    scratch: Vec<u8>,
    spare_lines: Vec<Vec<u8>>,
}

impl PlainParser {
    fn line(&mut self, raw: &[u8], escaped: bool) {
        self.line_no += 1;
        if raw.len() >= MAX_LINE_BYTES {
            self.cut_lines += 1;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let line = line_clean::clean_marked(raw, escaped, &mut scratch);
        if !self.any_text && line.iter().any(|b| !b.is_ascii_whitespace()) {
            self.any_text = true;
        }
        match split_vertex_line(line) {
            Some((number, rest)) => {
                self.seen_progress = true;
                self.vertex_line(number, rest);
            }
            None => self.text_line(line),
        }
        self.scratch = scratch;
    }

    fn text_line(&mut self, line: &[u8]) {
        if !self.seen_progress {
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                self.skipped_before_progress += 1;
                let row = line.trim_ascii_start();
                self.tty_rows |= crate::readers::tty::is_frame_header(row)
                    || crate::readers::tty::is_display_row(row);
            }
            return;
        }
        self.flush_pending();
        if is_error_text(line)
            && let Some(build) = self.builds.get_mut(self.current_build)
            && build.error_lines.len() < MAX_ERROR_LINES
        {
            build
                .error_lines
                .push(String::from_utf8_lossy(line).into_owned());
        }
    }

    fn vertex_line(&mut self, number: u64, rest: &[u8]) {
        if number == 0 {
            // `#0 building with "default" instance using docker driver`: a build starts.
            if rest.starts_with(b"building with") {
                self.flush_pending();
                if self.builds.last().is_none_or(|b| b.slots > 0) {
                    self.new_build();
                }
            }
            return;
        }
        if let Some(pending) = self.pending.take() {
            if self.slots[pending].number == number
                && let Some(digest) = bare_digest(rest)
            {
                self.register(pending, Some(digest.to_string()));
                self.last = Some((number, pending));
                return;
            }
            self.register(pending, None);
        }
        // Most lines continue the vertex of the line before (once it finished, another build's
        // vertex of the same number may be the one going on).
        if let Some((last_number, slot)) = self.last
            && last_number == number
            && !self.slots[slot].finished
            && !looks_like_header(rest)
        {
            self.touch(slot);
            self.event(slot, rest);
            return;
        }
        let Some(slot) = self.resolve(number, rest) else {
            return;
        };
        self.last = Some((number, slot));
        self.touch(slot);
        if self.slots[slot].name.as_deref().map(str::as_bytes) == Some(trim_end(rest)) {
            // Its header, printed again when the vertex resumes.
            return;
        }
        self.event(slot, rest);
    }

    fn touch(&mut self, slot: usize) {
        let build = self.slots[slot].build;
        if build != self.current_build {
            // A line of a build after a newer build printed its own: their lines interleave.
            let newer_running = self.builds[build + 1..].iter().any(|b| b.slots > 0);
            if newer_running && !self.builds[build].closed {
                self.builds[build].interleaved = true;
            }
            self.current_build = build;
        }
    }

    fn new_build(&mut self) -> Option<usize> {
        // A build with nothing left running when another starts is over (a `buildx inspect
        // --bootstrap` before the build, a build that exported nothing).
        for build in &mut self.builds {
            if build.running == 0 && build.past_start {
                build.closed = true;
            }
        }
        if self.builds.len() >= MAX_BUILDS {
            self.builds_left_out = true;
            return None;
        }
        self.builds.push(BuildState::new(self.line_no));
        Some(self.builds.len() - 1)
    }

    /// The vertex a `#N` line belongs to, creating it for a new header. `None` when the line
    /// belongs to a build past `MAX_BUILDS`.
    fn resolve(&mut self, number: u64, rest: &[u8]) -> Option<usize> {
        let rest = trim_end(rest);
        let header = looks_like_header(rest);
        self.seq += 1;
        if !header && let Some(slot) = self.continued_vertex(number, rest) {
            return Some(slot);
        }
        let candidates: Vec<usize> = self.by_number.get(&number).cloned().unwrap_or_default();
        let open: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|s| !self.builds[self.slots[*s].build].closed)
            .collect();
        // The same header again: the vertex resumes, unless a build started since whose own
        // vertex this is (parallel builds print the same first vertices).
        if let Some(&same) = open
            .iter()
            .filter(|s| self.slots[**s].name.as_deref().map(str::as_bytes) == Some(rest))
            .max_by_key(|s| self.slots[**s].header_seq)
        {
            let owner = self.slots[same].build;
            let restarted = self.slots[same].finished
                && (self.builds[owner + 1..].iter().any(|b| b.slots == 0)
                    || (number <= 2
                        && is_first_vertex(rest)
                        && self.builds[owner].max_number >= 3));
            if !restarted {
                self.slots[same].header_seq = self.seq;
                return Some(same);
            }
            let build = self.build_for_new_vertex(number, rest, &candidates)?;
            return Some(self.new_slot(build, number, Some(rest)));
        }
        if candidates.is_empty() {
            let build = self.build_for_new_vertex(number, rest, &candidates)?;
            let name = (!is_continuation(rest)).then_some(rest);
            return Some(self.new_slot(build, number, name));
        }
        // A header here: `continued_vertex` took every other line of a number in use that no
        // open vertex is named like. A vertex whose lines came before its header (a log cut
        // at its start)?
        if let Some(&unnamed) = open.iter().find(|s| self.slots[**s].name.is_none()) {
            self.name_slot(unnamed, rest);
            return Some(unnamed);
        }
        // Another vertex with a number in use: another build's.
        let build = self.build_for_new_vertex(number, rest, &candidates)?;
        Some(self.new_slot(build, number, Some(rest)))
    }

    /// The vertex a line that is not a header continues, when a vertex of that number exists
    /// and no open one is named like the line: the unfinished vertex whose header came last,
    /// among the open builds' when there are any. Most lines of a log are such lines, and
    /// this answers them without copying the candidates. `None` leaves the decision to the
    /// rest of `resolve`.
    fn continued_vertex(&self, number: u64, line: &[u8]) -> Option<usize> {
        let candidates = self.by_number.get(&number)?;
        let open = |s: usize| !self.builds[self.slots[s].build].closed;
        let mut any_open = false;
        for &s in candidates {
            if open(s) {
                if self.slots[s].name.as_deref().map(str::as_bytes) == Some(line) {
                    return None;
                }
                any_open = true;
            }
        }
        candidates
            .iter()
            .copied()
            .filter(|&s| !any_open || open(s))
            .max_by_key(|&s| (!self.slots[s].finished, self.slots[s].header_seq))
    }

    /// Which build a new vertex `#number` belongs to: an open build that has no vertex of that
    /// number yet, preferring the one whose numbers reached `number - 1` and whose steps or
    /// images the header matches; a new build when there is none.
    fn build_for_new_vertex(
        &mut self,
        number: u64,
        header: &[u8],
        taken: &[usize],
    ) -> Option<usize> {
        let taken_by: Vec<usize> = taken.iter().map(|s| self.slots[*s].build).collect();
        let lacking: Vec<usize> = (0..self.builds.len())
            .filter(|b| !taken_by.contains(b))
            .collect();
        // A closed build takes a new vertex only when no running build can (bake exports one
        // image per target, and later vertices still come).
        let open: Vec<usize> = lacking
            .iter()
            .copied()
            .filter(|b| !self.builds[*b].closed)
            .collect();
        let free = if open.is_empty() { lacking } else { open };
        if free.is_empty() {
            return self.new_build();
        }
        if free.len() == 1 {
            return Some(free[0]);
        }
        let header = String::from_utf8_lossy(header);
        let label = step_label(&header);
        let from_image = from_image(&header);
        let score = |b: &usize| {
            let build = &self.builds[*b];
            let next = build.max_number + 1 == number;
            let affinity = label.as_ref().is_some_and(|l| build.labels.contains(l))
                || label
                    .as_ref()
                    .is_some_and(|(_, total)| build.labels.iter().any(|(_, t)| t == total))
                || from_image
                    .as_ref()
                    .is_some_and(|image| build.images.iter().any(|i| i == image));
            // Ties go to the oldest build.
            (next, affinity, std::cmp::Reverse(*b))
        };
        free.iter().copied().max_by_key(score)
    }

    fn new_slot(&mut self, build: usize, number: u64, name: Option<&[u8]>) -> usize {
        let index = self.slots.len();
        let key = if build == 0 {
            format!("plain:#{number}")
        } else {
            format!("plain:{build}#{number}")
        };
        self.slots.push(Slot {
            build,
            number,
            key,
            name: None,
            registered: false,
            finished: false,
            started: false,
            saw_output: false,
            header_seq: self.seq,
            tail: VecDeque::new(),
            layers: Vec::new(),
        });
        self.by_number.entry(number).or_default().push(index);
        let state = &mut self.builds[build];
        state.slots += 1;
        state.running += 1;
        state.max_number = state.max_number.max(number);
        match name {
            Some(name) => {
                self.set_name(index, name);
                self.pending = Some(index);
            }
            None => self.register(index, None),
        }
        index
    }

    fn set_name(&mut self, slot: usize, name: &[u8]) {
        let build = &mut self.builds[self.slots[slot].build];
        build.past_start |= !is_first_vertex(name);
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some(label) = step_label(&name)
            && !build.labels.contains(&label)
        {
            build.labels.push(label);
        }
        if let Some(image) = name.strip_prefix("[internal] load metadata for ")
            && build.images.len() < 64
        {
            build.images.push(image.trim().to_string());
        }
        self.slots[slot].name = Some(name);
    }

    fn name_slot(&mut self, slot: usize, name: &[u8]) {
        self.set_name(slot, name);
        let Slot { build, key, .. } = &self.slots[slot];
        let vertex = Vertex {
            digest: key.clone(),
            name: self.slots[slot].name.clone().unwrap_or_default(),
            ..Vertex::default()
        };
        self.builds[*build].acc.on_vertex(vertex);
    }

    fn flush_pending(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.register(pending, None);
        }
    }

    /// Passes a vertex to its build's accumulator, keyed by `digest` when the log shows it.
    fn register(&mut self, slot: usize, digest: Option<String>) {
        let state = &mut self.slots[slot];
        if state.registered {
            return;
        }
        state.registered = true;
        if let Some(digest) = digest {
            state.key = digest;
        }
        let vertex = Vertex {
            digest: state.key.clone(),
            name: state.name.clone().unwrap_or_default(),
            ..Vertex::default()
        };
        self.builds[state.build].acc.on_vertex(vertex);
    }

    fn mark_started(&mut self, slot: usize) {
        let state = &mut self.slots[slot];
        if !state.started {
            state.started = true;
            self.builds[state.build]
                .acc
                .mark_progress(&state.key, true, false);
        }
    }

    fn event(&mut self, slot: usize, rest: &[u8]) {
        let rest = trim_end(rest);
        match rest.first() {
            Some(b'0'..=b'9') => {
                if let Some(output) = log_output(rest) {
                    self.output(slot, output);
                    return;
                }
            }
            Some(b'D') if rest.starts_with(b"DONE") => {
                self.mark_finished(slot);
                let state = &mut self.slots[slot];
                state.started = true;
                let acc = &mut self.builds[state.build].acc;
                acc.mark_progress(&state.key, true, true);
                if let Some(ms) = std::str::from_utf8(&rest[4..])
                    .ok()
                    .and_then(|s| parse_seconds(s.trim()))
                {
                    acc.set_stated_duration(&state.key, ms);
                }
                let name = state.name.as_deref().unwrap_or_default();
                if name.starts_with("exporting to ") {
                    self.builds[state.build].closed = true;
                }
                self.release_tail(slot);
                return;
            }
            Some(b'C') if rest == b"CACHED" => {
                self.mark_finished(slot);
                let state = &mut self.slots[slot];
                state.started = true;
                let acc = &mut self.builds[state.build].acc;
                acc.on_vertex(Vertex {
                    digest: state.key.clone(),
                    cached: true,
                    ..Vertex::default()
                });
                acc.mark_progress(&state.key, true, true);
                self.release_tail(slot);
                return;
            }
            Some(b'C') if rest == b"CANCELED" || rest == b"CANCELLED" => {
                self.fail(slot, "context canceled");
                return;
            }
            Some(b'E') if rest == b"ERROR" || rest.starts_with(b"ERROR:") => {
                let message = String::from_utf8_lossy(&rest[5..]);
                let message = message.trim_start_matches(':').trim();
                let message = if message.is_empty() {
                    "failed"
                } else {
                    message
                };
                self.fail(slot, message);
                return;
            }
            Some(b'.') if rest == b"..." => return,
            Some(b'W') if rest.starts_with(b"WARN:") => {
                let state = &self.slots[slot];
                let short = String::from_utf8_lossy(&rest[5..])
                    .trim()
                    .as_bytes()
                    .to_vec();
                self.builds[state.build].acc.on_warning(VertexWarning {
                    vertex: state.key.clone(),
                    short,
                    ..VertexWarning::default()
                });
                return;
            }
            _ => {}
        }
        self.status(slot, rest);
    }

    fn mark_finished(&mut self, slot: usize) {
        let state = &mut self.slots[slot];
        if !state.finished {
            state.finished = true;
            let build = &mut self.builds[state.build];
            build.running = build.running.saturating_sub(1);
        }
    }

    fn fail(&mut self, slot: usize, message: &str) {
        self.mark_finished(slot);
        let tail = std::mem::take(&mut self.slots[slot].tail);
        let state = &self.slots[slot];
        let acc = &mut self.builds[state.build].acc;
        for line in &tail {
            acc.push_log_line(&state.key, &String::from_utf8_lossy(line));
        }
        acc.on_vertex(Vertex {
            digest: state.key.clone(),
            error: Some(message.to_string()),
            ..Vertex::default()
        });
        self.spare_lines.extend(tail);
    }

    fn release_tail(&mut self, slot: usize) {
        let tail = std::mem::take(&mut self.slots[slot].tail);
        if self.spare_lines.len() < 4 * TAIL_LINES {
            self.spare_lines.extend(tail);
        }
    }

    fn output(&mut self, slot: usize, text: &[u8]) {
        self.mark_started(slot);
        let state = &mut self.slots[slot];
        if !state.saw_output {
            state.saw_output = true;
            self.builds[state.build].acc.on_log(VertexLog {
                vertex: state.key.clone(),
                ..VertexLog::default()
            });
        }
        if state.finished {
            // Output after the vertex ended (rare): straight to the accumulator.
            let line = String::from_utf8_lossy(text);
            self.builds[state.build]
                .acc
                .push_log_line(&state.key, &line);
            return;
        }
        let mut line = if state.tail.len() == TAIL_LINES {
            state.tail.pop_front().unwrap_or_default()
        } else {
            self.spare_lines.pop().unwrap_or_default()
        };
        line.clear();
        line.extend_from_slice(&text[..text.len().min(TAIL_LINE_BYTES)]);
        state.tail.push_back(line);
    }

    fn status(&mut self, slot: usize, text: &[u8]) {
        self.mark_started(slot);
        let forwarded = text.starts_with(b"sha256:")
            || text.starts_with(b"writing layer ")
            || text.starts_with(b"pushing manifest for ")
            || text.starts_with(b"inferred cache manifest type:")
            || text.starts_with(b"skipping cache export");
        let naming = text.strip_prefix(b"naming to ");
        if !forwarded && naming.is_none() {
            return;
        }
        let text = String::from_utf8_lossy(text);
        let build = self.slots[slot].build;
        if let Some(name) = naming {
            let name = String::from_utf8_lossy(name);
            let name = name.trim().trim_end_matches(" done");
            self.builds[build]
                .image
                .get_or_insert_with(|| name.to_string());
            return;
        }
        if let Some(target) = text.strip_prefix("pushing manifest for ")
            && let Some((name, _)) = target.split_once('@')
        {
            self.builds[build]
                .image
                .get_or_insert_with(|| name.to_string());
        }
        if bare_digest(text.as_bytes()).is_some() {
            return;
        }
        let (id, total) = status_row(&text);
        if id.starts_with("sha256:") {
            if total <= 0 {
                return;
            }
            // Layer rows repeat as the download progresses: pass each size on once.
            let hash = fingerprint(&id);
            let layers = &mut self.slots[slot].layers;
            match layers.iter_mut().find(|(h, _)| *h == hash) {
                Some((_, seen)) if *seen >= total => return,
                Some((_, seen)) => *seen = total,
                None => layers.push((hash, total)),
            }
        }
        let state = &self.slots[slot];
        self.builds[build].acc.on_status(VertexStatus {
            id: id.into_owned(),
            vertex: state.key.clone(),
            total,
            ..VertexStatus::default()
        });
    }

    fn finish(mut self, source: &str) -> Build {
        self.flush_pending();
        let mut problems = std::mem::take(&mut self.problems);
        if self.skipped_before_progress > 0 {
            problems.push(format!(
                "{} line(s) before the first progress line (`#N ...`) are not BuildKit progress \
                 (a CI step header, the command line ...): skipped",
                self.skipped_before_progress
            ));
        }
        if self.cut_lines > 0 {
            problems.push(format!(
                "{} line(s) longer than {} KiB: only their first {} KiB were read",
                self.cut_lines,
                MAX_LINE_BYTES / 1024,
                MAX_LINE_BYTES / 1024
            ));
        }
        if self.builds_left_out {
            problems.push(format!(
                "the log holds more than {MAX_BUILDS} builds: the later ones were left out"
            ));
        }
        let mut results: Vec<(Build, BuildSummary)> = Vec::new();
        for state in self.builds {
            let summary = BuildSummary {
                first_line: state.first_line,
                image: state.image.clone(),
                interleaved: state.interleaved,
            };
            let build = finish_build(state);
            results.push((build, summary));
        }
        let with_steps = results.iter().filter(|(b, _)| !b.steps.is_empty()).count();
        let mut build = if with_steps <= 1 {
            results
                .into_iter()
                .map(|(b, _)| b)
                .reduce(|kept, b| if b.steps.is_empty() { kept } else { b })
                .unwrap_or_default()
        } else {
            let parts: Vec<(Build, BuildSummary)> = results
                .into_iter()
                .filter(|(b, _)| !b.steps.is_empty())
                .collect();
            let interleaved = parts.iter().any(|(_, s)| s.interleaved);
            let list: Vec<String> = parts
                .iter()
                .map(|(_, s)| match &s.image {
                    Some(image) => format!("line {}: {image}", s.first_line),
                    None => format!("line {}", s.first_line),
                })
                .collect();
            problems.push(format!(
                "the log holds {} builds{} ({}): each was read apart, and their steps are listed \
                 one build after another; pass one build's part of the log to report on it alone",
                parts.len(),
                if interleaved {
                    ", run in parallel with their lines interleaved"
                } else {
                    ""
                },
                list.join("; ")
            ));
            concatenate(parts.into_iter().map(|(b, _)| b).collect())
        };
        build
            .problems
            .extend(problems.into_iter().map(|message| Problem {
                source: source.to_string(),
                kind: ProblemKind::Input,
                message,
            }));
        build
    }
}

struct BuildSummary {
    first_line: u64,
    image: Option<String>,
    interleaved: bool,
}

fn finish_build(state: BuildState) -> Build {
    let trailer = ClientErrorText::parse(&state.error_lines);
    let mut accumulator = state.acc;
    if let Some(line) = trailer.dockerfile_line {
        accumulator.set_dockerfile_line_of_failed_step(line);
    }
    let mut build = accumulator.finish();
    conclude_with_client_error(&mut build, trailer.error);
    build
}

/// The error the client printed after the progress: the build failed (or was canceled) even
/// when no step said so, and the steps it never reached are listed as not run.
pub(crate) fn conclude_with_client_error(build: &mut Build, error: Option<String>) {
    if let Some(error) = error {
        let canceled = error.trim_end().ends_with("context canceled");
        build.build.error = Some(error);
        if matches!(
            build.build.status,
            BuildStatus::Unknown | BuildStatus::Completed
        ) {
            build.build.status = if canceled {
                BuildStatus::Canceled
            } else {
                BuildStatus::Failed
            };
        }
    }
    if matches!(
        build.build.status,
        BuildStatus::Failed | BuildStatus::Canceled
    ) {
        add_unlisted_steps(build);
    }
}

/// Several builds of one log, one after another in one `Build`.
fn concatenate(parts: Vec<Build>) -> Build {
    let mut all = Build::default();
    let rank = |s: BuildStatus| match s {
        BuildStatus::Failed => 3,
        BuildStatus::Canceled => 2,
        BuildStatus::Unknown => 1,
        BuildStatus::Completed => 0,
    };
    for part in parts {
        if rank(part.build.status) > rank(all.build.status) || all.steps.is_empty() {
            all.build.status = part.build.status;
            all.build.error = part.build.error.clone().or(all.build.error);
        }
        for platform in part.build.platforms {
            if !all.build.platforms.contains(&platform) {
                all.build.platforms.push(platform);
            }
        }
        all.steps.extend(part.steps);
        all.cache_imports.extend(part.cache_imports);
        all.cache_exports.extend(part.cache_exports);
        all.exports.extend(part.exports);
        for warning in part.warnings {
            if !all.warnings.contains(&warning) {
                all.warnings.push(warning);
            }
        }
        all.problems.extend(part.problems);
    }
    all
}

/// A plain log lists a step only once it starts, so after a failure the steps that never
/// started are missing. Their stage's `[i/N]` labels say how many there are: they are added,
/// as not run, with the position BuildKit would have named them by (the instruction is unknown).
pub(crate) fn add_unlisted_steps(build: &mut Build) {
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
pub(crate) fn split_vertex_line(line: &[u8]) -> Option<(u64, &[u8])> {
    let rest = line.strip_prefix(b"#")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let number = rest[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let text = rest[digits..].strip_prefix(b" ")?;
    Some((number, text))
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &text[..end]
}

/// A vertex name rather than a line under one: `[stage 2/5] RUN ...`, `[internal] ...`, and
/// the unbracketed names BuildKit gives cache and export vertices.
fn looks_like_header(text: &[u8]) -> bool {
    match text.first() {
        Some(b'[') => memchr::memchr(b']', text).is_some(),
        Some(b'i') => text.starts_with(b"importing cache manifest from "),
        Some(b'e') => text.starts_with(b"exporting to ") || text.starts_with(b"exporting cache"),
        Some(b'r') => text.starts_with(b"resolve image config for "),
        Some(b'd') => text.starts_with(b"docker-image://"),
        _ => false,
    }
}

/// A line that can only come under a vertex's header, never be one.
fn is_continuation(text: &[u8]) -> bool {
    log_output(text).is_some()
        || text.starts_with(b"DONE")
        || text == b"CACHED"
        || text.starts_with(b"CANCELED")
        || text.starts_with(b"ERROR")
        || text == b"..."
        || text.starts_with(b"WARN:")
        || text.starts_with(b"sha256:")
        || text.starts_with(b"extracting ")
        || text.starts_with(b"transferring ")
        || text.starts_with(b"resolve ")
}

/// The first vertex BuildKit prints for a build.
fn is_first_vertex(name: &[u8]) -> bool {
    name.starts_with(b"[internal] load build definition")
        || name.starts_with(b"[internal] load .dockerignore")
}

/// `[builder 3/6] RUN ...` -> (Some("builder"), 6).
fn step_label(name: &str) -> Option<(Option<String>, u32)> {
    use crate::readers::vertex_name::{VertexClass, classify};
    match classify(name) {
        VertexClass::Step(step) => Some((step.stage, step.total?)),
        _ => None,
    }
}

/// `[ 1/13] FROM docker.io/library/python:3.11-slim@sha256:...` -> the image without digest.
fn from_image(name: &str) -> Option<String> {
    let (_, rest) = name.split_once("] FROM ")?;
    let image = rest.split_whitespace().next()?;
    Some(image.split('@').next().unwrap_or(image).to_string())
}

/// Lines of the client's error block worth keeping (`ERROR: failed to solve: ...`,
/// `Dockerfile:6`).
fn is_error_text(line: &[u8]) -> bool {
    let line = trim_end(line);
    let start = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let line = &line[start..];
    if line.starts_with(b"ERROR: failed to ") || line.starts_with(b"error: failed to solve") {
        return true;
    }
    match line.iter().rposition(|b| *b == b':') {
        Some(colon) if colon + 1 < line.len() && colon < 256 => {
            let (file, number) = (&line[..colon], &line[colon + 1..]);
            number.iter().all(u8::is_ascii_digit)
                && !file.contains(&b' ')
                && file
                    .to_ascii_lowercase()
                    .windows(10)
                    .any(|w| w == b"dockerfile")
        }
        _ => false,
    }
}

fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A line holding only a vertex digest (Docker Engine 20.10 prints one under each header).
fn bare_digest<T: AsRef<[u8]> + ?Sized>(text: &T) -> Option<&str> {
    let text = std::str::from_utf8(trim_end(text.as_ref())).ok()?;
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(text)
}

/// `0.043 compile error` -> `compile error` (RUN output prefixed with elapsed seconds).
pub(crate) fn log_output(text: &[u8]) -> Option<&[u8]> {
    let whole = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if whole == 0 || text.get(whole) != Some(&b'.') {
        return None;
    }
    let fraction = text[whole + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if fraction == 0 {
        return None;
    }
    match text.get(whole + 1 + fraction) {
        None => Some(&[]),
        Some(b' ') => Some(&text[whole + 2 + fraction..]),
        Some(_) => None,
    }
}

/// `0.1s` -> 100.
pub(crate) fn parse_seconds(text: &str) -> Option<u64> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// A status row: its id without the timing suffix, and the total size when it shows
/// `current / total` (layer transfers: `sha256:… 6.29MB / 6.29MB 0.0s done`): the row's id and
/// its total (0 when it gives none). Rows of up to eight words, every layer row among them, are
/// read without allocating: a pull prints thousands.
pub(crate) fn status_row(text: &str) -> (Cow<'_, str>, i64) {
    let mut words = [""; 8];
    let mut count = 0;
    for word in text.split_ascii_whitespace() {
        let Some(slot) = words.get_mut(count) else {
            let words: Vec<&str> = text.split_ascii_whitespace().collect();
            let (kept, total) = row_id_words(&words);
            return (Cow::Owned(words[..kept].join(" ")), total);
        };
        *slot = word;
        count += 1;
    }
    let (kept, total) = row_id_words(&words[..count]);
    let id = match kept {
        0 => Cow::Borrowed(""),
        1 => Cow::Borrowed(words[0]),
        _ => Cow::Owned(words[..kept].join(" ")),
    };
    (id, total)
}

/// How many of a status row's words name it, and the total its `current / total` gives.
fn row_id_words(words: &[&str]) -> (usize, i64) {
    let mut words = words;
    if let [rest @ .., "done"] = words {
        words = rest;
    }
    if let [rest @ .., last] = words
        && parse_seconds(last).is_some()
    {
        words = rest;
    }
    if let Some(slash) = words.iter().position(|w| *w == "/")
        && slash >= 1
        && let Some(size) = words.get(slash + 1).and_then(|w| parse_size(w))
    {
        return (slash - 1, size);
    }
    if let [id, size] = words
        && id.starts_with("sha256:")
        && let Some(size) = parse_size(size)
    {
        return (1, size);
    }
    (words.len(), 0)
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

    fn read(log: &str) -> Build {
        read_plain(log.as_bytes(), "b.log").unwrap()
    }

    fn statuses(build: &Build) -> Vec<(String, StepStatus)> {
        build
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.status))
            .collect()
    }

    #[test]
    fn line_grammar() {
        assert_eq!(
            split_vertex_line(b"#12 DONE 0.1s"),
            Some((12, &b"DONE 0.1s"[..]))
        );
        assert_eq!(split_vertex_line(b"#x DONE"), None);
        assert_eq!(
            log_output(b"0.043 compile error: x"),
            Some(&b"compile error: x"[..])
        );
        assert_eq!(log_output(b"transferring context: 101B done"), None);
        assert_eq!(log_output(b"1.5MB / 2MB"), None);
        assert_eq!(parse_seconds("1.25s"), Some(1250));
        assert_eq!(
            status_row("sha256:ea72 6.29MB / 6.29MB 0.0s done"),
            ("sha256:ea72".into(), 6_290_000)
        );
        assert_eq!(
            status_row("pushing manifest for r:v2@sha256:15 0.0s done"),
            ("pushing manifest for r:v2@sha256:15".into(), 0)
        );
        assert_eq!(
            status_row("sha256:ea72 12.5kB"),
            ("sha256:ea72".into(), 12_500)
        );
        assert_eq!(
            status_row("extracting sha256:ea72 0.3s done"),
            ("extracting sha256:ea72".into(), 0)
        );
        // Longer than the words read in place: the same answer, allocated.
        assert_eq!(
            status_row("a b c d e f g h sha256:ea72 1MB / 2MB 0.1s"),
            ("a b c d e f g h sha256:ea72".into(), 2_000_000)
        );
        assert_eq!(
            status_row("a b c d e f g h i j k 0.1s done"),
            ("a b c d e f g h i j k".into(), 0)
        );
        assert!(is_error_text(b"Dockerfile:6"));
        assert!(is_error_text(b"ERROR: failed to build: failed to solve: x"));
        assert!(!is_error_text(b"listening on :8080"));
    }

    #[test]
    fn lines_are_marked_when_they_hold_an_escape() {
        let text = "plain\n\u{1b}[0mcolour\nno\nend \u{1b}[K\n\u{1b}\u{1b}\nlast";
        for capacity in [1, 3, 7, 64] {
            let reader = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let mut seen = Vec::new();
            for_each_marked_line(reader, 1024, |line, escaped| {
                seen.push((String::from_utf8_lossy(line).into_owned(), escaped));
            })
            .unwrap();
            let want: Vec<(String, bool)> = text
                .split('\n')
                .map(|l| (l.to_string(), l.contains('\u{1b}')))
                .collect();
            assert_eq!(seen, want, "buffer of {capacity}");
        }
    }

    #[test]
    fn engine_20_10_digest_lines_key_the_vertex() {
        let log = format!(
            "#5 [2/2] RUN true\n#5 sha256:{}\n#5 CACHED\n",
            "a".repeat(64)
        );
        let build = read(&log);
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
        let build = read(log);
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

    #[test]
    fn text_before_the_first_progress_line_is_skipped_and_counted() {
        let log = "Run docker build -t app .\n/usr/bin/docker buildx build .\n#1 [2/2] RUN true\n#1 DONE 0.1s\n";
        let build = read(log);
        assert_eq!(
            statuses(&build),
            [("[2/2] RUN true".into(), StepStatus::Rebuilt)]
        );
        assert!(
            build
                .problems
                .iter()
                .any(|p| p.message.starts_with("2 line(s) before")),
            "{:?}",
            build.problems
        );
    }

    #[test]
    fn lines_before_their_header_keep_the_step() {
        // A log cut at its start: #3's output comes first, its header later.
        let log = "#3 7.029 Downloading x\n#3 ...\n\n#4 [2/3] COPY . .\n#4 DONE 0.1s\n\n#3 [1/3] RUN pip install\n#3 DONE 16.6s\n";
        let build = read(log);
        assert_eq!(
            statuses(&build),
            [
                ("[1/3] RUN pip install".into(), StepStatus::Rebuilt),
                ("[2/3] COPY . .".into(), StepStatus::Rebuilt)
            ]
        );
        assert_eq!(build.steps[0].duration_ms, Some(16_600));
    }

    #[test]
    fn one_huge_line_is_cut_and_the_log_still_reads() {
        let mut log = b"#1 [1/2] RUN big\n#1 0.1 ".to_vec();
        log.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE_BYTES));
        log.extend_from_slice(b"\n#1 DONE 0.2s\n");
        let build = read_plain(&log[..], "b.log").unwrap();
        assert_eq!(build.steps[0].status, StepStatus::Rebuilt);
        assert!(build.problems.iter().any(|p| p.message.contains("KiB")));
    }

    #[test]
    fn sequential_builds_are_read_apart() {
        let one = "#0 building with \"default\" instance using docker driver\n\n#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n\n#2 [2/2] RUN a\n#2 CACHED\n\n#3 exporting to image\n#3 naming to docker.io/library/a:1 done\n#3 DONE 0.1s\n";
        let two = one
            .replace("RUN a\n#2 CACHED", "RUN b\n#2 DONE 1.0s")
            .replace("a:1", "b:1");
        let build = read(&format!("{one}{two}"));
        assert_eq!(
            statuses(&build),
            [
                ("[2/2] RUN a".into(), StepStatus::Cached),
                ("[2/2] RUN b".into(), StepStatus::Rebuilt)
            ]
        );
        let note = build
            .problems
            .iter()
            .find(|p| p.message.contains("2 builds"))
            .expect("the builds are named");
        assert!(
            note.message.contains("a:1") && note.message.contains("b:1"),
            "{}",
            note.message
        );
        assert!(!note.message.contains("parallel"), "{}", note.message);
    }

    #[test]
    fn parallel_builds_with_the_same_numbers_are_not_merged() {
        // Two builds whose lines interleave; both number their vertices from #1.
        let log = "\
#0 building with \"default\" instance using docker driver
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#0 building with \"default\" instance using docker driver
#1 [internal] load build definition from Dockerfile
#2 [internal] load metadata for docker.io/library/node:20
#1 DONE 0.0s
#2 [internal] load metadata for docker.io/library/python:3
#3 [build 1/3] FROM docker.io/library/node:20@sha256:aa
#2 DONE 0.1s
#3 [ 1/4] FROM docker.io/library/python:3@sha256:bb
#4 [build 2/3] RUN npm ci
#4 12.1 added 3 packages
#4 DONE 12.5s
#4 [ 2/4] WORKDIR /app
#4 CACHED
#5 [ 3/4] COPY . .
#5 DONE 0.2s
";
        let build = read(log);
        assert_eq!(
            statuses(&build),
            [
                (
                    "[build 1/3] FROM docker.io/library/node:20@sha256:aa".into(),
                    StepStatus::Incomplete
                ),
                ("[build 2/3] RUN npm ci".into(), StepStatus::Rebuilt),
                (
                    "[ 1/4] FROM docker.io/library/python:3@sha256:bb".into(),
                    StepStatus::Incomplete
                ),
                ("[ 2/4] WORKDIR /app".into(), StepStatus::Cached),
                ("[ 3/4] COPY . .".into(), StepStatus::Rebuilt),
            ]
        );
        assert!(
            build
                .problems
                .iter()
                .any(|p| p.message.contains("2 builds, run in parallel")),
            "{:?}",
            build.problems
        );
    }

    #[test]
    fn a_canceled_build_is_canceled() {
        let log = "#4 [runner 1/3] FROM docker.io/library/node:20\n#4 CANCELED\nERROR: failed to solve: Canceled: context canceled\n";
        let build = read(log);
        assert_eq!(build.build.status, BuildStatus::Canceled);
        assert_eq!(build.steps.len(), 3, "{:?}", statuses(&build));
        assert_eq!(build.steps[2].status, StepStatus::NotRun);
    }
}
