//! The remote cache: the client against a misbehaving server (each fault of
//! "never worse than no cache"), signing, and whole builds: one machine
//! uploads to the nginx WebDAV server that `scripts/setup-cache-server.sh`
//! starts, another (a fresh cache dir) restores from it read-only.

mod fault;

use crate::build::{build, ov_for, Built};
use crate::util::{local_fixture, podman, supervised_nginx, Project};
use fault::{Fault, FaultServer};
use ov_cache::remote::{Config, Mode, RemoteCache, RemoteError, SigningKey};
use ov_cache::Digest as _;
use ov_cache::{ActionResult, BlobDigest, BlobRef, Lookup, NodeKey, Store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The time-out the fault tests give the client.
const TIMEOUT: Duration = Duration::from_millis(1500);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(url: &str, key: Option<&str>) -> RemoteCache {
    let mut cfg = Config::new(url, Mode::ReadWrite, None, None, None).unwrap();
    cfg.timeout = TIMEOUT;
    cfg.signing_key = key.and_then(|k| SigningKey::new(k.as_bytes().to_vec()));
    RemoteCache::new(cfg).unwrap()
}

/// A store holding one result with a 3 MiB blob (several chunks) and a
/// small one, and its key.
fn stocked() -> (tempfile::TempDir, Store, NodeKey, ActionResult) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let d = store.put_blob_bytes(&big).unwrap();
    let log = store.put_blob_bytes(b"a log").unwrap();
    let key = NodeKey::of_bytes(format!("remote-test {:?}", Instant::now()).as_bytes());
    let result = ActionResult {
        node_id: "layer:a@app".into(),
        kind: "layer".into(),
        output: format!("sha256:{}", "0".repeat(64)),
        blobs: vec![
            BlobRef {
                name: "rootfs.tar".into(),
                digest: d,
                size: big.len() as u64,
            },
            BlobRef {
                name: "log".into(),
                digest: log,
                size: 5,
            },
        ],
        duration_ms: 1,
        finished_unix_ms: 1,
        manifest: vec![],
        meta: serde_json::json!({}),
    };
    store.put_action(&key, &result).unwrap();
    (dir, store, key, result)
}

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// Every content file under a store (and its temp files).
fn content_files(store: &Store) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![store.root().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.starts_with(store.root().join("content-v2"))
                || p.starts_with(store.root().join("tmp"))
            {
                out.push(p);
            }
        }
    }
    out
}

/// Each content file's bytes hash to its name.
fn assert_store_sound(store: &Store) {
    for p in content_files(store) {
        assert!(
            p.starts_with(store.root().join("content-v2")),
            "a temp file was left: {}",
            p.display()
        );
        let bytes = std::fs::read(&p).unwrap();
        let name: String = p
            .strip_prefix(store.root().join("content-v2/sha256"))
            .unwrap()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            BlobDigest::of_bytes(&bytes).to_string(),
            name,
            "{}",
            p.display()
        );
    }
}

#[test]
fn a_round_trip_through_a_server_restores_the_result_and_its_blobs() {
    let rt = runtime();
    let server = FaultServer::start();
    let (_a, store, key, result) = stocked();
    let c = client(&server.url, None);
    rt.block_on(c.publish(&store, &key, &result)).unwrap();
    // The record, two blobs and the entry.
    assert_eq!(server.paths().len(), 4, "{:?}", server.paths());
    assert!(server.paths().contains(&format!("/ac/{key}")));
    // A second upload sends no blob again (HEAD first).
    let up = c.bytes_uploaded();
    rt.block_on(c.publish(&store, &key, &result)).unwrap();
    assert_eq!(c.bytes_uploaded(), up);
    let (_b, other) = fresh_store();
    let got = rt.block_on(c.fetch(&other, &key)).unwrap();
    assert_eq!(got.as_ref(), Some(&result));
    assert_eq!(other.get_action(&key).unwrap(), Lookup::Hit(result.clone()));
    assert_eq!(
        other.read_blob(&result.blobs[0].digest).unwrap().len(),
        3 << 20
    );
    assert_store_sound(&other);
    // A key the server lacks is a plain miss.
    let absent = NodeKey::of_bytes(b"absent");
    assert_eq!(rt.block_on(c.fetch(&other, &absent)).unwrap(), None);
}

