//! The model registry in the bundle: a task's `register_model = { name, file, metrics }`
//! (the file of its `/out` a successful attempt registers as the next version of model
//! `name`, with the JSON object in `metrics`) and `models = [{ name, guest }]` (the version
//! of each model staged for the run's target, offered read-only at `guest`).
//!
//! Owns reading and checking those keys: model names are names (`churn`), files stay inside
//! `/out`, guest paths are well formed, not reserved and not overlapping the task's mounts
//! or each other (errors at the key's `file:line:col`). What a version is, and which one a
//! target loads, are the scheduler's and the store's; it must never touch the store.

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::names;
use super::read::Table;
use super::{Mount, TaskKind};

pub(crate) const REGISTER_KEYS: &[&str] = &["name", "file", "metrics"];
pub(crate) const USE_KEYS: &[&str] = &["name", "guest"];

/// `register_model = { name = "churn", file = "model.json", metrics = "metrics.json" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterModel {
    pub name: String,
    /// The artifact: a file of `/out` (relative).
    pub file: String,
    /// A file of `/out` holding a JSON object of metrics (relative), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// One entry of `models = [{ name = "churn", guest = "/model" }]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUse {
    pub name: String,
    /// The directory the staged version's file appears in, read-only.
    pub guest: String,
}

fn component_or_command(table: &Table<'_>, key: &str, kind: &TaskKind, what: &str) -> Result<(), SpecError> {
    match (table.get(what), kind) {
        (Some(node), k) if !matches!(k, TaskKind::Component { .. } | TaskKind::Command(_)) => Err(node.error(format!(
            "task `{key}`: `{what}` applies to component and command tasks, not to a {} task",
            kind.name()
        ))),
        _ => Ok(()),
    }
}

/// A task's `register_model`, if any.
pub(crate) fn register_model(
    table: &Table<'_>,
    key: &str,
    kind: &TaskKind,
) -> Result<Option<RegisterModel>, SpecError> {
    component_or_command(table, key, kind, "register_model")?;
    let Some(node) = table.get("register_model") else { return Ok(None) };
    let t = node.table()?;
    t.deny_unknown(REGISTER_KEYS)?;
    let name_node = t.require("name")?;
    let name = name_node.str()?;
    names::check_name(name).map_err(|why| name_node.error(format!("task `{key}`: model name: {why}")))?;
    let file_node = t.require("file")?;
    let file = out_file(file_node.str()?).map_err(|why| file_node.error(format!("task `{key}`: {why}")))?;
    let metrics = match t.get("metrics") {
        Some(n) => Some(out_file(n.str()?).map_err(|why| n.error(format!("task `{key}`: {why}")))?),
        None => None,
    };
    Ok(Some(RegisterModel { name: name.into(), file, metrics }))
}

/// A task's `models`, checked against its `mounts`.
pub(crate) fn model_uses(
    table: &Table<'_>,
    key: &str,
    kind: &TaskKind,
    mounts: &[Mount],
) -> Result<Vec<ModelUse>, SpecError> {
    component_or_command(table, key, kind, "models")?;
    let Some(node) = table.get("models") else { return Ok(Vec::new()) };
    let mut out: Vec<ModelUse> = Vec::new();
    for item in node.array()? {
        let t = item.table()?;
        t.deny_unknown(USE_KEYS)?;
        let name_node = t.require("name")?;
        let name = name_node.str()?;
        names::check_name(name).map_err(|why| name_node.error(format!("task `{key}`: model name: {why}")))?;
        if out.iter().any(|m| m.name == name) {
            return Err(name_node.error(format!("task `{key}`: model `{name}` is listed twice in `models`")));
        }
        let guest_node = t.require("guest")?;
        let guest = guest_node.str()?;
        super::mounts::check_guest(guest).map_err(|why| guest_node.error(format!("task `{key}`: {why}")))?;
        let taken = mounts.iter().map(|m| m.guest.as_str()).chain(out.iter().map(|m| m.guest.as_str()));
        for other in taken.collect::<Vec<_>>() {
            if other == guest || super::mounts::nested(other, guest) || super::mounts::nested(guest, other) {
                return Err(guest_node.error(format!(
                    "task `{key}`: model guest path `{guest}` overlaps `{other}` (a mount or another model); \
                     give each its own directory, e.g. `/models/{name}`"
                )));
            }
        }
        out.push(ModelUse { name: name.into(), guest: guest.into() });
    }
    Ok(out)
}

/// A file name relative to `/out`, inside it.
fn out_file(path: &str) -> Result<String, String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.split('/').any(|p| p.is_empty() || p == "." || p == ".." || p.contains('\\'));
    if bad {
        return Err(format!(
            "`{path}` is not a file inside the task's /out; give a relative path such as `model.json`"
        ));
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_stay_inside_out() {
        assert_eq!(out_file("model.json").unwrap(), "model.json");
        assert!(out_file("m/model.json").is_ok());
        for bad in ["", "/out/model.json", "../x", "a//b", "dir/", "."] {
            assert!(out_file(bad).unwrap_err().contains("/out"), "{bad}");
        }
    }
}
