//! Markdown escaping, on any text: GitHub must find no mention, issue reference, autolink,
//! HTML or invisible character in what `escape_text` makes of it, nor a line break; a code
//! span keeps no line break nor comment opener; a report of such text, cut at any budget,
//! stays within it.
#![no_main]

use cachehit::{
    analysis,
    model::{Build, CacheImport, Step, StepStatus},
    render::markdown::{escape_text, is_invisible, render_within, with_code_spans},
};
use libfuzzer_sys::fuzz_target;

/// The zero-width space the escaping inserts, as GitHub reads the entity.
const BREAK: char = '\u{200b}';

/// What GitHub would make live in escaped text.
fn live(escaped: &str) -> Option<String> {
    let text = escaped.replace("&#8203;", "\u{200b}");
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let before: String = chars[i.saturating_sub(3)..i].iter().collect();
        let found = match c {
            '@' if next != Some(BREAK) => "a mention",
            '#' if next.is_some_and(char::is_alphanumeric) => "an issue reference",
            '-' if before.to_ascii_lowercase().ends_with("gh")
                && next.is_some_and(|n| n.is_ascii_digit()) =>
            {
                "a GH- reference"
            }
            ':' if next == Some('/') && chars.get(i + 2) == Some(&'/') => "an autolinked URL",
            '.' if before.eq_ignore_ascii_case("www") => "a www. autolink",
            '<' | '>' | '\n' | '\r' => "markup or a line break",
            c if c != BREAK && is_invisible(c) => "an invisible character",
            _ => continue,
        };
        return Some(format!("{found} at {i} in {text:?}"));
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let escaped = escape_text(&text);
    if let Some(problem) = live(&escaped) {
        panic!("escape_text({text:?}) leaves {problem}");
    }
    let spans = with_code_spans(&text);
    assert!(!spans.contains('\n') && !spans.contains('\r'), "{spans:?}");
    assert!(!spans.contains("<!--"), "{spans:?}");

    let budget = data.first().map_or(0, |b| usize::from(*b) * 64);
    let build = Build {
        steps: text
            .split('\n')
            .take(64)
            .enumerate()
            .map(|(i, line)| Step {
                name: line.to_string(),
                instruction: line.to_string(),
                status: if i % 2 == 0 {
                    StepStatus::Rebuilt
                } else {
                    StepStatus::Cached
                },
                ..Step::default()
            })
            .collect(),
        cache_imports: vec![CacheImport {
            reference: text.to_string(),
            ..CacheImport::default()
        }],
        ..Build::default()
    };
    let report = analysis::analyze(build);
    let cut = render_within(&report, budget);
    // The closing lines of a hard cut are the one thing that can exceed a tiny budget.
    assert!(
        cut.chars().count() <= budget.max(40),
        "{} characters for a budget of {budget}",
        cut.chars().count()
    );
});
