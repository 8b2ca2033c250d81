//! Data-quality expectations, in Great Expectations' vocabulary, as a test assertion reads
//! them: `{ task = "T", dataset = "rows.csv", expect = "expect_column_values_to_be_between",
//! column = "amount", min_value = 0, max_value = 1000, mostly = 0.95 }`.
//!
//! A task's production expectations read the same, without `task` and with what a failure
//! does: `expectations = [{ dataset = "rows.csv", expect = "…", column = "id",
//! on_failure = "warn" | "fail" | "block", blocks = ["publish"] }]`.
//!
//! Owns the names, their arguments and their validation (file:line errors); evaluating
//! them over a dataset is `quality::expect`'s. It must never read a dataset.

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::{Node, Table};

/// Every key an expectation assertion may hold.
pub(crate) const EXPECT_KEYS: &[&str] =
    &["task", "dataset", "expect", "column", "mostly", "min_value", "max_value", "column_list", "regex", "value_set"];

/// Every key a task's production expectation may hold.
pub(crate) const TASK_EXPECT_KEYS: &[&str] = &[
    "dataset",
    "expect",
    "column",
    "mostly",
    "min_value",
    "max_value",
    "column_list",
    "regex",
    "value_set",
    "on_failure",
    "blocks",
];

const NAMES: &[&str] = &[
    "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_ordered_list",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_in_set",
    "expect_column_mean_to_be_between",
];

/// One expectation on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The expectation's name, as written (`expect_column_values_to_not_be_null`).
    pub name: String,
    /// The file under the task's `/out` (`rows.csv`, `out/part.parquet`).
    pub dataset: String,
    pub column: Option<String>,
    /// The share of a column's values that must pass (GE's `mostly`); `None`: all.
    pub mostly: Option<f64>,
    pub kind: ExpectKind,
}

/// What is expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExpectKind {
    RowCountBetween { min: Option<f64>, max: Option<f64> },
    ColumnsMatchOrderedList { columns: Vec<String> },
    NotNull,
    Unique,
    Between { min: Option<f64>, max: Option<f64> },
    MatchRegex { regex: String },
    InSet { values: Vec<String> },
    MeanBetween { min: Option<f64>, max: Option<f64> },
}

/// What a failed production expectation does (Delta Live Tables' `expect` and
/// `expect_or_fail`, and blocking only some downstream tasks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Recorded with the attempt; the task succeeds.
    Warn,
    /// The task ends `quality_failed` (a permanent error naming the expectation; no retry).
    Fail,
    /// The task succeeds; the downstream tasks in `blocks` are skipped as upstream_failed.
    Block,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Warn => "warn",
            OnFailure::Fail => "fail",
            OnFailure::Block => "block",
        }
    }
}

/// An expectation checked after every successful attempt of a task, on its `/out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskExpectation {
    pub expectation: Expectation,
    pub on_failure: OnFailure,
    /// With [`OnFailure::Block`]: the direct downstream tasks a failure skips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
}

/// A task's `expectations = [...]`; `blocks` names are checked against the job by the caller
/// ([`check_blocks`]).
pub(crate) fn task_expectations(node: &Node<'_>) -> Result<Vec<TaskExpectation>, SpecError> {
    let mut all = Vec::new();
    for item in node.array()? {
        let table = item.table()?;
        table.deny_unknown(TASK_EXPECT_KEYS)?;
        let expectation = read(&table, &item)?;
        let blocks: Vec<String> = match table.get("blocks") {
            Some(b) => b.strings()?.into_iter().map(|(_, s)| s.to_string()).collect(),
            None => Vec::new(),
        };
        let on_failure = match table.get("on_failure") {
            None if !blocks.is_empty() => OnFailure::Block,
            None => OnFailure::Fail,
            Some(n) => match n.str()? {
                "warn" => OnFailure::Warn,
                "fail" => OnFailure::Fail,
                "block" => OnFailure::Block,
                other => {
                    return Err(
                        n.error(format!("unknown on_failure `{other}`; expected \"warn\", \"fail\" or \"block\""))
                    );
                }
            },
        };
        match (on_failure, blocks.is_empty(), table.get("blocks")) {
            (OnFailure::Block, true, _) => {
                return Err(item.error(
                    "`on_failure = \"block\"` needs `blocks = [\"TASK\", …]`: the downstream tasks a failure skips",
                ));
            }
            (OnFailure::Warn | OnFailure::Fail, false, Some(b)) => {
                return Err(b.error("`blocks` goes with `on_failure = \"block\"` (or without `on_failure`)"));
            }
            _ => {}
        }
        all.push(TaskExpectation { expectation, on_failure, blocks });
    }
    Ok(all)
}

