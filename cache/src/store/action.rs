//! The action cache: what a node with a given [`NodeKey`] produced.

use super::{touch, ReadFailure, Store};
use crate::{BlobDigest, Error, NodeKey};
use serde::{Deserialize, Serialize};

/// Names the JSON shape of an AC record. A record of another shape is not
/// misread: it is reported as corrupt and evicted, and the node rebuilds.
const AC_FORMAT: &str = "ov-ac-v1";

/// A blob that a result refers to: an output or a log in the CAS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// What the blob is to the node, e.g. `rootfs.tar` or `build.log`.
    pub name: String,
    /// Its digest in the CAS.
    pub digest: BlobDigest,
    /// Its size in bytes; checked against the stored blob on every lookup,
    /// which catches a truncated blob without reading it.
    pub size: u64,
}

/// What a finished node produced, as recorded in the action cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// The node, e.g. `layer:web@web`.
    pub node_id: String,
    /// Its kind: `layer`, `image`, ….
    pub kind: String,
    /// The node's output digest as text (an image id `sha256:…`, a blob
    /// digest, …). Opaque to the store.
    pub output: String,
    /// Outputs and logs kept in the CAS. The store refuses a result whose
    /// blobs are not all stored, and never returns one that lost any.
    pub blobs: Vec<BlobRef>,
    /// How long the node took.
    pub duration_ms: u64,
    /// When it finished, in Unix milliseconds.
    pub finished_unix_ms: u64,
    /// The key's ingredients (name, digest hex), so `ov explain` can say
    /// which one changed between two runs.
    pub manifest: Vec<(String, String)>,
    /// Rule-specific extras (image tag, engine image id, …).
    pub meta: serde_json::Value,
}

/// The answer of [`Store::get_action`].
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A complete, verified result whose blobs are all present.
    Hit(ActionResult),
    /// Nothing is recorded for the key.
    Miss,
    /// Something was recorded but is unusable. It has been evicted; treat
    /// this as a miss, and perhaps tell the user.
    Corrupt {
        /// What was wrong.
        reason: String,
    },
}

/// The JSON stored for a key. It names its key so a record can never be
/// taken for another key's.
#[derive(Serialize, Deserialize)]
struct AcRecord {
    format: String,
    key: String,
    result: ActionResult,
}

/// The cacache index key of a node key.
pub(crate) fn ac_key(key: &NodeKey) -> String {
    format!("ac/{key}")
}

/// Why an AC entry could not be used.
pub(crate) enum Unusable {
    /// The entry is damaged or incomplete: evict it.
    Corrupt(String),
    /// The store could not be read: report it.
    Failed(Error),
}

/// A decoded, checked AC entry.
pub(crate) struct CheckedAction {
    pub result: ActionResult,
    /// The digest of the JSON record in the content store.
    pub record: BlobDigest,
}

impl Store {
    /// The recorded result for `key`, verified: the record must match its
    /// digest, decode, belong to `key`, and every blob it names must be
    /// present at its recorded size. Anything else is evicted and reported
    /// as [`Lookup::Corrupt`], never returned.
    ///
    /// Blob contents are not re-hashed here (a hit must stay cheap with
    /// gigabytes of outputs); they are verified when read
    /// ([`Store::read_blob`], [`Store::blob_to_file`]) and by
    /// [`Store::verify`]. A hit marks the entry used, for gc.
    pub fn get_action(&self, key: &NodeKey) -> Result<Lookup, Error> {
        let index_key = ac_key(key);
        // A damaged line hides from cacache every entry after it in the
        // bucket (a miss, or an older entry): repair the bucket first. It is
        // one small file, which cacache reads next anyway. A store that
        // cannot be rewritten (read-only) is still read: best effort.
        let _ = self.repair_bucket(&self.bucket_of(&index_key));
        let meta = match cacache::metadata_sync(&self.root, &index_key) {
            Ok(Some(meta)) => meta,
            Ok(None) => return Ok(Lookup::Miss),
            Err(e) => return Err(self.store_err(e)),
        };
        match self.check_action(key, &meta.integrity) {
            Ok(checked) => {
                touch(&self.content_path(&checked.record));
                Ok(Lookup::Hit(checked.result))
            }
            Err(Unusable::Corrupt(reason)) => {
                self.evict_action(&index_key, &meta.integrity);
                Ok(Lookup::Corrupt { reason })
            }
            Err(Unusable::Failed(e)) => Err(e),
        }
    }

