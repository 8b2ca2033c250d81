//! The views of a run: what `runs show` and `--json` print. Folded from the run's event
//! log by [`crate::state::RunState`]. Plain data: no I/O, no logic beyond reading it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Millis, RunId, RunResult, RunSummary, TaskResult, TaskState};

/// One attempt of one task.
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
    /// Cache key, reuse and artifacts of the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<super::AttemptCache>,
    /// Why it failed, as a short code (see `Event::AttemptFinished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The task's production expectations on this attempt's `/out`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<super::ExpectationResult>,
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

/// One task of a run (for_each iterations are tasks `KEY[i]` with a `parent`).
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
    /// A condition task's outcome.
    pub outcome: Option<bool>,
    /// The for_each task this is an iteration of.
    pub parent: Option<String>,
    /// The run a `run_job` task started.
    pub child_run: Option<RunId>,
    /// When a task waiting for retry may start its next attempt.
    pub retry_not_before: Option<Millis>,
    /// Its result was reused from an earlier attempt (nothing ran): which one.
    #[serde(default)]
    pub reused_from: Option<ReusedFrom>,
}

/// The attempt a reused result came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReusedFrom {
    pub run: RunId,
    pub task: String,
    /// `None` for results stored before attempts were recorded with them.
    pub attempt: Option<u32>,
}

/// One version of a run's plan: the first is the plan the run started with; each repair
/// that picked up a changed bundle adds one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub version: u32,
    /// blake3 of the plan.
    pub hash: String,
    pub at: Millis,
    /// What changed from the version before (empty for the first).
    pub changes: Vec<String>,
}

/// One repair of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairView {
    pub repair: u32,
    pub tasks: Vec<String>,
    pub at: Millis,
    /// Who started it.
    pub by: String,
    /// The job parameters it ran with.
    pub parameters: BTreeMap<String, String>,
    /// The plan version it ran with.
    pub plan_version: u32,
    /// Repaired with `--pinned` (the plan in force, the bundle not read again).
    pub pinned: bool,
}

/// Where a run is, as listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// It waits for its turn (`max_concurrent_runs`).
    Queued,
    /// A process is running it.
    Running,
    /// Unfinished, and no process is running it (the one that was died): `runs resume`
    /// (or the next `sluice run`) continues it.
    Interrupted,
    /// It has its result.
    Finished,
}

impl RunStatus {
    /// The status of a run with `result`, `live` when a process is running it (or holds
    /// it in its queue), `queued` while it waits for its turn.
    pub fn of(result: Option<RunResult>, live: bool, queued: bool) -> RunStatus {
        match (result, live) {
            (Some(_), _) => RunStatus::Finished,
            (None, true) if queued => RunStatus::Queued,
            (None, true) => RunStatus::Running,
            (None, false) => RunStatus::Interrupted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Finished => "finished",
        }
    }
}

/// A run's current view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run_id: RunId,
    pub job: String,
    pub source: String,
    pub target: String,
    /// The job parameters the run started with (each repair records its own).
    pub parameters: BTreeMap<String, String>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
    pub result: Option<RunResult>,
    pub tasks: Vec<TaskView>,
    /// The versions of the run's plan, first the one it started with.
    #[serde(default)]
    pub plans: Vec<PlanView>,
    pub repairs: Vec<RepairView>,
    /// How many times the run was resumed after its process died.
    pub resumed: u32,
    pub cancel_requested: bool,
    /// The tenant namespace the run belongs to.
    pub workspace: String,
    /// The job's stable id, when a run manager started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// Why the run waits for its turn (`max_concurrent_runs`), while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<String>,
    /// When a queued run started (its job's timeout counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequeued_at: Option<Millis>,
    /// Whether a process is running it, as the state directory's owner sees it (never
    /// recorded: set when the run is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Its notifications and how their delivery stands (never recorded in the log: set
    /// when the run is shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<super::NotificationView>,
}

/// The event log was not a valid history.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt event log: {0}")]
pub struct CorruptLog(pub String);

impl RunView {
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
            workspace: self.workspace.clone(),
            job_id: self.job_id,
            status: None,
        }
    }
}
