//! Running one attempt: build the deny-by-default context, instantiate, call
//! `run`, enforce the deadline and limits, and classify what happened.
//!
//! Owns the mapping from guest behaviour to an [`Outcome`]. It never retries,
//! never persists anything but checkpoints (through the capability), and never
//! panics on anything a guest does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store as WasmStore, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{Context, TaskError};
use super::cache::TaskComponent;
use super::clocks::{Ticks, VirtualMonotonicClock, VirtualWallClock};
use super::limits::{Limits, TaskLimiter};
use super::logs::CappedLog;
use super::values::UpstreamValues;
use super::{HostState, checkpoint, params, secrets, values};
use crate::model::RunId;
use crate::store::Store;
use crate::util::DirPool;

/// Extra time the host timer allows past a task's timeout before it abandons
/// the attempt. The epoch deadline normally fires first; this catches a guest
/// blocked inside a host call, where epochs are not checked.
const HOST_TIMER_GRACE: Duration = Duration::from_millis(500);

/// Who is running, as the guest's `context` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    pub job: String,
    pub run_id: String,
    pub task_key: String,
    pub attempt: u32,
    pub target: String,
}

/// Everything one attempt is granted.
pub struct Invocation {
    pub context: TaskContext,
    pub params: BTreeMap<String, String>,
    pub limits: Limits,
    /// `scope/key` secret names the task may reveal.
    pub secrets: Vec<String>,
    /// Who started the run: reveals need this principal's read permission.
    pub principal: String,
    /// The workspace whose secret scopes the run reads.
    pub workspace: String,
    /// Resolves (and audits) `secrets.reveal`; `None`: granted names do not resolve.
    pub secret_resolver: Option<Arc<dyn crate::secrets::Resolver>>,
    /// Secret values the attempt holds before it starts (a command task's env):
    /// redacted from what it reports like the ones it reveals.
    pub revealed: Vec<crate::secrets::SecretString>,
    /// Upstream tasks (same run) whose values the task may read.
    pub readable_tasks: BTreeSet<String>,
    pub store: Arc<dyn Store>,
    pub run: RunId,
    /// The run's logical start: what the guest's wall clock starts at.
    pub logical_start: SystemTime,
    /// Set to stop the attempt promptly (it ends `Canceled`).
    pub cancel: Arc<AtomicBool>,
    /// Host directories the guest sees (WASI preopens), besides its scratch `/tmp`.
    pub mounts: Vec<crate::spec::Mount>,
    /// Where outbound HTTP may go; empty = no network.
    pub allow_hosts: Vec<crate::spec::HostRule>,
    /// Granted secrets the host injects into outbound HTTP headers (name → header).
    pub inject: std::collections::BTreeMap<String, String>,
    /// Upstream tasks' output directories, offered read-only at `/in/<task>`.
    pub inputs: Vec<(String, std::path::PathBuf)>,
    /// The directory the guest sees as `/out` (the caller collects it afterwards).
    pub out_dir: Option<std::path::PathBuf>,
    /// Seed of every random source, for tasks that must be reproducible; `None`: OS randomness.
    pub random_seed: Option<[u8; 32]>,
}

