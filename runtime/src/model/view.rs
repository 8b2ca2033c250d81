//! The views folded from a run's event log: what `runs show` and `--json` print
//! and what the scheduler resumes from. Pure: no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Event, Millis, RunId, RunResult, RunSummary, TaskResult, TaskState, iteration_key};

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
}

/// One repair of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairView {
    pub repair: u32,
    pub tasks: Vec<String>,
    pub at: Millis,
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
    pub repairs: Vec<RepairView>,
    /// How many times the run was resumed after its process died.
    pub resumed: u32,
    pub cancel_requested: bool,
    /// The tenant namespace the run belongs to.
    pub workspace: String,
    /// Task key → position, so folding a long log is not quadratic (not serialized).
    #[serde(skip)]
    index: FoldIndex,
}

/// A lookup cache that never makes two views differ.
#[derive(Debug, Clone, Default)]
struct FoldIndex(std::collections::HashMap<String, usize>);

impl PartialEq for FoldIndex {
    fn eq(&self, _: &FoldIndex) -> bool {
        true
    }
}

/// The event log was not a valid history.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt event log: {0}")]
pub struct CorruptLog(pub String);

fn initial_state(depends_on: &[String]) -> TaskState {
    if depends_on.is_empty() { TaskState::Pending } else { TaskState::Blocked }
}

