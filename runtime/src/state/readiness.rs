//! Whether a task whose upstreams have all ended should run, and if not, what
//! it ends as. Databricks' `run_if` semantics; pure, no I/O.
//!
//! - A dependency on a condition task with an `outcome` that did not happen is
//!   a branch not taken, and counts exactly like an upstream that ended
//!   `excluded`. A task whose every upstream is excluded is `excluded`:
//!   exclusion flows down a branch.
//! - Otherwise `excluded` upstreams count as success.
//! - `interrupted` (the process died and the task did not run again) counts as a
//!   failure: something needs a repair.
//! - Rules that want success (`all_success`, `at_least_one_success`,
//!   `none_failed`) end the task `upstream_failed` when not met
//!   (`upstream_canceled` when a cancellation is why); the failure-seeking rules
//!   (`at_least_one_failed`, `all_failed`) end it `excluded`.
//! - A canceled upstream counts as failed for the failure-handling rules: a
//!   cancel propagates downstream, but cleanup tasks still run (as Databricks
//!   documents), and `all_done` runs whatever happened.

use crate::model::TaskResult;
use crate::spec::RunIf;

/// How one upstream edge ended, as the downstream task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The upstream ended with this result and the edge is taken.
    Ended(TaskResult),
    /// The upstream is a condition whose outcome is not the one this edge wants.
    NotTaken,
}

/// What to do with a task whose upstreams have all ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    Skip(TaskResult, String),
}

fn failed_like(r: TaskResult) -> bool {
    matches!(
        r,
        TaskResult::Failed
            | TaskResult::TimedOut
            | TaskResult::UpstreamFailed
            | TaskResult::Interrupted
            | TaskResult::QualityFailed
    )
}

fn canceled_like(r: TaskResult) -> bool {
    matches!(r, TaskResult::Canceled | TaskResult::UpstreamCanceled)
}

fn success_like(r: TaskResult) -> bool {
    matches!(r, TaskResult::Success | TaskResult::Excluded)
}