impl Invocation {
    /// An invocation with default limits and no grants.
    pub fn new(task_key: &str, store: Arc<dyn Store>, run: RunId) -> Invocation {
        Invocation {
            context: TaskContext {
                job: "task".into(),
                run_id: run.to_string(),
                task_key: task_key.to_string(),
                attempt: 0,
                target: "dev".into(),
            },
            params: BTreeMap::new(),
            limits: Limits::default(),
            secrets: Vec::new(),
            principal: String::new(),
            workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
            secret_resolver: None,
            revealed: Vec::new(),
            readable_tasks: BTreeSet::new(),
            store,
            run,
            logical_start: SystemTime::now(),
            cancel: Arc::new(AtomicBool::new(false)),
            mounts: Vec::new(),
            allow_hosts: Vec::new(),
            inject: Default::default(),
            inputs: Vec::new(),
            out_dir: None,
            random_seed: None,
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The task returned `transient`.
    Transient,
    /// The task returned `permanent`.
    Permanent,
    /// The guest trapped (panic, unreachable, stack overflow, ...).
    Trap,
    /// The guest tried to grow its memory past its limit.
    MemoryLimit,
    /// The task's output was not JSON or was too large.
    InvalidOutput,
    /// The host could not start the attempt (e.g. no free sandbox slot).
    Host,
    /// The task used up its fuel budget (deterministic: retrying cannot help).
    Fuel,
    /// A command exited with a non-zero code (it cannot say whether that is
    /// transient, so retry policies apply).
    Exit,
}

impl FailureKind {
    /// Whether a retry policy may retry this failure.
    pub fn retryable(self) -> bool {
        matches!(self, FailureKind::Transient | FailureKind::Trap | FailureKind::Host | FailureKind::Exit)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success { output: String },
    Failed { kind: FailureKind, message: String },
    TimedOut { message: String },
    Canceled,
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub log: String,
    pub log_truncated: bool,
    /// Values the task published (persist them only on success).
    pub values: Vec<(String, String)>,
    /// Every secret name the guest asked for and whether it was revealed.
    pub secret_audit: Vec<(String, bool)>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    Deadline,
    Canceled,
}

/// What the epoch callback needs to decide whether to stop the guest.
pub(crate) struct InterruptState {
    deadline: Instant,
    cancel: Arc<AtomicBool>,
    why: Option<Interrupted>,
}

/// How the guest's standard streams are wired for one attempt.
pub(crate) struct Io {
    /// stdout+stderr (or only stderr when `stdout` is set), capped.
    pub log: CappedLog,
    /// stdout on its own, when it is the task's output (command tasks).
    pub stdout: Option<CappedLog>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
}

impl Io {
    pub(crate) fn logs_only(inv: &Invocation) -> Io {
        Io { log: CappedLog::new(inv.limits.max_log), stdout: None, args: Vec::new(), env: Vec::new(), stdin: None }
    }
}

/// What the guest gave back.
pub(crate) enum Returned {
    /// A task's JSON output.
    Output(String),
    /// A task's error.
    TaskError(TaskError),
    /// A command's exit code.
    Exit(i32),
}

/// The result of calling into the guest: `Err(elapsed)` when the host timer
/// fired; `(instantiating, error)` when wasmtime reported a failure.
pub(crate) type CallResult = Result<Result<Returned, (bool, wasmtime::Error)>, tokio::time::error::Elapsed>;

/// A store for one attempt: deny-by-default WASI plus the capabilities, the
/// memory limiter, and the epoch callback enforcing deadline and cancel.
pub(crate) fn new_store(
    engine: &Engine,
    scratch: &Arc<DirPool>,
    inv: &Invocation,
    io: &Io,
    started: Instant,
) -> Result<WasmStore<HostState>, String> {
    let mut store = WasmStore::new(engine, host_state(inv, io, started, scratch)?);
    store.set_fuel(inv.limits.fuel.unwrap_or(u64::MAX)).map_err(|e| format!("setting the fuel budget: {e}"))?;
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let s = &mut cx.data_mut().interrupt;
        if s.cancel.load(Ordering::Relaxed) {
            s.why = Some(Interrupted::Canceled);
            return Ok(UpdateDeadline::Interrupt);
        }
        if Instant::now() >= s.deadline {
            s.why = Some(Interrupted::Deadline);
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    Ok(store)
}

/// The outcome of an attempt that could not be set up (e.g. a mount vanished).
pub(crate) fn setup_failed(message: String, started: Instant) -> Outcome {
    Outcome {
        status: Status::Failed { kind: FailureKind::Host, message: format!("could not set up the sandbox: {message}") },
        log: String::new(),
        log_truncated: false,
        values: Vec::new(),
        secret_audit: Vec::new(),
        elapsed: started.elapsed(),
    }
}

/// The wall-clock budget of the whole call, host timer included.
pub(crate) fn host_deadline(inv: &Invocation) -> Duration {
    inv.limits.timeout + HOST_TIMER_GRACE
}

pub(crate) async fn run(
    engine: &Engine,
    scratch: &Arc<DirPool>,
    component: &TaskComponent,
    inv: Invocation,
) -> Outcome {
    let started = Instant::now();
    let io = Io::logs_only(&inv);
    let ctx = Context {
        job: inv.context.job.clone(),
        run_id: inv.context.run_id.clone(),
        task_key: inv.context.task_key.clone(),
        attempt: inv.context.attempt,
        target: inv.context.target.clone(),
    };
    let mut store = match new_store(engine, scratch, &inv, &io, started) {
        Ok(store) => store,
        Err(e) => return setup_failed(e, started),
    };
    let result = match component.task_pre() {
        Some(pre) => {
            let call = async {
                let instance = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
                match instance.call_run(&mut store, &ctx).await {
                    Ok(Ok(output)) => Ok(Returned::Output(output)),
                    Ok(Err(e)) => Ok(Returned::TaskError(e)),
                    Err(e) => Err((false, e)),
                }
            };
            tokio::time::timeout(host_deadline(&inv), call).await
        }
        None => {
            Ok(Err((true, wasmtime::Error::msg("this component is a command; run it as a `kind = \"command\"` task"))))
        }
    };
    finish(store, result, &io, &inv, started)
}

/// Turn what happened into an [`Outcome`].
pub(crate) fn finish(
    store: WasmStore<HostState>,
    result: CallResult,
    io: &Io,
    inv: &Invocation,
    started: Instant,
) -> Outcome {
    let state = store.into_data();
    let denied = state.http_policy.denied_lines();
    let (mut text, mut truncated) = io.log.take();
    let result = match (&io.stdout, result) {
        (Some(out), Ok(Ok(Returned::Exit(0)))) => {
            let (stdout, cut) = out.take();
            truncated |= cut;
            Ok(Ok(Returned::Output(as_json_output(&stdout))))
        }
        (Some(out), other) => {
            // a failed command: its stdout belongs in the log
            let (stdout, _) = out.take();
            if !stdout.is_empty() {
                text = format!("{stdout}{text}");
            }
            other
        }
        (None, other) => other,
    };
    if !denied.is_empty() {
        text.push_str(&denied);
    }
    let status = classify(result, &state, &text, inv.limits.timeout, inv.limits.max_output, &inv.cancel);
    let redactor = state.secrets.redactor();
    let outcome = Outcome {
        status,
        log: text,
        log_truncated: truncated,
        values: state.values.into_published(),
        secret_audit: state.secrets.audit,
        elapsed: started.elapsed(),
    };
    // nothing a task revealed leaves the sandbox
    secrets::redact_outcome(outcome, &redactor)
}

/// A command's stdout as a task output: itself when it is JSON, else a JSON string.
fn as_json_output(stdout: &str) -> String {
    let trimmed = stdout.trim();
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(_) if !trimmed.is_empty() => trimmed.to_string(),
        _ => serde_json::Value::String(stdout.to_string()).to_string(),
    }
}

fn host_state(inv: &Invocation, io: &Io, started: Instant, scratch: &Arc<DirPool>) -> Result<HostState, String> {
    let ticks = Ticks::default();
    let mut wasi = WasiCtxBuilder::new();
    match &io.stdout {
        Some(out) => wasi.stdout(out.clone()),
        None => wasi.stdout(io.log.clone()),
    };
    wasi.stderr(io.log.clone())
        .args(&io.args)
        .envs(&io.env)
        .wall_clock(VirtualWallClock::new(inv.logical_start, ticks.clone()))
        .monotonic_clock(VirtualMonotonicClock::new(ticks))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(stdin) = &io.stdin {
        wasi.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(stdin.clone()));
    }
    let files = super::files::Files::grant(&mut wasi, &inv.mounts, scratch)?;
    super::files::grant_artifacts(&mut wasi, &inv.inputs, inv.out_dir.as_ref())?;
    if let Some(seed) = &inv.random_seed {
        super::random::seed(&mut wasi, seed);
    }
    let task = &inv.context.task_key;
    let secrets = secrets::Secrets::for_invocation(inv);
    Ok(HostState {
        files,
        http: wasmtime_wasi_http::WasiHttpCtx::new(),
        http_policy: super::http::HttpPolicy::new(inv.allow_hosts.clone(), secrets.injections.clone()),
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: TaskLimiter::new(inv.limits.memory),
        params: params::Params::new(inv.params.clone()),
        values: values::Values::new(Some(UpstreamValues {
            store: inv.store.clone(),
            run: inv.run,
            readable: inv.readable_tasks.clone(),
        })),
        checkpoints: checkpoint::Checkpoints::new(inv.store.clone(), inv.run, task).guarded(secrets.revealed()),
        secrets,
        interrupt: InterruptState { deadline: started + inv.limits.timeout, cancel: inv.cancel.clone(), why: None },
        fuel_budget: inv.limits.fuel,
    })
}

fn classify(
    result: CallResult,
    state: &HostState,
    log: &str,
    timeout: Duration,
    max_output: u64,
    cancel: &AtomicBool,
) -> Status {
    let timed_out =
        || Status::TimedOut { message: format!("timed out after {}", crate::util::human_duration(timeout)) };
    match result {
        Err(_elapsed) if cancel.load(Ordering::Relaxed) => Status::Canceled,
        Err(_elapsed) => timed_out(),
        Ok(Ok(Returned::Output(output))) => check_output(output, max_output),
        Ok(Ok(Returned::TaskError(TaskError::Transient(m)))) => {
            Status::Failed { kind: FailureKind::Transient, message: m }
        }
        Ok(Ok(Returned::TaskError(TaskError::Permanent(m)))) => {
            Status::Failed { kind: FailureKind::Permanent, message: m }
        }
        Ok(Ok(Returned::Exit(0))) => Status::Success { output: "null".into() },
        Ok(Ok(Returned::Exit(code))) => {
            Status::Failed { kind: FailureKind::Exit, message: format!("exited with code {code}") }
        }
        Ok(Err((instantiating, e))) => match state.interrupt.why {
            Some(Interrupted::Canceled) => Status::Canceled,
            Some(Interrupted::Deadline) => timed_out(),
            None => match state.limiter.denied {
                Some(wanted) => Status::Failed {
                    kind: FailureKind::MemoryLimit,
                    message: format!(
                        "memory limit of {} exceeded (the guest asked for {})",
                        crate::util::human_bytes(state.limiter_limit()),
                        crate::util::human_bytes(wanted)
                    ),
                },
                None if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) => Status::Failed {
                    kind: FailureKind::Fuel,
                    message: format!("fuel budget of {} exhausted", state.fuel_budget.unwrap_or(0)),
                },
                None if e.downcast_ref::<Trap>().is_some() => {
                    Status::Failed { kind: FailureKind::Trap, message: trap_message(&e, log) }
                }
                None if instantiating => {
                    Status::Failed { kind: FailureKind::Host, message: format!("could not instantiate: {e:#}") }
                }
                None => Status::Failed { kind: FailureKind::Trap, message: format!("guest failed: {e:#}") },
            },
        },
    }
}

impl HostState {
    fn limiter_limit(&self) -> u64 {
        self.limiter.limit()
    }
}

/// "guest trapped: wasm `unreachable` instruction executed (panicked at src/lib.rs:3:5: boom)".
fn trap_message(e: &wasmtime::Error, log: &str) -> String {
    let what = e.downcast_ref::<Trap>().map(|t| t.to_string()).unwrap_or_else(|| format!("{e}"));
    let panic = log.lines().rev().find(|l| l.contains("panicked at")).map(|l| {
        let idx = log.find(l).unwrap_or(0) + l.len();
        let next = log[idx..].lines().nth(1).unwrap_or("").trim();
        if next.is_empty() { l.trim().to_string() } else { format!("{} {next}", l.trim()) }
    });
    match panic {
        Some(p) => format!("guest trapped: {what} ({p})"),
        None => format!("guest trapped: {what}"),
    }
}

fn check_output(output: String, max: u64) -> Status {
    if output.len() as u64 > max {
        return Status::Failed {
            kind: FailureKind::InvalidOutput,
            message: format!(
                "output is {}, over the limit of {}",
                crate::util::human_bytes(output.len() as u64),
                crate::util::human_bytes(max)
            ),
        };
    }
    match serde_json::from_str::<serde_json::Value>(&output) {
        Ok(_) => Status::Success { output },
        Err(e) => {
            Status::Failed { kind: FailureKind::InvalidOutput, message: format!("output is not valid JSON: {e}") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_must_be_json_and_small() {
        assert_eq!(check_output("{\"a\":1}".into(), 100), Status::Success { output: "{\"a\":1}".into() });
        assert!(matches!(check_output("nope".into(), 100), Status::Failed { kind: FailureKind::InvalidOutput, .. }));
        assert!(matches!(check_output("[1,2,3]".into(), 3), Status::Failed { kind: FailureKind::InvalidOutput, .. }));
    }

    #[test]
    fn only_transient_failures_and_traps_are_retryable() {
        assert!(FailureKind::Transient.retryable() && FailureKind::Trap.retryable());
        assert!(!FailureKind::Permanent.retryable() && !FailureKind::MemoryLimit.retryable());
    }
}