impl RunView {
    /// Fold a run's event log into its current view.
    pub fn from_events(events: &[Event]) -> Result<RunView, CorruptLog> {
        let mut iter = events.iter();
        let mut view = match iter.next() {
            Some(Event::RunCreated { run_id, job, source, target, parameters, tasks, at, plan }) => RunView {
                workspace: plan.as_ref().map_or_else(super::default_workspace, |p| p.workspace.clone()),
                index: FoldIndex::default(),
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
                        state: initial_state(&t.depends_on),
                        result: None,
                        skipped_reason: None,
                        attempts: Vec::new(),
                        outcome: None,
                        parent: None,
                        child_run: None,
                        retry_not_before: None,
                    })
                    .collect(),
                repairs: Vec::new(),
                resumed: 0,
                cancel_requested: false,
            },
            Some(other) => return Err(CorruptLog(format!("first event is {other:?}, not run_created"))),
            None => return Err(CorruptLog("empty event log".into())),
        };
        for event in iter {
            view.apply(event)?;
        }
        Ok(view)
    }

    fn apply(&mut self, event: &Event) -> Result<(), CorruptLog> {
        match event {
            Event::RunCreated { .. } => return Err(CorruptLog("second run_created".into())),
            Event::TaskQueued { task, .. } => self.task_mut(task)?.state = TaskState::Queued,
            Event::AttemptStarted { task, attempt, at } => {
                let t = self.task_mut(task)?;
                t.state = TaskState::Running;
                t.result = None;
                t.retry_not_before = None;
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
                    cache: None,
                });
            }
            Event::AttemptFinished {
                task,
                attempt,
                at,
                result,
                output,
                error,
                log,
                log_truncated,
                elapsed_us,
                outcome,
                cache,
            } => {
                let t = self.task_mut(task)?;
                let a =
                    t.attempts.iter_mut().rev().find(|a| a.attempt == *attempt).ok_or_else(|| {
                        CorruptLog(format!("task `{task}` attempt {attempt} finished but never started"))
                    })?;
                a.finished_at = Some(*at);
                a.result = Some(*result);
                a.output = output.clone();
                a.error = error.clone();
                a.log = log.clone();
                a.log_truncated = *log_truncated;
                a.elapsed_us = *elapsed_us;
                a.cache = cache.as_deref().cloned();
                t.state = TaskState::Terminated;
                t.result = Some(*result);
                t.outcome = *outcome;
            }
            Event::RetryScheduled { task, not_before, .. } => {
                let t = self.task_mut(task)?;
                t.state = TaskState::WaitingForRetry;
                t.result = None;
                t.retry_not_before = Some(*not_before);
            }
            Event::TaskSkipped { task, result, reason, .. } => {
                let t = self.task_mut(task)?;
                t.state = TaskState::Terminated;
                t.result = Some(*result);
                t.skipped_reason = Some(reason.clone());
            }
            Event::IterationsPlanned { task, inputs, .. } => {
                let parent = self.task_mut(task)?;
                parent.state = TaskState::Running;
                let (component, hash) = (parent.component.clone(), parent.component_hash.clone());
                for i in 0..inputs.len() {
                    self.tasks.push(TaskView {
                        key: iteration_key(task, i),
                        component: component.clone(),
                        component_hash: hash.clone(),
                        depends_on: Vec::new(),
                        state: TaskState::Pending,
                        result: None,
                        skipped_reason: None,
                        attempts: Vec::new(),
                        outcome: None,
                        parent: Some(task.clone()),
                        child_run: None,
                        retry_not_before: None,
                    });
                }
            }
            Event::ChildRunStarted { task, child, .. } => {
                let t = self.task_mut(task)?;
                t.state = TaskState::Running;
                t.child_run = Some(*child);
            }
            Event::CancelRequested { .. } => self.cancel_requested = true,
            Event::RunResumed { .. } => self.resumed += 1,
            Event::RepairStarted { repair, tasks, parameters, at } => self.repair(*repair, tasks, parameters, *at)?,
            Event::RunFinished { result, at } => {
                self.result = Some(*result);
                self.finished_at = Some(*at);
            }
        }
        Ok(())
    }

    fn repair(
        &mut self,
        repair: u32,
        tasks: &[String],
        parameters: &BTreeMap<String, String>,
        at: Millis,
    ) -> Result<(), CorruptLog> {
        for key in tasks {
            self.task_mut(key)?;
        }
        self.tasks.retain(|t| t.parent.as_ref().is_none_or(|p| !tasks.contains(p)));
        for t in self.tasks.iter_mut().filter(|t| tasks.contains(&t.key)) {
            t.state = initial_state(&t.depends_on);
            t.result = None;
            t.skipped_reason = None;
            t.outcome = None;
            t.child_run = None;
            t.retry_not_before = None;
        }
        self.parameters = parameters.clone();
        self.result = None;
        self.finished_at = None;
        self.cancel_requested = false;
        self.repairs.push(RepairView { repair, tasks: tasks.to_vec(), at });
        Ok(())
    }

    fn task_mut(&mut self, key: &str) -> Result<&mut TaskView, CorruptLog> {
        let cached = self.index.0.get(key).copied().filter(|&i| self.tasks.get(i).is_some_and(|t| t.key == key));
        let i = match cached {
            Some(i) => i,
            None => {
                let i = self
                    .tasks
                    .iter()
                    .position(|t| t.key == key)
                    .ok_or_else(|| CorruptLog(format!("event names unknown task `{key}`")))?;
                if self.index.0.is_empty() || self.index.0.len() < self.tasks.len() {
                    self.index.0 = self.tasks.iter().enumerate().map(|(n, t)| (t.key.clone(), n)).collect();
                }
                self.index.0.insert(key.to_string(), i);
                i
            }
        };
        Ok(&mut self.tasks[i])
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
            workspace: self.workspace.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PlannedTask;

    fn created() -> Event {
        Event::RunCreated {
            run_id: 1,
            job: "j".into(),
            source: "s".into(),
            target: "dev".into(),
            parameters: BTreeMap::new(),
            tasks: vec![
                PlannedTask { key: "a".into(), component: "c".into(), component_hash: "h".into(), depends_on: vec![] },
                PlannedTask {
                    key: "b".into(),
                    component: "c".into(),
                    component_hash: "h".into(),
                    depends_on: vec!["a".into()],
                },
            ],
            at: 0,
            plan: None,
        }
    }

    fn finished(task: &str, attempt: u32, result: TaskResult) -> Event {
        Event::AttemptFinished {
            task: task.into(),
            attempt,
            at: 5,
            result,
            output: None,
            error: None,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            outcome: None,
            cache: None,
        }
    }

    #[test]
    fn retries_repairs_and_iterations_fold_into_the_view() {
        let events = vec![
            created(),
            Event::AttemptStarted { task: "a".into(), attempt: 0, at: 1 },
            finished("a", 0, TaskResult::Failed),
            Event::RetryScheduled { task: "a".into(), next_attempt: 1, not_before: 9, at: 5 },
        ];
        let v = RunView::from_events(&events).unwrap();
        assert_eq!(v.task("a").unwrap().state, TaskState::WaitingForRetry);
        assert_eq!(v.task("b").unwrap().state, TaskState::Blocked);

        let mut events = events;
        events.extend([
            Event::AttemptStarted { task: "a".into(), attempt: 1, at: 10 },
            finished("a", 1, TaskResult::Failed),
            Event::TaskSkipped { task: "b".into(), result: TaskResult::UpstreamFailed, reason: "x".into(), at: 11 },
            Event::RunFinished { result: RunResult::Failed, at: 12 },
            Event::RepairStarted {
                repair: 1,
                tasks: vec!["a".into(), "b".into()],
                parameters: BTreeMap::new(),
                at: 20,
            },
        ]);
        let v = RunView::from_events(&events).unwrap();
        assert_eq!(v.result, None);
        assert_eq!(v.task("a").unwrap().attempts.len(), 2, "attempts are kept across a repair");
        assert_eq!(v.task("b").unwrap().state, TaskState::Blocked);
        assert_eq!(v.repairs.len(), 1);

        events.push(Event::IterationsPlanned { task: "a".into(), inputs: vec!["1".into(), "2".into()], at: 21 });
        let v = RunView::from_events(&events).unwrap();
        assert_eq!(v.task("a[1]").unwrap().parent.as_deref(), Some("a"));
    }

    #[test]
    fn histories_that_cannot_happen_are_corrupt() {
        assert!(RunView::from_events(&[]).is_err());
        assert!(RunView::from_events(&[created(), finished("a", 0, TaskResult::Success)]).is_err());
        assert!(RunView::from_events(&[created(), Event::TaskQueued { task: "zz".into(), at: 0 }]).is_err());
    }
}
