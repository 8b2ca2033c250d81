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
    /// Upstream tasks (same run) whose values the task may read.
    pub readable_tasks: BTreeSet<String>,
    pub store: Arc<dyn Store>,
    pub run: RunId,
    /// The run's logical start: what the guest's wall clock starts at.
    pub logical_start: SystemTime,
    /// Set to stop the attempt promptly (it ends `Canceled`).
    pub cancel: Arc<AtomicBool>,
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
            readable_tasks: BTreeSet::new(),
            store,
            run,
            logical_start: SystemTime::now(),
            cancel: Arc::new(AtomicBool::new(false)),
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
}

impl FailureKind {
    /// Whether a retry policy may retry this failure.
    pub fn retryable(self) -> bool {
        matches!(self, FailureKind::Transient | FailureKind::Trap | FailureKind::Host)
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
    /// Secret names the guest asked for, and whether each was granted.
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

pub(crate) async fn run(engine: &Engine, component: &TaskComponent, inv: Invocation) -> Outcome {
    let started = Instant::now();
    let log = CappedLog::new(inv.limits.max_log);
    let timeout = inv.limits.timeout;
    let max_output = inv.limits.max_output;
    let ctx = Context {
        job: inv.context.job.clone(),
        run_id: inv.context.run_id.clone(),
        task_key: inv.context.task_key.clone(),
        attempt: inv.context.attempt,
        target: inv.context.target.clone(),
    };
    let mut store = WasmStore::new(engine, host_state(&inv, &log, started));
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

    let call = async {
        let instance = component.pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
        instance.call_run(&mut store, &ctx).await.map_err(|e| (false, e))
    };
    let result = tokio::time::timeout(timeout + HOST_TIMER_GRACE, call).await;

    let state = store.into_data();
    let (text, truncated) = log.take();
    let status = classify(result, &state, &text, timeout, max_output, &inv.cancel);
    Outcome {
        status,
        log: text,
        log_truncated: truncated,
        values: state.values.into_published(),
        secret_audit: state.secrets.audit,
        elapsed: started.elapsed(),
    }
}

fn host_state(inv: &Invocation, log: &CappedLog, started: Instant) -> HostState {
    let ticks = Ticks::default();
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(log.clone())
        .stderr(log.clone())
        .wall_clock(VirtualWallClock::new(inv.logical_start, ticks.clone()))
        .monotonic_clock(VirtualMonotonicClock::new(ticks))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let task = &inv.context.task_key;
    HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: TaskLimiter::new(inv.limits.memory),
        params: params::Params::new(inv.params.clone()),
        values: values::Values::new(Some(UpstreamValues {
            store: inv.store.clone(),
            run: inv.run,
            readable: inv.readable_tasks.clone(),
        })),
        secrets: secrets::Secrets::new(task, inv.secrets.iter().cloned()),
        checkpoints: checkpoint::Checkpoints::new(inv.store.clone(), inv.run, task),
        interrupt: InterruptState { deadline: started + inv.limits.timeout, cancel: inv.cancel.clone(), why: None },
    }
}

type CallResult = Result<Result<Result<String, TaskError>, (bool, wasmtime::Error)>, tokio::time::error::Elapsed>;

fn classify(result: CallResult, state: &HostState, log: &str, timeout: Duration, max_output: u64, cancel: &AtomicBool) -> Status {
    let timed_out = || Status::TimedOut { message: format!("timed out after {}", crate::util::human_duration(timeout)) };
    match result {
        Err(_elapsed) if cancel.load(Ordering::Relaxed) => Status::Canceled,
        Err(_elapsed) => timed_out(),
        Ok(Ok(Ok(output))) => check_output(output, max_output),
        Ok(Ok(Err(TaskError::Transient(m)))) => Status::Failed { kind: FailureKind::Transient, message: m },
        Ok(Ok(Err(TaskError::Permanent(m)))) => Status::Failed { kind: FailureKind::Permanent, message: m },
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
                None if e.downcast_ref::<Trap>().is_some() => Status::Failed { kind: FailureKind::Trap, message: trap_message(&e, log) },
                None if instantiating => Status::Failed { kind: FailureKind::Host, message: format!("could not instantiate: {e:#}") },
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
    let panic = log
        .lines()
        .rev()
        .find(|l| l.contains("panicked at"))
        .map(|l| {
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
            message: format!("output is {}, over the limit of {}", crate::util::human_bytes(output.len() as u64), crate::util::human_bytes(max)),
        };
    }
    match serde_json::from_str::<serde_json::Value>(&output) {
        Ok(_) => Status::Success { output },
        Err(e) => Status::Failed { kind: FailureKind::InvalidOutput, message: format!("output is not valid JSON: {e}") },
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
