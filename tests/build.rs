//! `ov build` against the real podman service that `scripts/setup.sh`
//! starts (and the `localhost/bookworm-minbase:1` base it imports). No
//! test here skips: without the service they fail and say how to start it.
//!
//! Assertions are on what ov recorded (`--progress json` events and the
//! summary), never on time.

use crate::util::{containers_of_run, local_fixture, Ov, Project};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// A build's JSON events, split into per-node outcomes and the summary.
pub struct Built {
    pub code: Option<i32>,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl Built {
    pub fn summary(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary event; stderr:\n{}", self.stderr))
    }
    pub fn count(&self, field: &str) -> u64 {
        self.summary()[field].as_u64().unwrap_or(u64::MAX)
    }
    /// Node ids that finished with `outcome` (built, cached, checked).
    pub fn nodes(&self, outcome: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .events
            .iter()
            .filter(|e| e["event"] == "finish" && e["outcome"] == outcome)
            .map(|e| e["node"].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    }
    /// What a reader of a failed test needs first: each failed node's
    /// error and the tail of its output, then stderr, then every event on
    /// one line. A report that led with the event list was cut off by the
    /// CI digest before it reached the failure.
    pub fn report(&self) -> String {
        let mut out = format!("exit {:?}", self.code);
        for f in self.events.iter().filter(|e| e["event"] == "fail") {
            out.push_str(&format!(
                "\nFAILED {}: {}",
                f["node"].as_str().unwrap_or("?"),
                f["error"].as_str().unwrap_or("?")
            ));
            let output = f["output"].as_str().unwrap_or_default();
            let lines: Vec<&str> = output.lines().collect();
            for l in &lines[lines.len().saturating_sub(30)..] {
                out.push_str("\n  | ");
                out.push_str(l);
            }
        }
        if !self.stderr.trim().is_empty() {
            out.push_str("\nstderr:\n");
            out.push_str(self.stderr.trim_end());
        }
        out.push_str("\nevents:");
        for e in &self.events {
            out.push_str(&format!("\n  {e}"));
        }
        out
    }
    pub fn warnings(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "warning")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn engine_check() {
    let ok = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            "--unix-socket",
            "/run/podman/podman.sock",
            "http://d/_ping",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the podman API service is not answering on /run/podman/podman.sock: \
         run `bash scripts/setup.sh` first (CI does)"
    );
}

pub fn ov_for(project: &std::path::Path) -> Ov {
    engine_check();
    Ov::new(project).with_timeout(BUILD_TIMEOUT)
}

pub fn build(ov: &Ov, extra: &[&str]) -> Built {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    let r = ov.run(&args);
    Built {
        code: r.code,
        events: r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stderr: r.stderr,
    }
}

pub fn built_ok(ov: &Ov) -> Built {
    let b = build(ov, &[]);
    assert_eq!(b.code, Some(0), "build failed: {}", b.report());
    b
}

/// Starts `ov build --progress json` and returns once its eval node has
/// started, with the child still running.
fn spawn_until_eval_starts(ov: &Ov) -> std::process::Child {
    let mut child = ov
        .command(&["build", "--progress", "json"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reached = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("\"start\"") && l.contains("eval:app"));
    assert!(reached, "the build never reached its eval node");
    child
}

#[test]
fn cold_build_then_a_no_op_runs_no_engine_build() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let tag = p.own_tag("app");
    let ov = ov_for(p.path());
    let cold = built_ok(&ov);
    assert_eq!(
        cold.nodes("built"),
        vec![
            "eval:app",
            "image:app",
            "layer:a@app",
            "layer:b@app",
            "preamble:app"
        ]
    );
    assert_eq!(cold.count("engine_builds"), 4, "{:?}", cold.summary());
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);
    assert_eq!(again.count("cached_local"), 5);
    assert_eq!(again.count("failed"), 0);
    // The image is there under its tag, and dry-run agrees nothing would run.
    let out = Command::new("podman")
        .args(["image", "exists", &tag])
        .status()
        .unwrap();
    assert!(out.success(), "the image tag was not created");
    let dry = ov.ok(&["build", "--dry-run"]);
    assert!(
        dry.stdout.contains("\n0 nodes would run") || dry.stdout.starts_with("0 nodes"),
        "{}",
        dry.stdout
    );
    // A file's mtime alone changes nothing (content keys, not timestamps).
    let a = p.path().join("layers/a/a.txt");
    let f = std::fs::File::options().append(true).open(&a).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(built_ok(&ov).count("built"), 0);
}

#[test]
fn changing_one_layer_file_rebuilds_that_layer_and_what_follows_only() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    // Last edited a while ago: the build keeps its plan.
    crate::util::backdate(p.path());
    let ov = ov_for(p.path());
    assert_eq!(built_ok(&ov).summary()["plan"], "full");
    p.write("layers/b/b.conf", "setting = 2\n");
    let explain = ov.ok(&["explain", "layer:b@app"]);
    assert!(
        explain.stdout.contains("layers/b/b.conf changed ("),
        "explain does not name the file:\n{}",
        explain.stdout
    );
    let b = built_ok(&ov);
    assert_eq!(
        b.nodes("built"),
        vec!["eval:app", "image:app", "layer:b@app"]
    );
    assert_eq!(b.nodes("cached"), vec!["layer:a@app", "preamble:app"]);
    // The structure was unchanged: that build read the first one's plan
    // back, and so does the next, which finds everything built.
    assert_eq!(b.summary()["plan"], "saved");
    let again = built_ok(&ov);
    assert_eq!(again.summary()["plan"], "saved");
    assert_eq!(again.count("built"), 0, "{}", again.report());
    // An edit of a layer.yml is one of structure: planned again in full,
    // and what it changes is built.
    p.edit(
        "layers/b/layer.yml",
        "B_HOME: /opt/b",
        "B_HOME: /opt/b\n    B_SETTING: \"2\"",
    );
    crate::util::backdate(p.path());
    let edited = built_ok(&ov);
    assert_eq!(edited.summary()["plan"], "full");
    assert!(
        edited.nodes("built").contains(&"layer:b@app".to_string()),
        "{}",
        edited.report()
    );
}

