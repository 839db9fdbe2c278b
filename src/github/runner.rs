//! The GitHub Actions runner contract: inputs from `INPUT_*`, context from `GITHUB_*`, file
//! commands (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`) and workflow commands on stdout. Works the
//! same inside the action's container and outside it.
//!
//! The runner remembers which inputs were asked for, so a test can compare what the action
//! reads with what action.yml declares.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What the runner hands a step, read once from an environment.
#[derive(Debug, Default)]
pub struct Runner {
    env: BTreeMap<String, String>,
    /// Names of the inputs asked for so far.
    inputs_read: Mutex<BTreeSet<String>>,
}

impl Clone for Runner {
    fn clone(&self) -> Self {
        Runner {
            env: self.env.clone(),
            inputs_read: Mutex::new(self.inputs_read()),
        }
    }
}

impl Runner {
    pub fn from_env() -> Self {
        Runner::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Runner {
            env: vars.into_iter().collect(),
            inputs_read: Mutex::default(),
        }
    }

    /// An environment variable, trimmed; empty means unset.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// An input: the runner upper-cases the name and turns spaces into `_`, keeping hyphens
    /// (`build-log` -> `INPUT_BUILD-LOG`). Empty means unset.
    pub fn input(&self, name: &str) -> Option<String> {
        self.inputs_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string());
        self.var(&format!("INPUT_{}", name.replace(' ', "_").to_uppercase()))
    }

    /// The names of every input asked for so far.
    pub fn inputs_read(&self) -> BTreeSet<String> {
        self.inputs_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A list input: newline- or comma-separated.
    pub fn input_list(&self, name: &str) -> Vec<String> {
        self.input(name)
            .map(|v| {
                v.split(['\n', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn workspace(&self) -> PathBuf {
        self.var("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Relative paths are relative to the workspace, as in the workflow file.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.workspace().join(p)
        }
    }

    /// `https://api.github.com`, or a GitHub Enterprise Server API URL (`https://host/api/v3`).
    pub fn api_url(&self) -> String {
        self.var("GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".to_string())
            .trim_end_matches('/')
            .to_string()
    }

    /// `owner/name`.
    pub fn repository(&self) -> Option<(String, String)> {
        let full = self.var("GITHUB_REPOSITORY")?;
        let (owner, name) = full.split_once('/')?;
        Some((owner.to_string(), name.to_string()))
    }

    pub fn event_name(&self) -> Option<String> {
        self.var("GITHUB_EVENT_NAME")
    }

    pub fn run_id(&self) -> Option<u64> {
        self.var("GITHUB_RUN_ID")?.parse().ok()
    }

    pub fn git_ref(&self) -> Option<String> {
        self.var("GITHUB_REF")
    }

    /// The tag this run builds: a tag push (`GITHUB_REF_TYPE=tag`, `GITHUB_REF=refs/tags/...`)
    /// or a release event (`release.tag_name`).
    pub fn current_tag(&self, event: &serde_json::Value) -> Option<String> {
        let from_ref = self
            .git_ref()
            .and_then(|r| r.strip_prefix("refs/tags/").map(str::to_string));
        let from_type = (self.var("GITHUB_REF_TYPE").as_deref() == Some("tag"))
            .then(|| self.var("GITHUB_REF_NAME"))
            .flatten();
        let from_release = event
            .pointer("/release/tag_name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        from_ref
            .or(from_type)
            .or(from_release)
            .filter(|t| !t.is_empty())
    }

    pub fn event(&self) -> Option<serde_json::Value> {
        let path = self.var("GITHUB_EVENT_PATH")?;
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn output_file(&self) -> Option<PathBuf> {
        self.var("GITHUB_OUTPUT").map(PathBuf::from)
    }

    pub fn summary_file(&self) -> Option<PathBuf> {
        self.var("GITHUB_STEP_SUMMARY").map(PathBuf::from)
    }

    pub fn temp_dir(&self) -> PathBuf {
        self.var("RUNNER_TEMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
    }
}

/// The pull request an event is about: its number, for `pull_request`-like events.
pub fn pull_request_number(event: &serde_json::Value) -> Option<u64> {
    event
        .get("pull_request")
        .and_then(|pr| pr.get("number"))
        .or_else(|| event.get("number"))
        .and_then(serde_json::Value::as_u64)
}

/// The run that triggered a `workflow_run` event: its id.
pub fn triggering_run_id(event: &serde_json::Value) -> Option<u64> {
    event
        .pointer("/workflow_run/id")
        .and_then(serde_json::Value::as_u64)
}

/// Appends `name=value` to the `GITHUB_OUTPUT` file, in the multi-line form with a delimiter
/// that the value does not contain.
pub fn write_output(file: &Path, name: &str, value: &str) -> std::io::Result<()> {
    let mut delimiter = format!("ghadelimiter_{}", std::process::id());
    let mut n = 0u32;
    while value.contains(&delimiter) {
        n += 1;
        delimiter = format!("ghadelimiter_{}_{n}", std::process::id());
    }
    append(
        file,
        &format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"),
    )
}

pub fn append(file: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(text.as_bytes())
}

/// Workflow-command data: `%`, CR and LF escaped.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command properties: as data, plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::warning file=Dockerfile,line=4,title=...::message`.
pub fn annotation(
    level: &str,
    file: Option<&str>,
    line: Option<u32>,
    title: &str,
    message: &str,
) -> String {
    let mut props = Vec::new();
    if let Some(file) = file {
        props.push(format!("file={}", escape_property(file)));
        if let Some(line) = line {
            props.push(format!("line={line}"));
        }
    }
    props.push(format!("title={}", escape_property(title)));
    format!("::{level} {}::{}", props.join(","), escape_data(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_keep_hyphens() {
        let runner = Runner::from_vars([
            (
                "INPUT_BUILD-LOG".to_string(),
                " a.log\nb.log, c.log ".to_string(),
            ),
            ("INPUT_COMMENT".to_string(), "  ".to_string()),
        ]);
        assert_eq!(runner.input_list("build-log"), ["a.log", "b.log", "c.log"]);
        assert_eq!(runner.input("comment"), None);
    }

    #[test]
    fn the_tag_of_a_tag_push_or_a_release() {
        let runner = |vars: &[(&str, &str)]| {
            Runner::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let none = serde_json::Value::Null;
        assert_eq!(
            runner(&[("GITHUB_REF", "refs/tags/v1.4.0")]).current_tag(&none),
            Some("v1.4.0".into())
        );
        assert_eq!(
            runner(&[("GITHUB_REF_TYPE", "tag"), ("GITHUB_REF_NAME", "v2")]).current_tag(&none),
            Some("v2".into())
        );
        let release = serde_json::json!({"action": "published", "release": {"tag_name": "v3"}});
        assert_eq!(runner(&[]).current_tag(&release), Some("v3".into()));
        assert_eq!(
            runner(&[
                ("GITHUB_REF", "refs/heads/main"),
                ("GITHUB_REF_TYPE", "branch")
            ])
            .current_tag(&none),
            None
        );
    }

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(
            annotation(
                "warning",
                Some("dir,x/Dockerfile"),
                Some(4),
                "a: b",
                "50% done\nnext"
            ),
            "::warning file=dir%2Cx/Dockerfile,line=4,title=a%3A b::50%25 done%0Anext"
        );
    }

    #[test]
    fn outputs_use_a_delimiter_absent_from_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let tricky = format!("x\nghadelimiter_{}\ny", std::process::id());
        write_output(&file, "rebuilt-steps", &tricky).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let (head, rest) = text.split_once('\n').unwrap();
        let delimiter = head.strip_prefix("rebuilt-steps<<").unwrap();
        assert!(!tricky.contains(delimiter));
        assert_eq!(rest, format!("{tricky}\n{delimiter}\n"));
    }
}
