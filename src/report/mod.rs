//! The versioned JSON report: what `cachehit report` writes and later runs read back as a baseline.
//!
//! Every reader of reports (`--baseline`, `compare`, `baseline: auto`, `audit`, the `report`
//! input format) goes through [`load`], which holds the one schema-version policy.

pub mod load;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{Build, Step, StepStatus};

/// Bumped whenever a field changes meaning or disappears. Added fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

/// Oldest schema version this build of cachehit reads (newer than [`SCHEMA_VERSION`] is refused too).
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

impl Default for Generator {
    fn default() -> Self {
        Generator {
            name: "cachehit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Counts and totals over the steps of one build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Steps that could be cached: every step but `FROM`.
    pub steps_total: u32,
    pub steps_cached: u32,
    pub steps_rebuilt: u32,
    pub steps_failed: u32,
    pub steps_canceled: u32,
    pub steps_not_run: u32,
    #[serde(default)]
    pub steps_incomplete: u32,
    /// `steps_cached / (steps that finished)`, 0..=1; `None` when no step finished.
    pub cache_hit_ratio: Option<f64>,
    /// Wall time of the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Time spent in steps that were rebuilt or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_duration_ms: Option<u64>,
    /// Compressed size of the image (per platform: see `images`), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<u64>,
    /// Compressed bytes a user who has the baseline image downloads to upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_bytes: Option<u64>,
    /// Bytes downloaded from remote caches during the build, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_cache_bytes: Option<u64>,
    /// Time spent importing the cache: resolving the imported cache manifests, and the time
    /// the steps served from cache spent (pulling their layers). Absent without a cache import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_import_ms: Option<u64>,
    /// Time spent exporting the cache (`--cache-to`), where the records give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_export_ms: Option<u64>,
    /// What the cache hits saved: the time the steps served from cache take to build (each
    /// step's `build_ms`). Present only when known for every cached step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_saved_ms: Option<u64>,
}

/// What a finding is about: one variant per diagnosis, each found by its own module in
/// `analysis::diagnose`. Serialized as its stable kebab-case id (`cache-busting-order`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DiagnosisKind {
    BuildFailed,
    CacheNotDelivered,
    CacheImportFailed,
    CacheModeMin,
    CacheBustingOrder,
    BuildArgChanged,
    BaseImageChanged,
    FirstCacheBuild,
    CacheCostsMore,
    LayerNotReproducible,
    /// A kind this cachehit does not produce, read from a report another version wrote: kept
    /// as written, so such a report still loads (the schema leaves `kind` open).
    Other(String),
}

impl DiagnosisKind {
    /// Every kind this cachehit finds, in the order the findings are listed.
    pub const KNOWN: [DiagnosisKind; 10] = [
        DiagnosisKind::BuildFailed,
        DiagnosisKind::CacheModeMin,
        DiagnosisKind::CacheNotDelivered,
        DiagnosisKind::FirstCacheBuild,
        DiagnosisKind::CacheImportFailed,
        DiagnosisKind::CacheBustingOrder,
        DiagnosisKind::BuildArgChanged,
        DiagnosisKind::BaseImageChanged,
        DiagnosisKind::LayerNotReproducible,
        DiagnosisKind::CacheCostsMore,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            DiagnosisKind::BuildFailed => "build-failed",
            DiagnosisKind::CacheNotDelivered => "cache-not-delivered",
            DiagnosisKind::CacheImportFailed => "cache-import-failed",
            DiagnosisKind::CacheModeMin => "cache-mode-min",
            DiagnosisKind::CacheBustingOrder => "cache-busting-order",
            DiagnosisKind::BuildArgChanged => "build-arg-changed",
            DiagnosisKind::BaseImageChanged => "base-image-changed",
            DiagnosisKind::FirstCacheBuild => "first-cache-build",
            DiagnosisKind::CacheCostsMore => "cache-costs-more",
            DiagnosisKind::LayerNotReproducible => "layer-not-reproducible",
            DiagnosisKind::Other(kind) => kind,
        }
    }

    /// A kind this cachehit knows, by its id.
    pub fn known(id: &str) -> Option<DiagnosisKind> {
        Self::KNOWN.into_iter().find(|k| k.as_str() == id)
    }

    /// The ids of every known kind, comma-separated, for error messages.
    pub fn known_list() -> String {
        Self::KNOWN
            .iter()
            .map(DiagnosisKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for DiagnosisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ordered by id, as the text was before it became a type: listings keep their order.
impl Ord for DiagnosisKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for DiagnosisKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for DiagnosisKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DiagnosisKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for DiagnosisKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DiagnosisKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        Ok(DiagnosisKind::known(&id).unwrap_or(DiagnosisKind::Other(id)))
    }
}

/// How much a finding matters; the schema allows these three only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding about the build's caching, with its evidence and a fix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Stable identifier, e.g. `cache-busting-order`, `cache-not-delivered`, `cache-mode-min`.
    pub kind: DiagnosisKind,
    pub severity: Severity,
    /// What was found, naming the evidence (the step, the cache ref, the build argument).
    pub message: String,
    /// A concrete change that removes the problem.
    pub fix: String,
    /// Name of the step the diagnosis points at, where there is one.
    pub step: Option<String>,
    pub dockerfile_line: Option<u32>,
    /// Time spent rebuilding steps that this diagnosis says should have been cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasted_ms: Option<u64>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    #[serde(default)]
    pub generator: Generator,
    #[serde(flatten)]
    pub build: Build,
    #[serde(default)]
    pub summary: Summary,
    #[serde(default)]
    pub diagnoses: Vec<Diagnosis>,
    /// Present when the build was compared with a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

impl Report {
    pub fn steps(&self) -> &[Step] {
        &self.build.steps
    }

    pub fn count(&self, status: StepStatus) -> usize {
        self.build
            .steps
            .iter()
            .filter(|s| s.status == status)
            .count()
    }
}

/// The build compared with a baseline (an earlier report).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Where the baseline came from (a path, an artifact, a release asset).
    pub baseline_source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_image_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_cache_hit_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_duration_ms: Option<u64>,
    /// Percentage points: current hit ratio minus the baseline's (negative = worse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_ratio_change_points: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_change_ms: Option<i64>,
    pub steps_regressed: u32,
    pub steps_improved: u32,
    pub steps_unchanged: u32,
    pub steps_new: u32,
    pub steps_removed: u32,
    /// Baseline steps with no counterpart in this build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_steps: Vec<Step>,
    /// Per platform: compressed bytes of layers not in the baseline image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_cost: Vec<PlatformPullCost>,
    /// Compressed bytes of remote-cache layers this build downloaded that the baseline did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_pull_bytes: Option<u64>,
}

/// Upgrade download for one platform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformPullCost {
    pub platform: Option<String>,
    /// Compressed bytes of the layers a user with the baseline image must download.
    pub new_layer_bytes: u64,
    pub new_layers: u32,
    /// Layers shared with the baseline (already on the user's machine).
    pub reused_layers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_bytes: Option<u64>,
}

/// Decimal units, as registries and BuildKit print sizes: `470.0 MB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `340 ms`, `1.2 s`, `2 m 05 s`.
pub fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} m {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
