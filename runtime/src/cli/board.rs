//! The live progress board's view of a run: one line per task, read off the run's
//! [`RunState`] (`frame` draws it).
//!
//! The board folds events with the same fold `runs show` and the scheduler use, so a line
//! says exactly what the run's log says: state, result, attempts and their limit, start
//! and end, the first line of its error, for_each iterations, child run. A run this
//! process continues (resume, repair, cancel) is shown its history first, so its board is
//! complete. It must never write to the terminal (`progress` does), never touch the store,
//! and never decide anything about a run. Beside the state it keeps only presentation:
//! notes ("resumed", "repair 1", "stopping: …") for what happened while it watched.

use std::time::Duration;

use super::style::{clean, first_line};
use crate::model::{Event, Millis, ReusedFrom, RunId, RunResult, TaskResult, TaskState, TaskView};
use crate::spec::RetryPolicy;
use crate::state::{RunState, TaskId};
use crate::util::{human_duration, stopwatch};

/// How many attempts a task may make, as far as the run's plan says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MaxAttempts {
    /// The plan is not known (a run recorded without one).
    Unknown,
    Upto(u32),
    Unlimited,
}

impl MaxAttempts {
    fn of(policy: Option<&RetryPolicy>) -> MaxAttempts {
        match policy {
            None => MaxAttempts::Upto(1),
            Some(p) => p.max.map_or(MaxAttempts::Unlimited, |m| MaxAttempts::Upto(m.saturating_add(1))),
        }
    }

    /// "2/4", "2/∞" or "2": the `n`th attempt (counted from 1).
    pub fn fraction(self, n: u32) -> String {
        match self {
            MaxAttempts::Upto(m) => format!("{n}/{m}"),
            MaxAttempts::Unlimited => format!("{n}/∞"),
            MaxAttempts::Unknown => n.to_string(),
        }
    }
}

/// One task (or for_each iteration) as the board shows it.
#[derive(Debug, Clone)]
pub(super) struct TaskLine {
    pub key: String,
    pub state: TaskState,
    pub result: Option<TaskResult>,
    /// Attempts started (numbering goes on across repairs).
    pub attempts: u32,
    pub max: MaxAttempts,
    /// When the task's current life (since its last repair) first started, and ended.
    pub first_start: Option<Millis>,
    pub end: Option<Millis>,
    /// The sandbox's own measure of the last attempt.
    pub sandbox_us: u64,
    /// First line of the last error, or why the task was skipped.
    pub detail: Option<String>,
    pub retry_at: Option<Millis>,
    pub child: Option<RunId>,
    pub outcome: Option<bool>,
    /// Its result was an earlier identical one (nothing ran): from where.
    pub reused: Option<ReusedFrom>,
}

impl TaskLine {
    fn of(state: &RunState, id: TaskId) -> TaskLine {
        let t: &TaskView = state.task(id);
        let life = state.current_attempts(id);
        let done = t.state == TaskState::Terminated;
        let last_ended = life.iter().rev().find(|a| a.finished_at.is_some());
        let error = last_ended.and_then(|a| a.error.as_deref());
        TaskLine {
            key: t.key.clone(),
            state: t.state,
            result: t.result,
            attempts: t.attempts.last().map_or(0, |a| a.attempt + 1),
            max: state.spec(id).map_or(MaxAttempts::Unknown, |s| MaxAttempts::of(s.retries.as_ref())),
            first_start: life.first().map(|a| a.started_at),
            end: if done { life.last().and_then(|a| a.finished_at) } else { None },
            sandbox_us: life.last().map_or(0, |a| a.elapsed_us),
            detail: t.skipped_reason.as_deref().or(error).map(|e| clean(first_line(e)).into_owned()),
            retry_at: t.retry_not_before,
            child: t.child_run,
            outcome: t.outcome,
            reused: t.reused_from.clone(),
        }
    }

    pub fn done(&self) -> bool {
        self.state == TaskState::Terminated
    }

