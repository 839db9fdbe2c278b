//! What a BuildKit vertex name says about the vertex: a Dockerfile step, an internal
//! operation, a cache import or export, or a result export.

use crate::model::StepKind;

/// A Dockerfile step's name, taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepName {
    pub stage: Option<String>,
    pub platform: Option<String>,
    pub index: Option<u32>,
    pub total: Option<u32>,
    pub instruction: String,
    pub kind: StepKind,
    /// The second vertex of a `COPY --link` / `ADD --link` step (`LINK COPY --link ...`),
    /// which merges the copied layer onto the previous step: half of one step.
    pub link: bool,
}

impl StepName {
    /// The instruction of the step this vertex belongs to (`LINK ` taken off the link half).
    pub fn linked_instruction(&self) -> &str {
        if self.link {
            self.instruction
                .strip_prefix("LINK ")
                .unwrap_or(&self.instruction)
        } else {
            &self.instruction
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VertexClass {
    Step(StepName),
    /// `[internal] ...`, `[auth] ...`, `[context x] load ...` and similar bookkeeping.
    Internal,
    CacheImport {
        reference: String,
        cache_type: Option<String>,
    },
    CacheExport {
        cache_type: Option<String>,
    },
    ResultExport,
    Other,
}

const IMPORT_PREFIX: &str = "importing cache manifest from ";

pub fn classify(name: &str) -> VertexClass {
    let name = name.trim();
    if let Some(reference) = name.strip_prefix(IMPORT_PREFIX) {
        let reference = reference.trim().to_string();
        let cache_type = import_cache_type(&reference);
        return VertexClass::CacheImport {
            reference,
            cache_type,
        };
    }
    if let Some(cache_type) = export_cache_type(name) {
        return VertexClass::CacheExport {
            cache_type: cache_type.map(str::to_string),
        };
    }
    if name.starts_with("exporting ") || name == "sending tarball" {
        return VertexClass::ResultExport;
    }
    if let Some(rest) = name.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return VertexClass::Other;
        };
        let label = &rest[..close];
        let instruction = rest[close + 1..].trim();
        return match parse_label(label) {
            Some(mut step) => {
                let mut words = instruction.split_whitespace();
                let mut keyword = words.next();
                if keyword == Some("LINK") {
                    let linked = words.next();
                    if matches!(linked, Some("COPY" | "ADD")) && instruction.contains("--link") {
                        step.link = true;
                        keyword = linked;
                    }
                }
                step.kind = keyword.map(StepKind::from_keyword).unwrap_or_default();
                step.instruction = instruction.to_string();
                VertexClass::Step(step)
            }
            None => VertexClass::Internal,
        };
    }
    VertexClass::Other
}

/// Parses `linux/386 builder 3/6` (any subset, position last) into a step name.
fn parse_label(label: &str) -> Option<StepName> {
    let tokens: Vec<&str> = label.split_whitespace().collect();
    let (position, prefix) = tokens.split_last()?;
    let (index, total) = position.split_once('/')?;
    let index: u32 = index.parse().ok()?;
    let total: u32 = total.parse().ok()?;
    let mut step = StepName {
        index: Some(index),
        total: Some(total),
        ..StepName::default()
    };
    for token in prefix {
        // Stage names cannot contain '/', platforms always do.
        if token.contains('/') {
            step.platform = Some((*token).to_string());
        } else {
            step.stage = Some((*token).to_string());
        }
    }
    Some(step)
}

/// The vertex that uploads the local build context (or a named context) to BuildKit.
pub fn reads_build_context(name: &str) -> bool {
    let name = name.trim();
    name.ends_with("load build context")
        || (name.starts_with("[context ") && name.contains("] load"))
}

fn import_cache_type(reference: &str) -> Option<String> {
    // BuildKit shows `<type>:<hash>` when the importer has no ref to show.
    if let Some((kind, rest)) = reference.split_once(':')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
        && ["gha", "local", "s3", "azblob"].contains(&kind)
    {
        return Some(kind.to_string());
    }
    if reference.contains('/') || reference.contains(':') {
        return Some("registry".to_string());
    }
    None
}

/// `Some(type)` when the name is a cache export vertex (type `None` when BuildKit does not say).
fn export_cache_type(name: &str) -> Option<Option<&'static str>> {
    let known: &[(&str, Option<&'static str>)] = &[
        ("exporting cache to registry", Some("registry")),
        ("exporting to GitHub Actions Cache", Some("gha")),
        ("exporting cache to GitHub Actions Cache", Some("gha")),
        ("exporting cache to client directory", Some("local")),
        ("exporting cache to Amazon S3", Some("s3")),
        ("exporting cache to Azure Blob Storage", Some("azblob")),
        ("exporting inline cache", Some("inline")),
        ("exporting content cache", None),
        ("exporting cache", None),
    ];
    known
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str) -> StepName {
        match classify(name) {
            VertexClass::Step(s) => s,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn plain_step() {
        let s = step("[3/6] COPY requirements.txt .");
        assert_eq!((s.index, s.total), (Some(3), Some(6)));
        assert_eq!(s.kind, StepKind::Copy);
        assert_eq!(s.instruction, "COPY requirements.txt .");
        assert_eq!((s.stage, s.platform), (None, None));
    }

    #[test]
    fn stage_and_platform() {
        let s = step("[linux/arm/v7 builder 4/6] RUN go build");
        assert_eq!(s.platform.as_deref(), Some("linux/arm/v7"));
        assert_eq!(s.stage.as_deref(), Some("builder"));
        assert_eq!(s.kind, StepKind::Run);
        let s = step("[stage-1 2/3] WORKDIR /app");
        assert_eq!(s.stage.as_deref(), Some("stage-1"));
        assert_eq!(s.kind, StepKind::Workdir);
    }

    #[test]
    fn internal_and_cache_vertices() {
        assert_eq!(
            classify("[internal] load build context"),
            VertexClass::Internal
        );
        assert_eq!(
            classify("[linux/amd64 internal] load metadata for x:1"),
            VertexClass::Internal
        );
        assert_eq!(
            classify("[auth] library/busybox:pull token"),
            VertexClass::Internal
        );
        assert_eq!(
            classify("importing cache manifest from localhost:5000/app:buildcache"),
            VertexClass::CacheImport {
                reference: "localhost:5000/app:buildcache".into(),
                cache_type: Some("registry".into())
            }
        );
        assert_eq!(
            classify("importing cache manifest from gha:1582178360929718"),
            VertexClass::CacheImport {
                reference: "gha:1582178360929718".into(),
                cache_type: Some("gha".into())
            }
        );
        assert_eq!(
            classify("exporting cache to registry"),
            VertexClass::CacheExport {
                cache_type: Some("registry".into())
            }
        );
        assert_eq!(classify("exporting to image"), VertexClass::ResultExport);
        assert_eq!(classify("copy /context /"), VertexClass::Other);
        assert!(reads_build_context("[internal] load build context"));
        assert!(reads_build_context("[context deps] load from client"));
        assert!(!reads_build_context("[internal] load .dockerignore"));
    }

    #[test]
    fn the_link_half_of_copy_link_belongs_to_its_copy() {
        let copy = step("[stage-0 4/8] COPY --link Cargo.toml Cargo.lock /work/");
        let link = step("[stage-0 4/8] LINK COPY --link Cargo.toml Cargo.lock /work/");
        assert!(!copy.link);
        assert!(link.link);
        assert_eq!(link.kind, StepKind::Copy);
        assert_eq!(link.linked_instruction(), copy.instruction);
        assert_eq!(copy.linked_instruction(), copy.instruction);
        // A step that merely starts with the word is not a link half.
        assert!(!step("[2/3] LINK COPY stuff").link);
    }

    #[test]
    fn unbalanced_brackets_are_not_steps() {
        assert_eq!(classify("[3/6 RUN x"), VertexClass::Other);
        assert_eq!(classify("[] RUN x"), VertexClass::Internal);
    }
}
