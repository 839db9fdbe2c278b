//! The JSON report written to a file inside a folder (the action's workspace), and only
//! there: the folders between are made when missing and none may be a symbolic link, and the
//! file is made new beside its target and renamed over it, so a link committed in its place
//! is replaced, never written through.

use std::io::Write;
use std::path::{Component, Path};

use crate::render;
use crate::report::Report;
use crate::sinks::SinkError;

/// Writes `report` at `relative` inside `root` (`root` itself is trusted).
pub fn write_inside(root: &Path, relative: &Path, report: &Report) -> Result<(), SinkError> {
    let target = root.join(relative);
    let refuse = |reason: String| SinkError::Refused {
        what: "report",
        path: target.clone(),
        reason,
    };
    let parts: Vec<Component> = relative.components().collect();
    let Some((Component::Normal(file_name), folders)) = parts.split_last() else {
        return Err(refuse("not a file path inside the workspace".into()));
    };
    let mut folder = root.to_path_buf();
    for part in folders {
        let Component::Normal(name) = part else {
            return Err(refuse("not a plain path inside the workspace".into()));
        };
        folder.push(name);
        match std::fs::symlink_metadata(&folder) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse(format!("{} is a symbolic link", folder.display())));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refuse(format!("{} is not a folder", folder.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&folder).map_err(|source| SinkError::Folder {
                    what: "report",
                    path: folder.clone(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(SinkError::Folder {
                    what: "report",
                    path: folder,
                    source,
                });
            }
        }
    }
    let file_error = |source: std::io::Error| SinkError::File {
        what: "report",
        path: target.clone(),
        source,
    };
    if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
        return Err(file_error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "a folder is in its place",
        )));
    }
    // Created with O_EXCL under a fresh name: nothing else can be opened through it.
    let mut temporary = tempfile::Builder::new()
        .prefix(".cachehit-report-")
        .tempfile_in(&folder)
        .map_err(file_error)?;
    temporary
        .write_all(render::json::render(report).as_bytes())
        .map_err(file_error)?;
    // Readable by the steps after the action, as a file written the usual way would be.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(file_error)?;
    }
    temporary
        .persist(folder.join(file_name))
        .map_err(|e| file_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        crate::analysis::analyze(crate::model::Build::default())
    }

    #[test]
    fn a_symlink_in_place_of_the_file_is_replaced_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("cachehit-report.json")).unwrap();
        write_inside(root.path(), Path::new("cachehit-report.json"), &report()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        let written = root.path().join("cachehit-report.json");
        assert!(!written.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(
            std::fs::read_to_string(&written)
                .unwrap()
                .contains("schema_version")
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlinked_folder_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("reports")).unwrap();
        let err = write_inside(root.path(), Path::new("reports/r.json"), &report()).unwrap_err();
        assert!(matches!(err, SinkError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Missing folders are made.
        write_inside(root.path(), Path::new("a/b/r.json"), &report()).unwrap();
        assert!(root.path().join("a/b/r.json").is_file());
        let err = write_inside(root.path(), Path::new("../r.json"), &report()).unwrap_err();
        assert!(matches!(err, SinkError::Refused { .. }), "{err}");
    }
}
