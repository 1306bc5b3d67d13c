//! What a build leaves in the engine, beyond the store: the user's tag on
//! the right image after a cached build, the cost of a no-op in engine
//! calls, and the debris of a build whose engine died under it.
//!
//! Each test gives its project an image tag of its own, so builds of the
//! same fixture elsewhere never move the tag it checks.

use crate::build::{build, built_ok, ov_for};
use crate::util::{containers_of_run, local_fixture, Project};
use std::process::Command;

/// A copy of `deb-tasks` whose image is `localhost/ov-test/app:<unique>`;
/// the tag goes away with the value.
struct Tagged {
    project: Project,
    tag: String,
}

impl Tagged {
    fn new() -> Tagged {
        let project = Project::copy_of(&local_fixture("deb-tasks"));
        let unique = format!(
            "es{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        project.edit("overthink.yml", "tag: test", &format!("tag: {unique}"));
        // No label holds the tag (ov writes none), so an image-level env
        // entry, which ov writes as a label, keeps the image this test's own.
        project.edit(
            "image.yml",
            "        base: localhost/bookworm-minbase:1\n",
            &format!(
                "        base: localhost/bookworm-minbase:1\n        env: [OV_TEST_RUN={unique}]\n"
            ),
        );
        Tagged {
            project,
            tag: format!("localhost/ov-test/app:{unique}"),
        }
    }

    /// As [`Tagged::new`], with no node shared with any other test: the
    /// image user's uid goes into the preamble's key and from there into
    /// every layer's, so no other test's gc can take a node tag of this one.
    fn alone() -> Tagged {
        let t = Tagged::new();
        let uid = 20_000 + (std::process::id() + Self::count()) % 40_000;
        t.project.edit(
            "image.yml",
            "        base: localhost/bookworm-minbase:1\n",
            &format!("        base: localhost/bookworm-minbase:1\n        uid: {uid}\n"),
        );
        t
    }

    /// How many projects of this process were made alone, so two in one
    /// run differ.
    fn count() -> u32 {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["untag", &self.tag, &self.tag])
            .output();
    }
}

/// The id `reference` points at, or `None` when the engine has no such tag.
fn image_of(reference: &str) -> Option<String> {
    let out = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn an_edit_and_its_revert_leave_the_user_tag_on_the_reverted_image() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    built_ok(&ov);
    let first = image_of(&t.tag).expect("the first build tagged its image");
    t.project.write("layers/a/a.txt", "alpha\nand more\n");
    built_ok(&ov);
    let second = image_of(&t.tag).expect("the second build tagged its image");
    assert_ne!(first, second, "the edit did not change the image");
    t.project.write("layers/a/a.txt", "alpha\n");
    let back = built_ok(&ov);
    assert_eq!(back.count("built"), 0, "{:?}", back.events);
    assert_eq!(
        image_of(&t.tag).as_deref(),
        Some(first.as_str()),
        "a cached build left the tag on the edited image"
    );
    // Moving the tag back within one project is no fight between projects.
    assert!(
        !back.warnings().iter().any(|w| w.contains(&t.tag)),
        "unexpected warnings: {:?}",
        back.warnings()
    );
}

#[test]
fn a_cached_build_recreates_a_removed_user_tag() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    built_ok(&ov);
    let id = image_of(&t.tag).expect("the build tagged its image");
    let rmi = Command::new("podman")
        .args(["rmi", &t.tag])
        .output()
        .unwrap();
    assert!(rmi.status.success(), "{rmi:?}");
    assert_eq!(image_of(&t.tag), None);
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(
        image_of(&t.tag).as_deref(),
        Some(id.as_str()),
        "the cached build did not put the tag back"
    );
}

