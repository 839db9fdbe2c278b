//! Text made inert for the GitHub Actions runner, which reads a step's output (standard
//! output and standard error) line by line, CR, LF and CRLF each ending a line, and runs a
//! line as a workflow command when it starts with `::` after leading white space
//! (`::add-mask::`, `::stop-commands::`, `::error`), or when it holds `##[` anywhere (the
//! legacy form). A report printed in a `run:` step must not do either.

use crate::render::markdown::is_invisible;

/// Breaks a command without changing what is read: a zero-width space.
const BREAK: char = '\u{200b}';

/// `text` with no line the runner would run: CRs (and other control characters but tabs
/// and line feeds) become spaces, a leading `::` becomes `:` + zero-width space + `:`, and
/// `##[` gets a zero-width space before its bracket.
pub fn lines(text: &str) -> String {
    inert_lines(text, false)
}

/// [`lines`] for a rendering in colour: the SGR escapes (`ESC [ digits;… m`) that set colours
/// and weight stay; every other control character becomes a space, as in [`lines`]. Meant
/// for a renderer's output whose build text was made inert before it was laid out, so the
/// escapes that stay are the renderer's own.
pub fn coloured_lines(text: &str) -> String {
    inert_lines(text, true)
}

/// The length of the SGR escape `text` starts with.
fn sgr_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("\x1b[")?;
    let params = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (rest.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

fn inert_lines(text: &str, keep_colour: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = String::with_capacity(raw.len());
        let mut at = 0;
        while let Some(c) = raw[at..].chars().next() {
            if let Some(len) = sgr_len(&raw[at..]).filter(|_| keep_colour) {
                line.push_str(&raw[at..at + len]);
                at += len;
                continue;
            }
            line.push(if c != '\t' && c.is_control() { ' ' } else { c });
            at += c.len_utf8();
        }
        // Where the runner looks for `::`: past white space, invisible characters and
        // colour escapes.
        let mut start = 0;
        while let Some(c) = line[start..].chars().next() {
            if let Some(len) = sgr_len(&line[start..]).filter(|_| keep_colour) {
                start += len;
            } else if c.is_whitespace() || is_invisible(c) {
                start += c.len_utf8();
            } else {
                break;
            }
        }
        let (lead, rest) = line.split_at(start);
        out.push_str(lead);
        let rest = match rest.strip_prefix("::") {
            Some(tail) => {
                out.push(':');
                out.push(BREAK);
                out.push(':');
                tail
            }
            None => rest,
        };
        out.push_str(&rest.replace("##[", "##\u{200b}["));
    }
    out
}

/// JSON text made inert the same way without changing its data: `[` after `##` (only ever
/// inside a string) written as the escape `\u005b`. Line breaks inside strings are escaped
/// by JSON itself.
pub fn json(text: &str) -> String {
    text.replace("##[", "##\\u005b")
}

/// Whether the runner would take `line` for a workflow command (for tests of what cachehit
/// prints).
pub fn is_command(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the runner splits them: on CR, LF and CRLF.
    fn runner_lines(text: &str) -> Vec<&str> {
        text.split(['\r', '\n']).collect()
    }

    #[test]
    fn no_line_becomes_a_workflow_command() {
        let hostile = "[2/5] RUN x\r::error::spoofed\n  ::add-mask::secret\n\u{3000}\u{feff}::stop-commands::tok\n\
                       echo ##[set-output name=a]b\n\u{0085}::warning::x\n\t\x1b[31m::notice::y";
        let text = lines(hostile);
        for line in runner_lines(&text) {
            assert!(!is_command(line), "{line:?} in {text:?}");
        }
        // What is read stays the same, less the invisible break.
        assert_eq!(
            text.replace(BREAK, "").lines().next(),
            Some("[2/5] RUN x ::error::spoofed")
        );
        assert_eq!(lines("plain text\n| a | b |"), "plain text\n| a | b |");
    }

    #[test]
    fn colour_escapes_stay_and_nothing_else_does() {
        let text = coloured_lines("\x1b[1;33m::error::x\x1b[0m\r::warning::y \x1b]8;;u\x07 ##[z");
        assert!(
            text.starts_with("\x1b[1;33m:\u{200b}:error::x\x1b[0m"),
            "{text:?}"
        );
        assert!(text.contains(" ]8;;u "), "{text:?}");
        for line in runner_lines(&text) {
            assert!(!is_command(line), "{line:?}");
        }
        // Without colour, the escape is a control character like any other.
        assert_eq!(lines("\x1b[1m"), " [1m");
    }

    #[test]
    fn json_keeps_its_data() {
        let value =
            serde_json::json!({"name": "##[add-mask]x ##[error]y", "other": "\r::error::z"});
        let text = json(&serde_json::to_string_pretty(&value).unwrap());
        for line in runner_lines(&text) {
            assert!(!is_command(line), "{line:?}");
        }
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
