//! The scheduler: turning a job run into task attempts and recording them.
//!
//! Owns the order tasks run in, the resolution of their parameters
//! (`{{ … }}` references) just before each starts, the translation of sandbox
//! outcomes into task results, and the run's result. Every transition is
//! appended to the run's event log before anything acts on it, and the log is
//! flushed before the run's result is reported. This version runs tasks one
//! at a time in dependency order; a task whose upstream did not succeed ends
//! `upstream_failed` (or `upstream_canceled`) without running.
//!
//! It must never touch wasmtime (that is the sandbox) or sled (that is the
//! store), and never print: progress goes to an [`Observer`].

mod params;
mod result;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};


use crate::model::{Clock, Event, PlannedTask, RunId, RunResult, RunView, TaskResult};
use crate::sandbox::{Invocation, Limits, Sandbox, SandboxError, Status, TaskComponent, TaskContext};
use crate::spec::{Bundle, JobSpec, SpecError, TaskSpec};
use crate::store::{Store, StoreError};

pub use params::resolve_job_parameters;
pub use result::run_result;

/// Why a run could not be started or recorded.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Parameters(String),
    #[error("run {run}: {message}")]
    Corrupt { run: RunId, message: String },
}

/// Receives every event as it is appended (for progress output).
pub trait Observer: Send + Sync {
    fn event(&self, run: RunId, event: &Event);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _run: RunId, _event: &Event) {}
}

/// What a run needs from its surroundings.
pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub sandbox: Arc<Sandbox>,
    pub clock: Arc<dyn Clock>,
    /// Set (e.g. on Ctrl-C) to cancel the run in flight.
    pub cancel: Arc<AtomicBool>,
}

/// A job to run.
pub struct JobRequest<'a> {
    pub bundle: &'a Bundle,
    pub job: &'a JobSpec,
    /// `--param k=v` overrides of job parameters.
    pub overrides: BTreeMap<String, String>,
    pub target: String,
}

impl Runtime {
    /// Run a job from a bundle to its end. Components are loaded (and bad ones
    /// refused) before the run is created, so a bad bundle leaves no run behind.
    pub async fn run_job(&self, req: JobRequest<'_>, observer: &dyn Observer) -> Result<RunView, SchedulerError> {
        let components = self.load_components(req.bundle, req.job)?;
        let run_id = self.store.next_run_id()?;
        let started = self.clock.now();
        let parameters = resolve_job_parameters(req.job, &req.overrides, run_id, started)?;
        let planned = req
            .job
            .tasks
            .iter()
            .map(|t| PlannedTask {
                key: t.key.clone(),
                component: t.component.clone(),
                component_hash: components[&t.component].hash.clone(),
                depends_on: t.depends_on.clone(),
            })
            .collect();
        let mut run = RunState::new(self, run_id, observer);
        run.append(Event::RunCreated {
            run_id,
            job: req.job.name.clone(),
            source: req.bundle.root.display().to_string(),
            target: req.target.clone(),
            parameters: parameters.clone(),
            tasks: planned,
            at: self.clock.now_millis(),
        })?;
        let view = run.view()?;
        self.store.put_summary(&view.summary())?;

        let mut results: BTreeMap<String, TaskResult> = BTreeMap::new();
        for task in &req.job.tasks {
            let result = match upstream_problem(task, &results) {
                Some((result, reason)) => {
                    run.append(Event::TaskSkipped { task: task.key.clone(), result, reason, at: self.clock.now_millis() })?;
                    result
                }
                None if self.cancel.load(Ordering::Relaxed) => {
                    let reason = "the run was canceled before the task started".to_string();
                    run.append(Event::TaskSkipped { task: task.key.clone(), result: TaskResult::Canceled, reason, at: self.clock.now_millis() })?;
                    TaskResult::Canceled
                }
                None => {
                    let ctx = AttemptSpec { job: req.job, task, target: &req.target, parameters: &parameters, started };
                    run.attempt(&components[&task.component], ctx).await?
                }
            };
            results.insert(task.key.clone(), result);
        }
        run.finish(req.job.tasks.iter().map(|t| (t.key.as_str(), t.depends_on.as_slice())), &results)
    }

