//! Synthetic build records of realistic shape and any size: one long multi-platform,
//! multi-stage build whose bytes are mostly verbose tool output (`npm ci`, compilers), with
//! layer downloads, lint warnings, cache import and export, and a failing last step.
//!
//! The same sequence of BuildKit status updates is written as a rawjson stream, as a plain
//! progress log and as the protobuf status log of a `.dockerbuild` bundle, so the three
//! readers are measured on the same build.

use std::io::{self, Write};

/// One BuildKit status update, as every progress format carries it.
pub enum Event {
    Vertex {
        digest: String,
        name: String,
        inputs: Vec<String>,
        started: Option<u64>,
        completed: Option<u64>,
        cached: bool,
        error: Option<String>,
    },
    Status {
        id: String,
        vertex: String,
        name: String,
        total: u64,
        current: u64,
        timestamp: u64,
        started: u64,
        completed: Option<u64>,
    },
    Log {
        vertex: String,
        stream: u8,
        data: Vec<u8>,
        timestamp: u64,
    },
    Warning {
        vertex: String,
        short: String,
        detail: String,
        url: String,
        line: u32,
    },
}

/// Where the events go: a format writer that counts what it wrote.
pub trait Sink {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// Text the client prints after the stream (the failure summary).
    fn trailer(&mut self, text: &str) -> io::Result<()>;
    fn written(&self) -> u64;
}

/// Nanoseconds since the epoch of 2026-11-29T13:00:00Z.
const T0: u64 = 1_795_957_200 * 1_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough to vary text.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn digest(rng: &mut Rng) -> String {
    let mut text = String::from("sha256:");
    for _ in 0..4 {
        text.push_str(&format!("{:016x}", rng.next()));
    }
    text
}

const PACKAGES: &[&str] = &[
    "@babel/core",
    "@babel/preset-env",
    "webpack",
    "typescript",
    "eslint-plugin-import",
    "@types/node",
    "react-dom",
    "lodash.merge",
    "postcss-loader",
    "@aws-sdk/client-s3",
    "jest-environment-jsdom",
    "esbuild",
];

/// One line of verbose build output.
fn output_line(rng: &mut Rng, step: usize) -> String {
    let package = PACKAGES[rng.below(PACKAGES.len() as u64) as usize];
    let n = rng.below(1000);
    match rng.below(7) {
        0 => format!(
            "npm http fetch GET 200 https://registry.npmjs.org/{}/-/{}-{}.{}.{}.tgz {}ms (cache miss)",
            package.replace('/', "%2f"),
            package.rsplit('/').next().unwrap_or(package),
            n % 20,
            n % 13,
            n % 7,
            n % 400 + 12
        ),
        1 => format!(
            "npm warn deprecated {}@{}.{}.{}: This module is not supported, and leaks memory. Do not use it.",
            package,
            n % 9,
            n % 11,
            n % 5
        ),
        2 => format!(
            "gcc -O2 -g -Wall -Wextra -fPIC -Iinclude -I/usr/include/openssl -DNDEBUG -c src/module_{step}_{n}.c -o build/module_{step}_{n}.o"
        ),
        3 => format!(
            "src/module_{step}_{n}.c:{}:{}: warning: unused variable 'tmp_{n}' [-Wunused-variable]",
            n % 400 + 1,
            n % 60 + 1
        ),
        4 => format!(
            "   Compiling {}-sys v0.{}.{} (/build/vendor/{}-sys)",
            package.trim_start_matches('@').replace('/', "-"),
            n % 30,
            n % 9,
            package.trim_start_matches('@').replace('/', "-")
        ),
        5 => format!(
            "[{}/{}] Building CXX object src/CMakeFiles/core.dir/engine/part_{n}.cpp.o",
            n % 300 + 1,
            300
        ),
        _ => format!(
            "added {} packages, and audited {} packages in {}s; {} packages are looking for funding",
            n + 100,
            n + 120,
            n % 90 + 3,
            n % 200
        ),
    }
}

/// Which steps of a stage come from the cache: the first third (dependency layers).
fn is_cached(index: usize, steps: usize) -> bool {
    index * 3 <= steps
}

const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];
const STAGES: usize = 8;
const STEPS_PER_STAGE: usize = 20;

struct Step {
    digest: String,
    name: String,
    input: String,
    cached: bool,
    runs: bool,
}

