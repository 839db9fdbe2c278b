//! What one run of the pipeline is asked to do, resolved and validated by the front-end
//! before any work starts: the inputs, where images come from (and with which credentials),
//! which baseline, which Dockerfile, where the build context's repository is, which gates.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::analysis::gates::Gate;
use crate::analysis::gha_cache::GhaRun;
use crate::github::baseline::AutoQuery;
use crate::readers::{Input, ReadOptions};
use crate::sources::git::ContextLocation;
use crate::sources::registry::Credentials;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Build records (logs, metadata, records, bundles); several inputs of one build combine.
    pub inputs: Vec<Input>,
    pub read: ReadOptions,
    pub images: ImageSources,
    pub baseline: BaselineChoice,
    pub dockerfile: Option<DockerfileSource>,
    pub gates: Vec<Gate>,
    pub evidence: EvidenceSources,
}

/// Where facts about the source come from: the build context's Git repository, this build's
/// commit, and the run (for the GitHub Actions cache).
#[derive(Clone, Debug, Default)]
pub struct EvidenceSources {
    /// The build context in a Git working tree: this build's commit (its HEAD) and the files
    /// changed since the baseline's commit.
    pub context: Option<ContextLocation>,
    /// This build's commit and ref as the front-end knows them (the runner's); they take
    /// precedence over the repository's HEAD and the provenance revision.
    pub git: GitIdentity,
    /// The run, when the GitHub Actions cache can be read (the action).
    pub gha: Option<GhaRun>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitIdentity {
    pub commit: Option<String>,
    pub git_ref: Option<String>,
}

/// Where image layers and sizes come from when the records do not carry them.
#[derive(Clone, Debug, Default)]
pub struct ImageSources {
    /// This build's image in a registry (`registry/repo:tag` or `@sha256:...`).
    pub current: Option<String>,
    /// The previous release's image in a registry, for the pull cost.
    pub baseline: Option<String>,
    /// An image loaded into the local Docker Engine, for per-step sizes.
    pub engine: Option<String>,
    pub registry: RegistryAccess,
}

/// How registries are asked.
#[derive(Clone, Debug)]
pub struct RegistryAccess {
    pub credentials: CredentialPolicy,
    /// Plain HTTP (always so for localhost and 127.x).
    pub insecure: bool,
    /// For each request, its answer included.
    pub timeout: Duration,
    /// For all requests of one image together.
    pub budget: Duration,
}

impl Default for RegistryAccess {
    fn default() -> Self {
        RegistryAccess {
            credentials: CredentialPolicy::Anonymous,
            insecure: false,
            timeout: Duration::from_secs(20),
            budget: Duration::from_secs(60),
        }
    }
}

/// Which credentials go to which registry.
#[derive(Clone)]
pub enum CredentialPolicy {
    Anonymous,
    /// The same credentials for every registry (`--registry-user` with
    /// `CACHEHIT_REGISTRY_PASSWORD`).
    Everywhere(Credentials),
    /// The job's token, for its GitHub's own container registry only (`ghcr.io` on
    /// github.com): other registries are asked anonymously.
    GitHubToken {
        token: String,
        /// The registry host the token is for.
        registry: String,
    },
}

impl CredentialPolicy {
    /// The credentials to present to `registry`.
    pub fn for_registry(&self, registry: &str) -> Option<Credentials> {
        match self {
            CredentialPolicy::Anonymous => None,
            CredentialPolicy::Everywhere(credentials) => Some(credentials.clone()),
            CredentialPolicy::GitHubToken {
                token,
                registry: own,
            } => registry.eq_ignore_ascii_case(own).then(|| Credentials {
                username: "x-access-token".into(),
                password: token.clone(),
            }),
        }
    }
}

/// Never prints a password or token.
impl fmt::Debug for CredentialPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialPolicy::Anonymous => f.write_str("Anonymous"),
            CredentialPolicy::Everywhere(c) => write!(f, "Everywhere({}, <password>)", c.username),
            CredentialPolicy::GitHubToken { registry, .. } => {
                write!(f, "GitHubToken(<token> for {registry})")
            }
        }
    }
}

/// The earlier build to compare with.
#[derive(Clone, Debug)]
pub enum BaselineChoice {
    None,
    /// A JSON report file. `label` names it in the report and in messages (the path as the
    /// user wrote it); `required` makes an unusable file stop the run rather than a warning.
    File {
        path: PathBuf,
        label: String,
        required: bool,
    },
    /// The previous release's report, searched for on GitHub.
    Auto(AutoQuery),
}

/// The Dockerfile, for the lines of steps and findings the records do not give.
#[derive(Clone, Debug)]
pub struct DockerfileSource {
    pub path: PathBuf,
    /// An unreadable Dockerfile stops the run (given on the command line) or is passed over
    /// (the action's default path).
    pub required: bool,
}
