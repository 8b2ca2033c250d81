//! Laying a run's task graph out for `runs show`: topological levels, and which
//! for_each iterations are worth a section of their own.
//!
//! Pure helpers over `RunView` data. They must never decide anything about a run
//! (readiness, results: that is the scheduler's), never touch the store, and never print.

use crate::model::{TaskResult, TaskView};

/// Longest list of iterations `runs show` details in full; beyond it only the ones that
/// did not succeed are detailed and the rest are counted.
pub(super) const ITERATIONS_SHOWN: usize = 20;

/// Each task's level: 0 without upstream tasks, else one more than its deepest upstream.
/// Upstream keys not in `tasks` are ignored; a cycle (never valid) cannot loop forever.
pub(super) fn levels(tasks: &[(&str, &[String])]) -> Vec<usize> {
    let index: std::collections::HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect();
    let mut level = vec![0usize; tasks.len()];
    // relax until stable: at most one pass per task, even for a (corrupt) cycle
    for _ in 0..tasks.len() {
        let mut changed = false;
        for (i, (_, deps)) in tasks.iter().enumerate() {
            let want = deps.iter().filter_map(|d| index.get(d.as_str())).map(|&j| level[j] + 1).max().unwrap_or(0);
            if want > level[i] {
                level[i] = want;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    level
}

/// Task indexes grouped by level, each group in the given (plan) order.
pub(super) fn layers(tasks: &[(&str, &[String])]) -> Vec<Vec<usize>> {
    let level = levels(tasks);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); level.iter().max().map_or(0, |m| m + 1)];
    for (i, l) in level.into_iter().enumerate() {
        out[l].push(i);
    }
    out
}

/// The iterations to detail: all of them up to [`ITERATIONS_SHOWN`], else those that did
/// not succeed (at most that many), in order. Also returns the ones left out.
pub(super) fn pick_iterations<'a>(its: &[&'a TaskView]) -> (Vec<&'a TaskView>, Vec<&'a TaskView>) {
    if its.len() <= ITERATIONS_SHOWN {
        return (its.to_vec(), Vec::new());
    }
    let (mut shown, mut hidden) = (Vec::new(), Vec::new());
    for &t in its {
        if t.result != Some(TaskResult::Success) && shown.len() < ITERATIONS_SHOWN {
            shown.push(t);
        } else {
            hidden.push(t);
        }
    }
    (shown, hidden)
}

/// Upstream keys for a table cell: all of them, or the first few and a count.
pub(super) fn upstream_list(deps: &[String], max: usize) -> String {
    if deps.len() <= max {
        return deps.join(", ");
    }
    format!("{}, … (+{} more)", deps[..max].join(", "), deps.len() - max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskState;

    fn graph(spec: &[(&'static str, &[&str])]) -> Vec<(&'static str, Vec<String>)> {
        spec.iter().map(|(k, d)| (*k, d.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn lay(spec: &[(&'static str, &[&str])]) -> Vec<Vec<&'static str>> {
        let g = graph(spec);
        let refs: Vec<(&str, &[String])> = g.iter().map(|(k, d)| (*k, d.as_slice())).collect();
        layers(&refs).into_iter().map(|l| l.into_iter().map(|i| g[i].0).collect()).collect()
    }

    #[test]
    fn a_diamond_has_three_levels() {
        let l = lay(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        assert_eq!(l, vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
    }

    #[test]
    fn a_task_sits_below_its_deepest_upstream() {
        // d depends on a (level 0) and c (level 2): it goes to level 3
        let l = lay(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a", "c"]), ("e", &[])]);
        assert_eq!(l, vec![vec!["a", "e"], vec!["b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn a_wide_graph_stays_on_one_level_in_plan_order() {
        let l = lay(&[("z", &[]), ("y", &[]), ("x", &[]), ("sink", &["z", "y", "x"])]);
        assert_eq!(l, vec![vec!["z", "y", "x"], vec!["sink"]]);
    }

    #[test]
    fn unknown_upstreams_and_cycles_do_not_hang() {
        assert_eq!(lay(&[("a", &["ghost"])]), vec![vec!["a"]]);
        let l = lay(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(l.iter().map(Vec::len).sum::<usize>(), 2);
        assert!(lay(&[]).is_empty());
    }

    fn iteration(i: usize, result: TaskResult) -> TaskView {
        TaskView {
            reused_from: None,
            key: format!("each[{i}]"),
            component: "c".into(),
            component_hash: "h".into(),
            depends_on: vec![],
            state: TaskState::Terminated,
            result: Some(result),
            skipped_reason: None,
            attempts: vec![],
            outcome: None,
            parent: Some("each".into()),
            child_run: None,
            retry_not_before: None,
        }
    }

    #[test]
    fn many_iterations_collapse_to_the_ones_that_failed() {
        let its: Vec<TaskView> =
            (0..50).map(|i| iteration(i, if i % 10 == 3 { TaskResult::Failed } else { TaskResult::Success })).collect();
        let refs: Vec<&TaskView> = its.iter().collect();
        let (shown, hidden) = pick_iterations(&refs);
        assert_eq!(
            shown.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
            ["each[3]", "each[13]", "each[23]", "each[33]", "each[43]"]
        );
        assert_eq!(hidden.len(), 45);
        assert!(hidden.iter().all(|t| t.result == Some(TaskResult::Success)));

        let (shown, hidden) = pick_iterations(&refs[..ITERATIONS_SHOWN]);
        assert_eq!((shown.len(), hidden.len()), (ITERATIONS_SHOWN, 0), "up to the limit every iteration is shown");

        let failing: Vec<TaskView> = (0..30).map(|i| iteration(i, TaskResult::Failed)).collect();
        let refs: Vec<&TaskView> = failing.iter().collect();
        let (shown, hidden) = pick_iterations(&refs);
        assert_eq!((shown.len(), hidden.len()), (ITERATIONS_SHOWN, 10), "failures beyond the limit are counted");
    }

    #[test]
    fn long_upstream_lists_are_cut() {
        let deps: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        assert_eq!(upstream_list(&deps[..2], 6), "t0, t1");
        assert_eq!(upstream_list(&deps, 6), "t0, t1, t2, t3, t4, t5, … (+2 more)");
    }
}
