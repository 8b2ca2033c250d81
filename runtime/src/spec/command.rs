//! Command tasks (`kind = "command"`): any `wasi:cli/command` component, run with declared
//! `args`, `env` and `stdin` (text, a host file, or an upstream task's stdout file or output
//! with `stdin_from`); its exit code decides success (`success_exit_codes`) and its stdout is
//! the log, the task's JSON output (`stdout = "output"`) or a file of its `/out`
//! (`stdout = "file:NAME"`, read downstream at `/in/TASK/NAME`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::kinds::TaskKind;
use super::mounts::{Roots, Want};
use super::names;
use super::read::{Entry, Node, Table};
use super::refs::Templated;

/// The values `kind` accepts; `"component"` is the default and changes nothing.
const KINDS: [&str; 3] = ["command", "component", "python"];
/// The keys only a command task takes.
pub(crate) const COMMAND_KEYS: [&str; 7] =
    ["args", "env", "stdin", "stdin_file", "stdin_from", "stdout", "success_exit_codes"];

/// A command task's program and what it is handed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// A component of [`Bundle::components`](super::Bundle::components) (or the file of
    /// `sluice task run --command`).
    pub component: String,
    /// The arguments after the program name (each may hold `{{ … }}` references).
    pub args: Vec<String>,
    /// The whole environment the program sees (values may hold `{{ … }}` references, and
    /// `{{ secrets/scope/key }}` ones).
    pub env: BTreeMap<String, String>,
    /// `None` = empty stdin.
    pub stdin: Option<Stdin>,
    /// Whether stdout is also the task's output (then it must be JSON); it is always the log.
    pub stdout_is_output: bool,
    /// `stdout = "file:NAME"`: stdout goes to `/out/NAME` (not the log, not capped by
    /// `max_output`, only by `max_out`); downstream tasks read it at `/in/<task>/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_file: Option<String>,
    /// Exit codes that mean success (`success_exit_codes = [0, 1]`); empty: only 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_exit_codes: Vec<i32>,
    /// A `kind = "python"` task's script text: the runner gets `-c SCRIPT` before `args`
    /// (the text is never templated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// What a command task reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stdin {
    /// Literal text (may hold `{{ … }}` references, rendered before the run).
    Text(String),
    /// A host file: absolute, canonical, existing, under the bundle root or a data root.
    File(PathBuf),
    /// `stdin_from = "TASK[:FILE]"`: file `FILE` of direct upstream task `TASK`'s `/out`;
    /// without `FILE`, its stdout file (`stdout = "file:NAME"`) or else its output.
    Upstream { task: String, file: Option<String> },
}

/// Reads the optional `kind` of a task whose kind key is `chosen` (`component`, `condition`,
/// …): `Ok(true)` when it is a command task. Only `kind = "command"` (with `component`)
/// and the no-op `kind = "component"` are accepted.
pub(crate) fn is_command(table: &Table<'_>, task: &str, chosen: &str) -> Result<bool, SpecError> {
    let Some(node) = table.get("kind") else {
        return Ok(false);
    };
    let kind = node.str()?;
    if !KINDS.contains(&kind) {
        return Err(node.error(format!(
            "unknown kind `{kind}`{}; the accepted values are `command` (run a `wasi:cli/command` \
             component with args, env and stdin) and `python` (run `script` in the Python runner); \
             leave `kind` out for a sluice task component",
            names::suggestion(kind, KINDS)
        )));
    }
    if kind == "python" {
        return Err(node.error(format!(
            "`kind = \"python\"` takes `script = \"…\"`, not `{chosen}` (and is not available in a for_each template)"
        )));
    }
    if chosen != "component" {
        return Err(
            node.error(format!("`kind = \"{kind}\"` needs `component = \"…\"`, but task `{task}` is a {chosen} task"))
        );
    }
    Ok(kind == "command")
}

/// The rest of a command task running `component`; values that may hold references are
/// added to `templates`.
pub(crate) fn command<'a>(
    table: &Table<'a>,
    task: &str,
    component: String,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<TaskKind, SpecError> {
    let args = match table.get("args") {
        Some(node) => args(node, templates)?,
        None => Vec::new(),
    };
    let env = match table.get("env") {
        Some(node) => env(node, templates)?,
        None => BTreeMap::new(),
    };
    let stdin = stdin(table, task, roots, templates)?;
    let (stdout_is_output, stdout_file) = match table.get("stdout") {
        Some(node) => stdout(node)?,
        None => (false, None),
    };
    let success_exit_codes = table.get("success_exit_codes").map(exit_codes).transpose()?.unwrap_or_default();
    Ok(TaskKind::Command(CommandSpec {
        component,
        args,
        env,
        stdin,
        stdout_is_output,
        stdout_file,
        success_exit_codes,
        script: None,
    }))
}

/// The one of `stdin`, `stdin_file` and `stdin_from` a task gives, if any.
fn stdin<'a>(
    table: &Table<'a>,
    task: &str,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<Option<Stdin>, SpecError> {
    let given: Vec<&Entry<'a>> =
        table.entries().iter().filter(|e| matches!(e.key, "stdin" | "stdin_file" | "stdin_from")).collect();
    let Some(entry) = given.first() else { return Ok(None) };
    if let Some(second) = given.get(1) {
        return Err(second.key_error(format!(
            "task `{task}` has both `{}` and `{}`; give one: literal text (`stdin`), a host file \
             (`stdin_file`) or an upstream task's stdout (`stdin_from`)",
            entry.key, second.key
        )));
    }
    let node = &entry.node;
    Ok(Some(match entry.key {
        "stdin" => {
            let text = node.str()?;
            templates.push(Templated::new("stdin".into(), text, node, false));
            Stdin::Text(text.to_string())
        }
        "stdin_file" => Stdin::File(roots.host_path(node, node.str()?, "stdin_file", Want::File)?),
        _ => stdin_from(node)?,
    }))
}

