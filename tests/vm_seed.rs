//! A VM's `seed` and `cloud-image` nodes built by `ov build`: the NoCloud
//! ISO (label `cidata`, the files cloud-init reads, the instance's key),
//! generated keys, and cloud images fetched from a server on 127.0.0.1 that
//! the test runs (serving a qcow2 made with `qemu-img`), including one that
//! breaks a download half way, one that ignores ranges and a checksum
//! mismatch. Bad `cloud_init:`, `ssh.key_source` and `source.checksum`
//! values exit 2 naming vm.yml:line:col.

use crate::build::{build, Built};
use crate::util::Ov;
use ov_rules::vm::iso;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A project holding only `vm.yml`.
fn project(vm_yml: &str) -> tempfile::TempDir {
    let dir = tempfile::TempDir::with_prefix("ov-vm-seed-").unwrap();
    std::fs::write(
        dir.path().join("overthink.yml"),
        "version: 2026.141.1600\ninclude:\n  - vm.yml\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("vm.yml"), vm_yml).unwrap();
    dir
}

/// `ov` on `project` with its VM state in `state`.
fn ov(project: &Path, state: &Path) -> Ov {
    Ov::new(project)
        .with_timeout(Duration::from_secs(300))
        .env("OV_STATE_DIR", state)
}

fn built(ov: &Ov, target: &str) -> Built {
    let b = build(ov, &[target]);
    assert_eq!(b.code, Some(0), "{}", b.report());
    b
}

/// Every stored file of the cache dir whose bytes satisfy `pick`.
fn stored(cache: &Path, pick: &dyn Fn(&[u8]) -> bool) -> Vec<PathBuf> {
    walkdir::WalkDir::new(cache)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| std::fs::read(e.path()).is_ok_and(|b| pick(&b)))
        .map(|e| e.into_path())
        .collect()
}

fn is_iso(b: &[u8]) -> bool {
    b.len() > 16 * 2048 + 6 && &b[16 * 2048 + 1..16 * 2048 + 6] == b"CD001"
}

/// The seed ISO the build stored, read back as a guest sees it.
fn seed_files(cache: &Path) -> HashMap<String, String> {
    let isos = stored(&cache.join("store"), &is_iso);
    assert_eq!(isos.len(), 1, "one seed ISO in the store: {isos:?}");
    let (label, files) = iso::read(&isos[0]).unwrap();
    assert_eq!(label, "cidata");
    files
        .into_iter()
        .map(|(n, b)| (n, String::from_utf8(b).unwrap()))
        .collect()
}

