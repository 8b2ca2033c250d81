//! The messages between the coordinator and its workers: a [`WorkOrder`] (one attempt with
//! everything it may read) and a [`WorkOutcome`] (what happened), as JSON.
//!
//! Owns converting the executor's [`PreparedAttempt`] and the sandbox's [`Outcome`] to and
//! from their wire forms. It never does I/O.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::cache::TreeManifest;
use crate::model::{Millis, RunId};
use crate::sandbox::values::Readable;
use crate::sandbox::{Command, FailureKind, Limits, Outcome, Status, TaskContext, World};
use crate::scheduler::{AttemptReport, PreparedAttempt};
use crate::spec::ExecSpec;
use crate::spec::template::Part;

/// One attempt for a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOrder {
    /// Unique per attempt (and per server): the outcome's message id.
    pub id: String,
    /// The lease: heartbeat at least every third of it.
    pub lease_ms: u64,
    pub run: RunId,
    pub task: TaskContext,
    pub principal: String,
    pub workspace: String,
    pub logical_start: Millis,
    /// blake3 (hex) of the component: its bytes are in the components bucket by that name.
    pub component: String,
    pub command_world: bool,
    pub exec: ExecSpec,
    pub command: Option<WireCommand>,
    pub limits: WireLimits,
    /// Tasks whose values it may read, and their values (task, key, JSON).
    pub readable: BTreeSet<String>,
    pub values: Vec<(String, String, String)>,
    /// Its task's checkpoints so far (key, base64 bytes).
    pub checkpoints: Vec<(String, String)>,
    /// Upstream `/out` trees by content: the blobs are in the blobs bucket.
    pub inputs: Vec<(String, TreeManifest)>,
    pub collect_out: bool,
    pub max_out: Option<u64>,
    pub seed: Option<[u8; 32]>,
    /// The task's production expectations: the worker checks them on `/out`.
    #[serde(default)]
    pub expectations: Vec<crate::spec::expect::TaskExpectation>,
    /// Where the worker asks the server for this attempt's secrets (`None`: reveals fail).
    #[serde(default)]
    pub reveal_subject: Option<String>,
    /// What the worker shows with each reveal: only the worker the order was delivered
    /// to has it (the server refuses a reveal without it).
    #[serde(default)]
    pub reveal_token: Option<String>,
    /// Staged models it loads, by content: the worker stages each from the blobs bucket and
    /// offers it read-only at its guest path (the server's staging path means nothing there).
    #[serde(default)]
    pub models: Vec<WireModel>,
}

/// A staged model on the wire: its artifact's blake3 (in the blobs bucket) and file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireModel {
    pub guest: String,
    pub hash: String,
    pub file: String,
}

/// [`Limits`] on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct WireLimits {
    pub memory: u64,
    pub timeout_ms: u64,
    pub max_log: u64,
    pub max_output: u64,
    pub fuel: Option<u64>,
}

/// [`Command`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireCommand {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub secret_env: Vec<(String, Vec<Part>)>,
    pub stdin: Option<String>,
    pub stdout_is_output: bool,
    pub stdout_file: Option<String>,
    pub max_out: Option<u64>,
    pub stdin_input: Option<(String, String)>,
    pub success_exit_codes: Vec<i32>,
}

/// What a worker reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOutcome {
    pub id: String,
    /// The worker's name.
    pub worker: String,
    pub status: WireStatus,
    pub log: String,
    pub log_truncated: bool,
    pub values: Vec<(String, String)>,
    pub secret_audit: Vec<(String, bool)>,
    pub elapsed_us: u64,
    /// Checkpoints saved or changed by the attempt (key, base64 bytes).
    pub checkpoints: Vec<(String, String)>,
    /// The `/out` tree (its blobs are in the blobs bucket), or why it could not be kept.
    pub out: Result<Option<TreeManifest>, String>,
    /// The production expectations' results on `/out`.
    #[serde(default)]
    pub quality: Vec<crate::model::ExpectationResult>,
}

/// [`Status`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WireStatus {
    Success { output: String },
    Failed { kind: FailureKind, message: String },
    TimedOut { message: String },
    Canceled,
}

/// Base64 of checkpoint bytes.
pub fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Checkpoint bytes from base64.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text).map_err(|e| format!("bad base64: {e}"))
}

impl WorkOrder {
    /// The order for `attempt`; `values` and `checkpoints` are read by the caller.
    pub fn new(id: String, lease: Duration, attempt: PreparedAttempt, readable: BTreeSet<String>) -> WorkOrder {
        let l = attempt.limits;
        WorkOrder {
            id,
            lease_ms: lease.as_millis() as u64,
            run: attempt.run,
            task: attempt.task,
            principal: attempt.principal,
            workspace: attempt.workspace,
            logical_start: attempt.logical_start,
            component: attempt.component,
            command_world: attempt.world == World::Command,
            exec: attempt.exec,
            command: attempt.command.map(|c| WireCommand {
                args: c.args,
                env: c.env,
                secret_env: c.secret_env,
                stdin: c.stdin.map(|b| encode(&b)),
                stdout_is_output: c.stdout_is_output,
                stdout_file: c.stdout_file,
                max_out: c.max_out,
                stdin_input: c.stdin_input,
                success_exit_codes: c.success_exit_codes,
            }),
            limits: WireLimits {
                memory: l.memory,
                timeout_ms: l.timeout.as_millis() as u64,
                max_log: l.max_log,
                max_output: l.max_output,
                fuel: l.fuel,
            },
            readable,
            values: Vec::new(),
            checkpoints: Vec::new(),
            inputs: attempt.inputs,
            collect_out: attempt.collect_out,
            max_out: attempt.max_out,
            seed: attempt.seed,
            expectations: attempt.expectations,
            reveal_subject: None,
            reveal_token: None,
            models: Vec::new(),
        }
    }

