//! The normalized build model: what every reader produces and every analysis consumes.
//!
//! One `Build` describes one BuildKit solve, however it was recorded (rawjson, plain log,
//! metadata file, history record, `.dockerbuild` bundle). Several inputs of the same build
//! are merged into one `Build` (see `readers::merge`).
//!
//! The input formats themselves (`InputFormat`) are defined with their detection in
//! `readers::detect` and re-exported here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::readers::detect::InputFormat;

/// What happened to a Dockerfile step in this build.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// BuildKit took the result from a cache (local or imported).
    Cached,
    /// BuildKit executed the step.
    Rebuilt,
    /// The step ran and failed.
    Failed,
    /// The step started but was canceled (usually because another step failed).
    Canceled,
    /// The step belongs to the build but never started.
    NotRun,
    /// A `FROM` step that was resolved or pulled, not built: it has no cache to hit.
    Base,
    /// Built in this bake by another target (`built_by`), which shares the step: not a
    /// cache hit, and not counted in the hit ratio.
    Shared,
    /// The record ends before the step finished (truncated or still running).
    #[default]
    Incomplete,
    /// The records name the step but not its outcome: provenance alone lists a build's
    /// steps, their lines and layers, not whether BuildKit took them from cache.
    Unknown,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Cached => "cached",
            StepStatus::Rebuilt => "rebuilt",
            StepStatus::Failed => "failed",
            StepStatus::Canceled => "canceled",
            StepStatus::NotRun => "not-run",
            StepStatus::Base => "base",
            StepStatus::Shared => "shared",
            StepStatus::Unknown => "unknown",
            StepStatus::Incomplete => "incomplete",
        }
    }

    /// Whether the step did work that a cache hit would have saved.
    pub fn did_work(self) -> bool {
        matches!(self, StepStatus::Rebuilt | StepStatus::Failed)
    }
}

/// The Dockerfile instruction a step comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepKind {
    From,
    Run,
    Copy,
    Add,
    Workdir,
    /// Anything else BuildKit labelled with a step index (rare: e.g. `ONBUILD` triggers).
    #[default]
    Other,
}

impl StepKind {
    pub fn from_keyword(word: &str) -> StepKind {
        match word.to_ascii_uppercase().as_str() {
            "FROM" => StepKind::From,
            "RUN" => StepKind::Run,
            "COPY" => StepKind::Copy,
            "ADD" => StepKind::Add,
            "WORKDIR" => StepKind::Workdir,
            _ => StepKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::From => "FROM",
            StepKind::Run => "RUN",
            StepKind::Copy => "COPY",
            StepKind::Add => "ADD",
            StepKind::Workdir => "WORKDIR",
            StepKind::Other => "OTHER",
        }
    }
}

/// Why a step was rebuilt rather than taken from cache: one primary cause per rebuilt step.
///
/// With a previous release to compare with, the cause names what changed in the step's
/// definition (its instruction, a build argument, its base image, the build-context files it
/// reads) or says that its definition did not change and the cache did not deliver it. Without
/// one, only `context-changed`, `upstream-rebuilt`, `cache-import-empty`, `first-cache-build`
/// and `no-cache-match` can be told apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RebuildReason {
    /// The step reads the build context and its other inputs were unchanged: files it copies
    /// changed.
    ContextChanged {
        /// The changed files it reads, relative to the build context; empty when not known.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
    },
    /// An input step was rebuilt, so this step's cache key changed with it.
    UpstreamRebuilt {
        /// Name of the rebuilt input step (the nearest one).
        upstream: String,
    },
    /// Its inputs were cached but no cache entry matched this step: the instruction, its
    /// arguments or its environment changed (an `ENV`, `ARG` default, `USER` or `SHELL` line
    /// does not show in step names), or the cache never held it.
    NoCacheMatch,
    /// Every cache import failed or delivered nothing, and the step is first in its chain.
    CacheImportEmpty,
    /// The instruction's text differs from the previous release's.
    InstructionChanged { before: String, after: String },
    /// A build argument changed that the step depends on.
    BuildArgChanged {
        args: Vec<ArgChange>,
        /// How the step depends on them.
        evidence: ArgEvidence,
    },
    /// The base image the step builds on resolved to another image.
    BaseImageChanged {
        /// The references before and now, with their digests where the records give them.
        before: String,
        after: String,
    },
    /// The previous release had no such step.
    NewStep,
    /// The step is defined as in the previous release (same instruction, arguments, inputs and
    /// build-context files), yet it was not served from the cache.
    CacheNotDelivered,
    /// Nothing was ever exported to the cache this build imports (its first build), so nothing
    /// could be served.
    FirstCacheBuild {
        /// The cache reference (or `gha` scope) that held nothing.
        cache: String,
    },
}

