//! The options `report` and `compare` share, and their translation into pipeline settings.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::analysis::gates::{Gate, parse_gates};
use crate::pipeline::{
    BaselineChoice, CredentialPolicy, DockerfileSource, ImageSources, RegistryAccess, Settings,
};
use crate::readers::input::STDIN_NAME;
use crate::readers::{Input, InputFormat, ReadOptions};
use crate::sinks::terminal::Format;
use crate::sources::registry::Credentials;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Markdown,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Format::Table,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Json => Format::Json,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Build records: rawjson or plain progress logs, metadata files, provenance, history
    /// records, `history inspect` JSON, .dockerbuild bundles. Several files of one build
    /// combine. `-` reads standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Read every input as this format instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub input_format: Option<InputFormat>,
    /// Bake metadata with several targets: the target to report on.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// .dockerbuild bundle with several records: the record (ref) to report on.
    #[arg(long, value_name = "REF")]
    pub record: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What `report` and `compare` share beyond the inputs: gates, Dockerfile, image sources.
#[derive(Debug, Default, clap::Args)]
pub struct CheckArgs {
    /// Exit 1 when a condition holds: hit-ratio-drop>POINTS, hit-ratio<PERCENT,
    /// pull-bytes>SIZE, rebuilt>N, regression, regression:STEP, diagnosis:KIND, failed.
    /// Comma-separated or repeated.
    #[arg(long, value_name = "CONDITION")]
    pub fail_on: Vec<String>,
    /// The Dockerfile, to point steps and findings at their lines when the records do not.
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
    #[command(flatten)]
    pub images: ImageArgs,
}

/// Image layers from a registry, for sizes and the upgrade pull cost.
#[derive(Debug, Default, clap::Args)]
pub struct ImageArgs {
    /// This build's image in a registry (`registry/repo:tag` or `@sha256:...`).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// The previous release's image, for the pull cost when the baseline report has no layers.
    #[arg(long, value_name = "REF")]
    pub baseline_image: Option<String>,
    /// Registry user; the password comes from CACHEHIT_REGISTRY_PASSWORD.
    #[arg(long, value_name = "USER", env = "CACHEHIT_REGISTRY_USER")]
    pub registry_user: Option<String>,
    /// Use plain HTTP for the registry (always so for localhost and 127.x).
    #[arg(long)]
    pub insecure_registry: bool,
    /// An image loaded into the local Docker Engine (`load: true`): per-step layer sizes from
    /// its history (uncompressed, as the engine stores them).
    #[arg(long, value_name = "NAME")]
    pub engine_image: Option<String>,
}

impl ImageArgs {
    fn sources(&self) -> ImageSources {
        let credentials = match &self.registry_user {
            Some(user) => CredentialPolicy::Everywhere(Credentials {
                username: user.clone(),
                password: std::env::var("CACHEHIT_REGISTRY_PASSWORD").unwrap_or_default(),
            }),
            None => CredentialPolicy::Anonymous,
        };
        ImageSources {
            current: self.image.clone(),
            baseline: self.baseline_image.clone(),
            engine: self.engine_image.clone(),
            registry: RegistryAccess {
                credentials,
                insecure: self.insecure_registry,
                ..RegistryAccess::default()
            },
        }
    }
}

/// The settings of one run: the inputs and the gates are checked here, before any work.
pub fn settings(
    read: &ReadArgs,
    checks: &CheckArgs,
    baseline: Option<(&PathBuf, bool)>,
) -> anyhow::Result<Settings> {
    let gates: Vec<Gate> = parse_gates(&checks.fail_on)?;
    let inputs = inputs(&read.inputs)?;
    let baseline_from_stdin = baseline.is_some_and(|(path, _)| path.as_os_str() == "-");
    if baseline_from_stdin && inputs.contains(&Input::Stdin) {
        bail!(
            "`-` (standard input) is given as the baseline and as an input: it can be read only once"
        );
    }
    if let Some((path, _)) = baseline
        && path.is_dir()
    {
        bail!(
            "the baseline {} is a folder: give the JSON report in it",
            path.display()
        );
    }
    Ok(Settings {
        inputs,
        read: ReadOptions {
            forced_format: read.input_format,
            bake_target: read.target.clone(),
            record_ref: read.record.clone(),
        },
        images: checks.images.sources(),
        baseline: match baseline {
            Some((path, required)) => BaselineChoice::File {
                path: path.clone(),
                label: if baseline_from_stdin {
                    STDIN_NAME.to_string()
                } else {
                    path.display().to_string()
                },
                required,
            },
            None => BaselineChoice::None,
        },
        dockerfile: checks.dockerfile.as_ref().map(|path| DockerfileSource {
            path: path.clone(),
            required: true,
        }),
        gates,
    })
}

/// The inputs as given: `-` is standard input (once), a folder is refused by name.
fn inputs(args: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let inputs: Vec<Input> = args.iter().map(|a| Input::from_arg(a)).collect();
    if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
        bail!("`-` (standard input) is given more than once: it can be read only once");
    }
    for arg in args {
        if arg.is_dir() {
            bail!("{}", folder_message(arg));
        }
    }
    Ok(inputs)
}

/// What to say when a folder is given where files are read.
fn folder_message(path: &Path) -> String {
    let shown = path.display().to_string();
    let glob = format!("{}/*", shown.trim_end_matches('/'));
    format!(
        "{shown} is a folder: cachehit reads the build records in it, not the folder; give the \
         files (for example `{glob}`)"
    )
}
