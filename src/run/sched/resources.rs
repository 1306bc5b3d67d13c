//! Resource pools: one per limit, each with its own queue of ready tasks.

use super::{Class, Limits, Task};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const POOLS: usize = 4;

/// The pool a class draws from and how much of it one task takes.
fn demand(class: Class) -> (usize, u64) {
    match class {
        Class::Cpu | Class::Engine => (0, 1),
        Class::Io => (1, 1),
        Class::Privileged => (2, 1),
        Class::Vm { ram_mib } => (3, ram_mib),
    }
}

#[derive(Debug, Default)]
struct Pool {
    cap: u64,
    used: u64,
    /// Ready tasks, highest priority first, then lowest index.
    ready: BinaryHeap<(u64, Reverse<usize>)>,
}

impl Pool {
    /// Whether a task taking `need` can start now. A task bigger than the
    /// whole pool starts when the pool is idle, so it never waits forever.
    fn fits(&self, need: u64) -> bool {
        self.used == 0 || self.used.saturating_add(need) <= self.cap
    }
}

/// The ready queues and what is in use, per pool.
#[derive(Debug)]
pub(crate) struct Pools {
    pools: [Pool; POOLS],
}

impl Pools {
    pub fn new(limits: &Limits) -> Pools {
        let caps = [
            limits.jobs as u64,
            limits.io as u64,
            limits.privileged as u64,
            limits.vm_ram_mib,
        ];
        Pools {
            pools: caps.map(|cap| Pool {
                cap,
                ..Pool::default()
            }),
        }
    }

    /// Queues a task whose dependencies have all succeeded. O(log V).
    pub fn push(&mut self, ix: usize, class: Class, prio: u64) {
        self.pools[demand(class).0].ready.push((prio, Reverse(ix)));
    }

    /// Takes the resources for the best ready task that can start now, and
    /// returns it. Within a pool, tasks start strictly in priority order: a
    /// big VM at the head waits for RAM rather than being overtaken forever
    /// by smaller ones. Pools are independent, so their order here does not
    /// matter. O(log V) per task started, O(1) when none can.
    pub fn pop_startable(&mut self, tasks: &[Task]) -> Option<usize> {
        for pool in &mut self.pools {
            let Some(&(_, Reverse(ix))) = pool.ready.peek() else {
                continue;
            };
            let need = demand(tasks[ix].class).1;
            if pool.fits(need) {
                pool.ready.pop();
                pool.used = pool.used.saturating_add(need);
                return Some(ix);
            }
        }
        None
    }

    /// Gives back what a started task took.
    pub fn release(&mut self, class: Class) {
        let (p, need) = demand(class);
        let pool = &mut self.pools[p];
        pool.used = pool.used.saturating_sub(need);
    }

    /// Forgets every queued task (after a stop or a cancellation).
    pub fn clear_ready(&mut self) {
        for pool in &mut self.pools {
            pool.ready.clear();
        }
    }
}
