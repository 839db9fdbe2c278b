//! Readers: one per input format, all producing the normalized `model::Build`.
//!
//! `read_inputs` detects each file's format, reads it, and merges everything that describes
//! the same build (a progress log plus a metadata file, say) into one `Build`.
//!
//! A new input format is a reader module here and a variant of [`InputFormat`] (in `detect`,
//! with its detection); the exhaustive matches in `read_file` and `merge` then ask for its
//! dispatch and its merge order. A report given as an input is read by the one report loader
//! (`report::load`). What a reader says about an input it could read goes in
//! [`Fragment::notes`], each note with its `model::ProblemKind`.

pub mod detect;
pub mod dockerbuild;
pub mod error;
pub mod line_clean;
pub mod merge;
pub mod plain;
pub mod provenance;
pub mod rawjson;
pub mod records;
pub mod solve_status;
pub mod tty;
pub mod vertex_name;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

pub use detect::InputFormat;
pub use error::ReadError;

use crate::model::{Build, InputFile, Problem, ProblemKind};
use provenance::Provenance;

/// What one input contributes: a (partial) build, plus facts keyed by vertex digest.
#[derive(Debug, Default)]
pub struct Fragment {
    pub build: Build,
    pub provenance: Vec<Provenance>,
    /// Short remarks about how the input was read (e.g. which bake target), each with its
    /// kind; they become the input's problems.
    pub notes: Notes,
}

/// Remarks a reader makes about an input. A plain message is a [`ProblemKind::Input`]; a
/// `(kind, message)` pair says what it is about.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<(ProblemKind, String)>);

impl Notes {
    pub fn push(&mut self, note: impl Into<Note>) {
        self.0.push(note.into().0);
    }
}

/// One remark, see [`Notes`].
pub struct Note((ProblemKind, String));

impl From<String> for Note {
    fn from(message: String) -> Self {
        Note((ProblemKind::Input, message))
    }
}

impl From<(ProblemKind, String)> for Note {
    fn from(note: (ProblemKind, String)) -> Self {
        Note(note)
    }
}

impl FromIterator<String> for Notes {
    fn from_iter<I: IntoIterator<Item = String>>(messages: I) -> Self {
        Notes(
            messages
                .into_iter()
                .map(|m| (ProblemKind::Input, m))
                .collect(),
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Read every input as this format instead of detecting it.
    pub forced_format: Option<InputFormat>,
    /// Bake metadata: the target to report on.
    pub bake_target: Option<String>,
    /// `.dockerbuild` bundles with several records: the record to report on.
    pub record_ref: Option<String>,
}

/// Large enough for fast sequential reads of multi-GB logs, small enough to stay flat.
const READ_BUFFER_BYTES: usize = 1 << 20;
/// JSON records (metadata, history) are small; refuse absurd ones instead of exhausting memory.
const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

/// Reads and merges the inputs. Files that fail after another succeeded become `Problem`s in
/// the result; it is an error only when nothing could be read.
pub fn read_inputs(paths: &[PathBuf], options: &ReadOptions) -> Result<Build, ReadError> {
    let mut fragments: Vec<(InputFormat, Fragment)> = Vec::new();
    let mut failures: Vec<ReadError> = Vec::new();
    for path in paths {
        match read_file(path, options) {
            Ok(read) => fragments.push(read),
            Err(e) => failures.push(e),
        }
    }
    if fragments.is_empty() {
        return Err(failures
            .into_iter()
            .next()
            .unwrap_or_else(|| ReadError::Empty {
                path: "(no input)".to_string(),
            }));
    }
    let mut build = merge::merge_fragments(fragments);
    for failure in failures {
        build.problems.push(Problem::new(
            ProblemKind::Input,
            failure.path(),
            failure.detail().to_string(),
        ));
    }
    Ok(build)
}

/// Reads one file: detects its format (unless forced) and runs the matching reader.
pub fn read_file(path: &Path, options: &ReadOptions) -> Result<(InputFormat, Fragment), ReadError> {
    let format = match options.forced_format {
        Some(format) => format,
        None => detect::detect(path)?,
    };
    let name = path.display().to_string();
    let open = || File::open(path).map_err(|e| ReadError::io(path, e));
    let mut fragment = match format {
        InputFormat::Rawjson => Fragment {
            build: rawjson::read_rawjson(
                BufReader::with_capacity(READ_BUFFER_BYTES, open()?),
                &name,
            )?,
            ..Fragment::default()
        },
        InputFormat::Plain => Fragment {
            build: plain::read_plain(BufReader::with_capacity(READ_BUFFER_BYTES, open()?), &name)?,
            ..Fragment::default()
        },
        InputFormat::Tty => Fragment {
            build: tty::read_tty(BufReader::with_capacity(READ_BUFFER_BYTES, open()?), &name)?,
            ..Fragment::default()
        },
        InputFormat::Dockerbuild => dockerbuild::read_bundle(path, options.record_ref.as_deref())?,
        InputFormat::Metadata | InputFormat::Provenance => {
            records::read_record_file(path, format, options)?
        }
        json_format => read_json_value(read_json(path)?, json_format, options, &name)?,
    };
    fragment.build.inputs.push(InputFile {
        path: name.clone(),
        format,
    });
    for (kind, message) in std::mem::take(&mut fragment.notes).0 {
        fragment
            .build
            .problems
            .push(Problem::new(kind, name.clone(), message));
    }
    Ok((format, fragment))
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReadError> {
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let mut text = Vec::new();
    file.take(MAX_RECORD_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| ReadError::io(path, e))?;
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(ReadError::Empty {
            path: path.display().to_string(),
        });
    }
    serde_json::from_slice(&text).map_err(|e| ReadError::Malformed {
        path: path.display().to_string(),
        detail: if e.is_eof() {
            format!("the JSON ends early (truncated?): {e}")
        } else {
            format!("not valid JSON: {e}")
        },
    })
}

/// Reads an already-parsed JSON record of the given format; `path` names it in errors. A
/// report goes through the one report loader, so its schema version is checked as everywhere.
pub fn read_json_value(
    value: serde_json::Value,
    format: InputFormat,
    options: &ReadOptions,
    path: &str,
) -> Result<Fragment, ReadError> {
    let malformed = |detail: String| ReadError::Malformed {
        path: path.to_string(),
        detail,
    };
    match format {
        InputFormat::Metadata => records::read_metadata(&value, options.bake_target.as_deref())
            .map_err(|e| malformed(e.to_string())),
        InputFormat::Provenance => {
            records::read_provenance(&value).map_err(|e| malformed(e.to_string()))
        }
        InputFormat::History => {
            records::read_history_record(&value).map_err(|e| malformed(e.to_string()))
        }
        InputFormat::HistoryInspect => {
            records::read_history_inspect(&value).map_err(|e| malformed(e.to_string()))
        }
        InputFormat::Report => match crate::report::load::from_value(value, path) {
            Ok(report) => Ok(Fragment {
                build: report.build,
                ..Fragment::default()
            }),
            Err(e) => Err(malformed(e.detail())),
        },
        InputFormat::Rawjson | InputFormat::Plain | InputFormat::Tty | InputFormat::Dockerbuild => {
            Err(malformed(format!(
                "{} input is not a single JSON record",
                format.name()
            )))
        }
    }
}
