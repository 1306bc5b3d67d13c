//! Helpers shared by the end-to-end tests: where the fixtures are, temp
//! copies of projects, and a runner for the built `ov` binary.
//!
//! Every [`Ov`] gets its own temp `--cache-dir`, its own empty
//! `OV_REPO_CACHE` and its own `XDG_CACHE_HOME`, so a test never sees
//! another test's caches and never writes under `~/.cache`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A spawned `ov` that takes longer than this is a hang, not a slow test.
/// Generous, because the VM tests beside the rest write gigabytes: on a
/// slow disk, a small write that must reach it (a store record's fsync)
/// can wait tens of seconds behind theirs.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The four shared fixture projects (`../shared/fixtures` beside this
/// repository, locally and on CI alike).
pub fn shared_fixture(name: &str) -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures"));
    let dir = root.join(name);
    assert!(
        dir.join("overthink.yml").is_file(),
        "shared fixture `{name}` is missing: expected {}/overthink.yml. The tests \
         need the `shared/` checkout beside this repository (../shared/fixtures).",
        dir.display()
    );
    dir
}

/// A project checked in under `tests/fixtures/`.
pub fn local_fixture(name: &str) -> PathBuf {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    assert!(dir.is_dir(), "missing test fixture {}", dir.display());
    dir
}

/// A throwaway copy of a project, for tests that change files.
pub struct Project {
    dir: TempDir,
    /// Tags `own_tag` gave out, removed from the engine with the project.
    own_tags: std::sync::Mutex<Vec<String>>,
}

impl Drop for Project {
    fn drop(&mut self) {
        let tags = std::mem::take(self.own_tags.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !tags.is_empty() {
            let _ = std::process::Command::new("podman")
                .arg("untag")
                .args(&tags)
                .output();
        }
    }
}

impl Project {
    /// Copies `src` (a project directory) into a fresh temp dir.
    pub fn copy_of(src: &Path) -> Project {
        let dir = TempDir::with_prefix("ov-test-project-").expect("temp dir");
        copy_tree(src, dir.path());
        Project {
            dir,
            own_tags: Default::default(),
        }
    }

    /// A copy of `tests/fixtures/mini`, a small valid project.
    pub fn mini() -> Project {
        Project::copy_of(&local_fixture("mini"))
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (creating parent dirs), replacing what was there.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        self
    }

    /// Appends to `rel`.
    pub fn append(&self, rel: &str, more: &str) -> &Self {
        let mut text = self.read(rel);
        text.push_str(more);
        self.write(rel, text)
    }

    /// Replaces the one occurrence of `from` in `rel` by `to`.
    pub fn edit(&self, rel: &str, from: &str, to: &str) -> &Self {
        let text = self.read(rel);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{rel} should hold `{from}` exactly once:\n{text}"
        );
        self.write(rel, text.replacen(from, to, 1))
    }

    /// Gives the project's images a tag of their own (instead of its
    /// default tag, which other tests' copies share) and returns `image`'s
    /// reference. Tests that run or inspect a built image by its tag need
    /// this: tests run in parallel, and another test building a project
    /// with the same image name moves a shared tag to its own image
    /// between our build and our check.
    pub fn own_tag(&self, image: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = format!(
            "t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let text = self.read("overthink.yml");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("tag: "))
            .expect("the project sets a default tag");
        let indent = &line[..line.len() - line.trim_start().len()];
        self.edit("overthink.yml", line, &format!("{indent}tag: {unique}"));
        let text = self.read("overthink.yml");
        let registry = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("registry: "))
            .expect("the fixture names a registry");
        let reference = format!("{registry}/{image}:{unique}");
        self.own_tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reference.clone());
        reference
    }

    /// The text of `rel`.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Removes the file `rel`.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.path().join(rel)).unwrap();
        self
    }

    /// Every file under the project with its contents, to check that a
    /// command wrote nothing into the project.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        snapshot(self.path(), self.path(), &mut out);
        out.sort();
        out
    }
}