/// A build argument's value in the previous release and now (`None`: not set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgChange {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// How a step is known to depend on a build argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArgEvidence {
    /// The argument's value shows in the step's instruction as BuildKit expanded it.
    Instruction,
    /// A `RUN` after the argument's `ARG` line: a declared argument is in the environment of
    /// every later `RUN` of its stage, whether the command uses it or not. Without the
    /// Dockerfile this is inferred: the step is a `RUN` whose instruction and inputs are
    /// unchanged.
    Environment,
}

/// One compressed image layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub digest: String,
    /// Compressed size in bytes, as a registry serves it. `None` when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// Total compressed size of `layers`, `None` when a size is unknown. Sizes come from the
/// records, so the sum saturates rather than overflows.
pub fn layers_size(layers: &[Layer]) -> Option<u64> {
    layers
        .iter()
        .try_fold(0u64, |total, layer| Some(total.saturating_add(layer.size?)))
}

/// One Dockerfile step (a BuildKit vertex that carries a `[stage N/M]` label).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The vertex name exactly as BuildKit gives it, e.g. `[builder 3/6] COPY go.mod .`.
    pub name: String,
    /// Stage name (`builder`), when the Dockerfile names it and BuildKit shows it.
    pub stage: Option<String>,
    /// Platform (`linux/386`), for multi-platform builds.
    pub platform: Option<String>,
    /// Position within its stage: `index` of `total` (`3/6`).
    pub index: Option<u32>,
    pub total: Option<u32>,
    /// The instruction as shown by BuildKit, without the bracketed prefix: `COPY go.mod .`.
    pub instruction: String,
    pub kind: StepKind,
    pub status: StepStatus,
    /// True when the status was deduced rather than stated by BuildKit (e.g. a remote-cache
    /// hit in a plain log, which shows layer downloads but no `CACHED` line).
    #[serde(default, skip_serializing_if = "is_false")]
    pub status_inferred: bool,
    /// Where the status was read when that view is coarser than BuildKit's own record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_source: Option<StatusSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<DateTime<Utc>>,
    /// LLB vertex digest: equal digests mean the same operation on the same inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertex_digest: Option<String>,
    /// Vertex digests of this step's inputs (other steps, the build context, images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// True when the step copies from the build context (`COPY . .`, `ADD src/ ...`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reads_context: bool,
    /// First Dockerfile line of the instruction, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_line: Option<u32>,
    /// Compressed bytes downloaded from a remote cache to serve this step, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_cache_bytes: Option<u64>,
    /// Layers this step produced (from provenance mode=max or the image), where known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    /// Sum of the compressed sizes of `layers`, where all sizes are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_reason: Option<RebuildReason>,
    /// Compared with the previous release: whether the step is defined as there (instruction,
    /// build arguments, base image, inputs and the build-context files it reads). `None` when
    /// not compared or not known (a rebuilt step copying from the build context when the
    /// changed files are not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_definition: Option<bool>,
    /// How long building this step takes, where known: its own duration when this build
    /// rebuilt it, else the previous release's figure for it. What a cache hit on it saves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_ms: Option<u64>,
    /// The error BuildKit reported for a failed or canceled step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last lines the step printed, kept for failed steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// For a `shared` step: the bake target that ran it in this bake, where the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_by: Option<String>,
    /// This step's status in the baseline build, when compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_status: Option<StepStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
}

/// A view of the build coarser than BuildKit's record that a step's status was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatusSource {
    /// The `--progress=tty` display: no vertex digests, names cut at the terminal's width,
    /// durations in tenths of seconds, and `CACHED` shown only while the step resolves.
    Tty,
}

/// How a step changed against the baseline build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transition {
    /// Cached before, rebuilt now.
    Regressed,
    /// Rebuilt before, cached now.
    Improved,
    Unchanged,
    New,
    Removed,
}

