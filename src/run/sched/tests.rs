//! Acceptance tests of the scheduler, numbered after its rules.
//!
//! No wall clock: simulated tasks wait for a release that the test's driver
//! sends on a virtual clock. The driver learns what runs from the events and
//! ends the running task(s) with the earliest virtual end time, then waits
//! for the scheduler to report them; on a current-thread runtime, by then
//! the scheduler has also started everything that became ready. Times below
//! are virtual milliseconds.

use super::graph::Graph;
use super::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn task(name: &str, deps: &[usize], class: Class, est_ms: Option<u64>) -> Task {
    Task {
        name: name.into(),
        deps: deps.to_vec(),
        class,
        estimate: est_ms.map(ms),
    }
}

fn cpu(name: &str, deps: &[usize]) -> Task {
    task(name, deps, Class::Cpu, None)
}

fn opts(jobs: usize) -> Options {
    Options {
        limits: Limits {
            jobs,
            io: 1,
            privileged: 1,
            vm_ram_mib: 1024,
        },
        keep_going: false,
    }
}

/// What a simulated task does.
#[derive(Clone, Copy)]
struct Spec {
    ms: u64,
    fail: bool,
    /// Return at once with an error when the token fires.
    honours_cancel: bool,
}

fn ok(ms: u64) -> Spec {
    Spec {
        ms,
        fail: false,
        honours_cancel: true,
    }
}

fn fails(ms: u64) -> Spec {
    Spec {
        fail: true,
        ..ok(ms)
    }
}

/// Resource use seen by the runner, from `run` until its future returns.
#[derive(Default, Debug)]
struct Usage {
    /// Current and peak use of jobs, io, privileged, VM RAM.
    cur: [u64; 4],
    max: [u64; 4],
    /// Tasks running at once, any class.
    total: u64,
    max_total: u64,
    /// Tasks whose token fired while they ran.
    saw_cancel: Vec<usize>,
    /// Tasks the runner was asked to run, in order.
    calls: Vec<usize>,
}

#[derive(Default)]
struct Shared {
    usage: Usage,
    release: HashMap<usize, oneshot::Sender<()>>,
}

fn pool(class: Class) -> (usize, u64) {
    match class {
        Class::Cpu | Class::Engine => (0, 1),
        Class::Io => (1, 1),
        Class::Privileged => (2, 1),
        Class::Vm { ram_mib } => (3, ram_mib),
    }
}

struct Sim {
    specs: Vec<Spec>,
    classes: Vec<Class>,
    shared: Arc<Mutex<Shared>>,
}

impl Runner for Sim {
    type Output = &'static str;
    fn run(
        &self,
        ix: usize,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<&'static str>> {
        let spec = self.specs[ix];
        let (p, need) = pool(self.classes[ix]);
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.shared.lock().unwrap();
            s.release.insert(ix, tx);
            let u = &mut s.usage;
            u.calls.push(ix);
            u.cur[p] += need;
            u.max[p] = u.max[p].max(u.cur[p]);
            u.total += 1;
            u.max_total = u.max_total.max(u.total);
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            let cancelled = tokio::select! {
                _ = rx => false,
                _ = cancel.cancelled(), if spec.honours_cancel => true,
            };
            let mut s = shared.lock().unwrap();
            s.usage.cur[p] -= need;
            s.usage.total -= 1;
            if cancelled {
                s.usage.saw_cancel.push(ix);
                anyhow::bail!("cancelled");
            }
            if spec.fail {
                anyhow::bail!("task {ix} failed");
            }
            Ok("built")
        })
    }
}

/// An event as the driver logs it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    Start(usize),
    Done(usize),
    Fail(usize),
    Skip(usize, Skip),
    /// `true` when the task was running.
    Cancel(usize, bool),
}

impl Ev {
    fn from(e: Event<'_, &'static str>) -> Ev {
        match e {
            Event::Started { ix } => Ev::Start(ix),
            Event::Finished { ix, outcome, .. } => {
                assert_eq!(*outcome, "built");
                Ev::Done(ix)
            }
            Event::Failed { ix, .. } => Ev::Fail(ix),
            Event::Skipped { ix, because } => Ev::Skip(ix, because),
            Event::Cancelled { ix, interrupted } => Ev::Cancel(ix, interrupted.is_some()),
        }
    }
}

