//! Records of today's GitHub runners (buildx v0.36.1 + BuildKit v0.32.2, `tests/fixtures/buildx-v0.36`):
//! SLSA v1 provenance in `.dockerbuild` bundles and image attestations, SLSA v0.2 in metadata
//! files (trimmed to mode=min unless asked for more), the TTY display, and failed builds' records.
//! Statuses are checked against BuildKit's own: the replay of the same build record
//! (`history logs --progress rawjson`), read here without cachehit's readers.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use cachehit::model::{Build, StatusSource, Step, StepKind, StepStatus};
use cachehit::readers::{InputFormat, ReadOptions, detect, read_inputs};
use serde_json::Value;

const SCENARIOS: &[&str] = &[
    "p1-copy-before-deps",
    "p2-deps-first",
    "p3-multistage-mode-min",
    "p4-multistage-mode-max",
    "p5-cache-scope-per-tag",
    "p6-failed-build",
    "p7-multiplatform",
    "d1-copy-link",
    "d3-build-arg",
];

fn dir(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildx-v0.36")
        .join(scenario)
}

/// Every record of a v2 build: (label, bundle, replayed rawjson, image directory).
fn records() -> Vec<(String, PathBuf, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for scenario in SCENARIOS {
        let d = dir(scenario);
        out.push((
            scenario.to_string(),
            d.join("v2.dockerbuild"),
            d.join("v2.history-logs.rawjson"),
            d.join("v2.image"),
        ));
    }
    for target in ["api", "worker"] {
        let d = dir("d2-bake-two-targets");
        out.push((
            format!("d2-bake-two-targets {target}"),
            d.join(format!("v2.{target}.dockerbuild")),
            d.join(format!("v2.{target}.history-logs.rawjson")),
            d.join(format!("v2.{target}.image")),
        ));
    }
    out
}

fn read(paths: &[PathBuf]) -> Build {
    read_inputs(paths, &ReadOptions::default()).unwrap()
}

/// What BuildKit says of each vertex in a rawjson stream: cached if any update says so,
/// failed or canceled with an error, rebuilt once completed, not run otherwise.
#[derive(Debug, Default)]
struct Own {
    name: String,
    cached: bool,
    error: Option<String>,
    completed: bool,
}

fn own_statuses(rawjson: &Path) -> HashMap<String, Own> {
    let text = std::fs::read_to_string(rawjson).unwrap();
    let mut vertices: HashMap<String, Own> = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let update: Value = serde_json::from_str(line).unwrap();
        for v in update["vertexes"].as_array().into_iter().flatten() {
            let own = vertices
                .entry(v["digest"].as_str().unwrap().to_string())
                .or_default();
            if let Some(name) = v["name"].as_str() {
                own.name = name.to_string();
            }
            own.cached |= v["cached"].as_bool().unwrap_or(false);
            if let Some(e) = v["error"].as_str() {
                own.error = Some(e.to_string());
            }
            own.completed |= v.get("completed").is_some_and(|c| !c.is_null());
        }
    }
    vertices
}

fn expected(own: &Own) -> StepStatus {
    match &own.error {
        _ if own.cached => StepStatus::Cached,
        Some(e) if e.ends_with("context canceled") => StepStatus::Canceled,
        Some(_) => StepStatus::Failed,
        None if own.completed => StepStatus::Rebuilt,
        None => StepStatus::NotRun,
    }
}

/// Every step has its Dockerfile line; every step of the image's own stage has its layers
/// (BuildKit records the layers of the steps whose results it exported, which always include
/// the final stage's).
fn assert_lines_and_layers(label: &str, build: &Build) {
    for step in &build.steps {
        assert!(
            step.dockerfile_line.is_some(),
            "{label}: {} has no line",
            step.name
        );
    }
    let last = build
        .steps
        .iter()
        .max_by_key(|s| s.dockerfile_line)
        .expect("steps");
    for step in build.steps.iter().filter(|s| s.stage == last.stage) {
        assert!(
            !step.layers.is_empty(),
            "{label}: {} has no layers",
            step.name
        );
    }
}

/// Steps whose status BuildKit states (a `FROM` is resolved, not built).
fn built_steps(build: &Build) -> impl Iterator<Item = &Step> {
    build.steps.iter().filter(|s| s.kind != StepKind::From)
}

#[test]
fn bundles_give_every_step_its_line_layers_and_buildkits_status() {
    for (label, bundle, replay, _) in records() {
        let build = read(std::slice::from_ref(&bundle));
        let own = own_statuses(&replay);
        assert!(!build.steps.is_empty(), "{label}");
        for step in built_steps(&build) {
            let digest = step
                .vertex_digest
                .as_deref()
                .expect("bundles carry digests");
            assert_eq!(
                step.status,
                expected(&own[digest]),
                "{label}: {}",
                step.name
            );
        }
        if label == "p6-failed-build" {
            // A failed build's bundle holds no provenance.
            continue;
        }
        assert_lines_and_layers(&label, &build);
        assert!(
            !build
                .problems
                .iter()
                .any(|p| p.message.contains("mode=min")),
            "{label}: {:?}",
            build.problems
        );
    }
}