    /// Time since the task first started: up to now while it is in flight (nothing for a
    /// reused result: nothing ran).
    pub fn elapsed(&self, now: Millis) -> Option<String> {
        if self.reused.is_some() {
            return None;
        }
        let start = self.first_start?;
        if self.done() && self.attempts == 1 && self.sandbox_us > 0 {
            return Some(human_duration(Duration::from_micros(self.sandbox_us)));
        }
        let end = if self.done() { self.end.unwrap_or(start) } else { now };
        Some(stopwatch(Duration::from_millis(end.saturating_sub(start))))
    }
}

/// One run as this process watches it.
#[derive(Debug, Clone)]
pub(super) struct RunBoard {
    pub run: RunId,
    /// `None` until the run's first event (or history) arrives.
    state: Option<RunState>,
    /// "resumed", "repair 1", "stopping: …", in the order they happened here.
    pub notes: Vec<String>,
    /// The longest top-level key, measured when the run's tasks are (re)planned: read on
    /// every event, so never recounted per event (a 10,000-task run would pay O(n²)).
    key_width: usize,
}

impl RunBoard {
    pub fn new(run: RunId) -> RunBoard {
        RunBoard { run, state: None, notes: Vec::new(), key_width: 0 }
    }

    /// The run's log so far, folded without notes: nothing in it is new.
    pub fn attach(&mut self, history: &[Event]) {
        self.state = RunState::from_events(history).ok();
        self.measure();
    }

    fn measure(&mut self) {
        let Some(state) = &self.state else { return };
        let top = state.view().tasks.iter().filter(|t| t.parent.is_none());
        self.key_width = top.map(|t| t.key.chars().count()).max().unwrap_or(0);
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::RunCreated { .. } => {
                self.state = RunState::from_events(std::slice::from_ref(event)).ok();
                self.measure();
            }
            other => {
                if let Some(state) = &mut self.state
                    && state.apply(other).is_err()
                {
                    self.state = None;
                }
                if let Event::PlanRecorded { .. } = other {
                    self.measure();
                }
            }
        }
        match event {
            Event::CancelRequested { reason, .. } => {
                self.notes.push(format!("stopping: {}", clean(first_line(reason))))
            }
            Event::RunResumed { .. } => self.notes.push("resumed".into()),
            Event::RepairStarted { repair, .. } => self.notes.push(format!("repair {repair}")),
            _ => {}
        }
    }

    pub fn job(&self) -> Option<&str> {
        self.state.as_ref().map(|s| s.view().job.as_str())
    }

    /// The run and `run_job` task that started this run.
    pub fn parent(&self) -> Option<&(RunId, String)> {
        self.state.as_ref()?.plan()?.parent.as_ref()
    }

    /// When the board's clock starts: the run's creation, or its latest repair.
    pub fn since(&self) -> Option<Millis> {
        let view = self.state.as_ref()?.view();
        Some(view.repairs.last().map_or(view.created_at, |r| r.at))
    }

    /// "3 executed, 2 reused" so far.
    pub fn work_done(&self) -> Option<String> {
        self.state.as_ref().map(|s| super::print::work_done(s.view()))
    }

    pub fn finished(&self) -> Option<(RunResult, Millis)> {
        let view = self.state.as_ref()?.view();
        Some((view.result?, view.finished_at?))
    }

    pub fn line(&self, key: &str) -> Option<TaskLine> {
        let state = self.state.as_ref()?;
        Some(TaskLine::of(state, state.id_of(key)?))
    }

    /// Top-level tasks, in plan (topological) order.
    pub fn top(&self) -> Vec<TaskLine> {
        let Some(state) = &self.state else { return Vec::new() };
        let top = (0..state.view().tasks.len()).filter(|&id| state.parent(id).is_none());
        top.map(|id| TaskLine::of(state, id)).collect()
    }

    /// (done, total, not successful) of a for_each task's iterations.
    pub fn iterations(&self, key: &str) -> (usize, usize, usize) {
        let Some(state) = &self.state else { return (0, 0, 0) };
        let its = state.view().tasks.iter().filter(|t| t.parent.as_deref() == Some(key));
        its.fold((0, 0, 0), |(d, t, f), l| {
            let done = l.state == TaskState::Terminated;
            (d + done as usize, t + 1, f + (done && l.result != Some(TaskResult::Success)) as usize)
        })
    }

    /// The longest top-level key (what the plain format pads to).
    pub fn key_width(&self) -> usize {
        self.key_width
    }

    pub fn max_attempts(&self, key: &str) -> MaxAttempts {
        self.line(key).map_or(MaxAttempts::Unknown, |l| l.max)
    }
}

