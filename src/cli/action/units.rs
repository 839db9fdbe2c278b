//! The builds one step reports on, each with its own inputs, report file and baseline:
//!
//! - bake metadata with several targets: one build per target (or only the `target` input's),
//!   each with the metadata, the progress logs (a bake log holds every target; the reader
//!   keeps the target's steps), and the records of that target's build (matched by the
//!   build ref each record holds, as the metadata names it per target);
//! - a run's build-record artifacts: one build per record bundle;
//! - otherwise the one build the inputs describe.
//!
//! A build among several has a label (the target, or the record artifact's ref) that names
//! its report file and its section of the comment and the summary.

use std::path::{Path, PathBuf};

use crate::cli::action::{ActionSettings, ConfigError, ReportLocation, report_location};
use crate::github::api::GitHub;
use crate::github::records::{RECORD_SUFFIX, RecordFile, RecordRun, download_records};
use crate::github::runner::Runner;
use crate::pipeline::{BaselineChoice, Settings};
use crate::readers::records::{BakeTarget, bake_targets};
use crate::readers::{Input, InputFormat, ReadOptions, read_file};
use crate::render::markdown::code_span;
use crate::sinks::workflow_log::warning;

/// How messages and the report name the inline `metadata` input.
pub const METADATA_NAME: &str = "input `metadata`";

/// Where the build records come from.
pub enum RecordSource {
    /// The inputs: the inline metadata and paths in the workspace.
    Given {
        metadata: Option<String>,
        logs: Vec<PathBuf>,
        records: Vec<PathBuf>,
    },
    /// The build-record artifacts of a workflow run.
    Artifacts {
        run: RecordRun,
        metadata: Option<String>,
    },
}

/// What a labelled build is.
enum Kind {
    Target,
    Record { artifact: String },
}

/// One build to report on.
pub struct Unit {
    /// Set when the step reports several builds: the bake target, or the record's ref.
    pub label: Option<String>,
    kind: Kind,
    pub settings: Settings,
    pub location: ReportLocation,
}

impl Unit {
    /// `bake target api`, for log lines.
    pub fn heading_text(&self, label: &str) -> String {
        match &self.kind {
            Kind::Target => format!("bake target {label}"),
            Kind::Record { artifact } => format!("build record {artifact}"),
        }
    }

    /// ``bake target `api` ``, for the comment and the summary.
    pub fn heading_markdown(&self, label: &str) -> String {
        match &self.kind {
            Kind::Target => format!("bake target {}", code_span(label)),
            Kind::Record { artifact } => format!("build record {}", code_span(artifact)),
        }
    }
}

/// The builds to report on. Fails (naming the input) when the configuration cannot work: a
/// `target` the metadata does not have, artifacts that cannot be read.
pub async fn build(
    runner: &Runner,
    settings: &ActionSettings,
    github: Option<&GitHub>,
) -> Result<Vec<Unit>, String> {
    let target = settings.target.as_deref();
    match &settings.source {
        RecordSource::Given {
            metadata,
            logs,
            records,
        } => given(runner, settings, metadata.as_deref(), logs, records, target)
            .map_err(|e| e.to_string()),
        RecordSource::Artifacts { run, metadata } => {
            let Some(github) = github else {
                return Err(format!(
                    "input `build-record`: the build-record artifacts of {} are read through \
                     GitHub's API, which needs GITHUB_REPOSITORY and a token",
                    run.described
                ));
            };
            let (files, problems) = download_records(github, run, settings.folder.path())
                .await
                .map_err(|e| e.to_string())?;
            for problem in problems {
                warning(&problem);
            }
            Ok(from_artifacts(
                runner,
                settings,
                metadata.as_deref(),
                files,
                target,
            ))
        }
    }
}

fn metadata_input(text: &str) -> Input {
    Input::Text {
        name: METADATA_NAME.into(),
        text: text.to_string(),
        format: Some(InputFormat::Metadata),
    }
}