/// Publishes a result, turns `fault` on, and fetches into a fresh store:
/// the error, how long it took, and the store.
struct Fetched {
    err: RemoteError,
    took: Duration,
    _dir: tempfile::TempDir,
    store: Store,
    key: NodeKey,
    result: ActionResult,
}

fn fetch_under(fault: Fault) -> Fetched {
    let rt = runtime();
    let server = FaultServer::start();
    let (_a, store, key, result) = stocked();
    let c = client(&server.url, None);
    rt.block_on(c.publish(&store, &key, &result)).unwrap();
    server.set(fault);
    let (dir, other) = fresh_store();
    let started = Instant::now();
    let err = rt
        .block_on(c.fetch(&other, &key))
        .expect_err("a misbehaving server gave a hit");
    Fetched {
        err,
        took: started.elapsed(),
        _dir: dir,
        store: other,
        key,
        result,
    }
}

fn assert_nothing_kept(store: &Store, key: &NodeKey, result: &ActionResult) {
    assert_eq!(store.get_action(key).unwrap(), Lookup::Miss);
    for b in &result.blobs {
        if b.size > 100 {
            assert!(!store.has_blob(&b.digest), "{} entered the store", b.name);
        }
    }
    assert_store_sound(store);
}

#[test]
fn a_server_answering_500_is_a_server_failure() {
    let f = fetch_under(Fault::Status500);
    assert!(f.err.is_server_failure(), "{}", f.err);
    assert!(f.err.to_string().contains("500"), "{}", f.err);
    assert!(f.took < TIMEOUT, "{:?}", f.took);
    assert!(content_files(&f.store).is_empty());
}

#[test]
fn a_connection_dropped_without_an_answer_is_a_server_failure() {
    let f = fetch_under(Fault::Reset);
    assert!(f.err.is_server_failure(), "{}", f.err);
    assert!(f.took < TIMEOUT, "{:?}", f.took);
    assert!(content_files(&f.store).is_empty());
}

#[test]
fn a_slow_server_costs_one_time_out() {
    let f = fetch_under(Fault::Slow(Duration::from_secs(30)));
    assert!(f.err.is_server_failure(), "{}", f.err);
    assert!(f.err.to_string().contains("timed out"), "{}", f.err);
    assert!(f.took >= TIMEOUT && f.took < TIMEOUT * 3, "{:?}", f.took);
    assert!(content_files(&f.store).is_empty());
}

#[test]
fn transfers_slower_than_the_time_out_but_moving_complete() {
    // 3 MiB at 64 KiB per 50 ms: about 2.4 s each way, longer than the
    // time-out, which bounds a stall, not a transfer.
    let rt = runtime();
    let server = FaultServer::start();
    server.set(Fault::Trickle);
    let (_a, store, key, result) = stocked();
    let c = client(&server.url, None);
    let started = Instant::now();
    rt.block_on(c.publish(&store, &key, &result)).unwrap();
    assert!(started.elapsed() > TIMEOUT, "{:?}", started.elapsed());
    let (_b, other) = fresh_store();
    let started = Instant::now();
    let got = rt.block_on(c.fetch(&other, &key)).unwrap();
    assert!(started.elapsed() > TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(got.as_ref(), Some(&result));
}

#[test]
fn a_truncated_blob_never_enters_the_store() {
    let f = fetch_under(Fault::Truncate { over: 64 << 10 });
    // A body cut short, with the connection, is the server failing.
    assert!(f.err.is_server_failure(), "{}", f.err);
    assert_nothing_kept(&f.store, &f.key, &f.result);
}

#[test]
fn wrong_bytes_are_refused_and_never_enter_the_store() {
    let f = fetch_under(Fault::WrongBytes { over: 64 << 10 });
    assert!(matches!(f.err, RemoteError::Rejected(_)), "{}", f.err);
    assert!(!f.err.is_server_failure());
    assert!(f.err.to_string().contains("hash"), "{}", f.err);
    assert_nothing_kept(&f.store, &f.key, &f.result);
}

#[test]
fn a_server_that_is_down_costs_no_more_than_the_time_out() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rt = runtime();
    let c = client(&format!("http://127.0.0.1:{port}/"), None);
    let (_d, store) = fresh_store();
    let started = Instant::now();
    let err = rt
        .block_on(c.fetch(&store, &NodeKey::of_bytes(b"k")))
        .unwrap_err();
    assert!(err.is_server_failure(), "{err}");
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
}

