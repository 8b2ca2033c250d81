//! The scheduler: turning a job run into task attempts and recording them.
//!
//! Owns readiness (`run_if`), the order and concurrency of attempts, retries,
//! timeouts, cancellation, for_each/condition/run_job tasks, resolution of
//! `{{ … }}` references just before a task starts, crash recovery (resume),
//! repair, and the run's result. Every transition is appended to the run's
//! event log before anything acts on it, and flushed in groups before anyone
//! outside the process can observe it (see [`journal`]).
//!
//! It must never touch wasmtime (that is the sandbox) or sled (that is the
//! store), and never print: progress goes to an [`Observer`].

mod attempt;
mod caching;
mod control;
mod exec;
mod inspect;
pub mod journal;
mod params;
mod plan;
pub mod readiness;
mod restore;
mod result;
pub mod retry;
mod runtime;
mod start;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::model::{Event, RunId, RunPlan, RunResult, RunView, TaskResult};
use crate::sandbox::{Limits, SandboxError};
use crate::spec::{Bundle, JobSpec, SpecError};
use crate::store::StoreError;

pub use control::Control;
pub use inspect::{Explanation, GcSummary, Verification};
pub use params::resolve_job_parameters;
pub use restore::RESTARTED;
pub use result::run_result;
pub use runtime::{
    COMPONENTS_DIR, CONTROL_DIR, OpenError, RunOptions, Runtime, RuntimeOptions, STORE_DIR, control, open_store,
    open_vault,
};

use exec::{Exec, Stop};
use journal::Journal;
use plan::Loaded;

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
}

/// Receives every event once it is durable (for progress output).
pub trait Observer: Send + Sync {
    fn event(&self, run: RunId, event: &Event);
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
}

/// What to repair.
#[derive(Debug, Clone, Default)]
pub struct RepairRequest {
    /// Tasks to rerun; empty = every task that did not succeed.
    pub tasks: Vec<String>,
    /// Also rerun every task downstream of the named ones.
    pub with_dependents: bool,
    /// Job parameter overrides for the repair.
    pub overrides: BTreeMap<String, String>,
}

impl Runtime {
    /// Run a job from a bundle to its end. Components are loaded (and bad ones
    /// refused) before the run is created, so a bad bundle leaves no run behind.
    pub async fn run_job(&self, req: JobRequest<'_>, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        check_mount_roots(req.bundle, req.job, &req.target)?;
        let (mut plan, loaded) = plan::pin(&self.sandbox, req.bundle, req.job)?;
        plan.target_limits = req.bundle.targets.get(&req.target).map(|t| t.limits).unwrap_or_default();
        plan.principal = opts.principal.clone();
        plan.workspace = opts.workspace.clone();
        let run = self.store.next_run_id()?;
        let started = self.clock.now();
        let parameters = resolve_job_parameters(req.job, &req.overrides, run, started)?;
        let source = req.bundle.root.display().to_string();
        self.start_run(run, plan, Arc::new(loaded), parameters, req.target, source, opts.clone()).await
    }

