//! `context-changed`: which files changed since the previous release's commit invalidated a
//! `COPY`/`ADD`, from the repository (`comparison.context`), not from the records: files a
//! whole-context copy reads that the image does not need (add them to `.dockerignore`), a
//! dependency manifest that changed (the rebuild was expected), no file read that changed
//! (the context did not cause it), or why the changes cannot be known.

use crate::analysis::context::{
    ChangedFile, ContextChanges, ContextEvidence, ContextUnknown, context_sources, files_read_by,
    short,
};
use crate::analysis::diagnose::{Chain, Evidence};
use crate::model::{RebuildReason, Step};
use crate::report::{Diagnosis, DiagnosisKind, Severity};

/// Names listed in one finding; the rest are counted.
const MAX_NAMED: usize = 6;

pub(super) fn find(evidence: &Evidence) -> Vec<Diagnosis> {
    let report = evidence.current;
    let Some(context) = report.comparison.as_ref().and_then(|c| c.context.as_ref()) else {
        return Vec::new();
    };
    // The copies whose own input changed: their upstream steps were served from cache.
    let copies: Vec<&Step> = report
        .build
        .steps
        .iter()
        .filter(|s| {
            s.status.did_work()
                && matches!(s.rebuild_reason, Some(RebuildReason::ContextChanged { .. }))
                && !evidence.explained.contains(&s.stage)
                && context_sources(s).is_some()
        })
        .collect();
    let Some(first) = copies.first() else {
        return Vec::new();
    };
    match context {
        ContextEvidence::Unknown { reason } => vec![unknown(first, reason)],
        ContextEvidence::Known(changes) => copies
            .iter()
            .map(|step| known(evidence, step, changes))
            .collect(),
    }
}

fn known(evidence: &Evidence, step: &Step, changes: &ContextChanges) -> Diagnosis {
    let mut diagnosis = from_files(evidence, step, changes);
    let whole = context_sources(step).is_some_and(|s| s.whole_context());
    if whole && changes.git_folder_in_context {
        // A Git-URL context (build-push-action's default) has no `.git`; a path context has.
        diagnosis.message.push_str(" `.dockerignore` does not leave out `.git`: when the context is sent from the checkout (a path such as `.`), `.git` changes with every commit and invalidates this step each time.");
        diagnosis.fix.push_str(" Add `.git` to .dockerignore.");
    }
    diagnosis
}

fn from_files(evidence: &Evidence, step: &Step, changes: &ContextChanges) -> Diagnosis {
    let read = files_read_by(step, changes);
    let since = format!(
        "since the previous release's commit {}",
        short(&changes.from_commit)
    );
    let whole = context_sources(step).is_some_and(|s| s.whole_context());
    let mut diagnosis = Diagnosis {
        kind: DiagnosisKind::ContextChanged,
        severity: Severity::Notice,
        message: String::new(),
        fix: String::new(),
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: None,
    };
    if read.is_empty() {
        let more = if changes.truncated {
            " among the files compared (more changed than cachehit lists)"
        } else {
            ""
        };
        diagnosis.message = format!(
            "`{}` was rebuilt, but no file it reads from the build context changed {since}{more}: the context did not invalidate it (files made during the job, outside Git, are not seen).",
            step.name
        );
        diagnosis.fix = "Look at what else this step depends on: the cache import (did it deliver?), build arguments and the base image.".into();
        return diagnosis;
    }
    let unneeded: Vec<&ChangedFile> = read
        .iter()
        .copied()
        .filter(|f| looks_unneeded(&f.path))
        .collect();
    if whole && unneeded.len() == read.len() {
        diagnosis.severity = Severity::Warning;
        diagnosis.message = format!(
            "`{}` was invalidated by {} ({since}), not needed in the image: add them to .dockerignore.",
            step.name,
            name_files(&read, changes.truncated)
        );
        diagnosis.fix = format!(
            "Add {} to the .dockerignore at the build context's root, so their changes no longer invalidate `{}` and the steps after it.",
            entries(&unneeded),
            step.instruction
        );
        diagnosis.wasted_ms = Some(Chain::of(evidence.current, step).ms);
    } else if whole {
        let also = if unneeded.is_empty() {
            String::new()
        } else {
            format!(
                "; of these, {} look not needed in the image (add them to .dockerignore)",
                name_files(&unneeded, false)
            )
        };
        diagnosis.message = format!(
            "`{}` was invalidated by {} ({since}){also}.",
            step.name,
            name_files(&read, changes.truncated)
        );
        diagnosis.fix = "Copy what each step needs before the steps that need it (dependency manifests before the install, sources after), so a source change only reruns what depends on it.".into();
    } else {
        diagnosis.message = format!(
            "`{}` changed: {} changed {since}, so it and the steps after it reran as expected.",
            step.name,
            name_files(&read, changes.truncated)
        );
        diagnosis.fix = "Nothing to fix: the rebuild follows from the change.".into();
    }
    diagnosis
}

