//! Layers of an image loaded into the Docker Engine (not pushed), read through bollard,
//! against what the engine's own CLI reports.

mod support;

use std::process::Command;

use cachehit::sources::engine::{inspect, step_sizes};
use support::{BASE_IMAGE, DOCKER, build, engine_available, ensure_base_image, write_tree};

#[test]
fn layer_sizes_from_the_engine_match_its_own_inspect_and_history() {
    if !engine_available("layer_sizes_from_the_engine_match_its_own_inspect_and_history") {
        return;
    }
    ensure_base_image();
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE_IMAGE}\nWORKDIR /app\nRUN dd if=/dev/zero of=/app/big.bin bs=1k count=700 2>/dev/null\nCOPY note.txt .\n"
                ),
            ),
            ("note.txt", "hello\n"),
        ],
    );
    let tag = format!("cachehit-engine-test:{}", std::process::id());
    let run = build(dir.path(), &tag, &[]);
    assert!(run.success, "{}", run.log);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let image = runtime.block_on(inspect(&tag)).unwrap();

    let out = support::run(Command::new(DOCKER).args([
        "image",
        "inspect",
        "--format",
        "{{.Size}} {{len .RootFS.Layers}}",
        &tag,
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    assert_eq!(image.size, parts.next().unwrap().parse::<u64>().unwrap());
    assert_eq!(
        image.layers.len(),
        parts.next().unwrap().parse::<usize>().unwrap()
    );

    let out = support::run(Command::new(DOCKER).args([
        "history",
        "--no-trunc",
        "--human=false",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        &tag,
    ]));
    let cli: Vec<(u64, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .map(|l| {
            let (size, by) = l.split_once('\t').unwrap();
            (size.parse().unwrap(), by.to_string())
        })
        .collect();
    let ours: Vec<(u64, String)> = image
        .history
        .iter()
        .map(|h| (h.size, h.created_by.clone()))
        .collect();
    assert_eq!(ours, cli);

    // Steps get their layer's bytes by instruction.
    let report = cachehit::analysis::analyze(
        cachehit::readers::read_inputs(
            &[{
                let log = dir.path().join("build.log");
                std::fs::write(&log, &run.log).unwrap();
                log
            }],
            &Default::default(),
        )
        .unwrap(),
    );
    let sizes = step_sizes(&report.build.steps, &image.history);
    let run_step = report
        .build
        .steps
        .iter()
        .position(|s| s.instruction.starts_with("RUN dd"))
        .unwrap();
    assert_eq!(sizes[run_step], Some(700 * 1024));
    let _ = Command::new(DOCKER).args(["rmi", "-f", &tag]).output();
}