#[test]
fn a_corrupt_cas_blob_is_reported_evicted_and_rebuilt() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let mut flipped = 0;
    for f in files_under(&ov.cache_dir().join("store").join("content-v2")) {
        let mut bytes = std::fs::read(&f).unwrap();
        if bytes.is_empty() {
            continue;
        }
        bytes[0] ^= 0xff;
        // cacache makes content read-only.
        let mut perm = std::fs::metadata(&f).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&f, perm).unwrap();
        std::fs::write(&f, bytes).unwrap();
        flipped += 1;
    }
    assert!(flipped > 0, "no blob in the store to corrupt");
    let b = built_ok(&ov);
    assert!(
        b.warnings().iter().any(|w| w.contains("corrupt")),
        "no corruption reported: {:?}",
        b.events
    );
    assert!(b.count("built") > 0);
    // Blobs only the evicted records named (build logs) are never read by a
    // build, so they stay damaged until verify re-hashes and evicts them
    // (unless the rebuild happened to store the same bytes again). After
    // that one pass the store is clean, and the rebuilt results are whole.
    ov.run(&["cache", "verify"]);
    let verify = ov.run(&["cache", "verify"]);
    assert_eq!(verify.code, Some(0), "{}\n{}", verify.stdout, verify.stderr);
    assert_eq!(built_ok(&ov).count("built"), 0);
}

