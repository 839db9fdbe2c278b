//! The output a vertex printed, kept as it arrived (base64 text from rawjson, bytes from a
//! status log, lines from a plain log) and decoded only for the steps whose last lines the
//! report shows (failed and canceled ones), once, at the end.
//!
//! Each vertex keeps a window of its latest output ([`WINDOW_BYTES`]); all windows together
//! stay within [`TailBudget`]: under pressure the output of vertices that completed without
//! error goes first (its lines are never shown), then the oldest.

use std::collections::VecDeque;

/// Lines of output shown per failed step: enough to show why it failed.
pub(super) const LOG_TAIL_LINES: usize = 20;
pub(super) const LOG_LINE_MAX_CHARS: usize = 400;
/// Raw output kept per vertex: 20 lines of up to 1.2 kB each, decoded.
pub(super) const WINDOW_BYTES: usize = 32 * 1024;
/// Memory of all windows together, before the output of completed vertices is let go.
pub(super) const SOFT_BUDGET_BYTES: usize = 4 << 20;
/// Memory of all windows together, before the oldest output is let go whatever its vertex.
pub(super) const HARD_BUDGET_BYTES: usize = 8 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Standard base64 of the bytes (rawjson `data`).
    Base64,
    /// The bytes themselves (status logs, owned updates).
    Raw,
    /// One whole line without its newline (plain logs).
    Line,
}

/// A ring of the latest output: each byte is copied in once, and dropped by moving the
/// ring's start past the oldest chunks.
#[derive(Debug, Default)]
pub(super) struct OutputTail {
    ring: Vec<u8>,
    /// Where the oldest kept byte is in `ring`.
    head: usize,
    len: usize,
    chunks: VecDeque<(Encoding, usize)>,
    /// Output before the window was let go: its first line may be the end of a longer one.
    cut: bool,
}

/// The ring's size when full: a window of output before the latest chunk.
const RING_BYTES: usize = 2 * WINDOW_BYTES;

impl OutputTail {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The memory the window holds.
    fn held(&self) -> usize {
        self.ring.capacity() + self.chunks.capacity() * std::mem::size_of::<(Encoding, usize)>()
    }

    /// Appends a chunk; returns how much the memory held grew (or shrank, negative).
    pub(super) fn push(&mut self, encoding: Encoding, data: &[u8]) -> isize {
        let before = self.held();
        let data = if data.len() > WINDOW_BYTES {
            match encoding {
                // Only the beginning of a line is ever shown.
                Encoding::Line => &data[..WINDOW_BYTES],
                // The end of a chunk, on a 4-character boundary so it still decodes.
                Encoding::Base64 => {
                    self.cut = true;
                    let keep = WINDOW_BYTES - WINDOW_BYTES % 4;
                    let from = data.len() - keep - (data.len() % 4);
                    &data[from..]
                }
                Encoding::Raw => {
                    self.cut = true;
                    &data[data.len() - WINDOW_BYTES..]
                }
            }
        } else {
            data
        };
        let needed = self.len + data.len();
        if needed > self.ring.len() && self.ring.len() < RING_BYTES {
            self.grow(needed.max(2 * self.ring.len()).min(RING_BYTES));
        }
        // Let go of the oldest chunks until the new one fits.
        while self.len + data.len() > self.ring.len() {
            let (_, oldest) = self.chunks.pop_front().expect("a kept chunk");
            self.head = (self.head + oldest) % self.ring.len();
            self.len -= oldest;
            self.cut = true;
        }
        let at = (self.head + self.len) % self.ring.len().max(1);
        let first = data.len().min(self.ring.len() - at);
        self.ring[at..at + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
        self.chunks.push_back((encoding, data.len()));
        self.held() as isize - before as isize
    }

    /// Moves the kept bytes into a larger ring, oldest first.
    fn grow(&mut self, size: usize) {
        let mut ring = Vec::with_capacity(size);
        let (a, b) = self.kept();
        ring.extend_from_slice(a);
        ring.extend_from_slice(b);
        ring.resize(size, 0);
        self.ring = ring;
        self.head = 0;
    }

    /// The kept bytes, oldest first, in at most two pieces.
    fn kept(&self) -> (&[u8], &[u8]) {
        let end = self.head + self.len;
        if end <= self.ring.len() {
            (&self.ring[self.head..end], &[])
        } else {
            (&self.ring[self.head..], &self.ring[..end - self.ring.len()])
        }
    }

    /// Lets go of everything; returns the memory freed.
    pub(super) fn release(&mut self) -> usize {
        let freed = self.held();
        *self = OutputTail {
            cut: freed > 0 || self.cut,
            ..OutputTail::default()
        };
        freed
    }

    /// The last lines, each cut to [`LOG_LINE_MAX_CHARS`], then the unfinished last line.
    pub(super) fn lines(&self) -> Vec<String> {
        let mut lines = LineTail::default();
        let (a, b) = self.kept();
        let kept = [a, b].concat();
        let mut offset = 0;
        for (n, &(encoding, len)) in self.chunks.iter().enumerate() {
            let data = &kept[offset..offset + len];
            offset += len;
            match encoding {
                Encoding::Line => lines.push_line(&String::from_utf8_lossy(data)),
                Encoding::Raw => lines.push_data(data, n == 0 && self.cut),
                Encoding::Base64 => lines.push_data(&decode_base64(data), n == 0 && self.cut),
            }
        }
        let mut out: Vec<String> = lines.lines.into();
        if !lines.partial.is_empty() {
            out.push(lines.partial);
        }
        out
    }
}

/// Line splitting over chunks: complete lines are kept (the last [`LOG_TAIL_LINES`]), the
/// unfinished one waits for the next chunk.
#[derive(Default)]
struct LineTail {
    lines: VecDeque<String>,
    partial: String,
}

impl LineTail {
    fn push_data(&mut self, data: &[u8], after_cut: bool) {
        let text = String::from_utf8_lossy(data);
        let mut pending = std::mem::take(&mut self.partial);
        if after_cut {
            // The line the window starts in began before it.
            pending.push('…');
        }
        pending.push_str(&text);
        let mut lines = pending.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                self.partial = truncate_chars(line, LOG_LINE_MAX_CHARS);
                break;
            }
            self.push_line(line);
        }
    }

    fn push_line(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        if self.lines.len() == LOG_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines
            .push_back(truncate_chars(line, LOG_LINE_MAX_CHARS));
    }
}

pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Go's encoding/json writes `[]byte` as standard padded base64; anything else is kept as
/// the text it is rather than losing the update.
pub(super) fn decode_base64(text: &[u8]) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.to_vec())
}

/// The windows of all vertices together, and which to let go first.
#[derive(Debug, Default)]
pub(super) struct TailBudget {
    pub(super) total: usize,
    /// Vertices that completed without error while holding output.
    completed: VecDeque<u32>,
    /// Every vertex, in the order its window became non-empty.
    holders: VecDeque<u32>,
    /// Windows let go while their vertex was still running.
    pub(super) dropped_running: u64,
}

impl TailBudget {
    pub(super) fn grew(&mut self, vertex: u32, delta: isize, was_empty: bool) {
        self.total = self.total.saturating_add_signed(delta);
        if was_empty {
            self.holders.push_back(vertex);
        }
    }

    pub(super) fn completed(&mut self, vertex: u32) {
        self.completed.push_back(vertex);
    }

    pub(super) fn over_soft(&self) -> bool {
        self.total > SOFT_BUDGET_BYTES
    }

    /// The next vertex whose window to let go, and whether it is still running; `None`
    /// when the budget holds.
    pub(super) fn next_to_release(&mut self) -> Option<(u32, bool)> {
        if self.total > SOFT_BUDGET_BYTES
            && let Some(vertex) = self.completed.pop_front()
        {
            return Some((vertex, false));
        }
        if self.total > HARD_BUDGET_BYTES {
            return self.holders.pop_front().map(|v| (v, true));
        }
        None
    }

    pub(super) fn released(&mut self, freed: usize) {
        self.total = self.total.saturating_sub(freed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(text)
            .into_bytes()
    }

    #[test]
    fn lines_span_chunks_of_every_encoding() {
        let mut tail = OutputTail::default();
        tail.push(Encoding::Base64, &b64("first li"));
        tail.push(Encoding::Raw, b"ne\r\nsecond\n");
        tail.push(Encoding::Line, b"third");
        tail.push(Encoding::Base64, &b64("unfinished"));
        assert_eq!(
            tail.lines(),
            ["first line", "second", "third", "unfinished"]
        );
    }

    #[test]
    fn only_the_last_lines_are_kept_each_cut_to_its_limit() {
        let mut tail = OutputTail::default();
        for n in 0..30 {
            tail.push(Encoding::Raw, format!("line {n}\n").as_bytes());
        }
        tail.push(Encoding::Raw, "x".repeat(1000).as_bytes());
        let lines = tail.lines();
        assert_eq!(lines.len(), 21);
        assert_eq!(lines[0], "line 10");
        assert_eq!(lines[20].chars().count(), LOG_LINE_MAX_CHARS + 1);
        assert!(lines[20].ends_with('…'));
    }

    #[test]
    fn the_window_is_bounded_and_says_where_it_was_cut() {
        let mut tail = OutputTail::default();
        let line = format!("{}\n", "y".repeat(999));
        for _ in 0..1000 {
            tail.push(Encoding::Raw, line.as_bytes());
        }
        assert!(
            (WINDOW_BYTES..=RING_BYTES).contains(&tail.len()),
            "{}",
            tail.len()
        );
        assert_eq!(tail.ring.capacity(), RING_BYTES);
        let lines = tail.lines();
        assert_eq!(lines.len(), LOG_TAIL_LINES);

        // One huge chunk keeps its end, on a boundary that still decodes.
        let mut huge = OutputTail::default();
        let text = format!("{}\nlast words\n", "z".repeat(3 * WINDOW_BYTES));
        huge.push(Encoding::Base64, &b64(&text));
        let lines = huge.lines();
        assert_eq!(lines.last().map(String::as_str), Some("last words"));
        assert!(lines[0].starts_with('…'), "{:?}", &lines[0][..10]);
    }

    #[test]
    fn the_budget_lets_completed_output_go_first() {
        let mut budget = TailBudget::default();
        budget.grew(0, (SOFT_BUDGET_BYTES / 2) as isize, true);
        budget.grew(1, (SOFT_BUDGET_BYTES / 2) as isize, true);
        budget.completed(1);
        assert_eq!(budget.next_to_release(), None);
        budget.grew(2, 10, true);
        assert_eq!(budget.next_to_release(), Some((1, false)));
        budget.released(SOFT_BUDGET_BYTES / 2);
        assert_eq!(budget.next_to_release(), None);
        budget.grew(3, HARD_BUDGET_BYTES as isize, true);
        assert_eq!(budget.next_to_release(), Some((0, true)));
    }
}
