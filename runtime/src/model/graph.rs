//! A run's top-level task graph as grants use it: who depends on whom, by key.
//!
//! Owns the question "may task A read what task B produced" — is B upstream of A, directly
//! or transitively. One graph is built per plan and shared (`Arc`) by every attempt of the
//! run; it is walked when a guest asks, never expanded into every task's ancestry (which is
//! quadratic in a chain's length and was once rebuilt for each attempt). No I/O.

use std::collections::HashMap;

/// The direct dependencies of a run's top-level tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskGraph {
    index: HashMap<String, usize>,
    deps: Vec<Vec<usize>>,
}

impl TaskGraph {
    /// The graph of `tasks`: each task's key and the keys it depends on directly.
    /// Dependencies on keys not among `tasks` are left out.
    pub fn new<'a, D>(tasks: impl IntoIterator<Item = (&'a str, D)>) -> TaskGraph
    where
        D: IntoIterator<Item = &'a str>,
    {
        let tasks: Vec<(&str, Vec<&str>)> = tasks.into_iter().map(|(k, d)| (k, d.into_iter().collect())).collect();
        let index: HashMap<String, usize> = tasks.iter().enumerate().map(|(n, (k, _))| (k.to_string(), n)).collect();
        let deps = tasks.iter().map(|(_, d)| d.iter().filter_map(|k| index.get(*k).copied()).collect()).collect();
        TaskGraph { index, deps }
    }

    /// Whether task `task` depends on task `up`, directly or transitively.
    pub fn is_upstream(&self, task: &str, up: &str) -> bool {
        match (self.index.get(task), self.index.get(up)) {
            (Some(&from), Some(&target)) => crate::util::graph::depends_on(&self.deps, from, target),
            _ => false,
        }
    }

    /// Every task `task` depends on, directly or transitively (for a caller that must list
    /// them all, such as `sluice verify`'s scratch store).
    pub fn upstreams_of(&self, task: &str) -> Vec<String> {
        let Some(&from) = self.index.get(task) else { return Vec::new() };
        let mut seen = vec![false; self.deps.len()];
        let mut stack = self.deps[from].clone();
        while let Some(node) = stack.pop() {
            if !std::mem::replace(&mut seen[node], true) {
                stack.extend(&self.deps[node]);
            }
        }
        self.index.iter().filter(|&(_, &n)| seen[n]).map(|(k, _)| k.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::TaskGraph;

    #[test]
    fn answers_by_key_and_ignores_unknown_keys() {
        let g = TaskGraph::new([("a", vec![]), ("b", vec!["a"]), ("c", vec!["b", "elsewhere"]), ("d", vec![])]);
        assert!(g.is_upstream("c", "a"));
        assert!(g.is_upstream("b", "a"));
        assert!(!g.is_upstream("a", "c"));
        assert!(!g.is_upstream("d", "a"));
        assert!(!g.is_upstream("c", "elsewhere"));
        let mut ups = g.upstreams_of("c");
        ups.sort();
        assert_eq!(ups, ["a", "b"]);
    }
}
