//! Which notifications a run's events imply: one [`Track`] per run with notifications,
//! fed every event in log order, answering the notices each one implies (and the duration
//! warnings a clock reading implies).
//!
//! Databricks' semantics: `on_start` when the run starts (a queued run when it leaves
//! its queue; a skipped run never starts); `on_success` when it ends `success` or
//! `success_with_failures`; `on_failure` when it ends `failed` or `timed_out`, `canceled`
//! unless `no_alert_for_canceled_runs`, `skipped` unless `no_alert_for_skipped_runs`;
//! `on_duration_warning_threshold_exceeded` once per run (and per repair) whose duration
//! passes its `RUN_DURATION_SECONDS` rule while it runs. A task's notifications are about
//! its attempts, the same way; with the task's `alert_on_last_attempt`, a retry's
//! `on_start` is not sent and a failed attempt's `on_failure` only when no retry follows
//! (its next event is not the task's `RetryScheduled`). It decides only; it never writes
//! or sends anything.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::model::{DeliveryState, Event, Millis, NotificationView, RunId, RunResult, TaskResult};
use crate::spec::{JobNotify, Notifications};
use crate::store::Notice;

pub(crate) const ON_START: &str = "on_start";
pub(crate) const ON_SUCCESS: &str = "on_success";
pub(crate) const ON_FAILURE: &str = "on_failure";
pub(crate) const ON_DURATION: &str = "on_duration_warning_threshold_exceeded";

/// A run with notifications, as far as its events went.
pub(crate) struct Track {
    run: RunId,
    job: String,
    target: String,
    principal: String,
    workspace: String,
    notify: JobNotify,
    /// When the run's duration counts from (creation, or leaving its queue, or a repair).
    started_at: Millis,
    queued: bool,
    start_sent: bool,
    warned: bool,
    /// Repairs so far: each is a new life whose notices are new.
    life: u32,
    /// Each failed task's last error (already redacted in the log).
    failed: BTreeMap<String, String>,
    /// Attempts running of tasks with a duration rule: (task, attempt) → start.
    running: BTreeMap<(String, u32), Millis>,
    warned_tasks: BTreeSet<(String, u32)>,
    /// A failed attempt's `on_failure` held back (`alert_on_last_attempt`) until the next
    /// event says whether a retry follows: (task, attempt, state, at, since).
    held: Option<(String, u32, String, Millis, Millis)>,
    pub(crate) finished: bool,
}

/// What a notice is about, before it is addressed to its destinations.
struct About<'a> {
    event: &'static str,
    task: Option<(&'a str, u32)>,
    state: String,
    at: Millis,
    since: Millis,
}

impl Track {
    /// The track of a run whose first event is `created`, if its job has notifications.
    pub(crate) fn new(run: RunId, created: &Event) -> Option<Track> {
        let Event::RunCreated { job, target, at, plan: Some(plan), .. } = created else { return None };
        if plan.job.notify.is_empty() {
            return None;
        }
        Some(Track {
            run,
            job: job.clone(),
            target: target.clone(),
            principal: plan.principal.clone(),
            workspace: plan.workspace.clone(),
            notify: plan.job.notify.clone(),
            started_at: *at,
            queued: false,
            start_sent: false,
            warned: false,
            life: 0,
            failed: BTreeMap::new(),
            running: BTreeMap::new(),
            warned_tasks: BTreeSet::new(),
            held: None,
            finished: false,
        })
    }

    /// The notices `event` implies. A failure held back for `alert_on_last_attempt` is
    /// dropped when `event` schedules its retry, else sent now (that attempt was the last).
    pub(crate) fn apply(&mut self, event: &Event) -> Vec<Notice> {
        let mut out = Vec::new();
        if let Some((task, attempt, state, at, since)) = self.held.take() {
            let retried = matches!(event, Event::RetryScheduled { task: t, .. } if *t == task);
            if !retried {
                let about = About { event: ON_FAILURE, task: Some((task.as_str(), attempt)), state, at, since };
                out.extend(self.task_notices(&about));
            }
        }
        out.extend(self.apply_event(event));
        out
    }

