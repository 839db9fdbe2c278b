//! Plain progress logs with long lines. The input describes a log (the lines before, a unit
//! repeated into one line of up to 24 MiB, the lines after) that is generated while it is
//! read: the target holds none of it, so the allocation limit of `scripts/fuzz` (32 MB) sees
//! what the reader keeps of a line, and a reader that holds a whole line trips it. The
//! report of it, as a terminal table, holds no workflow command for the Actions runner.
#![no_main]

use std::io::{BufReader, Read};

use cachehit::{analysis, readers::plain::read_plain, render};
use libfuzzer_sys::fuzz_target;

/// The longest line generated: a buffer growing by doubling to hold it reaches 32 MiB.
const MAX_LINE: u64 = 24 * 1024 * 1024;

/// `head`, then `unit` `times` times, then a line feed and `tail`, generated on demand.
struct Generated<'a> {
    parts: [(&'a [u8], u64); 3],
    part: usize,
    repeat: u64,
    offset: usize,
}

impl Read for Generated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(&(bytes, times)) = self.parts.get(self.part) else {
                return Ok(0);
            };
            if self.repeat >= times || bytes.is_empty() {
                (self.part, self.repeat, self.offset) = (self.part + 1, 0, 0);
                continue;
            }
            let n = (bytes.len() - self.offset).min(buf.len());
            buf[..n].copy_from_slice(&bytes[self.offset..self.offset + n]);
            self.offset += n;
            if self.offset == bytes.len() {
                self.offset = 0;
                self.repeat += 1;
            }
            return Ok(n);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((count, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    // Lengths spread over every order of magnitude: most lines are short, some are huge.
    let bits = u32::from(count[0]) % 26;
    let count = u64::from(u32::from_le_bytes([0, count[1], count[2], count[3]]) >> 8)
        & ((1u64 << bits) - 1).max(1);
    let mut parts = rest.splitn(3, |b| *b == 0xff);
    let head = parts.next().unwrap_or_default();
    let unit = parts.next().unwrap_or_default();
    let tail = parts.next().unwrap_or_default();
    let times = if unit.is_empty() {
        0
    } else {
        count.min(MAX_LINE / unit.len() as u64)
    };
    let log = Generated {
        parts: [(head, 1), (unit, times), (tail, 1)],
        part: 0,
        repeat: 0,
        offset: 0,
    };
    if let Ok(build) = read_plain(BufReader::new(log), "fuzz.log") {
        let report = analysis::analyze(build);
        let table = render::table::render(&report, Some(100));
        for line in table.split(['\r', '\n']) {
            assert!(!render::inert::is_command(line), "{line:?}");
        }
    }
});