#[test]
fn a_damaged_local_blob_is_not_uploaded() {
    let rt = runtime();
    let server = FaultServer::start();
    let (_a, store, key, result) = stocked();
    let big = &result.blobs[0];
    let hex = big.digest.to_string();
    let path = store.content_path(&big.digest);
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&path, perm).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = rt
        .block_on(client(&server.url, None).publish(&store, &key, &result))
        .unwrap_err();
    assert!(matches!(err, RemoteError::Local(_)), "{err}");
    assert!(
        !server.paths().iter().any(|p| p.contains(&hex)),
        "the damaged blob reached the server: {:?}",
        server.paths()
    );
    assert!(!server.paths().iter().any(|p| p.contains("/ac/")));
    assert!(!store.has_blob(&big.digest), "the damaged blob was kept");
}

#[test]
fn signed_entries_check_with_the_key_and_only_with_it() {
    let rt = runtime();
    let server = FaultServer::start();
    let (_a, store, key, result) = stocked();
    rt.block_on(client(&server.url, Some("k1")).publish(&store, &key, &result))
        .unwrap();
    let fetch = |k: Option<&str>| {
        let (_d, s) = fresh_store();
        let r = rt.block_on(client(&server.url, k).fetch(&s, &key));
        let kept = content_files(&s).len();
        (r, kept)
    };
    let (ok, _) = fetch(Some("k1"));
    assert_eq!(ok.unwrap().as_ref(), Some(&result));
    // Without a key, signatures are not asked for.
    assert!(fetch(None).0.unwrap().is_some());
    let (wrong, kept) = fetch(Some("k2"));
    let wrong = wrong.unwrap_err();
    assert!(wrong.to_string().contains("signature"), "{wrong}");
    assert_eq!(kept, 0, "a wrongly signed entry left blobs behind");
    // An unsigned entry is refused when a key is set.
    let (_b, s2) = fresh_store();
    let (_c, store2, key2, result2) = stocked();
    rt.block_on(client(&server.url, None).publish(&store2, &key2, &result2))
        .unwrap();
    let unsigned = rt
        .block_on(client(&server.url, Some("k1")).fetch(&s2, &key2))
        .unwrap_err();
    assert!(unsigned.to_string().contains("not signed"), "{unsigned}");
}

// --- whole builds -----------------------------------------------------------