#[test]
fn a_package_that_does_not_exist_fails_the_layer_and_records_nothing() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.write(
        "layers/broken/layer.yml",
        "layer:\n  require: [a]\n  package: [ov-no-such-package]\n",
    );
    p.edit("image.yml", "- b\n", "- b\n            - broken\n");
    let ov = ov_for(p.path());
    let b = build(&ov, &[]);
    assert_eq!(b.code, Some(1), "{}", b.report());
    let fail = b
        .events
        .iter()
        .find(|e| e["event"] == "fail")
        .expect("a fail event");
    assert_eq!(fail["node"], "layer:broken@app");
    let output = fail["output"].as_str().unwrap_or_default();
    assert!(
        output.contains("ov-no-such-package"),
        "the failing command's output is not shown: {fail}"
    );
    let dry = ov.ok(&["build", "--dry-run"]);
    let line = dry
        .stdout
        .lines()
        .find(|l| l.ends_with("layer:broken@app"))
        .unwrap();
    assert!(
        line.starts_with("run"),
        "a failed node was recorded: {line}"
    );
    // Plain output names the layer too.
    let plain = ov.run(&["build", "--progress", "plain"]);
    assert_eq!(plain.code, Some(1));
    assert!(
        plain.stderr.contains("FAILED layer:broken@app"),
        "{}",
        plain.stderr
    );
}

#[test]
fn kill_9_mid_build_loses_nothing_and_the_next_build_cleans_up() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.append(
        "image.yml",
        "            - {id: slow, command: sleep 15, exit_status: 0}\n",
    );
    let ov = ov_for(p.path());
    let mut child = spawn_until_eval_starts(&ov);
    // Wait until the eval's container exists (a loaded machine takes its
    // time to create it), then kill ov outright.
    let pid = child.id();
    let started = std::time::Instant::now();
    while containers_of_run(pid) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the eval container never appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let left = || containers_of_run(pid);
    // The container outlives ov. Any build on this engine removes a dead
    // run's containers when it starts, so a test building beside this one
    // may take it first; then there is nothing left for this rebuild to do.
    assert!(
        left() <= 1,
        "the killed run had one container, now {}",
        left()
    );
    // Rebuild: what finished is cached, the eval reruns, the leftover goes.
    let b = built_ok(&ov);
    assert_eq!(
        b.nodes("cached"),
        vec!["image:app", "layer:a@app", "layer:b@app", "preamble:app"]
    );
    assert_eq!(
        left(),
        0,
        "the next build did not remove the dead run's container"
    );
    let verify = ov.run(&["cache", "verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.stdout);
}

#[test]
fn two_builds_on_one_cache_dir_at_once_both_succeed() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let twin = Ov::sharing_cache_with(p.path(), &ov);
    let mut a = ov
        .command(&["build", "--progress", "json"])
        .spawn()
        .unwrap();
    let mut b = twin
        .command(&["build", "--progress", "json"])
        .spawn()
        .unwrap();
    let (ra, rb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(ra.success() && rb.success(), "{ra:?} {rb:?}");
    let third = built_ok(&ov);
    assert_eq!(third.count("built"), 0);
    let verify = ov.run(&["cache", "verify"]);
    assert_eq!(verify.code, Some(0), "{}", verify.stdout);
}

#[test]
fn a_failing_eval_check_names_the_check_and_its_output() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.edit("image.yml", "contains: [\"beta\"]", "contains: [\"gamma\"]");
    let ov = ov_for(p.path());
    let b = build(&ov, &[]);
    assert_eq!(b.code, Some(1));
    let fail = b.events.iter().find(|e| e["event"] == "fail").unwrap();
    assert_eq!(fail["node"], "eval:app");
    let err = fail["error"].as_str().unwrap_or_default();
    assert!(err.contains("b-file") && err.contains("gamma"), "{err}");
    assert!(fail["output"].as_str().unwrap_or_default().contains("beta"));
    // The layers are cached; the image reruns too because, as in ov, its
    // labels carry the checks.
    p.edit("image.yml", "contains: [\"gamma\"]", "contains: [\"beta\"]");
    let b = built_ok(&ov);
    assert_eq!(b.nodes("built"), vec!["eval:app", "image:app"]);
    assert_eq!(
        b.nodes("cached"),
        vec!["layer:a@app", "layer:b@app", "preamble:app"]
    );
}

