//! Runs the steps of a composite action (action.yml) the way the GitHub runner runs them: the
//! `${{ }}` expressions the action uses are substituted from the step's `with:` values (else the
//! input defaults), the `github` and `env` contexts and earlier steps' outputs; each `run:` step
//! is a script run by `bash --noprofile --norc -eo pipefail` in the workspace, with the job's
//! environment, the step's `env:`, `GITHUB_ACTION_PATH`, and fresh `GITHUB_OUTPUT` and
//! `GITHUB_STEP_SUMMARY` files whose contents become the step's outputs and the job summary.
//! `if:` conditions with `always()`, `success()`, `&&`, `== ''` and `!= ''` are evaluated;
//! a step after a failed one runs only when its condition asks for it. An expression the
//! harness does not know fails the test, so the action cannot use one untested.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

/// What the runner gives every step of one job.
pub struct Job {
    /// The folder holding the job's folders (workspace, temp, file commands, event).
    pub root: tempfile::TempDir,
    pub workspace: PathBuf,
    pub temp: PathBuf,
    pub file_commands: PathBuf,
    pub event_path: PathBuf,
    /// The workflow's and job's `env:` and the runner's GITHUB_*/RUNNER_* variables.
    pub env: BTreeMap<String, String>,
    /// The `github` context (`token`, `workspace`, `event_name`, ...).
    pub github: BTreeMap<String, String>,
    /// Folders put first on PATH (stand-ins).
    pub path_prefix: Vec<PathBuf>,
}

impl Job {
    /// A job on event `event_name` with `event` as its payload.
    pub fn new(event_name: &str, event: &serde_json::Value) -> Job {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("work/repo/repo");
        let temp = root.path().join("work/_temp");
        let file_commands = temp.join("_runner_file_commands");
        let workflow = temp.join("_github_workflow");
        for dir in [&workspace, &file_commands, &workflow] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let event_path = workflow.join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        let token = "ghs_harnessDefaultToken".to_string();
        let mut env = BTreeMap::new();
        let mut github = BTreeMap::new();
        for (name, value) in [
            ("CI", "true".to_string()),
            ("GITHUB_ACTIONS", "true".to_string()),
            ("GITHUB_WORKSPACE", workspace.display().to_string()),
            ("GITHUB_EVENT_NAME", event_name.to_string()),
            ("GITHUB_EVENT_PATH", event_path.display().to_string()),
            ("GITHUB_REPOSITORY", "o/r".to_string()),
            ("GITHUB_RUN_ID", "6000".to_string()),
            ("GITHUB_REF", "refs/heads/main".to_string()),
            ("GITHUB_API_URL", "http://127.0.0.1:9".to_string()),
            ("RUNNER_TEMP", temp.display().to_string()),
            ("RUNNER_OS", "Linux".to_string()),
        ] {
            env.insert(name.to_string(), value);
        }
        for (name, value) in [
            ("token", token),
            ("workspace", workspace.display().to_string()),
            ("event_name", event_name.to_string()),
            ("repository", "o/r".to_string()),
        ] {
            github.insert(name.to_string(), value);
        }
        Job {
            root,
            workspace,
            temp,
            file_commands,
            event_path,
            env,
            github,
            path_prefix: Vec::new(),
        }
    }

    pub fn set_env(&mut self, name: &str, value: impl Into<String>) {
        self.env.insert(name.to_string(), value.into());
    }
}

#[derive(Debug, Default)]
pub struct StepRun {
    pub id: String,
    pub name: String,
    pub ran: bool,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct ActionRun {
    pub steps: Vec<StepRun>,
    pub success: bool,
    /// The action's `outputs:`, evaluated after its steps.
    pub outputs: BTreeMap<String, String>,
    /// Every step's GITHUB_STEP_SUMMARY, in order.
    pub summary: String,
}

impl ActionRun {
    pub fn step(&self, id: &str) -> &StepRun {
        self.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id} in {:?}", self.steps))
    }

    /// Every step's standard output, as the job log shows it (workflow commands included).
    pub fn log(&self) -> String {
        self.steps
            .iter()
            .map(|s| format!("{}{}", s.stdout, s.stderr))
            .collect()
    }

    /// The `::warning ...::message` workflow commands printed by the steps.
    pub fn warnings(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|s| s.stdout.lines())
            .filter(|l| l.starts_with("::warning"))
            .map(str::to_string)
            .collect()
    }
}

