//! Hostile progress records, made here: each is read to a clear error or a partial report
//! that says what was left out, never a crash and never work that grows with the square of
//! the input (every per-vertex and per-warning collection is indexed and bounded).

use std::io::Write;
use std::path::{Path, PathBuf};

use cachehit::model::Build;
use cachehit::readers::{ReadError, ReadOptions, read_inputs};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

fn read(path: PathBuf) -> Result<Build, ReadError> {
    read_inputs(&[path], &ReadOptions::default())
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A gzip-compressed tar holding `files`.
fn bundle(dir: &Path, files: &[(String, Vec<u8>)]) -> PathBuf {
    let path = dir.join("hostile.dockerbuild");
    let gzip = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gzip);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o444);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

const STEP: &str = r#"{"vertexes":[{"digest":"sha256:s","name":"[1/1] RUN make","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z"}]}"#;

#[test]
fn forty_thousand_distinct_warnings_keep_a_bounded_few_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = format!("{STEP}\n");
    for n in 0..40_000 {
        log.push_str(&format!(
            "{{\"warnings\":[{{\"vertex\":\"sha256:s\",\"level\":1,\"short\":\"{}\",\"url\":\"https://example.test/rule/{n}\"}}]}}\n",
            base64(&format!("LintRule{n}: something is off"))
        ));
    }
    let build = read(write(dir.path(), "warnings.rawjson", log.as_bytes())).unwrap();
    assert_eq!(build.steps.len(), 1);
    assert_eq!(build.warnings.len(), 1_000);
    assert_eq!(build.warnings[999].message, "LintRule999: something is off");
    assert!(
        build
            .problems
            .iter()
            .any(|p| p.message == "39000 more distinct warnings than the 1000 kept"),
        "{:?}",
        build.problems
    );
}

#[test]
fn forty_thousand_restarts_of_a_vertex_are_counted_within_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for n in 0..40_000u32 {
        // Each run starts on its own second and lasts half a second.
        let (m, s) = (n / 60, n % 60);
        let (h, m) = (m / 60, m % 60);
        log.push_str(&format!(
            "{{\"vertexes\":[{{\"digest\":\"sha256:s\",\"name\":\"[1/1] RUN flaky\",\"started\":\"2026-01-01T{h:02}:{m:02}:{s:02}Z\",\"completed\":\"2026-01-01T{h:02}:{m:02}:{s:02}.5Z\"}}]}}\n"
        ));
    }
    let build = read(write(dir.path(), "restarts.rawjson", log.as_bytes())).unwrap();
    assert_eq!(build.steps.len(), 1);
    // The runs kept, half a second each.
    assert_eq!(build.steps[0].duration_ms, Some(10_000 * 500));
    assert!(
        build.problems.iter().any(|p| p.message
            == "a vertex ran more than 10000 times: 30000 further runs are left out of its duration"),
        "{:?}",
        build.problems
    );
}

#[test]
fn forty_thousand_pushes_are_listed_within_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = format!(
        "{STEP}\n{}\n",
        r#"{"vertexes":[{"digest":"sha256:e","name":"exporting to image","started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:02Z"}]}"#
    );
    for n in 0..40_000 {
        log.push_str(&format!(
            "{{\"statuses\":[{{\"id\":\"pushing manifest for registry.test/app:{n}@sha256:{n:064}\",\"vertex\":\"sha256:e\"}}]}}\n"
        ));
    }
    let build = read(write(dir.path(), "pushes.rawjson", log.as_bytes())).unwrap();
    assert_eq!(build.exports[0].pushed.len(), 1_000);
    assert!(
        build.problems.iter().any(|p| p.message
            == "an export pushed more than 1000 targets: 39000 further pushes are not listed"),
        "{:?}",
        build.problems
    );
}

fn index_entry(digest: &str) -> serde_json::Value {
    serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest})
}

