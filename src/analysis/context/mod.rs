//! Evidence from outside the build records about the build context: which files changed
//! between the previous release's commit and this build's, whether `.dockerignore` leaves
//! them out, and which of them each `COPY`/`ADD` reads ([`files_read_by`]).
//!
//! The changes are read from the repository by `sources::git` (the only I/O); everything here
//! is pure. When the changes cannot be known, [`ContextEvidence::Unknown`] says why, so a
//! finding can say so instead of guessing.

pub mod patterns;
pub mod sources;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::analysis::causes::ContextFiles;
use crate::model::Step;

pub use patterns::DockerIgnore;
pub use sources::{ContextSources, context_sources};

/// Which context files changed since the previous release, or why that cannot be known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ContextEvidence {
    Known(ContextChanges),
    Unknown { reason: ContextUnknown },
}

impl ContextEvidence {
    pub fn known(&self) -> Option<&ContextChanges> {
        match self {
            ContextEvidence::Known(changes) => Some(changes),
            ContextEvidence::Unknown { .. } => None,
        }
    }
}

/// The files of the build context that differ between two commits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextChanges {
    /// The previous release's commit.
    pub from_commit: String,
    /// This build's commit.
    pub to_commit: String,
    /// Added, modified and deleted files, relative to the build context, sorted.
    pub files: Vec<ChangedFile>,
    /// More files changed than are kept in `files`.
    #[serde(default, skip_serializing_if = "crate::model::is_false")]
    pub truncated: bool,
    /// The repository's `.git` folder lies in the context and `.dockerignore` does not leave
    /// it out: a context sent from the checkout (`docker build .`) changes with every commit.
    #[serde(default, skip_serializing_if = "crate::model::is_false")]
    pub git_folder_in_context: bool,
    /// The names tracked at the context root in this build's commit (at most
    /// [`MAX_ROOT_ENTRIES`]): a source outside them is made during the job, and its changes
    /// cannot be seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_entries: Vec<String>,
}

/// Root names kept in [`ContextChanges::root_entries`].
pub const MAX_ROOT_ENTRIES: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    /// Relative to the build context, `/`-separated.
    pub path: String,
    /// `.dockerignore` leaves it out of the context: no step reads it.
    #[serde(default, skip_serializing_if = "crate::model::is_false")]
    pub ignored_by_dockerignore: bool,
}

/// Why the changed context files cannot be known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ContextUnknown {
    /// The previous release's report has no `build.git_commit` (nor a provenance revision).
    BaselineHasNoCommit,
    /// This build's commit is not known.
    NoCurrentCommit,
    /// The build context is not inside a Git repository.
    NotARepository { path: String },
    /// The build context lies outside the repository it was looked up in.
    OutsideRepository { path: String },
    /// A commit is not in the checkout. `shallow`: the checkout is a shallow clone.
    CommitMissing { commit: String, shallow: bool },
    /// A recorded commit is not a full hexadecimal object id.
    InvalidCommit { commit: String },
    /// The trees hold more entries than are compared.
    TooLarge { limit: u64 },
    /// The repository could not be read.
    Unreadable { message: String },
}

impl fmt::Display for ContextUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextUnknown::BaselineHasNoCommit => {
                f.write_str("the previous report records no commit")
            }
            ContextUnknown::NoCurrentCommit => f.write_str("this build's commit is not known"),
            ContextUnknown::NotARepository { path } => {
                write!(f, "the build context {path} is not in a git repository")
            }
            ContextUnknown::OutsideRepository { path } => {
                write!(f, "{path} is outside the repository")
            }
            ContextUnknown::CommitMissing {
                commit,
                shallow: true,
            } => write!(
                f,
                "commit {} is not in the checkout (shallow clone: use `fetch-depth: 0` in actions/checkout, or fetch that commit before this step: `git fetch --depth=1 origin {commit}`)",
                short(commit)
            ),
            ContextUnknown::CommitMissing {
                commit,
                shallow: false,
            } => write!(
                f,
                "commit {} is not in the checkout (fetch it: `git fetch origin {commit}`)",
                short(commit)
            ),
            ContextUnknown::InvalidCommit { commit } => {
                write!(f, "`{commit}` is not a full commit id")
            }
            ContextUnknown::TooLarge { limit } => write!(
                f,
                "the commits differ in more than {limit} tree entries, more than cachehit compares"
            ),
            ContextUnknown::Unreadable { message } => {
                write!(f, "the repository cannot be read: {message}")
            }
        }
    }
}

/// The first 12 hex digits of a commit id, as people quote them.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The changed files `step` reads from the build context: its sources (Docker's semantics
/// for `.`, directories and wildcards, `--parents`, `--exclude`), never a file
/// `.dockerignore` leaves out, nothing for `--from`, URLs and here-documents.
pub fn files_read_by<'c>(step: &Step, changes: &'c ContextChanges) -> Vec<&'c ChangedFile> {
    let Some(sources) = context_sources(step) else {
        return Vec::new();
    };
    changes
        .files
        .iter()
        .filter(|f| !f.ignored_by_dockerignore && sources.reads(&f.path))
        .collect()
}

