//! Which reader a file needs, decided from its content (a bounded prefix), never its name.

use std::io::Read;
use std::path::Path;

use crate::readers::error::ReadError;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// `--progress=rawjson` log (JSON lines or pretty-printed objects).
    Rawjson,
    /// `--progress=plain` log (buildx, buildctl, Docker Engine 20.10).
    Plain,
    /// buildx `--metadata-file` / build-push-action `metadata` output (build or bake).
    Metadata,
    /// SLSA provenance (in-toto statement or bare predicate).
    Provenance,
    /// BuildKit build-history record (JSON).
    History,
    /// `docker buildx history inspect --format json` output.
    HistoryInspect,
    /// `.dockerbuild` bundle exported by `docker buildx history export` or build-push-action.
    Dockerbuild,
    /// A cachehit JSON report.
    Report,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Rawjson => "rawjson",
            InputFormat::Plain => "plain",
            InputFormat::Metadata => "metadata",
            InputFormat::Provenance => "provenance",
            InputFormat::History => "history",
            InputFormat::HistoryInspect => "history-inspect",
            InputFormat::Dockerbuild => "dockerbuild",
            InputFormat::Report => "report",
        }
    }
}

/// How much of an input detection looks at.
pub const PREFIX_BYTES: usize = 64 * 1024;

pub fn detect(path: &Path) -> Result<InputFormat, ReadError> {
    let mut file = std::fs::File::open(path).map_err(|e| ReadError::io(path, e))?;
    let mut prefix = Vec::with_capacity(PREFIX_BYTES);
    file.by_ref()
        .take(PREFIX_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| ReadError::io(path, e))?;
    detect_prefix(&prefix, &path.display().to_string())
}

/// The format of an input from its first bytes (at most [`PREFIX_BYTES`]); `name` names it
/// in the error.
pub fn detect_prefix(prefix: &[u8], name: &str) -> Result<InputFormat, ReadError> {
    detect_bytes(prefix).map_err(|detail| match detail {
        None => ReadError::Empty {
            path: name.to_string(),
        },
        Some(detail) => ReadError::Unrecognized {
            path: name.to_string(),
            detail,
        },
    })
}

/// `Err(None)` for an empty input, `Err(Some(why))` for an unknown one.
pub fn detect_bytes(prefix: &[u8]) -> Result<InputFormat, Option<String>> {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Ok(InputFormat::Dockerbuild);
    }
    let text = String::from_utf8_lossy(prefix);
    let trimmed = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.is_empty() {
        return Err(None);
    }
    if trimmed.starts_with('#') && trimmed[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(InputFormat::Plain);
    }
    if let Some(array) = trimmed.strip_prefix('[') {
        return match first_key(array.trim_start().strip_prefix('{').unwrap_or("")) {
            Some("Name" | "Ref") => Ok(InputFormat::HistoryInspect),
            _ => Err(Some(
                "a JSON array that is not `history inspect` output".into(),
            )),
        };
    }
    let Some(body) = trimmed.strip_prefix('{') else {
        return Err(Some(
            "it is neither JSON nor a plain progress log (`#N ...` lines)".into(),
        ));
    };
    let key = first_key(body);
    let has = |needle: &str| trimmed.contains(needle);
    Ok(match key {
        Some("vertexes" | "statuses" | "logs" | "warnings") => InputFormat::Rawjson,
        Some("schema_version") => InputFormat::Report,
        Some("_type" | "predicateType" | "builder" | "buildType") => InputFormat::Provenance,
        Some("Ref") if has("\"NumTotalSteps\"") && !has("\"FrontendAttrs\"") => {
            InputFormat::HistoryInspect
        }
        Some("Name") => InputFormat::HistoryInspect,
        Some("Ref") => InputFormat::History,
        Some(k) if is_metadata_key(k) => InputFormat::Metadata,
        // Bake metadata: target names map to per-target metadata objects.
        Some(_) if has("\"containerimage.") || has("\"buildx.build.") || has("\"image.name\"") => {
            InputFormat::Metadata
        }
        Some(k) => {
            return Err(Some(format!(
                "a JSON object starting with key `{k}`, which no BuildKit record has"
            )));
        }
        None if body.trim_start().starts_with('}') => {
            return Err(Some("an empty JSON object".into()));
        }
        None => return Err(Some("JSON that could not be recognized".into())),
    })
}

fn is_metadata_key(key: &str) -> bool {
    key.starts_with("containerimage.")
        || key.starts_with("buildx.build.")
        || key.starts_with("cache.")
        || key == "image.name"
}

/// The first key of a JSON object whose opening brace was just consumed.
fn first_key(body: &str) -> Option<&str> {
    let rest = body.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_each_shape() {
        let cases: &[(&str, InputFormat)] = &[
            ("{\"vertexes\":[]}", InputFormat::Rawjson),
            ("{\n  \"statuses\": [", InputFormat::Rawjson),
            ("#1 [internal] load build definition", InputFormat::Plain),
            ("{\"schema_version\":1}", InputFormat::Report),
            (
                "{\"_type\":\"https://in-toto.io/Statement/v0.1\"",
                InputFormat::Provenance,
            ),
            (
                "{\n \"Ref\": \"x\",\n \"FrontendAttrs\": {}",
                InputFormat::History,
            ),
            (
                "{\"Name\":\"b\",\"Ref\":\"x\",\"NumTotalSteps\":3}",
                InputFormat::HistoryInspect,
            ),
            ("{\"buildx.build.ref\":\"a/b/c\"}", InputFormat::Metadata),
            (
                "{\"app\":{\"containerimage.digest\":\"sha256:1\"}}",
                InputFormat::Metadata,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(detect_bytes(text.as_bytes()), Ok(*want), "{text}");
        }
        assert_eq!(detect_bytes(&[0x1f, 0x8b, 8]), Ok(InputFormat::Dockerbuild));
        assert_eq!(detect_bytes(b"  \n"), Err(None));
        assert!(detect_bytes(b"hello").is_err());
        assert!(detect_bytes(b"{\"foo\":1}").is_err());
        assert!(detect_bytes(&[0xff, 0xfe, 0x00]).is_err());
    }
}
