//! A run's state: the one fold of its event log, and the decisions that state implies.
//!
//! [`RunState`] takes a run's events in order ([`RunState::apply`]) and answers what
//! follows from them: which tasks' upstreams have all ended and whether they run
//! (`run_if`), which queued tasks may start within the job's bound, whether a failed
//! attempt is retried and when, which for_each iterations are released and how a for_each
//! ends, what a cancel leaves behind (and which failure-handling tasks still run as its
//! cleanup), what a run whose process died must settle, and how the run ended. A repair
//! may record a new plan version ([`Event::PlanRecorded`]): the state then decides with it. Its decisions are events ([`RunState::decide`]): the coordinator records
//! them and folds them back in, so what the log says and what the state is never differ.
//!
//! Everything that shows or continues a run folds its log here: `runs show` and `--json`
//! ([`RunState::view`]), the live board, resume and repair. It must never do I/O, read a
//! clock (time comes in as `now`), or touch tokio: it is a value, unit-tested without a
//! runtime (`tests.rs`).

mod decide;
mod fold;
pub mod readiness;
mod repair;
pub mod result;
pub mod retry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::model::{CorruptLog, Event, Millis, PlannedTask, RunId, RunPlan, RunView, TaskGraph, TaskState, TaskView};
use crate::spec::{CommandSpec, RunIf, TaskKind, TaskSpec};

pub use decide::{INTERRUPTED, InPlace, NOT_RERUN, Settle};
pub use fold::reused_from;

/// A task's position in its run (top-level tasks first, then for_each iterations as they
/// are planned, and tasks a new plan version adds). Stable for the whole run: a repair
/// keeps every task where it is.
pub type TaskId = usize;

/// Why a run stops early, as its `CancelRequested` events say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub reason: String,
    /// The job's timeout (its tasks end `timed_out`), rather than a cancel.
    pub timed_out: bool,
    /// When the first request came: cleanup has the job's `cleanup_timeout` from here.
    pub at: Millis,
    /// A second request, or cleanup ran out of time: failure-handling tasks stop too.
    pub cleanup_stopped: bool,
}

/// A run folded from its event log, with what the scheduler needs to decide its next step.
#[derive(Debug, Clone)]
pub struct RunState {
    view: RunView,
    /// The plan in force (the latest version).
    plan: Option<Arc<RunPlan>>,
    /// The job parameters in force (the run's own, or its latest repair's).
    parameters: BTreeMap<String, String>,
    /// Parallel to `view.tasks`.
    tasks: Vec<Sched>,
    index: HashMap<String, TaskId>,
    /// Who the top-level tasks depend on, shared with every attempt's read grant.
    graph: Arc<TaskGraph>,
    stop: Option<Stop>,
    /// Queued tasks in the order they were queued, with the generation they were queued in
    /// (an entry whose generation is not the task's is stale).
    queue: VecDeque<(TaskId, u64)>,
    /// Tasks waiting for a retry, by when they may start.
    waiting: BTreeSet<(Millis, TaskId)>,
    /// Tasks whose readiness, or for_each progress, may have changed.
    dirty: Vec<TaskId>,
    /// Tasks not terminated, and sandboxed tasks running (so neither needs a scan).
    unended: usize,
    running_sandboxed: usize,
}

/// What the scheduler keeps of a task beside its view.
#[derive(Debug, Clone, Default)]
struct Sched {
    /// `None` when the run recorded no plan (nothing can be decided for it).
    spec: Option<Arc<TaskSpec>>,
    /// The for_each task this is an iteration of.
    parent: Option<TaskId>,
    /// A for_each iteration's input.
    input: Option<String>,
    /// Top-level tasks that depend on this one.
    dependents: Vec<TaskId>,
    /// A for_each task's iterations, in order.
    iterations: Vec<TaskId>,
    /// The number the next attempt gets.
    next_attempt: u32,
    /// Attempts made before the task's current life (a repair starts a new one).
    life: usize,
    /// Which time the task was queued (see `RunState::queue`).
    queued: u64,
    /// A for_each task whose iterations are planned (its inputs rendered).
    planned: bool,
    /// An iteration a repair named: it runs again even if it succeeded.
    rerun: bool,
}

impl RunState {
    /// Fold a whole event log.
    pub fn from_events(events: &[Event]) -> Result<RunState, CorruptLog> {
        let mut iter = events.iter();
        let mut state = match iter.next() {
            Some(first @ Event::RunCreated { .. }) => RunState::created(first)?,
            Some(other) => return Err(CorruptLog(format!("first event is {other:?}, not run_created"))),
            None => return Err(CorruptLog("empty event log".into())),
        };
        for event in iter {
            state.apply(event)?;
        }
        Ok(state)
    }

    /// What `runs show` and `--json` print.
    pub fn view(&self) -> &RunView {
        &self.view
    }

    pub fn into_view(self) -> RunView {
        self.view
    }

    pub fn run_id(&self) -> RunId {
        self.view.run_id
    }

    /// The plan in force: the one the run started with, or the one its latest repair
    /// recorded (absent from runs recorded without one).
    pub fn plan(&self) -> Option<&Arc<RunPlan>> {
        self.plan.as_ref()
    }

    /// The version of the plan in force (1: the one the run started with).
    pub fn plan_version(&self) -> u32 {
        self.view.plans.last().map_or(1, |p| p.version)
    }

