//! Walking the store: what is in it and how big it is. Shared by
//! [`Store::stats`], [`Store::gc`] and [`Store::verify`].

use super::last::LAST_DIR;
use super::{format_size, last_use, Store, CONTENT_DIR};
use crate::{BlobDigest, Error, NodeKey};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One file of the content store.
pub(crate) struct ContentFile {
    pub digest: BlobDigest,
    pub size: u64,
    pub last_use: SystemTime,
}

/// One live AC entry of the index.
pub(crate) struct IndexEntry {
    /// The cacache key, `ac/<hex>`.
    pub index_key: String,
    /// The node key, if the index key spells one.
    pub key: Option<NodeKey>,
    /// Where its record is.
    pub integrity: cacache::Integrity,
}

/// A file that is neither content nor an index entry: temp files of
/// interrupted writes and strays.
pub(crate) struct OtherFile {
    pub path: PathBuf,
    pub size: u64,
    pub last_use: SystemTime,
    /// A temp file (cacache's `tmp/`, or an `atomic_write` leftover), which
    /// gc may remove once it is old enough to belong to no live writer.
    pub temp: bool,
}

/// Everything in the store, as found by one walk.
pub(crate) struct Inventory {
    /// Content files under `content-v2/sha256` (blobs and AC records).
    pub content: Vec<ContentFile>,
    /// Files under `content-v2/sha256` whose names are no sha256.
    pub stray_content: Vec<PathBuf>,
    /// Live AC entries.
    pub actions: Vec<IndexEntry>,
    /// Last-run record files.
    pub last: Vec<PathBuf>,
    /// Temp and stray files.
    pub other: Vec<OtherFile>,
    /// Every byte of every file under the store's folder.
    pub total_bytes: u64,
    /// Index buckets that held damaged lines, rewritten before the index
    /// was listed (so no entry hides behind them): the bucket and how many
    /// lines it dropped, or why it could not be repaired.
    pub repaired: Vec<(PathBuf, Result<usize, Error>)>,
}

/// What [`Store::stats`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Action-cache entries.
    pub actions: u64,
    /// Blobs in the CAS (not counting the AC's own records).
    pub blobs: u64,
    /// Bytes of those blobs.
    pub blob_bytes: u64,
    /// Last-run records (node ids that have run).
    pub last_runs: u64,
    /// Everything under the store's folder: blobs, AC records, cacache's
    /// index, last-run records and temp files. What gc's `max_size` bounds.
    pub total_bytes: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "action cache entries: {}", self.actions)?;
        writeln!(
            f,
            "blobs:                {} ({})",
            self.blobs,
            format_size(self.blob_bytes)
        )?;
        writeln!(f, "last-run records:     {}", self.last_runs)?;
        write!(f, "total on disk:        {}", format_size(self.total_bytes))
    }
}

impl Store {
    /// Counts what the store holds. Walks the whole store (no file is
    /// read but the index), so it costs a few milliseconds per thousand
    /// entries.
    pub fn stats(&self) -> Result<Stats, Error> {
        let inv = self.inventory()?;
        let records: HashSet<BlobDigest> = inv
            .actions
            .iter()
            .filter_map(|a| BlobDigest::from_integrity(&a.integrity))
            .collect();
        let blobs = inv.content.iter().filter(|c| !records.contains(&c.digest));
        let (n, bytes) = blobs.fold((0, 0), |(n, b), c| (n + 1, b + c.size));
        Ok(Stats {
            actions: inv.actions.len() as u64,
            blobs: n,
            blob_bytes: bytes,
            last_runs: inv.last.len() as u64,
            total_bytes: inv.total_bytes,
        })
    }

    /// Walks the store once.
    pub(crate) fn inventory(&self) -> Result<Inventory, Error> {
        let mut inv = Inventory {
            content: Vec::new(),
            stray_content: Vec::new(),
            actions: Vec::new(),
            last: Vec::new(),
            other: Vec::new(),
            total_bytes: 0,
            repaired: self.repair_index(),
        };
        let content_dir = self.root.join(CONTENT_DIR);
        let last_dir = self.root.join(LAST_DIR);
        let tmp_dir = self.root.join("tmp");
        walk(&self.root, &mut |path, meta| {
            let size = meta.len();
            inv.total_bytes += size;
            if let Ok(rel) = path.strip_prefix(&content_dir) {
                match content_digest(rel) {
                    Some(digest) => inv.content.push(ContentFile {
                        digest,
                        size,
                        last_use: last_use(meta),
                    }),
                    None => inv.stray_content.push(path.to_path_buf()),
                }
            } else if path.starts_with(&last_dir) {
                let hidden = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if hidden {
                    inv.other.push(OtherFile {
                        path: path.to_path_buf(),
                        size,
                        last_use: last_use(meta),
                        temp: true,
                    });
                } else {
                    inv.last.push(path.to_path_buf());
                }
            } else if path.starts_with(&tmp_dir) {
                inv.other.push(OtherFile {
                    path: path.to_path_buf(),
                    size,
                    last_use: last_use(meta),
                    temp: true,
                });
            }
            // The index and anything else only count towards the total.
        })?;
        // cacache's listing fails on a store that has no index yet.
        let listing = match self.root.join(super::bucket::INDEX_DIR).is_dir() {
            true => Some(cacache::list_sync(&self.root)),
            false => None,
        };
        for entry in listing.into_iter().flatten() {
            let meta = entry.map_err(|e| self.store_err(e))?;
            if let Some(hex) = meta.key.strip_prefix("ac/") {
                inv.actions.push(IndexEntry {
                    key: hex.parse().ok(),
                    index_key: meta.key.clone(),
                    integrity: meta.integrity,
                });
            }
        }
        Ok(inv)
    }
}

/// Calls `f` for every file under `dir`. A folder that vanishes meanwhile
/// (another process's gc) is skipped.
pub(crate) fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        if meta.is_dir() {
            walk(&path, f)?;
        } else {
            f(&path, &meta);
        }
    }
    Ok(())
}

/// The digest named by a path `ab/cd/<60 hex>` under the sha256 content
/// folder.
fn content_digest(rel: &Path) -> Option<BlobDigest> {
    let parts: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
    match parts.as_slice() {
        [a, b, rest] if a.len() == 2 && b.len() == 2 => format!("{a}{b}{rest}").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::{BlobDigest, Digest, NodeKey};

    #[test]
    fn counts_blobs_actions_and_last_runs() {
        let (_dir, store) = store();
        assert_eq!(store.stats().unwrap(), Default::default());
        let a = store.put_blob_bytes(b"aaaa").unwrap();
        store.put_blob_bytes(b"bbbbbb").unwrap();
        let key = NodeKey::of_bytes(b"k");
        let r = result("n", &[("a", a, 4)]);
        store.put_action(&key, &r).unwrap();
        store.record_last("n", &key, &r).unwrap();
        let s = store.stats().unwrap();
        assert_eq!(
            (s.actions, s.blobs, s.blob_bytes, s.last_runs),
            (1, 2, 10, 1)
        );
        assert!(s.total_bytes > 10);
        assert!(s.to_string().contains("blobs:"));
    }

    #[test]
    fn content_paths_parse_back() {
        let (_dir, store) = store();
        let d = BlobDigest::of_bytes(b"x");
        let rel = store.content_path(&d);
        let rel = rel
            .strip_prefix(store.root().join(super::CONTENT_DIR))
            .unwrap();
        assert_eq!(super::content_digest(rel), Some(d));
        assert_eq!(super::content_digest(std::path::Path::new("ab/cd")), None);
    }
}