/// Runs the composite action at `action_dir` (its action.yml) with `with` as the step's
/// inputs. `only`: run just the steps with these ids (others are left out, as if absent).
pub fn run_action(
    action_dir: &Path,
    with: &[(&str, &str)],
    job: &Job,
    only: Option<&[&str]>,
) -> ActionRun {
    let action: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(action_dir.join("action.yml")).expect("action.yml"),
    )
    .expect("action.yml is YAML");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let declared = action["inputs"].as_mapping().expect("inputs");
    for (name, _) in with {
        assert!(
            declared.contains_key(Value::from(*name)),
            "input {name} is not declared in action.yml"
        );
    }

    let mut context = Context {
        job,
        inputs: BTreeMap::new(),
        steps: BTreeMap::new(),
    };
    // Inputs: the given value, else the default (which may itself be an expression).
    for (name, input) in declared {
        let name = name.as_str().unwrap().to_string();
        let value = match with.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => v.to_string(),
            None => context.substitute(input["default"].as_str().unwrap_or("")),
        };
        context.inputs.insert(name, value);
    }

    let mut run = ActionRun {
        success: true,
        ..Default::default()
    };
    for (index, step) in action["runs"]["steps"]
        .as_sequence()
        .expect("runs.steps")
        .iter()
        .enumerate()
    {
        let id = step["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("__{index}"));
        if only.is_some_and(|ids| !ids.contains(&id.as_str())) {
            continue;
        }
        let name = step["name"].as_str().unwrap_or(&id).to_string();
        let condition = step["if"].as_str().unwrap_or("");
        if !context.condition(condition, run.success) {
            run.steps.push(StepRun {
                id,
                name,
                ..Default::default()
            });
            continue;
        }
        assert!(
            step["uses"].is_null(),
            "step {id}: the harness runs `run:` steps only"
        );
        assert_eq!(step["shell"].as_str(), Some("bash"), "step {id}: shell");
        let script = context.substitute(step["run"].as_str().expect("run"));
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(step_env) = step["env"].as_mapping() {
            for (k, v) in step_env {
                let value = match v {
                    Value::String(s) => context.substitute(s),
                    Value::Null => String::new(),
                    other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                };
                env.insert(k.as_str().unwrap().to_string(), value);
            }
        }
        let result = run_step(job, action_dir, &id, &name, &script, &env, index);
        if !result.success {
            run.success = false;
        }
        run.summary
            .push_str(&std::fs::read_to_string(summary_file(job, index)).unwrap_or_default());
        context.steps.insert(id.clone(), result.outputs.clone());
        run.steps.push(result);
    }
    if let Some(outputs) = action["outputs"].as_mapping() {
        for (name, output) in outputs {
            let value = context.substitute(output["value"].as_str().unwrap_or(""));
            run.outputs
                .insert(name.as_str().unwrap().to_string(), value);
        }
    }
    run
}

fn summary_file(job: &Job, index: usize) -> PathBuf {
    job.file_commands.join(format!("step_summary_{index}"))
}

fn run_step(
    job: &Job,
    action_dir: &Path,
    id: &str,
    name: &str,
    script: &str,
    step_env: &BTreeMap<String, String>,
    index: usize,
) -> StepRun {
    let script_file = job.temp.join(format!("step-{index}.sh"));
    std::fs::write(&script_file, script).unwrap();
    let output_file = job.file_commands.join(format!("set_output_{index}"));
    std::fs::write(&output_file, "").unwrap();
    let summary = summary_file(job, index);
    std::fs::write(&summary, "").unwrap();

    let mut path: Vec<String> = job
        .path_prefix
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    path.push(std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script_file)
        .current_dir(&job.workspace)
        .env_clear()
        .env("PATH", path.join(":"))
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .envs(&job.env)
        .env("GITHUB_ACTION_PATH", action_dir)
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .envs(step_env);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("step {id}: cannot run bash: {e}"));
    let outputs = parse_file_command(&std::fs::read_to_string(&output_file).unwrap());
    let _ = std::fs::remove_file(&script_file);
    StepRun {
        id: id.to_string(),
        name: name.to_string(),
        ran: true,
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        outputs,
    }
}

/// A GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` ... `DELIMITER` blocks.
pub fn parse_file_command(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        } else {
            panic!("not a file command line: {line}");
        }
    }
    out
}

struct Context<'a> {
    job: &'a Job,
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Context<'_> {
    /// The value of one expression (the text between `${{` and `}}`).
    fn value(&self, expression: &str) -> String {
        let expression = expression.trim();
        let parts: Vec<&str> = expression.split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => self
                .inputs
                .get(*name)
                .unwrap_or_else(|| panic!("unknown input in `{expression}`"))
                .clone(),
            ["github", name] => self
                .job
                .github
                .get(*name)
                .unwrap_or_else(|| panic!("the harness has no github.{name}"))
                .clone(),
            ["env", name] => self.job.env.get(*name).cloned().unwrap_or_default(),
            ["steps", id, "outputs", name] => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            _ => panic!("the harness cannot evaluate `{expression}`"),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed expression in {text}"));
            out.push_str(&self.value(&rest[start + 3..start + end]));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// An `if:` condition; without a status function it also needs every earlier step to
    /// have succeeded (the runner's implicit `success() &&`).
    fn condition(&self, condition: &str, succeeded: bool) -> bool {
        let condition = condition.trim();
        let condition = condition
            .strip_prefix("${{")
            .and_then(|c| c.strip_suffix("}}"))
            .unwrap_or(condition);
        if condition.trim().is_empty() {
            return succeeded;
        }
        let mut status_function = false;
        let mut result = true;
        for term in condition.split("&&").map(str::trim) {
            let value = match term {
                "always()" => {
                    status_function = true;
                    true
                }
                "success()" => {
                    status_function = true;
                    succeeded
                }
                "failure()" => {
                    status_function = true;
                    !succeeded
                }
                _ => {
                    if let Some(left) = term.strip_suffix("!= ''") {
                        !self.value(left).is_empty()
                    } else if let Some(left) = term.strip_suffix("== ''") {
                        self.value(left).is_empty()
                    } else {
                        panic!("the harness cannot evaluate the condition `{term}`")
                    }
                }
            };
            result &= value;
        }
        result && (status_function || succeeded)
    }
}

/// The tag every container test uses for the action image.
pub const ACTION_IMAGE: &str = "cachehit-action:e2e-test";

/// The action image of the current sources, built by scripts/build-action-image: once per
/// source state, whatever the number of test binaries asking (the script holds a lock and
/// skips the build when the image already has the sources' hash).
pub fn action_image() -> String {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = Command::new(root.join("scripts/build-action-image"))
            .arg(ACTION_IMAGE)
            .output()
            .expect("scripts/build-action-image runs");
        assert!(
            output.status.success(),
            "building the action image failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    ACTION_IMAGE.to_string()
}