fn unknown(step: &Step, reason: &ContextUnknown) -> Diagnosis {
    let fix = match reason {
        ContextUnknown::CommitMissing { commit, shallow: true } => format!(
            "Check out with `fetch-depth: 0` (actions/checkout), or fetch the previous release's commit in a step before: `git fetch --depth=1 origin {commit}`."
        ),
        ContextUnknown::CommitMissing { commit, .. } => {
            format!("Fetch the previous release's commit: `git fetch origin {commit}`.")
        }
        ContextUnknown::BaselineHasNoCommit => "The previous report predates commit recording; the next release's comparison will have it.".into(),
        ContextUnknown::NotARepository { .. } | ContextUnknown::OutsideRepository { .. } => "Check out the repository (actions/checkout with `fetch-depth: 0`) and point `context` (`--context`) at the build context folder.".into(),
        ContextUnknown::NoCurrentCommit => "Build from a Git checkout, or give the commit (the action reads `GITHUB_SHA`).".into(),
        ContextUnknown::InvalidCommit { .. }
        | ContextUnknown::TooLarge { .. }
        | ContextUnknown::Unreadable { .. } => "Nothing cachehit can suggest: the records alone say the step read the context.".into(),
    };
    Diagnosis {
        kind: DiagnosisKind::ContextChanged,
        severity: Severity::Notice,
        message: format!(
            "`{}` reads the build context and was rebuilt; which files changed since the previous release cannot be known: {reason}.",
            step.name
        ),
        fix,
        step: Some(step.name.clone()),
        dockerfile_line: step.dockerfile_line,
        wasted_ms: None,
    }
}

/// Files an application image rarely needs: documentation, CI and editor settings, the
/// build's own files. Only ever suggested, for copies of the whole context.
fn looks_unneeded(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let top = lower.split('/').next().unwrap_or(&lower);
    let folder = lower.contains('/');
    (folder
        && matches!(
            top,
            "docs"
                | "doc"
                | ".github"
                | ".gitlab"
                | ".circleci"
                | ".vscode"
                | ".idea"
                | ".devcontainer"
        ))
        || [".md", ".markdown", ".rst", ".adoc"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || name.starts_with("license")
        || name.starts_with("changelog")
        || matches!(
            name,
            ".gitignore"
                | ".gitattributes"
                | ".editorconfig"
                | ".dockerignore"
                | "dockerfile"
                | ".gitlab-ci.yml"
                | ".pre-commit-config.yaml"
        )
        || name.ends_with(".dockerfile")
        || name.starts_with("docker-compose")
        || name.starts_with("compose.y")
}

/// `README.md` and `docs/` (3 files): files under a top-level folder with several changes are
/// named by the folder.
fn name_files(files: &[&ChangedFile], truncated: bool) -> String {
    let names = grouped(files);
    let count = names.len();
    let mut shown: Vec<String> = names
        .into_iter()
        .take(MAX_NAMED)
        .map(|(name, n)| {
            if n > 1 {
                format!("`{name}` ({n} files)")
            } else {
                format!("`{name}`")
            }
        })
        .collect();
    if count > MAX_NAMED || truncated {
        let rest = count.saturating_sub(MAX_NAMED);
        shown.push(if truncated {
            "more".to_string()
        } else {
            format!("{rest} more")
        });
    }
    match shown.len() {
        0 => String::new(),
        1 => shown.remove(0),
        n => format!("{} and {}", shown[..n - 1].join(", "), shown[n - 1]),
    }
}

/// The .dockerignore lines for `files`: folders as `docs/`, files as they are.
fn entries(files: &[&ChangedFile]) -> String {
    grouped(files)
        .into_iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (name, files): a top-level folder holding several of the files, else the file itself.
fn grouped(files: &[&ChangedFile]) -> Vec<(String, usize)> {
    let top = |path: &str| path.split_once('/').map(|(dir, _)| dir.to_string());
    let mut out: Vec<(String, usize)> = Vec::new();
    for file in files {
        let name = match top(&file.path) {
            Some(dir)
                if files
                    .iter()
                    .filter(|f| top(&f.path).as_ref() == Some(&dir))
                    .count()
                    > 1 =>
            {
                format!("{dir}/")
            }
            _ => file.path.clone(),
        };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => out.push((name, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<ChangedFile> {
        paths
            .iter()
            .map(|p| ChangedFile {
                path: p.to_string(),
                ignored_by_dockerignore: false,
            })
            .collect()
    }

    #[test]
    fn names_group_folders() {
        let changed = files(&["README.md", "docs/a.md", "docs/b.md", "src/app.py"]);
        let refs: Vec<&ChangedFile> = changed.iter().collect();
        assert_eq!(
            name_files(&refs, false),
            "`README.md`, `docs/` (2 files) and `src/app.py`"
        );
        assert_eq!(name_files(&refs[..1], false), "`README.md`");
        assert_eq!(name_files(&refs[..1], true), "`README.md` and more");
        assert_eq!(entries(&refs[..3]), "`README.md`, `docs/`");
    }

    #[test]
    fn what_an_image_rarely_needs() {
        for path in [
            "README.md",
            "docs/x.png",
            ".github/workflows/ci.yml",
            "LICENSE",
            "Dockerfile",
            "web.Dockerfile",
            "CHANGELOG",
        ] {
            assert!(looks_unneeded(path), "{path}");
        }
        for path in [
            "requirements.txt",
            "src/app.py",
            "docs",
            "package.json",
            "config/docs.yaml",
        ] {
            assert!(!looks_unneeded(path), "{path}");
        }
    }
}
