//! Picking a run up from its event log: after a crash (resume), for a repair,
//! or to cancel a run no process is running.
//!
//! Rebuilds the coordinator's state from the folded view. Attempts that were
//! running when the process died are recorded as failed "runtime restarted"
//! and go through their retry policy; a condition is simply evaluated again
//! (it has no effects); a run_job task's child run is resumed too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Event, RunPlan, RunView, TaskResult, TaskState};
use crate::spec::TaskKind;

use super::exec::{Done, Exec, time_of};
use super::journal::Journal;
use super::plan::Loaded;
use super::{RunOptions, Runtime, SchedulerError};

/// Message of an attempt cut short by the death of its process.
pub const RESTARTED: &str = "runtime restarted: the process running this attempt died";

impl Exec {
    /// Rebuild the coordinator of a run from its log.
    pub(crate) fn restore(
        rt: Runtime,
        opts: RunOptions,
        plan: RunPlan,
        components: Arc<Loaded>,
        journal: Journal,
    ) -> Result<Exec, SchedulerError> {
        let view = journal.view()?;
        let inputs = planned_inputs(journal.events());
        let start = time_of(view.created_at);
        let mut exec =
            Exec::new(rt, opts, plan, components, journal, view.parameters.clone(), view.target.clone(), start);
        // top-level tasks first, then iterations in the order they were planned
        for tv in view.tasks.iter().filter(|t| t.parent.is_none()) {
            let Some(&i) = exec.index.get(&tv.key) else {
                return Err(SchedulerError::Corrupt {
                    run: view.run_id,
                    message: format!("task `{}` is not in the run's plan", tv.key),
                });
            };
            copy_state(&mut exec, i, tv);
        }
        for (parent, items) in &inputs {
            let Some(&p) = exec.index.get(parent) else { continue };
            if !view.tasks.iter().any(|t| t.parent.as_deref() == Some(parent.as_str())) {
                continue; // iterations removed by a later repair
            }
            if let TaskKind::ForEach { concurrency, template, .. } = exec.slots[p].spec.kind.clone() {
                restore_iterations(&mut exec, p, items, concurrency as usize, &template, &view);
            }
        }
        Ok(exec)
    }

    /// Settle what the dead process left in flight, then hand over to `drive`.
    pub(crate) fn settle_interrupted(&mut self, view: &RunView) -> Result<(), SchedulerError> {
        let now_ms = self.now();
        for i in 0..self.slots.len() {
            let key = self.slots[i].spec.key.clone();
            let Some(tv) = view.task(&key) else { continue };
            match self.slots[i].state {
                TaskState::Queued => self.ready.push_back(i),
                TaskState::WaitingForRetry => {
                    let wait = tv.retry_not_before.unwrap_or(now_ms).saturating_sub(now_ms);
                    self.waiting.push((Instant::now() + Duration::from_millis(wait), i));
                }
                TaskState::Running => self.interrupted(i, tv)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn interrupted(&mut self, i: usize, tv: &crate::model::TaskView) -> Result<(), SchedulerError> {
        let open = tv.attempts.last().filter(|a| a.finished_at.is_none()).map(|a| a.attempt);
        if self.stop.is_some() {
            // canceling a run nobody runs: what was in flight ends canceled
            if let Some(attempt) = open {
                self.record_finished(
                    i,
                    attempt,
                    TaskResult::Canceled,
                    None,
                    Some(format!("canceled ({RESTARTED})")),
                    None,
                )?;
            }
            return self.ended(i, TaskResult::Canceled);
        }
        match self.slots[i].spec.kind.clone() {
            TaskKind::Component { .. } | TaskKind::Command(_) => {
                let Some(attempt) = open else { return self.queue(i) };
                self.record_restarted(i, attempt)?;
                if !self.schedule_retry(i, attempt)? {
                    self.ended(i, TaskResult::Failed)?;
                }
            }
            TaskKind::Condition { .. } => {
                if let Some(attempt) = open {
                    self.record_restarted(i, attempt)?;
                }
                self.queue(i)?;
            }
            TaskKind::ForEach { .. } => {
                // its iterations carry on; if it never expanded, expand it now
                if self.slots[i].iterations.is_empty() {
                    if let Some(attempt) = open {
                        self.record_restarted(i, attempt)?;
                    }
                    self.queue(i)?;
                } else if self.slots[i].iterations.iter().all(|&c| self.slots[c].state == TaskState::Terminated) {
                    self.iteration_ended(i)?;
                }
            }
            TaskKind::RunJob { .. } => match (tv.child_run, open) {
                (Some(child), Some(attempt)) => {
                    let rt = self.rt.clone();
                    let opts = RunOptions { cancel: self.run_cancel.clone(), ..self.opts.clone() };
                    let handle = self.running.spawn(async move {
                        let result = rt.resume_child(child, opts).await;
                        Done::Child { slot: i, attempt, result }
                    });
                    self.running_ids.insert(handle.id(), (i, attempt));
                }
                (_, open) => {
                    if let Some(attempt) = open {
                        self.record_restarted(i, attempt)?;
                    }
                    self.queue(i)?;
                }
            },
        }
        Ok(())
    }

    fn record_restarted(&mut self, i: usize, attempt: u32) -> Result<(), SchedulerError> {
        self.record_finished(i, attempt, TaskResult::Failed, None, Some(RESTARTED.into()), None)
    }
}

fn copy_state(exec: &mut Exec, i: usize, tv: &crate::model::TaskView) {
    let s = &mut exec.slots[i];
    s.state = tv.state;
    s.result = tv.result;
    s.outcome = tv.outcome;
    s.next_attempt = tv.attempts.iter().map(|a| a.attempt + 1).max().unwrap_or(0);
}

fn restore_iterations(
    exec: &mut Exec,
    p: usize,
    items: &[String],
    concurrency: usize,
    template: &crate::spec::ForEachTemplate,
    view: &RunView,
) {
    let key = exec.slots[p].spec.key.clone();
    exec.slots[p].concurrency = concurrency.max(1);
    for (n, item) in items.iter().enumerate() {
        let spec = template.iteration(&key, n);
        let idx = exec.slots.len();
        exec.index.insert(spec.key.clone(), idx);
        exec.slots.push(super::exec::Slot::new(spec, Some(p), Some(item.clone())));
        exec.dependents.push(Vec::new());
        exec.slots[p].iterations.push(idx);
        if let Some(tv) = view.task(&crate::model::iteration_key(&key, n)) {
            copy_state(exec, idx, tv);
            if tv.state != TaskState::Pending {
                exec.slots[p].released += 1;
            }
        }
    }
    // release more iterations if fewer than the bound are in flight
    let in_flight = exec.slots[p]
        .iterations
        .iter()
        .filter(|&&c| !matches!(exec.slots[c].state, TaskState::Pending | TaskState::Terminated))
        .count();
    let mut room = exec.slots[p].concurrency.saturating_sub(in_flight);
    while room > 0 && exec.slots[p].released < items.len() {
        let c = exec.slots[p].iterations[exec.slots[p].released];
        exec.slots[p].released += 1;
        exec.slots[c].state = TaskState::Queued;
        exec.ready.push_back(c);
        room -= 1;
    }
}

/// The latest planned inputs of each for_each task, from the log.
fn planned_inputs(events: &[Event]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in events {
        if let Event::IterationsPlanned { task, inputs, .. } = e {
            out.insert(task.clone(), inputs.clone());
        }
    }
    out
}