/// The virtual clock.
struct Driver {
    specs: Vec<Spec>,
    now: u64,
    log: Vec<(u64, Ev)>,
    /// Running tasks by virtual end time.
    running: BTreeSet<(u64, usize)>,
    end: Vec<u64>,
    started: Vec<bool>,
    ended: Vec<bool>,
}

impl Driver {
    /// Logs an event at the current virtual time and checks that every
    /// task starts at most once and ends exactly once, after its start if
    /// it started.
    fn note(&mut self, ev: Ev) {
        self.log.push((self.now, ev));
        match ev {
            Ev::Start(ix) => {
                assert!(
                    !self.started[ix] && !self.ended[ix],
                    "{ev:?} again or after its end"
                );
                self.started[ix] = true;
                self.end[ix] = self.now + self.specs[ix].ms;
                self.running.insert((self.end[ix], ix));
            }
            Ev::Done(ix) | Ev::Fail(ix) | Ev::Cancel(ix, true) => {
                assert!(
                    self.started[ix] && !self.ended[ix],
                    "{ev:?} unstarted or again"
                );
                self.ended[ix] = true;
                self.running.remove(&(self.end[ix], ix));
            }
            Ev::Skip(ix, _) | Ev::Cancel(ix, false) => {
                assert!(
                    !self.started[ix] && !self.ended[ix],
                    "{ev:?} after a start or again"
                );
                self.ended[ix] = true;
            }
        }
    }

    async fn wait_until(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Ev>,
        done: impl Fn(&Driver) -> bool,
    ) {
        while !done(self) {
            let ev = rx.recv().await.expect("the scheduler ended early");
            self.note(ev);
        }
    }

    async fn drive(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Ev>,
        shared: Arc<Mutex<Shared>>,
        cancel: CancellationToken,
        mut cancel_at: Option<u64>,
    ) -> Vec<(u64, Ev)> {
        loop {
            while let Ok(ev) = rx.try_recv() {
                self.note(ev);
            }
            let Some(&(next, _)) = self.running.first() else {
                // Nothing runs: the scheduler has not started yet, or it
                // is done and the channel closes.
                match rx.recv().await {
                    Some(ev) => self.note(ev),
                    None => break,
                }
                continue;
            };
            if let Some(at) = cancel_at.filter(|&at| at < next) {
                self.now = at;
                cancel_at = None;
                cancel.cancel();
                // Honouring tasks return, unstarted ones are cancelled.
                let specs = self.specs.clone();
                self.wait_until(&mut rx, |d| {
                    (0..specs.len())
                        .all(|i| d.ended[i] || (d.started[i] && !specs[i].honours_cancel))
                })
                .await;
                continue;
            }
            self.now = next;
            let due: Vec<usize> = self
                .running
                .iter()
                .take_while(|(t, _)| *t == next)
                .map(|(_, ix)| *ix)
                .collect();
            for &ix in &due {
                let tx = shared.lock().unwrap().release.remove(&ix);
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }
            self.wait_until(&mut rx, |d| due.iter().all(|&ix| d.ended[ix]))
                .await;
        }
        assert!(
            self.ended.iter().all(|e| *e),
            "a task never ended: {:?}",
            self.log
        );
        self.log
    }
}

struct Run {
    report: Report<&'static str>,
    log: Vec<(u64, Ev)>,
    usage: Usage,
}

impl Run {
    /// Virtual time of an event.
    fn at(&self, ev: Ev) -> u64 {
        self.log
            .iter()
            .find(|(_, e)| *e == ev)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no {ev:?} in {:?}", self.log))
    }

    fn makespan(&self) -> u64 {
        self.log.last().map_or(0, |(t, _)| *t)
    }

    fn starts(&self) -> Vec<usize> {
        self.log
            .iter()
            .filter_map(|(_, e)| match e {
                Ev::Start(ix) => Some(*ix),
                _ => None,
            })
            .collect()
    }
}

