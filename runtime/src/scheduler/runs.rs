//! The run operations of a [`Runtime`]: start a job or a single component, run a child
//! run, resume, cancel and repair. Each pins (or reloads) the run's components, opens its
//! journal, folds its state, and hands both to a [`Coordinator`] running as a tokio task.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use crate::model::{Event, RunId, RunPlan, RunView};
use crate::state::RunState;

use super::coordinator::Coordinator;
use super::journal::Journal;
use super::params::{RunLevel, check_overrides};
use super::plan::{self, Loaded};
use super::{JobRequest, RunOptions, Runtime, SchedulerError, SingleTask, check_mount_roots, resolve_job_parameters};

/// A run that nests (a child run of a `run_job` task), boxed.
type Nested<'a> = Pin<Box<dyn Future<Output = Result<RunView, SchedulerError>> + Send + 'a>>;

/// What a new run is: its plan, components, parameters, target and source.
struct NewRun {
    run: RunId,
    plan: RunPlan,
    loaded: Arc<Loaded>,
    parameters: BTreeMap<String, String>,
    target: String,
    source: String,
}

impl Runtime {
    /// Run a job from a bundle to its end. Components are loaded (and bad ones
    /// refused) before the run is created, so a bad bundle leaves no run behind.
    /// Nothing is written (not even a run id taken) until the bundle, target, parameters
    /// and components have all been checked.
    pub async fn run_job(&self, req: JobRequest<'_>, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let target = req.bundle.target(Some(&req.target))?;
        check_mount_roots(req.bundle, req.job, &target)?;
        check_overrides(req.job, &req.overrides)?;
        let (mut plan, loaded) = plan::pin(&self.sandbox, req.bundle, req.job)?;
        plan.target_limits = req.bundle.targets.get(&target).map(|t| t.limits).unwrap_or_default();
        plan.principal = opts.principal.clone();
        plan.workspace = opts.workspace.clone();
        let run = self.store.next_run_id()?;
        let at = RunLevel { bundle: &plan.bundle, job: &plan.job, run_id: run, started: self.clock.now() };
        let parameters = resolve_job_parameters(at, &req.overrides)?;
        let source = req.bundle.root.display().to_string();
        let new = NewRun { run, plan, loaded: Arc::new(loaded), parameters, target, source };
        self.start_run(new, opts.clone()).await
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
        let loaded = Arc::new(BTreeMap::from([(key, component)]));
        let run = self.store.next_run_id()?;
        let source = path.display().to_string();
        let new = NewRun { run, plan, loaded, parameters: BTreeMap::new(), target: "dev".into(), source };
        self.start_run(new, opts.clone()).await
    }

    async fn start_run(&self, new: NewRun, opts: RunOptions) -> Result<RunView, SchedulerError> {
        let mut journal = Journal::new(self.store.clone(), new.run, opts.observer.clone());
        // the run's logical start, as recorded (to the millisecond): what guests'
        // clocks read, on every attempt, resume, repair and verify alike
        let created = Event::RunCreated {
            run_id: new.run,
            job: new.plan.job.name.clone(),
            source: new.source,
            target: new.target,
            parameters: new.parameters,
            tasks: crate::state::planned_tasks(&new.plan),
            at: self.clock.now_millis(),
            plan: Some(Box::new(new.plan)),
        };
        journal.append(&created)?;
        let state = RunState::from_events(std::slice::from_ref(&created)).map_err(|e| corrupt(new.run, e))?;
        self.store.put_summary(&state.view().summary())?;
        drive(Coordinator::new(self.clone(), opts, state, new.loaded, journal)?).await
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
    ) -> Nested<'_> {
        Box::pin(async move {
            let at = RunLevel { bundle: &plan.bundle, job: &plan.job, run_id: run, started: self.clock.now() };
            let parameters = resolve_job_parameters(at, &overrides)?;
            let source = plan.bundle_root.display().to_string();
            self.start_run(NewRun { run, plan, loaded, parameters, target, source }, opts).await
        })
    }

    /// Resume the child run of a `run_job` task after a crash.
    pub(crate) fn resume_child(&self, run: RunId, opts: RunOptions) -> Nested<'_> {
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
        Ok(self.state_of(run)?.into_view())
    }

    /// A run's state, folded from its log.
    pub(crate) fn state_of(&self, run: RunId) -> Result<RunState, SchedulerError> {
        let events = self.store.events(run)?;
        if events.is_empty() {
            return Err(SchedulerError::NoSuchRun(run));
        }
        RunState::from_events(&events).map_err(|e| corrupt(run, e))
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

    /// Continue a run whose process died, with the plan it has pinned. Attempts that were
    /// running end `interrupted` and run again without counting as a retry (unless their
    /// task says `rerun_on_resume = false`: then they wait for a repair).
    pub async fn resume(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let view = self.view(run)?;
        if let Some(result) = view.result {
            return Err(SchedulerError::Refused { run, message: format!("already finished ({})", result.as_str()) });
        }
        self.continue_run(run, None, opts.clone()).await
    }

    /// Cancel a run no process is running: what it left in flight is canceled.
    pub async fn cancel_interrupted(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        self.continue_run(run, Some("canceled by `sluice runs cancel`".into()), opts.clone()).await
    }

    async fn continue_run(
        &self,
        run: RunId,
        stop: Option<String>,
        opts: RunOptions,
    ) -> Result<RunView, SchedulerError> {
        let events = self.store.events(run)?;
        let state = RunState::from_events(&events).map_err(|e| corrupt(run, e))?;
        let plan = state.plan().ok_or_else(|| no_plan(run))?;
        let loaded = Arc::new(plan::reload(&self.sandbox, plan)?);
        let mut coordinator = self.continuing(state, &events, loaded, opts)?;
        coordinator.record(Event::RunResumed { at: self.clock.now_millis() })?;
        if let Some(reason) = stop {
            coordinator.stop(reason, false)?;
        }
        coordinator.restore_produced();
        coordinator.settle_interrupted()?;
        drive(coordinator).await
    }

    /// A run's journal and coordinator, to go on with `state` (resume, cancel, repair).
    pub(crate) fn continuing(
        &self,
        state: RunState,
        events: &[Event],
        loaded: Arc<Loaded>,
        opts: RunOptions,
    ) -> Result<Coordinator, SchedulerError> {
        let journal = Journal::resume(self.store.clone(), state.run_id(), opts.observer.clone(), events);
        Coordinator::new(self.clone(), opts, state, loaded, journal)
    }
}

/// Run a coordinator as a tokio task of its own. On a multi-threaded runtime this keeps
/// the coordinator and the attempts it spawns on the same worker (tokio's LIFO slot), so
/// a finished attempt wakes it without a cross-thread handoff — on these machines each
/// such wake-up costs ~100 µs.
pub(crate) async fn drive(coordinator: Coordinator) -> Result<RunView, SchedulerError> {
    let run = coordinator.state.run_id();
    match tokio::spawn(coordinator.drive()).await {
        Ok(result) => result,
        Err(e) => Err(SchedulerError::Corrupt { run, message: format!("the run's coordinator failed: {e}") }),
    }
}

pub(crate) fn corrupt(run: RunId, e: crate::model::CorruptLog) -> SchedulerError {
    SchedulerError::Corrupt { run, message: e.0 }
}

pub(crate) fn no_plan(run: RunId) -> SchedulerError {
    SchedulerError::Refused { run, message: "was recorded without a plan and cannot be continued".into() }
}