/// Writes one build of about `target` bytes into `sink`.
pub fn generate(sink: &mut dyn Sink, target: u64) -> io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut clock = T0;
    let mut tick = |rng: &mut Rng| {
        clock += 1_000 + rng.below(5_000_000);
        clock
    };

    // The preamble: internal vertices, the cache import and the lint warnings.
    let definition = digest(&mut rng);
    let context = digest(&mut rng);
    for (digest, name) in [
        (
            &definition,
            "[internal] load build definition from Dockerfile",
        ),
        (&context, "[internal] load build context"),
    ] {
        let started = tick(&mut rng);
        sink.event(&vertex(digest, name, &[], Some(started), None, false))?;
        let done = tick(&mut rng);
        sink.event(&Event::Status {
            id: "transferring context:".into(),
            vertex: digest.clone(),
            name: "transferring".into(),
            total: 0,
            current: 48_213,
            timestamp: done,
            started,
            completed: Some(done),
        })?;
        sink.event(&vertex(digest, name, &[], Some(started), Some(done), false))?;
    }
    let import = digest(&mut rng);
    let import_name = "importing cache manifest from ghcr.io/acme/monorepo:buildcache";
    let started = tick(&mut rng);
    sink.event(&vertex(
        &import,
        import_name,
        &[],
        Some(started),
        None,
        false,
    ))?;
    let done = tick(&mut rng);
    sink.event(&Event::Status {
        id: "inferred cache manifest type: application/vnd.oci.image.manifest.v1+json".into(),
        vertex: import.clone(),
        name: String::new(),
        total: 0,
        current: 0,
        timestamp: done,
        started,
        completed: Some(done),
    })?;
    sink.event(&vertex(
        &import,
        import_name,
        &[],
        Some(started),
        Some(done),
        false,
    ))?;
    for n in 0..24u32 {
        sink.event(&Event::Warning {
            vertex: definition.clone(),
            short: format!(
                "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line {})",
                10 + n * 7
            ),
            detail: "The 'as' keyword should match the case of the 'from' keyword".into(),
            url: "https://docs.docker.com/go/dockerfile/rule/from-as-casing/".into(),
            line: 10 + n * 7,
        })?;
    }

    // Every stage on every platform; the platforms' steps run side by side.
    let mut lanes: Vec<Vec<Step>> = Vec::new();
    for platform in PLATFORMS {
        let mut steps = Vec::new();
        for stage in 0..STAGES {
            let mut input = context.clone();
            for index in 1..=STEPS_PER_STAGE {
                let instruction = match index {
                    1 => format!("FROM node:22-bookworm@sha256:{:016x}", rng.next()),
                    2 => "WORKDIR /src".to_string(),
                    i if i % 5 == 3 => format!("COPY packages/pkg-{stage}-{i}/package.json ./"),
                    i if i % 2 == 0 => format!(
                        "RUN --mount=type=cache,target=/root/.npm npm ci --loglevel verbose && npm run build -w pkg-{stage}-{i}"
                    ),
                    i => format!(
                        "RUN make -j4 -C native/lib{stage}_{i} && ctest --output-on-failure"
                    ),
                };
                let step = Step {
                    digest: digest(&mut rng),
                    name: format!(
                        "[{platform} stage-{stage} {index}/{STEPS_PER_STAGE}] {instruction}"
                    ),
                    input: input.clone(),
                    cached: index > 1 && is_cached(index, STEPS_PER_STAGE),
                    runs: index > 1 && instruction.starts_with("RUN"),
                };
                input = step.digest.clone();
                steps.push(step);
            }
        }
        lanes.push(steps);
    }
    let running_steps = lanes
        .iter()
        .flatten()
        .filter(|s| s.runs && !s.cached)
        .count() as u64;
    let layer_budget = target / 20;
    let output_budget = target.saturating_sub(layer_budget + (sink.written() + 8192));
    let per_step = output_budget / running_steps.max(1);
    let steps_per_lane = lanes[0].len();
    let mut layers_left = layer_budget;
    let mut layer_steps = lanes
        .iter()
        .flatten()
        .filter(|s| s.cached || !s.runs)
        .count() as u64;
    for position in 0..steps_per_lane {
        let last = position + 1 == steps_per_lane;
        let active: Vec<&Step> = lanes.iter().map(|lane| &lane[position]).collect();
        let started = tick(&mut rng);
        for step in &active {
            sink.event(&vertex(
                &step.digest,
                &step.name,
                std::slice::from_ref(&step.input),
                Some(started),
                None,
                step.cached,
            ))?;
        }
        // Cached steps and base images pull their layers: download progress.
        for step in active.iter().filter(|s| s.cached || !s.runs) {
            let budget = layers_left / layer_steps.max(1);
            let before = sink.written();
            let layer = digest(&mut rng);
            let total = 20_000_000 + rng.below(80_000_000);
            let layer_started = tick(&mut rng);
            while sink.written() - before < budget {
                let current = (total * ((sink.written() - before) * 100 / budget.max(1))) / 100;
                sink.event(&Event::Status {
                    id: layer.clone(),
                    vertex: step.digest.clone(),
                    name: layer.clone(),
                    total,
                    current,
                    timestamp: tick(&mut rng),
                    started: layer_started,
                    completed: None,
                })?;
            }
            let done = tick(&mut rng);
            sink.event(&Event::Status {
                id: layer.clone(),
                vertex: step.digest.clone(),
                name: layer.clone(),
                total,
                current: total,
                timestamp: done,
                started: layer_started,
                completed: Some(done),
            })?;
            sink.event(&Event::Status {
                id: format!("extracting {layer}"),
                vertex: step.digest.clone(),
                name: format!("extracting {layer}"),
                total: 0,
                current: 0,
                timestamp: done,
                started: done,
                completed: Some(tick(&mut rng)),
            })?;
            layers_left = layers_left.saturating_sub(sink.written() - before);
            layer_steps = layer_steps.saturating_sub(1);
        }
        // Running steps print their output, interleaved chunk by chunk.
        let running: Vec<&&Step> = active.iter().filter(|s| s.runs && !s.cached).collect();
        if !running.is_empty() {
            let before = sink.written();
            let budget = per_step * running.len() as u64;
            let mut turn = 0usize;
            while sink.written() - before < budget {
                let step = running[turn % running.len()];
                turn += 1;
                let mut data = String::new();
                for _ in 0..1 + rng.below(6) {
                    data.push_str(&output_line(&mut rng, position));
                    data.push('\n');
                }
                sink.event(&Event::Log {
                    vertex: step.digest.clone(),
                    stream: if rng.below(5) == 0 { 2 } else { 1 },
                    data: data.into_bytes(),
                    timestamp: tick(&mut rng),
                })?;
            }
        }
        // The very last step fails: its error and the last lines of its output are kept.
        let completed = tick(&mut rng);
        for (lane, step) in active.iter().enumerate() {
            let fails = last && lane == 0;
            if fails {
                sink.event(&Event::Log {
                    vertex: step.digest.clone(),
                    stream: 2,
                    data: b"make: *** [Makefile:42: all] Error 2\n".to_vec(),
                    timestamp: completed,
                })?;
            }
            sink.event(&Event::Vertex {
                digest: step.digest.clone(),
                name: step.name.clone(),
                inputs: vec![step.input.clone()],
                started: Some(started),
                completed: Some(completed),
                cached: step.cached,
                error: if fails {
                    Some(format!(
                        "process \"/bin/sh -c {}\" did not complete successfully: exit code: 2",
                        step.name.split_once("] RUN ").map_or("", |(_, c)| c)
                    ))
                } else if last {
                    Some("context canceled".to_string())
                } else {
                    None
                },
            })?;
        }
    }
    let failed = &lanes[0][steps_per_lane - 1];
    sink.trailer(&format!(
        "Dockerfile:321\n--------------------\n 321 | >>> {}\n--------------------\nERROR: failed to build: failed to solve: process did not complete successfully: exit code: 2\n",
        failed.name.split_once("] ").map_or("", |(_, i)| i)
    ))
}

