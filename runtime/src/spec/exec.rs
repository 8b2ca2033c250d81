//! The execution spec: what a component or command task runs with — params, limits, the
//! grants (secrets and their `inject`ions, mounts, `allow_hosts`) and `cache` — read by one
//! reader for a plain task and a `for_each` template alike, so the two cannot drift.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Limits;
use super::build::check_key_name;
use super::error::SpecError;
use super::hosts::{HostRule, allow_hosts};
use super::mounts::{Mount, Roots, mounts};
use super::names;
use super::read::{Node, Table};
use super::refs::Templated;

/// The keys [`read`] takes from a task table or a `for_each` template.
pub(crate) const EXEC_KEYS: [&str; 7] = ["params", "limits", "secrets", "mounts", "allow_hosts", "cache", "worker"];
/// The keys of `worker = { … }`.
pub(crate) const WORKER_KEYS: &[&str] = &["labels"];
/// Most labels a task may require: a worker subscribes to every subset of its own labels
/// (`scaleout::routes`), so the count must stay small.
pub const MAX_WORKER_LABELS: usize = 8;
pub(crate) const LIMIT_KEYS: &[&str] = &["memory", "max_log", "max_output", "fuel", "max_out"];
pub(crate) const SECRET_GRANT_KEYS: &[&str] = &["name", "inject"];

/// What a component or command task executes with, besides its component (and a command's
/// args, env and stdin): the same for a plain task and each iteration of a `for_each`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Parameters as strings; values may hold `{{ … }}` references (see
    /// [`template`](super::template)). Component tasks only (command tasks use args, env
    /// and stdin).
    pub params: BTreeMap<String, String>,
    pub limits: Limits,
    /// Secret names (`scope/key`) the task may read.
    pub secrets: Vec<String>,
    /// Secrets the host injects into outbound HTTP instead of handing them over:
    /// name → lowercase header name. The guest's reveal returns a placeholder.
    #[serde(default)]
    pub inject: BTreeMap<String, String>,
    /// Host directories the task sees.
    pub mounts: Vec<Mount>,
    /// Where the task may send HTTP requests; empty = no network.
    pub allow_hosts: Vec<HostRule>,
    /// `cache = false`: never reuse an earlier result, always run. Tasks with network
    /// access never reuse anyway.
    pub cache: bool,
    /// `worker = { labels = { k = "v" } }`: with scale-out workers, only a worker holding
    /// every one of these labels runs it (empty: any worker).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker_labels: BTreeMap<String, String>,
}

impl Default for ExecSpec {
    fn default() -> Self {
        ExecSpec {
            params: BTreeMap::new(),
            limits: Limits::default(),
            secrets: Vec::new(),
            inject: BTreeMap::new(),
            mounts: Vec::new(),
            allow_hosts: Vec::new(),
            cache: true,
            worker_labels: BTreeMap::new(),
        }
    }
}

/// Reads the [`EXEC_KEYS`] of `table`. Params are labelled "`params_label` `name`" in
/// errors; `input`: whether `{{ input }}` may be used in them (a `for_each` template).
pub(crate) fn read<'a>(
    table: &Table<'a>,
    roots: &Roots,
    params_label: &str,
    input: bool,
    templates: &mut Vec<Templated<'a>>,
) -> Result<ExecSpec, SpecError> {
    let (secrets, inject) = table.get("secrets").map(secrets).transpose()?.unwrap_or_default();
    if let (false, Some(node)) = (inject.is_empty(), table.get("secrets"))
        && table.get("allow_hosts").is_none()
    {
        return Err(node
            .error("a secret with `inject` needs `allow_hosts`: it is only ever placed into requests to those hosts"));
    }
    Ok(ExecSpec {
        params: match table.get("params") {
            Some(node) => task_params(node, params_label, input, templates)?,
            None => BTreeMap::new(),
        },
        limits: table.get("limits").map(limits).transpose()?.unwrap_or_default(),
        secrets,
        inject,
        mounts: match table.get("mounts") {
            Some(node) => mounts(node, roots)?,
            None => Vec::new(),
        },
        allow_hosts: table.get("allow_hosts").map(allow_hosts).transpose()?.unwrap_or_default(),
        cache: table.get("cache").map(Node::bool).transpose()?.unwrap_or(true),
        worker_labels: table.get("worker").map(worker_labels).transpose()?.unwrap_or_default(),
    })
}

