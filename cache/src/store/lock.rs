//! Per-key build claims, so that two processes sharing a store build a
//! node once: the first takes the key's lock and builds; the others wait
//! for it, then find the result in the store.
//!
//! The lock is an advisory `flock` on `locks/<xx>/<key hex>`: the kernel
//! drops it when its holder exits, `kill -9` included, so a crashed build
//! never blocks the next one. Lock files are empty; gc deletes those no one
//! holds, each while holding its lock, and a claim checks after locking
//! that its file is still the one at the path, so a deleted file cannot be
//! claimed twice.

use super::Store;
use crate::{Error, NodeKey};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The folder of the lock files.
pub(crate) const LOCK_DIR: &str = "locks";

/// A held claim on a key. Dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct KeyLock {
    // Closing the file releases the lock.
    _file: File,
}

impl Store {
    /// Where the lock of `key` lives.
    fn lock_path(&self, key: &NodeKey) -> PathBuf {
        let hex = key.to_string();
        self.root.join(LOCK_DIR).join(&hex[0..2]).join(&hex[2..])
    }

    /// Claims `key` if no one else (no other process, nor another claim in
    /// this one) holds it; `None` when someone does. Never blocks: callers
    /// poll, so a wait can be cancelled and occupies no thread.
    pub fn try_lock_key(&self, key: &NodeKey) -> Result<Option<KeyLock>, Error> {
        let path = self.lock_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        lock_opened(file, &path)
    }

    /// Deletes the lock files no one holds, each while holding its lock,
    /// so they do not pile up one per key ever built. Best effort.
    pub(crate) fn prune_locks(&self) {
        use rustix::fs::{flock, FlockOperation};
        let mut files = Vec::new();
        let _ = super::scan::walk(&self.root.join(LOCK_DIR), &mut |path, _| {
            files.push(path.to_path_buf());
        });
        for path in files {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok()
                && still_at(&file, &path)
            {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Locks `file`, just opened at `path`, if no one holds it.
fn lock_opened(file: File, path: &std::path::Path) -> Result<Option<KeyLock>, Error> {
    use rustix::fs::{flock, FlockOperation};
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
        Err(e) => return Err(Error::io(path, e.into())),
    }
    // Deleted (by gc, under this lock) between our open and our lock: ours
    // is a stale file; the next try opens the live one.
    match still_at(&file, path) {
        true => Ok(Some(KeyLock { _file: file })),
        false => Ok(None),
    }
}

/// Whether `path` still names the open `file` (no one deleted or replaced
/// it since it was opened).
fn still_at(file: &File, path: &std::path::Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(now)) => now.ino() == held.ino() && now.dev() == held.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::{Digest, NodeKey};

    #[test]
    fn one_claim_per_key_until_it_is_dropped() {
        let (_dir, store) = store();
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        let held = store.try_lock_key(&a).unwrap().expect("free key");
        // A second claim, even from this process, waits; other keys do not.
        assert!(store.try_lock_key(&a).unwrap().is_none());
        let other = crate::Store::open(store.root()).unwrap();
        assert!(other.try_lock_key(&a).unwrap().is_none());
        assert!(store.try_lock_key(&b).unwrap().is_some());
        drop(held);
        assert!(other.try_lock_key(&a).unwrap().is_some());
    }

    #[test]
    fn a_lock_file_deleted_before_it_was_locked_is_no_claim() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"k");
        let path = store.lock_path(&key);
        drop(store.try_lock_key(&key).unwrap().unwrap());
        // A claim opens the file; before it locks, gc deletes the file and
        // another build claims a new one and finishes.
        let opened = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let live = store.try_lock_key(&key).unwrap().expect("the new file");
        drop(live);
        assert!(super::lock_opened(opened, &path).unwrap().is_none());
        // Deleted and not recreated: no claim either.
        let opened = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(super::lock_opened(opened, &path).unwrap().is_none());
        assert!(store.try_lock_key(&key).unwrap().is_some());
    }

    #[test]
    fn gc_deletes_the_lock_files_no_one_holds() {
        let (_dir, store) = store();
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        let held = store.try_lock_key(&a).unwrap().unwrap();
        drop(store.try_lock_key(&b).unwrap().unwrap());
        store.gc(u64::MAX).unwrap();
        assert!(
            store.lock_path(&a).is_file(),
            "a held lock file was deleted"
        );
        assert!(!store.lock_path(&b).exists(), "a free lock file was kept");
        assert!(store.try_lock_key(&a).unwrap().is_none());
        drop(held);
        assert!(store.try_lock_key(&a).unwrap().is_some());
    }
}
