//! What a task's production expectations found after an attempt: one
//! [`ExpectationResult`] per expectation, recorded in the run's log
//! (`Event::QualityChecked`) and shown with the attempt.
//!
//! Data only: it must never read a dataset (see `quality::task`).

use serde::{Deserialize, Serialize};

use crate::spec::expect::OnFailure;

/// How one expectation came out on one attempt's `/out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// Great Expectations' name (`expect_column_values_to_not_be_null`).
    pub expectation: String,
    /// The file under `/out`.
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub on_failure: OnFailure,
    pub success: bool,
    /// What was observed (`3 of 8 values unexpected`), or why it could not be evaluated
    /// (no such file or column, a format it cannot read): that counts as a failure.
    pub observed: String,
    /// A few offending rows (`row N: value`), at most `quality::task::MAX_SAMPLE_ROWS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<String>,
    /// With `on_failure = "block"`: the downstream tasks a failure skips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
}

impl ExpectationResult {
    /// `expect_…` on `dataset` column `c`: what was observed.
    pub fn describe(&self) -> String {
        let column = self.column.as_deref().map(|c| format!(" column `{c}`")).unwrap_or_default();
        format!("{} on {}{column}: {}", self.expectation, self.dataset, self.observed)
    }
}