/// Starts (or finds running) the nginx cache of `scripts/setup-cache-server.sh`
/// and returns a base URL on it named `name`, made unique to this run when
/// `fresh` (so tests share no entries).
pub fn nginx_base(name: &str, fresh: bool) -> NginxPrefix {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-cache-server.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !fresh {
        return NginxPrefix {
            url: format!("http://127.0.0.1:8081/{name}/"),
            owned: false,
        };
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    NginxPrefix {
        url: format!(
            "http://127.0.0.1:8081/{name}-{}-{nanos}/",
            std::process::id()
        ),
        owned: true,
    }
}

/// A base URL on the nginx cache. A fresh one is this test's own, and its
/// uploads are deleted with it: the server's disk is the machine's, and
/// the VM chain alone uploads gigabytes a run would otherwise leave there.
pub struct NginxPrefix {
    url: String,
    owned: bool,
}

impl NginxPrefix {
    /// Deletes what was uploaded under it (WebDAV `DELETE` of the whole
    /// collection); a prefix that is not this test's own is left alone.
    pub fn delete(&self) {
        if self.owned {
            let _ = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-X", "DELETE", &self.url])
                .status();
        }
    }
}

impl std::ops::Deref for NginxPrefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl Drop for NginxPrefix {
    fn drop(&mut self) {
        self.delete();
    }
}

fn remote_counts(b: &Built) -> serde_json::Value {
    b.summary()["remote"].clone()
}

/// What machine B, with a fresh cache dir and a read-only remote, must see
/// for a project machine A built and uploaded: every node restored, no
/// engine build, nothing uploaded. (With images stored as OCI blobs, the
/// same holds with the images removed from the engine first.)
fn assert_restored_everything(b: &Built, nodes: usize) {
    assert_eq!(b.code, Some(0), "{}", b.report());
    assert_eq!(b.count("built"), 0, "{:?}", b.nodes("built"));
    assert_eq!(
        b.count("cached_remote") as usize,
        nodes,
        "{:?}",
        b.summary()
    );
    assert_eq!(b.count("engine_builds"), 0);
    let r = remote_counts(b);
    assert_eq!(r["hits"], nodes, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["uploads"], 0, "{r}");
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
}

#[test]
fn a_second_machine_restores_a_debian_build_from_nginx() {
    let base = nginx_base("deb-tasks", true);
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let a = ov_for(p.path());
    let built = build(&a, &["--remote-cache", &base]);
    assert_eq!(built.code, Some(0), "{}", built.report());
    assert_eq!(built.count("built"), 5);
    let r = remote_counts(&built);
    assert_eq!(r["uploads"], 5, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert!(r["bytes_up"].as_u64().unwrap() > 0, "{r}");

    let b = ov_for(p.path());
    // Asked first, `ov graph` says what B's build would restore, and
    // restores none of it. It asks no engine, so B must have resolved the
    // external base once (any build does) for its dependents' keys.
    b.ok(&["build", "base:localhost/bookworm-minbase:1"]);
    let graph: serde_json::Value = serde_json::from_str(
        &b.ok(&["graph", "--format", "json", "--remote-cache", &base])
            .stdout,
    )
    .unwrap();
    let remote: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "remote")
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(remote.len(), 5, "{graph:#}");
    assert!(remote.contains(&"eval:app"), "{remote:?}");
    b.ok(&["build", "--dry-run"])
        .stdout_has(&["5 nodes would run"]);
    let restored = build(
        &b,
        &["--remote-cache", &base, "--remote-cache-mode", "read"],
    );
    assert_restored_everything(&restored, 5);
    assert!(remote_counts(&restored)["bytes_down"].as_u64().unwrap() > 0);
    // Every result and every blob it names (the eval's report, the logs)
    // came from the remote into B's store, whole and verified.
    let store = Store::open(&b.cache_dir().join("store")).unwrap();
    for node in [
        "preamble:app",
        "layer:a@app",
        "layer:b@app",
        "image:app",
        "eval:app",
    ] {
        let (key, r) = store
            .last(node)
            .unwrap()
            .unwrap_or_else(|| panic!("{node} not recorded"));
        assert!(
            matches!(store.get_action(&key).unwrap(), Lookup::Hit(_)),
            "{node}"
        );
        for blob in &r.blobs {
            store.read_blob(&blob.digest).unwrap();
        }
        if node == "eval:app" {
            assert!(!r.blobs.is_empty(), "the eval's report was not restored");
        }
    }
    assert_store_sound(&store);
    // A no-op on B is then local.
    let again = build(
        &b,
        &["--remote-cache", &base, "--remote-cache-mode", "read"],
    );
    assert_eq!(again.count("cached_local"), 5, "{:?}", again.summary());
    assert_eq!(remote_counts(&again)["hits"], 0);
}

#[test]
fn a_failing_server_costs_one_warning_and_shows_no_credential() {
    let server = FaultServer::start();
    server.set(Fault::Status500);
    let url = server.url.replace("http://", "http://ci:hunter2@");
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path()).env("OV_REMOTE_CACHE", &url);
    let b = build(&ov, &[]);
    assert_eq!(b.code, Some(0), "{}", b.report());
    assert_eq!(b.count("built"), 5);
    // One warning about the server (a loaded engine may add its own about
    // listing images, which is not this test's business).
    let warnings: Vec<String> = b
        .warnings()
        .into_iter()
        .filter(|w| w.contains("remote") || w.contains("127.0.0.1"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("500"), "{warnings:?}");
    assert!(warnings[0].contains("127.0.0.1"), "{warnings:?}");
    // It stopped asking after the first failure (nodes already asking at
    // that moment may fail too).
    let errors = remote_counts(&b)["errors"].as_u64().unwrap();
    assert!((1..=2).contains(&errors), "{:?}", b.summary());
    let all = format!("{}{:?}", b.stderr, b.events);
    assert!(!all.contains("hunter2"), "{all}");
    let auths = server.authorizations();
    assert!(!auths.is_empty() && auths.len() <= 2, "{auths:?}");
    assert!(
        auths.iter().all(|a| a == "Basic Y2k6aHVudGVyMg=="),
        "{auths:?}"
    );
    // Plain progress, and bad input, hide it too.
    let plain = ov.run(&["build", "--progress", "plain"]);
    assert!(!format!("{}{}", plain.stdout, plain.stderr).contains("hunter2"));
    let bad = ov.bad(&["build", "--remote-cache", "ftp://ci:hunter2@host/"]);
    assert!(!bad.stderr.contains("hunter2"), "{}", bad.stderr);
    let token = ov_for(p.path())
        .env("OV_REMOTE_CACHE", &server.url)
        .env("OV_REMOTE_CACHE_TOKEN", "tok-s3cr3t");
    let t = build(&token, &[]);
    assert!(!format!("{}{:?}", t.stderr, t.events).contains("tok-s3cr3t"));
    assert!(server
        .authorizations()
        .contains(&"Bearer tok-s3cr3t".to_string()));
}

#[test]
fn wrong_bytes_from_the_server_leave_the_build_local_and_the_store_sound() {
    let server = FaultServer::start();
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let a = ov_for(p.path()).env("OV_REMOTE_CACHE", &server.url);
    let built = build(&a, &[]);
    assert_eq!(remote_counts(&built)["uploads"], 5, "{:?}", built.summary());
    server.set(Fault::WrongBytes { over: 0 });
    let b = ov_for(p.path()).env("OV_REMOTE_CACHE", &server.url);
    let r = build(&b, &["--remote-cache-mode", "read"]);
    assert_eq!(r.code, Some(0), "{}", r.report());
    // Layers and images whose engine image exists are hits either way; no
    // node was restored from the damaged entries.
    assert_eq!(r.count("cached_remote"), 0, "{:?}", r.summary());
    assert_eq!(r.warnings().len(), 1, "{:?}", r.warnings());
    let counts = remote_counts(&r);
    assert_eq!(counts["errors"], 5, "{counts}");
    assert_eq!(counts["hits"], 0, "{counts}");
    let verify = b.ok(&["cache", "verify"]);
    assert!(
        !verify.stdout.to_lowercase().contains("corrupt"),
        "{}",
        verify.stdout
    );
}

#[test]
fn remote_cache_settings_that_cannot_work_are_bad_input_without_their_secrets() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = crate::util::Ov::new(p.path());
    let missing_ca = ov.bad(&[
        "build",
        "--remote-cache",
        "https://u:hunter2@cache.example/",
        "--remote-cache-ca",
        "/nonexistent/ca.pem",
    ]);
    assert!(
        missing_ca.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        missing_ca.stderr
    );
    assert!(
        !missing_ca.stderr.contains("hunter2"),
        "{}",
        missing_ca.stderr
    );
    let not_pem = p.path().join("overthink.yml");
    let r = ov.bad(&[
        "build",
        "--remote-cache",
        "https://cache.example/",
        "--remote-cache-ca",
        not_pem.to_str().unwrap(),
    ]);
    assert!(r.stderr.contains("PEM"), "{}", r.stderr);
    ov.bad(&[
        "build",
        "--remote-cache",
        "http://h/",
        "--remote-cache-mode",
        "write",
    ]);
    let set = ov.bad(&[
        "settings",
        "set",
        "cache.remote",
        "http://ci:hunter2@cache.example/",
    ]);
    assert!(!set.stderr.contains("hunter2"), "{}", set.stderr);
    assert!(
        set.stderr.contains("OV_REMOTE_CACHE_TOKEN"),
        "{}",
        set.stderr
    );
    ov.ok(&[
        "settings",
        "set",
        "cache.remote",
        "http://cache.example/ov/",
    ]);
    ov.ok(&["settings", "set", "cache.remote_mode", "read"]);
    ov.bad(&["settings", "set", "cache.remote_mode", "write"]);
}

