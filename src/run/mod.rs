//! `ov build`: run the selected part of the plan on the scheduler, each
//! node through [`node::run`] (key, look up, run on a miss, record).
//!
//! Owns the run's shared state (outputs as they arrive, the store, the
//! lazily connected engine, counters) and the run's lifetime: Ctrl-C
//! cancels the scheduler, and the containers this run started are removed
//! before ov exits, as are those of earlier runs whose process is gone.

pub mod progress;
pub mod sched;

pub mod calver;
mod claim;
pub mod collect;
mod debris;
pub mod image_cache;
pub mod node;
mod owned;
pub mod record;
pub mod remote;
mod tags;

use crate::plan::keys;
use crate::run::progress::{Mode, Progress, Summary};
use crate::workspace::{Dirs, Planned};
use anyhow::Context as _;
use node::Done;
use ov_cache::Store;
use ov_rules::engine::{Engine, EnginePlatform};
use ov_rules::images::ImageSnapshot;
use ov_rules::rule::{ContainerEngine, EngineQuirks, NodeOutput, ResourceClass};
use ov_rules::NodeKind;
use petgraph::graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// What `ov build` was asked.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Concurrent engine jobs.
    pub jobs: usize,
    /// Keep building independent nodes after a failure.
    pub keep_going: bool,
    /// Progress display.
    pub progress: Mode,
    /// Engine endpoint.
    pub endpoint: String,
    /// Nodes to run even when cached (`--refresh`).
    pub refresh: Vec<String>,
    /// How cached nodes' images are checked in the engine.
    pub image_check: ImageCheck,
    /// RAM the build's VM boots may hold at once, in MiB.
    pub vm_ram_mib: u64,
    /// An OCI registry that caches images (`--image-cache`).
    pub image_cache: Option<Arc<image_cache::ImageCache>>,
    /// The remote cache, if any.
    pub remote: Option<remote::RemoteOptions>,
    /// Where the plan came from (said in the summary).
    pub plan: progress::PlanSource,
}

/// How a build checks that cached nodes' images are still in the engine
/// (the `engine.image_check` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageCheck {
    /// One list of every image where that is cheap, else one check per
    /// node: podman before 5 lists slowly (see `ov_rules::ping`).
    #[default]
    Auto,
    /// Always one list of every image (at most 3 engine calls per no-op).
    List,
    /// Always one inspect per cached node.
    Each,
}

impl std::str::FromStr for ImageCheck {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ImageCheck::Auto),
            "list" => Ok(ImageCheck::List),
            "each" => Ok(ImageCheck::Each),
            other => Err(format!(
                "engine.image_check: `{other}` is not one of auto, list, each"
            )),
        }
    }
}

/// State every node task shares.
pub struct Shared {
    /// The planned project (shared with the thread that saves it).
    pub ws: Arc<Planned>,
    /// Layer name → directory label, for keys.
    pub dirs: HashMap<String, String>,
    /// The local store.
    pub store: Arc<Store>,
    /// Outputs by node index, filled as nodes finish.
    pub outputs: Mutex<Vec<Option<NodeOutput>>>,
    /// Keys and their ingredients as this run computed them, by node index.
    pub run_keys: Mutex<Vec<Option<(ov_cache::NodeKey, ov_rules::Manifest)>>>,
    /// Nodes to run even when cached.
    pub refresh: HashSet<NodeIndex>,
    /// This run's id (`<pid>-<start ms>`), stamped on its containers.
    pub run_id: String,
    /// This run's scratch directory.
    pub scratch: PathBuf,
    /// Where VM instances keep their state.
    pub vm_state: PathBuf,
    /// Where downloads keep partial files between runs.
    pub downloads: PathBuf,
    /// The cache dir cannot be written: look results up, record nothing.
    pub read_only: bool,
    /// Rendering choices for the engine that answered.
    pub quirks: EngineQuirks,
    /// This run's calver, which `tag: auto` images are tagged with.
    pub calver: String,
    /// The display.
    pub progress: Arc<Progress>,
    /// Builds and imports started.
    pub engine_builds: AtomicUsize,
    /// Images of hits loaded back from their OCI parts.
    pub images_restored: AtomicUsize,
    /// Recorded durations of cached nodes.
    pub saved_ms: AtomicU64,
    /// Engine calls spent removing what dead runs left (not this build's
    /// own cost, so not in `engine_calls`).
    pub cleanup_calls: AtomicUsize,
    /// The OCI registry caching images, if any.
    pub image_cache: Option<Arc<image_cache::ImageCache>>,
    /// The engine's images when the build started (after the cleanup of
    /// dead runs); unset when the engine could not list them.
    pub images: OnceLock<ImageSnapshot>,
    /// The remote cache, when one is set.
    pub remote: Option<remote::Remote>,
    connect: EngineSource,
    image_check: ImageCheck,
    engine: OnceCell<Arc<dyn ContainerEngine>>,
    platform: OnceCell<EnginePlatform>,
}