    fn apply_event(&mut self, event: &Event) -> Vec<Notice> {
        match event {
            Event::RunQueued { .. } => self.queued = true,
            Event::RunDequeued { at } => {
                self.queued = false;
                self.started_at = *at;
            }
            Event::RepairStarted { at, .. } => {
                self.life += 1;
                (self.start_sent, self.warned, self.finished) = (false, false, false);
                self.started_at = *at;
                self.failed.clear();
            }
            Event::PlanRecorded { plan, .. } => self.notify = plan.job.notify.clone(),
            Event::AttemptStarted { task, attempt, at } => {
                let mut out = self.started(*at);
                if self.task(task).is_some_and(|n| n.duration_warning_secs.is_some()) {
                    self.running.insert((task.clone(), *attempt), *at);
                }
                let about = About {
                    event: ON_START,
                    task: Some((task.as_str(), *attempt)),
                    state: "running".into(),
                    at: *at,
                    since: *at,
                };
                // alert_on_last_attempt: a retry's start is not announced
                if *attempt == 0 || !self.task(task).is_some_and(|n| n.alert_on_last_attempt) {
                    out.extend(self.task_notices(&about));
                }
                return out;
            }
            Event::TaskQueued { at, .. } | Event::ChildRunStarted { at, .. } | Event::IterationsPlanned { at, .. } => {
                return self.started(*at);
            }
            Event::AttemptFinished { task, attempt, at, result, error, .. } => {
                return self.attempt_finished(task, *attempt, *at, *result, error.as_deref());
            }
            Event::RunFinished { result, at } => return self.finished(*result, *at),
            _ => {}
        }
        Vec::new()
    }

    fn task(&self, key: &str) -> Option<&Notifications> {
        self.notify.tasks.get(key)
    }

    /// The run's `on_start`, the first time something of it starts.
    fn started(&mut self, at: Millis) -> Vec<Notice> {
        if self.start_sent || self.queued {
            return Vec::new();
        }
        self.start_sent = true;
        let about = About { event: ON_START, task: None, state: "running".into(), at, since: self.started_at };
        self.notices(&self.notify.job.on_start.clone(), &about)
    }

    fn attempt_finished(
        &mut self,
        task: &str,
        attempt: u32,
        at: Millis,
        result: TaskResult,
        error: Option<&str>,
    ) -> Vec<Notice> {
        let since = self.running.remove(&(task.to_string(), attempt)).unwrap_or(at);
        let failed = matches!(
            result,
            TaskResult::Failed | TaskResult::TimedOut | TaskResult::Canceled | TaskResult::QualityFailed
        );
        if failed {
            self.failed.insert(task.to_string(), error.unwrap_or(result.as_str()).to_string());
        } else if result == TaskResult::Success {
            self.failed.remove(task);
        }
        let quiet = result == TaskResult::Canceled && self.task(task).is_some_and(|n| n.no_alert_for_canceled_runs);
        let event = match result {
            TaskResult::Success => ON_SUCCESS,
            _ if failed && !quiet => ON_FAILURE,
            _ => return Vec::new(),
        };
        if event == ON_FAILURE && self.task(task).is_some_and(|n| n.alert_on_last_attempt) {
            self.held = Some((task.to_string(), attempt, result.as_str().into(), at, since));
            return Vec::new();
        }
        self.task_notices(&About { event, task: Some((task, attempt)), state: result.as_str().into(), at, since })
    }

    fn finished(&mut self, result: RunResult, at: Millis) -> Vec<Notice> {
        self.finished = true;
        self.running.clear();
        let settings = &self.notify.job;
        let names = match result {
            RunResult::Success | RunResult::SuccessWithFailures => settings.on_success.clone(),
            RunResult::Canceled if settings.no_alert_for_canceled_runs => return Vec::new(),
            RunResult::Skipped if settings.no_alert_for_skipped_runs => return Vec::new(),
            _ => settings.on_failure.clone(),
        };
        let event = if result.is_success() { ON_SUCCESS } else { ON_FAILURE };
        let about = About { event, task: None, state: result.as_str().into(), at, since: self.started_at };
        self.notices(&names, &about)
    }

    /// The duration warnings due at `now` (each once).
    pub(crate) fn due(&mut self, now: Millis) -> Vec<Notice> {
        let mut out = Vec::new();
        if let Some(at) = self.job_deadline()
            && now >= at
        {
            self.warned = true;
            let about =
                About { event: ON_DURATION, task: None, state: "running".into(), at: now, since: self.started_at };
            out.extend(self.notices(&self.notify.job.on_duration_warning_threshold_exceeded.clone(), &about));
        }
        let due: Vec<((String, u32), Millis)> = self
            .running
            .iter()
            .filter(|(k, _)| !self.warned_tasks.contains(*k))
            .filter_map(|(k, since)| {
                self.task_deadline(&k.0, *since).filter(|at| now >= *at).map(|_| (k.clone(), *since))
            })
            .collect();
        for ((task, attempt), since) in due {
            self.warned_tasks.insert((task.clone(), attempt));
            let about = About {
                event: ON_DURATION,
                task: Some((task.as_str(), attempt)),
                state: "running".into(),
                at: now,
                since,
            };
            out.extend(self.task_notices(&about));
        }
        out
    }

