//! Repairing a finished run inside the same run. By default a repair reads the bundle as
//! it is now (a fixed parameter, a rebuilt component) and, when that changes the run's
//! plan, records the new plan as a plan version of the run (`PlanRecorded`: its hash and
//! what changed) before the repair starts; `--pinned` repairs with the plan in force. The
//! tasks it reruns start a new life; every earlier attempt stays in the log; the repair's
//! parameters and who started it are recorded with it, never over the run's own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::model::{Event, RunId, RunPlan, RunView, TaskResult};
use crate::spec::{Bundle, TaskKind};
use crate::state::{RunState, plan_hash};

use super::params::{RunLevel, check_overrides, render_run_level};
use super::plan::{self, Loaded};
use super::plan_diff;
use super::runs::{PreparedRun, corrupt, no_plan};
use super::{RunOptions, Runtime, SchedulerError, check_mount_roots};

/// What to repair.
#[derive(Debug, Clone, Default)]
pub struct RepairRequest {
    /// Tasks to rerun (`KEY`; `KEY[i]` for one for_each iteration, `KEY[*]` for all of
    /// them); empty = every task that did not succeed. A for_each reruns the iterations
    /// that did not succeed (and any whose input changed); the others keep their results.
    pub tasks: Vec<String>,
    /// Also rerun every task downstream of the named ones.
    pub with_dependents: bool,
    /// Job parameter overrides for the repair.
    pub overrides: BTreeMap<String, String>,
    /// Repair with the plan in force (the run's own, or the one its last repair recorded)
    /// without reading the bundle again; its components must not have changed.
    pub pinned: bool,
    /// The bundle to repair with; `None`: read it again from the run's bundle directory.
    pub bundle: Option<Bundle>,
}

/// The plan a repair runs with: the new one (and what changed) or the one in force.
struct Chosen {
    plan: Arc<RunPlan>,
    loaded: Loaded,
    changes: Vec<String>,
}

impl Runtime {
    /// Rerun tasks of a finished run inside the same run.
    pub async fn repair(&self, run: RunId, req: RepairRequest, opts: &RunOptions) -> Result<RunView, SchedulerError> {
        self.prepare_repair(run, req, opts)?.drive().await
    }

    /// Record a repair of a finished run (its plan version if the plan changed, then
    /// `RepairStarted`, flushed: the run is in flight again) and return it to be driven.
    /// Refused, with nothing written, if the run is unfinished, names unknown tasks or
    /// parameters, or has nothing to rerun.
    pub fn prepare_repair(
        &self,
        run: RunId,
        req: RepairRequest,
        opts: &RunOptions,
    ) -> Result<PreparedRun, SchedulerError> {
        let events = self.store.events(run)?;
        if events.is_empty() {
            return Err(SchedulerError::NoSuchRun(run));
        }
        let state = RunState::from_events(&events).map_err(|e| corrupt(run, e))?;
        if !state.finished() {
            let message = "is not finished; resume it (`sluice runs resume`) or cancel it first".into();
            return Err(SchedulerError::Refused { run, message });
        }
        let chosen = self.choose_plan(&state, &req)?;
        let pinned = state.plan().is_some_and(|current| pinned(&req, current));
        let tasks = repair_set(&chosen.plan, state.view(), &req)?;
        if tasks.is_empty() {
            let message = "has no failed tasks to repair; name tasks with --task".into();
            return Err(SchedulerError::Refused { run, message });
        }
        let parameters = self.repair_parameters(&state, &chosen.plan, &req.overrides)?;
        let version = state.plan_version() + u32::from(!chosen.changes.is_empty());
        let mut coordinator = self.continuing(state, &events, Arc::new(chosen.loaded), opts.clone())?;
        let at = self.clock.now_millis();
        if !chosen.changes.is_empty() {
            let (hash, plan) = (plan_hash(&chosen.plan), Box::new(chosen.plan.as_ref().clone()));
            coordinator.record(Event::PlanRecorded { version, hash, changes: chosen.changes, plan, at })?;
        }
        let repair = coordinator.state.view().repairs.len() as u32 + 1;
        let by = opts.principal.clone();
        coordinator.record(Event::RepairStarted {
            repair,
            tasks,
            parameters,
            at,
            by,
            plan_version: version,
            pinned,
        })?;
        coordinator.clear_stop();
        self.store.put_summary(&coordinator.state.view().summary())?;
        coordinator.restore_produced();
        coordinator.journal.flush()?;
        Ok(PreparedRun::new(coordinator))
    }