/// Runs `tasks` on the virtual clock; the token fires at `cancel_at`.
async fn go(tasks: &[Task], specs: Vec<Spec>, o: Options, cancel_at: Option<u64>) -> Run {
    go_with(tasks, specs, o, CancellationToken::new(), cancel_at).await
}

async fn go_with(
    tasks: &[Task],
    specs: Vec<Spec>,
    o: Options,
    cancel: CancellationToken,
    cancel_at: Option<u64>,
) -> Run {
    assert_eq!(tasks.len(), specs.len());
    let n = tasks.len();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let sim = Sim {
        specs: specs.clone(),
        classes: tasks.iter().map(|t| t.class).collect(),
        shared: shared.clone(),
    };
    let driver = Driver {
        specs,
        now: 0,
        log: Vec::new(),
        running: BTreeSet::new(),
        end: vec![0; n],
        started: vec![false; n],
        ended: vec![false; n],
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let sched = run(tasks, &sim, o, cancel.clone(), move |e| {
        let _ = tx.send(Ev::from(e));
    });
    let (report, log) = tokio::join!(sched, driver.drive(rx, shared.clone(), cancel, cancel_at));
    let usage = std::mem::take(&mut shared.lock().unwrap().usage);
    Run {
        report: report.expect("a valid graph"),
        log,
        usage,
    }
}

// 1. No level barriers.
#[tokio::test]
async fn a_task_starts_when_its_own_deps_are_done() {
    // 0 is long; 1 → 2 → 3 is a chain beside it. Level by level, 2 would
    // wait for 0.
    let tasks = [
        cpu("long", &[]),
        cpu("a", &[]),
        cpu("b", &[1]),
        cpu("c", &[2]),
    ];
    let r = go(&tasks, vec![ok(100), ok(10), ok(10), ok(10)], opts(2), None).await;
    assert!(r.report.success());
    assert_eq!(r.at(Ev::Start(2)), 10);
    assert_eq!(r.at(Ev::Start(3)), 20);
    assert_eq!(r.at(Ev::Done(3)), 30);
    assert_eq!(r.at(Ev::Done(0)), 100);
    assert_eq!(r.makespan(), 100);
}

// 2. Limits.
#[tokio::test]
async fn jobs_limits_cpu_and_engine_tasks_together() {
    let tasks: Vec<Task> = (0..6)
        .map(|i| {
            let class = if i % 2 == 0 {
                Class::Cpu
            } else {
                Class::Engine
            };
            task(&format!("t{i}"), &[], class, None)
        })
        .collect();
    let r = go(&tasks, vec![ok(10); 6], opts(2), None).await;
    assert!(r.report.success());
    assert_eq!(r.usage.max[0], 2);
    assert_eq!(r.makespan(), 30);
}

#[tokio::test]
async fn each_class_has_its_own_limit() {
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(task(&format!("cpu{i}"), &[], Class::Cpu, None));
    }
    for i in 0..4 {
        tasks.push(task(&format!("io{i}"), &[], Class::Io, None));
    }
    for i in 0..2 {
        tasks.push(task(&format!("priv{i}"), &[], Class::Privileged, None));
    }
    let mut o = opts(1);
    o.limits.io = 2;
    let r = go(&tasks, vec![ok(10); tasks.len()], o, None).await;
    assert!(r.report.success());
    assert_eq!(r.usage.max[..3], [1, 2, 1]);
    // The classes ran side by side: 1 + 2 + 1 at once.
    assert_eq!(r.usage.max_total, 4);
    assert_eq!(r.makespan(), 30);
}

#[tokio::test]
async fn vms_share_the_ram_budget() {
    let vm = |n: &str, ram_mib| task(n, &[], Class::Vm { ram_mib }, None);
    let tasks = [vm("a", 2048), vm("b", 2048), vm("c", 3000), vm("d", 1000)];
    let mut o = opts(4);
    o.limits.vm_ram_mib = 4096;
    let r = go(&tasks, vec![ok(10); 4], o, None).await;
    assert!(r.report.success());
    assert_eq!(r.usage.max[3], 4096);
    // a + b, then c + d.
    assert_eq!(r.at(Ev::Start(3)), 10);
    assert_eq!(r.makespan(), 20);
}