    /// When the next duration warning is due, if one may come.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        let tasks = self
            .running
            .iter()
            .filter(|(k, _)| !self.warned_tasks.contains(*k))
            .filter_map(|((task, _), since)| self.task_deadline(task, *since));
        self.job_deadline().into_iter().chain(tasks).min()
    }

    fn job_deadline(&self) -> Option<Millis> {
        let n = &self.notify.job;
        let live =
            !self.warned && !self.finished && !self.queued && !n.on_duration_warning_threshold_exceeded.is_empty();
        n.duration_warning_secs.filter(|_| live).map(|secs| self.started_at + secs * 1000)
    }

    fn task_deadline(&self, task: &str, since: Millis) -> Option<Millis> {
        let n = self.task(task)?;
        if n.on_duration_warning_threshold_exceeded.is_empty() {
            return None;
        }
        n.duration_warning_secs.map(|secs| since + secs * 1000)
    }

    fn task_notices(&self, about: &About<'_>) -> Vec<Notice> {
        let Some((task, _)) = about.task else { return Vec::new() };
        let Some(n) = self.task(task) else { return Vec::new() };
        let names = match about.event {
            ON_START => &n.on_start,
            ON_SUCCESS => &n.on_success,
            ON_FAILURE => &n.on_failure,
            _ => &n.on_duration_warning_threshold_exceeded,
        };
        self.notices(&names.clone(), about)
    }

    /// One notice per destination named.
    fn notices(&self, names: &[String], about: &About<'_>) -> Vec<Notice> {
        if names.is_empty() {
            return Vec::new();
        }
        let payload = self.payload(about);
        let scope = match about.task {
            Some((task, attempt)) => format!("task:{task}:{attempt}"),
            None if self.life == 0 => "run".to_string(),
            None => format!("repair:{}", self.life),
        };
        names
            .iter()
            .filter_map(|name| {
                let destination = self.notify.destinations.get(name)?.clone();
                Some(Notice {
                    run: self.run,
                    id: format!("{}/{scope}/{name}", about.event),
                    view: NotificationView {
                        event: about.event.to_string(),
                        task: about.task.map(|(t, _)| t.to_string()),
                        destination: name.clone(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        last_error: None,
                        created_at: about.at,
                        delivered_at: None,
                    },
                    destination,
                    payload: payload.clone(),
                    principal: self.principal.clone(),
                    workspace: self.workspace.clone(),
                    target: self.target.clone(),
                    next_at: about.at,
                })
            })
            .collect()
    }

    fn payload(&self, about: &About<'_>) -> Value {
        let secs = about.at.saturating_sub(about.since) as f64 / 1000.0;
        let what = match about.task {
            Some((task, attempt)) => format!("Task {task} (attempt {attempt}) of run {} of job {}", self.run, self.job),
            None => format!("Run {} of job {}", self.run, self.job),
        };
        let message = match about.event {
            ON_START => format!("{what} started"),
            ON_DURATION => format!("{what} has run for {secs:.0}s, longer than its health rule allows"),
            _ => format!("{what} ended {} after {secs:.1}s", about.state),
        };
        let failed: Vec<Value> = match about.task {
            Some((task, _)) => self.failed.get(task).map(|e| json!({ "task": task, "error": e })).into_iter().collect(),
            None => self.failed.iter().map(|(task, error)| json!({ "task": task, "error": error })).collect(),
        };
        let failed = if about.event == ON_FAILURE { failed } else { Vec::new() };
        json!({
            "event": about.event,
            "job": self.job,
            "run_id": self.run,
            "task": about.task.map(|(t, _)| t),
            "attempt": about.task.map(|(_, a)| a),
            "state": about.state,
            "target": self.target,
            "workspace": self.workspace,
            "at": about.at,
            "duration_seconds": secs,
            "failed_tasks": failed,
            "message": message,
        })
    }
}

#[cfg(test)]
#[path = "track_tests.rs"]
mod tests;
