//! The build context's Git repository, read in-process (gitoxide; no `git` binary, which the
//! action's scratch image does not have, and no network): the commit checked out, and the
//! files that differ between two commits' trees below the context folder, marked when
//! `.dockerignore` leaves them out.
//!
//! Bounded: the tree walk stops past [`Limits::tree_entries`] entries (unchanged subtrees
//! are skipped whole, so only what differs is walked), at most [`Limits::files`] changed
//! files are kept, and a `.dockerignore` larger than [`MAX_DOCKERIGNORE_BYTES`] is not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gix::ObjectId;

use crate::analysis::context::{
    ChangedFile, ContextChanges, ContextEvidence, ContextUnknown, DockerIgnore, MAX_ROOT_ENTRIES,
};

/// Where the build context is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextLocation {
    /// The build context folder, inside a Git working tree.
    pub context_dir: PathBuf,
    /// The Dockerfile: a `<Dockerfile>.dockerignore` next to it replaces the context's
    /// `.dockerignore`.
    pub dockerfile: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tree entries compared, at most.
    pub tree_entries: u64,
    /// Changed files kept, at most.
    pub files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tree_entries: 500_000,
            files: 5_000,
        }
    }
}

/// `.dockerignore` files are small; a larger one is not read.
pub const MAX_DOCKERIGNORE_BYTES: u64 = 1024 * 1024;

/// The commit checked out in a repository and the ref it is on (`None` when detached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub commit: String,
    pub git_ref: Option<String>,
}

/// The commit checked out in the repository holding `dir`.
pub fn head(dir: &Path) -> Result<Head, ContextUnknown> {
    let repo = open(dir)?;
    let commit = repo.head_id().map_err(unreadable)?.detach().to_string();
    let git_ref = repo
        .head_name()
        .ok()
        .flatten()
        .map(|name| name.as_bstr().to_string());
    Ok(Head { commit, git_ref })
}

/// The context files that differ between commits `from` and `to`, or why they cannot be known.
pub fn context_changes(
    location: &ContextLocation,
    from: &str,
    to: &str,
    limits: Limits,
) -> ContextEvidence {
    match changes(location, from, to, limits) {
        Ok(changes) => ContextEvidence::Known(changes),
        Err(reason) => ContextEvidence::Unknown { reason },
    }
}

fn changes(
    location: &ContextLocation,
    from: &str,
    to: &str,
    limits: Limits,
) -> Result<ContextChanges, ContextUnknown> {
    let repo = open(&location.context_dir)?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| ContextUnknown::NotARepository {
            path: location.context_dir.display().to_string(),
        })?
        .to_path_buf();
    let context = relative_parts(&workdir, &location.context_dir)?;
    let from_tree = commit_tree(&repo, from)?;
    let to_tree = commit_tree(&repo, to)?;
    let reader = TreeReader {
        repo: &repo,
        visited: 0,
        limit: limits.tree_entries,
    };
    let mut reader = reader;
    let old = reader.subtree(from_tree, &context)?;
    let new = reader.subtree(to_tree, &context)?;
    let root_entries: Vec<String> = match new {
        Some(tree) => reader
            .entries(tree)?
            .into_keys()
            .take(MAX_ROOT_ENTRIES)
            .collect(),
        None => Vec::new(),
    };
    let mut paths = Vec::new();
    reader.diff("", old, new, &mut paths)?;
    paths.sort();
    let truncated = paths.len() > limits.files;
    paths.truncate(limits.files);

    let ignore = dockerignore(&mut reader, to_tree, &context, &workdir, location)?;
    let git_folder_in_context = repo.git_dir().parent() == Some(workdir.as_path())
        && context.is_empty()
        && !ignore.as_ref().is_some_and(|i| i.excludes(".git"));
    let files = paths
        .into_iter()
        .map(|path| ChangedFile {
            ignored_by_dockerignore: ignore.as_ref().is_some_and(|i| i.excludes(&path)),
            path,
        })
        .collect();
    Ok(ContextChanges {
        from_commit: from.to_string(),
        to_commit: to.to_string(),
        files,
        truncated,
        git_folder_in_context,
        root_entries,
    })
}

fn open(dir: &Path) -> Result<gix::Repository, ContextUnknown> {
    gix::discover(dir).map_err(|_| ContextUnknown::NotARepository {
        path: dir.display().to_string(),
    })
}

fn unreadable(e: impl std::fmt::Display) -> ContextUnknown {
    ContextUnknown::Unreadable {
        message: e.to_string(),
    }
}

/// `dir`'s components below the working tree.
fn relative_parts(workdir: &Path, dir: &Path) -> Result<Vec<String>, ContextUnknown> {
    let outside = || ContextUnknown::OutsideRepository {
        path: dir.display().to_string(),
    };
    let workdir = workdir.canonicalize().map_err(unreadable)?;
    let dir = dir.canonicalize().map_err(|_| outside())?;
    let relative = dir.strip_prefix(&workdir).map_err(|_| outside())?;
    Ok(relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect())
}