#[tokio::test]
async fn a_task_bigger_than_its_limit_runs_alone() {
    let vm = |n: &str, ram_mib| task(n, &[], Class::Vm { ram_mib }, Some(10));
    let mut tasks = vec![vm("small", 512), vm("huge", 8192), vm("small2", 512)];
    // The huge one has the longest path, so it goes first.
    tasks[1].estimate = Some(ms(100));
    let mut o = opts(1);
    o.limits.vm_ram_mib = 1024;
    let r = go(&tasks, vec![ok(10); 3], o, None).await;
    assert!(r.report.success());
    // Nothing ran beside the huge VM; the small ones then ran together.
    assert_eq!(r.usage.max[3], 8192);
    assert_eq!(r.at(Ev::Start(0)), 10);
    assert_eq!(r.at(Ev::Start(2)), 10);

    // Limits of zero behave as one.
    let tasks = [
        cpu("a", &[]),
        cpu("b", &[]),
        task("c", &[], Class::Io, None),
    ];
    let mut o = opts(0);
    o.limits.io = 0;
    let r = go(&tasks, vec![ok(10); 3], o, None).await;
    assert!(r.report.success());
    assert_eq!(r.usage.max[..2], [1, 1]);
}

// 3. Priority.
#[tokio::test]
async fn ready_tasks_start_by_longest_remaining_path() {
    // Paths: 0 = 1, 1 → 2 = 1 + 10, 2 = 10, 3 = 5.
    let tasks = [
        task("sink", &[], Class::Cpu, Some(1)),
        task("head", &[], Class::Cpu, Some(1)),
        task("tail", &[1], Class::Cpu, Some(10)),
        task("mid", &[], Class::Cpu, Some(5)),
    ];
    assert_eq!(
        priorities(&tasks).unwrap(),
        vec![ms(1), ms(11), ms(10), ms(5)]
    );
    let r = go(&tasks, vec![ok(1); 4], opts(1), None).await;
    assert_eq!(r.starts(), vec![1, 2, 3, 0]);
}

