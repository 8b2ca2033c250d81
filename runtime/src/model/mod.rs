//! The vocabulary of runs: states, results, events and the views derived from them.
//!
//! Owns the data types every other module speaks (a run's event log, a task's
//! result, an attempt's record, the views `runs show` prints). It must never do
//! I/O or hold logic: the store persists these types, the scheduler produces them,
//! [`crate::state`] folds them, the CLI prints them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod graph;
mod notice;
mod quality;
mod trigger;
mod view;
pub use crate::spec::iteration_key;
pub use graph::TaskGraph;
pub use notice::{DeliveryState, NotificationView};
pub use quality::ExpectationResult;
pub use trigger::{TriggerContext, TriggerFile, TriggerTable};
pub use view::{AttemptView, CorruptLog, PlanView, RepairView, ReusedFrom, RunStatus, RunView, TaskView};

use serde::{Deserialize, Serialize};

/// A run's id: a small, monotonically increasing number, like Databricks run ids.
pub type RunId = u64;

/// Milliseconds since the Unix epoch; what every record stores for a time.
pub type Millis = u64;

/// The time source. Injected so time-dependent logic is testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    fn now_millis(&self) -> Millis {
        self.now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as Millis
    }
}

/// What a runtime reports as it works, for metrics: every method is told about one thing
/// that happened and must return at once (no I/O that can block).
pub trait Telemetry: Send + Sync {
    /// An attempt ended (recorded): its result and the time it spent in the sandbox.
    fn attempt_finished(&self, _result: TaskResult, _elapsed: Duration) {}
    /// A run ended (recorded).
    fn run_finished(&self, _result: RunResult) {}
    /// A sandbox was instantiated: how long instantiation took.
    fn instantiated(&self, _took: Duration) {}
    /// A sandbox slot went to `workspace` after waiting `waited` in its line.
    fn slot_granted(&self, _workspace: &str, _waited: Duration) {}
    /// A trigger of kind `kind` (`schedule`, `webhook`, …) started a run.
    fn trigger_fired(&self, _kind: &str) {}
    /// `count` firings of a trigger were missed (down, or passed over by catch-up).
    fn trigger_missed(&self, _kind: &str, _count: u64) {}
    /// `count` firings of a trigger were skipped (paused, or daylight saving).
    fn trigger_skipped(&self, _kind: &str, _count: u64) {}
    /// A file-arrival trigger could not list its location (unreachable, refused).
    fn trigger_listing_failed(&self, _kind: &str) {}
    /// A production expectation was checked (`on_failure`: `warn`, `fail` or `block`).
    fn expectation_checked(&self, _on_failure: &str, _success: bool) {}
}

/// Telemetry that keeps nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {}

/// The `SystemTime` of a stored time.
pub fn time_of(millis: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How a terminated task ended. Databricks' vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    Success,
    Failed,
    TimedOut,
    Canceled,
    Excluded,
    UpstreamFailed,
    UpstreamCanceled,
    /// The process running the attempt died (not the task's failure): the task runs again
    /// when the run resumes, unless it says `rerun_on_resume = false`.
    Interrupted,
    /// The attempt ran, but an expectation with `on_failure = "fail"` did not hold on its
    /// `/out`: a data-quality failure, not a technical one (never retried).
    QualityFailed,
}

impl TaskResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Success => "success",
            TaskResult::Failed => "failed",
            TaskResult::TimedOut => "timed_out",
            TaskResult::Canceled => "canceled",
            TaskResult::Excluded => "excluded",
            TaskResult::UpstreamFailed => "upstream_failed",
            TaskResult::UpstreamCanceled => "upstream_canceled",
            TaskResult::Interrupted => "interrupted",
            TaskResult::QualityFailed => "quality_failed",
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Blocked,
    Queued,
    Running,
    WaitingForRetry,
    Terminated,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Blocked => "blocked",
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::WaitingForRetry => "waiting_for_retry",
            TaskState::Terminated => "terminated",
        }
    }
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    Success,
    SuccessWithFailures,
    Failed,
    TimedOut,
    Canceled,
    /// The run never started: its job had `max_concurrent_runs` active runs and does not
    /// queue (Databricks' `SKIPPED` with `MAXIMUM_CONCURRENT_RUNS_REACHED`).
    Skipped,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::SuccessWithFailures => "success_with_failures",
            RunResult::Failed => "failed",
            RunResult::TimedOut => "timed_out",
            RunResult::Canceled => "canceled",
            RunResult::Skipped => "skipped",
        }
    }
    pub fn is_success(self) -> bool {
        matches!(self, RunResult::Success | RunResult::SuccessWithFailures)
    }
}

