//! The progress readers on a large build record: `cachehit report` on a generated rawjson
//! stream, plain log and `.dockerbuild` bundle of realistic shape (see `input.rs`), each next
//! to `wc -l` on the same bytes, measured in the same run.
//!
//! `cargo bench --bench readers` (or `scripts/bench-readers`). Environment:
//! `CACHEHIT_BENCH_MB` (input size, default 1024), `CACHEHIT_BENCH_RUNS` (runs per command,
//! default 3; the median is shown), `CACHEHIT_BENCH_DIR` (where inputs are generated and
//! kept, default `target/cachehit-bench`), `CACHEHIT_BENCH_READERS` (comma-separated subset of
//! `rawjson,plain,dockerbuild`).
//!
//! Whole processes are measured with `/usr/bin/time -v`: wall time, CPU time (user + system)
//! and peak RSS. For the bundle, `wc -l` reads the uncompressed status log (the bytes the
//! reader decodes); `gzip -dc` of the bundle is shown for the decompression alone.

#[path = "readers/input.rs"]
mod input;

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use input::Sink;

struct Measure {
    wall: f64,
    cpu: f64,
    rss_kb: u64,
}

fn measure(program: &str, args: &[&str], runs: usize) -> Measure {
    let mut all: Vec<Measure> = (0..runs).map(|_| measure_once(program, args)).collect();
    all.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    all.swap_remove(all.len() / 2)
}