/// `worker = { labels = { pool = "gpu" } }`: label names and values are short words
/// (letters, digits, `_`, `-`), at most [`MAX_WORKER_LABELS`] of them.
fn worker_labels(node: &Node<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let table = node.table()?;
    table.deny_unknown(WORKER_KEYS)?;
    let mut labels = BTreeMap::new();
    let Some(node) = table.get("labels") else { return Ok(labels) };
    let entries = node.table()?;
    for entry in entries.entries() {
        let value = entry.node.str()?;
        for word in [entry.key, value] {
            if !is_label_word(word) {
                return Err(entry.node.error(format!(
                    "worker label `{}` = `{value}`: names and values are 1 to 64 letters, digits, `_` or `-`",
                    entry.key
                )));
            }
        }
        labels.insert(entry.key.to_string(), value.to_string());
    }
    if labels.len() > MAX_WORKER_LABELS {
        return Err(node.error(format!("at most {MAX_WORKER_LABELS} worker labels, not {}", labels.len())));
    }
    Ok(labels)
}

/// A worker label's name or value: 1 to 64 letters, digits, `_` or `-`.
pub fn is_label_word(word: &str) -> bool {
    (1..=64).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A params table: names follow the name rule; each value is added to `templates`
/// labelled "`label` `name`" (`input`: whether `{{ input }}` may be used).
fn task_params<'a>(
    node: &Node<'a>,
    label: &str,
    input: bool,
    templates: &mut Vec<Templated<'a>>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let table = node.table()?;
    let mut params = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "param")?;
        let value = entry.node.param_string()?;
        let what = format!("{label} `{}`", entry.key);
        templates.push(Templated::new(what, &value, &entry.node, input));
        params.insert(entry.key.to_string(), value);
    }
    Ok(params)
}

/// `limits = { memory = "64MiB", … }` of a task, a template, a job or a target.
pub(crate) fn limits(node: &Node<'_>) -> Result<Limits, SpecError> {
    let table = node.table()?;
    table.deny_unknown(LIMIT_KEYS)?;
    let size = |key: &str| table.get(key).map(Node::size).transpose();
    let limits = Limits {
        memory: size("memory")?,
        max_log: size("max_log")?,
        max_output: size("max_output")?,
        fuel: table.get("fuel").map(fuel).transpose()?,
        max_out: size("max_out")?,
    };
    if let (Some(0), Some(node)) = (limits.memory, table.get("memory")) {
        return Err(node.error("memory limit must be greater than zero"));
    }
    Ok(limits)
}

/// `secrets = ["scope/key", { name = "scope/key", inject = "header:Authorization" }]`:
/// the granted names, and for injected ones the outbound HTTP header the host fills in.
fn secrets(node: &Node<'_>) -> Result<(Vec<String>, BTreeMap<String, String>), SpecError> {
    let mut secrets: Vec<String> = Vec::new();
    let mut inject = BTreeMap::new();
    for item in node.array()? {
        let (name_node, name) = match item.table() {
            Ok(table) => {
                table.deny_unknown(SECRET_GRANT_KEYS)?;
                let name_node = table.require("name")?.clone();
                let name = name_node.str()?;
                if let Some(how) = table.get("inject") {
                    let header = how.str()?.strip_prefix("header:").filter(|h| is_header_name(h)).ok_or_else(|| {
                        how.error("inject must be `header:<Header-Name>` (e.g. `header:Authorization`): the host puts the value in that request header")
                    })?;
                    inject.insert(name.to_string(), header.to_ascii_lowercase());
                }
                (name_node, name)
            }
            Err(_) => (item.clone(), item.str()?),
        };
        names::check_secret_name(name).map_err(|why| name_node.error(why))?;
        if secrets.iter().any(|seen| seen == name) {
            return Err(name_node.error(format!("secret `{name}` is listed twice")));
        }
        secrets.push(name.to_string());
    }
    Ok((secrets, inject))
}

fn is_header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `fuel`: a plain whole number of wasmtime fuel units, at least 1.
fn fuel(node: &Node<'_>) -> Result<u64, SpecError> {
    let hint = "fuel is a whole number of wasmtime fuel units (roughly one per instruction), \
                at least 1, e.g. `fuel = 100_000_000`";
    if !matches!(node.value, toml::de::DeValue::Integer(_)) {
        return Err(node.error(format!("expected an integer; {hint}")));
    }
    u64::try_from(node.integer()?)
        .ok()
        .filter(|&fuel| fuel >= 1)
        .ok_or_else(|| node.error(format!("fuel must be at least 1; {hint}")))
}