/// One task as planned when the run was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTask {
    pub key: String,
    /// Name of the component in the bundle (or the file name for `sluice task run`).
    pub component: String,
    /// blake3 of the component's bytes, hex.
    pub component_hash: String,
    pub depends_on: Vec<String>,
}

/// A component as the run pinned it: where it was loaded from and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedComponent {
    pub path: std::path::PathBuf,
    /// blake3 of the bytes, hex.
    pub hash: String,
}

/// The job exactly as the run started it: enough to resume or repair the run
/// after a crash even if the bundle file has changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    pub bundle_root: std::path::PathBuf,
    /// The bundle's name (`{{ job.id }}` is `<bundle>.<job>`).
    #[serde(default)]
    pub bundle: String,
    pub job: crate::spec::JobSpec,
    /// The other jobs of the bundle that `run_job` tasks may start.
    #[serde(default)]
    pub jobs: BTreeMap<String, crate::spec::JobSpec>,
    pub components: BTreeMap<String, PinnedComponent>,
    /// The run that started this one through a `run_job` task, and that task.
    #[serde(default)]
    pub parent: Option<(RunId, String)>,
    /// Who started the run (the CLI's principal; a child run's is its parent's):
    /// secret reveals need this principal's read permission, also on resume and repair.
    #[serde(default)]
    pub principal: String,
    /// The workspace whose secret scopes the run reads.
    #[serde(default = "default_workspace")]
    pub workspace: String,
    /// The target's default limits when the run started (`[targets.T] limits`).
    #[serde(default)]
    pub target_limits: crate::spec::Limits,
    /// The job's stable id in its workspace (the API's `job_id`), when a run manager
    /// started the run; child runs and single components have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// The trigger firing that started the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerContext>,
}

pub(crate) fn default_workspace() -> String {
    "default".into()
}

pub(crate) fn first_version() -> u32 {
    1
}

