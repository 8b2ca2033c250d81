//! The live progress board: scheduler events folded into one line per task (`frame`
//! draws it).
//!
//! Owns what is known of a task as events arrive: state, result, attempts and their
//! limit, start and end, the first line of its error, for_each iterations, child run.
//! It is pure: it must never write to the terminal (`progress` does), never touch the
//! store, and never decide anything about a run — it only mirrors what events said.
//! It sees only the events of this process: a resumed or repaired run shows the tasks
//! its new events name.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::style::{clean, first_line};
use crate::model::{Event, Millis, RunId, RunResult, TaskResult, TaskState};
use crate::spec::{RetryPolicy, TaskKind};
use crate::util::{human_duration, stopwatch};

/// How many attempts a task may make, as far as the run's plan says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MaxAttempts {
    /// The plan is not known (a run resumed by this process).
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

/// One task (or for_each iteration) as the events so far describe it.
#[derive(Debug, Clone)]
pub(super) struct TaskLine {
    pub key: String,
    /// The for_each task this is an iteration of.
    pub parent: Option<String>,
    pub state: TaskState,
    pub result: Option<TaskResult>,
    /// Attempts started.
    pub attempts: u32,
    pub max: MaxAttempts,
    pub first_start: Option<Millis>,
    pub end: Option<Millis>,
    /// The sandbox's own measure of the last attempt, when the task made exactly one.
    pub sandbox_us: u64,
    /// First line of the last error, or why the task was skipped.
    pub detail: Option<String>,
    pub retry_at: Option<Millis>,
    pub child: Option<RunId>,
    pub outcome: Option<bool>,
}

impl TaskLine {
    fn new(key: String, parent: Option<String>, blocked: bool, max: MaxAttempts) -> TaskLine {
        let state = if blocked { TaskState::Blocked } else { TaskState::Pending };
        TaskLine {
            key,
            parent,
            state,
            result: None,
            attempts: 0,
            max,
            first_start: None,
            end: None,
            sandbox_us: 0,
            detail: None,
            retry_at: None,
            child: None,
            outcome: None,
        }
    }

    pub fn done(&self) -> bool {
        self.state == TaskState::Terminated
    }

    /// Time since the task first started: up to now while it is in flight.
    pub fn elapsed(&self, now: Millis) -> Option<String> {
        let start = self.first_start?;
        if self.done() && self.attempts == 1 && self.sandbox_us > 0 {
            return Some(human_duration(Duration::from_micros(self.sandbox_us)));
        }
        let end = if self.done() { self.end.unwrap_or(start) } else { now };
        Some(stopwatch(Duration::from_millis(end.saturating_sub(start))))
    }
}

/// One run as seen by this process.
#[derive(Debug, Clone)]
pub(super) struct RunBoard {
    pub run: RunId,
    pub job: Option<String>,
    /// The run and `run_job` task that started this run.
    pub parent: Option<(RunId, String)>,
    pub since: Option<Millis>,
    pub finished: Option<(RunResult, Millis)>,
    /// "resumed", "repair 1", "stopping: …", in the order they happened.
    pub notes: Vec<String>,
    pub lines: Vec<TaskLine>,
    /// Whether `RunCreated` was seen: the task list is complete.
    pub complete: bool,
    /// The longest top-level key.
    key_width: usize,
    /// for_each tasks whose iterations were planned in events seen here (their count is known).
    planned: HashSet<String>,
    index: HashMap<String, usize>,
    /// Attempt limits of each for_each task's iterations.
    iteration_max: HashMap<String, MaxAttempts>,
}

impl RunBoard {
    pub fn new(run: RunId) -> RunBoard {
        RunBoard {
            run,
            job: None,
            parent: None,
            since: None,
            finished: None,
            notes: Vec::new(),
            lines: Vec::new(),
            complete: false,
            key_width: 0,
            planned: HashSet::new(),
            index: HashMap::new(),
            iteration_max: HashMap::new(),
        }
    }

    pub fn line(&self, key: &str) -> Option<&TaskLine> {
        self.index.get(key).map(|&i| &self.lines[i])
    }

    /// Top-level tasks, in plan (topological) order.
    pub fn top(&self) -> impl Iterator<Item = &TaskLine> {
        self.lines.iter().filter(|l| l.parent.is_none())
    }

    /// (done, total, not successful) of a for_each task's iterations; the total is `None`
    /// when the iterations were planned before this process saw the run.
    pub fn iterations(&self, key: &str) -> (usize, Option<usize>, usize) {
        let its = self.lines.iter().filter(|l| l.parent.as_deref() == Some(key));
        let (d, t, f) = its.fold((0, 0, 0), |(d, t, f), l| {
            (d + l.done() as usize, t + 1, f + (l.done() && l.result != Some(TaskResult::Success)) as usize)
        });
        (d, (self.planned.contains(key) || t == 0).then_some(t), f)
    }

    /// The longest top-level key (what the plain format pads to).
    pub fn key_width(&self) -> usize {
        self.key_width
    }