fn attestations(image: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(image)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("attestation-"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn image_attestations_are_slsa_v1_statements_that_give_lines_and_layers() {
    for (label, _, replay, image) in records() {
        let statements = attestations(&image);
        if statements.is_empty() {
            assert_eq!(
                label, "p6-failed-build",
                "only the failed build pushed nothing"
            );
            continue;
        }
        for statement in &statements {
            assert_eq!(
                detect::detect(statement).unwrap(),
                InputFormat::Provenance,
                "{}",
                statement.display()
            );
        }
        let mut inputs = vec![replay.clone()];
        inputs.extend(statements);
        let build = read(&inputs);
        let own = own_statuses(&replay);
        for step in built_steps(&build) {
            let digest = step.vertex_digest.as_deref().unwrap();
            assert_eq!(
                step.status,
                expected(&own[digest]),
                "{label}: {}",
                step.name
            );
        }
        assert_lines_and_layers(&label, &build);
        // The image's layers per platform are the registry manifest's.
        for pushed in manifests(&image) {
            let from_provenance = build
                .images
                .iter()
                .find(|i| i.platform.as_deref() == Some(pushed.0.as_str()))
                .unwrap_or_else(|| panic!("{label}: no image for {}", pushed.0));
            let layers: Vec<(String, Option<u64>)> = from_provenance
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect();
            assert_eq!(layers, pushed.1, "{label} {}", pushed.0);
        }
    }
}

/// A platform and its layers (digest, size).
type PlatformLayers = (String, Vec<(String, Option<u64>)>);

/// The layers of each platform manifest the registry served.
fn manifests(image: &Path) -> Vec<PlatformLayers> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(image.join("index.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let os = entry["platform"]["os"].as_str().unwrap();
        if os == "unknown" {
            continue;
        }
        let platform = format!(
            "{os}/{}",
            entry["platform"]["architecture"].as_str().unwrap()
        );
        let hex = entry["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let file = image.join(format!("manifest-{}.json", &hex[..12]));
        let manifest: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["digest"].as_str().unwrap().to_string(),
                    l["size"].as_u64(),
                )
            })
            .collect();
        out.push((platform, layers));
    }
    out
}

/// JSON with every object's keys sorted, as `imagetools inspect --format '{{json ...}}'`
/// prints it.
fn sorted(value: &Value) -> String {
    fn sort(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sort(value)).unwrap()
}

#[test]
fn bare_predicates_of_both_slsa_versions_in_sorted_key_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dir("p1-copy-before-deps");
    // SLSA v1: the attestation's predicate, keys sorted (`buildDefinition` first).
    let statement: Value =
        serde_json::from_slice(&std::fs::read(&attestations(&d.join("v2.image"))[0]).unwrap())
            .unwrap();
    let v1 = tmp.path().join("slsa-v1.json");
    std::fs::write(&v1, sorted(&statement["predicate"])).unwrap();
    // SLSA v0.2: the metadata file's mode=max predicate, keys sorted (`buildConfig` first).
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(d.join("v2.metadata-max.json")).unwrap()).unwrap();
    let v02 = tmp.path().join("slsa-v02.json");
    let text = sorted(&metadata["buildx.build.provenance"]);
    assert!(
        text.trim_start().starts_with("{\n  \"buildConfig\""),
        "{text:.40}"
    );
    std::fs::write(&v02, text).unwrap();

    for (predicate, progress) in [
        (&v1, d.join("v2.history-logs.rawjson")),
        (&v02, d.join("v2-max.rawjson")),
    ] {
        assert_eq!(detect::detect(predicate).unwrap(), InputFormat::Provenance);
        let build = read(&[progress, predicate.clone()]);
        for step in &build.steps {
            assert!(
                step.dockerfile_line.is_some(),
                "{}: {}",
                predicate.display(),
                step.name
            );
            assert!(
                !step.layers.is_empty(),
                "{}: {}",
                predicate.display(),
                step.name
            );
        }
        assert_eq!(
            build.build.materials.len(),
            1,
            "the base image, with its digest"
        );
        assert!(build.build.materials[0].digest.is_some());
    }
}