/// Decide. `edges` is empty for a task without dependencies (it always runs).
pub fn decide(run_if: RunIf, edges: &[Edge]) -> Decision {
    if edges.is_empty() {
        return Decision::Run;
    }
    let taken: Vec<TaskResult> = edges
        .iter()
        .map(|e| match e {
            Edge::Ended(r) => *r,
            Edge::NotTaken => TaskResult::Excluded,
        })
        .collect();
    if taken.iter().all(|r| *r == TaskResult::Excluded) {
        return Decision::Skip(TaskResult::Excluded, "no upstream branch leading here was taken".into());
    }
    let failed = taken.iter().filter(|r| failed_like(**r)).count();
    let canceled = taken.iter().filter(|r| canceled_like(**r)).count();
    let succeeded = taken.iter().filter(|r| success_like(**r)).count();
    let all = taken.len();
    let unmet = |why: &str| {
        if canceled > 0 && failed == 0 {
            Decision::Skip(
                TaskResult::UpstreamCanceled,
                format!("run_if `{}`: {why} (an upstream task was canceled)", run_if.as_str()),
            )
        } else {
            Decision::Skip(TaskResult::UpstreamFailed, format!("run_if `{}`: {why}", run_if.as_str()))
        }
    };
    let not_sought = |why: &str| Decision::Skip(TaskResult::Excluded, format!("run_if `{}`: {why}", run_if.as_str()));
    match run_if {
        RunIf::AllSuccess if succeeded == all => Decision::Run,
        RunIf::AllSuccess => unmet("not every upstream task succeeded"),
        RunIf::AtLeastOneSuccess if succeeded > 0 => Decision::Run,
        RunIf::AtLeastOneSuccess => unmet("no upstream task succeeded"),
        RunIf::NoneFailed if failed == 0 && canceled == 0 => Decision::Run,
        RunIf::NoneFailed => unmet("an upstream task failed"),
        RunIf::AllDone => Decision::Run,
        RunIf::AtLeastOneFailed if failed + canceled > 0 => Decision::Run,
        RunIf::AtLeastOneFailed => not_sought("no upstream task failed"),
        RunIf::AllFailed if failed + canceled == all => Decision::Run,
        RunIf::AllFailed => not_sought("not every upstream task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Edge::*;
    use TaskResult::*;

    fn d(rule: RunIf, edges: &[Edge]) -> Option<TaskResult> {
        match decide(rule, edges) {
            Decision::Run => None,
            Decision::Skip(r, _) => Some(r),
        }
    }

    #[test]
    fn all_six_rules_on_a_mixed_diamond() {
        let ok_ok = [Ended(Success), Ended(Success)];
        let ok_fail = [Ended(Success), Ended(Failed)];
        let fail_fail = [Ended(Failed), Ended(TimedOut)];
        assert_eq!(d(RunIf::AllSuccess, &ok_ok), None);
        assert_eq!(d(RunIf::AllSuccess, &ok_fail), Some(UpstreamFailed));
        assert_eq!(d(RunIf::AtLeastOneSuccess, &ok_fail), None);
        assert_eq!(d(RunIf::AtLeastOneSuccess, &fail_fail), Some(UpstreamFailed));
        assert_eq!(d(RunIf::NoneFailed, &[Ended(Success), Ended(Excluded)]), None);
        assert_eq!(d(RunIf::NoneFailed, &ok_fail), Some(UpstreamFailed));
        assert_eq!(d(RunIf::AllDone, &fail_fail), None);
        assert_eq!(d(RunIf::AtLeastOneFailed, &ok_fail), None);
        assert_eq!(d(RunIf::AtLeastOneFailed, &ok_ok), Some(Excluded));
        assert_eq!(d(RunIf::AllFailed, &fail_fail), None);
        assert_eq!(d(RunIf::AllFailed, &ok_fail), Some(Excluded));
    }

    #[test]
    fn excluded_counts_as_success_but_a_fully_excluded_branch_stays_excluded() {
        assert_eq!(d(RunIf::AllSuccess, &[Ended(Success), Ended(Excluded)]), None);
        assert_eq!(d(RunIf::AllSuccess, &[Ended(Excluded)]), Some(Excluded));
        assert_eq!(d(RunIf::AllSuccess, &[NotTaken]), Some(Excluded));
        assert_eq!(d(RunIf::AllSuccess, &[NotTaken, Ended(Success)]), None);
    }

    #[test]
    fn cancellation_propagates_as_upstream_canceled_but_failure_handlers_run() {
        assert_eq!(d(RunIf::AllSuccess, &[Ended(Canceled)]), Some(UpstreamCanceled));
        assert_eq!(d(RunIf::AllSuccess, &[Ended(UpstreamCanceled), Ended(Success)]), Some(UpstreamCanceled));
        assert_eq!(d(RunIf::AtLeastOneFailed, &[Ended(Canceled)]), None, "cleanup after a cancel");
        assert_eq!(d(RunIf::AllFailed, &[Ended(UpstreamCanceled), Ended(Failed)]), None);
        assert_eq!(d(RunIf::AllDone, &[Ended(Canceled)]), None);
    }

    #[test]
    fn a_branch_not_taken_is_an_excluded_upstream() {
        for rule in RunIf::ALL {
            for other in [Success, Failed, TimedOut, Canceled, Excluded, UpstreamFailed, UpstreamCanceled, Interrupted]
            {
                assert_eq!(
                    d(rule, &[Ended(other), NotTaken]),
                    d(rule, &[Ended(other), Ended(Excluded)]),
                    "{rule} with {other:?}"
                );
            }
        }
    }

    #[test]
    fn tasks_without_dependencies_always_run() {
        assert_eq!(d(RunIf::AllFailed, &[]), None);
    }
}