/// The cause engine's view: the changed files a step reads, `None` when they cannot be
/// known: the changes are unknown, the step's sources cannot be read from its instruction, a
/// source is not tracked by Git (made during the job), or a whole-context copy saw no tracked
/// change (files made during the job, or a `.git` folder sent with the context, are not seen).
impl ContextFiles for ContextEvidence {
    fn changed_files_read_by(&self, step: &Step) -> Option<Vec<String>> {
        let changes = self.known()?;
        let sources = context_sources(step)?;
        let untracked = !changes.root_entries.is_empty()
            && sources.sources.iter().any(|s| {
                let top = s.split('/').next().unwrap_or(s);
                s != "."
                    && !patterns::has_wildcards(top)
                    && !changes.root_entries.iter().any(|e| e == top)
            });
        if untracked {
            return None;
        }
        let files: Vec<String> = files_read_by(step, changes)
            .into_iter()
            .map(|f| f.path.clone())
            .collect();
        if files.is_empty() && (changes.truncated || sources.whole_context()) {
            return None;
        }
        Some(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StepKind;

    fn changes(files: &[(&str, bool)]) -> ContextChanges {
        ContextChanges {
            from_commit: "a".repeat(40),
            to_commit: "b".repeat(40),
            files: files
                .iter()
                .map(|(path, ignored)| ChangedFile {
                    path: path.to_string(),
                    ignored_by_dockerignore: *ignored,
                })
                .collect(),
            truncated: false,
            git_folder_in_context: false,
            root_entries: vec!["README.md".into(), "requirements.txt".into(), "src".into()],
        }
    }

    fn step(instruction: &str) -> Step {
        Step {
            kind: StepKind::from_keyword(instruction.split_whitespace().next().unwrap()),
            instruction: instruction.into(),
            ..Step::default()
        }
    }

    fn paths(files: Vec<&ChangedFile>) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn each_copy_reads_its_own_files_never_ignored_ones() {
        let changed = changes(&[
            ("README.md", false),
            ("docs/intro.md", true),
            ("requirements.txt", false),
            ("src/app.py", false),
        ]);
        assert_eq!(
            paths(files_read_by(&step("COPY . ."), &changed)),
            ["README.md", "requirements.txt", "src/app.py"]
        );
        assert_eq!(
            paths(files_read_by(&step("COPY requirements.txt ."), &changed)),
            ["requirements.txt"]
        );
        assert_eq!(
            paths(files_read_by(&step("COPY src /app/src"), &changed)),
            ["src/app.py"]
        );
        assert!(files_read_by(&step("COPY --from=build /out /app"), &changed).is_empty());
        assert!(files_read_by(&step("RUN make"), &changed).is_empty());
    }

    #[test]
    fn the_cause_engine_is_told_only_what_git_can_see() {
        let changed = changes(&[("README.md", false), ("src/app.py", false)]);
        let evidence = ContextEvidence::Known(changed);
        let read = |instruction: &str| evidence.changed_files_read_by(&step(instruction));
        assert_eq!(
            read("COPY src /app/src"),
            Some(vec!["src/app.py".to_string()])
        );
        assert_eq!(read("COPY requirements.txt ."), Some(vec![]));
        // `dist` is not tracked: made during the job, its changes are not seen.
        assert_eq!(read("COPY dist /app/dist"), None);
        let quiet = ContextEvidence::Known(changes(&[]));
        // A whole-context copy with no tracked change may still read untracked files.
        assert_eq!(quiet.changed_files_read_by(&step("COPY . .")), None);
        let unknown = ContextEvidence::Unknown {
            reason: ContextUnknown::BaselineHasNoCommit,
        };
        assert_eq!(unknown.changed_files_read_by(&step("COPY src /app")), None);
    }

    #[test]
    fn reasons_say_what_to_do() {
        let shallow = ContextUnknown::CommitMissing {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            shallow: true,
        };
        let text = shallow.to_string();
        assert!(text.starts_with("commit 0123456789ab is not in the checkout (shallow clone"));
        assert!(text.contains("fetch-depth: 0"));
        assert!(
            text.contains("git fetch --depth=1 origin 0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(
            ContextUnknown::BaselineHasNoCommit.to_string(),
            "the previous report records no commit"
        );
        // The report keeps the reason as data.
        let evidence = ContextEvidence::Unknown { reason: shallow };
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["state"], "unknown");
        assert_eq!(json["reason"]["kind"], "commit-missing");
        assert_eq!(
            serde_json::from_value::<ContextEvidence>(json).unwrap(),
            evidence
        );
    }
}
