//! SLSA v0.2 provenance as BuildKit writes it (an in-toto statement, or the bare predicate that
//! buildx puts in the metadata file). mode=min gives materials and build arguments; mode=max
//! adds the LLB graph, which maps vertex digests to Dockerfile lines and to the layers each
//! step produced.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::model::{Layer, Material, PlatformImage};

/// Facts about one vertex that progress streams do not carry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VertexFacts {
    pub dockerfile_line: Option<u32>,
    /// Layers this step added on top of its input.
    pub layers: Vec<Layer>,
    pub reads_context: bool,
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
    /// The Dockerfile the frontend read (`invocation.configSource.entryPoint`).
    pub dockerfile: Option<String>,
}

/// Reads a statement or a bare predicate. `None` when the value is neither.
pub fn parse(value: &Value) -> Option<Provenance> {
    let predicate = match value.get("predicate") {
        Some(p) if p.is_object() => p,
        _ => value,
    };
    if predicate.get("buildType").is_none() && predicate.get("invocation").is_none() {
        return None;
    }
    let mut out = Provenance {
        platform: str_at(predicate, &["invocation", "environment", "platform"]),
        dockerfile: str_at(predicate, &["invocation", "configSource", "entryPoint"]),
        image_refs: value
            .get("subject")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name")?.as_str())
            .filter_map(image_ref_of_purl)
            .collect(),
        ..Provenance::default()
    };
    for material in predicate
        .get("materials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(uri) = material.get("uri").and_then(Value::as_str) {
            out.materials.push(Material {
                uri: uri.to_string(),
                digest: str_at(material, &["digest", "sha256"]).map(|d| format!("sha256:{d}")),
            });
        }
    }
    if let Some(args) =
        value_at(predicate, &["invocation", "parameters", "args"]).and_then(Value::as_object)
    {
        for (key, val) in args {
            if let (Some(name), Some(val)) = (key.strip_prefix("build-arg:"), val.as_str()) {
                out.build_args.insert(name.to_string(), val.to_string());
            }
        }
    }
    let buildkit_meta = value_at(
        predicate,
        &["metadata", "https://mobyproject.org/buildkit@v1#metadata"],
    );
    if let Some(meta) = buildkit_meta {
        out.vcs_source = str_at(meta, &["vcs", "source"]);
        out.vcs_revision = str_at(meta, &["vcs", "revision"]);
    }
    let Some(build_config) = predicate.get("buildConfig") else {
        return Some(out);
    };
    out.has_build_graph = true;
    read_build_graph(build_config, buildkit_meta, &mut out);
    Some(out)
}

struct LlbStep<'a> {
    inputs: Vec<&'a str>,
    source: Option<&'a str>,
    platform: Option<String>,
}

/// `{"OS": "linux", "Architecture": "arm", "Variant": "v7"}` -> `linux/arm/v7`.
fn llb_platform(op: &Value) -> Option<String> {
    let p = op.get("platform")?;
    let os = p.get("OS")?.as_str()?;
    let arch = p.get("Architecture")?.as_str()?;
    Some(match p.get("Variant").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

fn read_build_graph(build_config: &Value, meta: Option<&Value>, out: &mut Provenance) {
    let mut steps: HashMap<&str, LlbStep<'_>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for entry in build_config
        .get("llbDefinition")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = entry.get("id").and_then(Value::as_str) else {
            continue;
        };
        let inputs = entry
            .get("inputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|i| i.split(':').next().unwrap_or(i))
            .collect();
        let source = value_at(entry, &["op", "Op", "source", "identifier"]).and_then(Value::as_str);
        order.push(id);
        let platform = entry.get("op").and_then(llb_platform);
        steps.insert(
            id,
            LlbStep {
                inputs,
                source,
                platform,
            },
        );
    }
    let is_context = |id: &str| {
        steps
            .get(id)
            .and_then(|s| s.source)
            .is_some_and(|src| src.starts_with("local://") && src != "local://dockerfile")
    };
    let chains = layer_chains(meta);
    let lines = source_lines(meta);
    let Some(mapping) = build_config.get("digestMapping").and_then(Value::as_object) else {
        return;
    };
    for (digest, id) in mapping {
        let Some(id) = id.as_str() else { continue };
        let Some(step) = steps.get(id) else { continue };
        let own_layers = match chains.get(id) {
            // A base image (`FROM`) brings its whole chain; it has no parent to subtract.
            Some(chain) if step.source.is_some() => chain.clone(),
            Some(chain) => {
                let parent = step.inputs.first().and_then(|p| chains.get(*p));
                match parent {
                    Some(parent) if chain.starts_with(parent) => chain[parent.len()..].to_vec(),
                    // Without the parent's chain, a Dockerfile step adds one layer: the last.
                    _ => chain.last().cloned().into_iter().collect(),
                }
            }
            None => Vec::new(),
        };
        out.vertices.insert(
            digest.clone(),
            VertexFacts {
                dockerfile_line: lines.get(id).copied(),
                layers: own_layers,
                reads_context: step.inputs.iter().any(|i| is_context(i)),
            },
        );
    }
    // The last LLB entry is the build result; its input's chain is the image. The target
    // platform is the one its ops run for (`environment.platform` is the builder's).
    if let Some(result) = order.last().and_then(|id| steps.get(id))
        && let Some(input) = result.inputs.first()
        && let Some(chain) = chains.get(*input)
    {
        if let Some(target) = target_platform(input, &steps) {
            out.platform = Some(target);
        }
        let total = crate::model::layers_size(chain);
        out.image = Some(PlatformImage {
            platform: out.platform.clone(),
            layers: chain.clone(),
            total_bytes: total,
            ..PlatformImage::default()
        });
    }
}

/// The platform of the nearest op (walking first inputs) that states one.
fn target_platform<'a>(mut id: &'a str, steps: &HashMap<&'a str, LlbStep<'a>>) -> Option<String> {
    for _ in 0..steps.len() {
        let step = steps.get(id)?;
        if let Some(p) = &step.platform {
            return Some(p.clone());
        }
        id = step.inputs.first()?;
    }
    None
}

fn layer_chains(meta: Option<&Value>) -> HashMap<String, Vec<Layer>> {
    let mut chains = HashMap::new();
    let Some(layers) = meta
        .and_then(|m| m.get("layers"))
        .and_then(Value::as_object)
    else {
        return chains;
    };
    for (key, groups) in layers {
        let id = key.split(':').next().unwrap_or(key).to_string();
        let chain: Vec<Layer> = groups
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|layer| {
                Some(Layer {
                    digest: layer.get("digest")?.as_str()?.to_string(),
                    size: layer.get("size").and_then(Value::as_u64),
                    media_type: layer
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .collect();
        chains.insert(id, chain);
    }
    chains
}

fn source_lines(meta: Option<&Value>) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    let Some(locations) = meta
        .and_then(|m| value_at(m, &["source", "locations"]))
        .and_then(Value::as_object)
    else {
        return lines;
    };
    for (id, entry) in locations {
        // One vertex can stand for several instructions (two stages `FROM` the same image
        // share it); BuildKit names it after the first, so its line is the smallest.
        let line = entry
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| {
                let line = l
                    .get("ranges")
                    .and_then(Value::as_array)?
                    .first()
                    .and_then(|r| value_at(r, &["start", "line"]))?
                    .as_u64()?;
                u32::try_from(line).ok()
            })
            .min();
        if let Some(line) = line {
            lines.insert(id.clone(), line);
        }
    }
    lines
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

pub(crate) fn value_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

pub(crate) fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    value_at(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
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
}
