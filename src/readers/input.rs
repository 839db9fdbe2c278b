//! Where an input comes from: a file, standard input (`-` on the command line), or text the
//! caller already holds (the action's inline `metadata` input).
//!
//! A file is opened twice, once to detect its format and once to read it. A stream can be
//! read only once: its format is detected from its first bytes, which are then put back in
//! front of the rest, so a progress log on standard input streams through its reader like a
//! file does. Records read whole (JSON, bundles) are bounded as their files are.

use std::fmt;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use crate::readers::detect;
use crate::readers::{
    Fragment, InputFormat, READ_BUFFER_BYTES, ReadError, ReadOptions, dockerbuild, finish,
    is_progress, read_file, read_json, read_json_value, read_progress, records,
};

/// How standard input is named in messages and in the report.
pub const STDIN_NAME: &str = "standard input";

#[derive(Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    /// Standard input, read once.
    Stdin,
    /// Text already in memory, named `name` in messages and in the report; read as `format`
    /// when given, else detected.
    Text {
        name: String,
        text: String,
        format: Option<InputFormat>,
    },
}

impl Input {
    /// A command-line argument: `-` is standard input, anything else a file.
    pub fn from_arg(arg: &Path) -> Input {
        if arg.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(arg.to_path_buf())
        }
    }

    /// How messages and the report name it.
    pub fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => STDIN_NAME.to_string(),
            Input::Text { name, .. } => name.clone(),
        }
    }
}

/// Names only: inline text can be large, and is the user's data.
impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => write!(f, "File({})", path.display()),
            Input::Stdin => f.write_str("Stdin"),
            Input::Text { name, text, .. } => write!(f, "Text({name}, {} bytes)", text.len()),
        }
    }
}

/// Reads one input: detects its format (unless forced) and runs the matching reader.
pub fn read(input: &Input, options: &ReadOptions) -> Result<(InputFormat, Fragment), ReadError> {
    match input {
        Input::File(path) => read_file(path, options),
        Input::Stdin => read_stream(std::io::stdin().lock(), STDIN_NAME, None, options),
        Input::Text { name, text, format } => read_stream(text.as_bytes(), name, *format, options),
    }
}

/// Reads a stream once: `format`, else the forced format, else the one its first bytes show.
pub fn read_stream(
    mut reader: impl Read,
    name: &str,
    format: Option<InputFormat>,
    options: &ReadOptions,
) -> Result<(InputFormat, Fragment), ReadError> {
    let (format, seen) = match format.or(options.forced_format) {
        Some(format) => (format, Vec::new()),
        None => detect::detect_read(&mut reader, name, true)?,
    };
    let whole = Cursor::new(seen).chain(reader);
    let fragment = match format {
        InputFormat::Dockerbuild => read_bundle_stream(whole, name, options)?,
        InputFormat::Metadata | InputFormat::Provenance => {
            records::read_record_reader(whole, name, format, options)?
        }
        format if is_progress(format) => Fragment {
            build: read_progress(
                format,
                BufReader::with_capacity(READ_BUFFER_BYTES, whole),
                name,
                options,
            )?,
            ..Fragment::default()
        },
        json_format => read_json_value(read_json(whole, name)?, json_format, options, name)?,
    };
    Ok((format, finish(fragment, format, name)))
}

/// A bundle is a gzip tar that the reader walks from a file: the stream is copied to a
/// temporary file first, and every mention of that file is given the stream's name.
fn read_bundle_stream(
    mut reader: impl Read,
    name: &str,
    options: &ReadOptions,
) -> Result<Fragment, ReadError> {
    let io = |source| ReadError::Io {
        path: name.to_string(),
        source,
    };
    let mut spool = tempfile::NamedTempFile::new().map_err(io)?;
    std::io::copy(&mut reader, spool.as_file_mut()).map_err(io)?;
    let spooled = spool.path().display().to_string();
    let relabel = |text: &str| text.replace(&spooled, name);
    match dockerbuild::read_bundle(spool.path(), options.record_ref.as_deref()) {
        Ok(mut fragment) => {
            for problem in &mut fragment.build.problems {
                problem.source = relabel(&problem.source);
            }
            for input in &mut fragment.build.inputs {
                input.path = relabel(&input.path);
            }
            Ok(fragment)
        }
        Err(ReadError::Io { source, .. }) => Err(io(source)),
        Err(ReadError::Empty { .. }) => Err(ReadError::Empty {
            path: name.to_string(),
        }),
        Err(ReadError::Unrecognized { detail, .. }) => Err(ReadError::Unrecognized {
            path: name.to_string(),
            detail: relabel(&detail),
        }),
        Err(ReadError::Malformed { detail, .. }) => Err(ReadError::Malformed {
            path: name.to_string(),
            detail: relabel(&detail),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel)
    }

    #[test]
    fn a_stream_reads_as_its_file_does_under_its_own_name() {
        for rel in [
            "buildkit-v0.24/p1-copy-before-deps/v2.rawjson",
            "buildkit-v0.24/p1-copy-before-deps/v2.plain.log",
            "buildkit-v0.24/p1-copy-before-deps/v2.metadata.json",
            "buildx-v0.36/p1-copy-before-deps/v2.dockerbuild",
        ] {
            let path = fixture(rel);
            let (file_format, from_file) = read_file(&path, &ReadOptions::default()).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let (format, from_stream) =
                read_stream(&bytes[..], "piped", None, &ReadOptions::default()).unwrap();
            assert_eq!(format, file_format, "{rel}");
            assert_eq!(from_stream.build.steps, from_file.build.steps, "{rel}");
            assert_eq!(from_stream.build.inputs[0].path, "piped");
            let named = path.display().to_string();
            for problem in &from_stream.build.problems {
                assert!(!problem.source.contains(&named), "{problem:?}");
                assert!(!problem.source.contains("/tmp"), "{problem:?}");
            }
        }
    }

    #[test]
    fn inline_text_errors_name_the_text_not_a_file() {
        let input = Input::Text {
            name: "input `metadata`".into(),
            text: "{not json".into(),
            format: Some(InputFormat::Metadata),
        };
        let err = read(&input, &ReadOptions::default()).unwrap_err();
        assert_eq!(err.path(), "input `metadata`");
        assert!(
            err.to_string()
                .starts_with("input `metadata`: not valid JSON"),
            "{err}"
        );
    }
}
