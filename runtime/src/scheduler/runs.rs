//! The run operations of a [`Runtime`]: start a job or a single component, run a child
//! run, resume, cancel and repair. Each pins (or reloads) the run's components, opens its
//! journal, folds its state, and hands both to a [`Coordinator`] running as a tokio task.
//!
//! Creating (or repairing, resuming, dequeuing) a run and driving it are two steps: the
//! `prepare_*` operations record the run's next event durably and return a
//! [`PreparedRun`], which a caller (the run manager) drives now, queues or skips — so an
//! API can answer with the run's id once it is durable and readable, before it runs.

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

/// A run whose next step is recorded, ready to be driven (or queued, or skipped).
pub struct PreparedRun {
    coordinator: Coordinator,
}

impl PreparedRun {
    pub(crate) fn new(coordinator: Coordinator) -> Self {
        PreparedRun { coordinator }
    }

    pub fn run_id(&self) -> RunId {
        self.coordinator.state.run_id()
    }

    /// The position in the run's log of the first event this step recorded (0 for a new
    /// run; for a repair, its `RepairStarted`).
    pub fn first_new_event(&self) -> u64 {
        self.coordinator.journal.base()
    }

    /// The run as recorded so far.
    pub fn view(&self) -> &RunView {
        self.coordinator.state.view()
    }

    /// Make what was recorded durable (and tell the observer), e.g. before answering
    /// with the run's id.
    pub fn commit(&mut self) -> Result<(), SchedulerError> {
        self.coordinator.journal.flush()
    }

    /// Run it to its end.
    pub async fn drive(self) -> Result<RunView, SchedulerError> {
        drive(self.coordinator).await
    }

    /// It waits for its turn (`max_concurrent_runs`): recorded (durable with
    /// [`PreparedRun::commit`]); nothing of it starts until [`Runtime::dequeue`].
    pub fn queue(&mut self, reason: String) -> Result<(), SchedulerError> {
        let at = self.coordinator.now();
        self.coordinator.record(Event::RunQueued { reason, at })?;
        self.coordinator.rt.store.put_summary(&self.coordinator.state.view().summary())?;
        Ok(())
    }

    /// It never runs (its job has `max_concurrent_runs` active runs and does not queue):
    /// every task ends canceled, the run `skipped` (durable with [`PreparedRun::commit`]).
    pub fn skip(&mut self, reason: String) -> Result<(), SchedulerError> {
        let at = self.coordinator.now();
        let tasks: Vec<String> = self.coordinator.state.view().tasks.iter().map(|t| t.key.clone()).collect();
        for task in tasks {
            let result = crate::model::TaskResult::Canceled;
            self.coordinator.record(Event::TaskSkipped { task, result, reason: reason.clone(), at })?;
        }
        self.coordinator.record(Event::RunFinished { result: crate::model::RunResult::Skipped, at })?;
        self.coordinator.rt.store.put_summary(&self.coordinator.state.view().summary())?;
        Ok(())
    }
}

impl Runtime {
    /// Run a job from a bundle to its end. Components are loaded (and bad ones
    /// refused) before the run is created, so a bad bundle leaves no run behind.
    /// Nothing is written (not even a run id taken) until the bundle, target, parameters
    /// and components have all been checked.
    pub async fn run_job(&self, req: JobRequest<'_>, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        let mut run = self.prepare_job(req, None, opts)?;
        run.commit()?;
        run.drive().await
    }

    /// Create a run of a job (recorded, not yet flushed: [`PreparedRun::commit`]).
    /// `job_id` is the job's stable id, when a run manager keeps them. Nothing is written
    /// (not even a run id taken) until the bundle, target, parameters and components have
    /// all been checked.
    pub fn prepare_job(
        &self,
        req: JobRequest<'_>,
        job_id: Option<u64>,
        opts: &RunOptions,
    ) -> Result<PreparedRun, SchedulerError> {
        let target = req.bundle.target(Some(&req.target))?;
        check_mount_roots(req.bundle, req.job, &target)?;
        check_overrides(req.job, &req.overrides)?;
        let (mut plan, loaded) = plan::pin(&self.sandbox, req.bundle, req.job)?;
        plan.target_limits = req.bundle.targets.get(&target).map(|t| t.limits).unwrap_or_default();
        plan.principal = opts.principal.clone();
        plan.workspace = opts.workspace.clone();
        plan.job_id = job_id;
        plan.trigger = opts.trigger.clone();
        let run = self.store.next_run_id()?;
        let at = RunLevel::of(&plan, run, self.clock.now());
        let parameters = resolve_job_parameters(at, &req.overrides)?;
        let source = req.bundle.root.display().to_string();
        let new = NewRun { run, plan, loaded: Arc::new(loaded), parameters, target, source };
        self.create(new, opts.clone())
    }

    /// Run one component with no bundle (`sluice task run`).
    pub async fn run_component(
        &self,
        path: &Path,
        task: SingleTask,
        opts: &RunOptions,
    ) -> Result<RunView, SchedulerError> {
        let mut run = self.prepare_component(path, task, opts)?;
        run.commit()?;
        run.drive().await
    }

    /// Create a run of one component (recorded, not yet flushed).
    pub fn prepare_component(
        &self,
        path: &Path,
        task: SingleTask,
        opts: &RunOptions,
    ) -> Result<PreparedRun, SchedulerError> {
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
        self.create(new, opts.clone())
    }

