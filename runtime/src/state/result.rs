//! Deciding a run's result from its tasks' results (Databricks' rule: the leaf
//! tasks decide). Pure: no I/O.

use std::collections::BTreeSet;

use crate::model::{RunResult, TaskResult};

/// A task's key, what it depends on, and how it ended.
pub struct Ended<'a> {
    pub key: &'a str,
    pub depends_on: &'a [String],
    pub result: TaskResult,
}

/// `success` when every task succeeded (or was excluded); `success_with_failures`
/// when something failed but every leaf succeeded; otherwise `canceled`,
/// `timed_out` or `failed` by what the failing tasks say.
pub fn run_result(tasks: &[Ended<'_>]) -> RunResult {
    let ok = |r: TaskResult| matches!(r, TaskResult::Success | TaskResult::Excluded);
    let upstreams: BTreeSet<&str> = tasks.iter().flat_map(|t| t.depends_on.iter().map(String::as_str)).collect();
    let leaves: Vec<&Ended<'_>> = tasks.iter().filter(|t| !upstreams.contains(t.key)).collect();
    if tasks.iter().all(|t| ok(t.result)) {
        return RunResult::Success;
    }
    if leaves.iter().all(|t| ok(t.result)) {
        return RunResult::SuccessWithFailures;
    }
    if tasks.iter().any(|t| t.result == TaskResult::Canceled) {
        return RunResult::Canceled;
    }
    if tasks.iter().any(|t| t.result == TaskResult::TimedOut)
        && !tasks.iter().any(|t| matches!(t.result, TaskResult::Failed | TaskResult::QualityFailed))
    {
        return RunResult::TimedOut;
    }
    RunResult::Failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskResult::*;

    fn run(tasks: &[(&str, &[&str], TaskResult)]) -> RunResult {
        let deps: Vec<Vec<String>> = tasks.iter().map(|t| t.1.iter().map(|s| s.to_string()).collect()).collect();
        let ended: Vec<Ended<'_>> =
            tasks.iter().zip(&deps).map(|(t, d)| Ended { key: t.0, depends_on: d, result: t.2 }).collect();
        run_result(&ended)
    }

    #[test]
    fn leaves_decide() {
        assert_eq!(run(&[("a", &[], Success), ("b", &["a"], Success)]), RunResult::Success);
        assert_eq!(run(&[("a", &[], Success), ("b", &["a"], Failed)]), RunResult::Failed);
        assert_eq!(run(&[("a", &[], Failed), ("b", &["a"], Success)]), RunResult::SuccessWithFailures);
        assert_eq!(run(&[("a", &[], Failed), ("b", &["a"], UpstreamFailed)]), RunResult::Failed);
        assert_eq!(run(&[("a", &[], TimedOut), ("b", &["a"], UpstreamFailed)]), RunResult::TimedOut);
        assert_eq!(run(&[("a", &[], Canceled), ("b", &["a"], UpstreamCanceled)]), RunResult::Canceled);
        assert_eq!(run(&[("a", &[], Success), ("b", &["a"], Excluded)]), RunResult::Success);
    }
}
