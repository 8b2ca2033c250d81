//! Command tasks: any `wasi:cli/command` component (a program with `main`,
//! written in any language, or a WASI preview1 module adapted at load time).
//!
//! Owns how a command's inputs (args, env, stdin) reach it and how its exit
//! becomes an outcome: exit code 0 is success; stdout is the log, or the
//! task's output when asked. It grants the program nothing beyond what a task
//! component gets: no env but what is declared, no files but the mounts.

use std::path::PathBuf;
use std::time::Instant;

use wasmtime::Engine;
use wasmtime_wasi::I32Exit;

use super::attempt::{self, Returned};
use super::cache::TaskComponent;
use super::outcome::{FailureKind, Outcome};
use super::{Invocation, logs};

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
    /// stdout goes to this file of `/out` (a relative path), bounded by `max_out`.
    pub stdout_file: Option<String>,
    /// The attempt's `/out` limit (bounds `stdout_file`).
    pub max_out: Option<u64>,
    /// stdin is file `.1` of upstream task `.0`'s `/out` (offered at `/in/<task>`).
    pub stdin_input: Option<(String, String)>,
    /// Exit codes that mean success; empty: only 0.
    pub success_exit_codes: Vec<i32>,
}

impl Command {
    /// Whether exit code `code` means success.
    pub fn succeeded(&self, code: i32) -> bool {
        if self.success_exit_codes.is_empty() { code == 0 } else { self.success_exit_codes.contains(&code) }
    }
}

pub(crate) async fn run(
    engine: &Engine,
    dirs: attempt::Dirs<'_>,
    telemetry: &dyn crate::model::Telemetry,
    component: &TaskComponent,
    inv: Invocation,
    mut cmd: Command,
) -> Outcome {
    let started = Instant::now();
    let Invocation { context, limits, mut grants } = inv;
    let mut env = std::mem::take(&mut cmd.env);
    match super::secrets::resolve_env(&context, std::mem::take(&mut cmd.secret_env)).await {
        Ok((resolved, values)) => {
            env.extend(resolved);
            grants.secrets.held.extend(values);
        }
        Err(message) => return Outcome::failed(FailureKind::Permanent, message, started.elapsed()),
    }
    let mut args = vec![context.task.task_key.clone()];
    args.extend(cmd.args.iter().cloned());
    let (stdout_file, stdin_path) = match stdio_paths(&cmd, &grants.files) {
        Ok(paths) => paths,
        Err(message) => return Outcome::failed(FailureKind::Permanent, message, started.elapsed()),
    };
    grants.logs = logs::Grant {
        args,
        env,
        stdin: cmd.stdin.take(),
        stdout_is_output: cmd.stdout_is_output,
        stdout_file,
        stdin_path,
    };
    let mut store = match attempt::new_store(engine, dirs, &context, &limits, grants, started) {
        Ok(store) => store,
        Err(e) => return attempt::setup_failed(e, started),
    };
    let result = match component.command_pre() {
        Some(pre) => {
            let call = async {
                let begun = Instant::now();
                let command = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
                telemetry.instantiated(begun.elapsed());
                let code = match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => 0,
                    Ok(Err(())) => 1,
                    // `exit`, `exit-with-code` and preview1's `proc_exit` all end the
                    // program with an `I32Exit` error carrying its code
                    Err(e) => match e.downcast_ref::<I32Exit>() {
                        Some(exit) => exit.0,
                        None => return Err((false, e)),
                    },
                };
                Ok(exit_returned(&cmd, code, &mut store))
            };
            attempt::bounded(&limits, &context.cancel, call).await
        }
        None => Ok(Err((
            true,
            wasmtime::Error::msg("this component is a sluice task, not a command; drop `kind = \"command\"`"),
        ))),
    };
    attempt::finish(store, result, &context, &limits, started)
}

/// What exit code `code` means for this command: a success code other than 0 is noted in
/// the log and counts as `Exit(0)`; any other code is the failure it is.
fn exit_returned(cmd: &Command, code: i32, store: &mut wasmtime::Store<super::HostState>) -> Returned {
    if code != 0 && cmd.succeeded(code) {
        let note = format!("[sluice] exited with code {code}, a success code of this task (success_exit_codes)\n");
        store.data().caps.logs.log.append_host(&note);
        return Returned::Exit(0);
    }
    Returned::Exit(code)
}

/// The stdout file (with the room `/out` has left) and the stdin file of a command.
type StdioPaths = (Option<(PathBuf, Option<u64>)>, Option<PathBuf>);

/// The host files behind `stdout = "file:NAME"` and `stdin_from`: inside the attempt's
/// `/out` and the upstream task's `/in` directory, never anywhere else.
fn stdio_paths(cmd: &Command, files: &super::files::Grant) -> Result<StdioPaths, String> {
    let stdout = match &cmd.stdout_file {
        None => None,
        Some(name) => {
            crate::spec::check_out_path(name)?;
            let out = files.out.as_ref().ok_or_else(|| {
                format!("stdout = \"file:{name}\" needs a /out directory, and this run collects no files")
            })?;
            Some((out.join(name), cmd.max_out))
        }
    };
    let stdin = match &cmd.stdin_input {
        None => None,
        Some((task, file)) => {
            crate::spec::check_out_path(file)?;
            let dir = files.inputs.iter().find(|(t, _)| t == task).map(|(_, dir)| dir);
            let path = dir
                .map(|d| d.join(file))
                .filter(|p| p.is_file())
                .ok_or_else(|| format!("stdin_from `{task}:{file}`: task `{task}` wrote no file `{file}` to /out"))?;
            Some(path)
        }
    };
    Ok((stdout, stdin))
}