#[test]
fn a_no_op_build_makes_at_most_three_engine_calls() {
    let t = Tagged::alone();
    let ov = ov_for(t.project.path());
    // `auto` picks one inspect per node on podman before 5, whose image
    // list is slow; the list itself is pinned here.
    ov.ok(&["settings", "set", "engine.image_check", "list"]);
    let cold = built_ok(&ov);
    assert!(
        cold.count("engine_calls") > 3,
        "a cold build cannot take 3 calls: {:?}",
        cold.summary()
    );
    let again = built_ok(&ov);
    assert_eq!(again.count("cached_local"), 5, "{:?}", again.summary());
    assert!(
        again.count("engine_calls") <= 3,
        "a no-op build made {} engine calls; warnings: {:?}",
        again.count("engine_calls"),
        again.warnings()
    );
    // The preamble's node tag gone (another cache dir's gc takes the tags
    // it owns, and keys are shared): its image lives on untagged as the
    // layers' parent, still a good hit. The list of tagged images does not
    // show it, so it costs one inspect more, and no rebuild.
    let store = ov_cache::Store::open(&ov.cache_dir().join("store")).unwrap();
    let (key, _) = store.last("preamble:app").unwrap().expect("the preamble");
    let untag = Command::new("podman")
        .args(["untag", &format!("localhost/ov-node:{key}")])
        .output()
        .unwrap();
    assert!(untag.status.success(), "{untag:?}");
    let untagged = built_ok(&ov);
    assert_eq!(
        untagged.count("cached_local"),
        5,
        "{:?}",
        untagged.summary()
    );
    assert!(
        untagged.count("engine_calls") <= 4,
        "a no-op build over an untagged parent made {} engine calls",
        untagged.count("engine_calls")
    );
    // One check per node instead: as cached, with a call per image-bearing
    // node (the preamble, 2 layers and the image) and the user's tag, but
    // no list.
    ov.ok(&["settings", "set", "engine.image_check", "each"]);
    let each = built_ok(&ov);
    assert_eq!(each.count("cached_local"), 5, "{:?}", each.summary());
    assert!(
        each.count("engine_calls") > 3,
        "per-node checks made only {} calls: did it list?",
        each.count("engine_calls")
    );
    ov.bad(&["settings", "set", "engine.image_check", "sometimes"]);
}

#[test]
fn two_projects_building_one_image_name_say_so_when_they_take_the_tag() {
    let t = Tagged::new();
    let other = Project::copy_of(t.project.path());
    other.write("layers/a/a.txt", "alpha from the other project\n");
    let ov = ov_for(t.project.path());
    let ov_other = ov_for(other.path());
    built_ok(&ov);
    let mine = image_of(&t.tag).unwrap();
    let theirs = built_ok(&ov_other);
    let taken = image_of(&t.tag).unwrap();
    assert_ne!(mine, taken);
    let said = |w: &[String], from: &str| {
        w.iter()
            .any(|w| w.contains(&t.tag) && w.contains(&from[..12.min(from.len())]))
    };
    assert!(
        said(&theirs.warnings(), &mine),
        "the other project took the tag silently: {:?}",
        theirs.warnings()
    );
    // Cached here, the tag comes back, and that is said too.
    let back = build(&ov, &[]);
    assert_eq!(back.code, Some(0), "{}", back.report());
    assert_eq!(back.count("built"), 0);
    assert_eq!(image_of(&t.tag), Some(mine));
    assert!(
        said(&back.warnings(), &taken),
        "the tag was taken back silently: {:?}",
        back.warnings()
    );
}