fn snapshot(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            snapshot(root, &path, out);
        } else {
            let data = std::fs::read(&path).unwrap_or_default();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), data));
        }
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The `ov` binary pointed at one project, with private cache dirs.
pub struct Ov {
    project: PathBuf,
    cache: TempDir,
    repo_cache: TempDir,
    xdg: TempDir,
    pass_cache_flag: bool,
    env: Vec<(String, OsString)>,
    config: TempDir,
    timeout: Duration,
    cwd: Option<PathBuf>,
}

impl Ov {
    /// `ov -C project --cache-dir <fresh temp dir>`.
    pub fn new(project: &Path) -> Ov {
        Ov {
            project: project.to_path_buf(),
            cache: TempDir::with_prefix("ov-test-cache-").unwrap(),
            repo_cache: TempDir::with_prefix("ov-test-repos-").unwrap(),
            xdg: TempDir::with_prefix("ov-test-xdg-").unwrap(),
            pass_cache_flag: true,
            env: Vec::new(),
            config: TempDir::with_prefix("ov-test-config-").unwrap(),
            timeout: TIMEOUT,
            cwd: None,
        }
    }

    /// Another `ov` on the same project and the same cache dirs.
    pub fn sharing_cache_with(project: &Path, other: &Ov) -> Ov {
        let mut ov = Ov::new(project).with_timeout(other.timeout);
        ov.cache = TempDir::with_prefix("ov-unused-").unwrap();
        ov.env
            .push(("OV_CACHE_DIR".into(), other.cache_dir().into()));
        ov.pass_cache_flag = false;
        ov
    }

    /// Allows each run this long (builds take minutes, not seconds).
    pub fn with_timeout(mut self, t: Duration) -> Ov {
        self.timeout = t;
        self
    }

