//! The fold: one event at a time into the run's view and the scheduler's bookkeeping.
//! An event that cannot follow the ones before it is a [`CorruptLog`].

use std::collections::HashMap;
use std::sync::Arc;

use super::{RunState, Sched, Stop, TaskId, plan_hash};
use crate::model::{
    AttemptCache, AttemptView, CorruptLog, Event, Millis, PlanView, ReusedFrom, RunView, TaskState, TaskView,
    default_workspace,
};

pub(super) fn initial_state(depends_on: &[String]) -> TaskState {
    if depends_on.is_empty() { TaskState::Pending } else { TaskState::Blocked }
}

pub(super) fn task_view(key: String, component: String, component_hash: String, depends_on: Vec<String>) -> TaskView {
    TaskView {
        state: initial_state(&depends_on),
        key,
        component,
        component_hash,
        depends_on,
        result: None,
        skipped_reason: None,
        attempts: Vec::new(),
        outcome: None,
        parent: None,
        child_run: None,
        retry_not_before: None,
        reused_from: None,
    }
}

impl RunState {
    /// The state right after `RunCreated`.
    pub(super) fn created(event: &Event) -> Result<RunState, CorruptLog> {
        let Event::RunCreated { run_id, job, source, target, parameters, tasks, at, plan } = event else {
            return Err(CorruptLog("a run starts with run_created".into()));
        };
        let plan: Option<Arc<crate::model::RunPlan>> = plan.as_deref().cloned().map(Arc::new);
        let views: Vec<TaskView> = tasks
            .iter()
            .map(|t| task_view(t.key.clone(), t.component.clone(), t.component_hash.clone(), t.depends_on.clone()))
            .collect();
        let index: HashMap<String, TaskId> = views.iter().enumerate().map(|(i, t)| (t.key.clone(), i)).collect();
        let mut sched: Vec<Sched> = views
            .iter()
            .map(|t| Sched {
                spec: plan.as_ref().and_then(|p| p.job.task(&t.key)).cloned().map(Arc::new),
                ..Sched::default()
            })
            .collect();
        for (i, t) in views.iter().enumerate() {
            for up in &t.depends_on {
                if let Some(&u) = index.get(up) {
                    sched[u].dependents.push(i);
                }
            }
        }
        let view = RunView {
            run_id: *run_id,
            job: job.clone(),
            source: source.clone(),
            target: target.clone(),
            parameters: parameters.clone(),
            created_at: *at,
            finished_at: None,
            result: None,
            tasks: views,
            plans: plan
                .as_deref()
                .map(|p| PlanView { version: 1, hash: plan_hash(p), at: *at, changes: Vec::new() })
                .into_iter()
                .collect(),
            repairs: Vec::new(),
            resumed: 0,
            cancel_requested: false,
            workspace: plan.as_ref().map_or_else(default_workspace, |p| p.workspace.clone()),
            job_id: plan.as_ref().and_then(|p| p.job_id),
            queued: None,
            dequeued_at: None,
            status: None,
            notifications: Vec::new(),
        };
        let dirty = (0..sched.len()).collect();
        let mut state = RunState {
            unended: view.tasks.len(),
            running_sandboxed: 0,
            view,
            plan,
            parameters: parameters.clone(),
            tasks: sched,
            index,
            graph: Default::default(),
            stop: None,
            queue: Default::default(),
            waiting: Default::default(),
            dirty,
        };
        state.rebuild_graph();
        Ok(state)
    }

    /// Fold one more event in.
    pub fn apply(&mut self, event: &Event) -> Result<(), CorruptLog> {
        match event {
            Event::RunCreated { .. } => return Err(CorruptLog("second run_created".into())),
            Event::TaskQueued { task, .. } => {
                let i = self.id(task)?;
                self.unwait(i);
                self.set_state(i, TaskState::Queued);
                self.tasks[i].queued += 1;
                self.queue.push_back((i, self.tasks[i].queued));
            }
            Event::AttemptStarted { task, attempt, at } => self.started(task, *attempt, *at)?,
            Event::AttemptFinished { task, attempt, .. } => self.attempt_finished(task, *attempt, event)?,
            Event::RetryScheduled { task, not_before, .. } => {
                let i = self.id(task)?;
                self.set_state(i, TaskState::WaitingForRetry);
                let t = &mut self.view.tasks[i];
                t.result = None;
                t.retry_not_before = Some(*not_before);
                self.waiting.insert((*not_before, i));
            }
            Event::QualityChecked { task, attempt, results, .. } => {
                let i = self.id(task)?;
                let a =
                    self.view.tasks[i].attempts.iter_mut().rev().find(|a| a.attempt == *attempt).ok_or_else(|| {
                        CorruptLog(format!("task `{task}` attempt {attempt} was checked but never started"))
                    })?;
                a.quality = results.clone();
            }
            Event::TaskSkipped { task, result, reason, .. } => {
                let i = self.id(task)?;
                self.unwait(i);
                self.set_state(i, TaskState::Terminated);
                let t = &mut self.view.tasks[i];
                t.result = Some(*result);
                t.skipped_reason = Some(reason.clone());
                self.wake(i);
            }
            Event::IterationsPlanned { task, inputs, .. } => self.iterations_planned(task, inputs)?,
            Event::ChildRunStarted { task, child, .. } => {
                let i = self.id(task)?;
                self.set_state(i, TaskState::Running);
                self.view.tasks[i].child_run = Some(*child);
            }
            Event::CancelRequested { reason, timed_out, at, stop_cleanup } => {
                self.view.cancel_requested = true;
                let stop = self.stop.get_or_insert(Stop {
                    reason: reason.clone(),
                    timed_out: *timed_out,
                    at: *at,
                    cleanup_stopped: false,
                });
                stop.cleanup_stopped |= *stop_cleanup;
            }
            Event::RunQueued { reason, .. } => self.view.queued = Some(reason.clone()),
            Event::RunDequeued { at } => {
                self.view.queued = None;
                self.view.dequeued_at = Some(*at);
            }
            Event::RunResumed { .. } => self.view.resumed += 1,
            Event::PlanRecorded { .. } => self.plan_recorded(event)?,
            Event::RepairStarted { .. } => self.repair(event)?,
            Event::RunFinished { result, at } => {
                self.view.result = Some(*result);
                self.view.finished_at = Some(*at);
            }
        }
        Ok(())
    }

