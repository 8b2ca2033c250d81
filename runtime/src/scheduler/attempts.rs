//! Component and command attempts, coordinator side: render the task's references, reuse
//! a stored result when its key matches, otherwise prepare the attempt for the executor
//! (the coordinator hands it over once its start may be seen: durable first, for a task
//! with side effects); when the executor reports, record the attempt and let the state
//! decide on a retry.

use crate::model::{Event, TaskResult};
use crate::sandbox::values::Readable;
use crate::sandbox::{Command, Status};
use crate::spec::template::Part;
use crate::spec::{CommandSpec, Stdin, TaskSpec};
use crate::state::{InPlace, TaskId};

use super::SchedulerError;
use super::attempt::{limits_of, max_out_of};
use super::caching::{Executes, Prepared};
use super::coordinator::{Coordinator, Ready};
use super::executor::{AttemptReport, PreparedAttempt};
use super::objmounts::MountError;
use super::params;

/// Where a command's `stdin_from` reads.
enum UpstreamStdout {
    /// A file of the upstream task's `/out`, streamed from `/in/<task>`.
    File(String),
    /// The upstream task's output text.
    Output(String),
}

/// A task's rendered params and command.
type Rendered = (std::collections::BTreeMap<String, String>, Option<Command>);

/// Largest file a command task may take on stdin: stdin is held in memory.
pub const MAX_STDIN_FILE_BYTES: u64 = 64 << 20;

impl Coordinator {
    /// A sandbox slot for this run's next attempt: one handed to its ticket, else a free
    /// one; with none, the run takes a ticket in its workspace's line (the coordinator
    /// wakes when a slot is handed to it).
    fn take_slot(&mut self) -> Option<crate::scheduler::slots::SlotPermit> {
        if let Some(permit) = self.spare_slot.take() {
            return Some(permit);
        }
        if self.slot_wait.is_none() {
            match self.rt.slots.try_acquire(&self.plan.workspace) {
                Some(permit) => return Some(permit),
                None => self.slot_wait = Some(self.rt.slots.wait(&self.plan.workspace)),
            }
        }
        None
    }

    /// Start an attempt of component or command task `id`. `Ok(false)`: no free sandbox
    /// slot (of the process-wide bound) yet.
    pub(crate) fn start_attempt(&mut self, id: TaskId, spec: &TaskSpec) -> Result<bool, SchedulerError> {
        let Some(permit) = self.take_slot() else { return Ok(false) };
        let next = self.state.next_attempt(id);
        let rendered = self.render_attempt(id, next, spec);
        let attempt = self.begin(id)?;
        self.prepare_attempt(id, attempt, spec, rendered, Some(permit), false)?;
        Ok(true)
    }

    /// Adopt attempt `attempt` of task `id`, which a process that died left running where
    /// it may still run (the executor [`adopts`](super::Executor::adopts)): prepared as it
    /// was started, and handed to the executor to wait for (not recorded interrupted).
    pub(crate) fn adopt_attempt(&mut self, id: TaskId, attempt: u32) -> Result<(), SchedulerError> {
        let Some(spec) = self.state.spec_shared(id) else { return Ok(()) };
        let rendered = self.render_attempt(id, attempt, &spec);
        self.prepare_attempt(id, attempt, &spec, rendered, None, true)
    }

    /// Task `id`'s params and command rendered for attempt `attempt`.
    fn render_attempt(&self, id: TaskId, attempt: u32, spec: &TaskSpec) -> Result<Rendered, String> {
        params::render_all(&spec.exec.params, &self.scope(id, attempt))
            .and_then(|p| Ok((p, spec.command().map(|c| self.render_command(id, attempt, c)).transpose()?)))
    }

