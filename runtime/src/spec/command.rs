//! Command tasks (`kind = "command"`): any `wasi:cli/command` component, run with declared
//! `args`, `env` and `stdin`; its exit code decides success and its stdout is the log
//! (and, with `stdout = "output"`, the task's JSON output too).

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
const KINDS: [&str; 2] = ["command", "component"];
/// The keys only a command task takes.
pub(crate) const COMMAND_KEYS: [&str; 5] = ["args", "env", "stdin", "stdin_file", "stdout"];

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
}

/// What a command task reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stdin {
    /// Literal text (may hold `{{ … }}` references, rendered before the run).
    Text(String),
    /// A host file: absolute, canonical, existing, under the bundle root or a data root.
    File(PathBuf),
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
            "unknown kind `{kind}`{}; the accepted value is `command` (run a `wasi:cli/command` \
             component with args, env and stdin); leave `kind` out for a sluice task component",
            names::suggestion(kind, KINDS)
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
    let stdin = match (table.get("stdin"), table.get("stdin_file")) {
        (Some(_), Some(_)) => {
            let second = later(table, "stdin", "stdin_file");
            return Err(second.key_error(format!(
                "task `{task}` has both `stdin` and `stdin_file`; give one: literal text or a file"
            )));
        }
        (Some(node), None) => {
            let text = node.str()?;
            templates.push(Templated::new("stdin".into(), text, node, false));
            Some(Stdin::Text(text.to_string()))
        }
        (None, Some(node)) => {
            let path = roots.host_path(node, node.str()?, "stdin_file", Want::File)?;
            Some(Stdin::File(path))
        }
        (None, None) => None,
    };
    let stdout_is_output = match table.get("stdout") {
        Some(node) => stdout(node)?,
        None => false,
    };
    Ok(TaskKind::Command(CommandSpec { component, args, env, stdin, stdout_is_output }))
}

/// Of two keys that are both in `table`, the entry written later.
fn later<'t, 'a>(table: &'t Table<'a>, a: &str, b: &str) -> &'t Entry<'a> {
    let entries = table.entries();
    let position = |key: &str| entries.iter().position(|entry| entry.key == key);
    let index = position(a).max(position(b)).unwrap_or(0);
    &entries[index]
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

fn stdout(node: &Node<'_>) -> Result<bool, SpecError> {
    match node.str()? {
        "log" => Ok(false),
        "output" => Ok(true),
        other => Err(node.error(format!(
            "unknown stdout `{other}`{}; use `log` (the default: stdout is the task's log) or \
             `output` (stdout is also the task's output and must be JSON)",
            names::suggestion(other, ["log", "output"])
        ))),
    }
}
