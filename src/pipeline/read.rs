//! Stage 1: read what the build left behind (and the Dockerfile, when one is given).

use std::io::Read;
use std::path::Path;

use crate::model::Build;
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

/// Fails only when nothing at all could be read, or a required Dockerfile cannot be.
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
            Err(_) => None,
        },
    };
    // The reader ordered the steps as well as the records allow; the Dockerfile knows better.
    if let Some(text) = &dockerfile {
        dockerfile_order(&mut build.steps, Some(text));
    }
    Ok(Records { build, dockerfile })
}

/// Dockerfiles are small: past this size the rest is not read.
const MAX_DOCKERFILE_BYTES: u64 = 16 * 1024 * 1024;

fn read_dockerfile(path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_DOCKERFILE_BYTES)
        .read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