    /// Records `r` as the result of `key`, but only once every blob it
    /// names is stored at the size it claims ([`Error::MissingBlob`],
    /// [`Error::BlobSize`] otherwise). The record is written and synced
    /// before the index points at it, so a crash leaves the old entry or
    /// the new one.
    pub fn put_action(&self, key: &NodeKey, r: &ActionResult) -> Result<(), Error> {
        for b in &r.blobs {
            let path = self.content_path(&b.digest);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == b.size => {}
                Ok(m) => {
                    return Err(Error::BlobSize {
                        name: b.name.clone(),
                        digest: b.digest,
                        claimed: b.size,
                        stored: m.len(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::MissingBlob {
                        name: b.name.clone(),
                        digest: b.digest,
                    })
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let record = AcRecord {
            format: AC_FORMAT.to_string(),
            key: key.to_string(),
            result: r.clone(),
        };
        let json = serde_json::to_vec(&record)
            .map_err(|e| Error::io(&self.root, std::io::Error::other(e)))?;
        let record_digest = self.put_blob_bytes(&json)?;
        let opts = cacache::WriteOpts::new()
            .integrity(record_digest.to_integrity())
            .size(json.len());
        let index_key = ac_key(key);
        let bucket = self.bucket_of(&index_key);
        let before = std::fs::metadata(&bucket).map(|m| m.len()).ok();
        if let Err(e) = cacache::index::insert(&self.root, &index_key, opts) {
            // A failed append (a full disk) may leave part of a line: cut it
            // off, so the bucket holds whole lines only. Truncating needs no
            // space.
            if let Some(len) = before {
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&bucket) {
                    let _ = f.set_len(len);
                }
            }
            return Err(self.store_err(e));
        }
        self.changed();
        Ok(())
    }

    /// Reads, verifies and decodes the AC record at `sri` for `key`, and
    /// checks its blobs are present. A blob of the wrong size is evicted
    /// too: its content cannot match its digest.
    pub(crate) fn check_action(
        &self,
        key: &NodeKey,
        sri: &cacache::Integrity,
    ) -> Result<CheckedAction, Unusable> {
        let record = BlobDigest::from_integrity(sri).ok_or_else(|| {
            Unusable::Corrupt(format!("index entry has a malformed address {sri}"))
        })?;
        let bytes = match cacache::read_hash_sync(&self.root, &record.to_integrity()) {
            Ok(bytes) => bytes,
            Err(e) => {
                return Err(match self.classify(e) {
                    ReadFailure::Missing => Unusable::Corrupt("its record is missing".to_string()),
                    ReadFailure::Corrupt(why) => Unusable::Corrupt(format!("its record: {why}")),
                    ReadFailure::Other(e) => Unusable::Failed(e),
                })
            }
        };
        let rec: AcRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Unusable::Corrupt(format!("its record does not decode: {e}")))?;
        if rec.format != AC_FORMAT {
            return Err(Unusable::Corrupt(format!(
                "its record has format {:?}, not {AC_FORMAT:?}",
                rec.format
            )));
        }
        if rec.key != key.to_string() {
            return Err(Unusable::Corrupt(format!(
                "its record belongs to key {}",
                rec.key
            )));
        }
        for b in &rec.result.blobs {
            let path = self.content_path(&b.digest);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == b.size => {}
                Ok(m) => {
                    let _ = self.evict_blob(&b.digest);
                    return Err(Unusable::Corrupt(format!(
                        "blob {} ({}) is {} bytes, not {}",
                        b.digest,
                        b.name,
                        m.len(),
                        b.size
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Unusable::Corrupt(format!(
                        "blob {} ({}) is missing",
                        b.digest, b.name
                    )))
                }
                Err(e) => return Err(Unusable::Failed(Error::io(path, e))),
            }
        }
        Ok(CheckedAction {
            result: rec.result,
            record,
        })
    }

    /// Removes an AC entry: its index bucket and its record. Best effort,
    /// and safe to race with other processes: the worst outcome is a lost
    /// entry, i.e. a rebuild.
    pub(crate) fn evict_action(&self, index_key: &str, sri: &cacache::Integrity) {
        self.changed();
        let fully = BlobDigest::from_integrity(sri).is_some()
            && cacache::RemoveOpts::new()
                .remove_fully(true)
                .remove_sync(&self.root, index_key)
                .is_ok();
        if !fully {
            // The record is gone or the address is malformed (on which
            // `remove_fully` would panic): write a tombstone instead.
            let _ = cacache::remove_sync(&self.root, index_key);
            if let Some(record) = BlobDigest::from_integrity(sri) {
                let _ = self.evict_blob(&record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::Digest;

    fn record_path(store: &Store, key: &NodeKey) -> std::path::PathBuf {
        let meta = cacache::metadata_sync(store.root(), ac_key(key))
            .unwrap()
            .unwrap();
        store.content_path(&BlobDigest::from_integrity(&meta.integrity).unwrap())
    }

    #[test]
    fn round_trip() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);
        let d = store.put_blob_bytes(b"rootfs").unwrap();
        let r = result("layer:web@web", &[("rootfs.tar", d, 6)]);
        store.put_action(&key, &r).unwrap();
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Hit(r.clone()));
        // A second put for the key replaces the first.
        let mut r2 = r.clone();
        r2.duration_ms = 99;
        store.put_action(&key, &r2).unwrap();
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Hit(r2));
        assert_eq!(
            store.get_action(&NodeKey::of_bytes(b"other")).unwrap(),
            Lookup::Miss
        );
    }

    #[test]
    fn the_generation_moves_when_answers_change_and_only_then() {
        let (_dir, store) = store();
        let gen = Store::generation_path(store.root());
        let inode = || {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&gen)
                .ok()
                .map(|m| (m.ino(), m.mtime_nsec(), m.len()))
        };
        assert_eq!(inode(), None);
        let key = NodeKey::of_bytes(b"node");
        store
            .put_blob_bytes(b"a blob alone answers nothing")
            .unwrap();
        assert_eq!(inode(), None);
        store.put_action(&key, &result("n", &[])).unwrap();
        let first = inode();
        assert!(first.is_some());
        assert!(matches!(store.get_action(&key).unwrap(), Lookup::Hit(_)));
        assert_eq!(inode(), first, "a read changed the generation");
        std::fs::write(record_path(&store, &key), b"damaged").unwrap();
        assert!(matches!(
            store.get_action(&key).unwrap(),
            Lookup::Corrupt { .. }
        ));
        assert_ne!(inode(), first, "an eviction left the generation alone");
    }

    #[test]
    fn put_refuses_a_missing_or_mis_sized_blob() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        let absent = BlobDigest::of_bytes(b"absent");
        let r = result("n", &[("out", absent, 6)]);
        assert!(matches!(
            store.put_action(&key, &r),
            Err(Error::MissingBlob { digest, .. }) if digest == absent
        ));
        let d = store.put_blob_bytes(b"present").unwrap();
        let r = result("n", &[("out", d, 3)]);
        assert!(matches!(
            store.put_action(&key, &r),
            Err(Error::BlobSize { stored: 7, .. })
        ));
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);
    }

