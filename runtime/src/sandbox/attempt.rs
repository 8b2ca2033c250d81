//! Running one attempt: prepare every capability from its grant into a deny-by-default
//! store, instantiate, call the guest, enforce the deadline and limits, and classify what
//! happened. Task components and command tasks share all of it but the call itself.
//!
//! Owns the mapping from guest behaviour to an [`Outcome`]. It never retries, never
//! persists anything but checkpoints (through the capability), and never panics on
//! anything a guest does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store as WasmStore, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{Context, TaskError};
use super::cache::TaskComponent;
use super::limits::{Limits, TaskLimiter};
use super::outcome::{FailureKind, Outcome, Status, as_json_output, check_output, trap_message};
use super::{AttemptContext, Capabilities, Grants, HostState, Invocation, Prepare};
use crate::util::{DirPool, human_bytes, human_duration};

/// Extra time the host timer allows past a task's timeout before it abandons
/// the attempt. The epoch deadline normally fires first; this catches a guest
/// blocked inside a host call, where epochs are not checked.
const HOST_TIMER_GRACE: Duration = Duration::from_millis(500);

/// How often a call blocked inside the host (a sleep, a socket read) looks at the run's
/// cancel flag: the epoch callback sees it only while guest code runs, and a canceled run
/// should stop within a blink, not when the guest's sleep ends. A task that returns sooner
/// never pays for the watch.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Handles one attempt may hold at once in the host's table: open files and directories,
/// streams, pollables, HTTP requests and responses each take one, and each holds host
/// memory; a task needs tens, so a guest opening without end is stopped long before the
/// host feels it.
pub const MAX_HOST_HANDLES: usize = 4096;

/// Whether WASI file I/O runs inline on the thread running the guest instead of through
/// tokio's blocking pool (`spawn_blocking` and a wake-up per operation). Measured with
/// `scripts/bench-polyglot` (ripgrep over a mounted tree): see docs/ARCHITECTURE.md. A read
/// blocks that thread only as long as the local filesystem takes; the guest cannot make it
/// wait on anything else, and the epoch deadline and host timer still apply between calls.
pub(crate) const INLINE_FILE_IO: bool = true;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    Deadline,
    Canceled,
}

/// The pools an attempt's directories come from: the scratch `/tmp`s and the guest's `/`.
pub(crate) type Dirs<'a> = (&'a Arc<DirPool>, &'a Arc<super::root::Roots>);

/// What the epoch callback needs to decide whether to stop the guest.
pub(crate) struct InterruptState {
    deadline: Instant,
    cancel: Arc<AtomicBool>,
    why: Option<Interrupted>,
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

/// Why the host abandoned a call before the guest returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The host timer fired (the deadline plus [`HOST_TIMER_GRACE`]).
    Deadline,
    /// The run was canceled while the guest was blocked in a host call.
    Canceled,
}

/// The result of calling into the guest: `Err(cut)` when the host gave up on it;
/// `(instantiating, error)` when wasmtime reported a failure.
pub(crate) type CallResult = Result<Result<Returned, (bool, wasmtime::Error)>, Cut>;

/// Drive `call` until it returns, the host deadline passes, or the run is canceled —
/// whichever comes first. Dropping the call unwinds the guest wherever it stands.
pub(crate) async fn bounded(
    limits: &Limits,
    cancel: &AtomicBool,
    call: impl Future<Output = Result<Returned, (bool, wasmtime::Error)>>,
) -> CallResult {
    let watch = async {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if cancel.load(Ordering::Relaxed) {
                return;
            }
        }
    };
    tokio::select! {
        biased;
        result = tokio::time::timeout(host_deadline(limits), call) => result.map_err(|_elapsed| Cut::Deadline),
        () = watch => Err(Cut::Canceled),
    }
}

