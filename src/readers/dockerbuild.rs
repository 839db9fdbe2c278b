//! `.dockerbuild` bundles (placeholder until the bundle reader lands).

use std::path::Path;

use crate::readers::{Fragment, ReadError};

pub fn read_bundle(path: &Path, _record: Option<&str>) -> Result<Fragment, ReadError> {
    Err(ReadError::Unrecognized {
        path: path.display().to_string(),
        detail: ".dockerbuild bundles are not supported yet".into(),
    })
}