#[tokio::test]
async fn equal_priorities_start_in_index_order() {
    let tasks: Vec<Task> = (0..5).map(|i| cpu(&format!("t{i}"), &[])).collect();
    let r = go(&tasks, vec![ok(1); 5], opts(1), None).await;
    assert_eq!(r.starts(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn unknown_estimates_default_to_the_median() {
    let tasks = [
        task("a", &[], Class::Cpu, Some(1)),
        task("b", &[], Class::Cpu, Some(100)),
        task("c", &[], Class::Cpu, Some(3)),
        task("d", &[2], Class::Cpu, None),
    ];
    assert_eq!(
        priorities(&tasks).unwrap(),
        vec![ms(1), ms(100), ms(6), ms(3)]
    );
    // No estimate at all: every task weighs the same.
    let tasks = [cpu("a", &[]), cpu("b", &[0]), cpu("c", &[1]), cpu("d", &[])];
    let p = priorities(&tasks).unwrap();
    assert_eq!(p[0], 3 * p[3]);
    assert_eq!(p[1], 2 * p[3]);
}

// 4. Failures.
fn failure_graph() -> Vec<Task> {
    vec![
        task("fails", &[], Class::Cpu, Some(10)),
        task("long", &[], Class::Cpu, Some(100)),
        task("after-fail", &[0], Class::Cpu, Some(10)),
        task("other", &[], Class::Cpu, Some(10)),
        task("after-after", &[2], Class::Cpu, Some(10)),
    ]
}

#[tokio::test]
async fn the_first_failure_stops_new_starts_and_running_tasks_finish() {
    let tasks = failure_graph();
    let specs = vec![fails(10), ok(100), ok(10), ok(10), ok(10)];
    let r = go(&tasks, specs, opts(2), None).await;
    let t = &r.report.tasks;
    assert!(matches!(t[0], Status::Failed { .. }));
    assert!(t[1].is_done());
    assert!(matches!(
        t[2],
        Status::Skipped(Skip::DepFailed { failed: 0 })
    ));
    assert!(matches!(t[3], Status::Skipped(Skip::Stopped { failed: 0 })));
    assert!(matches!(
        t[4],
        Status::Skipped(Skip::DepFailed { failed: 0 })
    ));
    assert_eq!(r.report.failures, vec![0]);
    assert_eq!(r.report.first_failure().map(|f| f.0), Some(0));
    assert!(!r.report.success() && !r.report.cancelled);
    assert_eq!(r.starts(), vec![1, 0]);
    // Skips are reported at the failure; the running task still finishes.
    assert_eq!(r.at(Ev::Skip(3, Skip::Stopped { failed: 0 })), 10);
    assert_eq!(r.at(Ev::Done(1)), 100);
}

#[tokio::test]
async fn keep_going_runs_everything_not_downstream_of_a_failure() {
    let tasks = failure_graph();
    let specs = vec![fails(10), ok(100), ok(10), ok(10), ok(10)];
    let mut o = opts(2);
    o.keep_going = true;
    let r = go(&tasks, specs, o, None).await;
    let t = &r.report.tasks;
    assert!(
        matches!(t[0], Status::Failed { ref error, .. } if error.to_string() == "task 0 failed")
    );
    assert!(t[1].is_done() && t[3].is_done());
    assert!(matches!(
        t[2],
        Status::Skipped(Skip::DepFailed { failed: 0 })
    ));
    assert!(matches!(
        t[4],
        Status::Skipped(Skip::DepFailed { failed: 0 })
    ));
    assert_eq!(r.at(Ev::Done(3)), 20);
    assert_eq!(r.makespan(), 100);
}

#[tokio::test]
async fn a_panicking_task_fails() {
    let tasks = [cpu("boom", &[]), cpu("after", &[0])];
    let runner = |ix: usize, _c: CancellationToken| async move {
        if ix == 0 {
            panic!("kaboom");
        }
        Ok(())
    };
    let report = run(&tasks, &runner, opts(1), CancellationToken::new(), |_| {})
        .await
        .unwrap();
    match &report.tasks[0] {
        Status::Failed { error, .. } => assert!(error.to_string().contains("kaboom"), "{error}"),
        s => panic!("{s:?}"),
    }
    assert!(matches!(
        report.tasks[1],
        Status::Skipped(Skip::DepFailed { failed: 0 })
    ));

    // Also when building the future panics.
    let runner = |_ix: usize, _c: CancellationToken| -> std::future::Ready<anyhow::Result<()>> {
        panic!("early")
    };
    let report = run(&tasks, &runner, opts(1), CancellationToken::new(), |_| {})
        .await
        .unwrap();
    assert!(
        matches!(&report.tasks[0], Status::Failed { error, .. } if error.to_string().contains("early"))
    );
}

// 5. Cancellation.
#[tokio::test]
async fn cancellation_reaches_running_tasks_and_starts_nothing_new() {
    let tasks = [
        task("honours", &[], Class::Cpu, Some(300)),
        task("ignores", &[], Class::Cpu, Some(300)),
        task("after", &[0], Class::Cpu, Some(10)),
        task("queued", &[], Class::Cpu, Some(10)),
    ];
    let mut specs = vec![ok(300), ok(300), ok(10), ok(10)];
    specs[1].honours_cancel = false;
    let r = go(&tasks, specs, opts(2), Some(50)).await;
    let t = &r.report.tasks;
    assert!(r.report.cancelled);
    match &t[0] {
        Status::Cancelled {
            interrupted: Some((_, e)),
        } => assert_eq!(e.to_string(), "cancelled"),
        s => panic!("{s:?}"),
    }
    // It ignored its token: the scheduler waited for it.
    assert!(t[1].is_done());
    assert_eq!(r.at(Ev::Done(1)), 300);
    assert!(matches!(t[2], Status::Cancelled { interrupted: None }));
    assert!(matches!(t[3], Status::Cancelled { interrupted: None }));
    assert_eq!(r.usage.saw_cancel, vec![0]);
    assert_eq!(r.usage.calls, vec![0, 1]);
    assert_eq!(r.at(Ev::Cancel(0, true)), 50);
    assert_eq!(r.at(Ev::Cancel(3, false)), 50);
}

#[tokio::test]
async fn a_cancelled_token_runs_nothing() {
    let tasks = [cpu("a", &[]), cpu("b", &[0])];
    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = go_with(&tasks, vec![ok(1); 2], opts(1), cancel, None).await;
    assert!(r.report.cancelled);
    assert!(r.usage.calls.is_empty());
    assert!(r
        .report
        .tasks
        .iter()
        .all(|s| matches!(s, Status::Cancelled { interrupted: None })));
}

#[tokio::test]
async fn after_a_failure_a_cancellation_still_reaches_running_tasks() {
    let tasks = failure_graph();
    let specs = vec![fails(10), ok(100), ok(10), ok(10), ok(10)];
    let r = go(&tasks, specs, opts(2), Some(50)).await;
    assert!(r.report.cancelled);
    assert_eq!(r.report.failures, vec![0]);
    assert!(matches!(
        r.report.tasks[1],
        Status::Cancelled {
            interrupted: Some(_)
        }
    ));
    assert!(matches!(
        r.report.tasks[3],
        Status::Skipped(Skip::Stopped { failed: 0 })
    ));
    assert_eq!(r.makespan(), 50);
}

// 6. Events: every run above checks through `Driver::note` that each task
// starts at most once and ends exactly once, after its start.

// 7. Graph errors.
#[tokio::test]
async fn cycles_and_bad_indices_are_errors_before_anything_runs() {
    let never =
        |_ix: usize, _c: CancellationToken| async { Err::<(), _>(anyhow::anyhow!("ran a task")) };
    let cases: Vec<(Vec<Task>, &str)> = vec![
        (
            vec![cpu("a", &[]), cpu("b", &[0, 5])],
            "task 1 (b) depends on task 5, but there are only 2 tasks",
        ),
        (
            vec![
                cpu("ok", &[]),
                cpu("a", &[3]),
                cpu("b", &[1]),
                cpu("c", &[2, 0]),
            ],
            "dependency cycle: a → c → b → a (each depends on the next)",
        ),
        (
            vec![cpu("self", &[0])],
            "dependency cycle: self → self (each depends on the next)",
        ),
    ];
    for (tasks, msg) in cases {
        let err = run(&tasks, &never, opts(1), CancellationToken::new(), |e| {
            panic!("{e:?} before the graph was checked")
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), msg);
        assert_eq!(priorities(&tasks).unwrap_err(), err);
    }
    let err = Graph::new(&[cpu("a", &[1]), cpu("b", &[0])]).unwrap_err();
    assert!(matches!(err, GraphError::Cycle { ref tasks, .. } if tasks == &[0, 1]));
}

// 8. Scale: many tasks and edges in one run (no timing asserted; the
// benchmark measures the cost per task).
#[tokio::test]
async fn a_large_graph_completes() {
    let n = 20_000;
    let tasks: Vec<Task> = (0..n)
        .map(|i| {
            let deps = match i {
                0 => vec![],
                _ if i % 100 == 0 => (i - 100..i).collect(),
                _ => vec![i - i % 100],
            };
            cpu(&format!("t{i}"), &deps)
        })
        .collect();
    let runner = |_ix: usize, _c: CancellationToken| async { Ok(()) };
    let mut done = 0;
    let report = run(&tasks, &runner, opts(2), CancellationToken::new(), |e| {
        if matches!(e, Event::Finished { .. }) {
            done += 1;
        }
    })
    .await
    .unwrap();
    assert!(report.success());
    assert_eq!(done, n);
}

#[tokio::test]
async fn no_tasks() {
    let runner = |_ix: usize, _c: CancellationToken| async { Ok(()) };
    let report = run(&[], &runner, opts(1), CancellationToken::new(), |_| {})
        .await
        .unwrap();
    assert!(report.success() && report.tasks.is_empty());
}

/// The CLI spawns the run: its future must be `Send` for a `Sync` runner
/// and a `Send` callback.
#[allow(dead_code)]
fn the_run_future_is_send(tasks: &[Task], runner: &(dyn Runner<Output = u8> + Sync)) {
    fn send<T: Send>(_: T) {}
    send(run(
        tasks,
        runner,
        opts(1),
        CancellationToken::new(),
        |_| {},
    ));
}
