//! What a client hands the run manager and what it gets back: a [`Submission`] (what to
//! run, with which parameters, target and admission wishes) and its answers ([`Submitted`],
//! [`CancelOutcome`], [`Repaired`]). Plain data shared by the service, the HTTP API and the
//! owner's socket; it never touches a run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::RunId;
use crate::scheduler::SingleTask;

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A bundle directory (or file) on the owner's machine (`sluice run`; local callers only).
    Bundle { path: PathBuf, job: Option<String> },
    /// A served job by its id (`jobs/run-now`).
    Job(u64),
    /// One component file (`sluice task run`; local callers only).
    Component { path: PathBuf, task: Box<ComponentTask> },
}

/// How to run one component with no bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentTask {
    pub params: BTreeMap<String, String>,
    /// Memory limit in bytes (default: the runtime's).
    pub memory: Option<u64>,
    /// Wall-clock timeout in milliseconds (default: the runtime's).
    pub timeout_ms: Option<u64>,
    /// Run it as a command.
    pub command: Option<crate::spec::CommandSpec>,
    /// Host directories it sees (`--mount`).
    pub mounts: Vec<crate::spec::Mount>,
    /// Where it may send HTTP requests (`--allow-host`).
    pub allow_hosts: Vec<crate::spec::HostRule>,
}

impl ComponentTask {
    pub(super) fn single(&self) -> SingleTask {
        let defaults = crate::sandbox::Limits::default();
        let limits = crate::sandbox::Limits {
            memory: self.memory.unwrap_or(defaults.memory),
            timeout: self.timeout_ms.map_or(defaults.timeout, std::time::Duration::from_millis),
            ..defaults
        };
        SingleTask {
            params: self.params.clone(),
            limits,
            command: self.command.clone(),
            mounts: self.mounts.clone(),
            allow_hosts: self.allow_hosts.clone(),
        }
    }
}

/// A run to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub source: Source,
    /// Job parameter overrides.
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
    /// The bundle's target to run in; `None`: its default target (`default = true`, else `dev`).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub rehash: bool,
    /// `--var NAME=VALUE`: bundle variables (a bundle source only; each must be declared).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The submitter's `SLUICE_VAR_*` values by NAME (a bundle source only).
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    /// The same token within [`super::IDEMPOTENCY_WINDOW`] returns the run it created.
    pub idempotency_token: Option<String>,
    /// Whether the run may wait its turn (default: the job's `queue`).
    pub queue: Option<bool>,
}

impl Submission {
    pub fn new(source: Source) -> Submission {
        Submission {
            source,
            overrides: BTreeMap::new(),
            target: None,
            no_cache: false,
            rehash: false,
            vars: BTreeMap::new(),
            env_vars: BTreeMap::new(),
            idempotency_token: None,
            queue: None,
        }
    }
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub run_id: RunId,
    pub job_id: Option<u64>,
    /// An earlier submission with the same idempotency token created this run.
    pub existing: bool,
    /// `started`, `queued` or `skipped`.
    pub admission: String,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The run stops (or a queued run ends canceled).
    Requested,
    /// The run had already finished: nothing to do.
    AlreadyFinished,
}

/// A repair that began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repaired {
    pub run_id: RunId,
    /// The repair's number in its run (1, 2, …).
    pub repair: u32,
    /// Where its events start in the run's log (follow the run from here).
    pub from: u64,
}