/// A `podman system service` of its own on a temp socket (same storage as
/// the shared one), so a test can kill it without disturbing other tests.
struct Service {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Service {
    fn start() -> Service {
        let mut s = Service {
            dir: tempfile::TempDir::with_prefix("ov-test-engine-").unwrap(),
            child: None,
        };
        s.restart();
        s
    }
    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("podman.sock")
    }
    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
    fn restart(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &self.endpoint()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = std::time::Instant::now();
        loop {
            let ping = Command::new("curl")
                .args(["-sf", "--max-time", "2", "--unix-socket"])
                .arg(self.socket())
                .arg("http://d/_ping")
                .output()
                .unwrap();
            if ping.status.success() {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the test's podman service did not answer"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time (user + system, in clock ticks) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state is field 3, utime 14.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn waiting_for_a_container_costs_the_engine_no_cpu_and_gives_its_exit_code() {
    // podman 4.3's compat wait spins a core of the service for as long as
    // the container runs; on two cores that slowed a disk script by a
    // tenth. A service of its own, so no other test's work is counted;
    // and only while the container sleeps (it says so through a bound
    // folder), as creating and removing it cost the service more on a
    // machine that other tests keep busy.
    let service = Service::start();
    let pid = service.child.as_ref().unwrap().id();
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let window = std::time::Duration::from_secs(3);
    let watch = {
        let started = started.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
            while !started.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the container never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let before = cpu_ticks(pid);
            std::thread::sleep(window);
            cpu_ticks(pid) - before
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(async {
        let engine = ov_rules::engine::Engine::connect(&service.endpoint())
            .await
            .expect("the test's podman service");
        let spec = ov_rules::engine::RunSpec {
            image: "localhost/bookworm-minbase:1".into(),
            script: "touch /w/started; sleep 5; echo done; exit 3".into(),
            privileged: false,
            user: None,
            binds: vec![format!("{}:/w", dir.path().display())],
            // `<pid>-<ms>` of a live process: a build that other tests
            // start beside this one removes the containers of runs whose
            // process is gone, and took this one's (exit 137) when its
            // id named no process.
            run_id: format!("{}-0", std::process::id()),
            timeout: Some(std::time::Duration::from_secs(120)),
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        engine.run(&spec, &cancel).await.expect("the run")
    });
    let ticks = watch.join().unwrap();
    assert_eq!(out.exit_code, 3, "{}", out.output);
    assert!(out.output.contains("done"), "{}", out.output);
    // A spinning wait takes a core for the whole window (300 ticks at
    // 100 Hz); a wait that blocks, next to nothing.
    let hz = 100;
    assert!(
        ticks < hz,
        "the service used {ticks} ticks of CPU in a {window:?} window while its container slept"
    );
}

#[test]
fn an_engine_killed_mid_build_is_named_and_the_next_build_cleans_up_after_it() {
    use std::io::{BufRead, BufReader};
    let t = Tagged::new();
    t.project.append(
        "image.yml",
        "            - {id: slow, command: sleep 30, exit_status: 0}\n",
    );
    let mut engine = Service::start();
    let ov = ov_for(t.project.path()).env("DOCKER_HOST", engine.endpoint());
    let mut child = ov
        .command(&["build", "--progress", "json"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reached = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("\"start\"") && l.contains("eval:app"));
    assert!(reached, "the build never reached its eval node");
    std::thread::sleep(std::time::Duration::from_secs(3));
    engine.kill();
    let rest: Vec<serde_json::Value> = lines
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let fail = rest
        .iter()
        .find(|e| e["event"] == "fail")
        .unwrap_or_else(|| panic!("no fail event: {rest:?}"));
    assert_eq!(fail["node"], "eval:app");
    let error = fail["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the container engine went away during") && error.contains("ov doctor"),
        "the error does not say the engine went away: {error}"
    );
    assert!(
        containers_of_run(pid) > 0,
        "the dead engine's run should have left its eval container"
    );
    engine.restart();
    let again = built_ok(&ov);
    assert_eq!(again.nodes("built"), vec!["eval:app"]);
    assert_eq!(
        again.nodes("cached"),
        vec!["image:app", "layer:a@app", "layer:b@app", "preamble:app"]
    );
    assert_eq!(
        containers_of_run(pid),
        0,
        "the next build did not remove what the run left"
    );
    let tmp = ov.cache_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "scratch left in {}: {left:?}",
        tmp.display()
    );
}

#[test]
fn image_tags_a_dead_run_never_recorded_are_removed_and_nothing_else() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    built_ok(&ov);
    // The image node's key, recorded by that build: its node tag is on the
    // user's image (whose labels carry this test's own env entry, so no
    // other build shares it).
    let tags = Command::new("podman")
        .args(["image", "inspect", "--format", "{{json .RepoTags}}", &t.tag])
        .output()
        .unwrap();
    let tags: Vec<String> = serde_json::from_slice(&tags.stdout).unwrap();
    let recorded = tags
        .iter()
        .find_map(|t| t.strip_prefix("localhost/ov-node:"))
        .unwrap_or_else(|| panic!("no node tag on the image: {tags:?}"))
        .to_string();
    let node_tag = |k: &str| format!("localhost/ov-node:{k}");
    // Two tags nothing recorded: one journaled by a run whose process is
    // gone, one by a live run (this test's process).
    let unique = |n: u8| {
        let mut k = recorded.clone();
        k.replace_range(..2, &format!("{n:02x}"));
        k.replace_range(2..8, "dead00");
        k
    };
    let (orphan, in_flight) = (unique(1), unique(2));
    for k in [&orphan, &in_flight] {
        let tagged = Command::new("podman")
            .args(["tag", "localhost/bookworm-minbase:1", &node_tag(k)])
            .output()
            .unwrap();
        assert!(tagged.status.success(), "{tagged:?}");
    }
    let journal = |run: &str, keys: &[&str]| {
        let dir = ov.cache_dir().join("tmp").join(run);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("engine-journal"), keys.join("\n") + "\n").unwrap();
    };
    journal("4194999-1", &[&orphan, &recorded]);
    journal(&format!("{}-1", std::process::id()), &[&in_flight]);
    let b = built_ok(&ov);
    let in_flight_left = image_of(&node_tag(&in_flight)).is_some();
    let _ = Command::new("podman")
        .args([
            "untag",
            "localhost/bookworm-minbase:1",
            &node_tag(&in_flight),
        ])
        .output();
    let orphan_left = image_of(&node_tag(&orphan)).is_some();
    let _ = Command::new("podman")
        .args(["untag", "localhost/bookworm-minbase:1", &node_tag(&orphan)])
        .output();
    assert!(!orphan_left, "the dead run's unrecorded tag is still there");
    assert!(in_flight_left, "a live run's tag was removed");
    assert!(
        image_of(&node_tag(&recorded)).is_some(),
        "a recorded key's image was removed"
    );
    assert!(
        b.warnings()
            .iter()
            .any(|w| w.contains("removed 1 image tag") && w.contains("4194999-1")),
        "the cleanup was not reported: {:?}",
        b.warnings()
    );
    assert!(!ov.cache_dir().join("tmp/4194999-1").exists());
}

/// `tag: auto` tags the image with the run's calver (ov's ComputeCalVer:
/// `<year>.<day of year>.<hour*100+minute>` in UTC, unpadded). The calver
/// is not in any key: a rebuild in a later minute runs nothing and tags
/// the same image with that run's calver.
#[test]
fn tag_auto_is_the_runs_calver_and_leaves_the_keys_alone() {
    let project = Project::copy_of(&local_fixture("deb-tasks"));
    project.edit("overthink.yml", "tag: test", "tag: auto");
    let ov = ov_for(project.path());
    let tags_of = |calvers: &[String]| -> Vec<(String, Option<String>)> {
        calvers
            .iter()
            .map(|c| {
                let t = format!("localhost/ov-test/app:{c}");
                let id = image_of(&t);
                (t, id)
            })
            .collect()
    };
    let before = ov::run::calver::now();
    built_ok(&ov);
    let after = ov::run::calver::now();
    let first = tags_of(&[before.clone(), after.clone()]);
    let tagged: Vec<&(String, Option<String>)> =
        first.iter().filter(|(_, id)| id.is_some()).collect();
    assert!(!tagged.is_empty(), "no calver tag among {first:?}");
    let id = tagged[0].1.clone();
    // Wait for the next minute so the next run's calver differs.
    while ov::run::calver::now() == after {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let mid = ov::run::calver::now();
    let again = built_ok(&ov);
    let later = ov::run::calver::now();
    let second = tags_of(&[mid, later]);
    let auto = image_of("localhost/ov-test/app:auto");
    for (t, _) in first.iter().chain(&second) {
        let _ = Command::new("podman").args(["untag", t, t]).output();
    }
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert!(
        second.iter().any(|(_, i)| *i == id),
        "the cached rebuild did not tag its calver on the same image: {second:?}"
    );
    assert_eq!(auto, None, "`auto` itself is no tag");
}

#[test]
fn importing_a_rootfs_leaves_no_copy_of_it_in_the_engines_tmpdir() {
    // podman's compat import kept a copy of every imported tarball in
    // /var/tmp/api_load.tar* (podman#28531): a restored or bootstrapped
    // base leaked its whole size on each build. A tarball of a size no
    // other test makes tells our copy from anyone else's.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/marker"), std::process::id().to_string()).unwrap();
    std::fs::write(root.join("etc/pad"), vec![b'x'; 4099]).unwrap();
    let tarball = dir.path().join("rootfs.tar");
    let tarred = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(tarred.success());
    let size = std::fs::metadata(&tarball).unwrap().len();
    let copies = || {
        std::fs::read_dir("/var/tmp")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("api_load.tar"))
            .filter(|e| e.metadata().is_ok_and(|m| m.len() == size))
            .count()
    };
    let before = copies();
    let tag = format!("localhost/ov-test/import:{}", std::process::id());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let engine = ov_rules::engine::Engine::connect(&ov_rules::engine::Engine::endpoint(None))
            .await
            .expect("the podman service scripts/setup.sh starts");
        engine.import(&tarball, &tag).await.expect("import")
    });
    let read = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .unwrap();
    let _ = Command::new("podman").args(["rmi", "-f", &tag]).output();
    assert!(
        String::from_utf8_lossy(&read.stdout).contains(id.hex()),
        "the tag is not on the imported image {id:?}"
    );
    assert_eq!(
        copies(),
        before,
        "the import left a copy of the tarball in /var/tmp"
    );
}