impl Step {
    /// `builder 3/6`-style label used in renderings.
    pub fn position_label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.platform {
            parts.push(p.clone());
        }
        if let Some(s) = &self.stage {
            parts.push(s.clone());
        }
        if let (Some(i), Some(t)) = (self.index, self.total) {
            parts.push(format!("{i}/{t}"));
        }
        parts.join(" ")
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeStatus {
    Ok,
    Failed,
    /// The record does not say (e.g. the log ends before the vertex completed).
    #[default]
    Unknown,
}

/// A cache import (`--cache-from`), and what it delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheImport {
    /// The cache reference: a registry ref, or `gha:<hash>`/`local:<hash>` when BuildKit shows no ref.
    pub reference: String,
    /// `registry`, `gha`, `local`, `s3`, `azblob`, `inline` ... where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_type: Option<String>,
    pub status: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Media type of the cache manifest BuildKit found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Whether steps were served from it; set by the analysis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<bool>,
    /// Extra attributes from the build record (e.g. `scope`, `mode`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// A cache export (`--cache-to`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheExport {
    /// The vertex name, e.g. `exporting cache to registry`.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// `min` or `max`, where the record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub status: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Number of layers written (`writing layer sha256:...` lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_written: Option<u32>,
    /// BuildKit said `skipping cache export for empty result`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skipped_empty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// An image/result export (`exporting to image`, `exporting to docker image format`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultExport {
    pub name: String,
    pub status: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `pushing manifest for REF@DIGEST` targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed: Vec<String>,
}

/// The image for one platform as exported: its manifest and layers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `linux/amd64`; `None` when the build had one unnamed platform.
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    pub layers: Vec<Layer>,
    /// Sum of compressed layer sizes, where all are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// A base image or other material the build consumed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A build-check or frontend warning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildWarning {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_line: Option<u32>,
    /// The Dockerfile the warning is about, where the record names it (bake builds several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    Completed,
    Failed,
    Canceled,
    #[default]
    Unknown,
}

/// A file that was read, and as what (the formats are those of format detection,
/// `readers::InputFormat`, serialized by their names: `rawjson`, `history-inspect`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub format: InputFormat,
}

/// Something wrong with an input that did not stop the report.
///
/// The report keeps `source` and `message` only: `kind` is for the code that acts on
/// problems and is never serialized, so the report and its schema stay as they are (a
/// problem read back from a report is [`ProblemKind::Input`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file (or source, e.g. a registry URL) the problem is about.
    pub source: String,
    #[serde(skip)]
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, source: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            source: source.into(),
            kind,
            message: message.into(),
        }
    }
}

/// What a problem is about: code that treats some problems apart branches on this, never on
/// the message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// An input is damaged or was read in part, or a remark on how it was read.
    #[default]
    Input,
    /// A build record's status log is missing or damaged.
    StatusLog,
    /// The records hold no Dockerfile step, and the problem says why.
    NoSteps,
    /// No input records per-step progress (only metadata, provenance or history records).
    NoProgress,
    /// An input describes another build than the others and was left out.
    OtherBuild,
    /// The build completed but the progress record ends before some steps did.
    Unfinished,
    /// An image source (a registry, the local Docker Engine) did not deliver.
    ImageSource,
    /// The baseline report cannot be used.
    Baseline,
    /// The baseline is a build of another image.
    OtherImage,
    /// The baseline was built after this build: the two are likely swapped.
    BaselineNewer,
}

impl ProblemKind {
    /// Whether the problem already explains why the build has no step.
    pub fn explains_missing_steps(self) -> bool {
        matches!(self, ProblemKind::StatusLog | ProblemKind::NoSteps)
    }
}

/// Facts about the build as a whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Image names, e.g. `ghcr.io/acme/app:1.4.0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_names: Vec<String>,
    /// Digest of the exported manifest or index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// History record reference (`builder/node/ref` for buildx, or the bare ref).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_ref: Option<String>,
    /// The build's name as buildx shows it (`buildx (binaries)`), where the record gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: BuildStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub materials: Vec<Material>,
    /// Dockerfile path as the frontend saw it, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Git revision and repository, where the record carries them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcs_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcs_source: Option<String>,
    /// The commit whose tree was built, and its ref (`refs/heads/main`, `refs/tags/v1.2.0`):
    /// from the runner (`GITHUB_SHA`, `GITHUB_REF`), the build context's repository, or the
    /// provenance revision. The next release's context diff starts from this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// BuildKit's own counters from a history record, for cross-checking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buildkit_cached_vertices: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buildkit_total_vertices: Option<u32>,
}

/// One build, normalized.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Build {
    #[serde(default)]
    pub build: BuildInfo,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub cache_imports: Vec<CacheImport>,
    #[serde(default)]
    pub cache_exports: Vec<CacheExport>,
    #[serde(default)]
    pub exports: Vec<ResultExport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PlatformImage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<BuildWarning>,
    #[serde(default)]
    pub inputs: Vec<InputFile>,
    #[serde(default)]
    pub problems: Vec<Problem>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