    /// Prepare started attempt `attempt` for the executor (queued in `ready`), or end it in
    /// place (a reused result, a failure before it runs).
    fn prepare_attempt(
        &mut self,
        id: TaskId,
        attempt: u32,
        spec: &TaskSpec,
        rendered: Result<Rendered, String>,
        permit: Option<crate::scheduler::slots::SlotPermit>,
        adopt: bool,
    ) -> Result<(), SchedulerError> {
        let (params, command) = match rendered {
            Ok(rendered) => rendered,
            Err(e) => return self.finish_in_place(id, attempt, InPlace::failed(e)),
        };
        let name = spec.component().unwrap_or_default();
        let Some(component) = self.components.get(name).cloned() else {
            let e = format!("component `{name}` was not loaded for this run");
            return self.finish_in_place(id, attempt, InPlace::failed(e));
        };
        let models = match self.staged_models(&spec.models) {
            Ok(models) => models,
            Err(e) => return self.finish_in_place(id, attempt, InPlace::failed(e)),
        };
        let limits = limits_of(spec, &self.plan);
        let staged = match self.stage_objects(id, attempt, spec) {
            Ok(staged) => staged,
            Err(e) => return self.staging_failed(id, attempt, e),
        };
        let runs = Executes {
            component: &component.hash,
            params: &params,
            limits: &limits,
            command: command.as_ref(),
            staged: &staged.roots,
            models: &models,
        };
        let (mut pending, inputs, seed) = match self.prepare_cache(id, &runs) {
            Ok(Prepared::Hit(entry)) => return self.record_hit(id, attempt, *entry),
            Ok(Prepared::Run { pending, inputs, seed }) => (pending, inputs, seed),
            Err(e) => {
                let e = format!("preparing the attempt: {e}");
                return self.finish_in_place(id, attempt, InPlace::failed(e));
            }
        };
        let mut mounts = staged.mounts;
        match super::models::mounts(self.rt.cache.as_deref(), &models) {
            Ok(models) => mounts.extend(models),
            Err(e) => return self.finish_in_place(id, attempt, InPlace::failed(e)),
        }
        let view = self.state.view();
        let prepared = PreparedAttempt {
            run: view.run_id,
            task: crate::sandbox::TaskContext {
                job: self.plan.job.name.clone(),
                run_id: view.run_id.to_string(),
                task_key: spec.key.clone(),
                attempt,
                target: view.target.clone(),
            },
            principal: self.plan.principal.clone(),
            workspace: self.plan.workspace.clone(),
            logical_start: view.created_at,
            component: component.hash.clone(),
            world: component.world(),
            exec: crate::spec::ExecSpec { params, mounts, ..spec.exec.clone() },
            command,
            limits,
            readable: Readable::UpstreamsOf { graph: self.state.graph().clone(), task: self.state.top_key(id).into() },
            inputs,
            collect_out: self.rt.cache.is_some(),
            max_out: max_out_of(spec, &self.plan),
            seed,
            expectations: spec.expectations.clone(),
        };
        pending.objects = staged.rw;
        self.pending_cache.insert((id, attempt), *pending);
        // the slot is given back when the coordinator has recorded the attempt, so
        // finished-but-unrecorded attempts count against the bound too
        if let Some(permit) = permit {
            self.permits.insert((id, attempt), permit);
        }
        let side_effects = has_side_effects(spec);
        self.ready.push(Ready { task: id, attempt, prepared, side_effects, adopt });
        Ok(())
    }

    /// A command task's args, env and stdin with every reference filled in.
    fn render_command(&self, id: TaskId, attempt: u32, c: &CommandSpec) -> Result<Command, String> {
        let scope = self.scope(id, attempt);
        // a python task's script goes first, as it is: its text is never templated
        let mut args: Vec<String> = c.script.iter().flat_map(|s| ["-c".to_string(), s.clone()]).collect();
        for (n, a) in c.args.iter().enumerate() {
            args.push(params::render(a, &scope).map_err(|e| format!("args[{n}]: {e}"))?);
        }
        let mut env = Vec::new();
        let mut secret_env = Vec::new();
        for (k, v) in &c.env {
            // secret references stay parts: the sandbox reveals them (audited) at start
            let parts = params::render_parts(v, &scope).map_err(|e| format!("env {k}: {e}"))?;
            match parts.as_slice() {
                [] => env.push((k.clone(), String::new())),
                [Part::Text(text)] => env.push((k.clone(), text.clone())),
                _ => secret_env.push((k.clone(), parts)),
            }
        }
        let (mut stdin, mut stdin_input) = (None, None);
        match &c.stdin {
            None => {}
            Some(Stdin::Text(text)) => {
                stdin = Some(params::render(text, &scope).map_err(|e| format!("stdin: {e}"))?.into_bytes());
            }
            Some(Stdin::File(path)) => stdin = Some(read_stdin_file(path)?),
            Some(Stdin::Upstream { task, file }) => match self.upstream_stdout(task, file.as_deref())? {
                UpstreamStdout::File(name) => stdin_input = Some((task.clone(), name)),
                UpstreamStdout::Output(text) => stdin = Some(text.into_bytes()),
            },
        }
        let spec = self.state.spec(id);
        Ok(Command {
            args,
            env,
            secret_env,
            stdin,
            stdout_is_output: c.stdout_is_output,
            stdout_file: c.stdout_file.clone(),
            max_out: spec.and_then(|spec| max_out_of(spec, &self.plan)),
            stdin_input,
            success_exit_codes: c.success_exit_codes.clone(),
        })
    }

