//! The fold of what changes a run's shape: a for_each planning (or, in a repair, planning
//! again) its iterations, a repair starting, and a repair recording a new plan version.
//! History is never rewritten: every task and attempt stays in the view; a repair starts a
//! new life of the tasks it reruns, and an iteration that succeeded with the same input
//! keeps its result.

use std::sync::Arc;

use super::fold::{initial_state, task_view};
use super::{RunState, Sched, TaskId, planned_tasks};
use crate::model::{CorruptLog, Event, PlanView, RepairView, RunPlan, TaskResult, TaskState};
use crate::spec::{TaskKind, TaskSpec, iteration_key};

impl RunState {
    /// A for_each task's inputs were rendered. Iteration `i` is task `KEY[i]`; one planned
    /// before (in an earlier life of the for_each) keeps its result when it succeeded with
    /// the same input and no repair named it, and starts a new life otherwise.
    pub(super) fn iterations_planned(&mut self, task: &str, inputs: &[String]) -> Result<(), CorruptLog> {
        let p = self.id(task)?;
        self.set_state(p, TaskState::Running);
        let parent = &self.view.tasks[p];
        let (component, hash) = (parent.component.clone(), parent.component_hash.clone());
        let template = self.template_of(p);
        self.tasks[p].iterations.clear();
        self.tasks[p].planned = true;
        for (n, input) in inputs.iter().enumerate() {
            let key = iteration_key(task, n);
            let spec = template.as_ref().map(|t| Arc::new(t(n)));
            let id = match self.index.get(&key).copied().filter(|&id| self.tasks[id].parent == Some(p)) {
                Some(id) => {
                    let s = &self.tasks[id];
                    let keep = !s.rerun
                        && s.input.as_deref() == Some(input.as_str())
                        && self.view.tasks[id].result == Some(TaskResult::Success);
                    if !keep {
                        self.new_life(id);
                    }
                    let s = &mut self.tasks[id];
                    (s.rerun, s.spec, s.input) = (false, spec, Some(input.clone()));
                    id
                }
                None => {
                    let id = self.view.tasks.len();
                    let mut view = task_view(key.clone(), component.clone(), hash.clone(), Vec::new());
                    view.parent = Some(task.to_string());
                    self.view.tasks.push(view);
                    let input = Some(input.clone());
                    self.tasks.push(Sched { spec, parent: Some(p), input, ..Sched::default() });
                    self.index.insert(key, id);
                    self.unended += 1;
                    id
                }
            };
            self.tasks[p].iterations.push(id);
        }
        self.dirty.push(p);
        Ok(())
    }

    /// How iteration `n` of for_each task `p` is made, under the plan in force.
    fn template_of(&self, p: TaskId) -> Option<impl Fn(usize) -> TaskSpec + use<>> {
        let spec = self.tasks[p].spec.clone()?;
        match &spec.kind {
            TaskKind::ForEach { template, .. } => {
                let (template, key) = (template.clone(), spec.key.clone());
                Some(move |n| template.iteration(&key, n))
            }
            _ => None,
        }
    }

    /// Task `id` starts a new life: it is as if it never ran (its attempts stay).
    fn new_life(&mut self, id: TaskId) {
        let state = initial_state(&self.view.tasks[id].depends_on);
        self.unwait(id);
        self.set_state(id, state);
        let t = &mut self.view.tasks[id];
        t.result = None;
        t.skipped_reason = None;
        t.outcome = None;
        t.child_run = None;
        t.retry_not_before = None;
        t.reused_from = None;
        let s = &mut self.tasks[id];
        s.life = t.attempts.len();
        s.planned = false;
    }

