//! SLSA provenance as BuildKit writes it: SLSA v0.2 (`buildType`, `invocation`, `buildConfig`,
//! `metadata`) and SLSA v1 (`buildDefinition`, `runDetails`), as an in-toto statement (v0.1 or
//! v1), as a bare predicate (a `.dockerbuild` bundle, the metadata file) or wrapped as
//! `imagetools inspect --format '{{json .Provenance}}'` prints it (`{"SLSA": ...}`), with its keys
//! in any order.
//!
//! mode=min gives materials and build arguments; mode=max adds the LLB graph, which maps vertex
//! digests to Dockerfile lines and to the layers each step produced.
//!
//! The documents are deserialized into types that keep only what is used: everything else (exec
//! environments, the Dockerfile's own LLB, usage counters) is skipped while parsing, so a large
//! record never becomes a large tree in memory.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, IgnoredAny};

use crate::model::{Layer, Material, PlatformImage};

/// Facts about one vertex that progress streams do not carry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VertexFacts {
    pub dockerfile_line: Option<u32>,
    /// Layers this step added on top of its input (a `FROM`: the base image's layers).
    pub layers: Vec<Layer>,
    pub reads_context: bool,
}

/// Which SLSA provenance shape a document had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlsaVersion {
    #[default]
    V02,
    V1,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    pub platform: Option<String>,
    pub materials: Vec<Material>,
    pub build_args: BTreeMap<String, String>,
    pub vcs_source: Option<String>,
    pub vcs_revision: Option<String>,
    /// Keyed by vertex digest (`sha256:...`).
    pub vertices: HashMap<String, VertexFacts>,
    /// The image's layers, from the final step's layer chain (mode=max only).
    pub image: Option<PlatformImage>,
    /// False for mode=min (no build graph).
    pub has_build_graph: bool,
    /// Images the statement is about (`registry/name:tag`), from its `subject` purls.
    pub image_refs: Vec<String>,
    /// The Dockerfile the frontend read (v0.2 `invocation.configSource.entryPoint`, v1
    /// `externalParameters.configSource.path`).
    pub dockerfile: Option<String>,
    pub slsa_version: SlsaVersion,
    /// Read from a buildx metadata file, which keeps the build graph only when asked to.
    pub in_metadata_file: bool,
    /// The Dockerfile steps of the build graph (mode=max), in its order.
    pub steps: Vec<ProvenanceStep>,
}

/// A Dockerfile step as provenance gives it: what it is and where, not whether it was cached.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProvenanceStep {
    pub vertex_digest: String,
    /// The instruction as the Dockerfile writes it (`RUN apk add curl`).
    pub instruction: String,
    pub platform: Option<String>,
    pub dockerfile_line: u32,
}

/// Why a document is not BuildKit provenance cachehit can use.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the JSON ends early (truncated?): {0}")]
    Truncated(#[source] serde_json::Error),
    #[error("an in-toto statement of predicate type `{predicate_type}`, not SLSA provenance")]
    NotProvenance { predicate_type: String },
    #[error(
        "SLSA provenance written by another builder (build type `{build_type}`), not BuildKit: \
         it says nothing about Dockerfile steps"
    )]
    NotBuildKit { build_type: String },
    #[error(
        "no SLSA provenance predicate (buildType/invocation or buildDefinition/runDetails) in it"
    )]
    NoPredicate,
}

impl ProvenanceError {
    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        if e.is_eof() {
            ProvenanceError::Truncated(e)
        } else {
            ProvenanceError::Json(e)
        }
    }
}

/// Reads a statement or a bare predicate already parsed as a JSON value. `None` when the value
/// is not BuildKit provenance.
pub fn parse(value: &serde_json::Value) -> Option<Provenance> {
    Document::deserialize(value).ok()?.into_provenance().ok()
}

/// Reads a statement or a bare predicate from JSON text.
pub fn parse_bytes(bytes: &[u8]) -> Result<Provenance, ProvenanceError> {
    serde_json::from_slice::<Document>(bytes)
        .map_err(ProvenanceError::from_json)?
        .into_provenance()
}

