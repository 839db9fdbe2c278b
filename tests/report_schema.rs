//! Real reports of every recorded scenario conform to the published JSON Schema
//! (docs/report-schema.json), which forbids undocumented fields.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Checks `value` against the subset of JSON Schema 2020-12 the published schema uses.
fn validate(schema: &Value, value: &Value, defs: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/$defs/");
        return validate(&defs[name], value, defs, at, errors);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                validate(o, value, defs, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: matches {matching} of oneOf"));
        }
        return;
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = names.iter().any(|t| match *t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: {value} is not {names:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} not in {allowed:?}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        errors.push(format!("{at}: {value} != {constant}"));
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < min
    {
        errors.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (
        schema.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n > max
    {
        errors.push(format!("{at}: {n} > {max}"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = required.as_str().unwrap();
            if !object.contains_key(key) {
                errors.push(format!("{at}: missing required `{key}`"));
            }
        }
        for (key, item) in object {
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => validate(s, item, defs, &format!("{at}.{key}"), errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{at}: undocumented field `{key}`"))
                }
                (None, Some(extra @ Value::Object(_))) => {
                    validate(extra, item, defs, &format!("{at}.{key}"), errors)
                }
                _ => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(items, item, defs, &format!("{at}[{i}]"), errors);
        }
    }
}

fn report_of(inputs: &[PathBuf]) -> Value {
    let output = support::cachehit()
        .args(["report", "--format", "json"])
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_scenario_report_conforms_to_the_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/report-schema.json")).unwrap(),
    )
    .unwrap();
    let defs = schema["$defs"].clone();
    let mut reports = Vec::new();
    let fixtures = root().join("tests/fixtures/buildkit-v0.24");
    let tmp = tempfile::tempdir().unwrap();
    let previous = tmp.path().join("v1.json");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let dir = entry.unwrap().path();
        for release in ["v1", "v2"] {
            let mut inputs = vec![
                dir.join(format!("{release}.rawjson")),
                dir.join(format!("{release}.history-record.json")),
            ];
            let metadata = dir.join(format!("{release}.metadata.json"));
            if metadata.exists() {
                inputs.push(metadata);
            }
            if let Ok(image) = std::fs::read_dir(dir.join(format!("{release}.image"))) {
                for file in image {
                    let path = file.unwrap().path();
                    if path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("attestation-")
                    {
                        inputs.push(path);
                    }
                }
            }
            let report = report_of(&inputs);
            if release == "v1" {
                std::fs::write(&previous, report.to_string()).unwrap();
            } else {
                // Compared with the previous release: causes and findings that need it.
                let mut compared = vec!["--baseline".into(), previous.clone()];
                compared.extend(inputs.iter().cloned());
                reports.push((
                    format!("{} v2 compared", dir.display()),
                    report_of(&compared),
                ));
            }
            reports.push((format!("{} {release}", dir.display()), report));
            reports.push((
                format!("{} {release} plain", dir.display()),
                report_of(&[dir.join(format!("{release}.plain.log"))]),
            ));
        }
    }
    reports.push((
        "dockerbuild".into(),
        report_of(&[root().join(
            "tests/fixtures/public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
        )]),
    ));
    // The buildx records: a changed build argument, and first builds of cache refs.
    let buildx = root().join("tests/fixtures/buildx-v0.36");
    let d3_v1 = report_of(&[buildx.join("d3-build-arg/v1.dockerbuild")]);
    std::fs::write(&previous, d3_v1.to_string()).unwrap();
    reports.push((
        "d3 v2 compared".into(),
        report_of(&[
            "--baseline".into(),
            previous.clone(),
            buildx.join("d3-build-arg/v2.dockerbuild"),
        ]),
    ));
    reports.push((
        "d2 v1 worker".into(),
        report_of(&[buildx.join("d2-bake-two-targets/v1.worker.dockerbuild")]),
    ));
    assert!(reports.len() >= 38);
    for (name, report) in &reports {
        let mut errors = Vec::new();
        validate(&schema, report, &defs, "$", &mut errors);
        assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
    }
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/report-schema.json")).unwrap(),
    )
    .unwrap();
    let defs = schema["$defs"].clone();
    let mut report =
        report_of(&[root().join("tests/fixtures/buildkit-v0.24/p1-copy-before-deps/v2.rawjson")]);
    report["steps"][0]["status"] = Value::String("sort-of-cached".into());
    report["summary"]["surprise"] = Value::Bool(true);
    report.as_object_mut().unwrap().remove("summary");
    let mut errors = Vec::new();
    validate(&schema, &report, &defs, "$", &mut errors);
    assert!(
        errors.iter().any(|e| e.contains("sort-of-cached")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("missing required `summary`")),
        "{errors:?}"
    );
}

/// Evidence from outside the records (context changes, the Actions cache) as the report
/// holds it, with every state the schema documents.
#[test]
fn context_changes_and_the_actions_cache_conform_to_the_schema() {
    use cachehit::analysis::context::{
        ChangedFile, ContextChanges, ContextEvidence, ContextUnknown,
    };
    use cachehit::analysis::gha_cache::{CacheEntry, CacheListing, GhaRun, summarize};
    use cachehit::analysis::{Baseline, Facts, analyze, analyze_facts};
    use cachehit::readers::{ReadOptions, read_inputs};

    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/report-schema.json")).unwrap(),
    )
    .unwrap();
    let defs = schema["$defs"].clone();
    let scenario = root().join("tests/fixtures/buildkit-v0.24/p1-copy-before-deps");
    let read = |release: &str| {
        read_inputs(
            &[scenario.join(format!("{release}.rawjson"))],
            &ReadOptions::default(),
        )
        .unwrap()
    };
    let known = ContextEvidence::Known(ContextChanges {
        from_commit: "1".repeat(40),
        to_commit: "2".repeat(40),
        files: vec![
            ChangedFile {
                path: "README.md".into(),
                ignored_by_dockerignore: false,
            },
            ChangedFile {
                path: "docs/a.md".into(),
                ignored_by_dockerignore: true,
            },
        ],
        truncated: true,
        git_folder_in_context: true,
        root_entries: vec!["README.md".into(), "docs".into()],
    });
    let unknown = ContextEvidence::Unknown {
        reason: ContextUnknown::CommitMissing {
            commit: "1".repeat(40),
            shallow: true,
        },
    };
    let cache = summarize(
        CacheListing {
            entries: vec![
                CacheEntry {
                    key: "index-buildkit-1-4f2a9c1e".into(),
                    git_ref: "refs/heads/main".into(),
                    size_in_bytes: 9_000,
                    last_accessed_at: Some("2026-11-20T10:00:00Z".parse().unwrap()),
                },
                CacheEntry {
                    key: "buildkit-blob-1-sha256:00".into(),
                    git_ref: "refs/heads/main".into(),
                    size_in_bytes: 25_000_000,
                    last_accessed_at: None,
                },
            ],
            truncated: true,
            usage_bytes: Some(25_009_000),
            usage_entries: Some(2),
        },
        GhaRun {
            git_ref: Some("refs/tags/v2".into()),
            default_branch: Some("refs/heads/main".into()),
            base_ref: None,
        },
        vec!["buildkit".into()],
        "2026-11-21T10:00:00Z".parse().unwrap(),
    );
    for context in [known, unknown] {
        let report = analyze_facts(Facts {
            baseline: Some(Baseline {
                report: analyze(read("v1")),
                source: "v1.json".into(),
            }),
            context: Some(context),
            gha_cache: Some(cache.clone()),
            ..Facts::from(read("v2"))
        });
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["comparison"]["context"].is_object());
        assert!(json["gha_cache"].is_object());
        let mut errors = Vec::new();
        validate(&schema, &json, &defs, "$", &mut errors);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
}
