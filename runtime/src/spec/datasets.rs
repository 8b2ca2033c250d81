//! Named datasets in the bundle: a task's `datasets = { "sales.orders" = "orders.parquet" }`
//! (what of its `/out` it publishes under which name) and the table-update trigger that
//! watches them, `trigger = { table_update = { tables, condition,
//! min_time_between_triggers, wait_after_last_change } }`.
//!
//! Owns reading and checking those keys: a dataset name is dot-separated name parts
//! (`sales.orders`), a path is relative and stays inside `/out`, a trigger names only
//! datasets some job of the same bundle publishes (checked once every job is read, at the
//! name's `file:line:col`). What a published dataset's version is and when a trigger fires
//! are the scheduler's and the `triggers` module's; it must never touch the store.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::names;
use super::read::{Node, Table};
use super::triggers::TriggerKind;
use super::{JobSpec, TaskKind};

pub(crate) const TABLE_UPDATE_KEYS: &[&str] =
    &["tables", "condition", "min_time_between_triggers", "wait_after_last_change"];

/// The longest dataset name: a few name parts (`catalog.schema.table`).
pub const MAX_DATASET_NAME_LEN: usize = 200;
/// The most datasets one table-update trigger watches (each is looked up at every step of
/// the trigger engine).
pub const MAX_TRIGGER_TABLES: usize = 100;

/// `trigger = { table_update = { … } }`: a run when watched datasets get new content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableUpdate {
    /// Dataset names, as listed (no duplicates).
    pub tables: Vec<String>,
    pub condition: TableCondition,
    /// At least this long between two runs the trigger starts (default: no minimum).
    pub min_time_between_triggers: Duration,
    /// A run starts only once no watched dataset got a new version for this long
    /// (default: at once).
    pub wait_after_last_change: Duration,
}

/// Which of the watched datasets must have changed (Databricks' names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableCondition {
    /// Any one of them has a version the trigger has not consumed.
    #[default]
    AnyUpdated,
    /// Every one of them has a version newer than the one the trigger's last run consumed.
    AllUpdated,
}

/// A dataset name: name parts (letters, digits, `_`, `-`) joined by `.`.
pub fn check_dataset_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_DATASET_NAME_LEN {
        return Err(format!("dataset name is {} characters long; at most {MAX_DATASET_NAME_LEN}", name.len()));
    }
    for part in name.split('.') {
        names::check_name(part).map_err(|why| {
            format!(
                "bad dataset name `{name}`: {why} (a dataset name is name parts joined by `.`, e.g. `sales.orders`)"
            )
        })?;
    }
    Ok(())
}

/// A task's `datasets = { NAME = "path/in/out" }` (component and command tasks only).
pub(crate) fn task_datasets(
    table: &Table<'_>,
    key: &str,
    kind: &TaskKind,
) -> Result<BTreeMap<String, String>, SpecError> {
    let Some(node) = table.get("datasets") else { return Ok(BTreeMap::new()) };
    if !matches!(kind, TaskKind::Component { .. } | TaskKind::Command(_)) {
        return Err(node.error(format!(
            "task `{key}`: `datasets` publish files a component or command task writes to /out, not a {} task",
            kind.name()
        )));
    }
    let mut out = BTreeMap::new();
    for entry in node.table()?.entries() {
        check_dataset_name(entry.key).map_err(|why| entry.key_error(format!("task `{key}`: {why}")))?;
        let path = entry.node.str()?;
        check_out_relative(path)
            .map_err(|why| entry.node.error(format!("task `{key}`, dataset `{}`: {why}", entry.key)))?;
        out.insert(entry.key.to_string(), path.trim_end_matches('/').to_string());
    }
    Ok(out)
}

/// A path relative to `/out` that stays inside it (a file or a directory; `.` is all of it).
fn check_out_relative(path: &str) -> Result<(), String> {
    if path == "." {
        return Ok(());
    }
    let trimmed = path.trim_end_matches('/');
    if path.starts_with('/') {
        return Err(format!("`{path}` is absolute; give a path relative to the task's /out, e.g. `orders.parquet`"));
    }
    let bad = trimmed.is_empty()
        || trimmed.split('/').any(|part| part.is_empty() || part == "." || part == ".." || part.contains('\\'));
    if bad {
        return Err(format!(
            "`{path}` leaves the task's /out or is empty; use a path such as `orders.parquet` or `tables/orders` (no `.` or `..` parts)"
        ));
    }
    Ok(())
}

