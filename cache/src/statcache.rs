//! The persistent stat cache: path + [`Fingerprint`] → [`FileDigest`].

use crate::{atomic_write, Error, FileDigest, Fingerprint};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bumped whenever the on-disk shape changes; an old file is then ignored
/// (and rebuilt), never misread.
const FORMAT: &str = "ov-stat-cache-v1";

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    format: String,
    entries: HashMap<PathBuf, (Fingerprint, FileDigest)>,
}

/// Remembers the digest of every file hashed before, keyed by its path and
/// fingerprint, so an unchanged file is only `stat`ed, never read again.
///
/// The cache is a hint: a missing, old-format or corrupt file just means
/// everything is hashed again. Several processes may share one file; the
/// last to save wins, which loses hints, never correctness.
#[derive(Default)]
pub struct StatCache {
    path: Option<PathBuf>,
    entries: HashMap<PathBuf, (Fingerprint, FileDigest)>,
    dirty: bool,
}

impl StatCache {
    /// Loads the cache kept at `path` (an empty one if absent or unreadable).
    pub fn load(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|bytes| postcard::from_bytes::<OnDisk>(&bytes).ok())
            .filter(|d| d.format == FORMAT)
            .map(|d| d.entries)
            .unwrap_or_default();
        StatCache {
            path: Some(path.to_path_buf()),
            entries,
            dirty: false,
        }
    }

    /// A cache that lives only in memory.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The digest recorded for `path` if its fingerprint still matches.
    pub fn lookup(&self, path: &Path, fp: &Fingerprint) -> Option<FileDigest> {
        match self.entries.get(path) {
            Some((seen, digest)) if seen == fp => Some(*digest),
            _ => None,
        }
    }

    /// What is recorded for `path`, whatever its fingerprint now.
    pub fn remembered(&self, path: &Path) -> Option<(Fingerprint, FileDigest)> {
        self.entries.get(path).copied()
    }

    /// Records many digests at once.
    pub fn insert_many(
        &mut self,
        items: impl IntoIterator<Item = (PathBuf, Fingerprint, FileDigest)>,
    ) {
        let items = items.into_iter();
        self.entries.reserve(items.size_hint().0);
        for (path, fp, digest) in items {
            self.insert(path, fp, digest);
        }
    }

    /// Records a digest.
    pub fn insert(&mut self, path: PathBuf, fp: Fingerprint, digest: FileDigest) {
        let old = self.entries.insert(path, (fp, digest));
        if old != Some((fp, digest)) {
            self.dirty = true;
        }
    }

    /// How many files are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the cache back (atomically) if anything changed.
    pub fn save(&mut self) -> Result<(), Error> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let on_disk = OnDisk {
            format: FORMAT.to_string(),
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = postcard::to_allocvec(&on_disk);
        self.entries = on_disk.entries;
        let bytes = bytes.map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        atomic_write(path, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    #[test]
    fn survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat");
        let fp = Fingerprint {
            size: 1,
            mtime_ns: 2,
            inode: 3,
            mode: 0o644,
        };
        let d = FileDigest::of_bytes(b"a");
        let mut c = StatCache::load(&file);
        c.insert("x".into(), fp, d);
        c.save().unwrap();
        let c = StatCache::load(&file);
        assert_eq!(c.lookup(Path::new("x"), &fp), Some(d));
        let other = Fingerprint { size: 9, ..fp };
        assert_eq!(c.lookup(Path::new("x"), &other), None);
    }

    #[test]
    fn a_corrupt_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat");
        std::fs::write(&file, b"\xff\xfe garbage").unwrap();
        assert!(StatCache::load(&file).is_empty());
    }
}
