//! The vocabulary of runs: states, results, events and the views derived from them.
//!
//! Owns the data types every other module speaks (a run's event log, a task's
//! result, an attempt's record) and the pure fold that turns a run's event log
//! into its current view. It must never do I/O: the store persists these types,
//! the scheduler produces them, the CLI prints them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A run's id: a small, monotonically increasing number, like Databricks run ids.
pub type RunId = u64;

/// Milliseconds since the Unix epoch; what every record stores for a time.
pub type Millis = u64;

/// The time source. Injected so time-dependent logic is testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    fn now_millis(&self) -> Millis {
        self.now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as Millis
    }
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
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::SuccessWithFailures => "success_with_failures",
            RunResult::Failed => "failed",
            RunResult::TimedOut => "timed_out",
            RunResult::Canceled => "canceled",
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

/// Everything that happens to a run, in order. The run's current view is the
/// fold of these (see [`RunView::from_events`]).
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
}

/// One attempt of one task, as derived from the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub result: Option<TaskResult>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub log: String,
    pub log_truncated: bool,
    /// Time spent in the sandbox (instantiate + run), in microseconds.
    pub elapsed_us: u64,
}

impl AttemptView {
    /// How long the attempt ran: the sandbox's own measure when recorded,
    /// else the difference of its start and end stamps.
    pub fn duration(&self) -> Option<Duration> {
        let finished = self.finished_at?;
        if self.elapsed_us > 0 {
            return Some(Duration::from_micros(self.elapsed_us));
        }
        Some(Duration::from_millis(finished.saturating_sub(self.started_at)))
    }
}

/// One task of a run, as derived from the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub key: String,
    pub component: String,
    pub component_hash: String,
    pub depends_on: Vec<String>,
    pub state: TaskState,
    pub result: Option<TaskResult>,
    /// Why the task was skipped, when it never ran.
    pub skipped_reason: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// A run's current view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run_id: RunId,
    pub job: String,
    pub source: String,
    pub target: String,
    pub parameters: BTreeMap<String, String>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub result: Option<RunResult>,
    pub tasks: Vec<TaskView>,
}

/// The event log was not a valid history (it does not start with `RunCreated`,
/// or names a task the run does not have).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt event log: {0}")]
pub struct CorruptLog(pub String);

impl RunView {
    /// Fold a run's event log into its current view.
    pub fn from_events(events: &[Event]) -> Result<RunView, CorruptLog> {
        let mut iter = events.iter();
        let mut view = match iter.next() {
            Some(Event::RunCreated { run_id, job, source, target, parameters, tasks, at }) => RunView {
                run_id: *run_id,
                job: job.clone(),
                source: source.clone(),
                target: target.clone(),
                parameters: parameters.clone(),
                created_at: *at,
                finished_at: None,
                result: None,
                tasks: tasks
                    .iter()
                    .map(|t| TaskView {
                        key: t.key.clone(),
                        component: t.component.clone(),
                        component_hash: t.component_hash.clone(),
                        depends_on: t.depends_on.clone(),
                        state: if t.depends_on.is_empty() { TaskState::Pending } else { TaskState::Blocked },
                        result: None,
                        skipped_reason: None,
                        attempts: Vec::new(),
                    })
                    .collect(),
            },
            Some(other) => return Err(CorruptLog(format!("first event is {other:?}, not run_created"))),
            None => return Err(CorruptLog("empty event log".into())),
        };
        for event in iter {
            match event {
                Event::RunCreated { .. } => return Err(CorruptLog("second run_created".into())),
                Event::AttemptStarted { task, attempt, at } => {
                    let t = view.task_mut(task)?;
                    t.state = TaskState::Running;
                    t.attempts.push(AttemptView {
                        attempt: *attempt,
                        started_at: *at,
                        finished_at: None,
                        result: None,
                        output: None,
                        error: None,
                        log: String::new(),
                        log_truncated: false,
                        elapsed_us: 0,
                    });
                }
                Event::AttemptFinished { task, attempt, at, result, output, error, log, log_truncated, elapsed_us } => {
                    let t = view.task_mut(task)?;
                    let a = t
                        .attempts
                        .iter_mut()
                        .find(|a| a.attempt == *attempt)
                        .ok_or_else(|| CorruptLog(format!("task `{task}` attempt {attempt} finished but never started")))?;
                    a.finished_at = Some(*at);
                    a.result = Some(*result);
                    a.output = output.clone();
                    a.error = error.clone();
                    a.log = log.clone();
                    a.log_truncated = *log_truncated;
                    a.elapsed_us = *elapsed_us;
                    t.state = TaskState::Terminated;
                    t.result = Some(*result);
                }
                Event::TaskSkipped { task, result, reason, .. } => {
                    let t = view.task_mut(task)?;
                    t.state = TaskState::Terminated;
                    t.result = Some(*result);
                    t.skipped_reason = Some(reason.clone());
                }
                Event::RunFinished { result, at } => {
                    view.result = Some(*result);
                    view.finished_at = Some(*at);
                }
            }
        }
        Ok(view)
    }

    fn task_mut(&mut self, key: &str) -> Result<&mut TaskView, CorruptLog> {
        self.tasks
            .iter_mut()
            .find(|t| t.key == key)
            .ok_or_else(|| CorruptLog(format!("event names unknown task `{key}`")))
    }

    pub fn task(&self, key: &str) -> Option<&TaskView> {
        self.tasks.iter().find(|t| t.key == key)
    }

    /// The summary a listing shows for this run.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id,
            job: self.job.clone(),
            source: self.source.clone(),
            created_at: self.created_at,
            finished_at: self.finished_at,
            result: self.result,
        }
    }
}