    fn create(&self, new: NewRun, opts: RunOptions) -> Result<PreparedRun, SchedulerError> {
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
        Ok(PreparedRun { coordinator: Coordinator::new(self.clone(), opts, state, new.loaded, journal)? })
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
            let at = RunLevel::of(&plan, run, self.clock.now());
            let parameters = resolve_job_parameters(at, &overrides)?;
            let source = plan.bundle_root.display().to_string();
            let mut child = self.create(NewRun { run, plan, loaded, parameters, target, source }, opts)?;
            child.commit()?;
            child.drive().await
        })
    }

    /// Resume the child run of a `run_job` task after a crash.
    pub(crate) fn resume_child(&self, run: RunId, opts: RunOptions) -> Nested<'_> {
        Box::pin(async move {
            let view = self.view(run)?;
            if view.result.is_some() {
                return Ok(view);
            }
            self.prepare_resume(run, None, &opts)?.drive().await
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

    /// Runs a previous process left unfinished (it died): what `resume` continues. Queued
    /// runs are not among them (see [`Runtime::queued_runs`]), nor child runs (their
    /// parent resumes them).
    pub fn interrupted_runs(&self) -> Result<Vec<RunId>, SchedulerError> {
        Ok(self.unfinished_by_kind()?.0)
    }

    /// Runs waiting for their turn (`max_concurrent_runs`), oldest first.
    pub fn queued_runs(&self) -> Result<Vec<RunId>, SchedulerError> {
        Ok(self.unfinished_by_kind()?.1)
    }

    /// Unfinished top-level runs: (interrupted, queued).
    fn unfinished_by_kind(&self) -> Result<(Vec<RunId>, Vec<RunId>), SchedulerError> {
        let (mut interrupted, mut queued) = (Vec::new(), Vec::new());
        for run in self.store.unfinished_runs()? {
            let events = self.store.events(run)?;
            let is_child =
                matches!(events.first(), Some(Event::RunCreated { plan: Some(p), .. }) if p.parent.is_some());
            if is_child {
                continue;
            }
            let waiting = events
                .iter()
                .rev()
                .find_map(|e| match e {
                    Event::RunQueued { .. } => Some(true),
                    Event::RunDequeued { .. } => Some(false),
                    _ => None,
                })
                .unwrap_or(false);
            if waiting { queued.push(run) } else { interrupted.push(run) }
        }
        Ok((interrupted, queued))
    }

    /// Continue a run whose process died, with the plan it has pinned. Attempts that were
    /// running end `interrupted` and run again without counting as a retry (unless their
    /// task says `rerun_on_resume = false`: then they wait for a repair).
    pub async fn resume(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        self.prepare_resume(run, None, opts)?.drive().await
    }

    /// Cancel a run no process is running: what it left in flight is canceled.
    pub async fn cancel_interrupted(&self, run: RunId, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        self.prepare_resume(run, Some("canceled by `sluice runs cancel`".into()), opts)?.drive().await
    }

    /// Continue a run whose process died (`RunResumed` recorded and flushed; with `stop`,
    /// the run is canceled with that reason), with the plan it has pinned: attempts that
    /// were running end `interrupted` (see [`Runtime::resume`]).
    pub fn prepare_resume(
        &self,
        run: RunId,
        stop: Option<String>,
        opts: &RunOptions,
    ) -> Result<PreparedRun, SchedulerError> {
        let (events, state) = self.unfinished(run)?;
        let loaded = Arc::new(plan::reload(&self.sandbox, state.plan().ok_or_else(|| no_plan(run))?)?);
        let mut coordinator = self.continuing(state, &events, loaded, opts.clone())?;
        coordinator.record(Event::RunResumed { at: self.clock.now_millis() })?;
        if let Some(reason) = stop {
            coordinator.stop(reason, false)?;
        }
        coordinator.restore_produced();
        coordinator.settle_interrupted()?;
        coordinator.journal.flush()?;
        Ok(PreparedRun { coordinator })
    }

    /// A queued run's turn: `RunDequeued` recorded and flushed (with `stop`, it is
    /// canceled instead of started: every task ends canceled).
    pub fn dequeue(&self, run: RunId, stop: Option<String>, opts: &RunOptions) -> Result<PreparedRun, SchedulerError> {
        let (events, state) = self.unfinished(run)?;
        if state.view().queued.is_none() {
            return Err(SchedulerError::Refused { run, message: "is not queued".into() });
        }
        let loaded = Arc::new(plan::reload(&self.sandbox, state.plan().ok_or_else(|| no_plan(run))?)?);
        let mut coordinator = self.continuing(state, &events, loaded, opts.clone())?;
        coordinator.record(Event::RunDequeued { at: self.clock.now_millis() })?;
        if let Some(reason) = stop {
            coordinator.stop(reason, false)?;
        }
        coordinator.journal.flush()?;
        Ok(PreparedRun { coordinator })
    }

    /// A run's log and state, refused if it has finished.
    fn unfinished(&self, run: RunId) -> Result<(Vec<Event>, RunState), SchedulerError> {
        let events = self.store.events(run)?;
        if events.is_empty() {
            return Err(SchedulerError::NoSuchRun(run));
        }
        let state = RunState::from_events(&events).map_err(|e| corrupt(run, e))?;
        if let Some(result) = state.view().result {
            return Err(SchedulerError::Refused { run, message: format!("already finished ({})", result.as_str()) });
        }
        Ok((events, state))
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