    /// What `stdin_from = "TASK[:FILE]"` reads: a file of TASK's `/out` (FILE, else its
    /// `stdout = "file:NAME"`), else TASK's output (a JSON string without its quotes).
    fn upstream_stdout(&self, task: &str, file: Option<&str>) -> Result<UpstreamStdout, String> {
        let up = self.state.id_of(task).ok_or_else(|| format!("stdin_from: no task `{task}` in this run"))?;
        let stdout_file = self.state.spec(up).and_then(|s| s.command()).and_then(|c| c.stdout_file.clone());
        if let Some(name) = file.map(str::to_string).or(stdout_file) {
            return Ok(UpstreamStdout::File(name));
        }
        let view = self.state.task(up);
        let output = view
            .attempts
            .last()
            .filter(|_| view.result == Some(TaskResult::Success))
            .and_then(|a| a.output.clone())
            .ok_or_else(|| format!("stdin_from `{task}`: task `{task}` has no output"))?;
        Ok(UpstreamStdout::Output(match serde_json::from_str::<serde_json::Value>(&output) {
            Ok(serde_json::Value::String(text)) => text,
            _ => output,
        }))
    }

    /// An attempt the executor ran ended: record it (its values and result first), then
    /// the state decides on a retry.
    pub(crate) fn attempt_done(
        &mut self,
        id: TaskId,
        attempt: u32,
        report: AttemptReport,
    ) -> Result<(), SchedulerError> {
        let _slot = self.permits.remove(&(id, attempt));
        let AttemptReport { outcome, out, quality, receipt } = report;
        let (mut result, mut output, mut error, mut retryable) = self.classify(id, outcome.status.clone());
        let mut error_code = error_code_of(&outcome.status);
        if result == TaskResult::Success && !quality.is_empty() {
            let key = self.state.task(id).key.clone();
            if let Some(failure) = self.quality_checked(key, attempt, quality)? {
                (result, output, error) = (TaskResult::QualityFailed, None, Some(failure));
                error_code = Some("quality_failed".into());
            }
        }
        let (mut published, mut registered) = (Vec::new(), None);
        if result == TaskResult::Success {
            match self.declared_outputs(id, out.as_ref().ok().and_then(Option::as_ref)) {
                Ok(found) => (published, registered) = found,
                Err((message, code)) => {
                    (result, output, error) = (TaskResult::Failed, None, Some(message));
                    error_code = Some(code.into());
                }
            }
        }
        let mut cache = None;
        let mut objects = Vec::new();
        if let Some(mut pending) = self.pending_cache.remove(&(id, attempt)) {
            objects = std::mem::take(&mut pending.objects);
            if outcome.secret_audit.iter().any(|(_, revealed)| !revealed) && pending.not_cached.is_none() {
                pending.not_cached = Some(
                    "a secret reveal was refused: the result depends on access rights, so it is not reused".into(),
                );
            }
            let success = result == TaskResult::Success;
            match out.and_then(|tree| {
                self.harvest((id, attempt), pending, success, output.as_deref(), &outcome.values, tree)
            }) {
                Ok(c) => cache = c.map(Box::new),
                Err(message) => {
                    (result, output, error) = (TaskResult::Failed, None, Some(format!("invalid output: {message}")));
                    error_code = Some("invalid_output".into());
                }
            }
        }
        let key = self.state.task(id).key.clone();
        if let Err(e) = self.upload_objects(&key, attempt, objects, result == TaskResult::Success) {
            (result, output, error, retryable) = (TaskResult::Failed, None, Some(e.message), e.transient);
            error_code = Some("upload_failed".into());
        }
        if result == TaskResult::Success {
            for (name, json) in &outcome.values {
                self.rt.store.put_value(self.state.run_id(), &key, name, json)?;
            }
        }
        self.record(Event::AttemptFinished {
            task: key,
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
            error_code,
        })?;
        if let Some(receipt) = receipt {
            self.journal.when_durable(receipt);
        }
        if result == TaskResult::Success {
            self.publish_datasets(&self.state.task(id).key.clone(), published)?;
            if let Some((declared, found)) = registered {
                self.register_model(&self.state.task(id).key.clone(), &declared, found)?;
            }
        }
        if result != TaskResult::Success
            && let Some(retry) = self.state.retry(id, attempt, retryable, self.now())
        {
            self.record(retry)?;
        }
        Ok(())
    }