#[test]
fn cache_stats_and_gc_shrink_the_store() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let stats = ov.ok(&["cache", "stats"]).stdout;
    assert!(stats.contains("action"), "{stats}");
    // Once its inputs have settled, a dry run is remembered with the store's
    // generation; gc changes the store's answers, so the memo must not hide it.
    std::thread::sleep(Duration::from_millis(2100));
    ov.ok(&["build", "--dry-run"]);
    assert!(ov.cache_dir().join("dry-run.v2").is_file());
    let before = ov.ok(&["build", "--dry-run"]).stdout;
    assert!(before.ends_with("\n0 nodes would run\n"), "{before}");
    ov.ok(&["cache", "gc", "--max-size", "0"]);
    let after = ov.ok(&["build", "--dry-run"]).stdout;
    assert!(after.ends_with("\n5 nodes would run\n"), "{after}");
    let b = built_ok(&ov);
    assert!(
        b.count("built") > 0,
        "gc to 0 bytes should have dropped every result"
    );
    let bad = ov.bad(&["cache", "gc", "--max-size", "lots"]);
    assert!(bad.stderr.contains("--max-size"), "{}", bad.stderr);
}

#[test]
fn doctor_reports_the_engine_and_a_fix_for_a_wrong_socket() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let good = ov.ok(&["doctor"]);
    assert!(
        good.stdout.contains("ok   engine socket: podman"),
        "{}",
        good.stdout
    );
    ov.ok(&[
        "settings",
        "set",
        "engine.socket",
        "unix:///nonexistent.sock",
    ]);
    let bad = ov.run(&["doctor"]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stdout.contains("FAIL engine socket"), "{}", bad.stdout);
    assert!(bad.stdout.contains("fix: "), "{}", bad.stdout);
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn ctrl_c_stops_the_build_removes_its_containers_and_keeps_what_finished() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.append(
        "image.yml",
        "            - {id: slow, command: sleep 10, exit_status: 0}\n",
    );
    let ov = ov_for(p.path());
    let mut child = spawn_until_eval_starts(&ov);
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ov did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let mine = containers_of_run(pid);
    assert_eq!(mine, 0, "the interrupted run left its containers");
    let b = built_ok(&ov);
    assert_eq!(
        b.nodes("cached"),
        vec!["image:app", "layer:a@app", "layer:b@app", "preamble:app"]
    );
    assert_eq!(b.nodes("built"), vec!["eval:app"]);
}

#[test]
fn lock_pins_the_local_base_without_pulling_and_a_bad_pin_is_bad_input() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let locked = ov.ok(&["lock"]);
    assert!(
        locked
            .stdout
            .starts_with("localhost/bookworm-minbase:1 sha256:"),
        "{}",
        locked.stdout
    );
    let lock: Value = serde_json::from_str(&p.read("ov.lock")).unwrap();
    let pinned = lock["base"]["localhost/bookworm-minbase:1"]
        .as_str()
        .unwrap()
        .to_string();
    let b = built_ok(&ov);
    assert_eq!(b.count("failed"), 0);
    // The pin is part of the base's key.
    let before = ov
        .ok(&["explain", "base:localhost/bookworm-minbase:1"])
        .stdout;
    p.write(
        "ov.lock",
        format!(
            "{{\"version\": 1, \"base\": {{\"localhost/bookworm-minbase:1\": \"{}\"}}}}",
            &pinned[..20]
        ),
    );
    let bad = ov.bad(&["build", "--dry-run"]);
    assert!(bad.stderr.contains("ov.lock:1:"), "{}", bad.stderr);
    p.write("ov.lock", serde_json::to_string(&lock).unwrap());
    assert_eq!(
        ov.ok(&["explain", "base:localhost/bookworm-minbase:1"])
            .stdout,
        before
    );
}

