//! Data-quality expectations evaluated over a dataset file (CSV, JSON Lines or Parquet, read
//! row by row by [`super::dataset`], so memory stays bounded by one row — plus, for
//! `_to_be_unique`, at most [`UNIQUE_MEMORY_CAP`] of value digests, the rest spilled to
//! disk by [`super::unique`]). Every expectation on one file is evaluated in one pass; a
//! failed `_to_be_unique` reads the file once more for the values of the rows it shows.
//!
//! A failure reports the expectation, the column, how many values were unexpected out of
//! how many, and up to [`MAX_SHOWN_ROWS`] offending rows. A file it cannot read, or a
//! column the file does not have, is an error (bad input), not a failed expectation.
//! It must never write anything.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::dataset::Dataset;
pub use super::unique::UNIQUE_MEMORY_CAP;
use super::unique::{Duplicates, Unique};
use crate::spec::expect::{ExpectKind, Expectation};

/// Offending rows a failure shows: enough to see the pattern, few enough to read.
pub const MAX_SHOWN_ROWS: usize = 10;

/// How an expectation came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub success: bool,
    /// What was observed, in words (`3 of 8 values unexpected`, `mean 4.2`).
    pub observed: String,
    /// `row N: value` of up to [`MAX_SHOWN_ROWS`] offending rows (0-based data rows).
    pub rows: Vec<String>,
}

/// Where an expectation's column is, and what it has counted so far.
struct Tally<'e> {
    expectation: &'e Expectation,
    column: Option<usize>,
    /// Values looked at (rows, for not-null), and those that did not pass.
    checked: u64,
    unexpected: u64,
    rows: Vec<String>,
    sum: f64,
    /// Digests of the values seen (`_to_be_unique`).
    seen: Option<Unique>,
    regex: Option<regex::Regex>,
    set: HashSet<String>,
}

/// Evaluates `expectations` over the dataset at `path`, in one pass.
pub fn evaluate(path: &Path, expectations: &[&Expectation]) -> Result<Vec<Outcome>, String> {
    evaluate_capped(path, expectations, UNIQUE_MEMORY_CAP)
}

/// [`evaluate`] with `_to_be_unique` holding at most `unique_cap` bytes in memory.
pub fn evaluate_capped(path: &Path, expectations: &[&Expectation], unique_cap: usize) -> Result<Vec<Outcome>, String> {
    let mut data = Dataset::open(path)?;
    let mut tallies = Vec::new();
    for &e in expectations {
        tallies.push(tally(e, &data.columns, unique_cap)?);
    }
    let used: Vec<usize> = tallies.iter().filter_map(|t| t.column).collect();
    data.select(&used).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = 0u64;
    while let Some(row) = data.next_row().map_err(|e| format!("{}: data row {rows}: {e}", path.display()))? {
        for tally in &mut tallies {
            tally.row(&row, rows);
        }
        rows += 1;
    }
    for tally in &mut tallies {
        if let (Some(seen), Some(column)) = (tally.seen.take(), tally.column) {
            let found = seen.finish()?;
            tally.duplicates(path, column, found)?;
        }
    }
    Ok(tallies.iter().map(|t| t.outcome(rows, &data.columns)).collect())
}

/// The values of `column` on `rows` (ascending), read from the file again.
fn values_at(path: &Path, column: usize, rows: &[u64]) -> Result<BTreeMap<u64, String>, String> {
    let mut data = Dataset::open(path)?;
    data.select(&[column]).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    let mut at = 0u64;
    while let Some(&last) = rows.last()
        && at <= last
    {
        let Some(row) = data.next_row().map_err(|e| format!("{}: data row {at}: {e}", path.display()))? else { break };
        if rows.binary_search(&at).is_ok() {
            let value = row.get(column).and_then(|v| v.clone()).unwrap_or_default();
            out.insert(at, format!("{value:?}"));
        }
        at += 1;
    }
    Ok(out)
}