/// Where a build's engine comes from.
#[derive(Clone)]
pub enum EngineSource {
    /// Connect to this endpoint on first use.
    Connect(String),
    /// This engine (a fake, in tests of the build's logic).
    Given(Arc<dyn ContainerEngine>),
}

impl Shared {
    /// The engine, connected once and shared by every node. (Each build
    /// connects at its start anyway, to remove the containers of runs that
    /// were killed.)
    pub async fn engine(&self) -> Result<Arc<dyn ContainerEngine>, ov_rules::engine::EngineError> {
        self.engine
            .get_or_try_init(|| async {
                match &self.connect {
                    EngineSource::Connect(endpoint) => Engine::connect(endpoint)
                        .await
                        .map(|e| Arc::new(e) as Arc<dyn ContainerEngine>),
                    EngineSource::Given(engine) => Ok(engine.clone()),
                }
            })
            .await
            .cloned()
    }

    /// The engine's platform, which keys engine nodes: asked once per
    /// build, and remembered in the store for `--dry-run`'s predictions.
    pub async fn platform(&self) -> Result<EnginePlatform, ov_rules::engine::EngineError> {
        self.platform
            .get_or_try_init(|| async {
                let p = self.engine().await?.platform().await?;
                if !self.read_only {
                    let (store, q) = (self.store.clone(), p.clone());
                    let kept =
                        tokio::task::spawn_blocking(move || keys::remember_platform(&store, &q))
                            .await;
                    if let Ok(Err(e)) = kept {
                        self.progress
                            .warn(&format!("could not remember the engine's platform: {e}"));
                    }
                }
                Ok(p)
            })
            .await
            .cloned()
    }

    fn set_output(&self, ix: NodeIndex, out: NodeOutput) {
        let mut o = match self.outputs.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        o[ix.index()] = Some(out);
    }
}

/// What a build did.
pub struct Outcome {
    /// The closing figures.
    pub summary: Summary,
    /// True when Ctrl-C stopped it.
    pub interrupted: bool,
    /// Node by node, in the order of `order`.
    pub record: record::RunRecord,
    /// The run's shared state (its workspace, the keys it computed), for
    /// pictures of what it did.
    pub shared: Arc<Shared>,
    /// The selected nodes, in the order they were scheduled.
    pub order: Vec<NodeIndex>,
}

/// Refuses, before anything runs, a build whose VM boots ask for more RAM
/// than the budget: the scheduler would otherwise start such a boot alone
/// and let it take the host's memory.
fn refuse_over_budget(ws: &Planned, order: &[NodeIndex], budget: u64) -> anyhow::Result<()> {
    for ix in order {
        let node = &ws.plan.graph[*ix];
        if let ResourceClass::Vm { ram_mib } = node.spec.resources() {
            if ram_mib > budget {
                return Err(crate::commands::bad_input(format!(
                    "{}: the VM asks for {ram_mib} MiB of RAM, more than the {budget} MiB VM \
                     budget; lower its `ram`, or raise the budget (`ov settings set \
                     vm.ram_budget 8G` or OV_VM_RAM_BUDGET)",
                    node.id
                )));
            }
        }
    }
    Ok(())
}

