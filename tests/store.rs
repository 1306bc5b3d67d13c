//! The store under damage and strain: a cache dir that is no directory,
//! damaged index lines, concurrent builds sharing work, a read-only cache
//! dir and a full disk. Builds run against the real podman service, on the
//! `tests/fixtures/deb-tasks` project.

use crate::build::{build, built_ok, ov_for};
use crate::util::{local_fixture, Ov, Project};
use std::path::{Path, PathBuf};

/// A cache dir under a file is bad input naming the setting to fix, and
/// no message says the OS's words twice.
#[test]
fn a_cache_dir_under_a_file_names_the_os_message_once() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let file = p.path().join("image.yml");
    let ov = Ov::new(p.path()).env("OV_CACHE_DIR", file.join("cache"));
    let ov = ov.without_cache_flag();
    for args in [&["cache", "stats"][..], &["cache", "verify"], &["build"]] {
        let r = ov.run(args);
        r.assert_code(2);
        assert!(
            r.stderr.matches("Not a directory").count() <= 1,
            "`{}`:\n{}",
            r.cmd,
            r.stderr
        );
        r.stderr_has(&[&file.join("cache").display().to_string(), "OV_CACHE_DIR"]);
    }
}

/// The index buckets of a cache dir's store.
fn buckets(cache: &Path) -> Vec<PathBuf> {
    files_under(&cache.join("store/index-v5"))
}

/// The files under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Puts a damaged copy of each bucket's first entry before it, as bit rot
/// in an older entry of the key would leave it: a byte that is no UTF-8.
fn damage_every_bucket(cache: &Path) -> usize {
    let all = buckets(cache);
    for bucket in &all {
        let text = std::fs::read(bucket).unwrap();
        let first: Vec<u8> = text
            .split(|&b| b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap()
            .to_vec();
        let mut damaged = first.clone();
        damaged[5] = 0xff;
        let mut out = b"\n".to_vec();
        out.extend_from_slice(&damaged);
        out.extend_from_slice(&text);
        std::fs::write(bucket, out).unwrap();
    }
    all.len()
}

#[test]
fn a_damaged_index_line_neither_hides_entries_nor_passes_verify() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let damaged = damage_every_bucket(ov.cache_dir());
    assert!(damaged >= 3, "only {damaged} buckets");

    // Every lookup gets past the damage.
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);

    // verify finds the damage, says what it dropped, and repairs it.
    damage_every_bucket(ov.cache_dir());
    let verify = ov.run(&["cache", "verify"]);
    verify.assert_code(1);
    let repaired = verify
        .stdout
        .lines()
        .filter(|l| l.contains("index bucket") && l.contains("1 damaged line dropped"))
        .count();
    assert_eq!(repaired, damaged, "{}", verify.stdout);
    ov.ok(&["cache", "verify"]).stdout_has(&["all sound"]);
    let third = built_ok(&ov);
    assert_eq!(third.count("built"), 0, "{:?}", third.events);
}

/// The summary event of a finished `ov build --progress json`.
fn summary(out: &std::process::Output) -> serde_json::Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "summary")
        .unwrap_or_default()
}

#[test]
fn concurrent_builds_on_one_cache_dir_build_each_node_once() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let twins: Vec<Ov> = (0..3)
        .map(|_| Ov::sharing_cache_with(p.path(), &ov))
        .collect();
    let children: Vec<_> = std::iter::once(&ov)
        .chain(&twins)
        .map(|o| o.command(&["build", "--progress", "json"]).spawn().unwrap())
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut engine_builds = 0;
    for out in &outs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        engine_builds += summary(out)["engine_builds"].as_u64().unwrap();
    }
    // What one cold build of the fixture does: the preamble, two layers
    // and the image.
    assert_eq!(
        engine_builds,
        4,
        "{:?}",
        outs.iter().map(summary).collect::<Vec<_>>()
    );
    ov.ok(&["cache", "verify"]).stdout_has(&["all sound"]);
}

