//! Which reader a file needs, decided from its content (a bounded prefix), never its name.
//!
//! Logs are detected as people have them: text before the first progress line (a CI step
//! header, the command line), CI timestamps and colour codes on every line (see `line_clean`)
//! do not hide the progress underneath.

use std::io::{BufReader, Read};
use std::path::Path;

use crate::readers::error::ReadError;
use crate::readers::line_clean;
use crate::readers::plain::{for_each_line, split_vertex_line};
use crate::readers::tty;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// `--progress=rawjson` log (JSON lines or pretty-printed objects).
    Rawjson,
    /// `--progress=plain` log (buildx, buildctl, Docker Engine 20.10).
    Plain,
    /// `--progress=tty` output: a terminal capture or a paste of its final screen.
    Tty,
    /// buildx `--metadata-file` / build-push-action `metadata` output (build or bake).
    Metadata,
    /// SLSA provenance (in-toto statement or bare predicate, SLSA v0.2 or v1).
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
            InputFormat::Tty => "tty",
            InputFormat::Metadata => "metadata",
            InputFormat::Provenance => "provenance",
            InputFormat::History => "history",
            InputFormat::HistoryInspect => "history-inspect",
            InputFormat::Dockerbuild => "dockerbuild",
            InputFormat::Report => "report",
        }
    }
}

const PREFIX_BYTES: usize = 64 * 1024;
/// How far into a text file the first progress line is looked for (a CI job log can print a
/// lot before the build starts).
const TEXT_SCAN_BYTES: u64 = 8 * 1024 * 1024;

pub fn detect(path: &Path) -> Result<InputFormat, ReadError> {
    let mut file = std::fs::File::open(path).map_err(|e| ReadError::io(path, e))?;
    let mut prefix = Vec::with_capacity(PREFIX_BYTES);
    file.by_ref()
        .take(PREFIX_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| ReadError::io(path, e))?;
    let unrecognized = |detail| ReadError::Unrecognized {
        path: path.display().to_string(),
        detail,
    };
    match detect_bytes(&prefix) {
        Ok(format) => Ok(format),
        Err(None) => Err(ReadError::Empty {
            path: path.display().to_string(),
        }),
        Err(Some(Undecided::Text(mut scan))) if prefix.len() == PREFIX_BYTES => {
            // Text without progress so far: look further, line by line, keeping nothing.
            let reader = BufReader::new(file.take(TEXT_SCAN_BYTES - PREFIX_BYTES as u64));
            // The prefix's last line may be cut: scan it again from the start of that line.
            let last_line = memchr::memrchr(b'\n', &prefix).map_or(0, |i| i + 1);
            let rest = std::io::Cursor::new(prefix[last_line..].to_vec()).chain(reader);
            let _ = for_each_line(rest, PREFIX_BYTES, |line| scan.line(line));
            scan.verdict().map_err(|d| unrecognized(d.describe()))
        }
        Err(Some(undecided)) => Err(unrecognized(undecided.to_string())),
    }
}

/// Why a prefix could not be read as any format.
#[derive(Debug, PartialEq)]
pub enum Undecided {
    /// Text with no progress in it (so far).
    Text(TextScan),
    /// JSON of a shape no BuildKit record has.
    Json(JsonShape),
}

impl std::fmt::Display for Undecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undecided::Json(shape) => shape.fmt(f),
            Undecided::Text(scan) => f.write_str(&scan.describe()),
        }
    }
}

/// JSON that is none of the records cachehit reads.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum JsonShape {
    #[error(
        "a JSON array that is not `history inspect` output (cachehit reads a JSON array only as \
         `--input-format history-inspect`)"
    )]
    ArrayNotHistoryInspect,
    #[error(
        "a JSON object starting with key `{0}`, which no BuildKit record has (JSON records \
         cachehit reads: rawjson, metadata, provenance, history, history-inspect, report; \
         `--input-format` reads the file as one of them)"
    )]
    UnknownFirstKey(String),
    #[error("an empty JSON object")]
    EmptyObject,
    #[error("JSON that could not be recognized")]
    Unrecognized,
}

