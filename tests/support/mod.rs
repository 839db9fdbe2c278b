//! Real components for end-to-end tests: the Docker Engine (through the Debian 20.10 client,
//! which drives the engine's built-in BuildKit), a real distribution registry, and the
//! cachehit binary.
//!
//! `CACHEHIT_E2E=1` (set by `scripts/test`) makes a missing engine or registry a failure;
//! without it such tests are skipped with a message.

#![allow(dead_code)]

pub mod fake_registry;
pub mod github_server;
pub mod hostile_server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The client that can drive BuildKit builds against the local engine.
pub const DOCKER: &str = "/usr/bin/docker";
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
/// A FROM-scratch image holding a static busybox, built locally (nothing can be pulled).
pub const BASE_IMAGE: &str = "cachehit-test/busybox:1";

pub fn cachehit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachehit"))
}

/// Whether end-to-end prerequisites are present; panics when they are required but missing.
pub fn engine_available(test: &str) -> bool {
    let required = std::env::var("CACHEHIT_E2E").is_ok_and(|v| v == "1");
    let ok = Path::new(DOCKER).exists()
        && Command::new(DOCKER)
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required,
            "{test}: the Docker Engine is required (CACHEHIT_E2E=1) but does not answer; run scripts/setup"
        );
        eprintln!(
            "{test}: skipped: no Docker Engine (run scripts/setup, or set CACHEHIT_E2E=1 to require it)"
        );
    }
    ok
}

pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn docker(args: &[&str]) -> Output {
    run(Command::new(DOCKER).args(args))
}

/// Builds the busybox base image unless the engine has it already.
pub fn ensure_base_image() {
    let present = Command::new(DOCKER)
        .args(["image", "inspect", BASE_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (scripts/setup)");
    std::fs::copy(busybox, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    run(Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "-t", BASE_IMAGE])
        .arg(dir.path()));
}

/// Result of a BuildKit build through the engine: its plain progress log and exit status.
pub struct BuildRun {
    pub log: String,
    pub success: bool,
}

/// `docker build --progress=plain`, returning the log BuildKit printed.
pub fn build(context: &Path, tag: &str, extra: &[&str]) -> BuildRun {
    let output = Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "--progress=plain", "-t", tag])
        .args(extra)
        .arg(context)
        .output()
        .expect("docker build runs");
    BuildRun {
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real distribution registry on 127.0.0.1, with optional htpasswd basic auth.
pub struct Registry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "docker-registry is installed (scripts/setup)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: cachehit-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            addr,
            child,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("registry on {} did not start", self.addr);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes files into a fresh directory: `(relative path, content)`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path: PathBuf = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }
}