/// The root tree of a commit given as full hex, or why it is not there.
fn commit_tree(repo: &gix::Repository, commit: &str) -> Result<ObjectId, ContextUnknown> {
    let invalid = || ContextUnknown::InvalidCommit {
        commit: commit.to_string(),
    };
    if commit.len() != 40 {
        return Err(invalid());
    }
    let id = ObjectId::from_hex(commit.as_bytes()).map_err(|_| invalid())?;
    let object = repo
        .try_find_object(id)
        .map_err(unreadable)?
        .ok_or_else(|| ContextUnknown::CommitMissing {
            commit: commit.to_string(),
            shallow: repo.is_shallow(),
        })?;
    let commit = object.try_into_commit().map_err(unreadable)?;
    Ok(commit.tree_id().map_err(unreadable)?.detach())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tree,
    /// A file or symlink; a submodule counts as one entry (its files are not in this tree).
    Leaf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    id: ObjectId,
    /// Git's mode bits: an executable bit that changes is a change to Docker too.
    mode: u16,
}

struct TreeReader<'r> {
    repo: &'r gix::Repository,
    visited: u64,
    limit: u64,
}

impl TreeReader<'_> {
    fn entries(&mut self, tree: ObjectId) -> Result<BTreeMap<String, Entry>, ContextUnknown> {
        let object = self.repo.find_object(tree).map_err(unreadable)?;
        let tree = object.try_into_tree().map_err(unreadable)?;
        let decoded = tree.decode().map_err(unreadable)?;
        self.visited += decoded.entries.len() as u64;
        if self.visited > self.limit {
            return Err(ContextUnknown::TooLarge { limit: self.limit });
        }
        Ok(decoded
            .entries
            .iter()
            .map(|e| {
                let kind = if e.mode.is_tree() {
                    Kind::Tree
                } else {
                    Kind::Leaf
                };
                (
                    e.filename.to_string(),
                    Entry {
                        kind,
                        id: e.oid.to_owned(),
                        mode: e.mode.value(),
                    },
                )
            })
            .collect())
    }

    /// The tree at `parts` below `root`; `None` when there is none (the folder did not exist
    /// in that commit: every file in it is new).
    fn subtree(
        &mut self,
        root: ObjectId,
        parts: &[String],
    ) -> Result<Option<ObjectId>, ContextUnknown> {
        let mut current = root;
        for part in parts {
            match self.entries(current)?.get(part) {
                Some(entry) if entry.kind == Kind::Tree => current = entry.id,
                _ => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// The paths (below `prefix`) that differ between two trees; unchanged subtrees are not
    /// opened.
    fn diff(
        &mut self,
        prefix: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        out: &mut Vec<String>,
    ) -> Result<(), ContextUnknown> {
        if old == new {
            return Ok(());
        }
        let old = match old {
            Some(id) => self.entries(id)?,
            None => BTreeMap::new(),
        };
        let new = match new {
            Some(id) => self.entries(id)?,
            None => BTreeMap::new(),
        };
        let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let (before, after) = (old.get(name), new.get(name));
            if before == after {
                continue;
            }
            let tree = |e: Option<&Entry>| e.filter(|e| e.kind == Kind::Tree).map(|e| e.id);
            let leaf = |e: Option<&Entry>| e.is_some_and(|e| e.kind == Kind::Leaf);
            if leaf(before) || leaf(after) {
                out.push(path.clone());
            }
            if tree(before).is_some() || tree(after).is_some() {
                self.diff(&path, tree(before), tree(after), out)?;
            }
        }
        Ok(())
    }

    /// A file's content, `None` when absent or too large.
    fn file(&mut self, root: ObjectId, path: &[String]) -> Result<Option<String>, ContextUnknown> {
        let Some((name, folder)) = path.split_last() else {
            return Ok(None);
        };
        let Some(tree) = self.subtree(root, folder)? else {
            return Ok(None);
        };
        let Some(entry) = self.entries(tree)?.get(name).copied() else {
            return Ok(None);
        };
        if entry.kind != Kind::Leaf {
            return Ok(None);
        }
        let header = self.repo.find_header(entry.id).map_err(unreadable)?;
        if header.size() > MAX_DOCKERIGNORE_BYTES {
            return Ok(None);
        }
        let blob = self.repo.find_object(entry.id).map_err(unreadable)?;
        Ok(Some(String::from_utf8_lossy(&blob.data).into_owned()))
    }
}

/// The ignore rules the build applied, from the built commit: `<Dockerfile>.dockerignore`
/// next to the Dockerfile when there is one, else `.dockerignore` at the context root.
fn dockerignore(
    reader: &mut TreeReader,
    root: ObjectId,
    context: &[String],
    workdir: &Path,
    location: &ContextLocation,
) -> Result<Option<DockerIgnore>, ContextUnknown> {
    if let Some(dockerfile) = &location.dockerfile
        && let Some(folder) = dockerfile.parent()
        && let Some(name) = dockerfile.file_name()
    {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        if let Ok(mut parts) = relative_parts(workdir, folder) {
            parts.push(format!("{}.dockerignore", name.to_string_lossy()));
            if let Some(text) = reader.file(root, &parts)? {
                return Ok(Some(DockerIgnore::parse(&text)));
            }
        }
    }
    let mut parts = context.to_vec();
    parts.push(".dockerignore".into());
    Ok(reader
        .file(root, &parts)?
        .map(|text| DockerIgnore::parse(&text)))
}