/// A store for one attempt: deny-by-default WASI, every capability prepared from its
/// grant, the memory limiter, and the epoch callback enforcing deadline and cancel.
pub(crate) fn new_store(
    engine: &Engine,
    (scratch, roots): Dirs<'_>,
    context: &AttemptContext,
    limits: &Limits,
    grants: Grants,
    started: Instant,
) -> Result<WasmStore<HostState>, String> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    // file reads, writes, opens and stats run on the guest's own thread: every mount is a
    // local directory (object mounts are staged first), and handing each 64 KiB read to
    // tokio's blocking pool and back cost more than the read (see INLINE_FILE_IO)
    wasi.allow_blocking_current_thread(INLINE_FILE_IO);
    let mut cx = Prepare {
        context,
        limits,
        wasi: &mut wasi,
        scratch,
        roots,
        revealed: Default::default(),
        injections: Default::default(),
    };
    let caps = Capabilities::prepare(grants, &mut cx)?;
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HOST_HANDLES);
    let state = HostState {
        caps,
        wasi: wasi.build(),
        table,
        limiter: TaskLimiter::new(limits.memory),
        interrupt: InterruptState { deadline: started + limits.timeout, cancel: context.cancel.clone(), why: None },
        fuel_budget: limits.fuel,
    };
    let mut store = WasmStore::new(engine, state);
    store.set_fuel(limits.fuel.unwrap_or(u64::MAX)).map_err(|e| format!("setting the fuel budget: {e}"))?;
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
    Outcome::failed(FailureKind::Host, format!("could not set up the sandbox: {message}"), started.elapsed())
}

/// The wall-clock budget of the whole call, host timer included.
pub(crate) fn host_deadline(limits: &Limits) -> Duration {
    limits.timeout + HOST_TIMER_GRACE
}

/// Run a task component (`sluice:task/task`): `run(context)` returns its output.
pub(crate) async fn run(
    engine: &Engine,
    dirs: Dirs<'_>,
    telemetry: &dyn crate::model::Telemetry,
    component: &TaskComponent,
    inv: Invocation,
) -> Outcome {
    let started = Instant::now();
    let Invocation { context, limits, grants } = inv;
    let mut store = match new_store(engine, dirs, &context, &limits, grants, started) {
        Ok(store) => store,
        Err(e) => return setup_failed(e, started),
    };
    let task = &context.task;
    let ctx = Context {
        job: task.job.clone(),
        run_id: task.run_id.clone(),
        task_key: task.task_key.clone(),
        attempt: task.attempt,
        target: task.target.clone(),
    };
    let result = match component.task_pre() {
        Some(pre) => {
            let call = async {
                let begun = Instant::now();
                let instance = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
                telemetry.instantiated(begun.elapsed());
                match instance.call_run(&mut store, &ctx).await {
                    Ok(Ok(output)) => Ok(Returned::Output(output)),
                    Ok(Err(e)) => Ok(Returned::TaskError(e)),
                    Err(e) => Err((false, e)),
                }
            };
            bounded(&limits, &context.cancel, call).await
        }
        None => {
            Ok(Err((true, wasmtime::Error::msg("this component is a command; run it as a `kind = \"command\"` task"))))
        }
    };
    finish(store, result, &context, &limits, started)
}