const SEEDED: &str = "vm:
  web:
    source: {kind: cloud_image, url: 'http://127.0.0.1:9/web.qcow2', base_user: debian}
    ssh: {key_source: generate}
    cloud_init:
      hostname: web-1
      package: [nginx]
      runcmd: [\"echo 'hi: there' > /tmp/x\"]
      write_files:
        - {path: /etc/motd, content: \"hello\\n\", perms: '0644'}
";

#[test]
fn the_seed_is_a_cidata_iso_with_the_generated_key_and_is_built_once() {
    let p = project(SEEDED);
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    let first = built(&ov, "seed:web");
    assert_eq!(first.nodes("built"), ["seed:web"]);

    // The pair is in the instance's state dir; only the public half is in
    // the seed.
    let dir = state.path().join("vm/ov-web");
    let private = std::fs::read_to_string(dir.join("id_ed25519")).unwrap();
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("id_ed25519"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(private.contains("OPENSSH PRIVATE KEY"));

    let files = seed_files(ov.cache_dir());
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["meta-data", "user-data"],
        "no network-config unless set, as ov"
    );
    let ud = &files["user-data"];
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    assert!(!ud.contains("PRIVATE"), "{ud}");
    let doc = &yaml_rust2::YamlLoader::load_from_str(ud).unwrap()[0];
    // base_user adopted: the key is merged into the image's own account.
    assert_eq!(doc["users"][0].as_str(), Some("default"));
    assert_eq!(doc["users"][1]["name"].as_str(), Some("debian"));
    assert_eq!(
        doc["users"][1]["ssh_authorized_keys"][0].as_str(),
        Some(public.trim())
    );
    assert_eq!(doc["hostname"].as_str(), Some("web-1"));
    assert_eq!(doc["runcmd"][1].as_str(), Some("echo 'hi: there' > /tmp/x"));
    assert_eq!(doc["packages"][3].as_str(), Some("nginx"));
    assert_eq!(doc["write_files"][0]["content"].as_str(), Some("hello\n"));
    let md = &files["meta-data"];
    assert!(md.contains("local-hostname: web-1\n"), "{md}");

    // A second build makes nothing, and keeps the key.
    let again = built(&ov, "seed:web");
    assert_eq!(again.count("built"), 0, "{:#?}", again.events);
    assert_eq!(
        std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap(),
        public
    );

    // Another cache dir, same instance: the same instance id (it comes
    // from the instance and the spec, not the clock).
    let other = self::ov(p.path(), state.path());
    built(&other, "seed:web");
    assert_eq!(seed_files(other.cache_dir())["meta-data"], *md);
}

#[test]
fn a_key_file_and_none_are_honoured() {
    let keys = tempfile::tempdir().unwrap();
    let inst = ov_rules::vm::Instance::new("k", None).unwrap();
    let made = ov_rules::vm::ssh_key::generate(&inst, keys.path()).unwrap();
    let p = project(&format!(
        "vm:\n  web:\n    source: {{kind: bootc, image: quay.io/x/y:1}}\n    ssh: {{key_source: '{}'}}\n    cloud_init: {{package: [git]}}\n",
        made.file.display()
    ));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    built(&ov, "seed:web");
    let ud = &seed_files(ov.cache_dir())["user-data"];
    // A bootc VM's SSH user is root, and cloud-init gets no key by default
    // (ov's key injection for bootc is SMBIOS only).
    assert!(!ud.contains("ssh_authorized_keys"), "{ud}");
    assert!(ud.contains("name: root"), "{ud}");
    assert!(!state.path().join("vm/ov-web/id_ed25519").exists());

    std::fs::write(
        p.path().join("vm.yml"),
        format!(
            "vm:\n  web:\n    source: {{kind: bootc, image: quay.io/x/y:1}}\n    ssh: {{key_source: '{}', key_injection: {{cloud_init: enabled}}}}\n    cloud_init: {{package: [git]}}\n",
            made.file.display()
        ),
    )
    .unwrap();
    let b = built(&ov, "seed:web");
    assert_eq!(b.nodes("built"), ["seed:web"], "a new key is a new seed");
    let isos = stored(&ov.cache_dir().join("store"), &|b: &[u8]| {
        is_iso(b) && String::from_utf8_lossy(b).contains(made.line.as_str())
    });
    assert_eq!(isos.len(), 1, "the key file's key is in the seed");
}

#[test]
fn bad_seed_values_exit_2_naming_the_line() {
    let state = tempfile::tempdir().unwrap();
    // Line 4 is the first line after the source.
    let cases: &[(&str, &[&str])] = &[
        (
            "    ssh: {key_source: generat}\n",
            &["vm.yml:4:", "key_source", "did you mean `generate`"],
        ),
        (
            "    ssh: {key_source: /nowhere/id.pub}\n",
            &["vm.yml:4:", "/nowhere/id.pub"],
        ),
        (
            "    cloud_init:\n      write_files: [{path: /x, content: y, encoding: gz+b46}]\n",
            &[
                "vm.yml:5:",
                "cloud_init.write_files.encoding",
                "did you mean `gz+b64`",
            ],
        ),
        (
            "    cloud_init: {runcmd: [\"a\\x1bb\"]}\n",
            &["vm.yml:4:", "cloud_init.runcmd", "control character"],
        ),
        (
            "    cloud_init: {hostname: 'a b'}\n",
            &["vm.yml:4:", "cloud_init.hostname"],
        ),
    ];
    for (extra, want) in cases {
        let p = project(&format!(
            "vm:\n  web:\n    source: {{kind: cloud_image, url: 'http://127.0.0.1:9/x.qcow2'}}\n{extra}"
        ));
        let r = ov(p.path(), state.path()).run(&["build", "--dry-run"]);
        assert_eq!(r.code, Some(2), "{extra}\n{}", r.stderr);
        for w in *want {
            assert!(r.stderr.contains(w), "{extra}: no `{w}` in\n{}", r.stderr);
        }
    }
    let p = project(
        "vm:\n  web:\n    source:\n      kind: cloud_image\n      url: 'http://127.0.0.1:9/x.qcow2'\n      checksum: {type: sha512, value: abc}\n",
    );
    let r = ov(p.path(), state.path()).run(&["build", "--dry-run"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("vm.yml:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("source.checksum.type"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `sha256`"), "{}", r.stderr);
    assert!(r.stderr.contains("source.checksum"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// Cloud images from a local server.

#[derive(Clone, Copy, PartialEq)]
struct Mode {
    /// The first this many GETs of the image send half the body and hang up.
    breaks: usize,
    /// Whether `Range` is honoured (else the whole file, 200).
    ranges: bool,
}

impl Mode {
    #[allow(non_upper_case_globals)]
    const Good: Mode = Mode {
        breaks: 0,
        ranges: true,
    };
    #[allow(non_upper_case_globals)]
    const BreakOnce: Mode = Mode {
        breaks: 1,
        ranges: true,
    };
    #[allow(non_upper_case_globals)]
    const BreakOnceNoRanges: Mode = Mode {
        breaks: 1,
        ranges: false,
    };
}

/// Each request's path and `Range` header, in order.
type RequestLog = Mutex<Vec<(String, Option<String>)>>;

/// A small HTTP/1.1 server on 127.0.0.1 for the test's files; records
/// each request's path and `Range` header. Serves a bounded number of
/// connections and stops when dropped.
struct Server {
    port: u16,
    log: Arc<RequestLog>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>, mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut broke = 0;
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            let mut served = 0;
            while !s.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < deadline
                && served < 200
            {
                match listener.accept() {
                    Ok((conn, _)) => {
                        served += 1;
                        let _ = serve(conn, &files, mode, &mut broke, &l);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { port, log, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn requests(&self, path: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    mode: Mode,
    broke: &mut usize,
    log: &RequestLog,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push((path.clone(), range.clone()));
    let mut out = conn;
    let Some(body) = files.get(&path) else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let is_image = path.ends_with(".qcow2");
    if is_image && *broke < mode.breaks {
        *broke += 1;
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(&body[..body.len() / 2])?;
        return out.flush();
    }
    let start = range
        .as_deref()
        .filter(|_| mode.ranges)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(s) if s < body.len() => {
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() - 1,
                body.len(),
                body.len() - s
            )?;
            out.write_all(&body[s..])?;
        }
        _ => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(body)?;
        }
    }
    out.flush()
}

/// A qcow2 made by `qemu-img` (which the set-up script installs), with
/// some data so it is not all header.
fn qcow2() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("t.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("64M")
        .status()
        .expect("qemu-img (run scripts/setup.sh, which installs qemu-utils)");
    assert!(ok.success());
    let mut b = Vec::new();
    std::fs::File::open(&img)
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    assert_eq!(&b[..4], b"QFI\xfb");
    b
}

fn sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

fn cloud_vm(url: &str, checksum: &str) -> String {
    format!(
        "vm:\n  ci:\n    source:\n      kind: cloud_image\n      url: '{url}'\n{checksum}    ssh: {{key_source: none}}\n"
    )
}

/// The stored image: the one file in the store equal to `want`.
fn stored_image(cache: &Path, want: &[u8]) -> usize {
    stored(&cache.join("store"), &|b: &[u8]| b == want).len()
}

#[test]
fn a_cloud_image_is_fetched_checked_by_its_sidecar_and_stored_once() {
    let img = qcow2();
    let sum = sha256(&img);
    let files = HashMap::from([
        ("disk.qcow2".to_string(), img.clone()),
        (
            "disk.qcow2.sha256".to_string(),
            format!("{sum}  disk.qcow2\n").into_bytes(),
        ),
    ]);
    let server = Server::start(files, Mode::Good);
    let p = project(&cloud_vm(&server.url("disk.qcow2"), ""));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    let b = built(&ov, "cloud-image:ci");
    assert_eq!(b.nodes("built"), ["cloud-image:ci"]);
    assert_eq!(server.requests("disk.qcow2").len(), 1);
    // The `.SHA256` sidecar is asked first, as ov does, then `.sha256`.
    assert_eq!(server.requests("disk.qcow2.SHA256").len(), 1);
    assert_eq!(server.requests("disk.qcow2.sha256").len(), 1);
    assert_eq!(stored_image(ov.cache_dir(), &img), 1);

    // A second build downloads nothing.
    let again = built(&ov, "cloud-image:ci");
    assert_eq!(again.count("built"), 0);
    assert_eq!(server.requests("disk.qcow2").len(), 1);
    // Nothing partial is left behind.
    let parts = stored(&ov.cache_dir().join("downloads"), &|_: &[u8]| true);
    assert!(parts.is_empty(), "{parts:?}");
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let img = qcow2();
    let files = HashMap::from([("disk.qcow2".to_string(), img.clone())]);
    let server = Server::start(files, Mode::BreakOnce);
    let p = project(&cloud_vm(
        &server.url("disk.qcow2"),
        &format!("      checksum: 'sha256:{}'\n", sha256(&img)),
    ));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    built(&ov, "cloud-image:ci");
    let reqs = server.requests("disk.qcow2");
    assert_eq!(
        reqs,
        [None, Some(format!("bytes={}-", img.len() / 2))],
        "the second GET asks for the rest"
    );
    assert_eq!(stored_image(ov.cache_dir(), &img), 1);
}

#[test]
fn a_server_that_ignores_ranges_gets_the_whole_file_again() {
    let img = qcow2();
    let files = HashMap::from([("disk.qcow2".to_string(), img.clone())]);
    let server = Server::start(files, Mode::BreakOnceNoRanges);
    let p = project(&cloud_vm(
        &server.url("disk.qcow2"),
        &format!(
            "      checksum: {{type: sha256, value: {}}}\n",
            sha256(&img)
        ),
    ));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    built(&ov, "cloud-image:ci");
    assert_eq!(server.requests("disk.qcow2").len(), 2);
    // The 200 replaced the partial bytes rather than being appended.
    assert_eq!(stored_image(ov.cache_dir(), &img), 1);
}

#[test]
fn a_checksum_mismatch_names_the_url_without_its_password_and_records_nothing() {
    let img = qcow2();
    let files = HashMap::from([("disk.qcow2".to_string(), img.clone())]);
    let server = Server::start(files, Mode::Good);
    let wrong = "0".repeat(64);
    let url = server
        .url("disk.qcow2")
        .replace("http://", "http://me:hunter2@");
    let p = project(&cloud_vm(&url, &format!("      checksum: '{wrong}'\n")));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    for round in 1..=2 {
        let b = build(&ov, &["cloud-image:ci"]);
        assert_ne!(b.code, Some(0), "{}", b.stderr);
        let all = format!("{}{:?}", b.stderr, b.events);
        assert!(all.contains("checksum mismatch"), "{all}");
        assert!(
            all.contains(&format!("127.0.0.1:{}/disk.qcow2", server.port)),
            "{all}"
        );
        assert!(all.contains(&sha256(&img)), "{all}");
        assert!(!all.contains("hunter2"), "the password is masked: {all}");
        // Nothing recorded: the next build fetches again.
        assert_eq!(server.requests("disk.qcow2").len(), round);
    }
    assert_eq!(stored_image(ov.cache_dir(), &img), 0);
    let parts = stored(&ov.cache_dir().join("downloads"), &|_: &[u8]| true);
    assert!(parts.is_empty(), "a bad download is not kept: {parts:?}");
}

#[test]
fn a_download_broken_in_every_try_is_resumed_by_the_next_build() {
    let img = qcow2();
    let sum = sha256(&img);
    let files = HashMap::from([("disk.qcow2".to_string(), img.clone())]);
    // Every try of the first build breaks half way (the retries ask for
    // the rest and get half the file again, from a 200).
    let breaking = Server::start(
        files.clone(),
        Mode {
            breaks: 3,
            ranges: true,
        },
    );
    let p = project(&cloud_vm(
        &breaking.url("disk.qcow2"),
        &format!("      checksum: 'sha256:{sum}'\n"),
    ));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    let b = build(&ov, &["cloud-image:ci"]);
    assert_ne!(b.code, Some(0));
    assert!(
        format!("{}{:?}", b.stderr, b.events).contains("the next build resumes it"),
        "{}",
        b.stderr
    );
    let parts = stored(&ov.cache_dir().join("downloads"), &|_: &[u8]| true);
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(std::fs::read(&parts[0]).unwrap(), img[..img.len() / 2]);
    assert_eq!(breaking.requests("disk.qcow2").len(), 3);

    // The server behaves now: the next build asks only for the rest.
    built(&ov, "cloud-image:ci");
    let reqs = breaking.requests("disk.qcow2");
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[3], Some(format!("bytes={}-", img.len() / 2)));
    assert_eq!(stored_image(ov.cache_dir(), &img), 1);
}

/// cloud-init reads user-data with PyYAML, a YAML 1.1 reader: values that
/// YAML 1.1 takes for dates, numbers with `_`, octal or booleans must come
/// back as the strings vm.yml gave (ov's Go encoder quotes them too).
#[test]
fn cloud_init_reads_back_every_string_as_written() {
    let tricky = [
        "2001-12-14",
        "1_000",
        "0o17",
        "017",
        "0x1F",
        "1:20",
        "+12",
        ".5",
        "1e3",
        "yes",
        "off",
        "~",
        "null",
        "- not an item",
        "key: value",
        "# not a comment",
        "it's \"quoted\"",
        "  leading and trailing  ",
        "multi\nline\n\n",
        "ünïcödé ✓",
    ];
    let runcmd: Vec<String> = tricky
        .iter()
        .map(|t| serde_json::to_string(t).unwrap())
        .collect();
    let p = project(&format!(
        "vm:\n  web:\n    source: {{kind: cloud_image, url: 'http://127.0.0.1:9/x.qcow2'}}\n    ssh: {{key_source: none}}\n    cloud_init:\n      runcmd: [{}]\n      write_files:\n        - {{path: /d, content: '2024-01-01'}}\n",
        runcmd.join(", ")
    ));
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    built(&ov, "seed:web");
    let ud = seed_files(ov.cache_dir())["user-data"].clone();
    let mut py = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin), default=repr))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML (the set-up script installs python3-yaml)");
    py.stdin.take().unwrap().write_all(ud.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML could not read:\n{ud}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<&str> = doc["runcmd"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|v| v.as_str().unwrap_or("<not a string>"))
        .collect();
    assert_eq!(got, tricky, "user-data:\n{ud}");
    assert_eq!(doc["write_files"][0]["content"], "2024-01-01", "{ud}");
}

/// `generate` makes the pair when the project is planned, for every VM
/// that builds (a boot logs in with it), once: planning again keeps it.
#[test]
fn generate_makes_the_pair_when_planning_and_keeps_it() {
    let p = project(
        "vm:\n  app:\n    source: {kind: bootc, image: quay.io/x/y:1}\n    ssh: {key_source: generate}\n",
    );
    let state = tempfile::tempdir().unwrap();
    let ov = ov(p.path(), state.path());
    ov.ok(&["build", "--dry-run"]);
    let public = state.path().join("vm/ov-app/id_ed25519.pub");
    let first = std::fs::read_to_string(&public).unwrap();
    assert!(first.starts_with("ssh-ed25519 "), "{first}");
    ov.ok(&["build", "--dry-run"]);
    assert_eq!(std::fs::read_to_string(&public).unwrap(), first);
}
