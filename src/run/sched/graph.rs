//! Checking the task DAG and turning its dependency lists around.

use super::Task;

/// Why a set of tasks cannot be scheduled. Found before anything runs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("task {task} ({name}) depends on task {dep}, but there are only {len} tasks")]
    DepOutOfRange {
        task: usize,
        name: String,
        dep: usize,
        len: usize,
    },
    /// `tasks[i]` depends on `tasks[i + 1]`, and the last on the first.
    #[error("dependency cycle: {} (each depends on the next)", names.join(" → "))]
    Cycle {
        tasks: Vec<usize>,
        names: Vec<String>,
    },
}

/// The checked DAG: dependents of every task in one flat array (CSR), and a
/// topological order.
#[derive(Debug)]
pub(crate) struct Graph {
    /// Dependents of task `i` are `adj[off[i]..off[i + 1]]`.
    off: Vec<usize>,
    adj: Vec<usize>,
    /// Every task after all of its dependencies.
    pub order: Vec<usize>,
}

impl Graph {
    /// O(V + E).
    pub fn new(tasks: &[Task]) -> Result<Graph, GraphError> {
        let n = tasks.len();
        let mut off = vec![0usize; n + 1];
        for (i, t) in tasks.iter().enumerate() {
            for &d in &t.deps {
                if d >= n {
                    return Err(GraphError::DepOutOfRange {
                        task: i,
                        name: t.name.clone(),
                        dep: d,
                        len: n,
                    });
                }
                off[d + 1] += 1;
            }
        }
        for i in 0..n {
            off[i + 1] += off[i];
        }
        let mut fill = off.clone();
        let mut adj = vec![0usize; off[n]];
        for (i, t) in tasks.iter().enumerate() {
            for &d in &t.deps {
                adj[fill[d]] = i;
                fill[d] += 1;
            }
        }

        // Kahn's algorithm; duplicated deps count once per listing on both
        // sides, so they cancel out.
        let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let u = order[head];
            head += 1;
            for &v in &adj[off[u]..off[u + 1]] {
                waiting[v] -= 1;
                if waiting[v] == 0 {
                    order.push(v);
                }
            }
        }
        if order.len() < n {
            return Err(find_cycle(tasks, &waiting));
        }
        Ok(Graph { off, adj, order })
    }

    pub fn dependents(&self, ix: usize) -> &[usize] {
        &self.adj[self.off[ix]..self.off[ix + 1]]
    }
}

/// Called when Kahn's algorithm left tasks with `waiting > 0`: each of those
/// has a dependency that is also left, so following such dependencies from
/// any of them must come back to a task already on the path. O(V + E).
fn find_cycle(tasks: &[Task], waiting: &[usize]) -> GraphError {
    let left = |i: usize| waiting[i] > 0;
    // Position of each task on the current path, usize::MAX when not on it.
    let mut pos = vec![usize::MAX; tasks.len()];
    let mut path = Vec::new();
    let mut u = (0..tasks.len()).find(|&i| left(i)).unwrap_or(0);
    loop {
        if pos[u] != usize::MAX {
            let cycle: Vec<usize> = path[pos[u]..].to_vec();
            let mut names: Vec<String> = cycle.iter().map(|&i| tasks[i].name.clone()).collect();
            names.push(tasks[u].name.clone());
            return GraphError::Cycle {
                tasks: cycle,
                names,
            };
        }
        pos[u] = path.len();
        path.push(u);
        match tasks[u].deps.iter().copied().find(|&d| left(d)) {
            Some(d) => u = d,
            // Not reachable for a task left by Kahn's algorithm; report what
            // was walked rather than loop.
            None => {
                let names = path.iter().map(|&i| tasks[i].name.clone()).collect();
                return GraphError::Cycle { tasks: path, names };
            }
        }
    }
}