/// Turn what happened into an [`Outcome`], redacted of every value the attempt held.
pub(crate) fn finish(
    store: WasmStore<HostState>,
    result: CallResult,
    context: &AttemptContext,
    limits: &Limits,
    started: Instant,
) -> Outcome {
    let state = store.into_data();
    let denied = state.caps.http.policy.denied_lines();
    let (mut text, mut truncated) = state.caps.logs.log.take();
    let result = match (&state.caps.logs.stdout, result) {
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
    truncated |= fit_log(&mut text, &denied, limits.max_log);
    let status = classify(result, &state, &text, limits, &context.cancel);
    let redactor = state.caps.secrets.redactor();
    let status = match (status, state.caps.files.out_holding(&state.caps.secrets.revealed())) {
        (Status::Canceled, _) => Status::Canceled,
        (status, Ok(None)) => status,
        (_, Ok(Some(file))) => Status::Failed {
            kind: FailureKind::Permanent,
            message: format!(
                "{file} holds a secret value this task revealed; files are stored as written, so the \
                 attempt failed and nothing of /out was kept"
            ),
        },
        (_, Err(e)) => Status::Failed { kind: FailureKind::Host, message: format!("checking /out for secrets: {e}") },
    };
    let outcome = Outcome {
        status,
        log: text,
        log_truncated: truncated,
        values: state.caps.values.into_published(),
        secret_audit: state.caps.secrets.audit,
        elapsed: started.elapsed(),
    };
    // nothing a task revealed leaves the sandbox
    outcome.redacted(&redactor)
}

/// Append the host's lines to the log within `cap` bytes: they count against it like the
/// guest's, and the guest's text gives way to them (they are bounded and say what the host
/// refused). Returns whether anything was cut.
fn fit_log(text: &mut String, lines: &str, cap: u64) -> bool {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let host = floor(lines, cap);
    let room = cap - host.len();
    let cut = text.len() > room;
    if cut {
        let keep = floor(text, room).len();
        text.truncate(keep);
    }
    text.push_str(host);
    cut || host.len() < lines.len()
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn floor(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn classify(result: CallResult, state: &HostState, log: &str, limits: &Limits, cancel: &AtomicBool) -> Status {
    let timed_out = || Status::TimedOut { message: format!("timed out after {}", human_duration(limits.timeout)) };
    let (instantiating, e) = match result {
        Err(Cut::Canceled) => return Status::Canceled,
        Err(Cut::Deadline) if cancel.load(Ordering::Relaxed) => return Status::Canceled,
        Err(Cut::Deadline) => return timed_out(),
        Ok(Ok(returned)) => return returned_status(returned, limits.max_output),
        Ok(Err(failure)) => failure,
    };
    match (state.interrupt.why, state.limiter.denied) {
        (Some(Interrupted::Canceled), _) => Status::Canceled,
        (Some(Interrupted::Deadline), _) => timed_out(),
        (None, Some(wanted)) => Status::Failed {
            kind: FailureKind::MemoryLimit,
            message: format!(
                "memory limit of {} exceeded (the guest asked for {})",
                human_bytes(state.limiter.limit()),
                human_bytes(wanted)
            ),
        },
        (None, None) if e.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) => Status::Failed {
            kind: FailureKind::Fuel,
            message: format!("fuel budget of {} exhausted", state.fuel_budget.unwrap_or(0)),
        },
        (None, None) if e.downcast_ref::<Trap>().is_some() => {
            Status::Failed { kind: FailureKind::Trap, message: trap_message(&e, log) }
        }
        (None, None) if instantiating => {
            Status::Failed { kind: FailureKind::Host, message: format!("could not instantiate: {e:#}") }
        }
        (None, None) => Status::Failed { kind: FailureKind::Trap, message: format!("guest failed: {e:#}") },
    }
}

/// What the guest's own answer means.
fn returned_status(returned: Returned, max_output: u64) -> Status {
    match returned {
        Returned::Output(output) => check_output(output, max_output),
        Returned::TaskError(TaskError::Transient(m)) => Status::Failed { kind: FailureKind::Transient, message: m },
        Returned::TaskError(TaskError::Permanent(m)) => Status::Failed { kind: FailureKind::Permanent, message: m },
        Returned::Exit(0) => Status::Success { output: "null".into() },
        Returned::Exit(code) => Status::Failed { kind: FailureKind::Exit, message: format!("exited with code {code}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lines_count_against_the_log_cap() {
        let mut log = "x".repeat(100);
        assert!(fit_log(&mut log, "[sluice] denied\n", 50));
        assert_eq!(log.len(), 50);
        assert!(log.ends_with("[sluice] denied\n"));
        let mut log = "short\n".to_string();
        assert!(!fit_log(&mut log, "[sluice] denied\n", 1000));
        assert_eq!(log, "short\n[sluice] denied\n");
        let mut log = "é".repeat(10);
        assert!(fit_log(&mut log, "host lines longer than the cap", 5));
        assert_eq!(log, "host ");
    }
}
