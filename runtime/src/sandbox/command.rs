//! Command tasks: any `wasi:cli/command` component (a program with `main`,
//! written in any language, or a WASI preview1 module adapted at load time).
//!
//! Owns how a command's inputs (args, env, stdin) reach it and how its exit
//! becomes an outcome: exit code 0 is success; stdout is the log, or the
//! task's output when asked. It grants the program nothing beyond what a task
//! component gets: no env but what is declared, no files but the mounts.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Engine;
use wasmtime_wasi::I32Exit;

use super::attempt::{self, Returned};
use super::cache::TaskComponent;
use super::outcome::{FailureKind, Outcome};
use super::{Invocation, logs};
use crate::util::DirPool;

/// What a command task hands its program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// `argv[1..]` (argv\[0] is the task key).
    pub args: Vec<String>,
    /// The whole environment the program sees, but for `secret_env`.
    pub env: Vec<(String, String)>,
    /// Variables whose values hold `{{ secrets/scope/key }}` references: revealed
    /// (and audited) just before the program starts, redacted from all it reports.
    pub secret_env: Vec<(String, Vec<crate::spec::template::Part>)>,
    /// Bytes on stdin (closed when `None`).
    pub stdin: Option<Vec<u8>>,
    /// Whether stdout is the task's output (JSON as-is, other text as a JSON string).
    pub stdout_is_output: bool,
}

pub(crate) async fn run(
    engine: &Engine,
    scratch: &Arc<DirPool>,
    telemetry: &dyn crate::model::Telemetry,
    component: &TaskComponent,
    inv: Invocation,
    cmd: Command,
) -> Outcome {
    let started = Instant::now();
    let Invocation { context, limits, mut grants } = inv;
    let mut env = cmd.env;
    match super::secrets::resolve_env(&context, cmd.secret_env).await {
        Ok((resolved, values)) => {
            env.extend(resolved);
            grants.secrets.held.extend(values);
        }
        Err(message) => return Outcome::failed(FailureKind::Permanent, message, started.elapsed()),
    }
    let mut args = vec![context.task.task_key.clone()];
    args.extend(cmd.args);
    grants.logs = logs::Grant { args, env, stdin: cmd.stdin, stdout_is_output: cmd.stdout_is_output };
    let mut store = match attempt::new_store(engine, scratch, &context, &limits, grants, started) {
        Ok(store) => store,
        Err(e) => return attempt::setup_failed(e, started),
    };
    let result = match component.command_pre() {
        Some(pre) => {
            let call = async {
                let begun = Instant::now();
                let command = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
                telemetry.instantiated(begun.elapsed());
                match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Ok(Returned::Exit(0)),
                    Ok(Err(())) => Ok(Returned::Exit(1)),
                    Err(e) => match e.downcast_ref::<I32Exit>() {
                        Some(exit) => Ok(Returned::Exit(exit.0)),
                        None => Err((false, e)),
                    },
                }
            };
            tokio::time::timeout(attempt::host_deadline(&limits), call).await
        }
        None => Ok(Err((
            true,
            wasmtime::Error::msg("this component is a sluice task, not a command; drop `kind = \"command\"`"),
        ))),
    };
    attempt::finish(store, result, &context, &limits, started)
}
