//! Build arguments: which changed since the previous release, and how a step's instruction
//! shows their values (BuildKit expands `${NAME}` in the step names it reports).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{ArgChange, Build, InputFormat};

/// The arguments whose values differ between the two builds' records (provenance, metadata
/// file, history records). Empty when either build's records do not carry its arguments: an
/// empty list then means "not known", not "none".
pub fn recorded_changes(now: &Build, before: &Build) -> Vec<ArgChange> {
    if !records_args(now) || !records_args(before) {
        return Vec::new();
    }
    let (now, before) = (&now.build.build_args, &before.build.build_args);
    let names: BTreeSet<&String> = now.keys().chain(before.keys()).collect();
    names
        .into_iter()
        .filter(|name| now.get(*name) != before.get(*name))
        .map(|name| ArgChange {
            name: name.clone(),
            before: before.get(name).cloned(),
            after: now.get(name).cloned(),
        })
        .collect()
}

/// Whether the build's records carry its build arguments (a build with none is then known to
/// have none).
fn records_args(build: &Build) -> bool {
    !build.build.build_args.is_empty()
        || build.inputs.iter().any(|i| {
            matches!(
                i.format,
                InputFormat::Metadata
                    | InputFormat::Provenance
                    | InputFormat::History
                    | InputFormat::HistoryInspect
                    | InputFormat::Dockerbuild
            )
        })
}

/// The changed arguments whose new values, put back to their old ones, turn `after` into
/// `before`: the instruction differs by those values alone.
pub fn explained_by_values(
    before: &str,
    after: &str,
    changes: &[ArgChange],
) -> Option<Vec<ArgChange>> {
    let mut used: Vec<&ArgChange> = changes
        .iter()
        .filter(|c| {
            matches!((&c.before, &c.after), (Some(b), Some(a)) if !a.is_empty() && !b.is_empty())
                && after.contains(c.after.as_deref().unwrap_or_default())
        })
        .collect();
    if used.is_empty() {
        return None;
    }
    // Longer values first, so `1.10` is put back before `1.1`.
    used.sort_by_key(|c| std::cmp::Reverse(c.after.as_deref().map_or(0, str::len)));
    let mut text = after.to_string();
    for change in &used {
        if let (Some(old), Some(new)) = (&change.before, &change.after) {
            text = text.replace(new.as_str(), old);
        }
    }
    (text == before).then(|| used.into_iter().cloned().collect())
}

#[derive(Debug, PartialEq)]
enum Token {
    Text(String),
    Reference(String),
}

/// `$NAME`, `${NAME}` and `${NAME:-default}`-style references in a Dockerfile instruction.
fn tokens(template: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                text.push('$');
                chars.next();
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let inner: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let name: String = inner
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !text.is_empty() {
                    out.push(Token::Text(std::mem::take(&mut text)));
                }
                out.push(Token::Reference(name));
            }
            '$' if chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let mut name = String::new();
                while let Some(c) = chars.peek().copied()
                    && (c.is_ascii_alphanumeric() || c == '_')
                {
                    name.push(c);
                    chars.next();
                }
                if !text.is_empty() {
                    out.push(Token::Text(std::mem::take(&mut text)));
                }
                out.push(Token::Reference(name));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Token::Text(text));
    }
    out
}

/// The value each `${NAME}` of `template` (an instruction as the Dockerfile writes it) has in
/// `text` (the same instruction as BuildKit expanded it), or `None` when `text` is not an
/// expansion of `template`. The keyword's case is ignored: BuildKit upper-cases it.
pub fn expanded_values(template: &str, text: &str) -> Option<BTreeMap<String, String>> {
    let template = fold(template);
    let text = fold(text);
    let (keyword, template_rest) = template.split_once(' ').unwrap_or((&template, ""));
    let (text_keyword, rest) = text.split_once(' ').unwrap_or((&text, ""));
    if !keyword.eq_ignore_ascii_case(text_keyword) {
        return None;
    }
    let tokens = tokens(template_rest);
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut at = 0usize;
    let mut pending: Option<&str> = None;
    for (k, token) in tokens.iter().enumerate() {
        match token {
            Token::Reference(name) => {
                if pending.is_some() {
                    // Two references in a row cannot be told apart.
                    return None;
                }
                pending = Some(name);
            }
            Token::Text(literal) => {
                let last = k + 1 == tokens.len();
                match pending.take() {
                    None => {
                        if !rest[at..].starts_with(literal.as_str()) {
                            return None;
                        }
                        at += literal.len();
                    }
                    Some(name) => {
                        let found = if last {
                            rest.len().checked_sub(literal.len()).filter(|end| {
                                *end >= at && rest.get(*end..) == Some(literal.as_str())
                            })?
                        } else {
                            at + rest[at..].find(literal.as_str())?
                        };
                        if !assign(name, &rest[at..found], &mut values) {
                            return None;
                        }
                        at = found + literal.len();
                    }
                }
            }
        }
    }
    let complete = match pending {
        Some(name) => assign(name, &rest[at..], &mut values),
        None => at == rest.len(),
    };
    complete.then_some(values)
}

/// Records `name = value`; false when `name` already has another value.
fn assign(name: &str, value: &str, values: &mut BTreeMap<String, String>) -> bool {
    match values.get(name) {
        Some(seen) => seen == value,
        None => {
            values.insert(name.to_string(), value.to_string());
            true
        }
    }
}

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_back_from_the_expanded_instruction() {
        let template = r#"RUN echo "installing protoc ${PROTOC_VERSION}" && echo "${PROTOC_VERSION}" > /v && dd of=$OUT"#;
        let values = expanded_values(
            template,
            r#"RUN echo "installing protoc 26.1" && echo "26.1" > /v && dd of=/tmp/x"#,
        )
        .unwrap();
        assert_eq!(values["PROTOC_VERSION"], "26.1");
        assert_eq!(values["OUT"], "/tmp/x");
        // The same reference with two values, or another command: not an expansion.
        assert_eq!(
            expanded_values(
                template,
                r#"RUN echo "installing protoc 26.1" && echo "25.1" > /v && dd of=x"#
            ),
            None
        );
        assert_eq!(expanded_values(template, "RUN make"), None);
        assert_eq!(
            expanded_values("copy app-${V}.tar /", "COPY app-2.tar /").unwrap()["V"],
            "2"
        );
    }

    #[test]
    fn a_difference_is_explained_by_values_only_when_they_account_for_all_of_it() {
        let changes = [ArgChange {
            name: "TOOL_VERSION".into(),
            before: Some("1.0".into()),
            after: Some("1.1".into()),
        }];
        let explained =
            explained_by_values(r#"RUN echo "tool 1.0""#, r#"RUN echo "tool 1.1""#, &changes);
        assert_eq!(explained.unwrap()[0].name, "TOOL_VERSION");
        assert_eq!(
            explained_by_values(
                r#"RUN echo "tool 1.0""#,
                r#"RUN echo "tools 1.1""#,
                &changes
            ),
            None
        );
    }
}
