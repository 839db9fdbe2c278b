//! Whole-build records: metadata files, provenance, history records, `.dockerbuild` bundles,
//! and their combination with progress logs.

use std::path::{Path, PathBuf};

use cachehit::model::{BuildStatus, StepStatus};
use cachehit::readers::{InputFormat, ReadError, ReadOptions, detect, read_inputs};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read(paths: &[PathBuf]) -> cachehit::model::Build {
    read_inputs(paths, &ReadOptions::default()).unwrap()
}

#[test]
fn every_fixture_file_is_detected_as_what_it_is() {
    let cases = [
        (
            "buildkit-v0.24/p1-copy-before-deps/v2.rawjson",
            InputFormat::Rawjson,
        ),
        (
            "buildkit-v0.24/p6-failed-build/v2.rawjson",
            InputFormat::Rawjson,
        ),
        (
            "buildkit-v0.24/p1-copy-before-deps/v2.plain.log",
            InputFormat::Plain,
        ),
        ("engine-20.10/deps-first/v2.plain.log", InputFormat::Plain),
        (
            "buildkit-v0.24/p1-copy-before-deps/v2.metadata.json",
            InputFormat::Metadata,
        ),
        (
            "buildkit-v0.24/p1-copy-before-deps/v2.history-record.json",
            InputFormat::History,
        ),
        (
            "public-samples/buildx-metadata-file/metadata-build.actions-toolkit.json",
            InputFormat::Metadata,
        ),
        (
            "public-samples/buildx-metadata-file/metadata-bake.actions-toolkit.json",
            InputFormat::Metadata,
        ),
        (
            "public-samples/buildx-metadata-file/provenance-mode-max.slsa02-predicate.moby-buildkit-LWDOW6.json",
            InputFormat::Provenance,
        ),
        (
            "public-samples/buildx-history/history-inspect-format-json.buildx-docs-example.json",
            InputFormat::HistoryInspect,
        ),
        (
            "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
            InputFormat::Dockerbuild,
        ),
        (
            "public-samples/buildkit-rawjson/solvestatus.v0.moby-buildkit-LWDOW6.json",
            InputFormat::Rawjson,
        ),
    ];
    for (file, want) in cases {
        assert_eq!(detect::detect(&fixture(file)).unwrap(), want, "{file}");
    }
}

#[test]
fn metadata_and_history_record_describe_the_build() {
    let dir = "buildkit-v0.24/p2-deps-first/";
    let build = read(&[
        fixture(&format!("{dir}v2.rawjson")),
        fixture(&format!("{dir}v2.metadata.json")),
        fixture(&format!("{dir}v2.history-record.json")),
    ]);
    assert_eq!(
        build.build.image_names,
        ["localhost:5000/p2-deps-first-1795379789:v2"]
    );
    assert_eq!(
        build.build.image_digest.as_deref(),
        Some("sha256:15e6ebe5979b4b19cd07f7b78238c03316c046017b428af0772fa44fbc2bb31f")
    );
    assert_eq!(
        build.build.build_ref.as_deref(),
        Some("n7f4pji8t16xipdir0z0x8v19")
    );
    assert_eq!(build.build.buildkit_cached_vertices, Some(3));
    // The history record's cache-import settings and the stream's import vertex are one import.
    assert_eq!(build.cache_imports.len(), 1);
    let import = &build.cache_imports[0];
    assert_eq!(import.cache_type.as_deref(), Some("registry"));
    assert_eq!(import.status, cachehit::model::OutcomeStatus::Ok);
    assert_eq!(build.inputs.len(), 3);
    // BuildKit counts every vertex cached; the cached Dockerfile steps are among them.
    let cached = build
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Cached)
        .count();
    assert_eq!(cached as u32, build.build.buildkit_cached_vertices.unwrap());
}