/// Everything that happens to a run, in order. The run's current view is the
/// fold of these (see [`crate::state::RunState`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunCreated {
        run_id: RunId,
        job: String,
        /// The bundle directory, or the component path for a bundle-less run.
        source: String,
        target: String,
        parameters: BTreeMap<String, String>,
        tasks: Vec<PlannedTask>,
        at: Millis,
        /// Absent for bundle-less runs (`sluice task run`).
        #[serde(default)]
        plan: Option<Box<RunPlan>>,
    },
    /// The task's upstreams allow it to run; it waits for a free slot.
    TaskQueued {
        task: String,
        at: Millis,
    },
    AttemptStarted {
        task: String,
        attempt: u32,
        at: Millis,
    },
    AttemptFinished {
        task: String,
        attempt: u32,
        at: Millis,
        result: TaskResult,
        /// The task's JSON output on success.
        output: Option<String>,
        /// Why it failed, for every result but success.
        error: Option<String>,
        /// Captured stdout/stderr, possibly truncated.
        log: String,
        log_truncated: bool,
        /// Time spent in the sandbox (instantiate + run), in microseconds.
        #[serde(default)]
        elapsed_us: u64,
        /// A condition task's outcome.
        #[serde(default)]
        outcome: Option<bool>,
        /// Content-hashed reruns: the attempt's cache key, where its result was
        /// reused from (`RUN/TASK`; nothing ran), and its `/out` files' manifest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<Box<AttemptCache>>,
        /// Why it failed, as a short code (`transient`, `permanent`, `trap`, `timed_out`,
        /// `interrupted`, …): what `{{ tasks.KEY.error_code }}` reads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// The attempt failed in a retryable way; the next one starts after a delay.
    RetryScheduled {
        task: String,
        next_attempt: u32,
        /// When the next attempt may start.
        not_before: Millis,
        at: Millis,
    },
    /// A `for_each` task's inputs were resolved; iteration `i` is task `KEY[i]`.
    IterationsPlanned {
        task: String,
        inputs: Vec<String>,
        at: Millis,
    },
    /// A `run_job` task started a child run.
    ChildRunStarted {
        task: String,
        child: RunId,
        at: Millis,
    },
    /// Someone asked for the run to stop (or the job's timeout did). Failure-handling tasks
    /// (cleanup) still run; a second request (or the job's `cleanup_timeout`) stops them too.
    CancelRequested {
        reason: String,
        /// The job timed out: its tasks and the run end `timed_out`, not `canceled`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        timed_out: bool,
        at: Millis,
        /// A second cancel, or cleanup ran out of time: cleanup stops too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        stop_cleanup: bool,
    },
    /// The run waits for its turn: its job has `max_concurrent_runs` active runs. Nothing
    /// of it starts until `RunDequeued`; a process that dies leaves it queued.
    RunQueued {
        reason: String,
        at: Millis,
    },
    /// A queued run's turn came: it starts now (its job's timeout counts from here).
    RunDequeued {
        at: Millis,
    },
    /// The run was picked up again after the process running it died.
    RunResumed {
        at: Millis,
    },
    /// A repair picked up a changed bundle: the plan it and what follows run with. The
    /// run's first plan (version 1) is the one in `RunCreated`.
    PlanRecorded {
        version: u32,
        /// blake3 of the plan (see `RunState::plan_hash`).
        hash: String,
        /// What changed since the plan in force before: components by blake3, task specs.
        changes: Vec<String>,
        plan: Box<RunPlan>,
        at: Millis,
    },
    /// A finished run is being repaired: these tasks run again (a for_each's iterations
    /// that succeeded keep their results unless named, `KEY[i]`).
    RepairStarted {
        repair: u32,
        tasks: Vec<String>,
        /// Job parameters in force for the repair (after `--param` overrides).
        parameters: BTreeMap<String, String>,
        at: Millis,
        /// Who started the repair.
        #[serde(default)]
        by: String,
        /// The plan version it runs with.
        #[serde(default = "first_version")]
        plan_version: u32,
        /// `--pinned`: the plan in force, without reading the bundle again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pinned: bool,
    },
    /// A task's production expectations were checked on the `/out` of an attempt that
    /// succeeded (recorded just before the attempt's `AttemptFinished`).
    QualityChecked {
        task: String,
        attempt: u32,
        results: Vec<ExpectationResult>,
        at: Millis,
    },
    /// A task that never ran (its upstream failed, it was excluded or canceled).
    TaskSkipped {
        task: String,
        result: TaskResult,
        reason: String,
        at: Millis,
    },
    RunFinished {
        result: RunResult,
        at: Millis,
    },
}

/// What content-hashed reruns recorded about an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttemptCache {
    /// The cache key (blake3 hex) of the attempt's inputs; `None` when the task is never cached.
    pub key: Option<String>,
    /// `RUN/TASK` whose result this attempt reused instead of running.
    pub reused_from: Option<String>,
    /// The attempt of `reused_from` that produced the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_attempt: Option<u32>,
    /// The blob holding the manifest of the files the task wrote under `/out`.
    pub artifacts: Option<String>,
    /// Why the task is never reused (network access, rw mounts, `cache = false`).
    pub not_cached: Option<String>,
}

/// The small per-run record listings read without folding the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub job: String,
    pub source: String,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    /// `None` while the run is in flight.
    pub result: Option<RunResult>,
    /// The tenant namespace the run belongs to; other workspaces never see it.
    #[serde(default = "default_workspace")]
    pub workspace: String,
    /// The job's stable id (see [`RunPlan::job_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// Whether a process is running it, as the state directory's owner sees it (never
    /// recorded: set when runs are listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
}
