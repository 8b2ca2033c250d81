//! The scheduler: turning a job run into task attempts and recording them.
//!
//! Owns the [`Runtime`] handle (what every run shares, assembled by [`Runtime::open`]) and
//! the run operations on it — run a job or a single component, resume, repair, cancel,
//! explain, gc, verify — each driving one [`coordinator`] per run. The coordinator does
//! what the run's pure [`RunState`](crate::state::RunState) decides: it records events
//! (journaled before anything acts on them, flushed in groups before anyone outside the
//! process can observe them, see [`journal`]), renders `{{ … }}` references just before a
//! task starts, reuses cached results, and hands attempts to an [`Executor`].
//!
//! It must never touch wasmtime (that is the sandbox) or sled (that is the store), and
//! never print: progress goes to an [`Observer`].

mod attempt;
mod attempts;
mod caching;
mod coordinator;
mod datasets;
mod executor;
mod inspect;
pub mod journal;
pub(crate) mod models;
mod objmounts;
mod params;
mod plan;
mod plan_diff;
mod quality;
mod repair;
mod runs;
mod runtime;
pub mod slots;
mod start;
mod verify;

use std::collections::BTreeMap;

use crate::model::{Event, RunId, RunResult, RunView};
use crate::sandbox::{Limits, SandboxError};
use crate::spec::{Bundle, JobSpec, SpecError};
use crate::store::StoreError;

pub use attempts::MAX_STDIN_FILE_BYTES;
pub use executor::{AttemptReport, Executor, LocalExecutor, PreparedAttempt, Receipt, Running};
pub use inspect::{Explanation, GcSummary};
pub use params::{RunLevel, check_overrides, resolve_job_parameters};
pub use repair::RepairRequest;
pub use runs::PreparedRun;
pub use runtime::{
    COMPONENTS_DIR, ExecutorFactory, OpenError, RunOptions, Runtime, RuntimeOptions, STORE_DIR, open_store, open_vault,
};
pub use verify::Verification;

/// Why a run could not be started, resumed, repaired or recorded.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Parameters(String),
    #[error("run {run}: {message}")]
    Corrupt { run: RunId, message: String },
    #[error("no run {0}")]
    NoSuchRun(RunId),
    #[error("run {run}: {message}")]
    Refused { run: RunId, message: String },
    /// A graceful stop interrupted the run: it stays unfinished and resumes on the next start.
    #[error("run {0} was interrupted by a graceful stop; it resumes when sluice next starts")]
    Interrupted(RunId),
}

/// Receives every event of a run once it is durable (for progress output).
pub trait Observer: Send + Sync {
    fn event(&self, run: RunId, event: &Event);

    /// A run that goes on (resumed, repaired, canceled): its log so far, before its next
    /// events, so the observer knows the whole run. Nothing in it is new.
    fn attached(&self, _run: RunId, _history: &[Event]) {}

    /// An event was appended to the store, not yet flushed: what the observer writes to
    /// the same store now becomes durable with it (notifications).
    fn appended(&self, _run: RunId, _event: &Event) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _run: RunId, _event: &Event) {}
}

/// A job to run.
pub struct JobRequest<'a> {
    pub bundle: &'a Bundle,
    pub job: &'a JobSpec,
    /// `--param k=v` overrides of job parameters.
    pub overrides: BTreeMap<String, String>,
    pub target: String,
}

/// One component to run without a bundle.
#[derive(Debug, Clone, Default)]
pub struct SingleTask {
    pub params: BTreeMap<String, String>,
    pub limits: Limits,
    /// Run it as a command (`wasi:cli/command` or a WASI preview1 module); its
    /// `component` is replaced by the file's task key.
    pub command: Option<crate::spec::CommandSpec>,
    /// Host directories it sees.
    pub mounts: Vec<crate::spec::Mount>,
    /// Where it may send HTTP requests.
    pub allow_hosts: Vec<crate::spec::HostRule>,
}

/// Mounts outside the bundle and its data roots need a target that allows them.
fn check_mount_roots(bundle: &Bundle, job: &JobSpec, target: &str) -> Result<(), SchedulerError> {
    if bundle.targets.get(target).is_some_and(|t| t.allow_absolute_paths) {
        return Ok(());
    }
    let jobs = std::iter::once(job).chain(bundle.jobs.values().filter(|j| j.name != job.name));
    for j in jobs {
        for t in &j.tasks {
            let template_mounts = match &t.kind {
                crate::spec::TaskKind::ForEach { template, .. } => template.exec.mounts.as_slice(),
                _ => &[],
            };
            if let Some(m) = t.exec.mounts.iter().chain(template_mounts).find(|m| m.outside_roots) {
                return Err(SchedulerError::Parameters(format!(
                    "task `{}` of job `{}` mounts {}, outside the bundle and its data roots; target `{target}` does not allow \
                     absolute paths (set `allow_absolute_paths = true` under [targets.{target}], or add a data root)",
                    t.key,
                    j.name,
                    m.host.display()
                )));
            }
        }
    }
    Ok(())
}

/// What a run's result says about success, for exit codes.
pub fn succeeded(view: &RunView) -> bool {
    view.result.is_some_and(RunResult::is_success)
}
