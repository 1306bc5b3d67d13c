//! The last-run index: for each node id, the key and result of its most
//! recent run. It feeds `ov explain` (what changed since last time) and
//! the scheduler (how long a node takes), and names gc's roots.
//!
//! One small file per node id, replaced atomically, so concurrent runs never
//! lose each other's records (only the same node's, last writer wins) and a
//! file is never half-written. Each file carries a blake3 of its body, so a
//! damaged one is detected and removed rather than misread.
//!
//! The durations are also appended to a log (see `durations.rs`), so the
//! scheduler can have all of them without opening every record.

use super::Store;
use crate::{atomic_write, ActionResult, Error, NodeKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The folder of the last-run records, versioned with their format.
pub(crate) const LAST_DIR: &str = "last-v1";

/// First word of a record file: `ov-last-v1 <blake3 of body>\n<body>`.
const MAGIC: &str = "ov-last-v1";

#[derive(Serialize, Deserialize)]
pub(crate) struct LastRecord {
    pub node_id: String,
    pub key: String,
    pub result: ActionResult,
}

impl Store {
    /// Records that `node_id` last ran with `key` and produced `r`,
    /// replacing the previous record of that node id, and logs its duration
    /// for [`Store::durations`]. Recording the same again costs one read.
    pub fn record_last(&self, node_id: &str, key: &NodeKey, r: &ActionResult) -> Result<(), Error> {
        let record = LastRecord {
            node_id: node_id.to_string(),
            key: key.to_string(),
            result: r.clone(),
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| Error::io(&self.root, std::io::Error::other(e)))?;
        let mut file = format!("{MAGIC} {}\n", blake3::hash(&body).to_hex()).into_bytes();
        file.extend_from_slice(&body);
        let path = self.last_path(node_id);
        // A cache hit usually records what is already there: skip the
        // synced write (milliseconds each, times every node of a build).
        if std::fs::read(&path).is_ok_and(|old| old == file) {
            return Ok(());
        }
        atomic_write(&path, &file)?;
        self.changed();
        self.log_duration(node_id, r.duration_ms)
    }

    /// The key and result of `node_id`'s last recorded run. A damaged record
    /// is removed and reads as none: it is history, not a cache entry.
    ///
    /// The result's blobs may since have been collected by gc.
    pub fn last(&self, node_id: &str) -> Result<Option<(NodeKey, ActionResult)>, Error> {
        match Self::read_last_file(&self.last_path(node_id))? {
            LastFile::Record(rec) if rec.node_id == node_id => {
                Ok(rec.key.parse().ok().map(|key| (key, rec.result)))
            }
            LastFile::Damaged(_) => {
                // It was removed: what predictions read changed.
                self.changed();
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The keys the last-run records name: what the latest run of each
    /// node made, kept even when gc has evicted its entry.
    pub fn last_run_keys(&self) -> Result<std::collections::HashSet<NodeKey>, Error> {
        let mut keys = std::collections::HashSet::new();
        for path in self.last_files() {
            if let LastFile::Record(rec) = Self::read_last_file(&path)? {
                if let Ok(k) = rec.key.parse() {
                    keys.insert(k);
                }
            }
        }
        Ok(keys)
    }

    /// Where the record of `node_id` lives: named by a hash because node ids
    /// contain `:` and `@` and may be long.
    fn last_path(&self, node_id: &str) -> PathBuf {
        let h = blake3::hash(node_id.as_bytes()).to_hex();
        self.root.join(LAST_DIR).join(&h[..2]).join(h.as_str())
    }

    /// Every record file (not temp files). Missing folders mean none.
    pub(crate) fn last_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(self.root.join(LAST_DIR)) else {
            return out;
        };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let is_record = !f.file_name().to_string_lossy().starts_with('.')
                    && f.file_type().is_ok_and(|t| t.is_file());
                if is_record {
                    out.push(f.path());
                }
            }
        }
        out
    }

    /// Reads and decodes one record file, removing it if it is damaged.
    pub(crate) fn read_last_file(path: &Path) -> Result<LastFile, Error> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LastFile::Gone),
            Err(e) => return Err(Error::io(path, e)),
        };
        let damage = match split_checked(&bytes) {
            None => "its checksum does not match".to_string(),
            Some(body) => match serde_json::from_slice::<LastRecord>(body) {
                Ok(rec) if rec.key.parse::<NodeKey>().is_ok() => {
                    return Ok(LastFile::Record(Box::new(rec)))
                }
                Ok(rec) => format!("its key {:?} is not a node key", rec.key),
                Err(e) => format!("it does not decode: {e}"),
            },
        };
        let _ = std::fs::remove_file(path);
        Ok(LastFile::Damaged(damage))
    }
}

/// What [`Store::read_last_file`] found.
pub(crate) enum LastFile {
    /// A sound record.
    Record(Box<LastRecord>),
    /// The file vanished (another process removed it meanwhile).
    Gone,
    /// The file was damaged, for this reason, and has been removed.
    Damaged(String),
}

/// The body after a `MAGIC <blake3>\n` header that matches it.
fn split_checked(bytes: &[u8]) -> Option<&[u8]> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..nl]).ok()?;
    let body = &bytes[nl + 1..];
    let (magic, sum) = header.split_once(' ')?;
    (magic == MAGIC && sum == blake3::hash(body).to_hex().as_str()).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::Digest;

    #[test]
    fn round_trip_and_replace() {
        let (_dir, store) = store();
        assert!(store.last("layer:web@web").unwrap().is_none());
        let k1 = NodeKey::of_bytes(b"1");
        let r1 = result("layer:web@web", &[]);
        store.record_last("layer:web@web", &k1, &r1).unwrap();
        assert_eq!(store.last("layer:web@web").unwrap(), Some((k1, r1.clone())));
        let k2 = NodeKey::of_bytes(b"2");
        let mut r2 = r1.clone();
        r2.duration_ms = 7;
        store.record_last("layer:web@web", &k2, &r2).unwrap();
        assert_eq!(store.last("layer:web@web").unwrap(), Some((k2, r2)));
        assert!(store.last("layer:other@web").unwrap().is_none());
    }

    #[test]
    fn recording_the_same_again_writes_nothing() {
        let (_dir, store) = store();
        let (key, r) = (NodeKey::of_bytes(b"k"), result("n", &[]));
        store.record_last("n", &key, &r).unwrap();
        let log = store.root().join(super::super::durations::DURATIONS_LOG);
        let before = std::fs::read(&log).unwrap();
        set_last_use(&store.last_path("n"), 1_000);
        store.record_last("n", &key, &r).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), before);
        let mtime = std::fs::metadata(store.last_path("n"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            mtime,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000)
        );
    }

    #[test]
    fn damaged_record_is_removed_not_misread() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"k");
        let mut r = result("n", &[]);
        r.duration_ms = 1000;
        store.record_last("n", &key, &r).unwrap();
        let path = store.last_path("n");
        let mut bytes = std::fs::read(&path).unwrap();
        // "1000" becomes "9000": still valid JSON, wrong checksum.
        let at = bytes.windows(4).position(|w| w == b"1000").unwrap();
        bytes[at] = b'9';
        std::fs::write(&path, bytes).unwrap();
        assert!(store.last("n").unwrap().is_none());
        assert!(!path.exists(), "damaged record was kept");
        store.record_last("n", &key, &r).unwrap();
        std::fs::write(&path, b"ov-last-v1 00\n{}").unwrap();
        assert!(store.last("n").unwrap().is_none());
        assert!(!path.exists());
    }
}