/// The lock files a build of the project on a fresh cache dir claims,
/// relative to the store: keys depend on inputs only, so they are those a
/// first build left in its own store.
fn claimed_by_a_build(first: &Ov) -> Vec<PathBuf> {
    let locks = first.cache_dir().join("store");
    files_under(&locks.join("locks"))
        .iter()
        .map(|f| f.strip_prefix(&locks).unwrap().to_path_buf())
        .collect()
}

/// The key a lock file (relative to the store) claims.
fn key_of(lock: &Path) -> ov_cache::NodeKey {
    let dir = lock
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    let rest = lock.file_name().unwrap().to_string_lossy();
    format!("{dir}{rest}").parse().unwrap()
}

/// Waits up to `limit` for `child` to end.
fn wait_at_most(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_build_killed_holding_a_claim_does_not_block_the_next() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let first = ov_for(p.path());
    built_ok(&first);
    let ov = ov_for(p.path());
    let store = ov.cache_dir().join("store");
    let claims = claimed_by_a_build(&first);
    assert!(claims.len() >= 3, "{claims:?}");
    // Another process holds every claim (flock, as ov takes it), then dies
    // by SIGKILL while a build waits for it.
    let mut holder = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"fd=10; for f in "$@"; do mkdir -p "${f%/*}"; eval "exec $fd>\"\$f\""; flock "$fd"; fd=$((fd+1)); done; exec sleep 600"#)
        .arg("holder")
        .args(claims.iter().map(|c| store.join(c)))
        .spawn()
        .unwrap();
    let probe = ov_cache::Store::open(&store).unwrap();
    let started = std::time::Instant::now();
    while claims
        .iter()
        .any(|c| probe.try_lock_key(&key_of(c)).unwrap().is_some())
    {
        assert!(started.elapsed().as_secs() < 10, "the holder took no lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut child = ov
        .command(&["build", "--progress", "json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    holder.kill().unwrap(); // SIGKILL: the kernel alone releases its locks
    holder.wait().unwrap();
    let status = wait_at_most(
        &mut child,
        std::time::Duration::from_secs(240),
        "the build stayed blocked after the holder died",
    );
    assert!(status.success(), "{status}");
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
}

#[test]
fn a_build_waiting_for_a_claim_stops_on_ctrl_c() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let first = ov_for(p.path());
    built_ok(&first);
    // Hold every key a build claims, as another build busy with every node
    // would.
    let ov = ov_for(p.path());
    let store = ov_cache::Store::open(&ov.cache_dir().join("store")).unwrap();
    let held: Vec<_> = claimed_by_a_build(&first)
        .iter()
        .map(|c| store.try_lock_key(&key_of(c)).unwrap().expect("a free key"))
        .collect();
    assert!(held.len() >= 3, "{} keys", held.len());
    let mut child = ov
        .command(&["build", "--progress", "json"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_at_most(
        &mut child,
        std::time::Duration::from_secs(10),
        "a waiting build ignored Ctrl-C",
    );
    assert_eq!(status.code(), Some(130));
    drop(held);
    // Released, the keys build.
    let b = built_ok(&ov);
    assert_eq!(
        b.count("engine_builds"),
        4,
        "the preamble, two layers, the image"
    );
}

/// Runs a command that must succeed (mount, umount).
fn sh(cmd: &str, args: &[&std::ffi::OsStr]) {
    let status = std::process::Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?}: {status}");
}

/// A mount over a folder, undone on drop.
struct Mount(PathBuf);

impl Mount {
    /// Makes `dir` read-only by a read-only bind mount of itself: tests run
    /// as root, whom file modes do not stop.
    fn read_only(dir: &Path) -> Mount {
        let d = dir.as_os_str();
        sh("mount", &["--bind".as_ref(), d, d]);
        let m = Mount(dir.to_path_buf());
        sh("mount", &["-o".as_ref(), "remount,bind,ro".as_ref(), d]);
        m
    }

    /// Puts a small tmpfs over `dir`, so that writes there run out of space.
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        let opts = format!("size={size}");
        sh(
            "mount",
            &[
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
                "tmpfs".as_ref(),
                dir.as_os_str(),
            ],
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_cache_dir_serves_a_cached_build_and_records_nothing() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let before = files_under(ov.cache_dir());
    let _ro = Mount::read_only(ov.cache_dir());

    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);
    let warnings: Vec<&str> = again
        .events
        .iter()
        .filter(|e| e["event"] == "warning")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}\n{}", again.stderr);
    assert!(warnings[0].contains("read-only"), "{warnings:?}");
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
    // A node that must run still runs; it is just not recorded.
    let refreshed = build(&ov, &["--refresh", "layer:a@app"]);
    assert_eq!(refreshed.code, Some(0), "{}", refreshed.stderr);
    assert_eq!(refreshed.nodes("built"), vec!["layer:a@app"]);
    assert_eq!(files_under(ov.cache_dir()), before);
}

#[test]
fn a_read_only_cache_dir_without_a_store_says_how_to_fix_it() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let _ro = Mount::read_only(ov.cache_dir());
    let r = ov.run(&["build"]);
    r.assert_code(1);
    r.stderr_has(&["read-only", "--cache-dir"]);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}

#[test]
fn a_full_disk_is_named_and_leaves_the_store_sound() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let cache = ov.cache_dir().to_path_buf();
    let mut index_full = false;
    let mut eval_full = false;
    // Leave ever more room, so each write of a build (blobs, records, the
    // index, last-run records, the eval's report) is in turn the one that
    // finds the disk full. The file system stays between runs: what a run
    // recorded stays cached, so each run redoes only the nodes still
    // unrecorded and must not lose the others; once a run records more,
    // the room starts again from none, so every node's writes are swept.
    let _fs = Mount::tmpfs(&cache, "2m");
    ov.ok(&["cache", "stats"]);
    let mut recorded = 0;
    let mut pages = 0u64;
    for _ in 0..200 {
        fill_but(&cache, pages);
        let b = build(&ov, &[]);
        let cached = b.count("cached_local");
        assert!(
            cached >= recorded,
            "a full disk lost cached nodes: {:?}",
            b.summary()
        );
        let now = cached + b.count("built");
        eprintln!("{pages} pages free: {} recorded, {:?}", now, b.summary());
        if b.code == Some(0) {
            assert!(recorded > 0 || pages > 0, "a build fit on a full disk");
            break;
        }
        pages = if now > recorded { 0 } else { pages + 1 };
        recorded = now;
        assert_eq!(b.code, Some(1), "{}", b.stderr);
        let fail = b.events.iter().find(|e| e["event"] == "fail").unwrap();
        let err = fail["error"].as_str().unwrap();
        assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
        assert!(err.contains(&cache.display().to_string()), "{err}");
        index_full |= err.contains("index bucket");
        eval_full |= err.contains("eval-report");
        // Nothing half-written: no temp files, and the store verifies.
        assert_eq!(files_under(&cache.join("store/tmp")), Vec::<PathBuf>::new());
        assert_eq!(files_under(&cache.join("tmp")), Vec::<PathBuf>::new());
        ov.ok(&["cache", "verify"]).stdout_has(&["all sound"]);
    }
    let _ = std::fs::remove_file(cache.join("filler"));
    assert_eq!(
        built_ok(&ov).count("built"),
        0,
        "the last run left nodes unrecorded"
    );
    assert!(index_full, "no run found the disk full at the index");
    assert!(eval_full, "no run found the disk full at the eval's report");
}

/// Fills the filesystem of `dir` but for `pages` pages of 4 KiB.
fn fill_but(dir: &Path, pages: u64) {
    let filler = dir.join("filler");
    let _ = std::fs::remove_file(&filler);
    let mut f = std::fs::File::create(&filler).unwrap();
    let page = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &page).is_ok() {}
    let full = f.metadata().unwrap().len();
    f.set_len(full.saturating_sub(pages * 4096)).unwrap();
}
