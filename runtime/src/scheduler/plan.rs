//! Pinning a job for a run: the job spec, the bundle's other jobs, and every
//! component with its content hash, recorded in the run's first event so the
//! run can be resumed or repaired exactly as it started.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::model::{PinnedComponent, RunId, RunPlan};
use crate::sandbox::{Limits as SandboxLimits, Sandbox, SandboxError, TaskComponent, World};
use crate::spec::{Bundle, ExecSpec, JobSpec, TaskKind, TaskSpec};

use super::SchedulerError;

/// Components loaded for a run, by component name.
pub(crate) type Loaded = BTreeMap<String, Arc<TaskComponent>>;

/// Every component a job's tasks use (for_each templates included), with the
/// world it is loaded as: a component any command task runs is a command.
fn component_worlds(job: &JobSpec) -> BTreeMap<&str, World> {
    let mut worlds = BTreeMap::new();
    for t in &job.tasks {
        let kind = match &t.kind {
            TaskKind::ForEach { template, .. } => &template.kind,
            other => other,
        };
        match kind {
            TaskKind::Component { component } => {
                worlds.entry(component.as_str()).or_insert(World::Task);
            }
            TaskKind::Command(c) => {
                worlds.insert(c.component.as_str(), World::Command);
            }
            TaskKind::Condition { .. } | TaskKind::RunJob { .. } | TaskKind::ForEach { .. } => {}
        }
    }
    worlds
}

/// The jobs a job's `run_job` tasks (and for_each templates) start.
fn called_jobs(job: &JobSpec) -> impl Iterator<Item = &str> {
    job.tasks.iter().filter_map(|t| match &t.kind {
        TaskKind::RunJob { job, .. } => Some(job.as_str()),
        TaskKind::ForEach { template, .. } => match &template.kind {
            TaskKind::RunJob { job, .. } => Some(job.as_str()),
            _ => None,
        },
        _ => None,
    })
}

/// The world of every component a plan's jobs use.
fn plan_worlds(plan: &RunPlan) -> BTreeMap<String, World> {
    let mut out = BTreeMap::new();
    for job in std::iter::once(&plan.job).chain(plan.jobs.values()) {
        for (name, world) in component_worlds(job) {
            if world == World::Command || !out.contains_key(name) {
                out.insert(name.to_string(), world);
            }
        }
    }
    out
}

/// Jobs reachable from `job` through `run_job` tasks (including itself).
fn reachable_jobs<'b>(bundle: &'b Bundle, job: &'b JobSpec) -> BTreeMap<String, &'b JobSpec> {
    let mut out = BTreeMap::new();
    let mut stack = vec![job];
    while let Some(j) = stack.pop() {
        if out.insert(j.name.clone(), j).is_some() {
            continue;
        }
        stack.extend(called_jobs(j).filter_map(|child| bundle.jobs.get(child)));
    }
    out
}

/// Load every component the job (and the jobs it starts) uses, refusing bad
/// ones before anything is written, and pin them.
pub(crate) fn pin(sandbox: &Sandbox, bundle: &Bundle, job: &JobSpec) -> Result<(RunPlan, Loaded), SchedulerError> {
    let jobs = reachable_jobs(bundle, job);
    let mut loaded = Loaded::new();
    let mut pinned = BTreeMap::new();
    for j in jobs.values() {
        for (name, world) in component_worlds(j) {
            if loaded.get(name).is_some_and(|c: &Arc<TaskComponent>| c.world() == world || world == World::Task) {
                continue;
            }
            let spec = bundle.components.get(name).ok_or_else(|| {
                SchedulerError::Parameters(format!("job `{}` uses unknown component `{name}`", j.name))
            })?;
            crate::build::check_fresh(spec).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
            let component = sandbox.load_file_as(&spec.path, world).map_err(|e| match e {
                SandboxError::Read { path, message } => SandboxError::Read {
                    path,
                    message: format!(
                        "{message} (component `{name}` of {}; did you build the tasks?)",
                        bundle.file.display()
                    ),
                },
                other => other,
            })?;
            pinned.insert(name.to_string(), PinnedComponent { path: spec.path.clone(), hash: component.hash.clone() });
            loaded.insert(name.to_string(), component);
        }
    }
    let others = jobs.into_iter().filter(|(n, _)| *n != job.name).map(|(n, j)| (n, j.clone())).collect();
    let plan = RunPlan {
        bundle_root: bundle.root.clone(),
        bundle: bundle.name.clone(),
        job: job.clone(),
        jobs: others,
        components: pinned,
        parent: None,
        target_limits: Default::default(),
        principal: String::new(),
        workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
        job_id: None,
        trigger: None,
    };
    Ok((plan, loaded))
}

