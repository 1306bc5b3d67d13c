//! The critical path of a run: from the node that finished last, back
//! through the dependency that finished last, to a node that waited on
//! nothing. That is the chain a faster build has to shorten, as Buck2's
//! build report names it; a longest path by durations alone would miss
//! time spent waiting for a job slot.

/// One node of a run: when it ended (ms since the run began; `None` when
/// it did not finish) and its dependencies, as indices into the same list.
pub struct Timed<'a> {
    /// When it finished.
    pub end_ms: Option<u64>,
    /// Its dependencies.
    pub deps: &'a [usize],
}

/// The critical path, first node first, and when its last node finished.
pub fn critical_path(nodes: &[Timed]) -> (Vec<usize>, u64) {
    let last = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((n.end_ms?, i)))
        .max();
    let Some((total, mut at)) = last else {
        return (Vec::new(), 0);
    };
    let mut path = vec![at];
    // Dependencies come before dependents, so each step strictly goes back
    // and the walk ends; the bound only guards a malformed input.
    while path.len() <= nodes.len() {
        let prev = nodes[at]
            .deps
            .iter()
            .filter_map(|&d| Some((nodes.get(d)?.end_ms?, d)))
            .max();
        match prev {
            Some((_, d)) => {
                path.push(d);
                at = d;
            }
            None => break,
        }
    }
    path.reverse();
    (path, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_dependency_that_finished_last() {
        // 0 → 2, 1 → 2, 2 → 3, and 4 alone (finished early).
        let deps: Vec<Vec<usize>> = vec![vec![], vec![], vec![0, 1], vec![2], vec![]];
        let ends = [Some(10), Some(40), Some(50), Some(90), Some(20)];
        let nodes: Vec<Timed> = ends
            .iter()
            .zip(&deps)
            .map(|(e, d)| Timed {
                end_ms: *e,
                deps: d,
            })
            .collect();
        assert_eq!(critical_path(&nodes), (vec![1, 2, 3], 90));
    }

    #[test]
    fn unfinished_nodes_are_not_on_it_and_an_empty_run_has_none() {
        let deps: Vec<Vec<usize>> = vec![vec![], vec![0]];
        let nodes = [
            Timed {
                end_ms: Some(5),
                deps: &deps[0],
            },
            Timed {
                end_ms: None,
                deps: &deps[1],
            },
        ];
        assert_eq!(critical_path(&nodes), (vec![0], 5));
        assert_eq!(critical_path(&[]), (vec![], 0));
    }
}
