//! Reachability in a dependency graph given as each node's direct dependencies.
//!
//! Owns one walk, shared by the bundle's reference check and the runtime's read grants:
//! whether one node depends on another, directly or transitively. It never builds a table
//! of every node's ancestors: that table grows with the square of a chain's length.

/// Whether node `from` depends on node `target` through `deps` (each node's direct
/// dependencies, by index). Out-of-range indexes are nodes without dependencies.
pub fn depends_on(deps: &[Vec<usize>], from: usize, target: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack: Vec<usize> = deps.get(from).cloned().unwrap_or_default();
    while let Some(node) = stack.pop() {
        if node == target {
            return true;
        }
        if let Some(seen) = seen.get_mut(node)
            && !std::mem::replace(seen, true)
        {
            stack.extend(deps.get(node).into_iter().flatten());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::depends_on;

    #[test]
    fn walks_transitive_dependencies_and_nothing_else() {
        // 0 <- 1 <- 2, 3 alone, 4 depends on 2 and 3
        let deps = vec![vec![], vec![0], vec![1], vec![], vec![2, 3]];
        assert!(depends_on(&deps, 2, 0));
        assert!(depends_on(&deps, 4, 0));
        assert!(depends_on(&deps, 4, 3));
        assert!(!depends_on(&deps, 0, 2));
        assert!(!depends_on(&deps, 3, 0));
        assert!(!depends_on(&deps, 2, 2));
        assert!(!depends_on(&deps, 9, 0));
    }

    #[test]
    fn a_long_chain_is_one_walk() {
        let deps: Vec<Vec<usize>> = (0..100_000).map(|n| if n == 0 { vec![] } else { vec![n - 1] }).collect();
        assert!(depends_on(&deps, 99_999, 0));
        assert!(!depends_on(&deps, 0, 99_999));
    }
}
