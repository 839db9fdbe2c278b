//! Comparing two reports of 5,000 steps each: matching, transitions, pull cost and findings.
//! Prints the median of repeated runs; `cargo bench --bench compare`.

use std::time::Instant;

use cachehit::analysis::{analyze, analyze_against};
use cachehit::model::{Build, Layer, PlatformImage, Step, StepKind, StepStatus};

const STEPS: usize = 5_000;

/// A large multi-stage, multi-platform build: 50 stages of 50 steps on two platforms.
fn build(release: u32) -> Build {
    let mut steps = Vec::with_capacity(STEPS);
    let mut layers = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        for stage in 0..50 {
            for index in 1..=50u32 {
                let n = steps.len();
                // The second release inserts a step early in each stage and edits some.
                let shifted = if release == 2 && index > 3 {
                    index + 1
                } else {
                    index
                };
                let instruction = if index == 1 {
                    "FROM base:1".to_string()
                } else if release == 2 && index % 17 == 0 {
                    format!("RUN make target-{stage}-{index} VERSION=2")
                } else {
                    format!("RUN make target-{stage}-{index}")
                };
                let digest = format!("sha256:{platform}-{stage}-{index}-{}", instruction.len());
                let status = match (release, index % 7) {
                    (_, 1) => StepStatus::Base,
                    (1, _) => StepStatus::Cached,
                    (_, 0) => StepStatus::Rebuilt,
                    _ => StepStatus::Cached,
                };
                let kind = if index == 1 {
                    StepKind::From
                } else {
                    StepKind::Run
                };
                let layer = Layer {
                    digest: format!(
                        "{digest}-layer-{}",
                        if status == StepStatus::Rebuilt {
                            release
                        } else {
                            0
                        }
                    ),
                    size: Some(1_000 + n as u64),
                    media_type: None,
                };
                if platform == "linux/amd64" {
                    layers.push(layer.clone());
                }
                steps.push(Step {
                    name: format!("[{platform} stage{stage} {shifted}/51] {instruction}"),
                    stage: Some(format!("stage{stage}")),
                    platform: Some(platform.to_string()),
                    index: Some(shifted),
                    total: Some(51),
                    instruction,
                    kind,
                    status,
                    duration_ms: Some(100 + n as u64 % 900),
                    vertex_digest: Some(digest),
                    inputs: vec![format!(
                        "sha256:{platform}-{stage}-{}",
                        index.saturating_sub(1)
                    )],
                    layers: vec![layer],
                    ..Step::default()
                });
            }
        }
    }
    Build {
        steps,
        images: vec![PlatformImage {
            platform: Some("linux/amd64".into()),
            layers,
            ..PlatformImage::default()
        }],
        ..Build::default()
    }
}

fn main() {
    let baseline = analyze(build(1));
    let current = analyze(build(2));
    assert_eq!(current.build.steps.len(), STEPS);
    let mut times = Vec::new();
    let mut regressed = 0;
    for _ in 0..21 {
        let mut report = current.clone();
        let start = Instant::now();
        analyze_against(&mut report, &baseline, "baseline.json");
        times.push(start.elapsed());
        regressed = report.comparison.as_ref().map_or(0, |c| c.steps_regressed);
    }
    times.sort();
    // `cargo test` runs this unoptimized too: say so rather than print a misleading figure.
    let build = if cfg!(debug_assertions) {
        " [unoptimized build; measure with `cargo bench --bench compare`]"
    } else {
        ""
    };
    println!(
        "compare {STEPS} vs {STEPS} steps: median {:.2} ms, min {:.2} ms, max {:.2} ms ({regressed} regressed){build}",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}