    /// The attempt as this worker's executor runs it (values read from `readable` only).
    pub fn prepared(&self) -> Result<PreparedAttempt, String> {
        let command = match &self.command {
            None => None,
            Some(c) => Some(Command {
                args: c.args.clone(),
                env: c.env.clone(),
                secret_env: c.secret_env.clone(),
                stdin: c.stdin.as_deref().map(decode).transpose()?,
                stdout_is_output: c.stdout_is_output,
                stdout_file: c.stdout_file.clone(),
                max_out: c.max_out,
                stdin_input: c.stdin_input.clone(),
                success_exit_codes: c.success_exit_codes.clone(),
            }),
        };
        let l = self.limits;
        Ok(PreparedAttempt {
            run: self.run,
            task: self.task.clone(),
            principal: self.principal.clone(),
            workspace: self.workspace.clone(),
            logical_start: self.logical_start,
            component: self.component.clone(),
            world: if self.command_world { World::Command } else { World::Task },
            exec: self.exec.clone(),
            command,
            limits: Limits {
                memory: l.memory,
                timeout: Duration::from_millis(l.timeout_ms),
                max_log: l.max_log,
                max_output: l.max_output,
                fuel: l.fuel,
            },
            readable: Readable::Tasks(self.readable.clone()),
            inputs: self.inputs.clone(),
            collect_out: self.collect_out,
            max_out: self.max_out,
            seed: self.seed,
            expectations: self.expectations.clone(),
        })
    }
}

impl WorkOutcome {
    /// The outcome of `report` for attempt `id` run by `worker`.
    pub fn new(id: String, worker: String, report: AttemptReport, checkpoints: Vec<(String, String)>) -> WorkOutcome {
        let o = report.outcome;
        WorkOutcome {
            id,
            worker,
            status: match o.status {
                Status::Success { output } => WireStatus::Success { output },
                Status::Failed { kind, message } => WireStatus::Failed { kind, message },
                Status::TimedOut { message } => WireStatus::TimedOut { message },
                Status::Canceled => WireStatus::Canceled,
            },
            log: o.log,
            log_truncated: o.log_truncated,
            values: o.values,
            secret_audit: o.secret_audit,
            elapsed_us: o.elapsed.as_micros() as u64,
            checkpoints,
            out: report.out,
            quality: report.quality,
        }
    }

    /// The executor's report of this outcome.
    pub fn report(self) -> AttemptReport {
        let status = match self.status {
            WireStatus::Success { output } => Status::Success { output },
            WireStatus::Failed { kind, message } => Status::Failed { kind, message },
            WireStatus::TimedOut { message } => Status::TimedOut { message },
            WireStatus::Canceled => Status::Canceled,
        };
        let outcome = Outcome {
            status,
            log: self.log,
            log_truncated: self.log_truncated,
            values: self.values,
            secret_audit: self.secret_audit,
            elapsed: Duration::from_micros(self.elapsed_us),
        };
        AttemptReport { outcome, out: self.out, quality: self.quality, receipt: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_round_trips_through_json() {
        let attempt = PreparedAttempt {
            run: 7,
            task: TaskContext {
                job: "j".into(),
                run_id: "7".into(),
                task_key: "t".into(),
                attempt: 1,
                target: "dev".into(),
            },
            principal: "p".into(),
            workspace: "w".into(),
            logical_start: 5,
            component: "abc".into(),
            world: World::Command,
            exec: ExecSpec::default(),
            command: Some(Command { args: vec!["a".into()], stdin: Some(vec![0, 1, 2]), ..Command::default() }),
            limits: Limits { timeout: Duration::from_millis(1500), fuel: Some(9), ..Limits::default() },
            readable: Readable::Nothing,
            inputs: Vec::new(),
            collect_out: true,
            max_out: Some(10),
            seed: Some([3; 32]),
            expectations: Vec::new(),
        };
        let order = WorkOrder::new("id1".into(), Duration::from_secs(2), attempt, BTreeSet::from(["up".to_string()]));
        let back: WorkOrder = serde_json::from_slice(&serde_json::to_vec(&order).unwrap()).unwrap();
        let p = back.prepared().unwrap();
        assert_eq!(p.world, World::Command);
        assert_eq!(p.command.unwrap().stdin, Some(vec![0, 1, 2]));
        assert_eq!(p.limits.timeout, Duration::from_millis(1500));
        assert_eq!(p.limits.fuel, Some(9));
        assert!(p.readable.allows("up") && !p.readable.allows("other"));
        assert_eq!(back.lease_ms, 2000);
    }
}