fn given(
    runner: &Runner,
    settings: &ActionSettings,
    metadata: Option<&str>,
    logs: &[PathBuf],
    records: &[PathBuf],
    target: Option<&str>,
) -> Result<Vec<Unit>, ConfigError> {
    // Bake metadata names its targets; metadata that cannot be read is the reader's to report.
    let parsed = metadata.map(bake_targets);
    let readable = matches!(parsed, Some(Ok(_)));
    let targets: Vec<BakeTarget> = parsed.and_then(Result::ok).unwrap_or_default();
    let names = || {
        targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen: Vec<&BakeTarget> = match target {
        Some(want) if !targets.is_empty() => {
            let found = targets.iter().find(|t| t.name == want).ok_or_else(|| {
                ConfigError::Target(format!(
                    "`{want}` is not a target of the `metadata` input (its targets: {})",
                    names()
                ))
            })?;
            vec![found]
        }
        Some(want) if readable => {
            return Err(ConfigError::Target(format!(
                "`{want}` is given, but the `metadata` input is a single build's, not bake \
                 metadata of several targets"
            )));
        }
        _ => targets.iter().collect(),
    };
    let everything = || {
        let mut inputs: Vec<Input> = metadata.map(metadata_input).into_iter().collect();
        inputs.extend(logs.iter().chain(records).cloned().map(Input::File));
        inputs
    };
    if chosen.len() <= 1 {
        let read = ReadOptions {
            bake_target: target.map(str::to_string),
            ..ReadOptions::default()
        };
        let mut inputs = everything();
        if let Some(one) = chosen.first().filter(|_| targets.len() > 1) {
            // Only this target's records: the others describe other builds.
            let owned = records_of(records, &targets, one);
            inputs = metadata.map(metadata_input).into_iter().collect();
            inputs.extend(logs.iter().chain(&owned).cloned().map(Input::File));
        }
        return Ok(vec![unit(
            runner,
            settings,
            None,
            Kind::Target,
            inputs,
            read,
        )]);
    }
    Ok(chosen
        .into_iter()
        .map(|t| {
            let mut inputs: Vec<Input> = metadata.map(metadata_input).into_iter().collect();
            inputs.extend(
                logs.iter()
                    .chain(&records_of(records, &targets, t))
                    .cloned()
                    .map(Input::File),
            );
            let read = ReadOptions {
                bake_target: Some(t.name.clone()),
                ..ReadOptions::default()
            };
            unit(
                runner,
                settings,
                Some(t.name.clone()),
                Kind::Target,
                inputs,
                read,
            )
        })
        .collect())
}

/// `builder/node/ref` and a bundle's bare `ref` name the same record.
fn bare_ref(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The records that belong to `target`: those holding its build ref, and those whose ref is
/// unknown (unreadable: the reader reports them) or no target's.
fn records_of(records: &[PathBuf], targets: &[BakeTarget], target: &BakeTarget) -> Vec<PathBuf> {
    let mine = target.build_ref.as_deref().map(bare_ref);
    records
        .iter()
        .filter(|path| {
            let Some(held) = record_ref(path) else {
                return true;
            };
            let someone_s = targets
                .iter()
                .any(|t| t.build_ref.as_deref().map(bare_ref) == Some(held.as_str()));
            Some(held.as_str()) == mine || !someone_s
        })
        .cloned()
        .collect()
}

/// The build ref a record file holds (its newest record's, for a bundle of several).
fn record_ref(path: &Path) -> Option<String> {
    let (_, fragment) = read_file(path, &ReadOptions::default()).ok()?;
    fragment
        .build
        .build
        .build_ref
        .as_deref()
        .map(|r| bare_ref(r).to_string())
}

fn from_artifacts(
    runner: &Runner,
    settings: &ActionSettings,
    metadata: Option<&str>,
    files: Vec<RecordFile>,
    target: Option<&str>,
) -> Vec<Unit> {
    let read = ReadOptions {
        bake_target: target.map(str::to_string),
        ..ReadOptions::default()
    };
    if let [file] = files.as_slice() {
        // One build: the metadata, when given, is its own.
        let mut inputs: Vec<Input> = metadata.map(metadata_input).into_iter().collect();
        inputs.push(Input::File(file.path.clone()));
        let kind = Kind::Record {
            artifact: file.artifact.clone(),
        };
        return vec![unit(runner, settings, None, kind, inputs, read)];
    }
    let mut labels: Vec<String> = Vec::new();
    files
        .into_iter()
        .map(|file| {
            let mut label = artifact_label(&file.artifact);
            if labels.contains(&label) {
                label = format!("{label}-{}", labels.len() + 1);
            }
            labels.push(label.clone());
            let kind = Kind::Record {
                artifact: file.artifact.clone(),
            };
            let inputs = vec![Input::File(file.path)];
            unit(runner, settings, Some(label), kind, inputs, read.clone())
        })
        .collect()
}

/// `OWNER~REPO~ABC123.dockerbuild` → `abc123`: the record's ref, as build-push-action names
/// it, in characters that are safe in a file name.
fn artifact_label(artifact: &str) -> String {
    let name = artifact.strip_suffix(RECORD_SUFFIX).unwrap_or(artifact);
    let reference = name.rsplit('~').next().unwrap_or(name);
    let safe: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if safe.is_empty() {
        "record".into()
    } else {
        safe
    }
}

fn unit(
    runner: &Runner,
    settings: &ActionSettings,
    label: Option<String>,
    kind: Kind,
    inputs: Vec<Input>,
    read: ReadOptions,
) -> Unit {
    let location = report_location(
        runner,
        settings.report_path.as_deref(),
        &settings.key,
        label.as_deref(),
    );
    let mut unit_settings = settings.shared.clone();
    unit_settings.inputs = inputs;
    unit_settings.read = read;
    if let BaselineChoice::Auto(query) = &mut unit_settings.baseline {
        // The file name this build's report is uploaded under is the one to look for in
        // earlier runs' artifacts.
        query.report_file = location
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    Unit {
        label,
        kind,
        settings: unit_settings,
        location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_artifacts_are_labelled_by_their_ref() {
        assert_eq!(artifact_label("acme~app~7QK2ZB.dockerbuild"), "7qk2zb");
        assert_eq!(artifact_label("acme~app~7QK2ZB+1.dockerbuild"), "7qk2zb-1");
        assert_eq!(artifact_label("../../etc.dockerbuild"), "------etc");
        assert_eq!(artifact_label(".dockerbuild"), "record");
    }
}
