//! The local Docker Engine (through bollard), for images loaded with `load: true` rather than
//! pushed: the layers of the image and the history entries that made them. The engine reports
//! uncompressed sizes, so these layers carry no compressed `size`; their uncompressed size is
//! kept on the step as `layer_bytes` only when the caller asks for it.

use bollard::Docker;

/// One history entry of a local image: what made it and the (uncompressed) bytes it added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created_by: String,
    pub size: u64,
    pub empty_layer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalImage {
    pub id: String,
    pub size: u64,
    /// Layer diff ids, bottom first.
    pub layers: Vec<String>,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("Docker Engine: {0}")]
pub struct EngineError(String);

/// Inspects `name` in the engine at the default socket (or `DOCKER_HOST`).
pub async fn inspect(name: &str) -> Result<LocalImage, EngineError> {
    let docker = Docker::connect_with_local_defaults().map_err(|e| EngineError(e.to_string()))?;
    let image = docker
        .inspect_image(name)
        .await
        .map_err(|e| EngineError(format!("{name}: {e}")))?;
    let history = docker
        .image_history(name)
        .await
        .map_err(|e| EngineError(format!("{name}: {e}")))?;
    Ok(LocalImage {
        id: image.id.unwrap_or_default(),
        size: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        layers: image.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        history: history
            .into_iter()
            .rev()
            .map(|h| HistoryEntry {
                empty_layer: h.size == 0,
                created_by: h.created_by,
                size: u64::try_from(h.size).unwrap_or(0),
            })
            .collect(),
    })
}

/// Matches history entries to steps by instruction (BuildKit writes `RUN /bin/sh -c CMD #
/// buildkit`, `COPY . . # buildkit`, `WORKDIR /app`), returning per step index the bytes.
pub fn step_sizes(steps: &[crate::model::Step], history: &[HistoryEntry]) -> Vec<Option<u64>> {
    let normalize = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut used = vec![false; history.len()];
    steps
        .iter()
        .map(|step| {
            let wanted = normalize(&step.instruction);
            let wanted_run = wanted
                .strip_prefix("RUN ")
                .map(|cmd| format!("RUN /bin/sh -c {cmd}"));
            history
                .iter()
                .enumerate()
                .position(|(i, h)| {
                    let made = normalize(h.created_by.trim_end_matches("# buildkit"));
                    !used[i] && (made == wanted || Some(&made) == wanted_run.as_ref())
                })
                .map(|i| {
                    used[i] = true;
                    history[i].size
                })
        })
        .collect()
}