    /// Runs `ov` in `dir` (to test paths given relative to it).
    pub fn in_dir(mut self, dir: &Path) -> Ov {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The command line of `ov ARGS`, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ov"));
        cmd.arg("-C").arg(&self.project);
        if self.pass_cache_flag {
            cmd.arg("--cache-dir").arg(self.cache.path());
        }
        cmd.args(args)
            .env_remove("OV_CACHE_DIR")
            .env_remove("OV_PROJECT_DIR")
            .env("OV_REPO_CACHE", self.repo_cache.path())
            .env("XDG_CACHE_HOME", self.xdg.path())
            // VM state (generated SSH keys) stays in the test's own dirs.
            .env_remove("OV_STATE_DIR")
            .env("XDG_DATA_HOME", self.xdg.path().join("data"))
            .env("OV_CONFIG_DIR", self.config.path())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs `ov ARGS` under GNU time, requires it to succeed, and returns
    /// its peak RSS in KiB.
    pub fn peak_rss_kib(&self, args: &[&str]) -> u64 {
        let inner = self.command(args);
        let rss_file = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("/usr/bin/time");
        cmd.args(["-f", "%M", "-o"])
            .arg(rss_file.path())
            .arg(inner.get_program())
            .args(inner.get_args());
        if let Some(dir) = inner.get_current_dir() {
            cmd.current_dir(dir);
        }
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd
            .output()
            .expect("GNU time runs (scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "ov {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(rss_file.path())
            .unwrap()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap()
    }

    /// Leaves `--cache-dir` off the command line (to test `OV_CACHE_DIR`).
    pub fn without_cache_flag(mut self) -> Ov {
        self.pass_cache_flag = false;
        self
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Ov {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The cache dir given as `--cache-dir`.
    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    /// The (initially empty) `OV_REPO_CACHE`.
    pub fn repo_cache(&self) -> &Path {
        self.repo_cache.path()
    }

    /// Runs `ov ARGS`, failing the test if it hangs.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        let shown = format!("ov {}", args.join(" "));
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn ov");
        let out = reader(child.stdout.take().unwrap());
        let err = reader(child.stderr.take().unwrap());
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{shown}` did not finish within {:?}", self.timeout);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Run {
            cmd: shown,
            code: status.code(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
            elapsed: started.elapsed(),
        }
    }

    /// Runs `ov ARGS` and asserts it exits 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        r.assert_code(0);
        r
    }

    /// Runs `ov ARGS` and asserts it exits 2 (bad input) with something on stderr.
    pub fn bad(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        r.assert_code(2);
        assert!(
            !r.stderr.trim().is_empty(),
            "{}: exit 2 with empty stderr",
            r.cmd
        );
        r
    }

    /// `ov graph --format json [TARGETS]`, parsed.
    pub fn graph(&self, targets: &[&str]) -> Graph {
        let mut args = vec!["graph", "--format", "json"];
        args.extend_from_slice(targets);
        Graph::parse(&self.ok(&args).stdout)
    }

    /// `ov image inspect NAME`, parsed.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["image", "inspect", name]).stdout).unwrap()
    }

    /// Asserts the cache dir holds nothing but ov's caches.
    pub fn assert_only_caches(&self) {
        let names = dir_names(self.cache_dir());
        let allowed: BTreeSet<String> = [
            "stat-cache.v1",
            "parse-cache.v1",
            "dry-run.v2",
            ov::plan::kept_layers::FILE,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert!(
            names.is_subset(&allowed),
            "cache dir holds more than caches: {names:?}"
        );
    }
}

/// Sets the mtime of everything under `dir` (and of `dir`) a minute back,
/// as for a project last edited a while ago: only inputs that have settled
/// are remembered by the dry run's memo.
pub fn backdate(dir: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            backdate(&path);
        } else {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(old).unwrap();
        }
    }
    std::fs::File::open(dir).unwrap().set_modified(old).unwrap();
}

/// The names of the entries of `dir` (empty when it does not exist).
pub fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// What one run of `ov` did.
pub struct Run {
    /// The command, for messages.
    pub cmd: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts stderr contains every one of `parts`.
    pub fn stderr_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "`{}`: stderr lacks {p:?}\n--- stderr\n{}",
                self.cmd,
                self.stderr
            );
        }
        self
    }

    /// Asserts stdout contains every one of `parts`.
    pub fn stdout_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(
                self.stdout.contains(p),
                "`{}`: stdout lacks {p:?}\n--- stdout\n{}",
                self.cmd,
                self.stdout
            );
        }
        self
    }

    /// The lines of stdout.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// One node of `ov graph --format json`.
#[derive(Clone, Debug)]
pub struct GraphNode {
    /// `kind:name`.
    pub id: String,
    /// The node kind.
    pub kind: String,
    /// The key, hex.
    pub key: String,
}

/// `ov graph --format json`, parsed.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Nodes in the order printed (topological).
    pub nodes: Vec<GraphNode>,
    /// (from, to) ids.
    pub edges: Vec<(String, String)>,
}

impl Graph {
    /// Parses the JSON output.
    pub fn parse(text: &str) -> Graph {
        let v: serde_json::Value = serde_json::from_str(text).expect("graph JSON");
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_string();
        Graph {
            nodes: v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| GraphNode {
                    id: s(n, "id"),
                    kind: s(n, "kind"),
                    key: s(n, "key"),
                })
                .collect(),
            edges: v["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (s(e, "from"), s(e, "to")))
                .collect(),
        }
    }

    /// How many nodes of each kind, sorted by kind.
    pub fn kinds(&self) -> Vec<(String, usize)> {
        let mut m = std::collections::BTreeMap::new();
        for n in &self.nodes {
            *m.entry(n.kind.clone()).or_insert(0) += 1;
        }
        m.into_iter().collect()
    }

    /// Node ids, sorted.
    pub fn ids(&self) -> BTreeSet<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// Ids of the nodes of one kind, sorted.
    pub fn ids_of(&self, kind: &str) -> BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.id.clone())
            .collect()
    }

    /// The key of node `id`.
    pub fn key(&self, id: &str) -> &str {
        &self
            .nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in {:?}", self.ids()))
            .key
    }

    /// id → key for every node.
    pub fn keys(&self) -> std::collections::BTreeMap<String, String> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), n.key.clone()))
            .collect()
    }

    /// Whether there is an edge `from → to`.
    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        self.edges.iter().any(|(a, b)| a == from && b == to)
    }

    /// The ids of the nodes with an edge into `id`.
    pub fn deps(&self, id: &str) -> BTreeSet<String> {
        self.edges
            .iter()
            .filter(|(_, b)| b == id)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// `id` and everything it transitively depends on.
    pub fn ancestors(&self, id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![id.to_string()];
        while let Some(n) = stack.pop() {
            if out.insert(n.clone()) {
                stack.extend(self.deps(&n));
            }
        }
        out
    }
}

/// How many containers of the run of process `pid` exist.
pub fn containers_of_run(pid: u32) -> usize {
    let out = Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Labels}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("org.overthinkos.ov.run:{pid}-")))
        .count()
}

/// The repository the realistic project takes its build.yml and remote
/// layers from, as it lies in a repo cache.
pub const ACME_REPO: &str = "github.com/acme/ovbase";
/// Its version the project pins.
pub const ACME_VERSION: &str = "v1";
/// A line only the repository's supervisord header holds, so a test can
/// tell it from the project's own file of the same name.
pub const ACME_HEADER_MARK: &str = "; header from the acme repository";

/// Where the realistic project's repository is checked out in `repo_cache`.
pub fn acme_checkout(repo_cache: &Path) -> PathBuf {
    repo_cache.join(format!("github.com/acme/ovbase@{ACME_VERSION}"))
}

/// Lays the acme repository out in `repo_cache` as a checkout would: a
/// build.yml (examples/web's: Debian's apt template and the supervisord
/// init) whose init header lives in the repository's `templates/`, and
/// a `supervisord` layer.
/// Certificates the host trusts locally go into `layer_dir/local-ca/`,
/// which the npm builder layer (`tests/fixtures/npm-stage/layers/npm-tool`)
/// installs: on a network that intercepts TLS, node then trusts them too.
pub fn trust_host_local_cas(layer_dir: &Path) {
    let Ok(dir) = std::fs::read_dir("/usr/local/share/ca-certificates") else {
        return;
    };
    for e in dir.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "crt") && path.is_file() {
            std::fs::create_dir_all(layer_dir.join("local-ca")).unwrap();
            std::fs::copy(&path, layer_dir.join("local-ca").join(e.file_name())).unwrap();
        }
    }
}

/// `sh -c script` in a container of `image`, which must succeed; its stdout.
pub fn podman_run(image: &str, script: &str) -> String {
    let out = Command::new("podman")
        .args(["run", "--rm", image, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman run {image} `{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `podman ARGS`' stdout; the test fails when podman does.
pub fn podman(args: &[&str]) -> String {
    let out = Command::new("podman").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `image` (examples/web's, or a restored copy) with its own
/// entrypoint, waits up to 15 s for supervisord to report nginx RUNNING,
/// and returns that status line and the served page's file; the
/// container is removed before the checks.
pub fn supervised_nginx(image: &str) -> (String, String) {
    let name = format!(
        "ov-test-web-{}-{}",
        std::process::id(),
        image
            .rsplit(':')
            .next()
            .unwrap_or("")
            .replace(['/', '.'], "_")
    );
    let started = Command::new("podman")
        .args(["run", "-d", "--name", &name, image])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "podman run {image}: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let exec = |args: &[&str]| {
        let out = Command::new("podman")
            .args(["exec", &name])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut status = String::new();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        status = exec(&["supervisorctl", "status", "nginx"]);
        if status.contains("RUNNING") {
            break;
        }
    }
    let page = exec(&["cat", "/srv/www/index.html"]);
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    (status, page)
}

pub fn acme_repo(repo_cache: &Path) {
    let examples = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web"));
    let repo = acme_checkout(repo_cache);
    std::fs::create_dir_all(repo.join("templates")).unwrap();
    std::fs::create_dir_all(repo.join("layers/supervisord")).unwrap();
    std::fs::copy(examples.join("build.yml"), repo.join("build.yml")).unwrap();
    let header =
        std::fs::read_to_string(examples.join("templates/supervisord.header.conf")).unwrap();
    std::fs::write(
        repo.join("templates/supervisord.header.conf"),
        format!("{ACME_HEADER_MARK}\n{header}"),
    )
    .unwrap();
    std::fs::copy(
        examples.join("layers/supervisord/layer.yml"),
        repo.join("layers/supervisord/layer.yml"),
    )
    .unwrap();
    // The npm builder, as ov's own build.yml has it, and the layer that
    // makes a builder image of Debian's npm.
    let npm = local_fixture("npm-stage");
    let npm_build = std::fs::read_to_string(npm.join("build.yml")).unwrap();
    let builder = &npm_build[npm_build
        .find("\nbuilder:")
        .expect("npm-stage has a builder")..];
    let mut build = std::fs::read_to_string(repo.join("build.yml")).unwrap();
    build.push_str(builder);
    std::fs::write(repo.join("build.yml"), build).unwrap();
    copy_tree(&npm.join("layers/npm-tool"), &repo.join("layers/npm-tool"));
    trust_host_local_cas(&repo.join("layers/npm-tool"));
}

impl Project {
    /// A Debian project in the shape of a real ov project: its build.yml
    /// and its init's layer come by remote reference from the acme
    /// repository (see [`acme_repo`], which the caller lays out in the
    /// repo cache). Its image `web`, on the external base
    /// `localhost/bookworm-minbase:1`, has a user (`app`, 1000:1000, from
    /// `defaults`), installs a local layer with a service and one (`app`)
    /// whose package.json the npm builder stage installs, on the image
    /// `npm-builder` made of the repository's `npm-tool` layer, and whose
    /// `env` names the home with `~`. The project holds no `templates/` of
    /// its own: the init header can only come from the repository.
    pub fn realistic() -> Project {
        let examples = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web"));
        let p = Project {
            dir: TempDir::with_prefix("ov-test-project-").expect("temp dir"),
            own_tags: Default::default(),
        };
        copy_tree(&examples.join("layers/web"), &p.path().join("layers/web"));
        p.edit(
            "layers/web/layer.yml",
            "require: [supervisord]",
            &format!("require: [\"@{ACME_REPO}/layers/supervisord:{ACME_VERSION}\"]"),
        );
        p.write(
            "overthink.yml",
            format!(
                "version: 2026.141.1600\n\
                 include:\n  - image.yml\n  - \"@{ACME_REPO}/build.yml:{ACME_VERSION}\"\n\
                 discover:\n  layer:\n    - path: layers\n      recursive: true\n\
                 defaults:\n  registry: localhost/ov-realistic\n  build: [deb]\n  \
                 distro: [debian:12, debian]\n  tag: dev\n  user: app\n  uid: 1000\n  gid: 1000\n"
            ),
        );
        // The image's user (made by the bootstrap preamble) is a default,
        // so the npm builder image has the same user and home as the image
        // its stage builds for. The `app` layer's dependencies are
        // installed by the npm stage; its `env` names the home with `~`.
        p.write(
            "layers/app/package.json",
            "{\n  \"dependencies\": {\n    \"is-number\": \"7.0.0\"\n  }\n}\n",
        );
        p.write(
            "layers/app/layer.yml",
            "layer:\n  env:\n    NPM_CONFIG_PREFIX: ~/.npm-global\n  path_append:\n    - ~/.npm-global/bin\n",
        );
        p.write(
            "image.yml",
            format!(
                "version: 2026.141.1600\n\
                 image:\n  \
                 npm-builder:\n    base: localhost/bookworm-minbase:1\n    \
                 layer:\n      - \"@{ACME_REPO}/layers/npm-tool:{ACME_VERSION}\"\n  \
                 web:\n    base: localhost/bookworm-minbase:1\n    \
                 builder:\n      npm: npm-builder\n    layer:\n      - web\n      - app\n"
            ),
        );
        p
    }
}