fn tally<'e>(e: &'e Expectation, columns: &[String], unique_cap: usize) -> Result<Tally<'e>, String> {
    let column = match &e.column {
        Some(c) => Some(columns.iter().position(|n| n == c).ok_or_else(|| {
            format!("{}: `{}`: no column `{c}`; the dataset has {}", e.dataset, e.name, columns.join(", "))
        })?),
        None => None,
    };
    let regex = match &e.kind {
        ExpectKind::MatchRegex { regex } => {
            Some(regex::Regex::new(regex).map_err(|why| format!("`{}`: bad regex: {why}", e.name))?)
        }
        _ => None,
    };
    let set = match &e.kind {
        ExpectKind::InSet { values } => values.iter().cloned().collect(),
        _ => HashSet::new(),
    };
    Ok(Tally {
        expectation: e,
        column,
        checked: 0,
        unexpected: 0,
        rows: Vec::new(),
        sum: 0.0,
        seen: matches!(e.kind, ExpectKind::Unique).then(|| Unique::new(unique_cap)),
        regex,
        set,
    })
}

impl Tally<'_> {
    fn row(&mut self, row: &[Option<String>], at: u64) {
        let Some(index) = self.column else { return };
        let value = row.get(index).and_then(|v| v.as_deref());
        let expectation = self.expectation;
        let Some(value) = value else {
            if matches!(expectation.kind, ExpectKind::NotNull) {
                self.checked += 1;
                self.unexpected(at, "null".into());
            }
            return;
        };
        self.checked += 1;
        let passes = match &expectation.kind {
            ExpectKind::NotNull => true,
            ExpectKind::Between { min, max } => {
                value.trim().parse::<f64>().is_ok_and(|v| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m))
            }
            ExpectKind::MeanBetween { .. } => match value.trim().parse::<f64>() {
                Ok(v) => {
                    self.sum += v;
                    true
                }
                Err(_) => false,
            },
            ExpectKind::Unique => {
                if let Some(seen) = &mut self.seen {
                    seen.push(value, at);
                }
                true
            }
            ExpectKind::MatchRegex { .. } => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            ExpectKind::InSet { .. } => self.set.contains(value),
            ExpectKind::RowCountBetween { .. } | ExpectKind::ColumnsMatchOrderedList { .. } => true,
        };
        if !passes {
            self.unexpected(at, format!("{value:?}"));
        }
    }

    /// Counts the duplicates `_to_be_unique` found and shows their rows with their values.
    fn duplicates(&mut self, path: &Path, column: usize, found: Duplicates) -> Result<(), String> {
        let values = if found.rows.is_empty() { BTreeMap::new() } else { values_at(path, column, &found.rows)? };
        for row in &found.rows {
            let value = values.get(row).cloned().unwrap_or_else(|| "?".into());
            self.rows.push(format!("row {row}: {value}"));
        }
        self.unexpected += found.count;
        Ok(())
    }

    fn unexpected(&mut self, row: u64, value: String) {
        self.unexpected += 1;
        if self.rows.len() < MAX_SHOWN_ROWS {
            self.rows.push(format!("row {row}: {value}"));
        }
    }

    fn outcome(&self, rows: u64, columns: &[String]) -> Outcome {
        let within =
            |v: f64, min: &Option<f64>, max: &Option<f64>| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        let (success, observed) = match &self.expectation.kind {
            ExpectKind::RowCountBetween { min, max } => (within(rows as f64, min, max), format!("{rows} rows")),
            ExpectKind::ColumnsMatchOrderedList { columns: expected } => {
                (expected == columns, format!("columns [{}]", columns.join(", ")))
            }
            ExpectKind::MeanBetween { min, max } => {
                let good = self.checked - self.unexpected;
                let mean = if good == 0 { f64::NAN } else { self.sum / good as f64 };
                let observed = format!("mean {mean} of {good} values, {} not numbers", self.unexpected);
                (good > 0 && self.unexpected == 0 && within(mean, min, max), observed)
            }
            _ => {
                let share = if self.checked == 0 { 1.0 } else { 1.0 - self.unexpected as f64 / self.checked as f64 };
                let needed = self.expectation.mostly.unwrap_or(1.0);
                (share >= needed, format!("{} of {} values unexpected", self.unexpected, self.checked))
            }
        };
        Outcome { success, observed, rows: self.rows.clone() }
    }
}