/// `stdin_from = "TASK"` or `"TASK:FILE"` (a relative path inside that task's `/out`).
fn stdin_from(node: &Node<'_>) -> Result<Stdin, SpecError> {
    let text = node.str()?;
    let (task, file) = match text.split_once(':') {
        Some((task, file)) => (task, Some(file)),
        None => (text, None),
    };
    names::check_name(task).map_err(|why| {
        node.error(format!(
            "stdin_from `{text}`: bad task key `{task}`: {why}; write `TASK` (its stdout file or output) \
             or `TASK:FILE` (a file of its /out)"
        ))
    })?;
    if let Some(file) = file {
        check_out_path(file).map_err(|why| node.error(format!("stdin_from `{text}`: {why}")))?;
    }
    Ok(Stdin::Upstream { task: task.to_string(), file: file.map(str::to_string) })
}

/// A path inside a task's `/out`: relative, `/`-separated, no empty, `.` or `..` part.
pub fn check_out_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|part| part.is_empty() || part == "." || part == ".." || part.contains('\\'));
    if bad {
        return Err(format!(
            "`{path}` is not a file name inside /out: use a relative path such as `matches.txt` or `rg/hits.txt` \
             (no leading `/`, no `.` or `..`)"
        ));
    }
    Ok(())
}

/// `success_exit_codes = [0, 1]`: each an exit status from 0 to 255.
fn exit_codes(node: &Node<'_>) -> Result<Vec<i32>, SpecError> {
    let mut codes = Vec::new();
    for item in node.array()? {
        let code = item.integer()?;
        let code = u8::try_from(code).map_err(|_| {
            item.error(format!("exit code {code} is out of range: an exit status is a whole number from 0 to 255"))
        })?;
        codes.push(i32::from(code));
    }
    if codes.is_empty() {
        return Err(node.error("success_exit_codes is empty: list the exit codes that mean success, e.g. `[0, 1]`"));
    }
    Ok(codes)
}

fn args<'a>(node: &Node<'a>, templates: &mut Vec<Templated<'a>>) -> Result<Vec<String>, SpecError> {
    let mut args = Vec::new();
    for (index, item) in node.array()?.into_iter().enumerate() {
        if !item.is_scalar() {
            return Err(
                item.error("each arg is one string (numbers and booleans are written as text); found a nested value")
            );
        }
        let value = item.param_string()?;
        templates.push(Templated::new(format!("args[{index}]"), &value, &item, false));
        args.push(value);
    }
    Ok(args)
}

fn env<'a>(node: &Node<'a>, templates: &mut Vec<Templated<'a>>) -> Result<BTreeMap<String, String>, SpecError> {
    let table = node.table()?;
    let mut env = BTreeMap::new();
    for entry in table.entries() {
        check_env_name(entry.key).map_err(|why| entry.key_error(why))?;
        if !entry.node.is_scalar() {
            return Err(entry.node.error("an environment variable's value is one string; found a nested value"));
        }
        let value = entry.node.param_string()?;
        templates.push(Templated::new(format!("env `{}`", entry.key), &value, &entry.node, false).allowing_secrets());
        env.insert(entry.key.to_string(), value);
    }
    Ok(env)
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`.
fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("bad environment variable name `{name}`: use letters, digits and `_`, not starting with a digit"))
    }
}

/// `stdout`: whether it is the task's output, and the `/out` file it goes to.
fn stdout(node: &Node<'_>) -> Result<(bool, Option<String>), SpecError> {
    match node.str()? {
        "log" => Ok((false, None)),
        "output" => Ok((true, None)),
        other if other.starts_with("file:") => {
            let name = &other["file:".len()..];
            check_out_path(name).map_err(|why| node.error(format!("stdout `{other}`: {why}")))?;
            Ok((false, Some(name.to_string())))
        }
        other => Err(node.error(format!(
            "unknown stdout `{other}`{}; use `log` (the default: stdout is the task's log), \
             `output` (stdout is also the task's output and must be JSON) or `file:NAME` (stdout \
             goes to /out/NAME, which downstream tasks read at /in/<task>/NAME)",
            names::suggestion(other, ["log", "output", "file:"])
        ))),
    }
}

/// `stdin_from` names a task this one depends on directly: only direct dependencies'
/// `/out` files are offered to a task.
pub(crate) fn check_stdin_from(
    table: &Table<'_>,
    task: &str,
    kind: &TaskKind,
    depends_on: &[super::Dependency],
) -> Result<(), SpecError> {
    let TaskKind::Command(CommandSpec { stdin: Some(Stdin::Upstream { task: up, .. }), .. }) = kind else {
        return Ok(());
    };
    let Some(node) = table.get("stdin_from") else { return Ok(()) };
    if up == task {
        return Err(node.error(format!("stdin_from `{up}`: a task cannot read its own stdout")));
    }
    if !depends_on.iter().any(|d| &d.task == up) {
        return Err(node.error(format!(
            "stdin_from `{up}`: task `{task}` does not depend on `{up}`; add it to `depends_on` \
             (stdin comes from a direct upstream task)"
        )));
    }
    Ok(())
}
