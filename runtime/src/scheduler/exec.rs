//! Executing one run: the coordinator loop.
//!
//! One coordinator per run owns all of the run's task state; attempts run as
//! tokio tasks and report back here, so state changes happen in one place, in
//! the order they are journaled. Tasks whose upstreams have ended are decided
//! (`run_if`), queued, and started while the job's and the process's
//! concurrency bounds allow. Retries wait on timers; cancellation and the
//! job's timeout stop running sandboxes at their next epoch tick.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;

use crate::model::{Event, RunPlan, RunResult, RunView, TaskResult, TaskState};
use crate::sandbox::{Outcome, Status};
use crate::spec::{TaskKind, TaskSpec};

use super::journal::Journal;
use super::plan::Loaded;
use super::readiness::{self, Decision, Edge};
use super::{RunOptions, Runtime, SchedulerError, result, retry};

/// How often the coordinator looks for a cancel request from another process
/// and for free slots taken by other runs, when nothing else wakes it.
pub(crate) const CONTROL_POLL: Duration = Duration::from_millis(50);

/// Why a run stops early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    Canceled(String),
    TimedOut(String),
}

/// What a finished tokio task reports.
pub(crate) enum Done {
    Attempt { slot: usize, attempt: u32, outcome: Outcome },
    Child { slot: usize, attempt: u32, result: Result<RunView, SchedulerError> },
}

/// One task (or for_each iteration) of the run.
pub(crate) struct Slot {
    pub(crate) spec: TaskSpec,
    pub(crate) parent: Option<usize>,
    pub(crate) input: Option<String>,
    pub(crate) state: TaskState,
    pub(crate) result: Option<TaskResult>,
    pub(crate) outcome: Option<bool>,
    /// The number the next attempt gets.
    pub(crate) next_attempt: u32,
    /// for_each parents: their iterations, how many were released, the bound.
    pub(crate) iterations: Vec<usize>,
    pub(crate) released: usize,
    pub(crate) concurrency: usize,
    /// What the task produced when it succeeded (for downstream keys and `/in`).
    pub(crate) produced: super::caching::Produced,
}

impl Slot {
    pub(crate) fn new(spec: TaskSpec, parent: Option<usize>, input: Option<String>) -> Slot {
        let state = if spec.depends_on.is_empty() { TaskState::Pending } else { TaskState::Blocked };
        Slot {
            spec,
            parent,
            input,
            state,
            result: None,
            outcome: None,
            next_attempt: 0,
            iterations: Vec::new(),
            released: 0,
            concurrency: 1,
            produced: Default::default(),
        }
    }

    fn ended(&self) -> bool {
        self.state == TaskState::Terminated
    }
}

pub(crate) struct Exec {
    pub(crate) rt: Runtime,
    pub(crate) opts: RunOptions,
    pub(crate) plan: Arc<RunPlan>,
    pub(crate) components: Arc<Loaded>,
    pub(crate) journal: Journal,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) target: String,
    pub(crate) logical_start: SystemTime,
    pub(crate) slots: Vec<Slot>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) dependents: Vec<Vec<usize>>,
    pub(crate) ready: VecDeque<usize>,
    pub(crate) to_evaluate: Vec<usize>,
    pub(crate) running: JoinSet<Done>,
    pub(crate) running_ids: HashMap<tokio::task::Id, (usize, u32)>,
    pub(crate) running_components: usize,
    pub(crate) waiting: Vec<(Instant, usize)>,
    pub(crate) run_cancel: Arc<AtomicBool>,
    pub(crate) stop: Option<Stop>,
    pub(crate) deadline: Option<Instant>,
    /// Cache context of attempts in flight, by (slot, attempt).
    pub(crate) pending_cache: HashMap<(usize, u32), super::caching::Pending>,
    /// Sandbox slots of attempts in flight, released once each is recorded.
    pub(crate) permits: HashMap<(usize, u32), tokio::sync::OwnedSemaphorePermit>,
}