    /// `--pinned`: the plan in force. Otherwise the bundle as it is now: a new plan when
    /// anything in it changed (a repair never drops a task from the run's history).
    fn choose_plan(&self, state: &RunState, req: &RepairRequest) -> Result<Chosen, SchedulerError> {
        let run = state.run_id();
        let current = state.plan().cloned().ok_or_else(|| no_plan(run))?;
        if pinned(req, &current) {
            let loaded = plan::reload(&self.sandbox, &current)?;
            return Ok(Chosen { plan: current, loaded, changes: Vec::new() });
        }
        let loaded_bundle;
        let bundle = match &req.bundle {
            Some(bundle) => bundle,
            None => {
                // the run's target's variables and overrides (--var values are not kept)
                let opts = crate::spec::LoadOptions { target: Some(state.view().target.clone()), ..Default::default() };
                loaded_bundle =
                    crate::spec::load_with(&current.bundle_root, &opts).map_err(|e| SchedulerError::Refused {
                        run,
                        message: format!(
                            "a repair reads the bundle again and it does not load: {e} \
                         (fix it, or repair with --pinned to run the plan the run has)"
                        ),
                    })?;
                &loaded_bundle
            }
        };
        let Some(job) = bundle.jobs.get(&current.job.name) else {
            let message = format!(
                "job `{}` is no longer in {}; repair with --pinned to run the plan the run has",
                current.job.name,
                bundle.file.display()
            );
            return Err(SchedulerError::Refused { run, message });
        };
        let target = &state.view().target;
        check_mount_roots(bundle, job, target)?;
        let (mut plan, loaded) = plan::pin(&self.sandbox, bundle, job)?;
        plan.target_limits = bundle.targets.get(target).map(|t| t.limits).unwrap_or_default();
        plan.principal = current.principal.clone();
        plan.workspace = current.workspace.clone();
        plan.parent = current.parent.clone();
        if let Some(gone) = current.job.tasks.iter().find(|t| plan.job.task(&t.key).is_none()) {
            let message = format!(
                "task `{}` is no longer in job `{}`, and a repair never drops a task from a run's history; \
                 repair with --pinned (the plan the run has) or start a new run",
                gone.key, plan.job.name
            );
            return Err(SchedulerError::Refused { run, message });
        }
        let changes = plan_diff::changes(&current, &plan);
        match changes.is_empty() {
            true => Ok(Chosen { plan: current, loaded, changes }),
            false => Ok(Chosen { plan: Arc::new(plan), loaded, changes }),
        }
    }

    /// The parameters a repair runs with: those in force (the run's, or its last
    /// repair's), as the plan declares them (a parameter the job gained takes its
    /// default), with `--param` overrides.
    fn repair_parameters(
        &self,
        state: &RunState,
        plan: &RunPlan,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, SchedulerError> {
        check_overrides(&plan.job, overrides)?;
        let at = RunLevel::of(plan, state.run_id(), crate::model::time_of(state.view().created_at));
        let mut parameters = BTreeMap::new();
        for (name, default) in &plan.job.parameters {
            let value = match (overrides.get(name), state.parameters().get(name)) {
                (Some(given), _) => render_run_level(at, given)?,
                (None, Some(kept)) => kept.clone(),
                (None, None) => render_run_level(at, default)?,
            };
            parameters.insert(name.clone(), value);
        }
        Ok(parameters)
    }
}

/// Whether a repair runs the plan in force: asked to (`--pinned`), or the run has no
/// bundle to read again (`sluice task run`).
fn pinned(req: &RepairRequest, current: &RunPlan) -> bool {
    req.pinned || current.bundle.is_empty()
}

/// The tasks a repair reruns (plan order): the named ones (or every top-level task that
/// did not succeed, and any the plan gained), with their dependents if asked. An
/// iteration `KEY[i]` is named as such; `KEY[*]` names every iteration of `KEY`.
fn repair_set(plan: &RunPlan, view: &RunView, req: &RepairRequest) -> Result<Vec<String>, SchedulerError> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut iterations: Vec<String> = Vec::new();
    let never_ran = |key: &str| view.task(key).is_none_or(|t| t.result.is_none());
    if req.tasks.is_empty() {
        for t in &plan.job.tasks {
            let ok =
                view.task(&t.key).is_some_and(|v| matches!(v.result, Some(TaskResult::Success | TaskResult::Excluded)));
            if !ok {
                chosen.insert(t.key.clone());
            }
        }
    }
    for k in &req.tasks {
        match k.strip_suffix(']').and_then(|k| k.split_once('[')) {
            Some((parent, which)) => {
                let is_each = matches!(plan.job.task(parent).map(|t| &t.kind), Some(TaskKind::ForEach { .. }));
                let its = view.tasks.iter().filter(|t| t.parent.as_deref() == Some(parent));
                let named: Vec<String> = its.filter(|t| which == "*" || t.key == *k).map(|t| t.key.clone()).collect();
                if !is_each || named.is_empty() {
                    return Err(SchedulerError::Parameters(format!(
                        "--task {k}: the run has no such iteration (`KEY[i]` names iteration i of for_each task KEY, \
                         `KEY[*]` all of them)"
                    )));
                }
                chosen.insert(parent.to_string());
                iterations.extend(named);
            }
            None if plan.job.task(k).is_some() => {
                chosen.insert(k.clone());
            }
            None => {
                let known: Vec<&str> = plan.job.tasks.iter().map(|t| t.key.as_str()).collect();
                return Err(SchedulerError::Parameters(format!(
                    "--task {k}: the run has no task `{k}` (it has {})",
                    known.join(", ")
                )));
            }
        }
    }
    // a task the plan gained has never run: the repair runs it (else the run never ends)
    chosen.extend(plan.job.tasks.iter().filter(|t| never_ran(&t.key)).map(|t| t.key.clone()));
    if req.with_dependents {
        let mut grew = true;
        while grew {
            grew = false;
            for t in &plan.job.tasks {
                if !chosen.contains(&t.key) && t.upstream_keys().any(|u| chosen.contains(u)) {
                    chosen.insert(t.key.clone());
                    grew = true;
                }
            }
        }
    }
    let mut out: Vec<String> =
        plan.job.tasks.iter().filter(|t| chosen.contains(&t.key)).map(|t| t.key.clone()).collect();
    out.extend(iterations);
    Ok(out)
}
