//! The local store: a CAS of blobs by sha256 and an action cache (AC) of
//! node results by [`NodeKey`], both kept by cacache in one folder, plus a
//! "last run" record per node id.
//!
//! Layout of `<cache-dir>/store`:
//!
//! - `content-v2/sha256/…` — cacache's content store. Holds the CAS blobs
//!   (addressed by their [`BlobDigest`]) and the JSON records of the AC.
//! - `index-v5/…` — cacache's index. AC entries live under the keys
//!   `ac/<nodekey hex>` and point at their JSON record in the content store.
//!   A bucket with a damaged line is rewritten with its sound lines (see
//!   `bucket`), by a lookup that misses and by `verify`.
//! - `tmp/` — cacache's temp files; a write is a temp file and a rename, so a
//!   crash leaves a whole entry or none.
//! - `last-v1/<xx>/<blake3 of node id>` — the last-run records, written by
//!   [`atomic_write`](crate::atomic_write). They are history (for `ov explain`
//!   and the scheduler's durations), not cache entries, and are kept by gc.
//! - `durations-v1.log` — each node's last duration, appended by
//!   [`Store::record_last`], so [`Store::durations`] is one read.
//!
//! - `locks/<xx>/<nodekey hex>` — empty files whose advisory locks claim a
//!   key while it is built ([`Store::try_lock_key`]), so processes sharing
//!   the store build each node once.
//!
//! Reads and writes take no lock: cacache's writes are atomic renames and
//! appends, so several processes may share one store. Every read is
//! verified against its digest; whatever fails is evicted and reported, so
//! the caller rebuilds it instead of tripping over it again.
//!
//! The API is synchronous; async callers run it in `spawn_blocking`.

mod action;
mod bucket;
mod cas;
mod durations;
mod gc;
mod last;
mod lock;
mod scan;
mod size;
mod verify;

pub use action::{ActionResult, BlobRef, Lookup};
pub use cas::{sha256_file, Unchecked};
pub use gc::GcReport;
pub use lock::KeyLock;
pub use scan::Stats;
pub use size::{format_size, parse_size, SizeParseError};
pub use verify::{VerifyProblem, VerifyReport};

use crate::{BlobDigest, Error};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The content store's folder for sha256 content, as cacache lays it out
/// (`content-v2/sha256/ab/cd/<rest of the hex>`). Mirrored here so the
/// store can stat, seal and walk blobs without reading them; a test checks
/// that cacache still puts content there.
const CONTENT_DIR: &str = "content-v2/sha256";

/// The local store of one cache dir. Cheap to clone; holds only its path.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// Why a read from cacache failed, sorted the way callers react to it.
pub(crate) enum ReadFailure {
    /// Nothing is stored there.
    Missing,
    /// Something is stored but it is damaged: evict it.
    Corrupt(String),
    /// The store could not be read at all (permissions, I/O): report it.
    Other(Error),
}

impl Store {
    /// Opens the store in `dir` (normally `<cache-dir>/store`), creating the
    /// folder when missing.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Store {
            root: dir.to_path_buf(),
        })
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file replaced (a new inode, by a rename) whenever the store's
    /// answers change: a result recorded or evicted, a blob evicted, a
    /// last-run record written or dropped. Whoever remembers conclusions
    /// drawn from the store (the dry-run memo) witnesses this one file
    /// instead of the whole store.
    pub fn generation_path(dir: &Path) -> PathBuf {
        dir.join("generation")
    }

    /// Marks that the store's answers changed. Best effort: a store that
    /// cannot write this file cannot write entries either.
    pub(crate) fn changed(&self) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let stamp = format!("{} {nanos}\n", std::process::id());
        let _ = crate::atomic_write(&Self::generation_path(&self.root), stamp.as_bytes());
    }

    /// Where cacache keeps blob `d` (whether or not it is there). Read it,
    /// never write it: the store's files are shared by hard links.
    pub fn content_path(&self, d: &BlobDigest) -> PathBuf {
        let hex = d.to_string();
        self.root
            .join(CONTENT_DIR)
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(&hex[4..])
    }

    pub(crate) fn store_err(&self, source: cacache::Error) -> Error {
        Error::Store {
            path: self.root.clone(),
            cause: source,
        }
    }

    pub(crate) fn classify(&self, e: cacache::Error) -> ReadFailure {
        match e {
            cacache::Error::EntryNotFound(..) => ReadFailure::Missing,
            cacache::Error::IoError(io, _) if io.kind() == std::io::ErrorKind::NotFound => {
                ReadFailure::Missing
            }
            cacache::Error::IntegrityError(e) => {
                ReadFailure::Corrupt(format!("content does not match its digest ({e})"))
            }
            cacache::Error::SizeMismatch(want, got) => {
                ReadFailure::Corrupt(format!("{got} bytes where {want} were expected"))
            }
            other => ReadFailure::Other(self.store_err(other)),
        }
    }

    /// Makes freshly stored content durable and read-only. Read-only because
    /// [`Store::blob_to_file`] may hard-link it into an output: a caller
    /// that then writes to the output gets an error rather than silently
    /// corrupting the store (root ignores the mode; verification still
    /// catches that on the next read).
    pub(crate) fn seal(&self, d: &BlobDigest) -> Result<(), Error> {
        let path = self.content_path(d);
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let meta = f.metadata().map_err(|e| Error::io(&path, e))?;
        let mut perms = meta.permissions();
        if !perms.readonly() {
            perms.set_readonly(true);
            f.set_permissions(perms).map_err(|e| Error::io(&path, e))?;
        }
        f.sync_all().map_err(|e| Error::io(&path, e))
    }
}