    pub fn max_attempts(&self, key: &str) -> MaxAttempts {
        self.line(key).map_or(MaxAttempts::Unknown, |l| l.max)
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::RunCreated { job, tasks, at, plan, .. } => {
                self.job = Some(job.clone());
                self.since = Some(*at);
                self.complete = true;
                self.parent = plan.as_ref().and_then(|p| p.parent.clone());
                for t in tasks {
                    let spec = plan.as_ref().and_then(|p| p.job.task(&t.key));
                    let max = spec.map_or(MaxAttempts::Unknown, |s| MaxAttempts::of(s.retries.as_ref()));
                    if let Some(TaskKind::ForEach { template, .. }) = spec.map(|s| &s.kind) {
                        self.iteration_max.insert(t.key.clone(), MaxAttempts::of(template.retries.as_ref()));
                    }
                    self.push(TaskLine::new(t.key.clone(), None, !t.depends_on.is_empty(), max));
                }
            }
            Event::TaskQueued { task, .. } => self.task(task).state = TaskState::Queued,
            Event::AttemptStarted { task, attempt, at } => {
                let l = self.task(task);
                l.state = TaskState::Running;
                l.result = None;
                l.retry_at = None;
                l.attempts = l.attempts.max(attempt + 1);
                l.first_start.get_or_insert(*at);
                l.end = None;
            }
            Event::AttemptFinished { task, at, result, error, elapsed_us, outcome, .. } => {
                let l = self.task(task);
                l.state = TaskState::Terminated;
                l.result = Some(*result);
                l.end = Some(*at);
                l.sandbox_us = *elapsed_us;
                l.detail = error.as_deref().map(|e| clean(first_line(e)).into_owned());
                l.outcome = *outcome;
            }
            Event::RetryScheduled { task, not_before, .. } => {
                let l = self.task(task);
                l.state = TaskState::WaitingForRetry;
                l.result = None;
                l.retry_at = Some(*not_before);
            }
            Event::TaskSkipped { task, result, reason, at } => {
                let l = self.task(task);
                l.state = TaskState::Terminated;
                l.result = Some(*result);
                l.detail = Some(clean(first_line(reason)).into_owned());
                l.end = Some(*at);
            }
            Event::IterationsPlanned { task, inputs, .. } => {
                self.task(task).state = TaskState::Running;
                self.planned.insert(task.clone());
                let max = self.iteration_max.get(task).copied().unwrap_or(MaxAttempts::Unknown);
                for i in 0..inputs.len() {
                    let key = crate::model::iteration_key(task, i);
                    if !self.index.contains_key(&key) {
                        self.push(TaskLine::new(key, Some(task.clone()), false, max));
                    }
                }
            }
            Event::ChildRunStarted { task, child, .. } => {
                let l = self.task(task);
                l.state = TaskState::Running;
                l.child = Some(*child);
            }
            Event::CancelRequested { reason, .. } => {
                self.notes.push(format!("stopping: {}", clean(first_line(reason))))
            }
            Event::RunResumed { at } => {
                self.since.get_or_insert(*at);
                self.notes.push("resumed".into());
            }
            Event::RepairStarted { repair, tasks, at, .. } => {
                self.since = Some(*at);
                self.finished = None;
                self.notes.push(format!("repair {repair}"));
                self.lines.retain(|l| l.parent.as_ref().is_none_or(|p| !tasks.contains(p)));
                self.index = self.lines.iter().enumerate().map(|(i, l)| (l.key.clone(), i)).collect();
                for key in tasks {
                    let l = self.task(key);
                    *l = TaskLine { attempts: l.attempts, ..TaskLine::new(l.key.clone(), None, false, l.max) };
                }
            }
            Event::RunFinished { result, at } => self.finished = Some((*result, *at)),
        }
    }

    fn push(&mut self, line: TaskLine) {
        if line.parent.is_none() {
            self.key_width = self.key_width.max(line.key.chars().count());
        }
        self.index.insert(line.key.clone(), self.lines.len());
        self.lines.push(line);
    }

    /// The line of `key`, created on first mention (runs this process did not create).
    fn task(&mut self, key: &str) -> &mut TaskLine {
        if !self.index.contains_key(key) {
            let parent = key
                .strip_suffix(']')
                .and_then(|k| k.rsplit_once('['))
                .filter(|(_, i)| i.parse::<usize>().is_ok())
                .map(|(p, _)| p.to_string());
            if let Some(p) = &parent {
                self.task(p);
            }
            let max = parent.as_ref().and_then(|p| self.iteration_max.get(p)).copied().unwrap_or(MaxAttempts::Unknown);
            self.push(TaskLine::new(key.to_string(), parent, false, max));
        }
        let i = self.index[key];
        &mut self.lines[i]
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
        assert_eq!(b.iterations("each"), (2, Some(5), 1));
        assert_eq!(b.top().count(), 1, "iterations are not top-level lines");
    }

    #[test]
    fn a_resumed_run_shows_what_its_new_events_name() {
        let b = board(&[
            Event::RunResumed { at: 0 },
            Event::AttemptStarted { task: "each[3]".into(), attempt: 1, at: 0 },
            finished("each[3]", 1, 10, TaskResult::Success, None),
        ]);
        assert!(!b.complete);
        assert_eq!(b.iterations("each"), (1, None, 0), "the total is unknown");
        assert_eq!(b.top().map(|l| l.key.as_str()).collect::<Vec<_>>(), ["each"], "the iteration's parent gets a line");
    }
}