    /// Run one component with no bundle (`sluice task run`).
    pub async fn run_component(
        &self,
        path: &Path,
        task: SingleTask,
        opts: &RunOptions,
    ) -> Result<RunView, SchedulerError> {
        let world = if task.command.is_some() { crate::sandbox::World::Command } else { crate::sandbox::World::Task };
        let component = self.sandbox.load_file_as(path, world)?;
        let mut plan = plan::single(path, &component, task);
        plan.principal = opts.principal.clone();
        plan.workspace = opts.workspace.clone();
        let key = plan.job.tasks[0].key.clone();
        let loaded: Loaded = BTreeMap::from([(key, component)]);
        let run = self.store.next_run_id()?;
        let source = path.display().to_string();
        self.start_run(run, plan, Arc::new(loaded), BTreeMap::new(), "dev".into(), source, opts.clone()).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_run(
        &self,
        run: RunId,
        plan: RunPlan,
        loaded: Arc<Loaded>,
        parameters: BTreeMap<String, String>,
        target: String,
        source: String,
        opts: RunOptions,
    ) -> Result<RunView, SchedulerError> {
        let mut journal = Journal::new(self.store.clone(), run, opts.observer.clone(), Vec::new());
        // the run's logical start, as recorded (to the millisecond): what guests'
        // clocks read, on every attempt, resume, repair and verify alike
        let at = self.clock.now_millis();
        journal.append(Event::RunCreated {
            run_id: run,
            job: plan.job.name.clone(),
            source,
            target: target.clone(),
            parameters: parameters.clone(),
            tasks: plan::planned_tasks(&plan),
            at,
            plan: Some(Box::new(plan.clone())),
        })?;
        self.store.put_summary(&journal.view()?.summary())?;
        let started = exec::time_of(at);
        let exec = Exec::new(self.clone(), opts, plan, loaded, journal, parameters, target, started);
        drive(exec).await
    }

    /// A child run for a `run_job` task (boxed: runs nest). `opts.cancel` is the parent's.
    pub(crate) fn run_child(
        &self,
        run: RunId,
        plan: RunPlan,
        loaded: Arc<Loaded>,
        overrides: BTreeMap<String, String>,
        target: String,
        opts: RunOptions,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunView, SchedulerError>> + Send + '_>> {
        Box::pin(async move {
            let parameters = resolve_job_parameters(&plan.job, &overrides, run, self.clock.now())?;
            let source = plan.bundle_root.display().to_string();
            self.start_run(run, plan, loaded, parameters, target, source, opts).await
        })
    }

    /// Resume the child run of a `run_job` task after a crash.
    pub(crate) fn resume_child(
        &self,
        run: RunId,
        opts: RunOptions,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunView, SchedulerError>> + Send + '_>> {
        Box::pin(async move {
            let view = self.view(run)?;
            if view.result.is_some() {
                return Ok(view);
            }
            self.continue_run(run, None, opts).await
        })
    }

    /// The current view of a run.
    pub fn view(&self, run: RunId) -> Result<RunView, SchedulerError> {
        let events = self.store.events(run)?;
        if events.is_empty() {
            return Err(SchedulerError::NoSuchRun(run));
        }
        RunView::from_events(&events).map_err(|e| SchedulerError::Corrupt { run, message: e.0 })
    }

    /// Runs a previous process left unfinished (it died): what `resume` continues.
    pub fn interrupted_runs(&self) -> Result<Vec<RunId>, SchedulerError> {
        let mut out = Vec::new();
        for run in self.store.unfinished_runs()? {
            // children are resumed by their parent
            let events = self.store.events(run)?;
            let is_child =
                matches!(events.first(), Some(Event::RunCreated { plan: Some(p), .. }) if p.parent.is_some());
            if !is_child {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// Continue a run whose process died. Attempts that were running count as
    /// failed ("runtime restarted") and go through their retry policy.
    pub async fn resume(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let view = self.view(run)?;
        if view.result.is_some() {
            return Err(SchedulerError::Refused {
                run,
                message: format!("already finished ({})", view.result.map(|r| r.as_str()).unwrap_or("")),
            });
        }
        self.continue_run(run, None, opts.clone()).await
    }

    /// Cancel a run no process is running: what it left in flight is canceled.
    pub async fn cancel_interrupted(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let stop = Stop::Canceled("canceled by `sluice runs cancel`".into());
        self.continue_run(run, Some(stop), opts.clone()).await
    }

    async fn continue_run(&self, run: RunId, stop: Option<Stop>, opts: RunOptions) -> Result<RunView, SchedulerError> {
        let events = self.store.events(run)?;
        let plan = plan_of(run, &events)?;
        let loaded = Arc::new(plan::reload(&self.sandbox, &plan)?);
        let mut journal = Journal::new(self.store.clone(), run, opts.observer.clone(), events);
        journal.append(Event::RunResumed { at: self.clock.now_millis() })?;
        let view = journal.view()?;
        let mut exec = Exec::restore(self.clone(), opts, plan, loaded, journal)?;
        exec.restore_produced(&view);
        if let Some(stop) = stop {
            exec.stop(stop)?;
        }
        exec.settle_interrupted(&view)?;
        drive(exec).await
    }

    /// Rerun tasks of a finished run inside the same run.
    pub async fn repair(&self, run: RunId, req: RepairRequest, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let events = self.store.events(run)?;
        if events.is_empty() {
            return Err(SchedulerError::NoSuchRun(run));
        }
        let view = RunView::from_events(&events).map_err(|e| SchedulerError::Corrupt { run, message: e.0 })?;
        if view.result.is_none() {
            return Err(SchedulerError::Refused {
                run,
                message: "is not finished; resume it (`sluice runs resume`) or cancel it first".into(),
            });
        }
        let plan = plan_of(run, &events)?;
        let tasks = repair_set(&plan, &view, &req)?;
        if tasks.is_empty() {
            return Err(SchedulerError::Refused {
                run,
                message: "has no failed tasks to repair; name tasks with --task".into(),
            });
        }
        let mut parameters = view.parameters.clone();
        for (k, v) in &req.overrides {
            if !plan.job.parameters.contains_key(k) {
                return Err(SchedulerError::Parameters(format!(
                    "--param {k}: job `{}` has no parameter `{k}`",
                    plan.job.name
                )));
            }
            parameters.insert(k.clone(), v.clone());
        }
        let loaded = Arc::new(plan::reload(&self.sandbox, &plan)?);
        let mut journal = Journal::new(self.store.clone(), run, opts.observer.clone(), events);
        let repair = view.repairs.len() as u32 + 1;
        journal.append(Event::RepairStarted { repair, tasks, parameters, at: self.clock.now_millis() })?;
        self.store.put_summary(&journal.view()?.summary())?;
        let view = journal.view()?;
        let mut exec = Exec::restore(self.clone(), opts.clone(), plan, loaded, journal)?;
        exec.restore_produced(&view);
        exec.settle_interrupted(&view)?;
        drive(exec).await
    }
}

/// Run a coordinator as a tokio task of its own. On a multi-threaded runtime
/// this keeps the coordinator and the attempts it spawns on the same worker
/// (tokio's LIFO slot), so a finished attempt wakes it without a cross-thread
/// handoff — on these machines each such wake-up costs ~100 µs.
async fn drive(exec: Exec) -> Result<RunView, SchedulerError> {
    let run = exec.journal.run();
    match tokio::spawn(exec.drive()).await {
        Ok(result) => result,
        Err(e) => Err(SchedulerError::Corrupt { run, message: format!("the run's coordinator failed: {e}") }),
    }
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

pub(crate) fn plan_of(run: RunId, events: &[Event]) -> Result<RunPlan, SchedulerError> {
    match events.first() {
        Some(Event::RunCreated { plan: Some(plan), .. }) => Ok((**plan).clone()),
        Some(_) => {
            Err(SchedulerError::Refused { run, message: "was recorded without a plan and cannot be continued".into() })
        }
        None => Err(SchedulerError::NoSuchRun(run)),
    }
}

/// The top-level tasks a repair reruns.
fn repair_set(plan: &RunPlan, view: &RunView, req: &RepairRequest) -> Result<Vec<String>, SchedulerError> {
    let top: Vec<&crate::model::TaskView> = view.tasks.iter().filter(|t| t.parent.is_none()).collect();
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    if req.tasks.is_empty() {
        for t in &top {
            if !matches!(t.result, Some(TaskResult::Success | TaskResult::Excluded)) {
                chosen.insert(t.key.clone());
            }
        }
    } else {
        for k in &req.tasks {
            if plan.job.task(k).is_none() {
                let known: Vec<&str> = plan.job.tasks.iter().map(|t| t.key.as_str()).collect();
                return Err(SchedulerError::Parameters(format!(
                    "--task {k}: the run has no task `{k}` (it has {})",
                    known.join(", ")
                )));
            }
            chosen.insert(k.clone());
        }
    }
    if req.with_dependents {
        let mut grew = true;
        while grew {
            grew = false;
            for t in &plan.job.tasks {
                if !chosen.contains(&t.key) && t.upstream_keys().any(|u| chosen.contains(u)) {
                    chosen.insert(t.key.clone());
                    grew = true;
                }
            }
        }
    }
    // keep plan order
    Ok(plan.job.tasks.iter().filter(|t| chosen.contains(&t.key)).map(|t| t.key.clone()).collect())
}

/// What a run's result says about success, for exit codes.
pub fn succeeded(view: &RunView) -> bool {
    view.result.is_some_and(RunResult::is_success)
}