/// Events for the tests of the board and its frame.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use crate::model::PlannedTask;

    pub(in crate::cli) fn created(tasks: &[(&str, &[&str])]) -> Event {
        let tasks = tasks
            .iter()
            .map(|(k, d)| PlannedTask {
                key: k.to_string(),
                component: "c".into(),
                component_hash: "h".into(),
                depends_on: d.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        Event::RunCreated {
            run_id: 1,
            job: "j".into(),
            source: "s".into(),
            target: "dev".into(),
            parameters: Default::default(),
            tasks,
            at: 0,
            plan: None,
        }
    }

    pub(in crate::cli) fn finished(
        task: &str,
        attempt: u32,
        at: Millis,
        result: TaskResult,
        error: Option<&str>,
    ) -> Event {
        Event::AttemptFinished {
            task: task.into(),
            attempt,
            at,
            result,
            output: None,
            error: error.map(str::to_string),
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            outcome: None,
            cache: None,
            error_code: None,
        }
    }

    pub(in crate::cli) fn board(events: &[Event]) -> RunBoard {
        let mut b = RunBoard::new(1);
        events.iter().for_each(|e| b.apply(e));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{board, created, finished};
    use super::*;

    #[test]
    fn attempts_show_the_plans_limit() {
        assert_eq!(MaxAttempts::Upto(4).fraction(2), "2/4");
        assert_eq!(MaxAttempts::Unlimited.fraction(3), "3/∞");
        assert_eq!(MaxAttempts::of(Some(&RetryPolicy::new(Some(3)))), MaxAttempts::Upto(4));
        assert_eq!(MaxAttempts::of(None), MaxAttempts::Upto(1));
    }

    #[test]
    fn for_each_tasks_count_their_iterations() {
        let b = board(&[
            created(&[("each", &[])]),
            Event::AttemptStarted { task: "each".into(), attempt: 0, at: 0 },
            Event::IterationsPlanned { task: "each".into(), inputs: vec!["x".into(); 5], at: 1 },
            Event::AttemptStarted { task: "each[0]".into(), attempt: 0, at: 1 },
            finished("each[0]", 0, 5, TaskResult::Success, None),
            Event::AttemptStarted { task: "each[1]".into(), attempt: 0, at: 1 },
            finished("each[1]", 0, 5, TaskResult::Failed, Some("boom")),
        ]);
        assert_eq!(b.iterations("each"), (2, 5, 1));
        assert_eq!(b.top().len(), 1, "iterations are not top-level lines");
    }

    #[test]
    fn a_continued_run_shows_its_whole_history_and_notes_only_what_happens_now() {
        let history = [
            created(&[("each", &[]), ("after", &["each"])]),
            Event::AttemptStarted { task: "each".into(), attempt: 0, at: 0 },
            Event::IterationsPlanned { task: "each".into(), inputs: vec!["x".into(); 4], at: 1 },
            Event::AttemptStarted { task: "each[3]".into(), attempt: 0, at: 1 },
        ];
        let mut b = RunBoard::new(1);
        b.attach(&history);
        b.apply(&Event::RunResumed { at: 50 });
        b.apply(&finished("each[3]", 0, 60, TaskResult::Success, None));
        assert_eq!(b.notes, ["resumed"]);
        assert_eq!(b.iterations("each"), (1, 4, 0), "the total is known from the history");
        let keys: Vec<String> = b.top().into_iter().map(|l| l.key).collect();
        assert_eq!(keys, ["each", "after"], "every task of the plan has its line");
        assert_eq!(b.since(), Some(0));
    }
}
