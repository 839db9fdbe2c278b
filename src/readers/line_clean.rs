//! What CI systems and terminals add around the lines of a build log, removed so the progress
//! line underneath can be read: the timestamp GitHub Actions puts before every line of a raw
//! job log (`2026-01-01T00:00:00.0000000Z `), GitLab's (`2026-01-01T00:00:00.000000Z 00O `) and
//! its `section_start:`/`section_end:` markers, Jenkins' Timestamper (`00:10:13  `,
//! `[2026-01-01T00:00:00.000Z] `), and ANSI colour and cursor sequences.
//!
//! Works on bytes: a line is only copied when it holds escape sequences to remove.

/// The line without its line ending, CI prefixes and escape sequences. `scratch` holds the
/// cleaned copy when one is needed.
pub fn clean<'a>(line: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    clean_marked(line, memchr::memchr(0x1b, line).is_some(), scratch)
}

/// `clean`, told whether the line holds an escape byte (found by a search over more than it).
pub fn clean_marked<'a>(line: &'a [u8], escaped: bool, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let line = trim_line_end(line);
    let line = if escaped {
        scratch.clear();
        strip_escapes(line, scratch);
        scratch.as_slice()
    } else {
        line
    };
    strip_prefixes(line)
}

/// `\n`, `\r\n` and stray trailing `\r` removed.
pub fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Timestamps and GitLab section markers at the start of a line.
pub fn strip_prefixes(line: &[u8]) -> &[u8] {
    let mut line = line;
    // Quick exit for the common case: a progress line as BuildKit prints it.
    if line.first().is_none_or(|b| *b == b'#') {
        return line;
    }
    if let Some(rest) = strip_timestamp(line) {
        line = rest;
        if let Some(rest) = strip_gitlab_stream(line) {
            line = rest;
        }
    }
    for marker in [&b"section_start:"[..], b"section_end:"] {
        if line.starts_with(marker) {
            // `section_start:1699089051:step_script\r` (the header text follows the `\r`).
            return match memchr::memchr(b'\r', line) {
                Some(cr) => &line[cr + 1..],
                None => &[],
            };
        }
    }
    line
}

/// `2026-01-01T00:00:00.0000000Z `, `[2026-01-01T00:00:00.000Z] `, `00:10:13  `,
/// `[00:10:13] ` -> the rest of the line.
fn strip_timestamp(line: &[u8]) -> Option<&[u8]> {
    let (bracketed, body) = match line.strip_prefix(b"[") {
        Some(body) => (true, body),
        None => (false, line),
    };
    let after = iso_datetime(body).or_else(|| clock_time(body))?;
    let rest = &body[after..];
    let rest = if bracketed {
        rest.strip_prefix(b"]")?
    } else {
        rest
    };
    // Timestamps are followed by at least one space (Jenkins pads with two).
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    (spaces > 0 || rest.is_empty()).then(|| &rest[spaces..])
}

/// Length of `YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM]` at the start of `text`.
fn iso_datetime(text: &[u8]) -> Option<usize> {
    let date = text.get(..11)?;
    let shape_ok = date[..4].iter().all(u8::is_ascii_digit)
        && date[4] == b'-'
        && date[5..7].iter().all(u8::is_ascii_digit)
        && date[7] == b'-'
        && date[8..10].iter().all(u8::is_ascii_digit)
        && (date[10] == b'T' || date[10] == b' ');
    if !shape_ok {
        return None;
    }
    let mut end = 11 + clock_time(&text[11..])?;
    match text.get(end) {
        Some(b'Z') => end += 1,
        Some(b'+' | b'-') => {
            let zone = text.get(end + 1..)?;
            let digits = zone
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b':');
            end += 1 + digits.count();
        }
        _ => {}
    }
    Some(end)
}