#[test]
fn a_metadata_file_with_min_provenance_says_what_to_set() {
    let d = dir("p1-copy-before-deps");
    let min = read(&[
        d.join("v2.history-logs.rawjson"),
        d.join("v2.metadata.json"),
    ]);
    assert!(min.steps.iter().all(|s| s.dockerfile_line.is_none()));
    let hint = min
        .problems
        .iter()
        .find(|p| p.message.contains("mode=min"))
        .expect("the trimmed provenance is named");
    assert!(
        hint.message.contains("BUILDX_METADATA_PROVENANCE=max"),
        "{}",
        hint.message
    );

    // With BUILDX_METADATA_PROVENANCE=max: every step's line and layers, no hint.
    let max = read(&[d.join("v2-max.rawjson"), d.join("v2.metadata-max.json")]);
    assert!(
        max.steps
            .iter()
            .all(|s| s.dockerfile_line.is_some() && !s.layers.is_empty())
    );
    assert!(!max.problems.iter().any(|p| p.message.contains("mode=min")));

    // Multi-platform: one provenance per platform.
    let d7 = dir("p7-multiplatform");
    let both = read(&[d7.join("v2-max.rawjson"), d7.join("v2.metadata-max.json")]);
    let platforms: Vec<&str> = both
        .images
        .iter()
        .filter_map(|i| i.platform.as_deref())
        .collect();
    assert_eq!(platforms.len(), 2, "{platforms:?}");
    assert!(both.steps.iter().all(|s| s.dockerfile_line.is_some()));
}

/// Names as BuildKit gives them, by name (the TTY view has no digests): cached if any vertex of
/// that name was, else the status of its last vertex.
fn own_statuses_by_name(rawjson: &Path) -> HashMap<String, StepStatus> {
    let mut by_name: HashMap<String, StepStatus> = HashMap::new();
    for own in own_statuses(rawjson).values() {
        let status = expected(own);
        let entry = by_name.entry(own.name.clone()).or_insert(status);
        if status == StepStatus::Cached {
            *entry = status;
        }
    }
    by_name
}

#[test]
fn a_tty_capture_reads_as_buildkit_recorded_it() {
    let d = dir("p1-copy-before-deps");
    let capture = d.join("p1-v2.tty.log");
    assert_eq!(detect::detect(&capture).unwrap(), InputFormat::Tty);
    let build = read(std::slice::from_ref(&capture));
    let own = own_statuses_by_name(&d.join("p1-v2.tty.history-logs.rawjson"));
    let built: Vec<&Step> = built_steps(&build).collect();
    assert_eq!(built.len(), 4, "{:?}", build.steps);
    for step in built {
        // Names are cut at the terminal's width.
        let (name, status) = own
            .iter()
            .find(|(name, _)| name.starts_with(step.name.as_str()))
            .unwrap_or_else(|| panic!("{} is not in the record", step.name));
        assert_eq!(step.status, *status, "{name}");
        assert_eq!(step.status_source, Some(StatusSource::Tty));
        assert!(step.vertex_digest.is_none());
    }
    // `[2/5] WORKDIR /app` shows `CACHED` in one early frame only.
    assert_eq!(build.steps[1].status, StepStatus::Cached);
    assert!(
        build
            .problems
            .iter()
            .all(|p| !p.message.contains("not a finished")),
        "{:?}",
        build.problems
    );
}

#[test]
fn a_failed_builds_records_name_its_dockerfile_line() {
    let d = dir("p6-failed-build");
    // `history inspect` alone: the failing step, its line (from `Error.Sources`) and output.
    let inspect = read(&[d.join("v2.history-inspect.json")]);
    let failed = &inspect.steps[0];
    assert_eq!(failed.status, StepStatus::Failed);
    assert_eq!(failed.dockerfile_line, Some(6));
    assert!(failed.name.starts_with("[6/7] RUN"), "{}", failed.name);
    assert_eq!(failed.log_tail, ["compile error: broken build"]);
    // With the progress of the same build, the failing step gets its line.
    let both = read(&[
        d.join("v2.history-logs.rawjson"),
        d.join("v2.history-inspect.json"),
    ]);
    let step = both
        .steps
        .iter()
        .find(|s| s.status == StepStatus::Failed)
        .unwrap();
    assert_eq!(step.dockerfile_line, Some(6));
    assert!(step.vertex_digest.is_some());

    // The bundle's `externalError` record says the same, and names the failing vertex.
    let blob = bundle_blob(
        &d.join("v2.dockerbuild"),
        "application/vnd.googeapis.google.rpc.status+proto",
    );
    let error = cachehit::readers::records::parse_external_error(&blob).unwrap();
    assert_eq!(error.dockerfile_line, Some(6));
    assert_eq!(error.dockerfile.as_deref(), Some("Dockerfile"));
    assert_eq!(error.exit_code, Some(2));
    assert_eq!(error.vertex_digest, step.vertex_digest);
}

/// The blob of the given media type in a `.dockerbuild` bundle's (only) record.
fn bundle_blob(bundle: &Path, media_type: &str) -> Vec<u8> {
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    let file = std::fs::File::open(bundle).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        blobs.insert(path, bytes);
    }
    let json = |path: &str| -> Value { serde_json::from_slice(&blobs[path]).unwrap() };
    let blob_path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let index = json("index.json");
    let manifest = json(&blob_path(
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == media_type)
        .unwrap();
    blobs[&blob_path(layer["digest"].as_str().unwrap())].clone()
}