    /// Attempt `attempt` of task `id` failed before it ran, staging its object-storage
    /// mounts: recorded as failed, and retried by the task's policy when the store failed
    /// transiently.
    fn staging_failed(&mut self, id: TaskId, attempt: u32, e: MountError) -> Result<(), SchedulerError> {
        self.finish_in_place(id, attempt, InPlace::failed(e.message))?;
        if e.transient
            && let Some(retry) = self.state.retry(id, attempt, true, self.now())
        {
            self.record(retry)?;
        }
        Ok(())
    }

    /// What a successful attempt's `/out` publishes: its declared datasets (name, hash) and
    /// the model it registers; else why not, with the error code that fails the attempt.
    #[allow(clippy::type_complexity)]
    fn declared_outputs(
        &self,
        id: TaskId,
        tree: Option<&crate::cache::TreeManifest>,
    ) -> Result<
        (Vec<(String, String)>, Option<(crate::spec::models::RegisterModel, super::models::Artifact)>),
        (String, &'static str),
    > {
        let Some(spec) = self.state.spec(id) else { return Ok((Vec::new(), None)) };
        let published = match spec.datasets.is_empty() {
            true => Vec::new(),
            false => {
                super::datasets::hashes(&spec.datasets, tree).map_err(|m| (m, super::datasets::DATASET_MISSING))?
            }
        };
        let registered = match &spec.register_model {
            None => None,
            Some(declared) => {
                let found = super::models::artifact(declared, tree, self.rt.cache.as_deref())
                    .map_err(|m| (m, super::models::MODEL_MISSING))?;
                Some((declared.clone(), found))
            }
        };
        Ok((published, registered))
    }

    /// What an attempt's status means for task `id`: its result, output, error, and
    /// whether its retry policy may retry it. A sandbox canceled by the job's timeout
    /// timed out; a timeout is retried only with `on_timeout`.
    fn classify(&self, id: TaskId, status: Status) -> (TaskResult, Option<String>, Option<String>, bool) {
        let timed_out_run = self.state.stop().is_some_and(|s| s.timed_out);
        match status {
            Status::Success { output } => (TaskResult::Success, Some(output), None, false),
            Status::Failed { kind, message } => {
                (TaskResult::Failed, None, Some(format!("{}: {message}", kind.label())), kind.retryable())
            }
            Status::TimedOut { message } => {
                let on_timeout = self.state.spec(id).and_then(|s| s.retries.as_ref()).is_some_and(|r| r.on_timeout);
                (TaskResult::TimedOut, None, Some(message), on_timeout)
            }
            Status::Canceled if timed_out_run => (TaskResult::TimedOut, None, Some("the job timed out".into()), false),
            Status::Canceled => (TaskResult::Canceled, None, Some("canceled".into()), false),
        }
    }
}

/// Whether a task reaches outside its sandbox in ways a rerun repeats: network access,
/// read-write host mounts, or a command (a program of unknown behaviour).
fn has_side_effects(spec: &TaskSpec) -> bool {
    use crate::spec::MountMode;
    !spec.exec.allow_hosts.is_empty()
        || spec.exec.mounts.iter().any(|m| m.mode == MountMode::Rw)
        || spec.command().is_some()
}

/// What `{{ tasks.KEY.error_code }}` reads for an attempt that ended with `status`.
fn error_code_of(status: &Status) -> Option<String> {
    let code = match status {
        Status::Success { .. } => return None,
        Status::Failed { kind, .. } => serde_json::to_value(kind).ok()?.as_str()?.to_string(),
        Status::TimedOut { .. } => "timed_out".into(),
        Status::Canceled => "canceled".into(),
    };
    Some(code)
}

fn read_stdin_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("stdin_file {}: {e}", path.display()))?.len();
    if len > MAX_STDIN_FILE_BYTES {
        return Err(format!("stdin_file {} is {len} bytes, over the limit of {MAX_STDIN_FILE_BYTES}", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("stdin_file {}: {e}", path.display()))
}
