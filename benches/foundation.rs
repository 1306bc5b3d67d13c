//! Foundation benchmark (cargo bench --bench foundation, or bench/run.sh).
//!
//! Generates a synthetic ov project (2,000 layers × 5 files of 4 KiB, 300
//! images with base chains up to 6 deep, 20 VMs), a build.ninja with one edge
//! per plan node over the same files, and measures in one run, interleaving
//! the tools:
//!
//! - warm no-op `ov build --dry-run` vs `ninja -n` (target: ov ≤ ninja);
//! - cold hashing of every layer file through `ov::plan::inputs::hash_layer_dirs`
//!   with an empty in-memory stat cache vs `b3sum` (one process per core over
//!   a split file list, and one process alone) (target: ov ≥ 0.9× all-core
//!   b3sum throughput);
//! - peak RSS of the ov dry-run process, replayed and fully planned
//!   (target: ≤ 150 MiB);
//! - the first dry run after editing one layer file, one image's layer
//!   list in image.yml (right after the edit, and once the edit has settled
//!   and the run writes the memo: the worse counts), and build.yml's install
//!   template, against `ninja -n` after touching the same file (targets:
//!   ≤ 1.0×, ≤ 1.5×, and no slower than a full plan; peak RSS ≤ 60 MiB),
//!   and after a one-file
//!   edit of a project of 60 images and 200 layers (target: ≤ 50 ms);
//! - `ov build` after the same layer-file edit, up to its first engine call
//!   (the engine is a socket the bench listens on, which hangs up): the
//!   planning part of a build, against the dry run after the same edit,
//!   timed in turns (target: as fast).
//!
//! A warm no-op dry run replays the memo of the one before (see
//! `ov::plan::memo`); the bench also times a dry run with the memo removed, which
//! plans everything again with warm parse and stat caches (the cost of the
//! first dry run after an edit).
//!
//! The page cache cannot be dropped here, so "cold" means "no ov cache";
//! every file is in the page cache for both tools.
//!
//! Environment: `OV_BENCH_SCALE` (default 1.0) shrinks the project for a
//! smoke run; `OV_BENCH_RUNS` (default 15) sets the timed runs per tool;
//! `OV_BENCH_KEEP=1` keeps the generated directory; `OV_BENCH_STRICT=1` exits 1
//! when a target is missed.

mod common;
use common::project::{
    generate, layer_name, sizes, write, Sizes, FILES_PER_LAYER, FILE_SIZE, MAX_CHAIN,
};
use common::{have, median, ms, ov_binary, peak_rss_kib, verdict};
use ov::workspace::{Dirs, Workspace};
use ov_cache::StatCache;
use ov_rules::NodeKind;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RSS_LIMIT_KIB: u64 = 150 * 1024;

fn ninja_escape(p: &str) -> String {
    p.replace('$', "$$").replace(' ', "$ ").replace(':', "$:")
}

/// Writes `build.ninja` in `root`: one edge per plan node, stamp outputs,
/// the layer files as explicit inputs of source and layer-application
/// edges, the root ov files as implicit inputs of every edge. Returns the
/// edge count.
fn write_ninja(root: &Path, ws: &Workspace) -> usize {
    let g = &ws.plan.graph;
    let stamp = |ix: petgraph::graph::NodeIndex| format!(".stamps/n{}", ix.index());
    let mut out = String::with_capacity(4 << 20);
    out.push_str("ninja_required_version = 1.10\nbuilddir = .ninja\n");
    out.push_str("rule stamp\n  command = touch $out\n  description = STAMP $out\n\n");
    let root_files = "overthink.yml image.yml vm.yml build.yml";
    for ix in g.node_indices() {
        let n = &g[ix];
        let mut inputs: Vec<String> = g
            .neighbors_directed(ix, petgraph::Direction::Incoming)
            .map(stamp)
            .collect();
        if matches!(n.kind(), NodeKind::Source | NodeKind::Layer) {
            if let (Some(l), Some(t)) = (
                n.layer.as_ref(),
                n.layer.as_ref().and_then(|l| ws.trees.get(l)),
            ) {
                let dir = &ws.project.layers[l].display_dir;
                for f in &t.files {
                    inputs.push(ninja_escape(&format!("{dir}/{}", f.rel)));
                }
            }
        }
        writeln!(out, "# {}", n.id).unwrap();
        writeln!(
            out,
            "build {}: stamp {} | {root_files}",
            stamp(ix),
            inputs.join(" ")
        )
        .unwrap();
    }
    std::fs::write(root.join("build.ninja"), out).unwrap();
    g.node_count()
}