fn measure_once(program: &str, args: &[&str]) -> Measure {
    // Wall time from this process's clock: /usr/bin/time gives it to 10 ms only, a tenth of
    // what `wc -l` takes.
    let started = std::time::Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("/usr/bin/time runs (apt-get install time)");
    let wall = started.elapsed().as_secs_f64();
    let report = String::from_utf8_lossy(&output.stderr);
    let field = |name: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{name}` in /usr/bin/time output:\n{report}"))
            .to_string()
    };
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{report}"
    );
    Measure {
        wall,
        cpu: field("User time (seconds):").parse::<f64>().unwrap_or(0.0)
            + field("System time (seconds):")
                .parse::<f64>()
                .unwrap_or(0.0),
        rss_kb: field("Maximum resident set size (kbytes):")
            .parse()
            .unwrap_or(0),
    }
}

fn generate(path: &Path, target: u64, make: impl FnOnce(std::fs::File) -> Box<dyn Sink>) {
    if path.exists() {
        return;
    }
    eprintln!("generating {} ...", path.display());
    let partial = path.with_extension("partial");
    let mut sink = make(std::fs::File::create(&partial).expect("create input"));
    input::generate(sink.as_mut(), target).expect("write input");
    drop(sink);
    std::fs::rename(&partial, path).expect("rename input");
}

/// The status-log stream alone, as the bundle reader decodes it once inflated: this bench
/// binary runs itself with `--decode-status-log FILE` to measure it as a whole process.
fn decode_status_log(path: &str) {
    use cachehit::readers::{dockerbuild, solve_status::StatusAccumulator};
    let file = std::fs::File::open(path).expect("status log");
    let mut accumulator = StatusAccumulator::new();
    // Straight from the file: the decoder buffers itself, as it reads inflated bytes straight
    // from the decompressor in a bundle.
    dockerbuild::decode_status_log(file, &mut accumulator).expect("a whole status log");
    let build = accumulator.finish();
    println!("{} steps", build.steps.len());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--decode-status-log") {
        decode_status_log(&args[at + 1]);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run this.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let mb: u64 = env_or("CACHEHIT_BENCH_MB", 1024);
    let runs: usize = env_or("CACHEHIT_BENCH_RUNS", 3);
    let dir = std::env::var_os("CACHEHIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/cachehit-bench"));
    let readers = std::env::var("CACHEHIT_BENCH_READERS")
        .unwrap_or_else(|_| "rawjson,plain,dockerbuild".into());
    std::fs::create_dir_all(&dir).expect("bench directory");
    let target = mb << 20;
    let cachehit = env!("CARGO_BIN_EXE_cachehit");
    let report = dir.join("report.json");
    let report = report.to_str().expect("UTF-8 path");

    println!(
        "{:<12} {:>6} {:>8} {:>9} {:>8} {:>8} {:>7} {:>10} {:>7} {:>9}",
        "reader",
        "MB",
        "wc -l s",
        "wc MB/s",
        "wall s",
        "MB/s",
        "CPU s",
        "peak RSS",
        "ratio",
        "CPU ratio"
    );
    for reader in readers.split(',').map(str::trim) {
        let (file, measured, format) = match reader {
            "rawjson" => {
                let path = dir.join(format!("build-{mb}mb.rawjson"));
                generate(&path, target, |f| {
                    Box::new(input::Rawjson::new(BufWriter::new(f)))
                });
                (path.clone(), path, "rawjson")
            }
            "plain" => {
                let path = dir.join(format!("build-{mb}mb.plain.log"));
                generate(&path, target, |f| {
                    Box::new(input::Plain::new(BufWriter::new(f)))
                });
                (path.clone(), path, "plain")
            }
            "dockerbuild" => {
                let log = dir.join(format!("build-{mb}mb.status"));
                generate(&log, target, |f| {
                    Box::new(input::StatusLog::new(BufWriter::new(f)))
                });
                let bundle = dir.join(format!("build-{mb}mb.dockerbuild"));
                if !bundle.exists() {
                    eprintln!("writing {} ...", bundle.display());
                    input::write_bundle(&log, &bundle).expect("write bundle");
                }
                (bundle, log, "dockerbuild")
            }
            other => panic!("unknown reader `{other}`"),
        };
        let bytes = std::fs::metadata(&measured).expect("input").len();
        let megabytes = bytes as f64 / 1e6;
        let measured = measured.to_str().expect("UTF-8 path");
        let file = file.to_str().expect("UTF-8 path");
        let wc = measure("wc", &["-l", measured], runs);
        let ch = measure(
            cachehit,
            &[
                "report",
                "--input-format",
                format,
                "--format",
                "json",
                "--output",
                report,
                file,
            ],
            runs,
        );
        println!(
            "{:<12} {:>6.0} {:>8.2} {:>9.0} {:>8.2} {:>8.0} {:>7.2} {:>7.1} MB {:>6.1}% {:>8.1}%",
            reader,
            megabytes,
            wc.wall,
            megabytes / wc.wall.max(0.01),
            ch.wall,
            megabytes / ch.wall.max(0.01),
            ch.cpu,
            ch.rss_kb as f64 / 1024.0,
            100.0 * wc.wall.max(0.01) / ch.wall.max(0.01),
            100.0 * wc.cpu.max(0.01) / ch.cpu.max(0.01),
        );
        if reader == "dockerbuild" {
            let me = std::env::current_exe().expect("this benchmark's path");
            let me = me.to_str().expect("UTF-8 path");
            let decode = measure(me, &["--decode-status-log", measured], runs);
            println!(
                "{:<12} {:>6.0} {:>8.2} {:>9.0} {:>8.2} {:>8.0} {:>7.2} {:>7.1} MB {:>6.1}% {:>8.1}%",
                "  status log",
                megabytes,
                wc.wall,
                megabytes / wc.wall.max(0.01),
                decode.wall,
                megabytes / decode.wall.max(0.01),
                decode.cpu,
                decode.rss_kb as f64 / 1024.0,
                100.0 * wc.wall.max(0.01) / decode.wall.max(0.01),
                100.0 * wc.cpu.max(0.01) / decode.cpu.max(0.01),
            );
            let gz = measure("gzip", &["-dc", file], runs);
            println!(
                "{:<12} {:>6.0} {:>8} {:>9} {:>8.2} {:>8.0} {:>7.2} {:>7.1} MB",
                "  gzip -dc",
                megabytes,
                "",
                "",
                gz.wall,
                megabytes / gz.wall.max(0.01),
                gz.cpu,
                gz.rss_kb as f64 / 1024.0,
            );
        }
        let text = std::fs::read_to_string(report).expect("report written");
        let value: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
        println!(
            "{:<12} report: {} steps, status {}",
            "",
            value["steps"].as_array().map_or(0, Vec::len),
            value["build"]["status"]
        );
    }
    println!(
        "ratio = wc -l wall time / cachehit wall time (throughput as a share of wc -l's); \
         CPU ratio = the same with CPU time (user + system, every thread)"
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