#[test]
fn a_dependency_rebuilt_to_the_same_output_does_not_rerun_its_dependents() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    // Layer a, and all that stands on it, this test's own.
    let own = p.own_tag("app");
    p.append("layers/a/a.txt", &format!("{own}\n"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    // Layer a reruns. Only the engine's build cache can give it the same
    // image again (same steps, same parent), and other tests may remove
    // the cache's step images at any moment. So each rerun is held to
    // what its output was: the same image keeps what stands on it cached
    // (the cut-off), a new one rebuilds it. A miss leaves fresh step
    // images, so the cut-off is seen within a few reruns.
    let key_of_b = || {
        let g = ov.graph(&[]);
        let b = g.nodes.iter().find(|n| n.id == "layer:b@app").unwrap();
        b.key.clone()
    };
    // `before`: b's key as the last build left it (taken before an edit:
    // after one, the graph cannot know a's next image yet).
    let rerun = |before: String, args: &[&str]| -> bool {
        let b = build(&ov, args);
        assert_eq!(b.code, Some(0), "{}", b.report());
        let same = key_of_b() == before;
        if same {
            assert_eq!(b.nodes("built"), vec!["layer:a@app"]);
            assert_eq!(
                b.nodes("cached"),
                vec!["eval:app", "image:app", "layer:b@app", "preamble:app"]
            );
        } else {
            assert_eq!(
                b.nodes("built"),
                vec!["eval:app", "image:app", "layer:a@app", "layer:b@app"]
            );
        }
        same
    };
    assert!(
        (0..3).any(|_| rerun(key_of_b(), &["--refresh", "layer:a@app"])),
        "three reruns of layer a never gave the same image"
    );
    // A comment in layer.yml changes layer a's key but not its image.
    let mut comments = 0;
    let mut commented = || {
        comments += 1;
        let before = key_of_b();
        p.append(
            "layers/a/layer.yml",
            &format!("# comment {comments} changes the tree, not the image\n"),
        );
        rerun(before, &[])
    };
    assert!(
        (0..3).any(|_| commented()),
        "three comments in layer.yml never kept layer a's image"
    );
}

/// The tags on the image `reference` names; empty when there is none.
/// Whether the engine has the image `id`.
fn image_exists(id: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", id])
        .status()
        .unwrap()
        .success()
}

/// The image `reference` and its ancestors up to (not including) the first
/// one with a tag: what removing its last tag should take with it.
fn untagged_chain(reference: &str) -> Vec<String> {
    let inspect = |r: &str| -> Option<(String, String, Vec<String>)> {
        let out = Command::new("podman")
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Id}} {{.Parent}} {{json .RepoTags}}",
                r,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).ok()?;
        let mut parts = text.trim().splitn(3, ' ');
        let id = parts.next()?.to_string();
        let parent = parts.next()?.to_string();
        let tags = serde_json::from_str(parts.next()?).unwrap_or_default();
        out.status.success().then_some((id, parent, tags))
    };
    let Some((id, mut parent, _)) = inspect(reference) else {
        return Vec::new();
    };
    let mut chain = vec![id];
    while !parent.is_empty() {
        match inspect(&parent) {
            Some((id, next, tags)) if tags.is_empty() => {
                chain.push(id);
                parent = next;
            }
            _ => break,
        }
    }
    chain
}

fn tags_of(reference: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoTags}}",
            reference,
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The keys (as built, so from `explain`) of the nodes that make engine
/// images (preamble, layer, image).
fn image_keys(ov: &Ov) -> std::collections::BTreeMap<String, String> {
    ov.graph(&[])
        .nodes
        .into_iter()
        .filter(|n| matches!(n.kind.as_str(), "preamble" | "layer" | "image"))
        .map(|n| {
            let explain = ov.ok(&["explain", &n.id]).stdout;
            let key = explain
                .lines()
                .find_map(|l| l.strip_prefix("key "))
                .unwrap()
                .to_string();
            (n.id, key)
        })
        .collect()
}

