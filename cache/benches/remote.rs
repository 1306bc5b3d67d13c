//! One upload and one download of a blob through ov's remote cache client,
//! timed, for `bench/remote.sh` (which times curl against the same server).
//!
//! `cargo bench -p ov-cache --bench remote -- URL FILE WORKDIR`: stores FILE in a store
//! under WORKDIR, publishes it as one entry to the cache at URL (the blob
//! must be new there), then fetches the entry into a second, empty store.
//! Prints `upload_s`, `download_s` and `peak_rss_kib` (VmHWM of this
//! process: what the whole run held at most, the file's trip into the first
//! store included).

use ov_cache::remote::{Config, Mode, RemoteCache};
use ov_cache::{ActionResult, BlobRef, Digest, NodeKey, Store};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, file, work] = &args[..] else {
        eprintln!("usage: cargo bench -p ov-cache --bench remote -- URL FILE WORKDIR");
        std::process::exit(2);
    };
    let work = std::path::Path::new(work);
    let a = Store::open(&work.join("a/store")).expect("store a");
    let b = Store::open(&work.join("b/store")).expect("store b");
    let (digest, size) = a
        .put_blob_file(std::path::Path::new(file))
        .expect("store the file");
    let key = NodeKey::of_bytes(format!("bench {digest} {url}").as_bytes());
    let result = ActionResult {
        node_id: "bench".into(),
        kind: "bench".into(),
        output: String::new(),
        blobs: vec![BlobRef {
            name: "blob".into(),
            digest,
            size,
        }],
        duration_ms: 0,
        finished_unix_ms: 0,
        manifest: vec![],
        meta: serde_json::json!({}),
    };
    let cache =
        RemoteCache::new(Config::new(url, Mode::ReadWrite, None, None, None).expect("a cache URL"))
            .expect("a client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // Both tools start their upload with nothing left to write back (curl's
    // turn does the same), so neither pays for the other's dirty pages.
    let _ = std::process::Command::new("sync").status();
    let t = Instant::now();
    rt.block_on(cache.publish(&a, &key, &result))
        .expect("upload");
    let up = t.elapsed().as_secs_f64();
    // The blob, plus the entry's small record.
    assert!(
        cache.bytes_uploaded() > size,
        "the blob was already on the server"
    );
    let t = Instant::now();
    let got = rt.block_on(cache.fetch(&b, &key)).expect("download");
    let down = t.elapsed().as_secs_f64();
    assert!(got.is_some(), "the entry was not found");
    assert!(b.has_blob(&digest));
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_default();
    println!("upload_s={up:.3} download_s={down:.3} peak_rss_kib={hwm}");
}
