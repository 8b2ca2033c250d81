//! The fold: one event at a time into the run's view and the scheduler's bookkeeping.
//! An event that cannot follow the ones before it is a [`CorruptLog`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{RunState, Sched, Stop, TaskId};
use crate::model::{AttemptView, CorruptLog, Event, Millis, RunView, TaskState, TaskView, default_workspace};
use crate::spec::{TaskKind, iteration_key};

fn initial_state(depends_on: &[String]) -> TaskState {
    if depends_on.is_empty() { TaskState::Pending } else { TaskState::Blocked }
}

fn task_view(key: String, component: String, component_hash: String, depends_on: Vec<String>) -> TaskView {
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
            repairs: Vec::new(),
            resumed: 0,
            cancel_requested: false,
            workspace: plan.as_ref().map_or_else(default_workspace, |p| p.workspace.clone()),
            job_id: plan.as_ref().and_then(|p| p.job_id),
            queued: None,
            dequeued_at: None,
        };
        let dirty = (0..sched.len()).collect();
        Ok(RunState {
            unended: view.tasks.len(),
            running_sandboxed: 0,
            view,
            plan,
            tasks: sched,
            index,
            stop: None,
            queue: Default::default(),
            waiting: Default::default(),
            dirty,
        })
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
            Event::CancelRequested { reason, timed_out, .. } => {
                self.view.cancel_requested = true;
                self.stop.get_or_insert(Stop { reason: reason.clone(), timed_out: *timed_out });
            }
            Event::RunQueued { reason, .. } => self.view.queued = Some(reason.clone()),
            Event::RunDequeued { at } => {
                self.view.queued = None;
                self.view.dequeued_at = Some(*at);
            }
            Event::RunResumed { .. } => self.view.resumed += 1,
            Event::RepairStarted { repair, tasks, parameters, at } => self.repair(*repair, tasks, parameters, *at)?,
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
        });
        Ok(())
    }

    fn attempt_finished(&mut self, task: &str, attempt: u32, event: &Event) -> Result<(), CorruptLog> {
        let Event::AttemptFinished {
            at, result, output, error, log, log_truncated, elapsed_us, outcome, cache, ..
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
        t.result = Some(*result);
        t.outcome = *outcome;
        self.set_state(i, TaskState::Terminated);
        self.wake(i);
        Ok(())
    }

    fn iterations_planned(&mut self, task: &str, inputs: &[String]) -> Result<(), CorruptLog> {
        let p = self.id(task)?;
        self.set_state(p, TaskState::Running);
        let parent = &self.view.tasks[p];
        let (component, hash) = (parent.component.clone(), parent.component_hash.clone());
        let template = match self.tasks[p].spec.as_deref().map(|s| &s.kind) {
            Some(TaskKind::ForEach { template, .. }) => Some(template.clone()),
            _ => None,
        };
        self.tasks[p].iterations.clear();
        self.tasks[p].planned = true;
        for (n, input) in inputs.iter().enumerate() {
            let key = iteration_key(task, n);
            let id = self.view.tasks.len();
            let mut view = task_view(key.clone(), component.clone(), hash.clone(), Vec::new());
            view.parent = Some(task.to_string());
            self.view.tasks.push(view);
            self.tasks.push(Sched {
                spec: template.as_ref().map(|t| Arc::new(t.iteration(task, n))),
                parent: Some(p),
                input: Some(input.clone()),
                ..Sched::default()
            });
            self.index.insert(key, id);
            self.tasks[p].iterations.push(id);
            self.unended += 1;
        }
        self.dirty.push(p);
        Ok(())
    }

    /// Reset the repaired tasks (dropping a repaired for_each's iterations), keeping every
    /// attempt; attempt numbers go on.
    fn repair(
        &mut self,
        repair: u32,
        tasks: &[String],
        parameters: &BTreeMap<String, String>,
        at: Millis,
    ) -> Result<(), CorruptLog> {
        let ids = tasks.iter().map(|key| self.id(key)).collect::<Result<Vec<_>, _>>()?;
        let keep: Vec<bool> = self.tasks.iter().map(|s| s.parent.is_none_or(|p| !ids.contains(&p))).collect();
        let mut kept = keep.iter();
        self.view.tasks.retain(|_| kept.next().copied().unwrap_or(true));
        let mut kept = keep.iter();
        self.tasks.retain(|_| kept.next().copied().unwrap_or(true));
        self.index = self.view.tasks.iter().enumerate().map(|(i, t)| (t.key.clone(), i)).collect();
        for s in &mut self.tasks {
            s.iterations.clear();
        }
        for i in 0..self.tasks.len() {
            let parent = self.view.tasks[i].parent.as_ref().and_then(|p| self.index.get(p)).copied();
            self.tasks[i].parent = parent;
            if let Some(p) = parent {
                self.tasks[p].iterations.push(i);
            }
        }
        for &i in &ids {
            let t = &mut self.view.tasks[i];
            t.state = initial_state(&t.depends_on);
            t.result = None;
            t.skipped_reason = None;
            t.outcome = None;
            t.child_run = None;
            t.retry_not_before = None;
            self.tasks[i].life = t.attempts.len();
            self.tasks[i].planned = false;
        }
        self.view.parameters = parameters.clone();
        self.view.result = None;
        self.view.finished_at = None;
        self.view.cancel_requested = false;
        self.view.repairs.push(crate::model::RepairView { repair, tasks: tasks.to_vec(), at });
        self.stop = None;
        self.queue.clear();
        self.waiting.clear();
        self.dirty = ids;
        self.recount();
        Ok(())
    }

    /// Move task `id` to `state`, keeping the counts of unended and running sandboxed tasks.
    fn set_state(&mut self, id: TaskId, state: TaskState) {
        let old = std::mem::replace(&mut self.view.tasks[id].state, state);
        let ended = |s: TaskState| s == TaskState::Terminated;
        self.unended = self.unended + usize::from(ended(old)) - usize::from(ended(state));
        if self.is_sandboxed(id) {
            let running = |s: TaskState| s == TaskState::Running;
            self.running_sandboxed = self.running_sandboxed + usize::from(running(state)) - usize::from(running(old));
        }
    }

    /// Count unended and running sandboxed tasks afresh.
    fn recount(&mut self) {
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
    fn unwait(&mut self, id: TaskId) {
        if let Some(at) = self.view.tasks[id].retry_not_before {
            self.waiting.remove(&(at, id));
        }
    }

    fn id(&self, key: &str) -> Result<TaskId, CorruptLog> {
        self.id_of(key).ok_or_else(|| CorruptLog(format!("event names unknown task `{key}`")))
    }
}