/// Reads an expectation assertion (its `task` is read by the caller).
/// `min_value`/`max_value`: a number, or a string holding one, so a bound can be a
/// variable (`min_value = "${var.min_rows}"`, each target its own).
fn bound(node: &Node<'_>) -> Result<f64, SpecError> {
    if let toml::de::DeValue::String(_) = node.value {
        let text = node.str()?;
        return text.trim().parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| {
            node.error(format!("expected a number (or a string holding one, e.g. a variable), not `{text}`"))
        });
    }
    node.number()
}

pub(crate) fn expectation(table: &Table<'_>, node: &Node<'_>) -> Result<Expectation, SpecError> {
    table.deny_unknown(EXPECT_KEYS)?;
    read(table, node)
}

/// The expectation in `table` (its keys already checked).
fn read(table: &Table<'_>, node: &Node<'_>) -> Result<Expectation, SpecError> {
    let name_node = table.require("expect")?;
    let name = name_node.str()?;
    if !NAMES.contains(&name) {
        let close = super::names::closest(name, NAMES.iter().copied());
        let hint = close.map_or_else(
            || format!("; expected one of {}", super::names::list(NAMES)),
            |c| format!(" (did you mean `{c}`?)"),
        );
        return Err(name_node.error(format!("unknown expectation `{name}`{hint}")));
    }
    let dataset_node = table.require("dataset")?;
    let dataset = dataset_node.str()?.to_string();
    let path = std::path::Path::new(&dataset);
    if dataset.is_empty() || path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(dataset_node.error("a dataset is a path relative to the task's /out, without `..`"));
    }
    let number = |key: &str| table.get(key).map(bound).transpose();
    let (min, max) = (number("min_value")?, number("max_value")?);
    let needs = |key: &str| table.require(key);
    let kind = match name {
        "expect_table_row_count_to_be_between" => ExpectKind::RowCountBetween { min, max },
        "expect_table_columns_to_match_ordered_list" => ExpectKind::ColumnsMatchOrderedList {
            columns: needs("column_list")?.strings()?.into_iter().map(|(_, s)| s.to_string()).collect(),
        },
        "expect_column_values_to_not_be_null" => ExpectKind::NotNull,
        "expect_column_values_to_be_unique" => ExpectKind::Unique,
        "expect_column_values_to_be_between" => ExpectKind::Between { min, max },
        "expect_column_values_to_match_regex" => ExpectKind::MatchRegex { regex: needs("regex")?.str()?.to_string() },
        "expect_column_values_to_be_in_set" => ExpectKind::InSet {
            values: needs("value_set")?.array()?.iter().map(Node::param_string).collect::<Result<_, _>>()?,
        },
        _ => ExpectKind::MeanBetween { min, max },
    };
    let column = match (name.starts_with("expect_column_"), table.get("column")) {
        (true, Some(c)) => Some(c.str()?.to_string()),
        (true, None) => return Err(needs("column").err().unwrap_or_else(|| node.error("missing `column`"))),
        (false, Some(c)) => return Err(c.error(format!("`{name}` takes no column"))),
        (false, None) => None,
    };
    let mostly = match table.get("mostly") {
        Some(m) => {
            let share = m.number()?;
            if !(0.0..=1.0).contains(&share) {
                return Err(m.error("`mostly` is a share from 0 to 1"));
            }
            Some(share)
        }
        None => None,
    };
    Ok(Expectation { name: name.to_string(), dataset, column, mostly, kind })
}

/// Every `blocks` entry names a task of the job that depends directly on the expectation's
/// task; `keys[i]` is where task `i` is written, for the error.
pub(crate) fn check_blocks(tasks: &[super::TaskSpec], keys: &[&Node<'_>]) -> Result<(), SpecError> {
    for (task, key) in tasks.iter().zip(keys) {
        for e in &task.expectations {
            for blocked in &e.blocks {
                let downstream = tasks.iter().find(|t| &t.key == blocked);
                if !downstream.is_some_and(|d| d.depends_on.iter().any(|dep| dep.task == task.key)) {
                    let what = if downstream.is_some() { "does not depend on it" } else { "is not a task of the job" };
                    return Err(key.error(format!(
                        "task `{}`: expectation `{}` blocks `{blocked}`, which {what}; `blocks` names direct downstream tasks",
                        task.key, e.expectation.name
                    )));
                }
            }
        }
    }
    Ok(())
}
