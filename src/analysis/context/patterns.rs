//! Path patterns as Docker reads them: `.dockerignore` files (moby's `patternmatcher` and
//! `ignorefile`: `**`, `!` exceptions, a leading `/`, comments, the last matching line wins,
//! a pattern that matches a directory matches everything under it) and the wildcards of
//! `COPY`/`ADD` sources (Go's `filepath.Match`, one path component per pattern component).
//!
//! Paths are relative to the build context, `/`-separated, without `./`.

/// The most lines of a `.dockerignore` that are read; the rest is ignored (a real one has a
/// few dozen).
const MAX_PATTERNS: usize = 10_000;

/// A parsed `.dockerignore`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug, PartialEq)]
struct Pattern {
    /// `!pattern`: a file it matches is included again.
    exclusion: bool,
    tokens: Vec<Token>,
    /// A pattern that starts with `**` and has no other wildcard is matched as a suffix of
    /// the path, as Docker does (`**foo` matches `barfoo`).
    suffix: Option<String>,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.suffix {
            Some(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| s == path)
            }
            None => matches(&self.tokens, path),
        }
    }
}

/// The regular expression Docker compiles a pattern to, as tokens.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `[...]`: one character but `/` in (or, negated, not in) the set.
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
    /// `**` followed by more: any number of whole directories, none included (`(.*/)?`).
    Directories,
    /// `**` at the end: anything (`.*`).
    Anything,
}

#[derive(Clone, Debug, PartialEq)]
enum ClassItem {
    Char(char),
    Range(char, char),
}

impl DockerIgnore {
    /// The patterns of a `.dockerignore` file's text, as Docker reads them: a UTF-8 byte order
    /// mark is dropped, lines starting with `#` are comments, lines are trimmed, empty lines
    /// and a lone `!` are skipped, each pattern is cleaned (`filepath.Clean`) and loses a
    /// leading `/`.
    pub fn parse(text: &str) -> DockerIgnore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let patterns = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let line = line.trim();
                let (exclusion, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                if pattern.is_empty() {
                    return None;
                }
                let cleaned = clean(pattern);
                let cleaned = match cleaned.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest.to_string(),
                    _ => cleaned,
                };
                let tokens = tokenize(&cleaned);
                let suffix = (cleaned.starts_with("**")
                    && tokens[1..].iter().all(|t| matches!(t, Token::Literal(_)))
                    && !cleaned[2..].contains('\\'))
                .then(|| cleaned[2..].to_string());
                Some(Pattern {
                    exclusion,
                    tokens,
                    suffix,
                })
            })
            .take(MAX_PATTERNS)
            .collect();
        DockerIgnore { patterns }
    }

    /// Whether `path` (relative to the context) is left out of the build context: the last
    /// pattern that matches the path or one of its parent directories decides
    /// (`MatchesOrParentMatches`).
    pub fn excludes(&self, path: &str) -> bool {
        // The parent directories, shortest first: `a`, `a/b` for `a/b/c`.
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change a path already excluded, nor an exclusion one not yet.
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches(path) || parents.iter().any(|p| pattern.matches(p)) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` on a `/`-separated path: repeated separators, `.` components and
/// `..` after a name collapse; no trailing `/`; empty becomes `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            name => parts.push(name),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The pattern's tokens, following Docker's translation to a regular expression.
fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                // `**/` is `**`: the `/` is part of it.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::Anything
                } else {
                    Token::Directories
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => {
                // Escapes the next character; a trailing one stands for itself.
                i += 1;
                tokens.push(Token::Literal(chars.get(i).copied().unwrap_or('\\')));
            }
            '[' => match class(&chars, i + 1) {
                Some((token, end)) => {
                    tokens.push(token);
                    i = end;
                }
                None => tokens.push(Token::Literal('[')),
            },
            c => tokens.push(Token::Literal(c)),
        }
        i += 1;
    }
    tokens
}

/// A character class starting after its `[`: the token and the index of its `]`.
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i));
        }
        first = false;
        let c = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|e| *e != ']') {
            let mut end = chars[i + 2];
            i += 2;
            if end == '\\' {
                i += 1;
                end = *chars.get(i)?;
            }
            items.push(ClassItem::Range(c, end));
        } else {
            items.push(ClassItem::Char(c));
        }
        i += 1;
    }
}

fn in_class(negated: bool, items: &[ClassItem], c: char) -> bool {
    if c == '/' {
        return false;
    }
    let inside = items.iter().any(|item| match item {
        ClassItem::Char(x) => *x == c,
        ClassItem::Range(a, b) => (*a..=*b).contains(&c),
    });
    inside != negated
}