#[test]
fn provenance_in_a_metadata_file_and_bake_targets() {
    let build = read(&[fixture(
        "public-samples/buildx-metadata-file/metadata-build.actions-toolkit.json",
    )]);
    assert!(build.build.build_ref.is_some());
    assert!(!build.build.materials.is_empty(), "provenance materials");
    let bake = fixture("public-samples/buildx-metadata-file/metadata-bake.actions-toolkit.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bake).unwrap()).unwrap();
    let targets: Vec<String> = value
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "buildx.build.warnings")
        .cloned()
        .collect();
    let options = ReadOptions {
        bake_target: Some(targets[0].clone()),
        ..ReadOptions::default()
    };
    let chosen = read_inputs(std::slice::from_ref(&bake), &options).unwrap();
    assert!(chosen.build.build_ref.is_some() || chosen.build.image_digest.is_some());
    if targets.len() > 1 {
        let err = read_inputs(std::slice::from_ref(&bake), &ReadOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--target") && text.contains(&targets[1]),
            "{text}"
        );
    }
    let missing = ReadOptions {
        bake_target: Some("no-such-target".into()),
        ..ReadOptions::default()
    };
    let err = read_inputs(std::slice::from_ref(&bake), &missing).unwrap_err();
    assert!(err.to_string().contains("no-such-target"));
}

#[test]
fn dockerbuild_bundles() {
    let one = read(&[fixture(
        "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
    )]);
    assert_eq!(
        one.build.build_ref.as_deref(),
        Some("coio50kfpeoc2th3hx7huh3h0")
    );
    assert_eq!(one.build.status, BuildStatus::Completed);
    let names: Vec<&str> = one.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[1].contains("RUN echo \"hello foo\""), "{names:?}");
    assert_eq!(one.steps[1].status, StepStatus::Rebuilt);
    // The record says nothing was cached, and so do we.
    assert_eq!(one.build.buildkit_cached_vertices.unwrap_or(0), 0);
    assert!(
        one.steps[1].dockerfile_line.is_some(),
        "provenance gives the line"
    );

    let four = fixture(
        "public-samples/buildx-history/dockerbuild-SNHBPN/docker~test-docker-action~SNHBPN+3.dockerbuild",
    );
    let newest = read(std::slice::from_ref(&four));
    assert!(
        newest
            .problems
            .iter()
            .any(|p| p.message.contains("4 records"))
    );
    let options = ReadOptions {
        record_ref: Some("u74fsvub1p5mndtbum2dhrk6a".into()),
        ..ReadOptions::default()
    };
    let failed = read_inputs(std::slice::from_ref(&four), &options).unwrap();
    assert_eq!(failed.build.status, BuildStatus::Failed);
    assert!(
        failed.build.error.as_deref().unwrap().contains("ARGGG"),
        "{:?}",
        failed.build.error
    );
    let options = ReadOptions {
        record_ref: Some("nope".into()),
        ..ReadOptions::default()
    };
    let err = read_inputs(std::slice::from_ref(&four), &options).unwrap_err();
    assert!(
        err.to_string().contains("u74fsvub1p5mndtbum2dhrk6a"),
        "{err}"
    );
}

#[test]
fn aggregated_solve_status_json() {
    let build = read(&[fixture(
        "public-samples/buildkit-rawjson/solvestatus.v0.moby-buildkit-LWDOW6.json",
    )]);
    // A snapshot taken while the build ran: some steps done, some running, most not started.
    assert!(build.steps.len() > 3);
    let count = |status| build.steps.iter().filter(|s| s.status == status).count();
    assert!(count(StepStatus::Rebuilt) > 0);
    // Nothing failed: the steps that had not started yet are not "not run" (that is what
    // steps after a failure are), the record simply ends before them.
    assert_eq!(count(StepStatus::NotRun), 0);
    assert!(count(StepStatus::Incomplete) > 3);
    assert_eq!(build.build.status, BuildStatus::Unknown);
}

#[test]
fn history_inspect_output() {
    let build = read(&[fixture(
        "public-samples/buildx-history/history-inspect-format-json.buildx-docs-example.json",
    )]);
    assert_eq!(build.build.buildkit_cached_vertices, Some(4));
    assert_eq!(build.build.duration_ms, Some(62_233));
    assert_eq!(build.build.status, BuildStatus::Completed);
    assert_eq!(build.build.materials.len(), 3);
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.message.contains("no per-step progress"))
    );
    let report = cachehit::analysis::analyze(build);
    assert_eq!(cachehit::render::title(&report), "buildx (binaries)");
    assert_eq!(
        cachehit::render::summary_line(&report),
        "no per-step record; BuildKit counted 4/16 steps cached"
    );
}

