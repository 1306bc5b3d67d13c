//! The scheduling loop.

use super::graph::{Graph, GraphError};
use super::resources::Pools;
use super::{priority, Event, Options, Report, Runner, Skip, Status, Task};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs `tasks` with `runner`; see the [module documentation](super) for
/// the rules. `events` is called from the scheduling loop as things happen,
/// so it should be quick (update a progress bar, send on a channel).
///
/// Returns a [`GraphError`], without running anything, when a dependency
/// index is out of range or the dependencies form a cycle.
pub async fn run<R, F>(
    tasks: &[Task],
    runner: &R,
    opts: Options,
    cancel: CancellationToken,
    events: F,
) -> Result<Report<R::Output>, GraphError>
where
    R: Runner + ?Sized,
    F: FnMut(Event<'_, R::Output>),
{
    let graph = Graph::new(tasks)?;
    let prio = priority::compute(tasks, &graph);
    let started = Instant::now();
    let mut ex = Exec {
        tasks,
        runner,
        events,
        keep_going: opts.keep_going,
        pools: Pools::new(&opts.limits),
        waiting: tasks.iter().map(|t| t.deps.len()).collect(),
        slots: (0..tasks.len()).map(|_| Slot::Pending).collect(),
        running: JoinSet::new(),
        ids: HashMap::new(),
        stopped: false,
        cancelled: false,
        failures: Vec::new(),
        cancel: cancel.clone(),
        graph,
        prio,
    };
    for (ix, t) in tasks.iter().enumerate() {
        if t.deps.is_empty() {
            ex.pools.push(ix, t.class, ex.prio[ix]);
        }
    }

    let fired = cancel.cancelled();
    tokio::pin!(fired);
    loop {
        if !ex.cancelled && cancel.is_cancelled() {
            ex.on_cancel();
        }
        ex.start_ready();
        if ex.running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut fired, if !ex.cancelled => ex.on_cancel(),
            Some(joined) = ex.running.join_next_with_id() => ex.on_joined(joined),
        }
    }

    let tasks = ex
        .slots
        .into_iter()
        .enumerate()
        .map(|(ix, s)| match s {
            Slot::Finished(status) => status,
            // Nothing runs and every pool is idle, so every queued task has
            // started: a task left here would mean a bug in this module.
            _ => unreachable!("scheduler ended with task {ix} unresolved"),
        })
        .collect();
    Ok(Report {
        tasks,
        failures: ex.failures,
        cancelled: ex.cancelled,
        elapsed: started.elapsed(),
    })
}

enum Slot<O> {
    /// Waiting for dependencies or queued in a pool.
    Pending,
    Running,
    Finished(Status<O>),
}

type Joined<O> = Result<(Id, anyhow::Result<O>), JoinError>;

struct Exec<'a, R: Runner + ?Sized, F> {
    tasks: &'a [Task],
    graph: Graph,
    prio: Vec<u64>,
    runner: &'a R,
    events: F,
    keep_going: bool,
    cancel: CancellationToken,
    pools: Pools,
    /// Dependencies of each task that have not succeeded yet.
    waiting: Vec<usize>,
    slots: Vec<Slot<R::Output>>,
    running: JoinSet<anyhow::Result<R::Output>>,
    /// Running task ids → task index and start time.
    ids: HashMap<Id, (usize, Instant)>,
    /// Start nothing new: a failure without keep_going, or cancellation.
    stopped: bool,
    cancelled: bool,
    failures: Vec<usize>,
}

