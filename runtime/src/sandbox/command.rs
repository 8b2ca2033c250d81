//! Command tasks: any `wasi:cli/command` component (a program with `main`,
//! written in any language, or a WASI preview1 module adapted at load time).
//!
//! Owns how a command's inputs (args, env, stdin) reach it and how its exit
//! becomes an outcome: exit code 0 is success; stdout is the log, or the
//! task's output when asked. It grants the program nothing beyond what a task
//! component gets: no env but what is declared, no files but the mounts.

use std::time::Instant;

use wasmtime::Engine;
use wasmtime_wasi::I32Exit;

use std::sync::Arc;

use super::cache::TaskComponent;
use super::logs::CappedLog;
use super::run::{self, Invocation, Io, Outcome, Returned};
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
    component: &TaskComponent,
    inv: Invocation,
    cmd: Command,
) -> Outcome {
    let started = Instant::now();
    let mut inv = inv;
    let mut env = cmd.env;
    match super::secrets::resolve_env(&inv, cmd.secret_env).await {
        Ok((resolved, values)) => {
            env.extend(resolved);
            inv.revealed.extend(values);
        }
        Err(message) => return super::secrets::denied(message, started),
    }
    let mut args = vec![inv.context.task_key.clone()];
    args.extend(cmd.args);
    let io = Io {
        log: CappedLog::new(inv.limits.max_log),
        stdout: cmd.stdout_is_output.then(|| CappedLog::new(inv.limits.max_output)),
        args,
        env,
        stdin: cmd.stdin,
    };
    let mut store = match run::new_store(engine, scratch, &inv, &io, started) {
        Ok(store) => store,
        Err(e) => return run::setup_failed(e, started),
    };
    let result = match component.command_pre() {
        Some(pre) => {
            let call = async {
                let command = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
                match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Ok(Returned::Exit(0)),
                    Ok(Err(())) => Ok(Returned::Exit(1)),
                    Err(e) => match e.downcast_ref::<I32Exit>() {
                        Some(exit) => Ok(Returned::Exit(exit.0)),
                        None => Err((false, e)),
                    },
                }
            };
            tokio::time::timeout(run::host_deadline(&inv), call).await
        }
        None => Ok(Err((
            true,
            wasmtime::Error::msg("this component is a sluice task, not a command; drop `kind = \"command\"`"),
        ))),
    };
    run::finish(store, result, &io, &inv, started)
}
