//! The decisions a run's state implies: readiness (`run_if`), a cancel's sweep, due
//! retries, for_each release and results, the run's result, which queued tasks may start,
//! whether a failed attempt is retried, and what a dead process left running.

use std::collections::HashSet;

use super::readiness::{self, Decision, Edge};
use super::{RunState, TaskId, result, retry};
use crate::model::{Event, Millis, RunId, RunResult, TaskResult, TaskState};
use crate::spec::{DEFAULT_CLEANUP_TIMEOUT, TaskKind};

/// Error of an attempt cut short by the death of its process; the task runs again.
pub const INTERRUPTED: &str = "interrupted: the process running this attempt died (not a failure of the task: it runs again, not counted as a retry)";
/// Error of such an attempt of a task with `rerun_on_resume = false`.
pub const NOT_RERUN: &str = "interrupted: the process running this attempt died; the task says \
    `rerun_on_resume = false`, so it does not run again by itself (repair the run to rerun it)";

/// What to do about a task a dead process left running.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Record this event.
    Record(Event),
    /// The task's child run goes on: resume it and wait for it.
    ResumeChild { task: TaskId, attempt: u32, child: RunId },
}

impl RunState {
    /// The events the state implies now, in order, for the caller to record and fold back
    /// in; empty when nothing follows until something happens (an attempt ends, time
    /// passes). Call again after folding them: one decision can lead to the next.
    pub fn decide(&mut self, now: Millis) -> Vec<Event> {
        if self.finished() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut decided = HashSet::new();
        match self.stop.clone() {
            Some(stop) => self.sweep(&stop.reason, now, &mut out, &mut decided),
            None => self.due_retries(now, &mut out, &mut decided),
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty {
            if decided.contains(&id) {
                continue;
            }
            if self.tasks[id].planned {
                self.for_each_progress(id, now, &mut out);
            } else if self.may_run(id) {
                out.extend(self.readiness(id, now));
            }
        }
        if out.is_empty() && self.unended == 0 {
            out.push(Event::RunFinished { result: self.result(), at: now });
        }
        out
    }

    /// A cancel or the job's timeout: every task that never started ends now, but for
    /// cleanup (failure-handling tasks) until cleanup is stopped too.
    fn sweep(&self, reason: &str, now: Millis, out: &mut Vec<Event>, decided: &mut HashSet<TaskId>) {
        for (id, t) in self.view.tasks.iter().enumerate() {
            if t.state == TaskState::Terminated || self.may_run(id) {
                continue;
            }
            let result = match t.state {
                TaskState::Blocked => TaskResult::UpstreamCanceled,
                TaskState::Pending | TaskState::Queued | TaskState::WaitingForRetry => TaskResult::Canceled,
                TaskState::Running | TaskState::Terminated => continue,
            };
            out.push(Event::TaskSkipped { task: t.key.clone(), result, reason: reason.to_string(), at: now });
            decided.insert(id);
        }
    }

    fn due_retries(&self, now: Millis, out: &mut Vec<Event>, decided: &mut HashSet<TaskId>) {
        for &(_, id) in self.waiting.range(..=(now, TaskId::MAX)) {
            out.push(Event::TaskQueued { task: self.view.tasks[id].key.clone(), at: now });
            decided.insert(id);
        }
    }

    /// When every upstream of top-level task `id` has ended, its `run_if` decides.
    fn readiness(&self, id: TaskId, now: Millis) -> Option<Event> {
        let t = &self.view.tasks[id];
        if self.tasks[id].parent.is_some() || !matches!(t.state, TaskState::Pending | TaskState::Blocked) {
            return None;
        }
        let spec = self.spec(id)?;
        let (mut edges, mut blocked_by) = (Vec::new(), None);
        for dep in &spec.depends_on {
            let Some(u) = self.id_of(&dep.task) else { continue };
            if !self.ended(u) {
                return None;
            }
            let up = &self.view.tasks[u];
            let r = up.result.unwrap_or(TaskResult::Failed);
            let not_taken = r == TaskResult::Success && dep.outcome.is_some() && up.outcome != dep.outcome;
            // an upstream's failed `block` expectation naming this task fails the edge
            let blocking = (r == TaskResult::Success)
                .then(|| up.attempts.last()?.quality.iter().find(|q| !q.success && q.blocks.contains(&t.key)))
                .flatten();
            if let Some(q) = blocking {
                blocked_by.get_or_insert_with(|| format!("task `{}`: {}", up.key, q.describe()));
            }
            edges.push(match (not_taken, blocking.is_some()) {
                (true, _) => Edge::NotTaken,
                (false, true) => Edge::Ended(TaskResult::QualityFailed),
                (false, false) => Edge::Ended(r),
            });
        }
        let task = t.key.clone();
        Some(match readiness::decide(spec.run_if, &edges) {
            Decision::Run => Event::TaskQueued { task, at: now },
            Decision::Skip(result, reason) => {
                let reason = match blocked_by {
                    Some(by) => format!("{reason}: blocked by a failed expectation ({by})"),
                    None => reason,
                };
                Event::TaskSkipped { task, result, reason, at: now }
            }
        })
    }

    /// A for_each task whose iterations are planned: release iterations while fewer than
    /// its concurrency are in flight, and end it once every iteration has.
    fn for_each_progress(&self, p: TaskId, now: Millis, out: &mut Vec<Event>) {
        if self.ended(p) {
            return;
        }
        let its = &self.tasks[p].iterations;
        if its.iter().all(|&c| self.ended(c)) {
            out.push(self.for_each_result(p, now));
            return;
        }
        if !self.may_run(p) {
            return;
        }
        let concurrency = match self.spec(p).map(|s| &s.kind) {
            Some(TaskKind::ForEach { concurrency, .. }) => (*concurrency as usize).max(1),
            _ => 1,
        };
        let state = |c: TaskId| self.view.tasks[c].state;
        let in_flight =
            its.iter().filter(|&&c| !matches!(state(c), TaskState::Pending | TaskState::Terminated)).count();
        let pending = its.iter().filter(|&&c| state(c) == TaskState::Pending);
        for &c in pending.take(concurrency.saturating_sub(in_flight)) {
            out.push(Event::TaskQueued { task: self.view.tasks[c].key.clone(), at: now });
        }
    }

    /// The end of for_each task `p`'s attempt: success when every iteration succeeded.
    fn for_each_result(&self, p: TaskId, now: Millis) -> Event {
        let results: Vec<TaskResult> =
            self.tasks[p].iterations.iter().filter_map(|&c| self.view.tasks[c].result).collect();
        let ok = results.iter().filter(|r| **r == TaskResult::Success).count();
        let canceled = results.iter().any(|r| matches!(r, TaskResult::Canceled | TaskResult::UpstreamCanceled));
        let result = if ok == results.len() {
            TaskResult::Success
        } else if canceled {
            TaskResult::Canceled
        } else {
            TaskResult::Failed
        };
        let output = serde_json::json!({ "iterations": results.len(), "succeeded": ok, "failed": results.len() - ok });
        let error = (result != TaskResult::Success)
            .then(|| format!("{} of {} iterations did not succeed", results.len() - ok, results.len()));
        let attempt = self.tasks[p].next_attempt.saturating_sub(1);
        self.finished_in_place(
            p,
            attempt,
            InPlace { result, output: Some(output.to_string()), error, outcome: None },
            now,
        )
    }

    /// The run's result: its leaf tasks decide; a stop makes an unsuccessful run
    /// `canceled` or `timed_out`.
    fn result(&self) -> RunResult {
        let top: Vec<TaskId> = (0..self.tasks.len()).filter(|&id| self.tasks[id].parent.is_none()).collect();
        let ended: Vec<result::Ended<'_>> = top
            .iter()
            .map(|&id| {
                let t = &self.view.tasks[id];
                result::Ended {
                    key: &t.key,
                    depends_on: &t.depends_on,
                    result: t.result.unwrap_or(TaskResult::Canceled),
                }
            })
            .collect();
        let outcome = result::run_result(&ended);
        match &self.stop {
            Some(stop) if outcome != RunResult::Success && stop.timed_out => RunResult::TimedOut,
            Some(_) if outcome != RunResult::Success => RunResult::Canceled,
            _ => outcome,
        }
    }

    /// Queued tasks that may start now, in the order they were queued. Sandboxed tasks
    /// count against the job's `max_parallel_tasks` and `free_slots` (the sandboxes the
    /// process has free); the first one beyond either holds every task queued after it
    /// (first in, first out).
    pub fn startable(&mut self, free_slots: usize) -> Vec<TaskId> {
        while let Some(&(id, generation)) = self.queue.front() {
            if self.is_queued(id, generation) {
                break;
            }
            self.queue.pop_front();
        }
        let max = self.plan.as_ref().and_then(|p| p.job.max_parallel_tasks).map_or(usize::MAX, |n| n as usize);
        let mut room = max.saturating_sub(self.running_sandboxed).min(free_slots);
        let mut out = Vec::new();
        for &(id, generation) in &self.queue {
            if !self.is_queued(id, generation) {
                continue;
            }
            if self.is_sandboxed(id) {
                if room == 0 {
                    break;
                }
                room -= 1;
            }
            out.push(id);
        }
        out
    }

    fn is_queued(&self, id: TaskId, generation: u64) -> bool {
        self.view.tasks[id].state == TaskState::Queued && self.tasks[id].queued == generation
    }

    /// After attempt `attempt` of task `id` failed (`retryable`: in a way its retry policy
    /// may retry): the retry to record, if the policy allows another attempt and the run is
    /// not stopping. The attempts the policy counts are those of the task's current life
    /// (since its last repair) that were not interrupted by the death of their process.
    /// The delay's jitter comes from (run, task, attempts), so a resumed run waits the same.
    pub fn retry(&self, id: TaskId, attempt: u32, retryable: bool, now: Millis) -> Option<Event> {
        if !retryable || self.stop.is_some() {
            return None;
        }
        let policy = self.spec(id)?.retries.as_ref()?;
        let made = self.current_attempts(id).iter().filter(|a| a.result != Some(TaskResult::Interrupted)).count();
        let made = u32::try_from(made).unwrap_or(u32::MAX).max(1);
        if !retry::may_retry(policy, made) {
            return None;
        }
        let task = self.view.tasks[id].key.clone();
        let delay = retry::delay(policy, made, &format!("{}/{task}", self.view.run_id));
        let not_before = now + delay.as_millis() as Millis;
        Some(Event::RetryScheduled { task, next_attempt: attempt + 1, not_before, at: now })
    }

    /// When the next retry is due.
    pub fn next_retry(&self) -> Option<Millis> {
        self.waiting.first().map(|&(at, _)| at)
    }

    /// When the job times out: its timeout after the run's logical start (a repair's
    /// start, for a repaired run: each repair has the whole timeout; for a run that waited
    /// in the queue, after its turn came).
    pub fn deadline(&self) -> Option<Millis> {
        let timeout = self.plan.as_ref()?.job.timeout?;
        let since = match self.view.repairs.last() {
            Some(r) => r.at,
            None => self.view.dequeued_at.unwrap_or(self.view.created_at),
        };
        Some(since.saturating_add(timeout.as_millis() as Millis))
    }

    /// When cleanup after a stop must end: the job's `cleanup_timeout` after the first
    /// stop request. `None` when nothing stops the run or cleanup is already stopped.
    pub fn cleanup_deadline(&self) -> Option<Millis> {
        let stop = self.stop.as_ref().filter(|s| !s.cleanup_stopped)?;
        let timeout = self.plan.as_ref().and_then(|p| p.job.cleanup_timeout).unwrap_or(DEFAULT_CLEANUP_TIMEOUT);
        Some(stop.at.saturating_add(timeout.as_millis() as Millis))
    }

    /// What a process that dies mid-run leaves running, settled. A stopping run's attempts
    /// end `canceled` (cleanup's too once cleanup is stopped). Otherwise an attempt of a
    /// component or command task ends `interrupted` ([`INTERRUPTED`]) and the task is queued
    /// again without counting a retry — unless it says `rerun_on_resume = false`, then it
    /// stays `interrupted` ([`NOT_RERUN`]) for a repair to rerun; a condition is evaluated
    /// again; a for_each that had planned its iterations carries on (else it starts over);
    /// a run_job's child run is resumed.
    pub fn settle_interrupted(&self, now: Millis) -> Vec<Settle> {
        let mut out = Vec::new();
        for id in (0..self.tasks.len()).filter(|&id| self.view.tasks[id].state == TaskState::Running) {
            let open = self.view.tasks[id].attempts.last().filter(|a| a.finished_at.is_none()).map(|a| a.attempt);
            if let Some(stop) = self.stop.as_ref().filter(|_| !self.may_run(id)) {
                let key = self.view.tasks[id].key.clone();
                out.push(Settle::Record(match open {
                    Some(a) => {
                        let end = InPlace::ended(TaskResult::Canceled, format!("canceled ({INTERRUPTED})"));
                        self.finished_in_place(id, a, end, now)
                    }
                    None => Event::TaskSkipped {
                        task: key,
                        result: TaskResult::Canceled,
                        reason: stop.reason.clone(),
                        at: now,
                    },
                }));
                continue;
            }
            out.extend(self.settle_running(id, open, now));
        }
        out
    }

    fn settle_running(&self, id: TaskId, open: Option<u32>, now: Millis) -> Vec<Settle> {
        let interrupted =
            |a: u32, why: &str| Settle::Record(self.finished_in_place(id, a, InPlace::interrupted(why), now));
        let queue = Settle::Record(Event::TaskQueued { task: self.view.tasks[id].key.clone(), at: now });
        let mut out: Vec<Settle> = Vec::new();
        let Some(spec) = self.spec(id) else { return out };
        match &spec.kind {
            TaskKind::Component { .. } | TaskKind::Command(_) => match open {
                None => out.push(queue),
                Some(a) if spec.rerun_on_resume => out.extend([interrupted(a, INTERRUPTED), queue]),
                Some(a) => out.push(interrupted(a, NOT_RERUN)),
            },
            TaskKind::ForEach { .. } if self.tasks[id].planned => {}
            TaskKind::RunJob { .. } if open.is_some() && self.view.tasks[id].child_run.is_some() => {
                let (attempt, child) = (open.unwrap_or_default(), self.view.tasks[id].child_run.unwrap_or_default());
                out.push(Settle::ResumeChild { task: id, attempt, child });
            }
            TaskKind::Condition { .. } | TaskKind::ForEach { .. } | TaskKind::RunJob { .. } => {
                out.extend(open.map(|a| interrupted(a, INTERRUPTED)));
                out.push(queue);
            }
        }
        out
    }

    /// The end of an attempt that ran no guest code (a condition, a for_each, a child run,
    /// an interrupted or refused attempt): no log, no sandbox time.
    pub fn finished_in_place(&self, id: TaskId, attempt: u32, end: InPlace, now: Millis) -> Event {
        Event::AttemptFinished {
            task: self.view.tasks[id].key.clone(),
            attempt,
            at: now,
            result: end.result,
            output: end.output,
            error: end.error,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            outcome: end.outcome,
            cache: None,
            error_code: match end.result {
                TaskResult::Interrupted => Some("interrupted".into()),
                TaskResult::TimedOut => Some("timed_out".into()),
                TaskResult::Canceled => Some("canceled".into()),
                _ => None,
            },
        }
    }
}

/// How an attempt that ran no guest code ended.
#[derive(Debug, Clone, PartialEq)]
pub struct InPlace {
    pub result: TaskResult,
    /// The JSON output (on success, or a child run's record).
    pub output: Option<String>,
    pub error: Option<String>,
    /// A condition's outcome.
    pub outcome: Option<bool>,
}

impl InPlace {
    /// Ended with `result` and why.
    pub fn ended(result: TaskResult, error: impl Into<String>) -> InPlace {
        InPlace { result, output: None, error: Some(error.into()), outcome: None }
    }

    /// Failed before anything ran: why.
    pub fn failed(error: impl Into<String>) -> InPlace {
        InPlace::ended(TaskResult::Failed, error)
    }

    /// Cut short by the death of the process running it: why.
    pub fn interrupted(error: impl Into<String>) -> InPlace {
        InPlace::ended(TaskResult::Interrupted, error)
    }
}
