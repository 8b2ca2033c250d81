//! Data-quality expectations, in Great Expectations' vocabulary, as a test assertion reads
//! them: `{ task = "T", dataset = "rows.csv", expect = "expect_column_values_to_be_between",
//! column = "amount", min_value = 0, max_value = 1000, mostly = 0.95 }`.
//!
//! Owns the names, their arguments and their validation (file:line errors); evaluating
//! them over a dataset is `testing::expect`'s. It must never read a dataset.

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::{Node, Table};

/// Every key an expectation assertion may hold.
pub(crate) const EXPECT_KEYS: &[&str] =
    &["task", "dataset", "expect", "column", "mostly", "min_value", "max_value", "column_list", "regex", "value_set"];

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

/// Reads an expectation assertion (its `task` is read by the caller).
pub(crate) fn expectation(table: &Table<'_>, node: &Node<'_>) -> Result<Expectation, SpecError> {
    table.deny_unknown(EXPECT_KEYS)?;
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
    let number = |key: &str| table.get(key).map(Node::number).transpose();
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