/// Runs openssl with `args` in `dir`, failing the test if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_https_cache_is_trusted_through_the_ca_file_and_only_so() {
    // A CA and a certificate for 127.0.0.1 it signed.
    let tls = tempfile::tempdir().unwrap();
    let d = tls.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ov test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    // An entry, laid out as files for `openssl s_server -WWW`, which serves
    // GETs from its working directory over TLS.
    let rt = runtime();
    let server = FaultServer::start();
    let (_a, store, key, result) = stocked();
    rt.block_on(client(&server.url, None).publish(&store, &key, &result))
        .unwrap();
    let www = tempfile::tempdir().unwrap();
    for (path, bytes) in server.files() {
        let to = www.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s_server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("-cert")
        .arg(d.join("leaf.pem"))
        .arg("-key")
        .arg(d.join("leaf.key"))
        .current_dir(www.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}/");
    let fetch = |ca: Option<PathBuf>| {
        let mut cfg = Config::new(&url, Mode::Read, None, None, None).unwrap();
        cfg.timeout = Duration::from_secs(10);
        cfg.ca_file = ca;
        let (_d, s) = fresh_store();
        rt.block_on(RemoteCache::new(cfg).unwrap().fetch(&s, &key))
    };
    let untrusted = fetch(None);
    let trusted = fetch(Some(d.join("ca.pem")));
    let _ = s_server.kill();
    let _ = s_server.wait();
    let err = untrusted.expect_err("a certificate from an unknown CA was taken");
    assert!(err.is_server_failure(), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(trusted.unwrap().as_ref(), Some(&result));
}

/// The A/B case on `examples/web`: machine A builds and uploads;
/// its images leave the engine; machine B, with a fresh cache dir and a
/// read-only remote, builds with no engine build, loads the images back
/// from the blobs it fetched, re-runs the eval checks on them, and the
/// restored image runs.
#[test]
fn a_second_machine_restores_examples_web_without_an_engine_build() {
    let base = nginx_base("web", true);
    let p = Project::copy_of(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/web"
    )));
    let tag = p.own_tag("web");
    // A marker in the lowest layer makes every image above the preamble
    // this test's own, so removing them touches no other test's build.
    let marker = tag.rsplit(':').next().unwrap().to_string();
    p.append(
        "layers/supervisord/layer.yml",
        &format!("  task:\n    - write: /etc/ov-test-run\n      content: {marker}\n      mode: \"0644\"\n"),
    );
    let a = ov_for(p.path());
    let built = build(&a, &["--remote-cache", &base]);
    assert_eq!(built.code, Some(0), "{}", built.report());
    let nodes = built.count("built") as usize;
    let r = remote_counts(&built);
    assert_eq!(r["uploads"], nodes, "{r}");
    assert_eq!(r["errors"], 0, "{r}");

    // The images leave the engine: the user's tag, then each own node
    // image, top first (a parent with a child cannot go).
    let store = Store::open(&a.cache_dir().join("store")).unwrap();
    let _ = Command::new("podman").args(["rmi", &tag]).output();
    for id in ["image:web", "layer:web@web", "layer:supervisord@web"] {
        let (_, r) = store.last(id).unwrap().expect(id);
        let rmi = Command::new("podman")
            .args(["rmi", "-f", &r.output])
            .output()
            .unwrap();
        assert!(rmi.status.success(), "{id}: {rmi:?}");
    }

    let b = ov_for(p.path());
    let read = ["--remote-cache", &base, "--remote-cache-mode", "read"];
    let restored = build(&b, &read);
    assert_restored_everything(&restored, nodes);
    assert_eq!(
        restored.count("images_restored"),
        3,
        "{:?}",
        restored.summary()
    );
    // The eval checks run again, on the images that came back.
    let mut args = read.to_vec();
    args.extend(["--refresh", "eval:web"]);
    let checked = build(&b, &args);
    assert_eq!(checked.code, Some(0), "{}", checked.report());
    assert_eq!(checked.nodes("built"), ["eval:web"]);
    assert_eq!(checked.count("engine_builds"), 0);
    // And the restored image runs: supervisord starts nginx, and the
    // marker shows it is this test's image.
    let (status, page) = supervised_nginx(&tag);
    assert!(status.contains("RUNNING"), "nginx is not running: {status}");
    assert!(page.contains("ov-example-web-page"), "{page}");
    let out = podman(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        &tag,
        "/etc/ov-test-run",
    ]);
    assert_eq!(out.trim(), marker);
}
