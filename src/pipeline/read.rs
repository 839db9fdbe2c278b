//! Stage 1: read what the build left behind (and the Dockerfile, when one is given).

use std::io::Read;
use std::path::Path;

use crate::model::{Build, Problem, ProblemKind};
use crate::pipeline::settings::Settings;
use crate::pipeline::{DockerfileError, Failure};
use crate::readers::order::dockerfile_order;
use crate::readers::read_all;

/// What the local files say.
pub struct Records {
    /// The build, with a problem for each input that could not be read in full.
    pub build: Build,
    /// The Dockerfile's text, when one was given and could be read.
    pub dockerfile: Option<String>,
}

/// Fails only when nothing at all could be read, or a required Dockerfile cannot be. A
/// Dockerfile that is not required and cannot be used is a problem of the report (unless it
/// is simply not there).
pub fn records(settings: &Settings) -> Result<Records, Failure> {
    let mut build = read_all(&settings.inputs, &settings.read).map_err(Failure::Read)?;
    let dockerfile = match &settings.dockerfile {
        None => None,
        Some(source) => match read_dockerfile(&source.path) {
            Ok(text) => Some(text),
            Err(e) if source.required => {
                return Err(Failure::Dockerfile(DockerfileError {
                    path: source.path.clone(),
                    source: e,
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                build.problems.push(Problem::new(
                    ProblemKind::Input,
                    source.path.display().to_string(),
                    format!("the Dockerfile is not read: {e}; its lines are not located"),
                ));
                None
            }
        },
    };
    // The reader ordered the steps as well as the records allow; the Dockerfile knows better.
    if let Some(text) = &dockerfile {
        dockerfile_order(&mut build.steps, Some(text));
    }
    Ok(Records { build, dockerfile })
}

/// Dockerfiles are small: a larger file is not read.
pub const MAX_DOCKERFILE_BYTES: u64 = 4 * 1024 * 1024;

/// The Dockerfile's text: a regular file (not a device, a FIFO or a folder, whatever a link
/// to it is called) of at most [`MAX_DOCKERFILE_BYTES`].
fn read_dockerfile(path: &Path) -> std::io::Result<String> {
    let refused =
        |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
    // Checked before opening: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(refused("not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?;
    if !size.is_file() {
        return Err(refused("not a regular file"));
    }
    if size.len() > MAX_DOCKERFILE_BYTES {
        return Err(refused(&format!(
            "larger than {} MiB",
            MAX_DOCKERFILE_BYTES >> 20
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_DOCKERFILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(refused(&format!(
            "larger than {} MiB",
            MAX_DOCKERFILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_a_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("Dockerfile.zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_dockerfile(&zero).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file");
        let fifo = dir.path().join("Dockerfile.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Refused without waiting for a writer.
        assert_eq!(
            read_dockerfile(&fifo).unwrap_err().to_string(),
            "not a regular file"
        );
        assert!(read_dockerfile(dir.path()).is_err());
        let big = dir.path().join("Dockerfile.big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_DOCKERFILE_BYTES + 1)
            .unwrap();
        assert_eq!(
            read_dockerfile(&big).unwrap_err().to_string(),
            "larger than 4 MiB"
        );
        let real = dir.path().join("Dockerfile");
        std::fs::write(&real, "FROM scratch\n").unwrap();
        assert_eq!(read_dockerfile(&real).unwrap(), "FROM scratch\n");
    }
}