    /// Run one component with no bundle (`sluice task run`).
    pub async fn run_component(
        &self,
        path: &Path,
        params: BTreeMap<String, String>,
        limits: Limits,
        observer: &dyn Observer,
    ) -> Result<RunView, SchedulerError> {
        let component = self.sandbox.load_file(path)?;
        let key = task_key_for(path);
        let run_id = self.store.next_run_id()?;
        let mut run = RunState::new(self, run_id, observer);
        run.append(Event::RunCreated {
            run_id,
            job: "task".into(),
            source: path.display().to_string(),
            target: "dev".into(),
            parameters: BTreeMap::new(),
            tasks: vec![PlannedTask { key: key.clone(), component: key.clone(), component_hash: component.hash.clone(), depends_on: vec![] }],
            at: self.clock.now_millis(),
        })?;
        self.store.put_summary(&run.view()?.summary())?;
        let mut invocation = Invocation::new(&key, self.store.clone(), run_id);
        invocation.params = params;
        invocation.limits = limits;
        invocation.logical_start = self.clock.now();
        invocation.cancel = self.cancel.clone();
        let result = run.execute(&component, &key, 0, invocation).await?;
        let deps: [String; 0] = [];
        run.finish([(key.as_str(), &deps[..])].into_iter(), &BTreeMap::from([(key.clone(), result)]))
    }

    fn load_components(&self, bundle: &Bundle, job: &JobSpec) -> Result<BTreeMap<String, Arc<TaskComponent>>, SchedulerError> {
        let mut loaded = BTreeMap::new();
        for task in &job.tasks {
            if loaded.contains_key(&task.component) {
                continue;
            }
            let spec = bundle.components.get(&task.component).ok_or_else(|| {
                SchedulerError::Parameters(format!("task `{}` names unknown component `{}`", task.key, task.component))
            })?;
            let component = self.sandbox.load_file(&spec.path).map_err(|e| match e {
                SandboxError::Read { path, message } => SandboxError::Read {
                    path,
                    message: format!("{message} (component `{}` of {}; did you build the tasks?)", spec.name, bundle.file.display()),
                },
                other => other,
            })?;
            loaded.insert(task.component.clone(), component);
        }
        Ok(loaded)
    }
}

/// A task key for a bundle-less run: the file stem, reduced to name characters.
fn task_key_for(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("task");
    let key: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(100).collect();
    if key.is_empty() { "task".into() } else { key }
}

/// If a dependency did not succeed, the result this task takes without running.
fn upstream_problem(task: &TaskSpec, results: &BTreeMap<String, TaskResult>) -> Option<(TaskResult, String)> {
    let mut failed = Vec::new();
    let mut canceled = Vec::new();
    for dep in &task.depends_on {
        match results.get(dep) {
            Some(TaskResult::Success | TaskResult::Excluded) => {}
            Some(TaskResult::Canceled | TaskResult::UpstreamCanceled) => canceled.push(dep.as_str()),
            _ => failed.push(dep.as_str()),
        }
    }
    if !failed.is_empty() {
        return Some((TaskResult::UpstreamFailed, format!("upstream task {} did not succeed", quote_list(&failed))));
    }
    if !canceled.is_empty() {
        return Some((TaskResult::UpstreamCanceled, format!("upstream task {} was canceled", quote_list(&canceled))));
    }
    None
}

fn quote_list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// What one attempt of a bundle task needs to know about its run.
struct AttemptSpec<'a> {
    job: &'a JobSpec,
    task: &'a TaskSpec,
    target: &'a str,
    parameters: &'a BTreeMap<String, String>,
    started: std::time::SystemTime,
}

/// One run in flight: appends events, keeps the observer informed.
struct RunState<'r> {
    rt: &'r Runtime,
    run_id: RunId,
    events: Vec<Event>,
    observer: &'r dyn Observer,
}

impl<'r> RunState<'r> {
    fn new(rt: &'r Runtime, run_id: RunId, observer: &'r dyn Observer) -> Self {
        RunState { rt, run_id, events: Vec::new(), observer }
    }

    /// Append one event to the durable log (unflushed: group commit), then tell the observer.
    fn append(&mut self, event: Event) -> Result<(), SchedulerError> {
        self.rt.store.append(self.run_id, std::slice::from_ref(&event))?;
        self.observer.event(self.run_id, &event);
        self.events.push(event);
        Ok(())
    }

    fn view(&self) -> Result<RunView, SchedulerError> {
        RunView::from_events(&self.events).map_err(|e| SchedulerError::Corrupt { run: self.run_id, message: e.0 })
    }

