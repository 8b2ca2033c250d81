//! Plain Python scripts as tasks: `kind = "python"`, `script = "etl.py"`.
//!
//! Sugar over a command task: the script runs in the WASI CPython runner component (a
//! `wasi:cli/command` built by `python -m sluice_sdk.build --runner`, content-hashed like
//! every component), with the command keys (`args`, `env`, `stdin`, `stdin_from`,
//! `stdout`, `success_exit_codes`) and the sandbox keys (mounts, limits, …) as for any
//! command. The script's text is read when the bundle is read and handed to the runner as
//! `-c SCRIPT`, so the run pins exactly the code it ran and no host directory but the
//! declared mounts is exposed. Owns the runner's lookup and the expansion; runs nothing.

use std::path::PathBuf;

use super::command::{self, CommandSpec};
use super::error::SpecError;
use super::kinds::TaskKind;
use super::mounts::{Roots, Want};
use super::read::Table;
use super::refs::Templated;
use super::{Bundle, ComponentSpec};

/// The component a `kind = "python"` task runs: the bundle's own `python` component when
/// it declares one, else the runner found by [`runner_path`].
pub const PYTHON_COMPONENT: &str = "python";

/// Environment variable naming the runner component file.
pub const PYTHON_RUNNER_ENV: &str = "SLUICE_PYTHON_RUNNER";

/// The largest script `kind = "python"` takes: its text travels in the run's plan.
pub const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// How to build the runner, for errors.
const BUILD_HINT: &str = "build it once with `python -m sluice_sdk.build --runner -o RUNNER` (sdk/python; \
     scripts/setup does it), where RUNNER is $SLUICE_PYTHON_RUNNER or ~/.cache/sluice/runners/python.wasm, \
     or declare it: `[components] python = { path = \"…/python.wasm\" }`";

/// Where the runner is looked for: `$SLUICE_PYTHON_RUNNER`, else `runners/python.wasm` in
/// the user's sluice cache (`$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`).
pub fn runner_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = var(PYTHON_RUNNER_ENV) {
        return Some(path);
    }
    let base = var("XDG_CACHE_HOME").map(|d| d.join("sluice")).or_else(|| var("HOME").map(|h| h.join(".cache/sluice")));
    base.map(|b| b.join("runners").join("python.wasm"))
}

/// A `kind = "python"` task: `script` (a file under the bundle root or a data root) run
/// by the runner, with the command keys of [`command::command`].
pub(crate) fn python<'a>(
    table: &Table<'a>,
    task: &str,
    declared: bool,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<TaskKind, SpecError> {
    if let Some(entry) = table.entries().iter().find(|e| e.key == "component") {
        return Err(entry.key_error(format!(
            "task `{task}` is `kind = \"python\"`: it runs `script` in the Python runner, so it takes no \
             `component` (use `kind = \"command\"` to run a component of your own)"
        )));
    }
    let node = table.require("script")?;
    let path = roots.host_path(node, node.str()?, "script", Want::File)?;
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_SCRIPT_BYTES {
        return Err(node.error(format!(
            "script `{}` is {len} bytes, over the limit of {MAX_SCRIPT_BYTES}: put the code in modules on a mount",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| node.error(format!("cannot read script `{}`: {e}", path.display())))?;
    if !declared {
        match runner_path() {
            Some(runner) if runner.is_file() => {}
            Some(runner) => {
                return Err(node.error(format!(
                    "the Python runner is not built ({} does not exist): {BUILD_HINT}",
                    runner.display()
                )));
            }
            None => return Err(node.error(format!("the Python runner cannot be found (no HOME): {BUILD_HINT}"))),
        }
    }
    let TaskKind::Command(spec) = command::command(table, task, PYTHON_COMPONENT.to_string(), roots, templates)? else {
        return Err(node.error("internal: a python task did not read as a command"));
    };
    Ok(TaskKind::Command(CommandSpec { script: Some(text), ..spec }))
}

/// Add the runner to `bundle.components` when a python task uses it and the bundle does
/// not declare its own.
pub(crate) fn add_runner(bundle: &mut Bundle) {
    if bundle.components.contains_key(PYTHON_COMPONENT) {
        return;
    }
    let used = bundle.jobs.values().flat_map(|j| &j.tasks).any(|t| t.component() == Some(PYTHON_COMPONENT));
    if let (true, Some(path)) = (used, runner_path()) {
        bundle
            .components
            .insert(PYTHON_COMPONENT.into(), ComponentSpec { name: PYTHON_COMPONENT.into(), path, source: None });
    }
}
