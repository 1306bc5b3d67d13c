//! A generic tokio scheduler for a DAG of tasks.
//!
//! It knows nothing of ov node kinds: the caller hands it `N` [`Task`]s whose
//! dependencies are indices into the same slice, and a [`Runner`] that does
//! the work of one task. [`run`] then:
//!
//! - starts a task as soon as its own dependencies have succeeded (no level
//!   barriers);
//! - holds each running task to the limit of its resource [`Class`]
//!   ([`Limits`]): `jobs` slots for local and engine work, I/O slots,
//!   privileged slots and a VM RAM budget. A task that needs more than a
//!   whole limit still runs, alone in its class, instead of waiting forever;
//! - among ready tasks of a class, starts the one with the longest remaining
//!   path first (the sum of estimates along its longest path to a sink, see
//!   [`priorities`]), ties broken by lower index;
//! - by default stops at the first failure: it starts nothing new, lets the
//!   tasks already running finish (they are independent real builds; killing
//!   them would waste their work and leave their containers to clean up) and
//!   reports the rest as [`Status::Skipped`]. With [`Options::keep_going`] it
//!   runs everything not downstream of a failure. A caller that prefers to
//!   interrupt running tasks on the first failure can cancel the token from
//!   the [`Event::Failed`] callback;
//! - when the [`CancellationToken`] fires (Ctrl-C), starts nothing new,
//!   cancels each running task's child token, waits for every running task
//!   to return (the runner cleans up what it started) and reports
//!   [`Status::Cancelled`].
//!
//! A cycle or a dependency index out of range is a [`GraphError`] before
//! anything runs. The scheduling work is O((V + E) log V): every task enters
//! and leaves one priority queue once, and every edge is looked at a constant
//! number of times.
//!
//! Dropping the future returned by [`run`] aborts the running tasks without
//! giving them a chance to clean up; cancel the token and await it instead.

mod exec;
mod graph;
mod priority;
mod resources;
#[cfg(test)]
mod tests;

use futures_util::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

pub use exec::run;
pub use graph::GraphError;
pub use priority::priorities;

/// One unit of work in the DAG.
#[derive(Debug, Clone)]
pub struct Task {
    /// For messages only.
    pub name: String,
    /// Indices of the tasks that must succeed before this one starts.
    pub deps: Vec<usize>,
    /// Which limit the task counts against while it runs.
    pub class: Class,
    /// How long the task is expected to take (for instance its duration in
    /// an earlier run); `None` when unknown. Only orders ready tasks.
    pub estimate: Option<Duration>,
}

/// The resource a task holds while it runs. Each class has its own limit in
/// [`Limits`]; a task holds exactly one kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Local work in this process or a helper process (hashing, packing,
    /// converting). Takes one of the `jobs` slots, shared with [`Class::Engine`]:
    /// both keep cores busy. Kept apart from `Engine` so that callers and
    /// progress displays can tell them apart.
    Cpu,
    /// A container-engine build. Takes one of the `jobs` slots.
    Engine,
    /// Downloads and uploads. Takes one of the `io` slots.
    Io,
    /// Needs root-only devices (loop devices, mounts). Takes one of the
    /// `privileged` slots.
    Privileged,
    /// Boots a VM with this much RAM, taken from the `vm_ram_mib` budget.
    Vm { ram_mib: u64 },
}

/// Limits per resource class. A limit of 0 behaves as 1 (a task that needs
/// more than a whole limit runs alone in its class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Running [`Class::Cpu`] and [`Class::Engine`] tasks.
    pub jobs: usize,
    /// Running [`Class::Io`] tasks.
    pub io: usize,
    /// Running [`Class::Privileged`] tasks.
    pub privileged: usize,
    /// Sum of `ram_mib` over running [`Class::Vm`] tasks.
    pub vm_ram_mib: u64,
}

impl Default for Limits {
    /// `jobs` = available parallelism, 4 I/O slots, 1 privileged slot,
    /// 4 GiB of VM RAM.
    fn default() -> Self {
        Limits {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            io: 4,
            privileged: 1,
            vm_ram_mib: 4096,
        }
    }
}

/// How [`run`] behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub limits: Limits,
    /// Keep running everything not downstream of a failure, instead of
    /// starting nothing new after the first one.
    pub keep_going: bool,
}

/// Does the work of one task. The future must honour `cancel`: when it
/// fires, stop what the task started (containers, VMs) and return, usually
/// with an error.
///
/// Any `Fn(usize, CancellationToken) -> impl Future<Output = anyhow::Result<O>>`
/// closure is a runner.
pub trait Runner {
    /// What a successful task produces (for instance built or cached).
    type Output: Send + 'static;
    fn run(
        &self,
        ix: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<Self::Output>>;
}

impl<F, Fut, O> Runner for F
where
    F: Fn(usize, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<O>> + Send + 'static,
    O: Send + 'static,
{
    type Output = O;
    fn run(&self, ix: usize, cancel: CancellationToken) -> BoxFuture<'static, anyhow::Result<O>> {
        Box::pin(self(ix, cancel))
    }
}

/// Why a task did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A dependency failed; `failed` is the task that failed, a direct
    /// dependency or one further upstream.
    DepFailed { failed: usize },
    /// Without `keep_going`, task `failed` failed before this one could
    /// start.
    Stopped { failed: usize },
}

/// The end state of one task.
#[derive(Debug)]
pub enum Status<O> {
    /// The runner returned `Ok` (also when it did so after cancellation).
    Done {
        outcome: O,
        duration: Duration,
    },
    /// The runner returned an error (or panicked) before any cancellation.
    Failed {
        error: anyhow::Error,
        duration: Duration,
    },
    Skipped(Skip),
    /// The token fired. `interrupted` holds how long the task ran and the
    /// error it returned when it was running (the error may tell of a failed
    /// cleanup); `None` when it never started.
    Cancelled {
        interrupted: Option<(Duration, anyhow::Error)>,
    },
}

impl<O> Status<O> {
    pub fn is_done(&self) -> bool {
        matches!(self, Status::Done { .. })
    }
}

/// What happened, sent to the `events` callback of [`run`] as it happens.
/// Every task gets at most one `Started` and exactly one of the others.
#[derive(Debug)]
pub enum Event<'a, O> {
    Started {
        ix: usize,
    },
    Finished {
        ix: usize,
        outcome: &'a O,
        duration: Duration,
    },
    Failed {
        ix: usize,
        error: &'a anyhow::Error,
        duration: Duration,
    },
    Skipped {
        ix: usize,
        because: Skip,
    },
    Cancelled {
        ix: usize,
        interrupted: Option<(Duration, &'a anyhow::Error)>,
    },
}

/// The result of [`run`]: one status per task, in task order.
#[derive(Debug)]
pub struct Report<O> {
    pub tasks: Vec<Status<O>>,
    /// Failed tasks in the order they failed.
    pub failures: Vec<usize>,
    /// The cancellation token fired during the run.
    pub cancelled: bool,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl<O> Report<O> {
    /// Every task is [`Status::Done`].
    pub fn success(&self) -> bool {
        self.tasks.iter().all(Status::is_done)
    }

    /// The first task to fail and its error.
    pub fn first_failure(&self) -> Option<(usize, &anyhow::Error)> {
        self.failures.iter().find_map(|&ix| match &self.tasks[ix] {
            Status::Failed { error, .. } => Some((ix, error)),
            _ => None,
        })
    }
}
