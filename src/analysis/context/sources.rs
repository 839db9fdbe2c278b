//! What a `COPY`/`ADD` takes from the build context, from its instruction as BuildKit names
//! the step (build arguments already expanded): its sources relative to the context root,
//! and its `--exclude` patterns. `--from` (another stage, image or named context), URLs, Git
//! repositories and here-documents read nothing from the context.

use crate::analysis::context::patterns::{DockerIgnore, clean, component_matches, has_wildcards};
use crate::model::{Step, StepKind};

/// The context sources of one COPY/ADD.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextSources {
    /// Cleaned, relative to the context root; `.` is the whole context.
    pub sources: Vec<String>,
    /// `--exclude` patterns, relative to each source.
    pub excludes: DockerIgnore,
}

impl ContextSources {
    /// Whether a file (relative to the context root) is among what the step copies.
    pub fn reads(&self, path: &str) -> bool {
        self.sources.iter().any(|source| {
            within(source, path).is_some_and(|inside| {
                self.excludes.is_empty() || inside.is_empty() || !self.excludes.excludes(inside)
            })
        })
    }

    /// Whether one source is the whole context (`COPY . .`, `COPY ./ /app`).
    pub fn whole_context(&self) -> bool {
        self.sources.iter().any(|s| s == ".")
    }
}

/// Where `path` lies inside what `source` names: the rest of the path below the matched
/// entry (empty when the path is the entry itself), `None` when outside.
fn within<'p>(source: &str, path: &'p str) -> Option<&'p str> {
    if source == "." {
        return Some(path);
    }
    if !has_wildcards(source) {
        return match path.strip_prefix(source) {
            Some("") => Some(""),
            Some(rest) => rest.strip_prefix('/'),
            None => None,
        };
    }
    // A wildcard matches entries one component per pattern component; a matched directory
    // is copied whole.
    let pattern: Vec<&str> = source.split('/').collect();
    let mut rest = path;
    for part in &pattern {
        let (name, after) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() || !component_matches(part, name) {
            return None;
        }
        rest = after;
    }
    Some(rest)
}

/// The context sources of a step, `None` when it reads nothing from the context (not a
/// COPY/ADD, `--from`, or only URLs and here-documents).
pub fn context_sources(step: &Step) -> Option<ContextSources> {
    if !matches!(step.kind, StepKind::Copy | StepKind::Add) {
        return None;
    }
    // The keyword, then flags, then the arguments (shell-like words or a JSON array).
    let mut rest = step.instruction.trim();
    rest = rest
        .split_once(char::is_whitespace)
        .map_or("", |(_, r)| r)
        .trim_start();
    let mut excludes = Vec::new();
    let mut parents = false;
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        match name {
            "from" => return None,
            "exclude" => excludes.push(value.trim_matches(['"', '\'']).to_string()),
            "parents" => parents = value != "false",
            _ => {}
        }
        rest = after.trim_start();
    }
    let mut args = match rest.starts_with('[') {
        true => serde_json::from_str::<Vec<String>>(rest).unwrap_or_else(|_| split_words(rest)),
        false => split_words(rest),
    };
    if args.len() < 2 {
        return None;
    }
    args.pop(); // the destination
    let sources: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("<<") && !is_remote(a))
        .map(|a| source_path(a, parents))
        .filter(|s| !s.starts_with(".."))
        .collect();
    if sources.is_empty() {
        return None;
    }
    Some(ContextSources {
        sources,
        excludes: DockerIgnore::parse(&excludes.join("\n")),
    })
}

/// A source relative to the context root: absolute paths are relative to it too; with
/// `--parents`, the `/./` pivot only marks where the kept parents start.
fn source_path(arg: &str, parents: bool) -> String {
    let arg = if parents {
        arg.replace("/./", "/")
    } else {
        arg.to_string()
    };
    let cleaned = clean(&arg);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_string(),
        Some(rest) => rest.to_string(),
        None => cleaned,
    }
}

fn is_remote(arg: &str) -> bool {
    let lower = arg.to_ascii_lowercase();
    ["http://", "https://", "git@", "git://", "ssh://"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// Words of an instruction: whitespace-separated, quotes keep words together and are removed.
fn split_words(text: &str) -> Vec<String> {
    let text = text.trim();
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&(_, c)) = chars.peek() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    chars.next();
                    if let Some(&(_, escaped)) = chars.peek() {
                        word.push(escaped);
                    }
                }
                (_, c) => word.push(c),
            }
            chars.next();
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(instruction: &str) -> Step {
        Step {
            kind: StepKind::from_keyword(instruction.split_whitespace().next().unwrap()),
            instruction: instruction.into(),
            ..Step::default()
        }
    }

    fn sources(instruction: &str) -> Option<Vec<String>> {
        context_sources(&step(instruction)).map(|s| s.sources)
    }

    #[test]
    fn sources_relative_to_the_context() {
        assert_eq!(sources("COPY . ."), Some(vec![".".into()]));
        assert_eq!(sources("COPY ./ /app"), Some(vec![".".into()]));
        assert_eq!(
            sources("COPY --chown=1000:1000 --link requirements.txt ./src/ /app/"),
            Some(vec!["requirements.txt".into(), "src".into()])
        );
        assert_eq!(
            sources("ADD /etc/conf.d conf"),
            Some(vec!["etc/conf.d".into()])
        );
        assert_eq!(
            sources(r#"COPY ["my file.txt", "b", "/dest/"]"#),
            Some(vec!["my file.txt".into(), "b".into()])
        );
        assert_eq!(
            sources("COPY --parents ./services/./api/go.mod /src/"),
            Some(vec!["services/api/go.mod".into()])
        );
    }

    #[test]
    fn what_reads_nothing_from_the_context() {
        assert_eq!(sources("COPY --from=builder /src/server /srv/server"), None);
        assert_eq!(sources("COPY --from=docs . /docs"), None);
        assert_eq!(sources("ADD https://example.com/a.tgz /tmp/"), None);
        assert_eq!(sources("ADD git@github.com:moby/buildkit.git /src"), None);
        assert_eq!(sources("COPY <<EOF /etc/app.conf"), None);
        assert_eq!(sources("RUN cp . ."), None);
        assert_eq!(sources("COPY"), None);
        assert_eq!(
            sources("COPY <<EOF main.py /app/"),
            Some(vec!["main.py".into()])
        );
    }

    #[test]
    fn reads_directories_globs_and_excludes() {
        let copy = context_sources(&step("COPY src/ requirements*.txt /app/")).unwrap();
        assert!(copy.reads("src/app/main.py"));
        assert!(copy.reads("requirements.txt"));
        assert!(copy.reads("requirements-dev.txt"));
        assert!(!copy.reads("srcx/main.py"));
        assert!(!copy.reads("README.md"));
        let glob = context_sources(&step("COPY */go.mod /src/")).unwrap();
        assert!(glob.reads("api/go.mod"));
        assert!(!glob.reads("go.mod"));
        assert!(!glob.reads("api/v2/go.mod"));
        // A wildcard matching a directory copies it whole.
        let dirs = context_sources(&step("COPY pkg* /src/")).unwrap();
        assert!(dirs.reads("pkg-a/deep/file.go"));
        let all = context_sources(&step("COPY --exclude=*.md --exclude=docs . .")).unwrap();
        assert!(all.whole_context());
        assert!(all.reads("main.py"));
        assert!(!all.reads("README.md"));
        assert!(!all.reads("docs/a.txt"));
        assert!(all.reads("src/notes.md"));
    }
}