#[test]
fn a_bundle_whose_index_lists_itself_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let nested = |digest: &str| {
        serde_json::json!({"manifests": [index_entry(digest)]})
            .to_string()
            .into_bytes()
    };
    // A nested index listing itself; and A -> B -> A.
    for files in [
        vec![
            ("blobs/sha256/a".to_string(), nested("sha256:a")),
            ("index.json".to_string(), nested("sha256:a")),
        ],
        vec![
            ("blobs/sha256/a".to_string(), nested("sha256:b")),
            ("blobs/sha256/b".to_string(), nested("sha256:a")),
            ("index.json".to_string(), nested("sha256:a")),
        ],
    ] {
        let path = bundle(dir.path(), &files);
        let err = read(path).unwrap_err();
        assert!(matches!(err, ReadError::Malformed { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("the bundle holds no build-history record")
                && text.contains("again, inside itself"),
            "{text}"
        );
    }
}

#[test]
fn a_bundle_of_many_records_sharing_one_large_config_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"Ref": "rec", "CreatedAt": "2026-11-29T13:00:00Z", "FrontendAttrs": {{"build-arg:BLOB": "{}"}}}}"#,
        "z".repeat(8 << 20)
    );
    let mut files = vec![("blobs/sha256/config".to_string(), config.into_bytes())];
    let mut manifests = Vec::new();
    for n in 0..100 {
        let digest = format!("sha256:m{n:03}");
        files.push((
            format!("blobs/sha256/m{n:03}"),
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.buildkit.historyrecord.v0", "digest": "sha256:config"},
                "layers": [],
            })
            .to_string()
            .into_bytes(),
        ));
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
        }));
    }
    files.push((
        "index.json".to_string(),
        serde_json::json!({ "manifests": manifests })
            .to_string()
            .into_bytes(),
    ));
    let path = bundle(dir.path(), &files);
    let build = read(path).unwrap();
    assert_eq!(build.build.build_ref.as_deref(), Some("rec"));
    let messages: Vec<&str> = build.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("the bundle holds 100 records; reporting the newest")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("holds no status log")),
        "{messages:?}"
    );
}

#[test]
fn output_of_many_running_steps_is_kept_within_a_bound_and_says_what_was_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    let chunk = base64(&format!("{}\n", "o".repeat(30_000)));
    // 600 steps print 30 kB each and are still running when the log ends; then one fails.
    for n in 0..600 {
        log.push_str(&format!(
            "{{\"vertexes\":[{{\"digest\":\"sha256:v{n}\",\"name\":\"[{}/600] RUN step {n}\",\"started\":\"2026-01-01T00:00:00Z\"}}]}}\n",
            n + 1
        ));
        log.push_str(&format!(
            "{{\"logs\":[{{\"vertex\":\"sha256:v{n}\",\"stream\":1,\"data\":\"{chunk}\",\"timestamp\":\"2026-01-01T00:00:00Z\"}}]}}\n"
        ));
    }
    log.push_str(&format!(
        "{{\"logs\":[{{\"vertex\":\"sha256:v599\",\"stream\":2,\"data\":\"{}\",\"timestamp\":\"2026-01-01T00:00:01Z\"}}]}}\n",
        base64("error: the last words\n")
    ));
    log.push_str(r#"{"vertexes":[{"digest":"sha256:v599","name":"[600/600] RUN step 599","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01Z","error":"exit code: 1"}]}"#);
    let build = read(write(dir.path(), "running.rawjson", log.as_bytes())).unwrap();
    let failed = build.steps.iter().find(|s| s.error.is_some()).unwrap();
    assert_eq!(
        failed.log_tail.last().map(String::as_str),
        Some("error: the last words")
    );
    let note = build
        .problems
        .iter()
        .find(|p| p.message.contains("went past the memory kept for output"))
        .unwrap_or_else(|| panic!("{:?}", build.problems));
    // About 8 MiB of windows hold some 270 of them: the oldest were let go.
    let dropped: usize = note
        .message
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!((200..600).contains(&dropped), "{}", note.message);
}