fn vertex(
    digest: &str,
    name: &str,
    inputs: &[String],
    started: Option<u64>,
    completed: Option<u64>,
    cached: bool,
) -> Event {
    Event::Vertex {
        digest: digest.to_string(),
        name: name.to_string(),
        inputs: inputs.to_vec(),
        started,
        completed,
        cached,
        error: None,
    }
}

/// RFC 3339 with nanoseconds, trailing zeros trimmed, as Go prints `time.Time`.
fn timestamp(nanos: u64) -> String {
    let seconds = (nanos / 1_000_000_000) as i64;
    let fraction = nanos % 1_000_000_000;
    let time = chrono::DateTime::from_timestamp(seconds, 0).expect("a valid time");
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if fraction > 0 {
        let digits = format!("{fraction:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// A JSON string as Go's encoding/json writes it (`<`, `>`, `&` escaped too).
fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '<' | '>' | '&' => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `--progress=rawjson`: one SolveStatus object per line, as buildx prints it.
pub struct Rawjson<W: Write> {
    out: W,
    line: Vec<u8>,
    written: u64,
}

impl<W: Write> Rawjson<W> {
    pub fn new(out: W) -> Self {
        Rawjson {
            out,
            line: Vec::with_capacity(4096),
            written: 0,
        }
    }
}

impl<W: Write> Sink for Rawjson<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let l = &mut self.line;
        l.clear();
        match event {
            Event::Vertex {
                digest,
                name,
                inputs,
                started,
                completed,
                cached,
                error,
            } => {
                l.extend_from_slice(b"{\"vertexes\":[{\"digest\":");
                json_string(l, digest);
                if !inputs.is_empty() {
                    l.extend_from_slice(b",\"inputs\":[");
                    for (i, input) in inputs.iter().enumerate() {
                        if i > 0 {
                            l.push(b',');
                        }
                        json_string(l, input);
                    }
                    l.push(b']');
                }
                l.extend_from_slice(b",\"name\":");
                json_string(l, name);
                if *cached {
                    l.extend_from_slice(b",\"cached\":true");
                }
                if let Some(t) = started {
                    l.extend_from_slice(b",\"started\":");
                    json_string(l, &timestamp(*t));
                }
                if let Some(t) = completed {
                    l.extend_from_slice(b",\"completed\":");
                    json_string(l, &timestamp(*t));
                }
                if let Some(e) = error {
                    l.extend_from_slice(b",\"error\":");
                    json_string(l, e);
                }
                l.extend_from_slice(b"}]}");
            }
            Event::Status {
                id,
                vertex,
                name,
                total,
                current,
                timestamp: at,
                started,
                completed,
            } => {
                l.extend_from_slice(b"{\"statuses\":[{\"id\":");
                json_string(l, id);
                l.extend_from_slice(b",\"vertex\":");
                json_string(l, vertex);
                if !name.is_empty() {
                    l.extend_from_slice(b",\"name\":");
                    json_string(l, name);
                }
                if *total > 0 {
                    l.extend_from_slice(format!(",\"total\":{total}").as_bytes());
                }
                l.extend_from_slice(format!(",\"current\":{current},\"timestamp\":").as_bytes());
                json_string(l, &timestamp(*at));
                l.extend_from_slice(b",\"started\":");
                json_string(l, &timestamp(*started));
                if let Some(t) = completed {
                    l.extend_from_slice(b",\"completed\":");
                    json_string(l, &timestamp(*t));
                }
                l.extend_from_slice(b"}]}");
            }
            Event::Log {
                vertex,
                stream,
                data,
                timestamp: at,
            } => {
                l.extend_from_slice(b"{\"logs\":[{\"vertex\":");
                json_string(l, vertex);
                l.extend_from_slice(format!(",\"stream\":{stream},\"data\":").as_bytes());
                json_string(l, &base64(data));
                l.extend_from_slice(b",\"timestamp\":");
                json_string(l, &timestamp(*at));
                l.extend_from_slice(b"}]}");
            }
            Event::Warning {
                vertex,
                short,
                detail,
                url,
                line,
            } => {
                l.extend_from_slice(b"{\"warnings\":[{\"vertex\":");
                json_string(l, vertex);
                l.extend_from_slice(b",\"level\":1,\"short\":");
                json_string(l, &base64(short.as_bytes()));
                l.extend_from_slice(b",\"detail\":[");
                json_string(l, &base64(detail.as_bytes()));
                l.extend_from_slice(b"],\"url\":");
                json_string(l, url);
                l.extend_from_slice(
                    b",\"sourceInfo\":{\"filename\":\"Dockerfile\",\"language\":\"Dockerfile\"}",
                );
                l.extend_from_slice(
                    format!(
                        ",\"range\":[{{\"start\":{{\"line\":{line}}},\"end\":{{\"line\":{line}}}}}]}}]}}"
                    )
                    .as_bytes(),
                );
            }
        }
        l.push(b'\n');
        self.out.write_all(l)?;
        self.written += l.len() as u64;
        Ok(())
    }

    fn trailer(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.written += text.len() as u64;
        self.out.flush()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// `--progress=plain`: `#N` lines, as buildx prints them.
pub struct Plain<W: Write> {
    out: W,
    numbers: std::collections::HashMap<String, (u32, String)>,
    started: std::collections::HashMap<String, u64>,
    line: Vec<u8>,
    written: u64,
}

impl<W: Write> Plain<W> {
    pub fn new(out: W) -> Self {
        Plain {
            out,
            numbers: Default::default(),
            started: Default::default(),
            line: Vec::with_capacity(4096),
            written: 0,
        }
    }

    fn number(&mut self, digest: &str, name: &str) -> (u32, bool) {
        let next = self.numbers.len() as u32 + 1;
        match self.numbers.get(digest) {
            Some((n, _)) => (*n, false),
            None => {
                self.numbers
                    .insert(digest.to_string(), (next, name.to_string()));
                (next, true)
            }
        }
    }
}

fn seconds(nanos: u64) -> String {
    format!("{:.1}s", nanos as f64 / 1e9)
}

fn size(bytes: u64) -> String {
    format!("{:.2}MB", bytes as f64 / 1e6)
}

impl<W: Write> Sink for Plain<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.line.clear();
        match event {
            Event::Vertex {
                digest,
                name,
                started,
                completed,
                cached,
                error,
                ..
            } => {
                let (n, new) = self.number(digest, name);
                if new {
                    self.line
                        .extend_from_slice(format!("\n#{n} {name}\n").as_bytes());
                }
                if let Some(t) = started {
                    self.started.entry(digest.clone()).or_insert(*t);
                }
                if *cached && new {
                    self.line
                        .extend_from_slice(format!("#{n} CACHED\n").as_bytes());
                } else if let Some(e) = error {
                    if e.ends_with("context canceled") {
                        self.line
                            .extend_from_slice(format!("#{n} CANCELED\n").as_bytes());
                    } else {
                        self.line
                            .extend_from_slice(format!("#{n} ERROR: {e}\n").as_bytes());
                    }
                } else if let Some(c) = completed
                    && !cached
                {
                    let s = self.started.get(digest).copied().unwrap_or(*c);
                    self.line.extend_from_slice(
                        format!("#{n} DONE {}\n", seconds(c.saturating_sub(s))).as_bytes(),
                    );
                }
            }
            Event::Status {
                id,
                vertex,
                total,
                current,
                timestamp: at,
                started,
                completed,
                ..
            } => {
                let (n, _) = self.number(vertex, "");
                let elapsed = seconds(at.saturating_sub(*started));
                let done = if completed.is_some() { " done" } else { "" };
                let text = if *total > 0 {
                    format!(
                        "#{n} {id} {} / {} {elapsed}{done}\n",
                        size(*current),
                        size(*total)
                    )
                } else {
                    format!("#{n} {id} {elapsed}{done}\n")
                };
                self.line.extend_from_slice(text.as_bytes());
            }
            Event::Log {
                vertex,
                data,
                timestamp: at,
                ..
            } => {
                let (n, _) = self.number(vertex, "");
                let start = self.started.get(vertex).copied().unwrap_or(*at);
                let elapsed = format!("{:.3}", at.saturating_sub(start) as f64 / 1e9);
                for line in String::from_utf8_lossy(data).lines() {
                    self.line
                        .extend_from_slice(format!("#{n} {elapsed} {line}\n").as_bytes());
                }
            }
            Event::Warning { vertex, short, .. } => {
                let (n, _) = self.number(vertex, "");
                self.line
                    .extend_from_slice(format!("#{n} WARN: {short}\n").as_bytes());
            }
        }
        self.out.write_all(&self.line)?;
        self.written += self.line.len() as u64;
        Ok(())
    }

    fn trailer(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.written += text.len() as u64;
        self.out.flush()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// The status log of a build-history record: `[u32 LE length][StatusResponse]` per update.
pub struct StatusLog<W: Write> {
    out: W,
    message: Vec<u8>,
    written: u64,
}

impl<W: Write> StatusLog<W> {
    pub fn new(out: W) -> Self {
        StatusLog {
            out,
            message: Vec::with_capacity(4096),
            written: 0,
        }
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn int_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        varint(out, u64::from(field << 3));
        varint(out, value);
    }
}

fn time_field(out: &mut Vec<u8>, field: u32, nanos: Option<u64>) {
    if let Some(nanos) = nanos {
        let mut t = Vec::new();
        int_field(&mut t, 1, nanos / 1_000_000_000);
        int_field(&mut t, 2, nanos % 1_000_000_000);
        bytes_field(out, field, &t);
    }
}

impl<W: Write> Sink for StatusLog<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut inner = Vec::with_capacity(512);
        let field = match event {
            Event::Vertex {
                digest,
                name,
                inputs,
                started,
                completed,
                cached,
                error,
            } => {
                bytes_field(&mut inner, 1, digest.as_bytes());
                for input in inputs {
                    bytes_field(&mut inner, 2, input.as_bytes());
                }
                bytes_field(&mut inner, 3, name.as_bytes());
                int_field(&mut inner, 4, u64::from(*cached));
                time_field(&mut inner, 5, *started);
                time_field(&mut inner, 6, *completed);
                if let Some(e) = error {
                    bytes_field(&mut inner, 7, e.as_bytes());
                }
                1
            }
            Event::Status {
                id,
                vertex,
                name,
                total,
                current,
                timestamp: at,
                started,
                completed,
            } => {
                bytes_field(&mut inner, 1, id.as_bytes());
                bytes_field(&mut inner, 2, vertex.as_bytes());
                bytes_field(&mut inner, 3, name.as_bytes());
                int_field(&mut inner, 4, *current);
                int_field(&mut inner, 5, *total);
                time_field(&mut inner, 6, Some(*at));
                time_field(&mut inner, 7, Some(*started));
                time_field(&mut inner, 8, *completed);
                2
            }
            Event::Log {
                vertex,
                stream,
                data,
                timestamp: at,
            } => {
                bytes_field(&mut inner, 1, vertex.as_bytes());
                time_field(&mut inner, 2, Some(*at));
                int_field(&mut inner, 3, u64::from(*stream));
                bytes_field(&mut inner, 4, data);
                3
            }
            Event::Warning {
                vertex,
                short,
                detail,
                url,
                ..
            } => {
                bytes_field(&mut inner, 1, vertex.as_bytes());
                int_field(&mut inner, 2, 1);
                bytes_field(&mut inner, 3, short.as_bytes());
                bytes_field(&mut inner, 4, detail.as_bytes());
                bytes_field(&mut inner, 5, url.as_bytes());
                4
            }
        };
        self.message.clear();
        bytes_field(&mut self.message, field, &inner);
        let length = u32::try_from(self.message.len()).expect("a small message");
        self.out.write_all(&length.to_le_bytes())?;
        self.out.write_all(&self.message)?;
        self.written += 4 + self.message.len() as u64;
        Ok(())
    }

    fn trailer(&mut self, _text: &str) -> io::Result<()> {
        self.out.flush()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// A `.dockerbuild` bundle around a status log: the OCI layout `docker buildx history
/// export` writes (index, manifest, history record config, status log layer).
pub fn write_bundle(status_log: &std::path::Path, bundle: &std::path::Path) -> io::Result<()> {
    let log_size = std::fs::metadata(status_log)?.len();
    let log_digest = format!("sha256:{}", "5a".repeat(32));
    let config = serde_json::json!({
        "Ref": "benchmarkrecord0000000001",
        "FrontendAttrs": {"filename": "Dockerfile"},
        "CreatedAt": {"seconds": T0 / 1_000_000_000, "nanos": 0},
        "CompletedAt": {"seconds": T0 / 1_000_000_000 + 3_600, "nanos": 0},
        "logs": {"media_type": "application/vnd.buildkit.status.v0", "digest": log_digest, "size": log_size},
    })
    .to_string();
    let config_digest = format!("sha256:{}", "c0".repeat(32));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.buildkit.historyrecord.v0", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.buildkit.status.v0", "digest": log_digest, "size": log_size}],
    })
    .to_string();
    let manifest_digest = format!("sha256:{}", "3a".repeat(32));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()}],
    })
    .to_string();
    let gzip = flate2::write::GzEncoder::new(
        std::fs::File::create(bundle)?,
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gzip);
    let mut add = |name: &str, size: u64, data: &mut dyn io::Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o444);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    let blob = |digest: &str| format!("blobs/sha256/{}", &digest[7..]);
    // Blobs sorted by digest, index last, as buildx writes them.
    add(
        &blob(&manifest_digest),
        manifest.len() as u64,
        &mut manifest.as_bytes(),
    )?;
    add(
        &blob(&log_digest),
        log_size,
        &mut io::BufReader::new(std::fs::File::open(status_log)?),
    )?;
    add(
        &blob(&config_digest),
        config.len() as u64,
        &mut config.as_bytes(),
    )?;
    add("index.json", index.len() as u64, &mut index.as_bytes())?;
    add(
        "oci-layout",
        30,
        &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
    )?;
    tar.into_inner()?.finish()?.flush()
}