    fn started(&mut self, task: &str, attempt: u32, at: Millis) -> Result<(), CorruptLog> {
        let i = self.id(task)?;
        self.unwait(i);
        self.tasks[i].next_attempt = self.tasks[i].next_attempt.max(attempt + 1);
        self.set_state(i, TaskState::Running);
        let t = &mut self.view.tasks[i];
        t.result = None;
        t.retry_not_before = None;
        t.reused_from = None;
        t.attempts.push(AttemptView {
            attempt,
            started_at: at,
            finished_at: None,
            result: None,
            output: None,
            error: None,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            cache: None,
            error_code: None,
            quality: Vec::new(),
        });
        Ok(())
    }

    fn attempt_finished(&mut self, task: &str, attempt: u32, event: &Event) -> Result<(), CorruptLog> {
        let Event::AttemptFinished {
            at,
            result,
            output,
            error,
            log,
            log_truncated,
            elapsed_us,
            outcome,
            cache,
            error_code,
            ..
        } = event
        else {
            return Ok(());
        };
        let i = self.id(task)?;
        let t = &mut self.view.tasks[i];
        let a = t
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.attempt == attempt)
            .ok_or_else(|| CorruptLog(format!("task `{task}` attempt {attempt} finished but never started")))?;
        a.finished_at = Some(*at);
        a.result = Some(*result);
        a.output = output.clone();
        a.error = error.clone();
        a.log = log.clone();
        a.log_truncated = *log_truncated;
        a.elapsed_us = *elapsed_us;
        a.cache = cache.as_deref().cloned();
        a.error_code = error_code.clone();
        t.reused_from = cache.as_deref().and_then(reused_from);
        t.result = Some(*result);
        t.outcome = *outcome;
        self.set_state(i, TaskState::Terminated);
        self.wake(i);
        Ok(())
    }

    /// Move task `id` to `state`, keeping the counts of unended and running sandboxed tasks.
    pub(super) fn set_state(&mut self, id: TaskId, state: TaskState) {
        let old = std::mem::replace(&mut self.view.tasks[id].state, state);
        let ended = |s: TaskState| s == TaskState::Terminated;
        self.unended = self.unended + usize::from(ended(old)) - usize::from(ended(state));
        if self.is_sandboxed(id) {
            let running = |s: TaskState| s == TaskState::Running;
            self.running_sandboxed = self.running_sandboxed + usize::from(running(state)) - usize::from(running(old));
        }
    }

    /// Count unended and running sandboxed tasks afresh.
    pub(super) fn recount(&mut self) {
        let states = || self.view.tasks.iter().map(|t| t.state);
        self.unended = states().filter(|&s| s != TaskState::Terminated).count();
        self.running_sandboxed = (0..self.tasks.len())
            .filter(|&id| self.view.tasks[id].state == TaskState::Running && self.is_sandboxed(id))
            .count();
    }

    /// Task `id` ended: its dependents (or its for_each parent) may move on.
    fn wake(&mut self, id: TaskId) {
        match self.tasks[id].parent {
            Some(p) => self.dirty.push(p),
            None => self.dirty.extend(self.tasks[id].dependents.iter().copied()),
        }
    }

    /// Forget a retry timer of task `id`.
    pub(super) fn unwait(&mut self, id: TaskId) {
        if let Some(at) = self.view.tasks[id].retry_not_before {
            self.waiting.remove(&(at, id));
        }
    }

    pub(super) fn id(&self, key: &str) -> Result<TaskId, CorruptLog> {
        self.id_of(key).ok_or_else(|| CorruptLog(format!("event names unknown task `{key}`")))
    }
}

/// Where a reused result came from, as the attempt's cache record says (`RUN/TASK`).
pub fn reused_from(cache: &AttemptCache) -> Option<ReusedFrom> {
    let (run, task) = cache.reused_from.as_deref()?.split_once('/')?;
    Some(ReusedFrom { run: run.parse().ok()?, task: task.to_string(), attempt: cache.reused_attempt })
}