impl<R, F> Exec<'_, R, F>
where
    R: Runner + ?Sized,
    F: FnMut(Event<'_, R::Output>),
{
    fn start_ready(&mut self) {
        while !self.stopped {
            let Some(ix) = self.pools.pop_startable(self.tasks) else {
                break;
            };
            self.start(ix);
        }
    }

    fn start(&mut self, ix: usize) {
        let token = self.cancel.child_token();
        let at = Instant::now();
        self.slots[ix] = Slot::Running;
        (self.events)(Event::Started { ix });
        // A runner that panics while building its future fails its task,
        // like one whose future panics.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.runner.run(ix, token))) {
            Ok(fut) => {
                let handle = self.running.spawn(fut);
                self.ids.insert(handle.id(), (ix, at));
            }
            Err(payload) => self.on_result(ix, Err(panic_error(payload)), at),
        }
    }

    fn on_joined(&mut self, joined: Joined<R::Output>) {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => {
                let id = e.id();
                let error = if e.is_panic() {
                    panic_error(e.into_panic())
                } else {
                    anyhow::anyhow!("task aborted")
                };
                (id, Err(error))
            }
        };
        if let Some((ix, at)) = self.ids.remove(&id) {
            self.on_result(ix, result, at);
        }
    }

    fn on_result(&mut self, ix: usize, result: anyhow::Result<R::Output>, at: Instant) {
        let duration = at.elapsed();
        self.pools.release(self.tasks[ix].class);
        match result {
            Ok(outcome) => {
                (self.events)(Event::Finished {
                    ix,
                    outcome: &outcome,
                    duration,
                });
                self.slots[ix] = Slot::Finished(Status::Done { outcome, duration });
                if !self.stopped {
                    for &d in self.graph.dependents(ix) {
                        self.waiting[d] -= 1;
                        if self.waiting[d] == 0 {
                            self.pools.push(d, self.tasks[d].class, self.prio[d]);
                        }
                    }
                }
            }
            Err(error) if self.cancelled => {
                (self.events)(Event::Cancelled {
                    ix,
                    interrupted: Some((duration, &error)),
                });
                self.slots[ix] = Slot::Finished(Status::Cancelled {
                    interrupted: Some((duration, error)),
                });
            }
            Err(error) => {
                (self.events)(Event::Failed {
                    ix,
                    error: &error,
                    duration,
                });
                self.slots[ix] = Slot::Finished(Status::Failed { error, duration });
                self.failures.push(ix);
                self.skip_downstream(ix);
                if !self.keep_going && !self.stopped {
                    self.stop(ix);
                }
            }
        }
    }

    /// Marks every pending task downstream of `failed` as skipped. A task
    /// already skipped had its own downstream skipped then, so each task is
    /// visited once over the whole run: O(V + E) in total.
    fn skip_downstream(&mut self, failed: usize) {
        let Exec {
            graph,
            slots,
            events,
            ..
        } = self;
        let mut stack = vec![failed];
        while let Some(u) = stack.pop() {
            for &d in graph.dependents(u) {
                if matches!(slots[d], Slot::Pending) {
                    let because = Skip::DepFailed { failed };
                    events(Event::Skipped { ix: d, because });
                    slots[d] = Slot::Finished(Status::Skipped(because));
                    stack.push(d);
                }
            }
        }
    }

    /// After the first failure without keep_going: nothing new starts.
    fn stop(&mut self, failed: usize) {
        self.stopped = true;
        self.pools.clear_ready();
        let because = Skip::Stopped { failed };
        for (ix, slot) in self.slots.iter_mut().enumerate() {
            if matches!(slot, Slot::Pending) {
                (self.events)(Event::Skipped { ix, because });
                *slot = Slot::Finished(Status::Skipped(because));
            }
        }
    }

    /// The token fired: nothing new starts; running tasks see their child
    /// tokens fire and are awaited by the loop.
    fn on_cancel(&mut self) {
        self.cancelled = true;
        self.stopped = true;
        self.pools.clear_ready();
        for (ix, slot) in self.slots.iter_mut().enumerate() {
            if matches!(slot, Slot::Pending) {
                (self.events)(Event::Cancelled {
                    ix,
                    interrupted: None,
                });
                *slot = Slot::Finished(Status::Cancelled { interrupted: None });
            }
        }
    }
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> anyhow::Error {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string payload".into());
    anyhow::anyhow!("task panicked: {msg}")
}
