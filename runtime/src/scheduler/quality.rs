//! Production expectations, coordinator side: record what an attempt's expectations found
//! (`QualityChecked`, counted in the metrics) and say whether the attempt fails for it.
//! The expectations are checked by the executor, on `/out`, before it is stored; which
//! downstream tasks a `block` expectation skips is the state's decision.
//!
//! It never reads a dataset and never decides a retry.

use crate::model::{Event, ExpectationResult};
use crate::spec::expect::OnFailure;

use super::SchedulerError;
use super::coordinator::Coordinator;

impl Coordinator {
    /// Record the expectations' results on `task`'s attempt; the error that fails it when an
    /// `on_failure = "fail"` expectation did not hold.
    pub(crate) fn quality_checked(
        &mut self,
        task: String,
        attempt: u32,
        results: Vec<ExpectationResult>,
    ) -> Result<Option<String>, SchedulerError> {
        for r in &results {
            self.rt.telemetry.expectation_checked(r.on_failure.as_str(), r.success);
        }
        let failing: Vec<&ExpectationResult> =
            results.iter().filter(|r| !r.success && r.on_failure == OnFailure::Fail).collect();
        let error = failing.first().map(|first| {
            let more = match failing.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            format!("data quality: expectation failed: {}{more}", first.describe())
        });
        self.record(Event::QualityChecked { task, attempt, results, at: self.now() })?;
        Ok(error)
    }
}