    /// The job parameters in force: the run's own, or its latest repair's.
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.parameters
    }

    /// Why the run is stopping, once something asked it to.
    pub fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// Whether the run has its result.
    pub fn finished(&self) -> bool {
        self.view.result.is_some()
    }

    /// Whether something changed that [`RunState::decide`] has not looked at yet.
    pub fn has_pending_decisions(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn id_of(&self, key: &str) -> Option<TaskId> {
        self.index.get(key).copied()
    }

    /// Task `id`'s view.
    pub fn task(&self, id: TaskId) -> &TaskView {
        &self.view.tasks[id]
    }

    /// Task `id`'s spec (a for_each iteration's is made from its template).
    pub fn spec(&self, id: TaskId) -> Option<&TaskSpec> {
        self.tasks[id].spec.as_deref()
    }

    /// Task `id`'s spec, shared: what an attempt holds on to without copying it.
    pub fn spec_shared(&self, id: TaskId) -> Option<Arc<TaskSpec>> {
        self.tasks[id].spec.clone()
    }

    /// The for_each task `id` is an iteration of.
    pub fn parent(&self, id: TaskId) -> Option<TaskId> {
        self.tasks[id].parent
    }

    /// A for_each iteration's input.
    pub fn input(&self, id: TaskId) -> Option<&str> {
        self.tasks[id].input.as_deref()
    }

    /// The number task `id`'s next attempt gets.
    pub fn next_attempt(&self, id: TaskId) -> u32 {
        self.tasks[id].next_attempt
    }

    /// The attempts of task `id` since its last repair (all of them if never repaired).
    pub fn current_attempts(&self, id: TaskId) -> &[crate::model::AttemptView] {
        let attempts = &self.view.tasks[id].attempts;
        &attempts[self.tasks[id].life.min(attempts.len())..]
    }

    /// The run's top-level task graph: task `id` may read the values of the tasks its
    /// [`RunState::top_key`] depends on in it, directly or transitively.
    pub fn graph(&self) -> &Arc<TaskGraph> {
        &self.graph
    }

    /// Task `id`'s key in the graph: its own, or an iteration's for_each's.
    pub fn top_key(&self, id: TaskId) -> &str {
        &self.view.tasks[self.tasks[id].parent.unwrap_or(id)].key
    }

    /// Rebuild the graph from the top-level tasks' dependencies (at creation and when a
    /// plan version changes them).
    fn rebuild_graph(&mut self) {
        let top = self.view.tasks.iter().zip(&self.tasks).filter(|(_, s)| s.parent.is_none());
        self.graph =
            Arc::new(TaskGraph::new(top.map(|(t, _)| (t.key.as_str(), t.depends_on.iter().map(String::as_str)))));
    }

    /// The keys task `id` depends on directly (an iteration: none of its own).
    pub fn upstream_keys(&self, id: TaskId) -> impl Iterator<Item = &str> {
        self.view.tasks[id].depends_on.iter().map(String::as_str)
    }

    /// Whether the task runs in a sandbox (component and command tasks, iterations).
    fn is_sandboxed(&self, id: TaskId) -> bool {
        matches!(self.spec(id).map(|s| &s.kind), Some(TaskKind::Component { .. } | TaskKind::Command(_)))
    }

    /// Whether task `id` handles failure (`run_if` all_done, at_least_one_failed or
    /// all_failed; an iteration: its for_each does): it still runs after a cancel or the
    /// job's timeout, as the run's cleanup, until a second cancel or `cleanup_timeout`.
    pub fn is_cleanup(&self, id: TaskId) -> bool {
        let top = self.tasks[id].parent.unwrap_or(id);
        self.spec(top).is_some_and(|s| matches!(s.run_if, RunIf::AllDone | RunIf::AtLeastOneFailed | RunIf::AllFailed))
    }

    /// Whether task `id` may run now as far as a stop is concerned: nothing stops the run,
    /// or it is cleanup and cleanup goes on.
    fn may_run(&self, id: TaskId) -> bool {
        match &self.stop {
            None => true,
            Some(stop) => !stop.cleanup_stopped && self.is_cleanup(id),
        }
    }

    fn ended(&self, id: TaskId) -> bool {
        self.view.tasks[id].state == TaskState::Terminated
    }
}

/// The blake3 (hex) of a plan: what a plan version is known by.
pub fn plan_hash(plan: &RunPlan) -> String {
    let bytes = serde_json::to_vec(plan).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

/// A plan's top-level tasks as the run's log lists them: key, component (or what the task
/// does), the component's blake3, upstream keys.
pub fn planned_tasks(plan: &RunPlan) -> Vec<PlannedTask> {
    plan.job.tasks.iter().map(|t| planned_task(plan, t)).collect()
}

fn planned_task(plan: &RunPlan, t: &TaskSpec) -> PlannedTask {
    let hash_of = |component: &str| plan.components.get(component).map(|c| c.hash.clone()).unwrap_or_default();
    let (component, component_hash) = match &t.kind {
        TaskKind::Component { component } | TaskKind::Command(CommandSpec { component, .. }) => {
            (component.clone(), hash_of(component))
        }
        TaskKind::ForEach { template, .. } => match &template.kind {
            TaskKind::RunJob { job, .. } => (format!("(run_job {job})"), String::new()),
            _ => {
                let component = template.component().unwrap_or_default();
                (component.to_string(), hash_of(component))
            }
        },
        TaskKind::Condition { .. } => ("(condition)".to_string(), String::new()),
        TaskKind::RunJob { job, .. } => (format!("(run_job {job})"), String::new()),
    };
    PlannedTask {
        key: t.key.clone(),
        component,
        component_hash,
        depends_on: t.upstream_keys().map(str::to_string).collect(),
    }
}