#[test]
fn damaged_bundle_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(fixture(
        "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
    ))
    .unwrap();
    let cut = dir.path().join("cut.dockerbuild");
    std::fs::write(&cut, &original[..original.len() / 2]).unwrap();
    let err = read_inputs(std::slice::from_ref(&cut), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, ReadError::Malformed { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&cut.display().to_string()),
        "{err}"
    );
}

#[test]
fn wrong_json_shape_is_named_and_kept_apart_from_good_inputs() {
    let dir = std::env::temp_dir().join(format!("cachehit-records-shape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong-shape.json");
    std::fs::write(&wrong, b"[1, 2, 3]\n").unwrap();

    let alone = read_inputs(std::slice::from_ref(&wrong), &ReadOptions::default())
        .expect_err("a JSON array is no build record");
    assert!(alone.to_string().contains("wrong-shape.json"), "{alone}");

    let good = fixture("buildkit-v0.24/p1-copy-before-deps/v1.metadata.json");
    let build = read(&[good, wrong]);
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.source.contains("wrong-shape.json")),
        "{:?}",
        build.problems
    );
    assert!(!build.build.image_names.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bake_target_keeps_the_warnings_about_its_own_dockerfile() {
    let path = fixture("public-samples/buildx-metadata-file/metadata-bake.actions-toolkit.json");
    let options = ReadOptions {
        bake_target: Some("lint".into()),
        ..ReadOptions::default()
    };
    let build = read_inputs(std::slice::from_ref(&path), &options).unwrap();
    // Bake lists all 13 warnings of the three targets together; 7 are about lint.Dockerfile.
    assert_eq!(build.warnings.len(), 7, "{:#?}", build.warnings);
    assert!(
        build
            .warnings
            .iter()
            .all(|w| w.file.as_deref() == Some("lint.Dockerfile"))
    );
    assert_eq!(build.build.dockerfile.as_deref(), Some("lint.Dockerfile"));
    // Choosing a target is not a problem with the input.
    assert!(
        build
            .problems
            .iter()
            .all(|p| !p.message.contains("bake target"))
    );
}

#[test]
fn a_history_record_with_a_partial_progress_snapshot() {
    let build = read(&[
        fixture("public-samples/buildx-history/historyrecord.moby-buildkit-LWDOW6.2cc52456.json"),
        fixture("public-samples/buildkit-rawjson/solvestatus.v0.moby-buildkit-LWDOW6.json"),
    ]);
    // The record spans the whole build; the snapshot only its first part.
    assert_eq!(build.build.status, BuildStatus::Completed);
    let span = build.build.completed.unwrap() - build.build.started.unwrap();
    assert_eq!(
        build.build.duration_ms,
        Some(span.num_milliseconds() as u64)
    );
    assert!(build.build.duration_ms.unwrap() > 80_000);
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.message.contains("the progress record ends before")),
        "{:#?}",
        build.problems
    );
    assert!(build.steps.iter().all(|s| s.status != StepStatus::NotRun));
}

#[test]
fn a_record_without_cached_steps_counts_zero() {
    let build = read(&[fixture(
        "buildkit-v0.24/p1-copy-before-deps/v1.history-record.json",
    )]);
    assert!(build.build.buildkit_total_vertices.unwrap() > 0);
    assert_eq!(build.build.buildkit_cached_vertices, Some(0));
}

#[test]
fn a_bundle_cut_at_its_very_end_still_reports_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(fixture(
        "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
    ))
    .unwrap();
    let whole = read(&[fixture(
        "public-samples/buildx-history/dockerbuild-COIO50/docker~test-docker-action~COIO50.dockerbuild",
    )]);
    // Without the gzip trailer and the end of the deflate stream: the last file (the layout
    // marker) cannot be read, every record document before it can.
    let cut = dir.path().join("cut.dockerbuild");
    std::fs::write(&cut, &original[..original.len() - 30]).unwrap();
    let build = read(std::slice::from_ref(&cut));
    assert_eq!(build.steps, whole.steps);
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.source.contains("cut.dockerbuild") && p.message.contains("damaged")),
        "{:#?}",
        build.problems
    );
}