#[test]
fn cache_gc_untags_the_node_images_the_store_dropped_and_keeps_the_current() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    // Keys of its own: other tests build this fixture on the same engine,
    // and node tags are named by key alone.
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    p.edit(
        "layers/b/layer.yml",
        "beta\\n",
        &format!("beta {unique}\\n"),
    );
    let ov = ov_for(p.path());
    built_ok(&ov);
    let old = image_keys(&ov);
    // A build leaves no tag of its own but the node tags and the user's.
    for key in old.values() {
        let tags = tags_of(&format!("localhost/ov-node:{key}"));
        assert!(!tags.is_empty(), "no node tag for {key}");
        for t in &tags {
            assert!(
                t.starts_with("localhost/ov-node:")
                    || t.ends_with("/app:latest")
                    || t.contains("/app:"),
                "a build left the tag {t}"
            );
        }
    }
    let stats = ov.ok(&["cache", "stats"]).stdout;
    let line = stats
        .lines()
        .find(|l| l.starts_with("engine images:"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        line.starts_with(&format!("engine images:        {} (", old.len())),
        "{line}"
    );
    assert!(!line.contains(" 0 B summed"), "{line}");
    // A change to the last layer: its node and the image's get new keys.
    p.edit("layers/b/layer.yml", "beta ", "beta, again ");
    p.edit("image.yml", "contains: [\"beta\"]", "contains: [\"again\"]");
    built_ok(&ov);
    let new = image_keys(&ov);
    let stale: Vec<&String> = old
        .values()
        .filter(|k| !new.values().any(|n| n == *k))
        .collect();
    assert_eq!(stale.len(), 2, "{old:?} {new:?}");
    let old_app = tags_of(&format!("localhost/ov-node:{}", old["image:app"]));
    assert!(!old_app.is_empty());
    // The stale images and the untagged intermediates only they use (the
    // engine keeps one per Containerfile step; the new build may share the
    // first steps' with them).
    let shared: std::collections::HashSet<String> = new
        .values()
        .flat_map(|k| untagged_chain(&format!("localhost/ov-node:{k}")))
        .collect();
    let doomed: Vec<String> = stale
        .iter()
        .flat_map(|k| untagged_chain(&format!("localhost/ov-node:{k}")))
        .filter(|id| !shared.contains(id))
        .collect();
    assert!(
        doomed.len() > stale.len(),
        "no intermediates under {stale:?}"
    );
    // Evict everything but the last-run records: the stale keys are gone
    // from the store, the current ones are still named by them.
    let gc = ov.ok(&["cache", "gc", "--max-size", "0"]);
    gc.stdout_has(&["engine: untagged 2 node images"]);
    for key in &stale {
        assert!(
            tags_of(&format!("localhost/ov-node:{key}")).is_empty(),
            "stale {key} still tagged"
        );
    }
    for key in new.values() {
        assert!(
            !tags_of(&format!("localhost/ov-node:{key}")).is_empty(),
            "current {key} was untagged"
        );
    }
    // Nothing the untagging left dangling stays behind.
    for id in &doomed {
        assert!(!image_exists(id), "{id} was left dangling");
    }
    // Nothing left to take on a second run; the store rebuilds as usual.
    ov.ok(&["cache", "gc", "--max-size", "0"])
        .stdout_has(&["engine: untagged 0 node images"]);
    assert!(built_ok(&ov).count("built") > 0);
}

#[test]
fn cache_gc_leaves_the_node_images_of_other_cache_dirs() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let keys = image_keys(&ov);
    // Another cache dir on the same engine whose store has none of them.
    let other = ov_for(p.path());
    other
        .ok(&["cache", "gc", "--max-size", "0"])
        .stdout_has(&["engine: untagged 0"]);
    // Even after it built and dropped them itself: only what it recorded
    // is its own, and the first cache dir's store still holds them.
    ov.ok(&["cache", "gc", "--max-size", "0"]);
    for key in keys.values() {
        assert!(
            !tags_of(&format!("localhost/ov-node:{key}")).is_empty(),
            "{key} was untagged"
        );
    }
}