    #[test]
    fn corrupt_record_is_evicted() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        store.put_action(&key, &result("n", &[])).unwrap();
        let record = BlobDigest::from_integrity(
            &cacache::metadata_sync(store.root(), ac_key(&key))
                .unwrap()
                .unwrap()
                .integrity,
        )
        .unwrap();
        flip_byte(&store, &record, 10);
        assert!(matches!(
            store.get_action(&key).unwrap(),
            Lookup::Corrupt { .. }
        ));
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss, "not evicted");
        // A later put restores the entry.
        store.put_action(&key, &result("n", &[])).unwrap();
        assert!(matches!(store.get_action(&key).unwrap(), Lookup::Hit(_)));
    }

    #[test]
    fn undecodable_record_is_evicted() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        // Valid content, wrong shape: integrity passes, decoding fails.
        cacache::write_sync(store.root(), ac_key(&key), b"{\"not\": \"a record\"}").unwrap();
        match store.get_action(&key).unwrap() {
            Lookup::Corrupt { reason } => assert!(reason.contains("decode"), "{reason}"),
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);
    }

    #[test]
    fn record_of_another_key_is_refused() {
        let (_dir, store) = store();
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        store.put_action(&a, &result("n", &[])).unwrap();
        let sri = cacache::metadata_sync(store.root(), ac_key(&a))
            .unwrap()
            .unwrap()
            .integrity;
        cacache::index::insert(
            store.root(),
            &ac_key(&b),
            cacache::WriteOpts::new().integrity(sri),
        )
        .unwrap();
        assert!(matches!(
            store.get_action(&b).unwrap(),
            Lookup::Corrupt { .. }
        ));
    }

    #[test]
    fn missing_or_truncated_blob_makes_the_entry_corrupt() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        let d = store.put_blob_bytes(b"rootfs").unwrap();
        store
            .put_action(&key, &result("n", &[("rootfs.tar", d, 6)]))
            .unwrap();
        store.evict_blob(&d).unwrap();
        match store.get_action(&key).unwrap() {
            Lookup::Corrupt { reason } => assert!(reason.contains("missing"), "{reason}"),
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);

        let d = store.put_blob_bytes(b"rootfs").unwrap();
        store
            .put_action(&key, &result("n", &[("rootfs.tar", d, 6)]))
            .unwrap();
        let path = store.content_path(&d);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, b"root").unwrap();
        assert!(matches!(
            store.get_action(&key).unwrap(),
            Lookup::Corrupt { .. }
        ));
        assert!(!store.has_blob(&d), "the truncated blob was kept");
    }

    #[test]
    fn a_hit_marks_the_entry_used() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"node");
        store.put_action(&key, &result("n", &[])).unwrap();
        let path = record_path(&store, &key);
        set_last_use(&path, 1_000);
        store.get_action(&key).unwrap();
        let used = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(used > std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000));
    }
    /// A tmpfs of `size` on a fresh dir, unmounted on drop: a disk that
    /// really fills up. Mounting needs root, as the whole suite does.
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn new(size: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .expect("running mount");
            assert!(status.success(), "mounting a tmpfs needs root");
            Tmpfs(dir)
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0.path())
                .status();
        }
    }

    /// Fills the file system of `dir` but for `pages` free pages.
    fn fill_but(dir: &std::path::Path, pages: u64) {
        let filler = dir.join("filler");
        let _ = std::fs::remove_file(&filler);
        let mut f = std::fs::File::create(&filler).unwrap();
        let page = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &page).is_ok() {}
        let full = f.metadata().unwrap().len();
        f.set_len(full.saturating_sub(pages * 4096)).unwrap();
    }

    #[test]
    fn a_full_disk_mid_index_append_leaves_whole_lines() {
        let fs = Tmpfs::new("1m");
        let store = Store::open(&fs.0.path().join("store")).unwrap();
        let old = NodeKey::of_bytes(b"old");
        let old_result = result("old", &[]);
        store.put_action(&old, &old_result).unwrap();
        let mut torn_append = false;
        for pages in 0..6u64 {
            let key = NodeKey::of_bytes(&pages.to_le_bytes());
            // Blank lines, which every reader skips, bring the key's bucket
            // to just short of a page: its entry's append then needs a new
            // page half-way through the line.
            let bucket = store.bucket_of(&ac_key(&key));
            std::fs::create_dir_all(bucket.parent().unwrap()).unwrap();
            let padding = vec![b'\n'; 4096 - 40];
            std::fs::write(&bucket, &padding).unwrap();
            fill_but(fs.0.path(), pages);
            let r = result("new", &[]);
            let put = store.put_action(&key, &r);
            std::fs::remove_file(fs.0.path().join("filler")).unwrap();
            let record = serde_json::to_vec(&AcRecord {
                format: AC_FORMAT.to_string(),
                key: key.to_string(),
                result: r.clone(),
            })
            .unwrap();
            let record_stored = store.has_blob(&BlobDigest::of_bytes(&record));
            match put {
                Ok(()) => {
                    assert_eq!(store.get_action(&key).unwrap(), Lookup::Hit(r));
                    break;
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                    if record_stored {
                        // The record went in and the index append hit the
                        // full disk: the bucket holds what it held, whole.
                        torn_append = true;
                        let now = std::fs::read(&bucket).unwrap();
                        assert!(
                            now == padding,
                            "{msg}: the bucket grew from {} to {} bytes, ending {:?}",
                            padding.len(),
                            now.len(),
                            String::from_utf8_lossy(&now[padding.len().min(now.len())..])
                        );
                    }
                    assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);
                }
            }
            assert_eq!(
                store.get_action(&old).unwrap(),
                Lookup::Hit(old_result.clone())
            );
        }
        assert!(
            torn_append,
            "no round found the disk full in the index append"
        );
    }
}
