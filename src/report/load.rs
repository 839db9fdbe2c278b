//! Loading a JSON report, wherever it comes from (a `--baseline` or `compare` file, an artifact
//! zip or release asset found by `baseline: auto`, an `audit` input, a report passed to
//! `report` as an input): one size bound, one schema-version policy and one wording for every
//! reader of reports.
//!
//! The policy: a report of schema [`OLDEST_READABLE_SCHEMA`] up to [`SCHEMA_VERSION`] is read;
//! an older or newer one is refused, naming its version, before any field is interpreted.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::readers::detect::{InputFormat, detect_bytes};
use crate::report::{OLDEST_READABLE_SCHEMA, Report, SCHEMA_VERSION};

/// A report larger than this is not one cachehit wrote (a report of 5,000 steps is a few MB).
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// How to make a report, for messages about files that are not one.
const MAKE_ONE: &str = "make one with `cachehit report ... --format json --output FILE`";

/// A report that cannot be used, and where it came from.
#[derive(Debug)]
pub struct LoadError {
    /// Where the report came from: a path, or `cachehit-report.json in artifact 3`.
    pub origin: String,
    pub kind: LoadErrorKind,
}

/// What is wrong with a report. Its text is a predicate of the file (`a rawjson record, not
/// a cachehit JSON report`) or a sentence about the report (`the report has schema version
/// 2, ...`); [`LoadError`] joins it to the origin accordingly.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[source] std::io::Error),
    #[error("not a cachehit JSON report: it is larger than {} MiB", MAX_REPORT_BYTES >> 20)]
    TooLarge,
    #[error("a {} record, not a cachehit JSON report: {MAKE_ONE}", .0.name())]
    OtherRecord(InputFormat),
    #[error("not a cachehit JSON report: it is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("not a cachehit JSON report: it has no schema_version; {MAKE_ONE}")]
    NoSchemaVersion,
    #[error("the report's schema_version is {0}, not a whole number")]
    SchemaVersionNotNumber(String),
    #[error(
        "the report has schema version {found}, newer than this cachehit reads ({SCHEMA_VERSION}); upgrade cachehit"
    )]
    TooNew { found: u64 },
    #[error(
        "the report has schema version {found}, older than this cachehit reads ({OLDEST_READABLE_SCHEMA})"
    )]
    TooOld { found: u64 },
    #[error("the report is damaged: {0}")]
    Damaged(#[source] serde_json::Error),
}

impl LoadErrorKind {
    /// Whether the text says what the file is (`a rawjson record, ...`) rather than what is
    /// wrong with a report.
    fn describes_the_file(&self) -> bool {
        matches!(
            self,
            LoadErrorKind::TooLarge
                | LoadErrorKind::OtherRecord(_)
                | LoadErrorKind::NotJson(_)
                | LoadErrorKind::NoSchemaVersion
        )
    }
}

impl LoadError {
    fn new(origin: &str, kind: LoadErrorKind) -> Self {
        LoadError {
            origin: origin.to_string(),
            kind,
        }
    }

    /// What is wrong, without the origin: for a problem or note that names the origin itself.
    pub fn detail(&self) -> String {
        if self.kind.describes_the_file() {
            format!("the file is {}", self.kind)
        } else {
            self.kind.to_string()
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.describes_the_file() {
            write!(f, "{} is {}", self.origin, self.kind)
        } else {
            write!(f, "{}: {}", self.origin, self.kind)
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// The report in the file at `path`.
pub fn from_path(path: &Path) -> Result<Report, LoadError> {
    let origin = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| LoadError::new(&origin, LoadErrorKind::Io(e)))?;
    from_reader(file, &origin)
}

/// The report `reader` yields (a file, a zip entry), read up to [`MAX_REPORT_BYTES`].
pub fn from_reader(reader: impl Read, origin: &str) -> Result<Report, LoadError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::new(origin, LoadErrorKind::Io(e)))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(LoadError::new(origin, LoadErrorKind::TooLarge));
    }
    from_bytes(&bytes, origin)
}