/// Length of `HH:MM:SS[.fff]` at the start of `text`.
fn clock_time(text: &[u8]) -> Option<usize> {
    let clock = text.get(..8)?;
    let shape_ok = clock[..2].iter().all(u8::is_ascii_digit)
        && clock[2] == b':'
        && clock[3..5].iter().all(u8::is_ascii_digit)
        && clock[5] == b':'
        && clock[6..8].iter().all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let mut end = 8;
    if text.get(end) == Some(&b'.') {
        let fraction = text[end + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if fraction > 0 {
            end += 1 + fraction;
        }
    }
    Some(end)
}

/// GitLab's stream marker after its timestamp: `00O `, `01E `, `00O+ `.
fn strip_gitlab_stream(line: &[u8]) -> Option<&[u8]> {
    let [a, b, stream, rest @ ..] = line else {
        return None;
    };
    if !(a.is_ascii_hexdigit() && b.is_ascii_hexdigit() && matches!(stream, b'O' | b'E')) {
        return None;
    }
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    rest.strip_prefix(b" ")
}

/// Copies `line` into `out` without ANSI escape sequences (CSI, OSC and two-byte escapes).
pub fn strip_escapes(line: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < line.len() {
        let Some(offset) = memchr::memchr(0x1b, &line[i..]) else {
            out.extend_from_slice(&line[i..]);
            return;
        };
        out.extend_from_slice(&line[i..i + offset]);
        i += offset + 1;
        match line.get(i) {
            Some(b'[') => {
                // CSI: parameters and intermediates, then one final byte.
                i += 1;
                while let Some(b) = line.get(i) {
                    i += 1;
                    if (0x40..=0x7e).contains(b) {
                        break;
                    }
                }
            }
            Some(b']') => {
                // OSC: up to BEL or ESC `\`.
                i += 1;
                while let Some(b) = line.get(i) {
                    if *b == 0x07 {
                        i += 1;
                        break;
                    }
                    if *b == 0x1b && line.get(i + 1) == Some(&b'\\') {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            Some(b) if (0x20..=0x2f).contains(b) => {
                // Character-set selection and the like: intermediates, then a final byte.
                while let Some(b) = line.get(i) {
                    i += 1;
                    if (0x30..=0x7e).contains(b) {
                        break;
                    }
                }
            }
            Some(_) => i += 1,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(line: &str) -> String {
        let mut scratch = Vec::new();
        String::from_utf8(clean(line.as_bytes(), &mut scratch).to_vec()).unwrap()
    }

    #[test]
    fn ci_prefixes_are_removed() {
        let cases = [
            (
                "2025-10-01T21:48:24.3152732Z #1 [internal] load build definition\n",
                "#1 [internal] load build definition",
            ),
            (
                "2024-01-01T12:00:00.123456Z 00O #5 DONE 0.1s\r\n",
                "#5 DONE 0.1s",
            ),
            ("2024-01-01T12:00:00.123456Z 01E+ #5 CACHED", "#5 CACHED"),
            (
                "00:10:16  #1 [internal] load build definition",
                "#1 [internal] load build definition",
            ),
            ("00:00:01.234  #2 DONE 0.0s", "#2 DONE 0.0s"),
            ("[2024-01-01T12:00:00.000Z] #3 CACHED", "#3 CACHED"),
            ("[00:10:16] #3 CACHED", "#3 CACHED"),
            (
                "\u{1b}[0Ksection_start:1699089051:step_script\r\u{1b}[0K\u{1b}[36;1mExecuting step\u{1b}[0;m",
                "Executing step",
            ),
            ("\u{1b}[0Ksection_end:1699089095:step_script\r\u{1b}[0K", ""),
            (
                "\u{1b}[34m => CACHED [2/5] WORKDIR /app\u{1b}[0m",
                " => CACHED [2/5] WORKDIR /app",
            ),
            ("\u{1b}]0;title\u{7}#4 DONE", "#4 DONE"),
            (
                "#7 12.30 output 10:00:00  kept",
                "#7 12.30 output 10:00:00  kept",
            ),
            ("[Pipeline] sh", "[Pipeline] sh"),
            (
                "2024/03/29 14:00:00 Step 7/49",
                "2024/03/29 14:00:00 Step 7/49",
            ),
            ("", ""),
        ];
        for (line, want) in cases {
            assert_eq!(cleaned(line), want, "{line:?}");
        }
    }

    #[test]
    fn damaged_escapes_do_not_panic() {
        for line in [
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}]no end",
            "a\u{1b}(",
            "\u{1b}[31",
        ] {
            let _ = cleaned(line);
        }
    }
}