/// `Err(None)` for an empty input, `Err(Some(why))` for an unknown one.
pub fn detect_bytes(prefix: &[u8]) -> Result<InputFormat, Option<Undecided>> {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Ok(InputFormat::Dockerbuild);
    }
    let start = prefix
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(None)?;
    let body = &prefix[start..];
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(None);
    }
    if looks_like_json(body) {
        let text = String::from_utf8_lossy(body);
        return detect_json(&text).map_err(|d| Some(Undecided::Json(d)));
    }
    let mut scan = TextScan::default();
    let _ = for_each_line(body, PREFIX_BYTES, |line| scan.line(line));
    match scan.verdict() {
        Ok(format) => Ok(format),
        Err(_) => Err(Some(Undecided::Text(scan))),
    }
}

/// `{`, or `[` opening a JSON array (not `[+] Building`, `[Pipeline]` or `[internal]`).
fn looks_like_json(body: &[u8]) -> bool {
    match body.first() {
        Some(b'{') => true,
        Some(b'[') => {
            let rest = &body[1..];
            let start = rest.iter().position(|b| !b.is_ascii_whitespace());
            let Some(start) = start else { return true };
            let rest = &rest[start..];
            match rest[0] {
                b'{' | b'[' | b']' | b'"' => true,
                // `[1, 2]`, not `[1/5] RUN ...`.
                b'0'..=b'9' | b'-' => {
                    let number = rest[1..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit() || **b == b'.')
                        .count();
                    let after = rest[1 + number..].iter().find(|b| !b.is_ascii_whitespace());
                    matches!(after, Some(b',' | b']'))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Text read line by line until it shows what it is.
#[derive(Debug, Default, PartialEq)]
pub struct TextScan {
    found: Option<InputFormat>,
    first_line: Option<String>,
    lines: u64,
    classic_builder: bool,
    scratch: Vec<u8>,
}

impl TextScan {
    fn line(&mut self, raw: &[u8]) {
        if self.found.is_some() {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let line = line_clean::clean(raw, &mut scratch);
        let trimmed = trim(line);
        if !trimmed.is_empty() {
            self.lines += 1;
            if self.first_line.is_none() {
                self.first_line = Some(shape_of(trimmed));
            }
            if split_vertex_line(line).is_some() {
                self.found = Some(InputFormat::Plain);
            } else if tty::is_frame_header(trimmed) || tty::is_display_row(trimmed) {
                self.found = Some(InputFormat::Tty);
            } else if is_rawjson_line(trimmed) {
                self.found = Some(InputFormat::Rawjson);
            } else if is_classic_builder_line(trimmed) {
                self.classic_builder = true;
            }
        }
        self.scratch = scratch;
    }

    fn verdict(&self) -> Result<InputFormat, &Self> {
        self.found.ok_or(self)
    }

    fn describe(&self) -> String {
        let first = self.first_line.as_deref().unwrap_or("");
        if self.classic_builder {
            return format!(
                "it is output of Docker's classic builder (its first line is `{first}`; `Step N/M :` \
                 and ` ---> ` lines), which does not say what BuildKit took from its cache: build \
                 with BuildKit (`docker buildx build`, or `DOCKER_BUILDKIT=1 docker build`) and \
                 pass its `--progress=plain` or `--progress=rawjson` output"
            );
        }
        format!(
            "text whose first line is `{first}`, with no progress in the {} non-empty line(s) \
             read: no `#N ...` line of a plain log (`--input-format plain`), no `[+] Building` \
             or ` => ` row of the TTY display (`--input-format tty`), no JSON record",
            self.lines
        )
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !b.is_ascii_whitespace());
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => &line[s..=e],
        _ => &[],
    }
}

/// A line as an error message can show it: 80 characters at most, no control characters.
fn shape_of(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| *c != '`')
        .take(80)
        .collect();
    if text.chars().count() > 80 {
        shown.push('…');
    }
    shown
}

fn is_rawjson_line(line: &[u8]) -> bool {
    [
        &b"{\"vertexes\""[..],
        b"{\"statuses\"",
        b"{\"logs\"",
        b"{\"warnings\"",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// `Step 3/7 : RUN make` or ` ---> Using cache` (the builder before BuildKit).
fn is_classic_builder_line(line: &[u8]) -> bool {
    if line.starts_with(b"---> ") {
        return true;
    }
    let text = match memchr::memmem::find(line, b"Step ") {
        Some(i) => &line[i + 5..],
        None => return false,
    };
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && text[digits..].starts_with(b"/") && memchr::memmem::find(text, b" : ").is_some()
}

fn detect_json(trimmed: &str) -> Result<InputFormat, JsonShape> {
    if let Some(array) = trimmed.strip_prefix('[') {
        return match first_key(array.trim_start().strip_prefix('{').unwrap_or("")) {
            Some("Name" | "Ref") => Ok(InputFormat::HistoryInspect),
            _ => Err(JsonShape::ArrayNotHistoryInspect),
        };
    }
    let body = trimmed.strip_prefix('{').unwrap_or(trimmed);
    let key = first_key(body);
    let has = |needle: &str| trimmed.contains(needle);
    Ok(match key {
        Some("vertexes" | "statuses" | "logs" | "warnings") => InputFormat::Rawjson,
        Some("schema_version") => InputFormat::Report,
        Some(
            "_type" | "predicateType" | "predicate" | "subject" | "builder" | "buildType"
            | "buildConfig" | "buildDefinition" | "runDetails" | "invocation" | "materials"
            | "SLSA",
        ) => InputFormat::Provenance,
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
        // Provenance whose keys come in another order (`metadata` first, say).
        Some(_) if has("\"buildDefinition\"") || has("\"buildType\"") => InputFormat::Provenance,
        Some(k) => return Err(JsonShape::UnknownFirstKey(shape_of(k.as_bytes()))),
        None if body.trim_start().starts_with('}') => return Err(JsonShape::EmptyObject),
        None => return Err(JsonShape::Unrecognized),
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

    fn detail(text: &[u8]) -> String {
        match detect_bytes(text) {
            Err(Some(undecided)) => undecided.to_string(),
            other => panic!("{other:?}"),
        }
    }

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
            ("{\n  \"buildConfig\": {\n", InputFormat::Provenance),
            ("{\"buildDefinition\":{}", InputFormat::Provenance),
            ("{\"runDetails\":{}", InputFormat::Provenance),
            ("{\"SLSA\":{}", InputFormat::Provenance),
            (
                "{\n \"Ref\": \"x\",\n \"FrontendAttrs\": {}",
                InputFormat::History,
            ),
            (
                "{\"Name\":\"b\",\"Ref\":\"x\",\"NumTotalSteps\":3}",
                InputFormat::HistoryInspect,
            ),
            ("[{\"Name\":\"b\"}]", InputFormat::HistoryInspect),
            ("{\"buildx.build.ref\":\"a/b/c\"}", InputFormat::Metadata),
            (
                "{\"app\":{\"containerimage.digest\":\"sha256:1\"}}",
                InputFormat::Metadata,
            ),
            (
                "[+] Building 2.3s (13/13) FINISHED\n => CACHED [2/5] WORKDIR /app  0.0s",
                InputFormat::Tty,
            ),
            ("=> CACHED [2/5] WORKDIR /app  0.0s\n", InputFormat::Tty),
            (
                "\u{1b}[1A\u{1b}[0G\u{1b}[?25l[+] Building 0.0s (0/1)\r\n",
                InputFormat::Tty,
            ),
            (
                "Run docker build -t app .\n#0 building with \"default\" instance\n",
                InputFormat::Plain,
            ),
            (
                "2025-10-01T21:48:24.3146773Z #1 [internal] load build definition",
                InputFormat::Plain,
            ),
            (
                "00:10:16  + docker build .\n00:10:16  #1 [internal] load .dockerignore",
                InputFormat::Plain,
            ),
            (
                "[Pipeline] sh\n#1 [internal] load .dockerignore",
                InputFormat::Plain,
            ),
            (
                "http2: server connection error\n{\"vertexes\":[]}\n",
                InputFormat::Rawjson,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(detect_bytes(text.as_bytes()).ok(), Some(*want), "{text}");
        }
        assert_eq!(detect_bytes(&[0x1f, 0x8b, 8]), Ok(InputFormat::Dockerbuild));
        assert_eq!(detect_bytes(b"  \n"), Err(None));
        assert!(detect_bytes(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn failures_say_what_the_file_looked_like() {
        let text = detail(b"hello\nworld\n");
        assert!(text.contains("first line is `hello`"), "{text}");
        assert!(text.contains("--input-format plain"), "{text}");
        let json = detail(b"{\"foo\":1}");
        assert!(
            json.contains("`foo`") && json.contains("--input-format"),
            "{json}"
        );
        let classic = detail(
            b"Step 1/3 : FROM alpine\n ---> a1b2c3\nStep 2/3 : RUN make\n ---> Using cache\n",
        );
        assert!(classic.contains("classic builder"), "{classic}");
        assert!(detail(b"[1, 2]").contains("history-inspect"));
    }
}