impl Exec {
    /// Build the coordinator's state for `plan`; slots start pending.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rt: Runtime,
        opts: RunOptions,
        plan: RunPlan,
        components: Arc<Loaded>,
        journal: Journal,
        parameters: BTreeMap<String, String>,
        target: String,
        logical_start: SystemTime,
    ) -> Exec {
        let mut slots = Vec::new();
        let mut index = HashMap::new();
        for t in &plan.job.tasks {
            index.insert(t.key.clone(), slots.len());
            slots.push(Slot::new(t.clone(), None, None));
        }
        let mut dependents = vec![Vec::new(); slots.len()];
        for (i, s) in slots.iter().enumerate() {
            for up in s.spec.upstream_keys() {
                if let Some(&u) = index.get(up) {
                    dependents[u].push(i);
                }
            }
        }
        let elapsed = SystemTime::now().duration_since(logical_start).unwrap_or_default();
        let deadline = plan.job.timeout.map(|t| Instant::now() + t.saturating_sub(elapsed));
        Exec {
            rt,
            opts,
            plan: Arc::new(plan),
            components,
            journal,
            parameters,
            target,
            logical_start,
            slots,
            index,
            dependents,
            ready: VecDeque::new(),
            to_evaluate: Vec::new(),
            running: JoinSet::new(),
            running_ids: HashMap::new(),
            running_components: 0,
            waiting: Vec::new(),
            run_cancel: Arc::new(AtomicBool::new(false)),
            stop: None,
            deadline,
            pending_cache: HashMap::new(),
            permits: HashMap::new(),
        }
    }

    /// Why the run's cancel flag was set: a child run's flag is its parent's.
    fn cancel_reason(&self) -> &'static str {
        if self.plan.parent.is_some() { "the parent run was canceled" } else { "canceled by the user (Ctrl-C)" }
    }

    pub(crate) fn now(&self) -> u64 {
        self.rt.clock.now_millis()
    }

    pub(crate) fn append(&mut self, event: Event) -> Result<(), SchedulerError> {
        self.journal.append(event)
    }

    fn max_parallel(&self) -> usize {
        self.plan.job.max_parallel_tasks.map_or(usize::MAX, |n| n as usize)
    }

    /// Run the loop until every task has ended; record and flush the result.
    pub(crate) async fn drive(mut self) -> Result<RunView, SchedulerError> {
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].state, TaskState::Pending | TaskState::Blocked) && self.slots[i].parent.is_none()
            {
                self.to_evaluate.push(i);
            }
        }
        loop {
            self.poll_stop()?;
            self.release_due_retries()?;
            self.evaluate_pending()?;
            self.start_ready()?;
            self.journal.flush_if_due()?;
            if self.running.is_empty()
                && self.ready.is_empty()
                && self.waiting.is_empty()
                && self.slots.iter().all(Slot::ended)
            {
                break;
            }
            if !self.to_evaluate.is_empty() {
                // tasks that ended in place (reused, conditions, skips) woke others: go on
                continue;
            }
            let wake = [
                self.journal.flush_deadline(),
                self.waiting.iter().map(|w| w.0).min(),
                Some(Instant::now() + CONTROL_POLL),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => self.on_joined(joined)?,
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        self.finish()
    }

    fn on_joined(
        &mut self,
        joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>,
    ) -> Result<(), SchedulerError> {
        match joined {
            Ok((id, done)) => {
                self.running_ids.remove(&id);
                match done {
                    Done::Attempt { slot, attempt, outcome } => self.attempt_done(slot, attempt, outcome),
                    Done::Child { slot, attempt, result } => self.child_done(slot, attempt, result),
                }
            }
            Err(e) => {
                let Some((slot, attempt)) = self.running_ids.remove(&e.id()) else { return Ok(()) };
                let outcome = Outcome {
                    status: Status::Failed {
                        kind: crate::sandbox::FailureKind::Host,
                        message: format!("the attempt's host task failed: {e}"),
                    },
                    log: String::new(),
                    log_truncated: false,
                    values: Vec::new(),
                    secret_audit: Vec::new(),
                    elapsed: Duration::ZERO,
                };
                if matches!(self.slots[slot].spec.kind, TaskKind::RunJob { .. }) {
                    self.child_done(slot, attempt, Err(SchedulerError::Parameters(format!("child run failed: {e}"))))
                } else {
                    self.attempt_done(slot, attempt, outcome)
                }
            }
        }
    }

    /// Stop early on Ctrl-C, a cancel request from another process, the
    /// parent run's cancellation, or the job's timeout.
    fn poll_stop(&mut self) -> Result<(), SchedulerError> {
        if self.stop.is_some() {
            return Ok(());
        }
        let run = self.journal.run();
        let stop = if self.opts.cancel.load(Ordering::Relaxed) {
            Some(Stop::Canceled(self.cancel_reason().into()))
        } else if self.rt.control.as_ref().is_some_and(|c| c.cancel_requested(run, &self.plan.workspace)) {
            Some(Stop::Canceled("canceled by `sluice runs cancel`".into()))
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let t = self.plan.job.timeout.unwrap_or_default();
            Some(Stop::TimedOut(format!("the job timed out after {}", crate::util::human_duration(t))))
        } else {
            None
        };
        match stop {
            Some(s) => self.stop(s),
            None => Ok(()),
        }
    }

    /// Stop the run: running attempts are interrupted, nothing new starts.
    pub(crate) fn stop(&mut self, why: Stop) -> Result<(), SchedulerError> {
        let reason = match &why {
            Stop::Canceled(r) | Stop::TimedOut(r) => r.clone(),
        };
        self.append(Event::CancelRequested { reason: reason.clone(), at: self.now() })?;
        self.stop = Some(why);
        self.run_cancel.store(true, Ordering::Relaxed);
        self.waiting.clear();
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            let never_started = matches!(
                s.state,
                TaskState::Pending | TaskState::Blocked | TaskState::Queued | TaskState::WaitingForRetry
            );
            if never_started {
                let result =
                    if s.state == TaskState::Blocked { TaskResult::UpstreamCanceled } else { TaskResult::Canceled };
                self.skip(i, result, reason.clone())?;
            }
        }
        Ok(())
    }

    fn release_due_retries(&mut self) -> Result<(), SchedulerError> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(t, _)| *t <= now);
        self.waiting = later;
        for (_, i) in due {
            self.queue(i)?;
        }
        Ok(())
    }

    pub(crate) fn queue(&mut self, i: usize) -> Result<(), SchedulerError> {
        self.slots[i].state = TaskState::Queued;
        self.append(Event::TaskQueued { task: self.slots[i].spec.key.clone(), at: self.now() })?;
        self.ready.push_back(i);
        Ok(())
    }

    /// Decide every task whose upstreams have all ended.
    fn evaluate_pending(&mut self) -> Result<(), SchedulerError> {
        while let Some(i) = self.to_evaluate.pop() {
            let s = &self.slots[i];
            if !matches!(s.state, TaskState::Pending | TaskState::Blocked) {
                continue;
            }
            let mut edges = Vec::new();
            let mut all_ended = true;
            for dep in &s.spec.depends_on {
                let Some(&u) = self.index.get(&dep.task) else { continue };
                let up = &self.slots[u];
                if !up.ended() {
                    all_ended = false;
                    break;
                }
                let r = up.result.unwrap_or(TaskResult::Failed);
                let not_taken = r == TaskResult::Success && dep.outcome.is_some() && up.outcome != dep.outcome;
                edges.push(if not_taken { Edge::NotTaken } else { Edge::Ended(r) });
            }
            if !all_ended {
                continue;
            }
            match readiness::decide(s.spec.run_if, &edges) {
                Decision::Run => self.queue(i)?,
                Decision::Skip(result, reason) => self.skip(i, result, reason)?,
            }
        }
        Ok(())
    }

    pub(crate) fn skip(&mut self, i: usize, result: TaskResult, reason: String) -> Result<(), SchedulerError> {
        self.append(Event::TaskSkipped { task: self.slots[i].spec.key.clone(), result, reason, at: self.now() })?;
        self.ended(i, result)
    }

    /// Record that slot `i` has ended and wake what waits on it.
    pub(crate) fn ended(&mut self, i: usize, result: TaskResult) -> Result<(), SchedulerError> {
        let s = &mut self.slots[i];
        s.state = TaskState::Terminated;
        s.result = Some(result);
        match s.parent {
            Some(p) => self.iteration_ended(p),
            None => {
                let deps = self.dependents[i].clone();
                self.to_evaluate.extend(deps);
                Ok(())
            }
        }
    }

    /// Start queued tasks while the bounds allow; those that must wait stay queued.
    fn start_ready(&mut self) -> Result<(), SchedulerError> {
        let mut waiting = VecDeque::new();
        while let Some(i) = self.ready.pop_front() {
            if self.slots[i].state != TaskState::Queued {
                continue;
            }
            let is_component = matches!(self.slots[i].spec.kind, TaskKind::Component { .. } | TaskKind::Command(_));
            let blocked = (is_component && self.running_components >= self.max_parallel()) || !self.start(i)?;
            if blocked {
                // no slot for this one; later component tasks would not get one
                // either, so stop scanning (FIFO) and keep the rest queued
                waiting.push_back(i);
                waiting.extend(self.ready.drain(..));
                break;
            }
        }
        self.ready = waiting;
        Ok(())
    }

    /// Handle a finished attempt: record it, then retry, or end the task.
    fn attempt_done(&mut self, i: usize, attempt: u32, outcome: Outcome) -> Result<(), SchedulerError> {
        self.running_components -= 1;
        let _slot = self.permits.remove(&(i, attempt));
        let key = self.slots[i].spec.key.clone();
        let timed_out_run = matches!(self.stop, Some(Stop::TimedOut(_)));
        let (mut result, mut output, mut error, retryable) = match outcome.status {
            Status::Success { output } => (TaskResult::Success, Some(output), None, false),
            Status::Failed { kind, message } => {
                (TaskResult::Failed, None, Some(format!("{}: {message}", kind.label())), kind.retryable())
            }
            Status::TimedOut { message } => {
                let on_timeout = self.slots[i].spec.retries.as_ref().is_some_and(|r| r.on_timeout);
                (TaskResult::TimedOut, None, Some(message), on_timeout)
            }
            Status::Canceled if timed_out_run => (TaskResult::TimedOut, None, Some("the job timed out".into()), false),
            Status::Canceled => (TaskResult::Canceled, None, Some("canceled".into()), false),
        };
        let mut cache = None;
        if let Some(pending) = self.pending_cache.remove(&(i, attempt)) {
            let mut pending = pending;
            if outcome.secret_audit.iter().any(|(_, revealed)| !revealed) && pending.not_cached.is_none() {
                pending.not_cached = Some(
                    "a secret reveal was refused: the result depends on access rights, so it is not reused".into(),
                );
            }
            match self.harvest(i, pending, result == TaskResult::Success, output.as_deref(), &outcome.values) {
                Ok(c) => cache = c.map(Box::new),
                Err(message) => {
                    result = TaskResult::Failed;
                    output = None;
                    error = Some(format!("invalid output: {message}"));
                }
            }
        }
        if result == TaskResult::Success {
            for (name, json) in &outcome.values {
                self.rt.store.put_value(self.journal.run(), &key, name, json)?;
            }
        }
        self.append(Event::AttemptFinished {
            task: key.clone(),
            attempt,
            at: self.now(),
            result,
            output,
            error,
            log: outcome.log,
            log_truncated: outcome.log_truncated,
            elapsed_us: outcome.elapsed.as_micros() as u64,
            outcome: None,
            cache,
        })?;
        if result != TaskResult::Success && retryable && self.stop.is_none() && self.schedule_retry(i, attempt)? {
            return Ok(());
        }
        self.ended(i, result)
    }

    /// If the task's policy allows another attempt, schedule it.
    pub(crate) fn schedule_retry(&mut self, i: usize, attempt: u32) -> Result<bool, SchedulerError> {
        let Some(policy) = self.slots[i].spec.retries.clone() else { return Ok(false) };
        if !retry::may_retry(&policy, attempt + 1) {
            return Ok(false);
        }
        let salt = format!("{}/{}", self.journal.run(), self.slots[i].spec.key);
        let delay = retry::delay(&policy, attempt + 1, &salt);
        let at = self.now();
        self.append(Event::RetryScheduled {
            task: self.slots[i].spec.key.clone(),
            next_attempt: attempt + 1,
            not_before: at + delay.as_millis() as u64,
            at,
        })?;
        self.slots[i].state = TaskState::WaitingForRetry;
        self.waiting.push((Instant::now() + delay, i));
        Ok(true)
    }

    /// The last iteration of a for_each task ended (or one more may start).
    pub(crate) fn iteration_ended(&mut self, p: usize) -> Result<(), SchedulerError> {
        if self.stop.is_none() && self.slots[p].released < self.slots[p].iterations.len() {
            let next = self.slots[p].iterations[self.slots[p].released];
            self.slots[p].released += 1;
            self.queue(next)?;
        }
        let its = &self.slots[p].iterations;
        if !its.iter().all(|&c| self.slots[c].ended()) || self.slots[p].ended() {
            return Ok(());
        }
        let results: Vec<TaskResult> = its.iter().filter_map(|&c| self.slots[c].result).collect();
        let ok = results.iter().filter(|r| **r == TaskResult::Success).count();
        let canceled = results.iter().any(|r| matches!(r, TaskResult::Canceled | TaskResult::UpstreamCanceled));
        let result = if ok == results.len() {
            TaskResult::Success
        } else if canceled {
            TaskResult::Canceled
        } else {
            TaskResult::Failed
        };
        let output = serde_json::json!({ "iterations": results.len(), "succeeded": ok, "failed": results.len() - ok })
            .to_string();
        let error = (result != TaskResult::Success)
            .then(|| format!("{} of {} iterations did not succeed", results.len() - ok, results.len()));
        let attempt = self.slots[p].next_attempt.saturating_sub(1);
        self.record_finished(p, attempt, result, Some(output), error, None)?;
        self.ended(p, result)
    }

    /// Record the end of an attempt that ran no guest code here (condition, for_each
    /// parent, child run, interrupted or refused attempt): no log, no sandbox time.
    pub(crate) fn record_finished(
        &mut self,
        i: usize,
        attempt: u32,
        result: TaskResult,
        output: Option<String>,
        error: Option<String>,
        outcome: Option<bool>,
    ) -> Result<(), SchedulerError> {
        self.append(Event::AttemptFinished {
            task: self.slots[i].spec.key.clone(),
            attempt,
            at: self.now(),
            result,
            output,
            error,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            outcome,
            cache: None,
        })
    }

    /// Decide the run's result, record it, flush, and only then return it.
    fn finish(mut self) -> Result<RunView, SchedulerError> {
        let deps: Vec<Vec<String>> = self
            .slots
            .iter()
            .filter(|s| s.parent.is_none())
            .map(|s| s.spec.upstream_keys().map(str::to_string).collect())
            .collect();
        let top: Vec<result::Ended<'_>> = self
            .slots
            .iter()
            .filter(|s| s.parent.is_none())
            .zip(&deps)
            .map(|(s, d)| result::Ended {
                key: &s.spec.key,
                depends_on: d,
                result: s.result.unwrap_or(TaskResult::Canceled),
            })
            .collect();
        let mut outcome = result::run_result(&top);
        match &self.stop {
            Some(Stop::TimedOut(_)) if !outcome.is_success() => outcome = RunResult::TimedOut,
            Some(Stop::Canceled(_)) if !outcome.is_success() => outcome = RunResult::Canceled,
            _ => {}
        }
        let at = self.now();
        self.append(Event::RunFinished { result: outcome, at })?;
        super::caching::finish(&self.rt.cache);
        let view = self.journal.view()?;
        self.rt.store.put_summary(&view.summary())?;
        self.journal.flush()?;
        if let Some(c) = &self.rt.control {
            c.clear(view.run_id);
        }
        Ok(view)
    }
}

/// A `SystemTime` from store millis.
pub(crate) fn time_of(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}
