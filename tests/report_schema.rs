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