/// The report in `bytes` (a downloaded release asset, a file's content).
pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Report, LoadError> {
    // What the bytes are instead, when they are another build record.
    let other_record = || match detect_bytes(&bytes[..bytes.len().min(64 * 1024)]) {
        Ok(format) if format != InputFormat::Report => Some(LoadErrorKind::OtherRecord(format)),
        _ => None,
    };
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| LoadError::new(origin, other_record().unwrap_or(LoadErrorKind::NotJson(e))))?;
    if value.get("schema_version").is_none() {
        let kind = other_record().unwrap_or(LoadErrorKind::NoSchemaVersion);
        return Err(LoadError::new(origin, kind));
    }
    from_value(value, origin)
}

/// The report in an already parsed JSON document (a file detected as a report).
pub fn from_value(value: Value, origin: &str) -> Result<Report, LoadError> {
    let version = match value.get("schema_version") {
        None => return Err(LoadError::new(origin, LoadErrorKind::NoSchemaVersion)),
        Some(v) => v.as_u64().ok_or_else(|| {
            LoadError::new(origin, LoadErrorKind::SchemaVersionNotNumber(v.to_string()))
        })?,
    };
    check_schema_version(version).map_err(|kind| LoadError::new(origin, kind))?;
    serde_json::from_value(value).map_err(|e| LoadError::new(origin, LoadErrorKind::Damaged(e)))
}

/// The schema-version policy: from the oldest readable version up to this cachehit's own.
pub fn check_schema_version(found: u64) -> Result<(), LoadErrorKind> {
    if found > u64::from(SCHEMA_VERSION) {
        Err(LoadErrorKind::TooNew { found })
    } else if found < u64::from(OLDEST_READABLE_SCHEMA) {
        Err(LoadErrorKind::TooOld { found })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_json(version: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"schema_version": version, "steps": []})).unwrap()
    }

    #[test]
    fn schema_versions() {
        assert!(check_schema_version(u64::from(SCHEMA_VERSION)).is_ok());
        assert!(matches!(
            check_schema_version(u64::from(SCHEMA_VERSION) + 1),
            Err(LoadErrorKind::TooNew { found }) if found == u64::from(SCHEMA_VERSION) + 1
        ));
        assert!(matches!(
            check_schema_version(0),
            Err(LoadErrorKind::TooOld { found: 0 })
        ));
    }

    #[test]
    fn a_newer_report_is_refused_by_every_entry_point_with_one_message() {
        let newer = report_json(Value::from(SCHEMA_VERSION + 1));
        let expected = format!(
            "x.json: the report has schema version {}, newer than this cachehit reads ({SCHEMA_VERSION}); upgrade cachehit",
            SCHEMA_VERSION + 1
        );
        let from_bytes = from_bytes(&newer, "x.json").unwrap_err();
        let from_reader = from_reader(newer.as_slice(), "x.json").unwrap_err();
        let value = serde_json::from_slice(&newer).unwrap();
        let from_value = from_value(value, "x.json").unwrap_err();
        for error in [from_bytes, from_reader, from_value] {
            assert_eq!(error.to_string(), expected);
        }
        assert!(from_bytes_ok(&report_json(Value::from(SCHEMA_VERSION))));
    }

    fn from_bytes_ok(bytes: &[u8]) -> bool {
        from_bytes(bytes, "ok.json").is_ok()
    }

    #[test]
    fn what_is_not_a_report_is_named() {
        let rawjson = br#"{"vertexes":[{"digest":"sha256:a","name":"[1/2] FROM x"}]}
{"vertexes":[]}"#;
        let error = from_bytes(rawjson, "build.rawjson").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("build.rawjson is a rawjson record, not a cachehit JSON report: "),
            "{error}"
        );
        assert!(
            error
                .detail()
                .starts_with("the file is a rawjson record, not a cachehit JSON report"),
            "{}",
            error.detail()
        );
        let error = from_bytes(b"{ not json", "r.json").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("r.json is not a cachehit JSON report: it is not JSON"),
            "{error}"
        );
        let error = from_bytes(&report_json(Value::from("1")), "t.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"t.json: the report's schema_version is "1", not a whole number"#
        );
        let damaged = br#"{"schema_version": 1, "steps": 7}"#;
        assert!(matches!(
            from_bytes(damaged, "d.json").unwrap_err().kind,
            LoadErrorKind::Damaged(_)
        ));
        let huge = std::io::repeat(b' ').take(MAX_REPORT_BYTES + 1);
        assert!(matches!(
            from_reader(huge, "huge.json").unwrap_err().kind,
            LoadErrorKind::TooLarge
        ));
    }
}