/// Marks `path` as used now: gc evicts by modification time, which the
/// store sets on every use because access times are unreliable (`noatime`,
/// `relatime`). Best effort: a file that cannot be touched is only
/// collected a little earlier.
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The last-use time of a file (its modification time), or the epoch.
pub(crate) fn last_use(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::{ActionResult, BlobRef};

    /// A store in a fresh temp dir (kept alive by the returned guard).
    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        (dir, store)
    }

    /// Flips one byte of a stored blob on disk, as bit rot would.
    pub fn flip_byte(store: &Store, d: &BlobDigest, at: usize) {
        let path = store.content_path(d);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }

    /// Sets the last-use time of a stored file.
    pub fn set_last_use(path: &Path, unix_secs: u64) {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
        File::open(path).unwrap().set_modified(t).unwrap();
    }

    /// A result of `node_id` that refers to `blobs`.
    pub fn result(node_id: &str, blobs: &[(&str, BlobDigest, u64)]) -> ActionResult {
        ActionResult {
            node_id: node_id.to_string(),
            kind: "layer".to_string(),
            output: format!("sha256:{}", "0".repeat(64)),
            blobs: blobs
                .iter()
                .map(|(name, digest, size)| BlobRef {
                    name: name.to_string(),
                    digest: *digest,
                    size: *size,
                })
                .collect(),
            duration_ms: 1234,
            finished_unix_ms: 1_700_000_000_000,
            manifest: vec![("ovfile".to_string(), "ab".repeat(32))],
            meta: serde_json::json!({"tag": "web:latest"}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn open_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/store");
        let store = Store::open(&root).unwrap();
        assert!(root.is_dir());
        assert_eq!(store.root(), root);
    }

    #[test]
    fn two_writers_on_one_folder() {
        use crate::{Digest, Lookup, NodeKey};
        let (_dir, first) = store();
        let root = first.root().to_path_buf();
        // Each thread opens its own Store, as two processes would. Half the
        // blobs and keys are shared, so both write the same files at once.
        let write = |who: u8| {
            let store = Store::open(&root).unwrap();
            for i in 0..40u8 {
                let owner = if i % 2 == 0 { 0 } else { who };
                let data = vec![owner ^ i; 64 * 1024 + usize::from(i)];
                let d = store.put_blob_bytes(&data).unwrap();
                let key = NodeKey::of_bytes(&[owner, i]);
                let id = format!("layer:{owner}-{i}@web");
                let r = result(&id, &[("out", d, data.len() as u64)]);
                store.put_action(&key, &r).unwrap();
                store.record_last(&id, &key, &r).unwrap();
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| write(1));
            s.spawn(|| write(2));
        });
        for who in [1u8, 2] {
            for i in 0..40u8 {
                let owner = if i % 2 == 0 { 0 } else { who };
                let key = NodeKey::of_bytes(&[owner, i]);
                let Lookup::Hit(r) = first.get_action(&key).unwrap() else {
                    panic!("entry {owner}-{i} lost");
                };
                let data = first.read_blob(&r.blobs[0].digest).unwrap();
                assert_eq!(data, vec![owner ^ i; 64 * 1024 + usize::from(i)]);
            }
        }
        let report = first.verify().unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(first.durations().len(), 60);
        assert_eq!(first.stats().unwrap().actions, 60);
    }

    #[test]
    fn gc_racing_a_writer_never_leaves_a_hit_without_its_blobs() {
        use crate::{Digest, Lookup, NodeKey};
        let (_dir, store) = store();
        let root = store.root().to_path_buf();
        let keys: Vec<NodeKey> = (0..60u8).map(|i| NodeKey::of_bytes(&[i])).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                let w = Store::open(&root).unwrap();
                for (i, key) in keys.iter().enumerate() {
                    let data = vec![i as u8; 32 * 1024];
                    let d = w.put_blob_bytes(&data).unwrap();
                    let r = result("n", &[("out", d, data.len() as u64)]);
                    // gc may take the blob between the two calls: then the
                    // put is refused, which is the point.
                    let _ = w.put_action(key, &r);
                }
            });
            s.spawn(|| {
                let g = Store::open(&root).unwrap();
                for _ in 0..20 {
                    g.gc(200 * 1024).unwrap();
                }
            });
        });
        for key in &keys {
            if let Lookup::Hit(r) = store.get_action(key).unwrap() {
                store.read_blob(&r.blobs[0].digest).unwrap();
            }
        }
        store.gc(200 * 1024).unwrap();
        assert!(store.stats().unwrap().total_bytes <= 200 * 1024);
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn content_path_matches_cacache_layout() {
        let (_dir, store) = store();
        let sri = cacache::write_hash_sync(store.root(), b"layout, more than nothing").unwrap();
        let d = BlobDigest::from_integrity(&sri).unwrap();
        assert!(store.content_path(&d).is_file());
    }
}