/// Whether the whole `text` matches the tokens (anchored at both ends). Dynamic programming
/// over (token, position): linear in the pattern and quadratic at worst in the path.
fn matches(tokens: &[Token], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    // after[j]: the tokens after the current one match chars[j..].
    let mut after = vec![false; n + 1];
    after[n] = true;
    for token in tokens.iter().rev() {
        let mut here = vec![false; n + 1];
        for j in (0..=n).rev() {
            here[j] = match token {
                Token::Literal(c) => j < n && chars[j] == *c && after[j + 1],
                Token::One => j < n && chars[j] != '/' && after[j + 1],
                Token::Class { negated, items } => {
                    j < n && in_class(*negated, items, chars[j]) && after[j + 1]
                }
                // Zero characters, or one non-separator and the star again.
                Token::Star => after[j] || (j < n && chars[j] != '/' && here[j + 1]),
                Token::Anything => (j..=n).any(|k| after[k]),
                Token::Directories => {
                    after[j] || (j + 1..=n).any(|k| chars[k - 1] == '/' && after[k])
                }
            };
        }
        after = here;
    }
    after[0]
}

/// Go's `filepath.Match` for one path component (`*`, `?`, `[...]`, `\` escapes).
pub fn component_matches(pattern: &str, name: &str) -> bool {
    let tokens: Vec<Token> = tokenize(pattern)
        .into_iter()
        .map(|t| match t {
            // `**` in a COPY source is two stars within one component.
            Token::Directories | Token::Anything => Token::Star,
            t => t,
        })
        .collect();
    matches(&tokens, name)
}

/// Whether a COPY/ADD source pattern names wildcards.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn docker_s_pattern_semantics() {
        let rules = ignore("# comment\n\n  *.md  \n/docs\n!docs/keep.md\n**/__pycache__\n");
        assert!(rules.excludes("README.md"));
        // `*` does not cross directories: a nested markdown file is kept.
        assert!(!rules.excludes("src/notes.md"));
        // A matched directory excludes what is under it; the leading `/` is the context root.
        assert!(rules.excludes("docs/guide/intro.txt"));
        // The exception re-includes one file: the last matching line wins.
        assert!(!rules.excludes("docs/keep.md"));
        assert!(rules.excludes("__pycache__/a.pyc"));
        assert!(rules.excludes("app/sub/__pycache__/a.pyc"));
        assert!(!rules.excludes("app/main.py"));
        // A comment is a comment only at the start of the line.
        assert!(!rules.excludes("# comment"));
    }

    #[test]
    fn double_star_and_cleaning() {
        let rules = ignore("**/*.log\nbuild/**\n./tmp/../cache\n");
        assert!(rules.excludes("a.log"));
        assert!(rules.excludes("x/y/z.log"));
        assert!(rules.excludes("build/out/bin"));
        assert!(rules.excludes("cache/x"));
        assert!(!rules.excludes("tmp/x"));
        // An exception cannot re-include a file inside an excluded directory unless it names it.
        let rules = ignore("*\n!src\n");
        assert!(rules.excludes("README.md"));
        assert!(!rules.excludes("src/main.rs"));
        // Docker matches a leading `**` without other wildcards as a plain suffix.
        let rules = ignore("**.bak\n");
        assert!(rules.excludes("a/b/old.bak"));
        assert!(rules.excludes("x.bak"));
        let rules = ignore("\u{feff}node_modules\n!\n");
        assert!(rules.excludes("node_modules/a/b.js"));
        assert!(!rules.excludes("src/node_modules.txt"));
    }

    #[test]
    fn classes_escapes_and_question_marks() {
        let rules = ignore("file[0-9].txt\nnote?.md\n\\*literal\n[^a]x\n");
        assert!(rules.excludes("file3.txt"));
        assert!(!rules.excludes("filex.txt"));
        assert!(rules.excludes("note1.md"));
        assert!(!rules.excludes("note12.md"));
        assert!(rules.excludes("*literal"));
        assert!(!rules.excludes("xliteral"));
        assert!(rules.excludes("bx"));
        assert!(!rules.excludes("ax"));
    }

    #[test]
    fn go_clean() {
        assert_eq!(clean("./a//b/./c/"), "a/b/c");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn copy_source_components() {
        assert!(component_matches("*.txt", "requirements.txt"));
        assert!(!component_matches("*.txt", "a/b.txt"));
        assert!(component_matches("package*.json", "package-lock.json"));
        assert!(component_matches("[ab]?", "b1"));
    }
}