    /// A repair starts: the tasks it names start a new life (attempt numbers go on, every
    /// attempt stays). A repaired for_each plans its iterations again when it starts; an
    /// iteration named (`KEY[i]`) runs again even if it succeeded. The repair's parameters
    /// are in force from now on; the run's own stay what they were.
    pub(super) fn repair(&mut self, event: &Event) -> Result<(), CorruptLog> {
        let Event::RepairStarted { repair, tasks, parameters, at, by, plan_version, pinned } = event else {
            return Ok(());
        };
        let ids = tasks.iter().map(|key| self.id(key)).collect::<Result<Vec<_>, _>>()?;
        let mut top = Vec::new();
        for &id in &ids {
            match self.tasks[id].parent {
                Some(p) => {
                    self.tasks[id].rerun = true;
                    top.push(p);
                }
                None => top.push(id),
            }
        }
        top.sort_unstable();
        top.dedup();
        for &id in &top {
            self.new_life(id);
        }
        self.parameters = parameters.clone();
        self.view.result = None;
        self.view.finished_at = None;
        self.view.cancel_requested = false;
        self.view.repairs.push(RepairView {
            repair: *repair,
            tasks: tasks.clone(),
            at: *at,
            by: by.clone(),
            parameters: parameters.clone(),
            plan_version: *plan_version,
            pinned: *pinned,
        });
        self.stop = None;
        self.queue.clear();
        self.waiting.clear();
        self.dirty = top;
        self.recount();
        Ok(())
    }

    /// A repair picked up a changed bundle: its plan is in force from now on. Tasks keep
    /// their history; their specs, dependencies and components become the new plan's, and
    /// tasks the job gained join the run (they have not run, so a repair runs them).
    pub(super) fn plan_recorded(&mut self, event: &Event) -> Result<(), CorruptLog> {
        let Event::PlanRecorded { version, hash, changes, plan, at } = event else { return Ok(()) };
        let plan: Arc<RunPlan> = Arc::new(plan.as_ref().clone());
        for (planned, spec) in planned_tasks(&plan).into_iter().zip(&plan.job.tasks) {
            let spec = Some(Arc::new(spec.clone()));
            match self.index.get(&planned.key).copied() {
                Some(id) if self.tasks[id].parent.is_none() => {
                    let t = &mut self.view.tasks[id];
                    (t.component, t.component_hash, t.depends_on) =
                        (planned.component, planned.component_hash, planned.depends_on);
                    self.tasks[id].spec = spec;
                }
                Some(_) => return Err(CorruptLog(format!("plan {version} names iteration `{}`", planned.key))),
                None => {
                    let id = self.view.tasks.len();
                    self.index.insert(planned.key.clone(), id);
                    let view = task_view(planned.key, planned.component, planned.component_hash, planned.depends_on);
                    self.view.tasks.push(view);
                    self.tasks.push(Sched { spec, ..Sched::default() });
                    self.dirty.push(id);
                }
            }
        }
        self.relink();
        self.rebuild_graph();
        self.plan = Some(plan);
        let changes = changes.clone();
        self.view.plans.push(PlanView { version: *version, hash: hash.clone(), at: *at, changes });
        self.recount();
        Ok(())
    }

    /// Dependents and iteration specs afresh, after the plan changed.
    fn relink(&mut self) {
        for s in &mut self.tasks {
            s.dependents.clear();
        }
        for id in 0..self.tasks.len() {
            if self.tasks[id].parent.is_some() {
                continue;
            }
            let ups: Vec<TaskId> = self.view.tasks[id].depends_on.iter().filter_map(|k| self.id_of(k)).collect();
            for u in ups {
                self.tasks[u].dependents.push(id);
            }
        }
        for c in 0..self.tasks.len() {
            let Some(p) = self.tasks[c].parent else { continue };
            let key = &self.view.tasks[c].key;
            let n = key.rsplit_once('[').and_then(|(_, n)| n.strip_suffix(']')?.parse::<usize>().ok());
            if let (Some(make), Some(n)) = (self.template_of(p), n) {
                self.tasks[c].spec = Some(Arc::new(make(n)));
            }
        }
    }
}