/// The scheduler's class for a rule's resource class.
fn class(resources: ResourceClass) -> sched::Class {
    match resources {
        ResourceClass::Cpu => sched::Class::Cpu,
        ResourceClass::Engine => sched::Class::Engine,
        ResourceClass::Io => sched::Class::Io,
        ResourceClass::Privileged => sched::Class::Privileged,
        ResourceClass::Vm { ram_mib } => sched::Class::Vm { ram_mib },
    }
}

/// Runs the build of `targets` (everything when empty) on the engine at
/// `opts.endpoint`; Ctrl-C cancels it.
pub fn run(
    ws: Arc<Planned>,
    dirs: &Dirs,
    targets: &[String],
    opts: &BuildOptions,
) -> anyhow::Result<Outcome> {
    let engine = EngineSource::Connect(opts.endpoint.clone());
    run_on(ws, dirs, targets, opts, engine, Cancel::CtrlC)
}

/// What cancels a build.
#[derive(Clone)]
pub enum Cancel {
    /// Ctrl-C.
    CtrlC,
    /// This token (tests).
    Token(CancellationToken),
}

/// [`run`] on the engine `engine`, cancelled by `cancel`.
pub fn run_on(
    ws: Arc<Planned>,
    dirs: &Dirs,
    targets: &[String],
    opts: &BuildOptions,
    engine: EngineSource,
    cancel: Cancel,
) -> anyhow::Result<Outcome> {
    let order = ws.plan.select(targets)?;
    refuse_over_budget(&ws, &order, opts.vm_ram_mib)?;
    let store = match Store::open(&dirs.cache.join("store")) {
        Ok(store) => Arc::new(store),
        Err(e) if e.io_error().is_some_and(read_only) => anyhow::bail!(
            "the cache dir {} is read-only and holds no store yet ({e}); make it writable, \
             or point --cache-dir (or OV_CACHE_DIR) at a writable folder",
            dirs.cache.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("opening the store in {}", dirs.cache.display()))
        }
    };
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let run_id = format!("{}-{started_ms}", std::process::id());
    let (scratch, read_only_cause) = scratch_dir(&dirs.cache, &run_id)?;
    // A misspelt --refresh is bad input (exit 2), like a misspelt target.
    let refresh = ws.plan.refresh_set(&opts.refresh)?;
    let n = ws.plan.graph.node_count();
    let progress = Arc::new(Progress::new(opts.progress));
    let remote = opts.remote.as_ref().map(remote::Remote::new).transpose()?;
    if let Some(cause) = &read_only_cause {
        // As Bazel does with a read-only disk cache: use it, write nothing.
        progress.warn(&format!(
            "the cache dir {} is read-only ({cause}): cached results are used, \
             but nothing this build runs is recorded",
            dirs.cache.display()
        ));
    }
    let shared = Arc::new(Shared {
        dirs: keys::source_dirs(&ws.plan),
        ws,
        store: store.clone(),
        outputs: Mutex::new(vec![None; n]),
        run_keys: Mutex::new(vec![None; n]),
        refresh,
        run_id: run_id.clone(),
        scratch: scratch.clone(),
        vm_state: dirs.state.join("vm"),
        downloads: dirs.cache.join("downloads"),
        read_only: read_only_cause.is_some(),
        quirks: EngineQuirks::for_build(),
        calver: calver::now(),
        progress: progress.clone(),
        engine_builds: AtomicUsize::new(0),
        images_restored: AtomicUsize::new(0),
        image_cache: opts.image_cache.clone(),
        platform: OnceCell::new(),
        saved_ms: AtomicU64::new(0),
        images: OnceLock::new(),
        remote,
        cleanup_calls: AtomicUsize::new(0),
        connect: engine,
        image_check: opts.image_check,
        engine: OnceCell::new(),
    });
    // Tasks, indexed like `order`.
    let pos: HashMap<NodeIndex, usize> = order.iter().enumerate().map(|(i, ix)| (*ix, i)).collect();
    let history = store.durations();
    let g = &shared.ws.plan.graph;
    let tasks: Vec<sched::Task> = order
        .iter()
        .map(|ix| sched::Task {
            name: g[*ix].id.clone(),
            deps: g
                .neighbors_directed(*ix, petgraph::Direction::Incoming)
                .filter_map(|d| pos.get(&d).copied())
                .collect(),
            class: class(g[*ix].spec.resources()),
            estimate: history.get(&g[*ix].id).map(|ms| Duration::from_millis(*ms)),
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = Instant::now();
    let (cancel, ctrl_c) = match cancel {
        Cancel::CtrlC => (CancellationToken::new(), true),
        Cancel::Token(t) => (t, false),
    };
    let runner = {
        let shared = shared.clone();
        let order = order.clone();
        move |i: usize, cancel: CancellationToken| {
            let sh = shared.clone();
            let ix = order[i];
            async move { node::run(sh, ix, cancel).await.map_err(anyhow::Error::from) }
        }
    };
    let limits = sched::Limits {
        jobs: opts.jobs.max(1),
        io: 8,
        privileged: 1,
        vm_ram_mib: opts.vm_ram_mib,
    };
    let mut summary = Summary {
        plan: opts.plan,
        ..Summary::default()
    };
    let mut nodes: Vec<record::NodeRun> = order
        .iter()
        .map(|ix| record::NodeRun {
            id: g[*ix].id.clone(),
            ..Default::default()
        })
        .collect();
    let report = rt.block_on(async {
        if ctrl_c {
            let c = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    c.cancel();
                }
            });
        }
        // The image list is the slow call of a no-op; it goes alongside the
        // cleanup, and is taken again only if the cleanup removed images.
        let listing = list_images(&shared);
        let (removed_images, mut images) = tokio::join!(clean_dead_runs(&shared, dirs), listing);
        if removed_images {
            images = list_images(&shared).await;
        }
        if let Some(images) = images {
            let _ = shared.images.set(images);
        }
        let p = progress.clone();
        let est: Vec<Option<Duration>> = tasks.iter().map(|t| t.estimate).collect();
        let node = |ix: usize| &g[order[ix]];
        let summary = &mut summary;
        let nodes = &mut nodes;
        let at = |started: Instant| started.elapsed().as_millis() as u64;
        let report = sched::run(
            &tasks,
            &runner,
            sched::Options {
                limits,
                keep_going: opts.keep_going,
            },
            cancel.clone(),
            |e: sched::Event<'_, Done>| match e {
                sched::Event::Started { ix } => {
                    nodes[ix].start_ms = at(started);
                    if node(ix).kind() != NodeKind::Source {
                        p.started(&node(ix).id, node(ix).kind().as_str(), est[ix])
                    }
                }
                sched::Event::Finished {
                    ix,
                    outcome,
                    duration,
                } => {
                    let ending = match outcome {
                        Done::Built => {
                            summary.built += 1;
                            record::Ending::Built
                        }
                        Done::Cached => {
                            summary.cached_local += 1;
                            record::Ending::Cached
                        }
                        Done::Remote => {
                            summary.cached_remote += 1;
                            record::Ending::Remote
                        }
                        Done::Checked => record::Ending::Checked,
                    };
                    nodes[ix].ending = Some(ending);
                    nodes[ix].end_ms = at(started);
                    if node(ix).kind() != NodeKind::Source {
                        p.finished(&node(ix).id, outcome.word(), duration);
                    }
                }
                sched::Event::Failed { ix, error, .. } => {
                    summary.failed += 1;
                    nodes[ix].ending = Some(record::Ending::Failed);
                    nodes[ix].end_ms = at(started);
                    nodes[ix].message = format!("{error:#}").lines().next().map(str::to_string);
                    let output = error
                        .downcast_ref::<node::Failure>()
                        .map(|f| f.output.as_str())
                        .unwrap_or_default();
                    p.failed(&node(ix).id, &format!("{error:#}"), output);
                }
                sched::Event::Skipped { ix, because } => {
                    summary.skipped += 1;
                    let (sched::Skip::DepFailed { failed } | sched::Skip::Stopped { failed }) =
                        because;
                    let why = match because {
                        sched::Skip::DepFailed { .. } => format!("{} failed", node(failed).id),
                        sched::Skip::Stopped { .. } => {
                            format!(
                                "stopped after {} failed (use --keep-going to go on)",
                                node(failed).id
                            )
                        }
                    };
                    p.skipped(&node(ix).id, &why);
                    nodes[ix].ending = Some(record::Ending::Skipped);
                    nodes[ix].message = Some(why);
                }
                sched::Event::Cancelled { .. } => summary.skipped += 1,
            },
        )
        .await;
        summary.remote = remote::finish(&shared).await;
        // Whatever happened, no container of this run outlives it, and no
        // image it tagged but never recorded.
        let mut clean = true;
        if let Some(engine) = shared.engine.get() {
            if engine.containers_created() > 0 {
                clean &= engine.remove_run_containers(Some(&run_id)).await.is_ok();
            }
            let keys = debris::journaled(&scratch);
            if !keys.is_empty() {
                let keep = live_journals(dirs, &run_id);
                clean &= debris::sweep(&**engine, &store, &keys, &keep).await.is_ok();
            }
        }
        (report, clean)
    });
    let (report, clean) = report;
    if clean {
        let _ = std::fs::remove_dir_all(&scratch);
    } else {
        // The next build finishes the cleanup from the journal.
        debris::keep_only_journal(&scratch);
    }
    report.context("scheduling the build")?;
    summary.engine_builds = shared.engine_builds.load(Ordering::Relaxed);
    summary.images_restored = shared.images_restored.load(Ordering::Relaxed);
    summary.time_saved_ms = shared.saved_ms.load(Ordering::Relaxed);
    summary.cleanup_calls = shared.cleanup_calls.load(Ordering::Relaxed);
    summary.engine_calls = shared
        .engine
        .get()
        .map_or(0, |e| e.calls())
        .saturating_sub(summary.cleanup_calls);
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    progress.summary(&summary);
    let record = finish_record(
        &shared,
        &order,
        nodes,
        started_ms as u64,
        summary.elapsed_ms,
    );
    if !shared.read_only {
        if let Err(e) = record.save(&dirs.state) {
            progress.warn(&format!(
                "could not keep this run's record in {}: {e}",
                dirs.state.display()
            ));
        }
    }
    Ok(Outcome {
        summary,
        interrupted: cancel.is_cancelled(),
        record,
        shared,
        order,
    })
}

