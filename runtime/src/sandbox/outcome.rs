//! What an attempt reports: [`Outcome`], its [`Status`] and why it failed ([`FailureKind`]).
//!
//! Owns the vocabulary of attempt results, the rules a task's output must meet (JSON,
//! under `max_output`), and redaction of everything an outcome carries. It never decides
//! what a result means for the run (retry, skip): that is the scheduler's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secrets::Redactor;
use crate::util::human_bytes;

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

    /// How the failure is named in an attempt's error: "transient error", "trap", ….
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient error",
            FailureKind::Permanent => "permanent error",
            FailureKind::Trap => "trap",
            FailureKind::MemoryLimit => "out of memory",
            FailureKind::InvalidOutput => "invalid output",
            FailureKind::Host => "host error",
            FailureKind::Exit => "command failed",
            FailureKind::Fuel => "out of fuel",
        }
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

impl Outcome {
    /// An attempt that failed before the guest ran: no log, no values.
    pub fn failed(kind: FailureKind, message: String, elapsed: Duration) -> Outcome {
        Outcome {
            status: Status::Failed { kind, message },
            log: String::new(),
            log_truncated: false,
            values: Vec::new(),
            secret_audit: Vec::new(),
            elapsed,
        }
    }

    /// The outcome with every value `redactor` knows (in every form it knows) replaced by
    /// `[REDACTED]`: log, output, error message and published values.
    pub(crate) fn redacted(mut self, redactor: &Redactor) -> Outcome {
        if redactor.is_empty() {
            return self;
        }
        self.log = redactor.redact_log(&self.log, self.log_truncated);
        self.status = match self.status {
            Status::Success { output } => Status::Success { output: redactor.redact_json(&output) },
            Status::Failed { kind, message } => Status::Failed { kind, message: redactor.redact(&message) },
            Status::TimedOut { message } => Status::TimedOut { message: redactor.redact(&message) },
            Status::Canceled => Status::Canceled,
        };
        self.values =
            self.values.into_iter().map(|(k, json)| (redactor.redact(&k), redactor.redact_json(&json))).collect();
        self
    }
}

/// A task's output, if it is JSON under `max` bytes.
pub(crate) fn check_output(output: String, max: u64) -> Status {
    if output.len() as u64 > max {
        return Status::Failed {
            kind: FailureKind::InvalidOutput,
            message: format!("output is {}, over the limit of {}", human_bytes(output.len() as u64), human_bytes(max)),
        };
    }
    match serde_json::from_str::<serde_json::Value>(&output) {
        Ok(_) => Status::Success { output },
        Err(e) => {
            Status::Failed { kind: FailureKind::InvalidOutput, message: format!("output is not valid JSON: {e}") }
        }
    }
}

/// A command's stdout as a task output: itself when it is JSON, else a JSON string.
pub(crate) fn as_json_output(stdout: &str) -> String {
    let trimmed = stdout.trim();
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(_) if !trimmed.is_empty() => trimmed.to_string(),
        _ => serde_json::Value::String(stdout.to_string()).to_string(),
    }
}

/// "guest trapped: wasm `unreachable` instruction executed (panicked at src/lib.rs:3:5: boom)";
/// for a Python guest (componentize-py traps after printing the traceback) the exception:
/// "uncaught Python exception: ValueError: bad row 3 (at task.py:12, in run)".
pub(crate) fn trap_message(e: &wasmtime::Error, log: &str) -> String {
    if let Some(exception) = python_exception(log) {
        return format!("uncaught Python exception: {exception}");
    }
    let what = e.downcast_ref::<wasmtime::Trap>().map(|t| t.to_string()).unwrap_or_else(|| format!("{e}"));
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

/// The last Python traceback in `log`: "TYPE: MESSAGE (at FILE:LINE, in FUNCTION)", the
/// frame being the innermost one.
fn python_exception(log: &str) -> Option<String> {
    const HEAD: &str = "Traceback (most recent call last):";
    let start = log.rfind(HEAD)? + HEAD.len();
    let mut frame = None;
    let mut exception = None;
    for line in log[start..].lines().skip(1) {
        if let Some(rest) = line.trim_start().strip_prefix("File \"") {
            // `  File "/app/task.py", line 12, in run`
            let (file, rest) = rest.split_once('"')?;
            let file = file.rsplit('/').next().unwrap_or(file);
            let line_no = rest.split("line ").nth(1).and_then(|r| r.split(',').next()).unwrap_or("?");
            let function = rest.split(", in ").nth(1).unwrap_or("").trim();
            frame = Some(format!("{file}:{line_no}, in {function}"));
        } else if !line.starts_with(' ') && !line.is_empty() {
            exception = Some(line.trim().to_string());
            break;
        }
    }
    let exception = exception?;
    Some(match frame {
        Some(frame) => format!("{exception} (at {frame})"),
        None => exception,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_python_traceback_names_the_exception_and_where_it_was_raised() {
        let log = "starting\nTraceback (most recent call last):\n  File \"/app/task.py\", line 12, in run\n    \
                   return parse(x)\n  File \"/app/rows.py\", line 3, in parse\n    raise ValueError(\"bad row 3\")\n\
                   ValueError: bad row 3\nthread '<unnamed>' panicked at runtime/src/lib.rs:608:21:\nPython function call failed\n";
        let e = wasmtime::Error::msg("wasm trap");
        assert_eq!(trap_message(&e, log), "uncaught Python exception: ValueError: bad row 3 (at rows.py:3, in parse)");
        assert!(!trap_message(&e, "panicked at src/lib.rs:3:5:\nboom\n").contains("Python"));
    }

    use super::*;
    use crate::secrets::REDACTED;

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

    #[test]
    fn outcomes_are_redacted_everywhere() {
        let r = Redactor::new(["hunter2"]);
        let mut outcome = Outcome::failed(FailureKind::Permanent, "bad hunter2".into(), Duration::ZERO);
        outcome.log = "log aHVudGVyMg== end".into();
        outcome.values = vec![("k".into(), "\"hunter2\"".into())];
        let clean = outcome.redacted(&r);
        assert_eq!(clean.status, Status::Failed { kind: FailureKind::Permanent, message: format!("bad {REDACTED}") });
        assert_eq!(clean.log, format!("log {REDACTED} end"));
        assert_eq!(clean.values, vec![("k".to_string(), format!("\"{REDACTED}\""))]);
    }
}
