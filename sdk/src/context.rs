//! [`Context`]: who is running.

use serde::{Deserialize, Serialize};

/// Who is running; handed to [`crate::Task::run`] on every attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Name of the job this task belongs to (`task` for a bundle-less run).
    pub job: String,
    /// The run's id.
    pub run_id: String,
    /// The task's key inside its job.
    pub task_key: String,
    /// 0 for the first attempt, 1 for the first retry, ...
    pub attempt: u32,
    /// The deployment target the run belongs to (`dev`, `test`, `prod`, ...).
    pub target: String,
}

impl Context {
    /// `true` on a retry (`attempt > 0`).
    pub fn is_retry(&self) -> bool {
        self.attempt > 0
    }
}