/// Load a pinned plan's components again (resume, `--pinned` repair, verify): by their
/// pinned blake3 from the precompiled artifacts when they are there — the exact code the
/// run pinned, even if its file was rebuilt since — else from their files, which must
/// still hold that code.
pub(crate) fn reload(sandbox: &Sandbox, plan: &RunPlan) -> Result<Loaded, SchedulerError> {
    let mut loaded = Loaded::new();
    let worlds = plan_worlds(plan);
    for (name, pin) in &plan.components {
        let world = worlds.get(name).copied().unwrap_or(World::Task);
        let component = match sandbox.load_pinned(&pin.hash, world) {
            Some(component) => component,
            None => sandbox.load_file_as(&pin.path, world)?,
        };
        if component.hash != pin.hash {
            return Err(SchedulerError::Parameters(format!(
                "component `{name}` ({}) changed since the run pinned it ({} → {}), and the pinned code is no longer \
                 in the state directory; resuming and `--pinned` repairs run exactly the pinned code: restore it, \
                 or repair without --pinned to pick up the change",
                pin.path.display(),
                short(&pin.hash),
                short(&component.hash)
            )));
        }
        loaded.insert(name.clone(), component);
    }
    Ok(loaded)
}

/// The plan of a bundle-less run of one component (`sluice task run`).
pub(crate) fn single(path: &Path, component: &TaskComponent, single: super::SingleTask) -> RunPlan {
    let key = task_key_for(path);
    let limits: SandboxLimits = single.limits;
    let kind = match single.command {
        None => TaskKind::Component { component: key.clone() },
        Some(c) => TaskKind::Command(crate::spec::CommandSpec { component: key.clone(), ..c }),
    };
    let task = TaskSpec {
        key: key.clone(),
        kind,
        depends_on: Vec::new(),
        run_if: Default::default(),
        timeout: Some(limits.timeout),
        retries: None,
        rerun_on_resume: true,
        exec: ExecSpec {
            params: single.params,
            limits: crate::spec::Limits {
                memory: Some(limits.memory),
                max_log: Some(limits.max_log),
                max_output: Some(limits.max_output),
                fuel: None,
                max_out: None,
            },
            mounts: single.mounts,
            allow_hosts: single.allow_hosts,
            ..ExecSpec::default()
        },
        expectations: Vec::new(),
        datasets: BTreeMap::new(),
        register_model: None,
        models: Vec::new(),
    };
    let job = JobSpec {
        name: "task".into(),
        parameters: BTreeMap::new(),
        timeout: None,
        cleanup_timeout: None,
        max_parallel_tasks: None,
        // a single component run is not a job anyone else runs: no limit between such runs
        max_concurrent_runs: crate::spec::MAX_MAX_CONCURRENT_RUNS,
        queue: true,
        limits: Default::default(),
        tasks: vec![task],
        permissions: vec![],
        trigger: None,
        notify: Default::default(),
    };
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    RunPlan {
        bundle_root: root,
        bundle: String::new(),
        job,
        jobs: BTreeMap::new(),
        components: BTreeMap::from([(key, PinnedComponent { path: path.to_path_buf(), hash: component.hash.clone() })]),
        parent: None,
        target_limits: Default::default(),
        principal: String::new(),
        workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
        job_id: None,
        trigger: None,
    }
}

/// The first 12 hex digits of a blake3.
pub(crate) fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// A task key for a bundle-less run: the file stem, reduced to name characters.
pub(crate) fn task_key_for(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("task");
    let key: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(100)
        .collect();
    if key.is_empty() { "task".into() } else { key }
}

/// The plan of a child run started by `run_job` task `task` of run `parent`.
pub(crate) fn child(plan: &RunPlan, job: &str, parent: RunId, task: &str) -> Result<RunPlan, SchedulerError> {
    let spec = plan
        .jobs
        .get(job)
        .ok_or_else(|| SchedulerError::Parameters(format!("run_job: job `{job}` is not part of this run's plan")))?;
    let mut jobs = plan.jobs.clone();
    jobs.remove(job);
    jobs.insert(plan.job.name.clone(), plan.job.clone());
    Ok(RunPlan {
        bundle_root: plan.bundle_root.clone(),
        bundle: plan.bundle.clone(),
        job: spec.clone(),
        jobs,
        components: plan.components.clone(),
        parent: Some((parent, task.to_string())),
        target_limits: plan.target_limits,
        principal: plan.principal.clone(),
        workspace: plan.workspace.clone(),
        job_id: None,
        trigger: None,
    })
}