/// Runs a command to completion with stdout discarded; returns its wall time.
fn timed(cmd: &mut Command) -> Duration {
    let (d, out) = timed_output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

/// The wall time of `cmd` (stdout dropped) and what it left.
fn timed_output(cmd: &mut Command) -> (Duration, std::process::Output) {
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (t.elapsed(), out)
}

/// Spawns all commands at once and waits for all; returns the wall time.
fn timed_all(cmds: &mut [Command]) -> Duration {
    let t = Instant::now();
    let children: Vec<_> = cmds
        .iter_mut()
        .map(|c| c.stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    t.elapsed()
}

/// Ages every file of `root` a minute, as a checkout not edited in the
/// last minute is: ov trusts (and its memo records) only files last changed
/// at least 2 s before a run began.
fn age(root: &Path) {
    let aged = Command::new("find")
        .arg(root)
        .args(["-exec", "touch", "-h", "-d", "1 minute ago", "{}", "+"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(aged, "could not age the generated project's files");
}

fn ov_dry_run(ov_bin: &Path, root: &Path, cache: &Path) -> Command {
    let mut c = Command::new(ov_bin);
    c.arg("-C")
        .arg(root)
        .arg("--cache-dir")
        .arg(cache)
        .args(["build", "--dry-run"]);
    c
}

fn rss_of(c: &Command) -> Option<u64> {
    let mut args = vec![c.get_program()];
    args.extend(c.get_args());
    peak_rss_kib(&args)
}

/// Sets `path`'s mtime to `t`, as an undo that restores the file would.
fn set_mtime(path: &Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Flips one byte of `path`: new contents, same size.
fn flip(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    b[0] ^= 1;
    std::fs::write(path, b).unwrap();
}

/// One kind of edit: each run makes it (or undoes it), then times an ov
/// dry run and `ninja -n` (which sees the file newer than its outputs).
struct EditTimes {
    ov: Duration,
    ninja: Duration,
    rss: Option<u64>,
}

/// The first dry run after each kind of edit, against `ninja -n`: one
/// layer file; one image's layer list in image.yml; build.yml's install
/// template (every layer's step changes). Every edit is new to ov: the
/// file was just written, so no memo is saved over it and each run
/// starts from the memo of the unedited project. Also returns the full
/// plan the build.yml edit is held to (a dry run of the unedited project
/// with its memo removed), timed in turn with that edit: measured apart,
/// minutes earlier, the two met a different machine.
fn edit_runs(ov_bin: &Path, root: &Path, cache: &Path, runs: usize) -> ([EditTimes; 4], Duration) {
    let layer_file = root.join("layers").join(layer_name(7)).join("data0.bin");
    let image_yml = root.join("image.yml");
    let build_yml = root.join("build.yml");
    let images = std::fs::read_to_string(&image_yml).unwrap();
    let builds = std::fs::read_to_string(&build_yml).unwrap();
    // img000's list without its first layer, and the install template with
    // one more flag.
    let start = images.find("    layer: [").unwrap() + "    layer: [".len();
    let comma = start + images[start..].find(", ").unwrap();
    let images_b = format!("{}{}", &images[..start], &images[comma + 2..]);
    let builds_b = builds.replace(
        "apt-get install -y",
        "apt-get install -y --no-install-recommends",
    );
    assert_ne!(builds, builds_b);
    // Undoing a YAML edit puts back the file's mtime too, so the project
    // is again the one the memo knows (as a revert that restores the file
    // would): otherwise every later run would see an edited structure.
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (images_t, builds_t) = (mtime(&image_yml), mtime(&build_yml));
    let layer_t = mtime(&layer_file);
    let put = |p: &Path, text: &str, undo: Option<std::time::SystemTime>| {
        write(p, text);
        if let Some(t) = undo {
            set_mtime(p, t);
        }
    };
    // The fourth kind is the image.yml edit once it has settled (its mtime
    // a few seconds back, as when the dry run comes a while after the
    // save): that run also writes the memo, which a run right after the
    // edit cannot (see `Fingerprint::settled`).
    let settled = || std::time::SystemTime::now() - Duration::from_secs(3);
    let mut toggle = [false; 4];
    let mut edit = |k: usize| {
        toggle[k] = !toggle[k];
        match (k, toggle[k]) {
            (0, true) => flip(&layer_file),
            // Its mtime put back too: a tree edited moments ago cannot be
            // kept in the memo, and the full plan timed after the build.yml
            // edit must be one that writes its memo, as a user's does.
            (0, false) => {
                flip(&layer_file);
                set_mtime(&layer_file, layer_t);
            }
            (1, true) => put(&image_yml, &images_b, None),
            (3, true) => put(&image_yml, &images_b, Some(settled())),
            (1 | 3, false) => put(&image_yml, &images, Some(images_t)),
            (_, true) => put(&build_yml, &builds_b, None),
            (_, false) => put(&build_yml, &builds, Some(builds_t)),
        }
    };
    let mut times: [(Vec<Duration>, Vec<Duration>); 4] = Default::default();
    let mut full = Vec::new();
    for _ in 0..runs {
        for (k, t) in times.iter_mut().enumerate() {
            edit(k);
            t.0.push(timed(&mut ov_dry_run(ov_bin, root, cache)));
            t.1.push(timed(Command::new("ninja").arg("-C").arg(root).arg("-n")));
            // Undo, so the next kind starts from the unedited project.
            edit(k);
            timed(&mut ov_dry_run(ov_bin, root, cache));
            if k == 2 {
                // The run writes the memo again for the next kind.
                let _ = std::fs::remove_file(cache.join(ov::plan::memo::FILE));
                full.push(timed(&mut ov_dry_run(ov_bin, root, cache)));
            }
        }
    }
    let mut out = times.map(|(mut o, mut n)| EditTimes {
        ov: median(&mut o),
        ninja: median(&mut n),
        rss: None,
    });
    for (k, e) in out.iter_mut().enumerate() {
        edit(k);
        e.rss = rss_of(&ov_dry_run(ov_bin, root, cache));
        edit(k);
    }
    // The settled image.yml edit's run kept a memo of the edited project:
    // one run puts back the unedited one's, which the runs after these
    // start from (a run right after a layer-file edit cannot write one).
    timed(&mut ov_dry_run(ov_bin, root, cache));
    (out, median(&mut full))
}

/// What `ov build` after a one-file edit costs, against the dry run after
/// the same edit, measured in turns.
struct BuildPlanning {
    /// Up to its first engine call: the planning part of a build, which
    /// the issue asks to be as fast as the dry run.
    first_call: Duration,
    /// To its exit: the engine answers nothing, so it fails its first
    /// engine node and skips the rest, a line each.
    exit: Duration,
    /// The dry run after the same edit.
    dry_run: Duration,
}

/// `ov build` after a one-file edit, timed to its first engine call. The
/// engine is a socket that this bench listens on and hangs up: the time of
/// the first connection is when the build is done planning and asks the
/// engine (for its images) before it looks up the first key.
fn build_planning_after_edit(
    ov_bin: &Path,
    root: &Path,
    cache: &Path,
    base: &Path,
    runs: usize,
) -> BuildPlanning {
    use std::os::unix::net::UnixListener;
    let file = root.join("layers").join(layer_name(7)).join("data0.bin");
    let sock = base.join("engine.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let (calls, called) = std::sync::mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            // Hung up at once: the build fails its engine calls.
            drop(conn);
            if calls.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    let build = || -> (Duration, Duration) {
        while called.try_recv().is_ok() {}
        let t = Instant::now();
        let out = Command::new(ov_bin)
            .arg("-C")
            .arg(root)
            .arg("--cache-dir")
            .arg(base.join("build-cache"))
            .env("OV_STATE_DIR", base.join("build-state"))
            .env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .args(["build", "--progress", "plain"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let exit = t.elapsed();
        assert_eq!(
            out.status.code(),
            Some(1),
            "the build should fail at its first engine node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first = called
            .try_recv()
            .expect("the build never called the engine");
        (first.duration_since(t), exit)
    };
    // The build before the edit, as a user's last one: it plans in full
    // and makes the VMs' key pairs (inputs of the plan, aged here as if
    // made a while ago), then keeps its plan.
    build();
    age(&base.join("build-state"));
    build();
    let (mut first, mut exit, mut dry) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        flip(&file);
        dry.push(timed(&mut ov_dry_run(ov_bin, root, cache)));
        flip(&file);
        let (f, e) = build();
        first.push(f);
        exit.push(e);
    }
    BuildPlanning {
        first_call: median(&mut first),
        exit: median(&mut exit),
        dry_run: median(&mut dry),
    }
}

/// The first dry run after a one-file edit on a project of the size of
/// a real one (60 images, 200 layers).
fn small_project_edit(ov_bin: &Path, base: &Path, runs: usize) -> Duration {
    let root = base.join("project-60x200");
    let cache = base.join("cache-60x200");
    let sz = Sizes {
        layers: 200,
        images: 60,
        vms: 6,
        runs,
    };
    generate(&root, &sz);
    age(&root);
    timed(&mut ov_dry_run(ov_bin, &root, &cache));
    timed(&mut ov_dry_run(ov_bin, &root, &cache));
    let file = root.join("layers").join(layer_name(7)).join("data0.bin");
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            flip(&file);
            timed(&mut ov_dry_run(ov_bin, &root, &cache))
        })
        .collect();
    median(&mut t)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let sz = sizes();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for tool in ["ninja", "b3sum"] {
        if !have(tool) {
            eprintln!("foundation bench: `{tool}` not found; run bench/run.sh (installs ninja-build and b3sum)");
            std::process::exit(2);
        }
    }
    let ov_bin = ov_binary();
    eprintln!("foundation bench: ov binary {}", ov_bin.display());
    let tmp = tempfile::Builder::new()
        .prefix("ov-bench-")
        .tempdir()
        .unwrap();
    let base = tmp.path().to_path_buf();
    let root = base.join("project");
    let cache = base.join("cache");
    let t_all = Instant::now();

    // (1) generate and validate.
    let t = Instant::now();
    generate(&root, &sz);
    let gen_time = t.elapsed();
    // ov trusts (and its dry-run memo records) only files last changed at
    // least 2 s before a run began; a project made a moment ago has none,
    // and at smoke scale every run would start within that window and
    // measure a full plan instead of the warm no-op. Age the project as a
    // checkout that was not edited in the last minute is.
    age(&root);
    let out = Command::new(&ov_bin)
        .arg("-C")
        .arg(&root)
        .arg("--cache-dir")
        .arg(base.join("validate-cache"))
        .args(["image", "validate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ov image validate rejected the synthetic project:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let validated = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // (2) plan through the library, write build.ninja, build it once so
    // `ninja -n` has nothing to do.
    let lib_dirs = Dirs {
        cache: base.join("lib-cache"),
        repo_cache: base.join("repos"),
        state: base.join("state"),
    };
    let ws = Workspace::open(&root, &lib_dirs).expect("plan the synthetic project");
    let edges = write_ninja(&root, &ws);
    let layer_apps = ws
        .plan
        .graph
        .node_weights()
        .filter(|n| n.kind() == NodeKind::Layer)
        .count();
    let t = Instant::now();
    let out = Command::new("ninja")
        .arg("-C")
        .arg(&root)
        .arg(format!("-j{}", cores * 4))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ninja: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ninja_full = t.elapsed();
    let out = Command::new("ninja")
        .arg("-C")
        .arg(&root)
        .arg("-n")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("no work to do"),
        "ninja -n is not a no-op:\n{said}"
    );

    // (3a) warm no-op: two warm-up runs (the first fills the parse and stat
    // caches, the second checks the result is stable), then interleave.
    let ov_dry = |c: &mut Command| {
        c.arg("-C")
            .arg(&root)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["build", "--dry-run"]);
    };
    let mut first = Command::new(&ov_bin);
    ov_dry(&mut first);
    let cold_dry = {
        let t = Instant::now();
        let o = first.output().unwrap();
        assert!(
            o.status.success(),
            "ov build --dry-run failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (t.elapsed(), o.stdout)
    };
    let mut second = Command::new(&ov_bin);
    ov_dry(&mut second);
    let o = second.output().unwrap();
    assert_eq!(
        o.stdout, cold_dry.1,
        "a warm dry run planned differently from the first"
    );
    let planned = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let mut ov_t = Vec::new();
    let mut ninja_t = Vec::new();
    for _ in 0..sz.runs {
        let mut c = Command::new(&ov_bin);
        ov_dry(&mut c);
        ov_t.push(timed(&mut c));
        ninja_t.push(timed(Command::new("ninja").arg("-C").arg(&root).arg("-n")));
    }
    // The same with the memo gone (the warm parse and stat caches stay):
    // what a dry run costs after an edit, whose memo it then writes.
    let memo = cache.join(ov::plan::memo::FILE);
    let mut ov_full = Vec::new();
    for _ in 0..sz.runs.min(5) {
        let _ = std::fs::remove_file(&memo);
        let mut c = Command::new(&ov_bin);
        ov_dry(&mut c);
        ov_full.push(timed(&mut c));
    }
    let ov_replan = median(&mut ov_full);
    let _ = std::fs::remove_file(&memo);
    let ov_replan_rss = peak_rss_kib(&[
        ov_bin.as_os_str(),
        "-C".as_ref(),
        root.as_os_str(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        "build".as_ref(),
        "--dry-run".as_ref(),
    ]);
    let ov_noop = median(&mut ov_t);
    let ov_noop_min = ov_t[0];
    let ninja_noop = median(&mut ninja_t);
    let ninja_noop_min = ninja_t[0];

    // Peak RSS: max over three warm runs of each.
    let rss = |args: Vec<&std::ffi::OsStr>| (0..3).filter_map(|_| peak_rss_kib(&args)).max();
    let ov_rss = rss(vec![
        ov_bin.as_os_str(),
        "-C".as_ref(),
        root.as_os_str(),
        "--cache-dir".as_ref(),
        cache.as_os_str(),
        "build".as_ref(),
        "--dry-run".as_ref(),
    ]);
    let ninja_rss = rss(vec![
        "ninja".as_ref(),
        "-C".as_ref(),
        root.as_os_str(),
        "-n".as_ref(),
    ]);

    // (3c) the first dry run after an edit, against `ninja -n` after the
    // same file is touched; and (3d) the same on a real-sized project.
    let (edits, full_in_turn) = edit_runs(&ov_bin, &root, &cache, sz.runs.min(7));
    let build_plan = build_planning_after_edit(&ov_bin, &root, &cache, &base, sz.runs.min(7));
    let small = small_project_edit(&ov_bin, &base, sz.runs.min(7));

    // (3b) cold hashing: the library with an empty in-memory stat cache vs
    // b3sum over the same files. Everything is in the page cache.
    let project = &ws.project;
    let layer_names: Vec<&str> = project.layers.keys().map(String::as_str).collect();
    let hash_once = || {
        let mut stat = StatCache::in_memory();
        let t = Instant::now();
        let trees = ov::plan::inputs::hash_layer_dirs(project, &layer_names, &mut stat).unwrap();
        (t.elapsed(), trees)
    };
    let (_, trees) = hash_once(); // warm-up: rayon pool, page cache
    let mut files: Vec<String> = Vec::new();
    for name in &layer_names {
        let l = &project.layers[*name];
        for f in &trees[*name].files {
            files.push(format!("{}/{}", l.display_dir, f.rel));
        }
    }
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum();
    let b3_split = |n: usize| -> Vec<Command> {
        let chunk = files.len().div_ceil(n);
        files
            .chunks(chunk)
            .map(|part| {
                let mut c = Command::new("b3sum");
                c.current_dir(&root).args(part);
                c
            })
            .collect()
    };
    timed_all(&mut b3_split(cores)); // warm-up
    let mut ov_h = Vec::new();
    let mut b3_all = Vec::new();
    let mut b3_one = Vec::new();
    for _ in 0..sz.runs {
        ov_h.push(hash_once().0);
        b3_all.push(timed_all(&mut b3_split(cores)));
        b3_one.push(timed_all(&mut b3_split(1)));
    }
    let ov_hash = median(&mut ov_h);
    let b3_all_t = median(&mut b3_all);
    let b3_one_t = median(&mut b3_one);
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;

    // (4) report.
    let noop_ratio = ov_noop.as_secs_f64() / ninja_noop.as_secs_f64();
    let hash_ratio = mbps(ov_hash) / mbps(b3_all_t);
    // Both the replayed no-op and a full plan must stay under the limit.
    let rss_ok = ov_rss.is_some_and(|r| r <= RSS_LIMIT_KIB)
        && ov_replan_rss.is_some_and(|r| r <= RSS_LIMIT_KIB);
    let edit_ratio = |e: &EditTimes| e.ov.as_secs_f64() / e.ninja.as_secs_f64();
    let r_file = edit_ratio(&edits[0]);
    // Right after the edit and once it has settled: the worse of the two.
    let r_image = edit_ratio(&edits[1]).max(edit_ratio(&edits[3]));
    // "Today's full plan" is a dry run with no memo, timed in turn with
    // the edit.
    let r_build = edits[2].ov.as_secs_f64() / full_in_turn.as_secs_f64();
    const EDIT_RSS_KIB: u64 = 60 * 1024;
    let edit_rss = edits.iter().filter_map(|e| e.rss).max();
    let edit_rss_ok = edits
        .iter()
        .all(|e| e.rss.is_some_and(|r| r <= EDIT_RSS_KIB));
    let r_build_plan = build_plan.first_call.as_secs_f64() / build_plan.dry_run.as_secs_f64();
    let edits_ok = r_file <= 1.0
        && r_image <= 1.5
        && r_build_plan <= 1.0
        && r_build <= 1.0
        && edit_rss_ok
        && small <= Duration::from_millis(50);
    let all_ok = noop_ratio <= 1.0 && hash_ratio >= 0.9 && rss_ok && edits_ok;
    println!();
    println!(
        "ov foundation benchmark ({} cores, median of {} runs, tools interleaved)",
        cores, sz.runs
    );
    println!(
        "project: {} layers × {} files of {} KiB, {} images (chains ≤ {}), {} vms; {}",
        sz.layers,
        FILES_PER_LAYER,
        FILE_SIZE / 1024,
        sz.images,
        MAX_CHAIN,
        sz.vms,
        validated
    );
    println!(
        "plan: {} nodes ({} layer applications), `{}`; build.ninja: {} edges; generated in {:.0} ms, first ninja build {:.1} s",
        ws.plan.graph.node_count(),
        layer_apps,
        planned,
        edges,
        ms(gen_time),
        ninja_full.as_secs_f64()
    );
    println!(
        "hashed: {} files, {:.1} MB (page cache warm for every tool: the page cache cannot be dropped here)",
        files.len(),
        bytes as f64 / 1e6
    );
    println!();
    println!("{:<44} {:>12} {:>12}", "measure", "median", "min");
    println!(
        "{:<44} {:>9.1} ms {:>9.1} ms",
        "ov build --dry-run (warm no-op)",
        ms(ov_noop),
        ms(ov_noop_min)
    );
    println!(
        "{:<44} {:>9.1} ms {:>9.1} ms",
        "ninja -n (no-op)",
        ms(ninja_noop),
        ms(ninja_noop_min)
    );
    println!(
        "{:<44} {:>9.1} ms",
        "ov build --dry-run, first run (empty caches)",
        ms(cold_dry.0)
    );
    println!(
        "{:<44} {:>9.1} ms",
        "ov build --dry-run, no memo (warm caches)",
        ms(ov_replan)
    );
    println!(
        "{:<44} {:>9.1} ms {:>8.0} MB/s",
        "ov hash_layer_dirs (empty stat cache)",
        ms(ov_hash),
        mbps(ov_hash)
    );
    println!(
        "{:<44} {:>9.1} ms {:>8.0} MB/s",
        format!("b3sum, {cores} processes (all cores)"),
        ms(b3_all_t),
        mbps(b3_all_t)
    );
    println!(
        "{:<44} {:>9.1} ms {:>8.0} MB/s",
        "b3sum, 1 process",
        ms(b3_one_t),
        mbps(b3_one_t)
    );
    let show_rss = |r: Option<u64>| {
        r.map_or("n/a (no /usr/bin/time)".to_string(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    println!(
        "{:<44} {:>12}",
        "peak RSS, ov build --dry-run",
        show_rss(ov_rss)
    );
    println!(
        "{:<44} {:>12}",
        "peak RSS, ov build --dry-run, no memo",
        show_rss(ov_replan_rss)
    );
    println!("{:<44} {:>12}", "peak RSS, ninja -n", show_rss(ninja_rss));
    for (what, e) in [
        "one layer file",
        "image.yml layer list",
        "build.yml template",
        "image.yml, settled",
    ]
    .iter()
    .zip(&edits)
    {
        println!(
            "{:<44} {:>9.1} ms   ninja -n {:.1} ms, peak RSS {}",
            format!("dry run after editing {what}"),
            ms(e.ov),
            ms(e.ninja),
            show_rss(e.rss)
        );
    }
    println!(
        "{:<44} {:>9.1} ms   (in turn with the build.yml edit)",
        "dry run, no memo (full plan)",
        ms(full_in_turn)
    );
    println!(
        "{:<44} {:>9.1} ms  (its exit: {:.1} ms; the dry run beside it: {:.1} ms)",
        "ov build to its first engine call, same edit",
        ms(build_plan.first_call),
        ms(build_plan.exit),
        ms(build_plan.dry_run)
    );
    println!(
        "{:<44} {:>9.1} ms",
        "dry run after a one-file edit, 60 images/200 layers",
        ms(small)
    );
    println!();
    println!("{:<52} {:>8}  {:<12}", "target", "ratio", "needed");
    println!(
        "{:<52} {:>8.2}  {:<12} {}",
        "warm no-op: ov / ninja time",
        noop_ratio,
        "≤ 1.00",
        verdict(noop_ratio <= 1.0)
    );
    println!(
        "{:<52} {:>8.2}  {:<12} {}",
        "cold hashing: ov / all-cores b3sum throughput",
        hash_ratio,
        "≥ 0.90",
        verdict(hash_ratio >= 0.9)
    );
    println!(
        "{:<52} {:>8.2}  (reference only)",
        "ov / 1-process b3sum throughput",
        mbps(ov_hash) / mbps(b3_one_t)
    );
    println!(
        "{:<52} {:>8}  {:<12} {}",
        "peak RSS of ov build --dry-run (worst: no memo)",
        ov_rss
            .max(ov_replan_rss)
            .map_or("n/a".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        "≤ 150 MiB",
        verdict(rss_ok)
    );
    for (what, ratio, needed) in [
        ("after a layer-file edit: ov / ninja -n time", r_file, 1.0),
        ("after an image.yml edit: ov / ninja -n time", r_image, 1.5),
        (
            "after a build.yml edit: ov / full plan (no memo)",
            r_build,
            1.0,
        ),
        (
            "layer-file edit: ov build planning / the dry run",
            r_build_plan,
            1.0,
        ),
    ] {
        println!(
            "{:<52} {:>8.2}  {:<12} {}",
            what,
            ratio,
            format!("≤ {needed:.2}"),
            verdict(ratio <= needed)
        );
    }
    println!(
        "{:<52} {:>8}  {:<12} {}",
        "peak RSS after an edit (worst of the four)",
        edit_rss.map_or("n/a".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        "≤ 60 MiB",
        verdict(edit_rss_ok)
    );
    println!(
        "{:<52} {:>8.1}  {:<12} {}",
        "60 images/200 layers, one-file edit (ms)",
        ms(small),
        "≤ 50 ms",
        verdict(small <= Duration::from_millis(50))
    );
    println!("total bench time {:.1} s", t_all.elapsed().as_secs_f64());
    if std::env::var_os("OV_BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    if !all_ok && std::env::var_os("OV_BENCH_STRICT").is_some() {
        std::process::exit(1);
    }
}
