//! Priority of a task: the longest remaining path from it to any sink.

use super::graph::{Graph, GraphError};
use super::Task;
use std::time::Duration;

/// The estimate used for tasks without one: the median of the known
/// estimates (the upper one of the middle two), or 1 ms when none is known
/// (then every task weighs the same and priority counts tasks on the path).
pub(crate) fn default_estimate(tasks: &[Task]) -> Duration {
    let mut known: Vec<Duration> = tasks.iter().filter_map(|t| t.estimate).collect();
    if known.is_empty() {
        return Duration::from_millis(1);
    }
    let mid = known.len() / 2;
    *known.select_nth_unstable(mid).1
}

/// Remaining path of every task in nanoseconds (saturating): its own estimate
/// plus the largest remaining path among its dependents. One pass in reverse
/// topological order, O(V + E).
pub(crate) fn compute(tasks: &[Task], graph: &Graph) -> Vec<u64> {
    let default = nanos(default_estimate(tasks));
    let mut prio = vec![0u64; tasks.len()];
    for &u in graph.order.iter().rev() {
        let own = tasks[u].estimate.map_or(default, nanos);
        let after = graph
            .dependents(u)
            .iter()
            .map(|&d| prio[d])
            .max()
            .unwrap_or(0);
        prio[u] = own.saturating_add(after);
    }
    prio
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The priority [`super::run`] gives each task: the sum of estimates along
/// the longest path from the task to any sink, the task included. Tasks
/// without an estimate count as the median of the known ones (1 ms when
/// none is known).
pub fn priorities(tasks: &[Task]) -> Result<Vec<Duration>, GraphError> {
    let graph = Graph::new(tasks)?;
    Ok(compute(tasks, &graph)
        .into_iter()
        .map(Duration::from_nanos)
        .collect())
}