/// `table_update = { tables, condition, min_time_between_triggers, wait_after_last_change }`.
pub(crate) fn table_update(node: &Node<'_>) -> Result<TriggerKind, SpecError> {
    let t = node.table()?;
    t.deny_unknown(TABLE_UPDATE_KEYS)?;
    let list = t.require("tables")?;
    let mut tables: Vec<String> = Vec::new();
    for (item, name) in list.strings()? {
        check_dataset_name(name).map_err(|why| item.error(why))?;
        if tables.iter().any(|t| t == name) {
            return Err(item.error(format!("dataset `{name}` is listed twice")));
        }
        tables.push(name.to_string());
    }
    if tables.is_empty() || tables.len() > MAX_TRIGGER_TABLES {
        return Err(list.error(format!("tables lists 1 to {MAX_TRIGGER_TABLES} dataset names")));
    }
    let condition = match t.get("condition") {
        None => TableCondition::AnyUpdated,
        Some(n) => match n.str()? {
            "ANY_UPDATED" => TableCondition::AnyUpdated,
            "ALL_UPDATED" => TableCondition::AllUpdated,
            other => return Err(n.error(format!("condition is \"ANY_UPDATED\" or \"ALL_UPDATED\", found \"{other}\""))),
        },
    };
    let duration = |key| t.get(key).map(Node::duration).transpose().map(Option::unwrap_or_default);
    Ok(TriggerKind::TableUpdate(TableUpdate {
        tables,
        condition,
        min_time_between_triggers: duration("min_time_between_triggers")?,
        wait_after_last_change: duration("wait_after_last_change")?,
    }))
}

/// Every dataset a table-update trigger of `jobs` names is published by a task of some job
/// of the bundle; else an error at the name, naming the job and the dataset.
pub(crate) fn check_triggers(jobs_table: &Table<'_>, jobs: &BTreeMap<String, JobSpec>) -> Result<(), SpecError> {
    let published: BTreeMap<&str, &str> = jobs
        .values()
        .flat_map(|j| j.tasks.iter().flat_map(move |t| t.datasets.keys().map(move |d| (d.as_str(), j.name.as_str()))))
        .collect();
    for entry in jobs_table.entries() {
        let Some(TriggerKind::TableUpdate(spec)) =
            jobs.get(entry.key).and_then(|j| j.trigger.as_ref()).map(|t| &t.kind)
        else {
            continue;
        };
        for name in &spec.tables {
            if published.contains_key(name.as_str()) {
                continue;
            }
            let job = entry.node.table()?;
            let at = job
                .get("trigger")
                .and_then(|t| t.table().ok()?.get("table_update")?.table().ok()?.get("tables").cloned());
            let item = at.and_then(|n| n.array().ok()?.into_iter().find(|i| i.str().ok() == Some(name.as_str())));
            let hint = names::suggestion(name, published.keys().copied());
            let known = if published.is_empty() {
                "no task of this bundle declares `datasets`".to_string()
            } else {
                format!("published: {}", names::list(published.keys()))
            };
            let message = format!(
                "job `{}`: its table_update trigger watches dataset `{name}`, which no job of this bundle publishes{hint}; \
                 {known} (a task publishes one with `datasets = {{ \"{name}\" = \"PATH\" }}`)",
                entry.key
            );
            return Err(item.unwrap_or_else(|| entry.node.clone()).error(message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_dotted_name_parts() {
        assert!(check_dataset_name("sales.orders").is_ok());
        assert!(check_dataset_name("orders").is_ok());
        assert!(check_dataset_name("sales..orders").is_err());
        assert!(check_dataset_name("sales/orders").unwrap_err().contains("sales/orders"));
        assert!(check_dataset_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn dataset_paths_stay_inside_out() {
        assert!(check_out_relative("orders.parquet").is_ok());
        assert!(check_out_relative("tables/orders/").is_ok());
        assert!(check_out_relative(".").is_ok());
        assert!(check_out_relative("/out/orders.parquet").unwrap_err().contains("absolute"));
        assert!(check_out_relative("../secrets").unwrap_err().contains("leaves"));
        assert!(check_out_relative("a/../../b").is_err());
        assert!(check_out_relative("").is_err());
    }
}