    async fn attempt(&mut self, component: &TaskComponent, spec: AttemptSpec<'_>) -> Result<TaskResult, SchedulerError> {
        let attempt = 0;
        let task = spec.task;
        let rendered = params::render_task_params(task, spec.job, spec.parameters, self.run_id, spec.started, attempt, &*self.rt.store);
        let params = match rendered {
            Ok(p) => p,
            Err(message) => {
                let at = self.rt.clock.now_millis();
                self.append(Event::AttemptStarted { task: task.key.clone(), attempt, at })?;
                self.append(Event::AttemptFinished {
                    task: task.key.clone(),
                    attempt,
                    at,
                    result: TaskResult::Failed,
                    output: None,
                    error: Some(message),
                    log: String::new(),
                    log_truncated: false,
                    elapsed_us: 0,
                })?;
                return Ok(TaskResult::Failed);
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            memory: task.limits.memory.unwrap_or(defaults.memory),
            timeout: task.timeout.or(spec.job.timeout).unwrap_or(defaults.timeout),
            max_log: task.limits.max_log.unwrap_or(defaults.max_log),
            max_output: task.limits.max_output.unwrap_or(defaults.max_output),
        };
        let invocation = Invocation {
            context: TaskContext {
                job: spec.job.name.clone(),
                run_id: self.run_id.to_string(),
                task_key: task.key.clone(),
                attempt,
                target: spec.target.to_string(),
            },
            params,
            limits,
            secrets: task.secrets.clone(),
            readable_tasks: upstream_closure(spec.job, task),
            store: self.rt.store.clone(),
            run: self.run_id,
            logical_start: spec.started,
            cancel: self.rt.cancel.clone(),
        };
        self.execute(component, &task.key, attempt, invocation).await
    }

    async fn execute(&mut self, component: &TaskComponent, key: &str, attempt: u32, invocation: Invocation) -> Result<TaskResult, SchedulerError> {
        self.append(Event::AttemptStarted { task: key.to_string(), attempt, at: self.rt.clock.now_millis() })?;
        let outcome = self.rt.sandbox.run(component, invocation).await;
        let (result, output, error) = match outcome.status {
            Status::Success { output } => (TaskResult::Success, Some(output), None),
            Status::Failed { kind, message } => {
                (TaskResult::Failed, None, Some(format!("{}: {message}", failure_label(kind))))
            }
            Status::TimedOut { message } => (TaskResult::TimedOut, None, Some(message)),
            Status::Canceled => (TaskResult::Canceled, None, Some("canceled".into())),
        };
        if result == TaskResult::Success {
            for (name, json) in &outcome.values {
                self.rt.store.put_value(self.run_id, key, name, json)?;
            }
        }
        self.append(Event::AttemptFinished {
            task: key.to_string(),
            attempt,
            at: self.rt.clock.now_millis(),
            result,
            output,
            error,
            log: outcome.log,
            log_truncated: outcome.log_truncated,
            elapsed_us: outcome.elapsed.as_micros() as u64,
        })?;
        Ok(result)
    }

    /// Decide the run's result, append it, flush, and only then hand back the view.
    fn finish<'k>(
        mut self,
        tasks: impl Iterator<Item = (&'k str, &'k [String])>,
        results: &BTreeMap<String, TaskResult>,
    ) -> Result<RunView, SchedulerError> {
        let ended: Vec<result::Ended<'_>> = tasks
            .map(|(key, depends_on)| result::Ended {
                key,
                depends_on,
                result: results.get(key).copied().unwrap_or(TaskResult::Canceled),
            })
            .collect();
        let outcome: RunResult = run_result(&ended);
        self.append(Event::RunFinished { result: outcome, at: self.rt.clock.now_millis() })?;
        let view = self.view()?;
        self.rt.store.put_summary(&view.summary())?;
        self.rt.store.flush()?;
        Ok(view)
    }
}

fn failure_label(kind: crate::sandbox::FailureKind) -> &'static str {
    use crate::sandbox::FailureKind::*;
    match kind {
        Transient => "transient error",
        Permanent => "permanent error",
        Trap => "trap",
        MemoryLimit => "out of memory",
        InvalidOutput => "invalid output",
        Host => "host error",
    }
}

/// Every task `task` depends on, directly or transitively.
fn upstream_closure(job: &JobSpec, task: &TaskSpec) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = task.depends_on.iter().map(String::as_str).collect();
    while let Some(key) = stack.pop() {
        if seen.insert(key.to_string()) {
            if let Some(t) = job.task(key) {
                stack.extend(t.depends_on.iter().map(String::as_str));
            }
        }
    }
    seen
}

