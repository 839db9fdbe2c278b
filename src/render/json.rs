//! The JSON report, as later runs and other tools read it.

use crate::report::Report;

pub fn render(report: &Report) -> String {
    // Serializing plain data structures cannot fail; fall back to an explicit error object.
    let mut text = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize report: {e}\"}}"));
    text.push('\n');
    text
}
