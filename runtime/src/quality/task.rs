//! A task's production expectations, checked on the `/out` directory of an attempt that
//! succeeded: one pass over each dataset for all of its expectations, one
//! [`ExpectationResult`] per expectation, in the order declared.
//!
//! An expectation that cannot be evaluated (no such file, no such column, a format it
//! cannot read) is a failed one saying why: a guard that cannot look must not pass.
//! Offending rows are a sample of at most [`MAX_SAMPLE_ROWS`], each cut at
//! [`MAX_SAMPLE_CHARS`]. They hold no secret a task revealed: the sandbox fails an attempt
//! whose `/out` holds one, in any encoding, before anything reads it.
//! It must never write, and never read outside the directory it is handed.

use std::collections::BTreeMap;
use std::path::Path;

use super::expect::{self, MAX_SHOWN_ROWS};
use crate::model::ExpectationResult;
use crate::spec::expect::{Expectation, TaskExpectation};

/// Offending rows recorded per expectation: enough to see the pattern, and the run's log
/// stays small however bad the data.
pub const MAX_SAMPLE_ROWS: usize = MAX_SHOWN_ROWS;

/// The longest offending row recorded (characters): one huge value must not bloat the log.
pub const MAX_SAMPLE_CHARS: usize = 200;

/// Checks `expectations` on the files in `out` (`None`: the attempt wrote nothing there).
pub fn check_out(out: Option<&Path>, expectations: &[TaskExpectation]) -> Vec<ExpectationResult> {
    let mut results: Vec<Option<ExpectationResult>> = vec![None; expectations.len()];
    let mut by_dataset: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in expectations.iter().enumerate() {
        by_dataset.entry(e.expectation.dataset.as_str()).or_default().push(i);
    }
    for (dataset, indices) in by_dataset {
        let file = out.map(|dir| dir.join(dataset)).filter(|f| f.is_file());
        let Some(file) = file else {
            for &i in &indices {
                results[i] = Some(failed(&expectations[i], format!("/out has no `{dataset}`")));
            }
            continue;
        };
        let list: Vec<&Expectation> = indices.iter().map(|&i| &expectations[i].expectation).collect();
        let outcomes = match expect::evaluate(&file, &list) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // one bad expectation (an unknown column) must not hide the others' results
            Err(_) => list.iter().map(|e| expect::evaluate(&file, &[e]).map(|mut o| o.remove(0))).collect::<Vec<_>>(),
        };
        let shown = |message: String| message.replace(&format!("{}/", out.unwrap_or(Path::new("")).display()), "");
        for (&i, outcome) in indices.iter().zip(outcomes) {
            let e = &expectations[i];
            results[i] = Some(match outcome {
                Ok(o) => ExpectationResult {
                    success: o.success,
                    observed: o.observed,
                    rows: o.rows.iter().take(MAX_SAMPLE_ROWS).map(|r| cut(r)).collect(),
                    ..failed(e, String::new())
                },
                Err(message) => failed(e, shown(message)),
            });
        }
    }
    results.into_iter().flatten().collect()
}

fn failed(e: &TaskExpectation, observed: String) -> ExpectationResult {
    ExpectationResult {
        expectation: e.expectation.name.clone(),
        dataset: e.expectation.dataset.clone(),
        column: e.expectation.column.clone(),
        on_failure: e.on_failure,
        success: false,
        observed,
        rows: Vec::new(),
        blocks: e.blocks.clone(),
    }
}

fn cut(row: &str) -> String {
    match row.char_indices().nth(MAX_SAMPLE_CHARS) {
        Some((at, _)) => format!("{}…", &row[..at]),
        None => row.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::expect::{ExpectKind, OnFailure};

    fn expectation(dataset: &str, column: &str, kind: ExpectKind, on_failure: OnFailure) -> TaskExpectation {
        TaskExpectation {
            expectation: Expectation {
                name: "expect_column_values_to_x".into(),
                dataset: dataset.into(),
                column: Some(column.into()),
                mostly: None,
                kind,
            },
            on_failure,
            blocks: Vec::new(),
        }
    }

    #[test]
    fn each_expectation_has_a_result_in_order_and_a_bad_one_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(1000);
        std::fs::write(dir.path().join("rows.csv"), format!("id,note\n1,a\n,{long}\n")).unwrap();
        let all = [
            expectation("rows.csv", "id", ExpectKind::NotNull, OnFailure::Fail),
            expectation("missing.csv", "id", ExpectKind::NotNull, OnFailure::Warn),
            expectation("rows.csv", "nope", ExpectKind::NotNull, OnFailure::Warn),
            expectation("rows.csv", "note", ExpectKind::MatchRegex { regex: "^a$".into() }, OnFailure::Warn),
        ];
        let results = check_out(Some(dir.path()), &all);
        assert_eq!(results.len(), 4);
        assert_eq!((results[0].success, results[0].observed.as_str()), (false, "1 of 2 values unexpected"));
        assert_eq!(results[0].rows, vec!["row 1: null"]);
        assert_eq!(results[1].observed, "/out has no `missing.csv`");
        assert!(
            results[2].observed.starts_with("rows.csv: `expect_column_values_to_x`: no column `nope`"),
            "{}",
            results[2].observed
        );
        assert!(!results[2].success);
        assert_eq!(results[3].rows[0].chars().count(), MAX_SAMPLE_CHARS + 1);
        assert_eq!(results[3].on_failure, OnFailure::Warn);
        assert_eq!(check_out(None, &all[..1])[0].observed, "/out has no `rows.csv`");
    }
}
