//! The task graph of one job: unique keys, known dependencies, no cycles, a stable
//! topological order, and who is upstream of whom.

use std::collections::{BTreeMap, BTreeSet};

use super::error::SpecError;
use super::job::TaskSite;
use super::names;
use super::{TaskKind, TaskSpec};

/// A validated task graph. Indexes are positions in file order.
pub(crate) struct Graph {
    /// Tasks in topological order, ties broken by file order.
    pub order: Vec<usize>,
    /// Task key -> file position.
    index: BTreeMap<String, usize>,
    /// For each task, the positions of the tasks it depends on directly.
    deps: Vec<Vec<usize>>,
}

impl Graph {
    /// Whether task `key` depends on task `up`, directly or transitively: a walk when
    /// asked, since only references that name another task ask.
    pub fn is_upstream(&self, key: &str, up: &str) -> bool {
        match (self.index.get(key), self.index.get(up)) {
            (Some(&from), Some(&target)) => crate::util::graph::depends_on(&self.deps, from, target),
            _ => false,
        }
    }
}

/// Checks keys and dependencies of a job's tasks (given in file order) and orders them.
pub(crate) fn check(job: &str, tasks: &[TaskSpec], sites: &[TaskSite<'_>]) -> Result<Graph, SpecError> {
    let index = unique_keys(tasks, sites)?;
    let deps = dependencies(job, tasks, sites, &index)?;
    let order = topological_order(&deps).map_err(|cycle| cycle_error(&cycle, tasks, sites, &deps))?;
    Ok(Graph { order, index, deps })
}

/// Task key -> file position; a key used twice is an error at the second use.
fn unique_keys(tasks: &[TaskSpec], sites: &[TaskSite<'_>]) -> Result<BTreeMap<String, usize>, SpecError> {
    let mut index = BTreeMap::new();
    for (position, (task, site)) in tasks.iter().zip(sites).enumerate() {
        if let Some(&first) = index.get(&task.key) {
            let first_line = sites.get(first).map_or(0, |s: &TaskSite<'_>| s.key.line());
            return Err(site
                .key
                .error(format!("duplicate task key `{}` (first defined on line {first_line})", task.key)));
        }
        index.insert(task.key.clone(), position);
    }
    Ok(index)
}

/// For each task, the positions of the tasks it depends on, in listed order.
fn dependencies(
    job: &str,
    tasks: &[TaskSpec],
    sites: &[TaskSite<'_>],
    index: &BTreeMap<String, usize>,
) -> Result<Vec<Vec<usize>>, SpecError> {
    let mut all = Vec::with_capacity(tasks.len());
    for (task, site) in tasks.iter().zip(sites) {
        let mut deps: Vec<usize> = Vec::with_capacity(task.depends_on.len());
        for (dep, dep_site) in task.depends_on.iter().zip(&site.depends_on) {
            let (key, node) = (&dep.task, &dep_site.task);
            if key == &task.key {
                return Err(node.error(format!("task `{key}` depends on itself")));
            }
            let Some(&position) = index.get(key) else {
                let hint = names::suggestion(key, index.keys().map(String::as_str));
                return Err(node.error(format!(
                    "unknown task `{key}`{hint}; tasks in job `{job}`: {}",
                    names::list(tasks.iter().map(|t| t.key.as_str()))
                )));
            };
            if deps.contains(&position) {
                return Err(node.error(format!("`{key}` is listed twice")));
            }
            let upstream = &tasks[position].kind;
            if let (Some(outcome), false) = (&dep_site.outcome, matches!(upstream, TaskKind::Condition { .. })) {
                return Err(outcome.error(format!(
                    "`outcome` applies only to a condition task, and `{key}` is a {} task; \
                     depend on `{key}` without it",
                    upstream.name()
                )));
            }
            deps.push(position);
        }
        all.push(deps);
    }
    Ok(all)
}

/// Kahn's algorithm taking the earliest ready task in file order each step, so a file
/// already in dependency order comes back unchanged. On a cycle, returns it
/// (as positions, first == last).
fn topological_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut waiting_on: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (task, task_deps) in deps.iter().enumerate() {
        for &dep in task_deps {
            dependents[dep].push(task);
        }
    }
    let mut ready: BTreeSet<usize> = (0..deps.len()).filter(|&t| waiting_on[t] == 0).collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(task) = ready.pop_first() {
        order.push(task);
        for &next in &dependents[task] {
            waiting_on[next] -= 1;
            if waiting_on[next] == 0 {
                ready.insert(next);
            }
        }
    }
    if order.len() == deps.len() { Ok(order) } else { Err(find_cycle(deps, &order)) }
}

/// A cycle among the tasks left out of `done`: each of them waits on another of them,
/// so walking first unfinished dependencies must come back to a task already seen.
fn find_cycle(deps: &[Vec<usize>], done: &[usize]) -> Vec<usize> {
    let left: BTreeSet<usize> = (0..deps.len()).filter(|t| !done.contains(t)).collect();
    let mut path: Vec<usize> = Vec::new();
    let mut current = left.first().copied();
    while let Some(task) = current {
        if let Some(start) = path.iter().position(|&seen| seen == task) {
            return rotate_to_earliest(&path[start..]);
        }
        path.push(task);
        current = deps[task].iter().copied().find(|dep| left.contains(dep));
    }
    path
}

/// The cycle starting at its earliest task in file order, closed (first == last).
fn rotate_to_earliest(cycle: &[usize]) -> Vec<usize> {
    let start = cycle.iter().enumerate().min_by_key(|(_, task)| **task).map_or(0, |(at, _)| at);
    let mut closed: Vec<usize> = cycle[start..].iter().chain(&cycle[..start]).copied().collect();
    if let Some(&first) = closed.first() {
        closed.push(first);
    }
    closed
}

/// "dependency cycle: a -> b -> a", at the `depends_on` entry of the cycle's first task
/// that names the second.
fn cycle_error(cycle: &[usize], tasks: &[TaskSpec], sites: &[TaskSite<'_>], deps: &[Vec<usize>]) -> SpecError {
    let names: Vec<&str> = cycle.iter().map(|&t| tasks[t].key.as_str()).collect();
    let message = format!("dependency cycle: {} (each task depends on the next)", names.join(" -> "));
    let (first, second) = (cycle.first().copied().unwrap_or(0), cycle.get(1).copied().unwrap_or(0));
    let entry = deps[first].iter().position(|&dep| dep == second).unwrap_or(0);
    match sites[first].depends_on.get(entry) {
        Some(site) => site.task.error(message),
        None => sites[first].key.error(message),
    }
}