/// Reads a statement or a bare predicate from a reader, without holding the text.
pub fn parse_reader(reader: impl Read) -> Result<Provenance, ProvenanceError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let document = Document::deserialize(&mut de).map_err(ProvenanceError::from_json)?;
    de.end().map_err(ProvenanceError::from_json)?;
    document.into_provenance()
}

/// Any provenance document: its statement fields and, when it is a bare predicate, the fields
/// of both SLSA versions. Every field is optional; unknown fields are skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Document {
    #[serde(rename = "predicateType")]
    #[serde(deserialize_with = "lenient_string")]
    predicate_type: Option<String>,
    subject: Option<Vec<Subject>>,
    predicate: Option<Box<Document>>,
    /// `imagetools inspect --format '{{json .Provenance}}'`.
    #[serde(rename = "SLSA")]
    slsa: Option<Box<Document>>,
    // SLSA v0.2
    #[serde(rename = "buildType")]
    #[serde(deserialize_with = "lenient_string")]
    build_type: Option<String>,
    invocation: Option<Invocation>,
    #[serde(rename = "buildConfig")]
    build_config: Option<BuildConfig>,
    metadata: Option<MetadataV02>,
    materials: Option<Vec<Dependency>>,
    // SLSA v1
    #[serde(rename = "buildDefinition")]
    build_definition: Option<BuildDefinition>,
    #[serde(rename = "runDetails")]
    run_details: Option<RunDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Subject {
    #[serde(deserialize_with = "lenient_string")]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Invocation {
    #[serde(rename = "configSource")]
    config_source: Option<ConfigSource>,
    parameters: Option<Request>,
    environment: Option<Environment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigSource {
    /// v0.2
    #[serde(rename = "entryPoint")]
    #[serde(deserialize_with = "lenient_string")]
    entry_point: Option<String>,
    /// v1
    #[serde(deserialize_with = "lenient_string")]
    path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    args: Option<BTreeMap<String, MaybeString>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Environment {
    #[serde(deserialize_with = "lenient_string")]
    platform: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MetadataV02 {
    #[serde(rename = "https://mobyproject.org/buildkit@v1#metadata")]
    buildkit: Option<BuildkitMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BuildDefinition {
    #[serde(rename = "buildType")]
    #[serde(deserialize_with = "lenient_string")]
    build_type: Option<String>,
    #[serde(rename = "externalParameters")]
    external: Option<ExternalParameters>,
    #[serde(rename = "internalParameters")]
    internal: Option<InternalParameters>,
    #[serde(rename = "resolvedDependencies")]
    resolved_dependencies: Option<Vec<Dependency>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExternalParameters {
    #[serde(rename = "configSource")]
    config_source: Option<ConfigSource>,
    request: Option<Request>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InternalParameters {
    #[serde(rename = "buildConfig")]
    build_config: Option<BuildConfig>,
    #[serde(rename = "builderPlatform")]
    #[serde(deserialize_with = "lenient_string")]
    builder_platform: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunDetails {
    metadata: Option<RunMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunMetadata {
    buildkit_metadata: Option<BuildkitMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BuildkitMetadata {
    vcs: Option<Vcs>,
    source: Option<SourceMetadata>,
    /// `"stepN:0"` -> the whole layer chain of that step's result, base layers first.
    layers: Option<HashMap<String, Vec<Vec<LayerDescriptor>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Vcs {
    #[serde(deserialize_with = "lenient_string")]
    source: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    revision: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceMetadata {
    /// `"stepN"` -> where the step is in the Dockerfile (`{}` for steps without a line).
    locations: Option<HashMap<String, StepLocations>>,
    /// The files the locations point into: the Dockerfile first, its text in base64.
    infos: Option<Vec<SourceInfo>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceInfo {
    #[serde(deserialize_with = "lenient_string")]
    data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StepLocations {
    locations: Option<Vec<SourceLocation>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceLocation {
    ranges: Option<Vec<SourceRange>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourceRange {
    start: Option<SourcePosition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SourcePosition {
    #[serde(deserialize_with = "lenient_i64")]
    line: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LayerDescriptor {
    #[serde(deserialize_with = "lenient_string")]
    digest: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    size: Option<u64>,
    #[serde(rename = "mediaType")]
    #[serde(deserialize_with = "lenient_string")]
    media_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BuildConfig {
    #[serde(rename = "llbDefinition")]
    llb_definition: Option<Vec<LlbEntry>>,
    #[serde(rename = "digestMapping")]
    digest_mapping: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbEntry {
    #[serde(deserialize_with = "lenient_string")]
    id: Option<String>,
    inputs: Option<Vec<String>>,
    op: Option<LlbOp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbOp {
    #[serde(rename = "Op")]
    kind: Option<LlbOpKind>,
    platform: Option<LlbPlatform>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbOpKind {
    source: Option<LlbSource>,
    exec: Option<LlbExec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbExec {
    meta: Option<LlbExecMeta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbExecMeta {
    args: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbSource {
    #[serde(deserialize_with = "lenient_string")]
    identifier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LlbPlatform {
    #[serde(rename = "OS")]
    #[serde(deserialize_with = "lenient_string")]
    os: Option<String>,
    #[serde(rename = "Architecture")]
    #[serde(deserialize_with = "lenient_string")]
    architecture: Option<String>,
    #[serde(rename = "Variant")]
    #[serde(deserialize_with = "lenient_string")]
    variant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Dependency {
    #[serde(deserialize_with = "lenient_string")]
    uri: Option<String>,
    digest: Option<HashMap<String, String>>,
}

/// A string where one is expected, nothing (skipped unread) for any other JSON value.
#[derive(Debug, Default)]
pub(crate) struct MaybeString(pub Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = MaybeString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn lenient_string<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(MaybeString::deserialize(d)?.0)
}

fn lenient_i64<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(MaybeNumber::deserialize(d)?.0)
}

/// Sizes: `-1` (unknown, as older engines write it) and anything else not a count is `None`.
fn lenient_u64<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(MaybeNumber::deserialize(d)?
        .0
        .and_then(|n| u64::try_from(n).ok()))
}

/// A whole number where one is expected, nothing (skipped unread) for any other JSON value.
#[derive(Debug, Default)]
pub(crate) struct MaybeNumber(pub Option<i64>);

impl<'de> Deserialize<'de> for MaybeNumber {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = MaybeNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(i64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeNumber, E> {
                Ok(MaybeNumber(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeNumber, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeNumber(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<MaybeNumber, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeNumber(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The fields both SLSA versions carry, wherever each version keeps them.
struct Parts {
    slsa_version: SlsaVersion,
    platform: Option<String>,
    dockerfile: Option<String>,
    args: BTreeMap<String, MaybeString>,
    materials: Vec<Dependency>,
    buildkit: Option<BuildkitMetadata>,
    build_config: Option<BuildConfig>,
}

impl Document {
    pub(crate) fn into_provenance(self) -> Result<Provenance, ProvenanceError> {
        if let Some(kind) = &self.predicate_type
            && !kind.contains("slsa.dev/provenance")
        {
            return Err(ProvenanceError::NotProvenance {
                predicate_type: kind.clone(),
            });
        }
        let image_refs: Vec<String> = self
            .subject
            .iter()
            .flatten()
            .filter_map(|s| s.name.as_deref())
            .filter_map(image_ref_of_purl)
            .collect();
        let mut document = self;
        let predicate = match (document.predicate.take(), document.slsa.take()) {
            (Some(p), _) | (None, Some(p)) => *p,
            (None, None) => document,
        };
        let parts = predicate.into_parts()?;
        let mut out = Provenance {
            platform: non_empty(parts.platform),
            dockerfile: non_empty(parts.dockerfile),
            image_refs,
            slsa_version: parts.slsa_version,
            ..Provenance::default()
        };
        for dependency in parts.materials {
            let Some(uri) = non_empty(dependency.uri) else {
                continue;
            };
            out.materials.push(Material {
                uri,
                digest: dependency
                    .digest
                    .and_then(|d| d.get("sha256").cloned())
                    .filter(|d| !d.is_empty())
                    .map(|d| format!("sha256:{d}")),
            });
        }
        for (key, value) in parts.args {
            if let (Some(name), Some(value)) = (key.strip_prefix("build-arg:"), value.0) {
                out.build_args.insert(name.to_string(), value);
            }
        }
        let mut buildkit = parts.buildkit.unwrap_or_default();
        if let Some(vcs) = buildkit.vcs.take() {
            out.vcs_source = non_empty(vcs.source);
            out.vcs_revision = non_empty(vcs.revision);
        }
        if let Some(build_config) = parts.build_config {
            out.has_build_graph = true;
            read_build_graph(build_config, buildkit, &mut out);
        }
        Ok(out)
    }

    fn into_parts(self) -> Result<Parts, ProvenanceError> {
        let is_buildkit = |build_type: &Option<String>| match build_type {
            Some(t) if !(t.contains("mobyproject.org/buildkit") || t.contains("moby/buildkit")) => {
                Err(ProvenanceError::NotBuildKit {
                    build_type: t.clone(),
                })
            }
            _ => Ok(()),
        };
        if let Some(definition) = self.build_definition {
            is_buildkit(&definition.build_type)?;
            let external = definition.external.unwrap_or_default();
            let internal = definition.internal.unwrap_or_default();
            return Ok(Parts {
                slsa_version: SlsaVersion::V1,
                platform: internal.builder_platform,
                dockerfile: external
                    .config_source
                    .and_then(|c| c.path.or(c.entry_point)),
                args: external.request.and_then(|r| r.args).unwrap_or_default(),
                materials: definition.resolved_dependencies.unwrap_or_default(),
                buildkit: self
                    .run_details
                    .and_then(|r| r.metadata)
                    .and_then(|m| m.buildkit_metadata),
                build_config: internal.build_config,
            });
        }
        if self.build_type.is_none() && self.invocation.is_none() && self.build_config.is_none() {
            return Err(ProvenanceError::NoPredicate);
        }
        is_buildkit(&self.build_type)?;
        let invocation = self.invocation.unwrap_or_default();
        Ok(Parts {
            slsa_version: SlsaVersion::V02,
            platform: invocation.environment.and_then(|e| e.platform),
            dockerfile: invocation
                .config_source
                .and_then(|c| c.entry_point.or(c.path)),
            args: invocation
                .parameters
                .and_then(|p| p.args)
                .unwrap_or_default(),
            materials: self.materials.unwrap_or_default(),
            buildkit: self.metadata.and_then(|m| m.buildkit),
            build_config: self.build_config,
        })
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

struct LlbStep {
    inputs: Vec<String>,
    source: Option<String>,
    platform: Option<String>,
    /// A `RUN`'s command line.
    exec_args: Option<Vec<String>>,
}

impl LlbStep {
    fn is_image(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| s.starts_with("docker-image://"))
    }
}

/// `{"OS": "linux", "Architecture": "arm", "Variant": "v7"}` -> `linux/arm/v7`.
fn llb_platform(platform: LlbPlatform) -> Option<String> {
    let os = platform.os?;
    let arch = platform.architecture?;
    Some(match platform.variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

fn read_build_graph(build_config: BuildConfig, meta: BuildkitMetadata, out: &mut Provenance) {
    let mut steps: HashMap<String, LlbStep> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for entry in build_config.llb_definition.into_iter().flatten() {
        let Some(id) = entry.id else { continue };
        let inputs = entry
            .inputs
            .into_iter()
            .flatten()
            .map(|i| i.split(':').next().unwrap_or(&i).to_string())
            .collect();
        let (source, exec_args, platform) = match entry.op {
            Some(op) => {
                let kind = op.kind.unwrap_or_default();
                (
                    kind.source.and_then(|s| s.identifier),
                    kind.exec.and_then(|e| e.meta).and_then(|m| m.args),
                    op.platform.and_then(llb_platform),
                )
            }
            None => (None, None, None),
        };
        last = Some(id.clone());
        order.push(id.clone());
        steps.insert(
            id,
            LlbStep {
                inputs,
                source,
                platform,
                exec_args,
            },
        );
    }
    let is_context = |id: &str| {
        steps
            .get(id)
            .and_then(|s| s.source.as_deref())
            .is_some_and(|src| src.starts_with("local://") && src != "local://dockerfile")
    };
    let mut chains = layer_chains(meta.layers.unwrap_or_default());
    infer_base_image_chains(&steps, &mut chains);
    let source = meta.source.unwrap_or_default();
    let dockerfile = source
        .infos
        .into_iter()
        .flatten()
        .next()
        .and_then(|info| info.data)
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
        .map(|text| String::from_utf8_lossy(&text).into_owned());
    let lines = source_lines(source.locations.unwrap_or_default());
    let digest_of: HashMap<&str, &str> = build_config
        .digest_mapping
        .iter()
        .flatten()
        .map(|(digest, id)| (id.as_str(), digest.as_str()))
        .collect();
    // The Dockerfile's steps, in the definition's order: the operations with a Dockerfile
    // line, but the build context's and the Dockerfile's own sources.
    for id in &order {
        let (Some(step), Some(&line), Some(&digest)) =
            (steps.get(id), lines.get(id), digest_of.get(id.as_str()))
        else {
            continue;
        };
        if step
            .source
            .as_deref()
            .is_some_and(|s| s.starts_with("local://"))
        {
            continue;
        }
        let instruction = dockerfile
            .as_deref()
            .and_then(|text| instruction_at(text, line))
            .unwrap_or_else(|| instruction_of_op(step, line));
        out.steps.push(ProvenanceStep {
            vertex_digest: digest.to_string(),
            instruction,
            // File operations carry no platform: their input chain's.
            platform: target_platform(id, &steps),
            dockerfile_line: line,
        });
    }
    for (digest, id) in build_config.digest_mapping.into_iter().flatten() {
        let Some(step) = steps.get(&id) else { continue };
        let own_layers = match chains.get(&id) {
            // A base image (`FROM`) brings its whole chain; it has no parent to subtract.
            Some(chain) if step.source.is_some() => chain.clone(),
            Some(chain) => {
                let parent = step.inputs.first().and_then(|p| chains.get(p));
                match parent {
                    Some(parent) if chain.starts_with(parent) => chain[parent.len()..].to_vec(),
                    // Without the parent's chain, a Dockerfile step adds one layer: the last.
                    _ => chain.last().cloned().into_iter().collect(),
                }
            }
            None => Vec::new(),
        };
        out.vertices.insert(
            digest,
            VertexFacts {
                dockerfile_line: lines.get(&id).copied(),
                layers: own_layers,
                reads_context: step.inputs.iter().any(|i| is_context(i)),
            },
        );
    }
    // The last LLB entry is the build result; its input's chain is the image. The target
    // platform is the one its ops run for (`environment.platform` is the builder's).
    if let Some(result) = last.as_ref().and_then(|id| steps.get(id))
        && let Some(input) = result.inputs.first()
        && let Some(chain) = chains.get(input)
    {
        if let Some(target) = target_platform(input, &steps) {
            out.platform = Some(target);
        }
        out.image = Some(PlatformImage {
            platform: out.platform.clone(),
            layers: chain.clone(),
            total_bytes: crate::model::layers_size(chain),
            ..PlatformImage::default()
        });
    }
}

/// The instruction starting at `line` (1-based) of a Dockerfile, its continuation lines
/// joined and its whitespace collapsed, as BuildKit names a step.
fn instruction_at(dockerfile: &str, line: u32) -> Option<String> {
    const MAX_CHARS: usize = 1000;
    let mut text = String::new();
    for row in dockerfile
        .lines()
        .skip(usize::try_from(line).ok()?.checked_sub(1)?)
    {
        let (row, continues) = match row.trim_end().strip_suffix('\\') {
            Some(row) => (row, true),
            None => (row, false),
        };
        for word in row.split_whitespace() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(word);
        }
        if !continues || text.len() > MAX_CHARS {
            break;
        }
    }
    let text: String = text.chars().take(MAX_CHARS).collect();
    (!text.is_empty()).then_some(text)
}

/// A step's instruction rebuilt from its operation, for provenance without the Dockerfile's
/// text: `FROM image`, `RUN command`, else where it is.
fn instruction_of_op(step: &LlbStep, line: u32) -> String {
    if let Some(image) = step
        .source
        .as_deref()
        .and_then(|s| s.strip_prefix("docker-image://"))
    {
        return format!("FROM {image}");
    }
    match step.exec_args.as_deref() {
        Some([shell, flag, command]) if shell.ends_with("sh") && flag == "-c" => {
            format!("RUN {command}")
        }
        Some(args) if !args.is_empty() => format!("RUN {}", args.join(" ")),
        _ => format!("Dockerfile line {line}"),
    }
}

/// BuildKit records no layer chain for a base image (`FROM`). Its layers are the chain of a step
/// built directly on it, without that step's own layer (each file or exec op adds one).
fn infer_base_image_chains(
    steps: &HashMap<String, LlbStep>,
    chains: &mut HashMap<String, Vec<Layer>>,
) {
    let mut inferred: Vec<(String, Vec<Layer>)> = Vec::new();
    for (id, step) in steps {
        let Some(base) = step.inputs.first() else {
            continue;
        };
        if chains.contains_key(base) || inferred.iter().any(|(b, _)| b == base) {
            continue;
        }
        if !steps.get(base).is_some_and(LlbStep::is_image) {
            continue;
        }
        if let Some(chain) = chains.get(id)
            && let Some((_, below)) = chain.split_last()
        {
            inferred.push((base.clone(), below.to_vec()));
        }
    }
    chains.extend(inferred);
}

/// The platform of the nearest op (walking first inputs) that states one.
fn target_platform<'a>(mut id: &'a str, steps: &'a HashMap<String, LlbStep>) -> Option<String> {
    for _ in 0..steps.len() {
        let step = steps.get(id)?;
        if let Some(p) = &step.platform {
            return Some(p.clone());
        }
        id = step.inputs.first()?;
    }
    None
}

fn layer_chains(layers: HashMap<String, Vec<Vec<LayerDescriptor>>>) -> HashMap<String, Vec<Layer>> {
    layers
        .into_iter()
        .map(|(key, groups)| {
            let id = key.split(':').next().unwrap_or(&key).to_string();
            let chain = groups
                .into_iter()
                .flatten()
                .filter_map(|layer| {
                    Some(Layer {
                        digest: layer.digest?,
                        size: layer.size,
                        media_type: layer.media_type,
                    })
                })
                .collect();
            (id, chain)
        })
        .collect()
}

fn source_lines(locations: HashMap<String, StepLocations>) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    for (id, entry) in locations {
        // One vertex can stand for several instructions (two stages `FROM` the same image
        // share it); BuildKit names it after the first, so its line is the smallest. A heredoc
        // has one range per line: the instruction starts at the first.
        let line = entry
            .locations
            .into_iter()
            .flatten()
            .flat_map(|l| l.ranges.into_iter().flatten())
            .filter_map(|r| u32::try_from(r.start?.line?).ok())
            .filter(|line| *line > 0)
            .min();
        if let Some(line) = line {
            lines.insert(id, line);
        }
    }
    lines
}

/// A step the provenance does not map (a bake target's record also holds the other target's run
/// of a shared step, under another digest) takes the Dockerfile line of the step at the same
/// position (`[platform stage i/n]`): the same instruction.
pub fn share_lines_by_position(steps: &mut [crate::model::Step]) {
    type Position = (Option<String>, Option<String>, Option<u32>, Option<u32>);
    let position = |s: &crate::model::Step| -> Position {
        (s.platform.clone(), s.stage.clone(), s.index, s.total)
    };
    let known: Vec<(Position, u32)> = steps
        .iter()
        .filter(|s| s.index.is_some())
        .filter_map(|s| Some((position(s), s.dockerfile_line?)))
        .collect();
    if known.is_empty() {
        return;
    }
    for step in steps
        .iter_mut()
        .filter(|s| s.dockerfile_line.is_none() && s.index.is_some())
    {
        let at = position(step);
        step.dockerfile_line = known.iter().find(|(p, _)| *p == at).map(|(_, line)| *line);
    }
}

/// `pkg:docker/localhost%3A5000/app@v2?platform=linux%2Famd64` -> `localhost:5000/app:v2`.
fn image_ref_of_purl(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:docker/")?;
    let rest = rest.split(['?', '#']).next()?;
    let (name, version) = match rest.split_once('@') {
        Some((name, version)) => (name, Some(percent_decode(version))),
        None => (rest, None),
    };
    let name = percent_decode(name);
    Some(match version {
        Some(v) if v.starts_with("sha256:") => format!("{name}@{v}"),
        Some(tag) => format!("{name}:{tag}"),
        None => name,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_name_the_image() {
        assert_eq!(
            image_ref_of_purl("pkg:docker/localhost%3A5000/app@v2?platform=linux%2Famd64")
                .as_deref(),
            Some("localhost:5000/app:v2")
        );
        assert_eq!(
            image_ref_of_purl("pkg:docker/ghcr.io/a/b@sha256%3Aabc").as_deref(),
            Some("ghcr.io/a/b@sha256:abc")
        );
        assert_eq!(image_ref_of_purl("pkg:npm/x@1"), None);
        // A dangling or bad escape is kept as text, not a panic.
        assert_eq!(
            image_ref_of_purl("pkg:docker/a%4@%zz%").as_deref(),
            Some("a%4:%zz%")
        );
    }

    const V1_PREDICATE: &str = r#"{
      "runDetails": {"metadata": {"buildkit_metadata": {
        "vcs": {"source": "https://github.com/acme/app", "revision": "abc"},
        "source": {"locations": {"step0": {"locations": [{"ranges": [{"start": {"line": 1}}]}]},
                                 "step1": {"locations": [{"ranges": [{"start": {"line": 2}}]}]},
                                 "step2": {}},
                   "infos": [{"filename": "Dockerfile", "data": "RlJPTQ==", "llbDefinition": [{"id": "x"}],
                              "digestMapping": {"sha256:dockerfile": "x"}}]},
        "layers": {"step1:0": [[{"mediaType": "m", "digest": "sha256:base", "size": 10},
                                {"mediaType": "m", "digest": "sha256:own", "size": 3}]]}}}},
      "buildDefinition": {
        "internalParameters": {"builderPlatform": "linux/amd64", "buildConfig": {
          "digestMapping": {"sha256:v0": "step0", "sha256:v1": "step1"},
          "llbDefinition": [
            {"id": "step0", "op": {"Op": {"source": {"identifier": "docker-image://busybox:1@sha256:b"}},
                                   "platform": {"OS": "linux", "Architecture": "arm64"}}},
            {"id": "step2", "op": {"Op": {"source": {"identifier": "local://context"}}}},
            {"id": "step1", "inputs": ["step0:0", "step2:0"], "op": {"Op": {"file": {}}}},
            {"id": "step3", "inputs": ["step1:0"], "op": {"Op": {}}}]}},
        "externalParameters": {"request": {"args": {"build-arg:V": "2", "label:x": "y", "n": 1}},
                               "configSource": {"path": "app.Dockerfile"}},
        "resolvedDependencies": [{"uri": "pkg:docker/busybox@1", "digest": {"sha256": "b"}}],
        "buildType": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"}
    }"#;

    #[test]
    fn slsa_v1_in_any_key_order_gives_lines_layers_args_and_materials() {
        let p = parse_bytes(V1_PREDICATE.as_bytes()).unwrap();
        assert_eq!(p.slsa_version, SlsaVersion::V1);
        assert!(p.has_build_graph);
        assert_eq!(p.dockerfile.as_deref(), Some("app.Dockerfile"));
        assert_eq!(p.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(p.build_args.get("V").map(String::as_str), Some("2"));
        assert_eq!(p.build_args.len(), 1);
        assert_eq!(p.vcs_revision.as_deref(), Some("abc"));
        assert_eq!(p.materials[0].digest.as_deref(), Some("sha256:b"));
        let step = &p.vertices["sha256:v1"];
        assert_eq!(step.dockerfile_line, Some(2));
        assert!(step.reads_context);
        let own: Vec<&str> = step.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(own, ["sha256:own"]);
        // The base image's layers: the chain below the first step built on it.
        let base: Vec<&str> = p.vertices["sha256:v0"]
            .layers
            .iter()
            .map(|l| l.digest.as_str())
            .collect();
        assert_eq!(base, ["sha256:base"]);
        assert_eq!(p.image.unwrap().total_bytes, Some(13));

        // The same predicate in a statement, and wrapped as imagetools prints it.
        let statement = format!(
            r#"{{"subject":[{{"name":"pkg:docker/r/app@v2"}}],"predicate":{V1_PREDICATE},
                "predicateType":"https://slsa.dev/provenance/v1","_type":"https://in-toto.io/Statement/v1"}}"#
        );
        let from_statement = parse_bytes(statement.as_bytes()).unwrap();
        assert_eq!(from_statement.image_refs, ["r/app:v2"]);
        assert_eq!(
            from_statement.vertices,
            parse_bytes(V1_PREDICATE.as_bytes()).unwrap().vertices
        );
        let wrapped = format!(r#"{{"SLSA": {V1_PREDICATE}}}"#);
        assert!(parse_bytes(wrapped.as_bytes()).unwrap().has_build_graph);
        let value: serde_json::Value = serde_json::from_str(&statement).unwrap();
        assert_eq!(parse(&value).unwrap(), from_statement);
    }

    #[test]
    fn foreign_and_partial_documents_say_why() {
        let foreign = r#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2",
            "predicate":{"buildType":"https://github.com/slsa-framework/slsa-github-generator/container@v1","invocation":{}}}"#;
        assert!(matches!(
            parse_bytes(foreign.as_bytes()),
            Err(ProvenanceError::NotBuildKit { .. })
        ));
        let sbom = r#"{"predicateType":"https://spdx.dev/Document","predicate":{}}"#;
        assert!(matches!(
            parse_bytes(sbom.as_bytes()),
            Err(ProvenanceError::NotProvenance { .. })
        ));
        assert!(matches!(
            parse_bytes(b"{\"a\":1}"),
            Err(ProvenanceError::NoPredicate)
        ));
        assert!(matches!(
            parse_bytes(b"{\"buildType\":"),
            Err(ProvenanceError::Truncated(_))
        ));
        // mode=min: materials and arguments, no build graph.
        let min = r#"{"invocation":{"parameters":{"args":{"build-arg:A":"1"}}},"buildType":"https://mobyproject.org/buildkit@v1"}"#;
        let p = parse_bytes(min.as_bytes()).unwrap();
        assert!(!p.has_build_graph);
        assert_eq!(p.build_args["A"], "1");
    }

    #[test]
    fn skipped_fields_are_not_held() {
        // A large unused field (a long run of numbers) parses without being kept.
        let numbers = vec!["1"; 200_000].join(",");
        let text = format!(
            r#"{{"buildType":"https://mobyproject.org/buildkit@v1","sysUsage":[{numbers}],"invocation":{{}}}}"#
        );
        let p = parse_reader(text.as_bytes()).unwrap();
        assert!(p.vertices.is_empty());
    }

    #[test]
    fn a_step_is_named_by_its_dockerfile_instruction_or_else_its_operation() {
        let dockerfile = "FROM alpine AS base\n\nRUN apk add \\\n    curl \\\n  git\nCOPY . /src\n";
        assert_eq!(
            instruction_at(dockerfile, 1).as_deref(),
            Some("FROM alpine AS base")
        );
        assert_eq!(
            instruction_at(dockerfile, 3).as_deref(),
            Some("RUN apk add curl git")
        );
        assert_eq!(
            instruction_at(dockerfile, 6).as_deref(),
            Some("COPY . /src")
        );
        assert_eq!(instruction_at(dockerfile, 2), None);
        assert_eq!(instruction_at(dockerfile, 0), None);
        assert_eq!(instruction_at(dockerfile, 99), None);
        let long = format!("RUN {}\\\n", "x".repeat(900)).repeat(50);
        assert!(instruction_at(&long, 1).unwrap().chars().count() <= 1000);

        let op = |source: Option<&str>, args: Option<&[&str]>| LlbStep {
            inputs: Vec::new(),
            source: source.map(str::to_string),
            platform: None,
            exec_args: args.map(|a| a.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(
            instruction_of_op(
                &op(Some("docker-image://docker.io/library/alpine:3"), None),
                1
            ),
            "FROM docker.io/library/alpine:3"
        );
        assert_eq!(
            instruction_of_op(&op(None, Some(&["/bin/sh", "-c", "make all"])), 4),
            "RUN make all"
        );
        assert_eq!(
            instruction_of_op(&op(None, Some(&["make", "all"])), 4),
            "RUN make all"
        );
        assert_eq!(instruction_of_op(&op(None, None), 7), "Dockerfile line 7");
    }
}