/// Adds to each node's run its key and what its result keeps in the store.
fn finish_record(
    sh: &Shared,
    order: &[NodeIndex],
    mut nodes: Vec<record::NodeRun>,
    started_unix_ms: u64,
    elapsed_ms: u64,
) -> record::RunRecord {
    let keys = sh.run_keys.lock().map(|k| k.clone()).unwrap_or_default();
    for (run, ix) in nodes.iter_mut().zip(order) {
        let Some((key, _)) = keys.get(ix.index()).and_then(Option::as_ref) else {
            continue;
        };
        run.key = Some(key.to_string());
        if matches!(
            run.ending,
            Some(record::Ending::Built | record::Ending::Cached | record::Ending::Remote)
        ) {
            if let Ok(ov_cache::Lookup::Hit(r)) = sh.store.get_action(key) {
                run.bytes = Some(r.blobs.iter().map(|b| b.size).sum());
            }
        }
    }
    record::RunRecord {
        project: sh.ws.root.clone(),
        started_unix_ms,
        elapsed_ms,
        nodes,
    }
}

/// Whether an I/O error says the cache dir cannot be written to at all.
pub(crate) fn read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
    )
}

/// This run's scratch folder, created: in the cache dir, or in the system's
/// temp dir when the cache dir is read-only (then with the reason, and the
/// run records nothing).
fn scratch_dir(cache: &Path, run_id: &str) -> anyhow::Result<(PathBuf, Option<std::io::Error>)> {
    let scratch = cache.join("tmp").join(run_id);
    match std::fs::create_dir_all(&scratch) {
        Ok(()) => Ok((scratch, None)),
        Err(e) if read_only(&e) => {
            let elsewhere = std::env::temp_dir().join(format!("ov-{run_id}"));
            std::fs::create_dir_all(&elsewhere)
                .with_context(|| format!("creating {}", elsewhere.display()))?;
            Ok((elsewhere, Some(e)))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", scratch.display())),
    }
}

/// The engine's images, asked twice (podman's list fails when an image
/// goes while it lists); `None`, said as a warning, when both fail, and
/// then nodes are checked one by one.
async fn list_images(sh: &Shared) -> Option<ImageSnapshot> {
    let engine = sh.engine().await.ok()?;
    let list = match sh.image_check {
        ImageCheck::List => true,
        ImageCheck::Each => false,
        ImageCheck::Auto => engine.cheap_image_list(),
    };
    if !list {
        return None;
    }
    let mut last = None;
    for _ in 0..2 {
        match engine.images().await {
            Ok(images) => return Some(images),
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        sh.progress.warn(&format!(
            "could not list the engine's images ({e}); checking cached nodes one by one"
        ));
    }
    None
}

/// True when the process of run `run` (`<pid>-<ms>`) still lives.
pub(super) fn alive(run: &str) -> bool {
    run.split('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(ov_cache::process_alive)
}

/// The keys journaled by the other live runs on this cache dir.
fn live_journals(dirs: &Dirs, me: &str) -> HashSet<ov_cache::NodeKey> {
    let Ok(entries) = std::fs::read_dir(dirs.cache.join("tmp")) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != me && alive(&name)
        })
        .flat_map(|e| debris::journaled(&e.path()))
        .collect()
}

/// Removes what earlier runs whose process is gone left (a `kill -9` of
/// ov, or an engine that went away under it): their containers, the image
/// tags they journaled but never recorded, and their scratch dirs. Runs of
/// live processes are left alone, so two builds on one machine do not trip
/// over each other. True when it removed image tags.
async fn clean_dead_runs(sh: &Shared, dirs: &Dirs) -> bool {
    // VM boots of builds that were killed: their guests still run.
    let vm_state = sh.vm_state.clone();
    let _ = tokio::task::spawn_blocking(move || ov_rules::rule::boot::sweep_dead(&vm_state)).await;
    let engine = sh.engine().await.ok();
    if let Some(engine) = &engine {
        if let Ok(runs) = engine.run_ids().await {
            // Listing is every build's own cost; removing is cleanup.
            let before = engine.calls();
            for r in runs.into_iter().filter(|r| !alive(r)) {
                let _ = engine.remove_run_containers(Some(&r)).await;
            }
            sh.cleanup_calls
                .fetch_add(engine.calls() - before, Ordering::Relaxed);
        }
    }
    let Ok(entries) = std::fs::read_dir(dirs.cache.join("tmp")) else {
        return false;
    };
    let dead: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != sh.run_id && !alive(&name)
        })
        .map(|e| e.path())
        .collect();
    if dead.is_empty() {
        return false;
    }
    let keep = live_journals(dirs, &sh.run_id);
    let mut removed = false;
    for dir in dead {
        // Its containers are gone; a disk it was building may still hold
        // a loop device on a file in its scratch dir.
        ov_rules::rule::disk::loops::release_under(&dir);
        let keys = debris::journaled(&dir);
        if !keys.is_empty() {
            let Some(engine) = &engine else { continue };
            let before = engine.calls();
            let swept = debris::sweep(&**engine, &sh.store, &keys, &keep).await;
            sh.cleanup_calls
                .fetch_add(engine.calls() - before, Ordering::Relaxed);
            match swept {
                Ok(0) => {}
                Ok(n) => {
                    removed = true;
                    sh.progress.warn(&format!(
                        "removed {n} image tag(s) that run {} left in the engine without recording them",
                        dir.file_name().unwrap_or_default().to_string_lossy()
                    ))
                }
                Err(_) => continue,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    removed
}

#[cfg(test)]
mod tests;
