//! The CAS: blobs stored and fetched by their sha256.

use super::{touch, ReadFailure, Store};
use crate::{BlobDigest, Error};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Chunk size for streaming files in and out: large enough that a
/// multi-gigabyte disk image is not a million tiny reads, small enough to
/// never matter for memory.
const CHUNK: usize = 1 << 20;

/// Numbers the temp files `blob_to_file` places next to its destination.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Stores `data` and returns its digest. Storing content that is
    /// already there replaces the file, which also repairs a damaged copy.
    pub fn put_blob_bytes(&self, data: &[u8]) -> Result<BlobDigest, Error> {
        let mut reader = data;
        self.put_stream(&mut reader, &self.root).map(|(d, _)| d)
    }

    /// Stores the file at `path`, streaming it in chunks (it is never read
    /// whole into memory), and returns its digest and size.
    pub fn put_blob_file(&self, path: &Path) -> Result<(BlobDigest, u64), Error> {
        let mut src = File::open(path).map_err(|e| Error::io(path, e))?;
        self.put_stream(&mut src, path)
    }

    /// Stores the file at `path`, which the caller gives up (a node's output
    /// in its scratch dir): hashed in one read, then renamed into the
    /// content store, so a multi-gigabyte disk is not written a second
    /// time. Across file systems it is copied as
    /// [`put_blob_file`](Self::put_blob_file) does. Either way `path` is
    /// gone when this succeeds.
    pub fn put_blob_file_owned(&self, path: &Path) -> Result<(BlobDigest, u64), Error> {
        // What the producer left unwritten (a gigabyte of disk that
        // `qemu-img` just wrote) goes to the device while the hash reads
        // it back from the page cache, so the fsync that makes the stored
        // blob durable (`seal`) finds little left to do.
        let (hashed, synced) = std::thread::scope(|s| {
            let sync = s.spawn(|| File::open(path).and_then(|f| f.sync_data()));
            let hashed = sha256_file(path);
            let synced = sync
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")));
            (hashed, synced)
        });
        let (d, size) = hashed.map_err(|e| Error::io(path, e))?;
        synced.map_err(|e| Error::io(path, e))?;
        let dest = self.content_path(&d);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // A blob stored already is replaced, which also repairs a damaged
        // copy, as storing it again by copying would.
        match std::fs::rename(path, &dest) {
            Ok(()) => {
                self.seal(&d)?;
                Ok((d, size))
            }
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                let stored = self.put_blob_file(path)?;
                let _ = std::fs::remove_file(path);
                Ok(stored)
            }
            Err(e) => Err(Error::io(&dest, e)),
        }
    }

    /// Stores what `src` yields, streaming (an image layer read straight out
    /// of the engine's export), and returns its digest and size; `name`
    /// names the source in errors.
    pub fn put_blob_reader(
        &self,
        src: &mut dyn Read,
        name: &str,
    ) -> Result<(BlobDigest, u64), Error> {
        self.put_stream(src, Path::new(name))
    }

    /// Streams `src` (named `src_name` in errors) into the content store.
    fn put_stream(&self, src: &mut dyn Read, src_name: &Path) -> Result<(BlobDigest, u64), Error> {
        // Never `.size()`, nor `cacache::write_hash_sync` (which sets it):
        // with cacache's `mmap` feature a declared size of at most 1 MiB makes
        // the writer expect the whole blob in one write, and a size of 0
        // fails outright (posix_fallocate of 0 bytes is EINVAL).
        let mut w = cacache::WriteOpts::new()
            .algorithm(cacache::Algorithm::Sha256)
            .open_hash_sync(&self.root)
            .map_err(|e| self.store_err(e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(src_name, e)),
            };
            w.write_all(&buf[..n])
                .map_err(|e| Error::io(self.root.join("tmp"), e))?;
            size += n as u64;
        }
        let sri = w.commit().map_err(|e| self.store_err(e))?;
        let d = self.stored_digest(&sri)?;
        self.seal(&d)?;
        Ok((d, size))
    }

    /// Whether the blob is present. Only looks, does not verify: the
    /// content is checked when it is read.
    pub fn has_blob(&self, d: &BlobDigest) -> bool {
        self.content_path(d).is_file()
    }

    /// The blob's bytes, verified against its digest. A damaged blob is
    /// evicted and reported as [`Error::Corrupt`]; storing it again restores it.
    pub fn read_blob(&self, d: &BlobDigest) -> Result<Vec<u8>, Error> {
        match cacache::read_hash_sync(&self.root, &d.to_integrity()) {
            Ok(data) => {
                touch(&self.content_path(d));
                Ok(data)
            }
            Err(e) => Err(self.read_failure(d, self.classify(e))),
        }
    }

    /// Puts the blob at `dest` (replacing it atomically), verified, without
    /// reading it into memory: a reflink where the file system can, else a
    /// hard link, else a copy.
    ///
    /// A hard link shares the store's file: treat `dest` as read-only (it is
    /// mode 0444) and copy it before changing it, or use
    /// [`Store::blob_copy_to_file`]. Writing to it in place damages the
    /// store's copy (verification then evicts it).
    pub fn blob_to_file(&self, d: &BlobDigest, dest: &Path) -> Result<(), Error> {
        self.place(d, dest, true)
    }

    /// Like [`Store::blob_to_file`] but never hard-links, so `dest` is the
    /// caller's own file to change (a VM disk that will be booted, say):
    /// a reflink where the file system can, else a copy.
    pub fn blob_copy_to_file(&self, d: &BlobDigest, dest: &Path) -> Result<(), Error> {
        self.place(d, dest, false)
    }

    /// Like [`Store::blob_to_file`], but where `dest` shares the store's
    /// content (a reflink or a hard link) the check of that content is
    /// left to the [`Unchecked`] returned, so reading a large blob back can
    /// overlap other work. Until it passes, nothing made from `dest` may be
    /// kept. Where the blob has to be copied, it is checked as it is
    /// copied and `None` comes back.
    pub fn blob_to_file_unchecked(
        &self,
        d: &BlobDigest,
        dest: &Path,
    ) -> Result<Option<Unchecked>, Error> {
        self.place_with(d, dest, true, false).map(|shared| {
            shared.then(|| Unchecked {
                store: self.clone(),
                digest: *d,
            })
        })
    }

    fn place(&self, d: &BlobDigest, dest: &Path, allow_link: bool) -> Result<(), Error> {
        self.place_with(d, dest, allow_link, true).map(|_| ())
    }

    /// Places blob `d` at `dest`; whether `dest` shares the store's
    /// content (and so was not checked when `check` is false).
    fn place_with(
        &self,
        d: &BlobDigest,
        dest: &Path,
        allow_link: bool,
        check: bool,
    ) -> Result<bool, Error> {
        let src = self.content_path(d);
        if !src.is_file() {
            return Err(Error::MissingBlob {
                name: String::new(),
                digest: *d,
            });
        }
        let tmp = temp_beside(dest)?;
        let sri = d.to_integrity();
        let verify = || {
            if check {
                self.verify_content(d)
            } else {
                Ok(())
            }
        };
        let mut shared = true;
        let placed = if cacache::reflink_hash_unchecked_sync(&self.root, &sri, &tmp).is_ok() {
            // The reflink shares the very extents read back here. It also
            // copies the store's read-only mode, which a private copy drops.
            verify().and_then(|()| {
                if allow_link {
                    Ok(())
                } else {
                    make_writable(&tmp).map_err(|e| ReadFailure::Other(Error::io(&tmp, e)))
                }
            })
        } else if allow_link
            && cacache::hard_link_hash_unchecked_sync(&self.root, &sri, &tmp).is_ok()
        {
            // Same inode: verifying the store's file verifies `dest`.
            verify()
        } else {
            shared = false;
            self.copy_verified(d, &tmp)
        };
        let placed = placed.and_then(|()| {
            std::fs::rename(&tmp, dest).map_err(|e| ReadFailure::Other(Error::io(dest, e)))
        });
        match placed {
            Ok(()) => {
                // Renaming a hard link onto another link of the same file
                // (placing a blob twice) does nothing and leaves `tmp`.
                let _ = std::fs::remove_file(&tmp);
                touch(&src);
                Ok(shared)
            }
            Err(failure) => {
                let _ = std::fs::remove_file(&tmp);
                Err(self.read_failure(d, failure))
            }
        }
    }

    /// Streams the blob to `to` through a digest check: one read, one write.
    fn copy_verified(&self, d: &BlobDigest, to: &Path) -> Result<(), ReadFailure> {
        let mut r = cacache::SyncReader::open_hash(&self.root, d.to_integrity())
            .map_err(|e| self.classify(e))?;
        let io_err = |e| ReadFailure::Other(Error::io(to, e));
        let mut out = File::create(to).map_err(io_err)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadFailure::Other(Error::io(self.content_path(d), e))),
            };
            out.write_all(&buf[..n]).map_err(io_err)?;
        }
        r.check().map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// Re-hashes a stored blob (streaming) and compares it with its digest.
    pub(crate) fn verify_content(&self, d: &BlobDigest) -> Result<(), ReadFailure> {
        // Hashed here in 1 MiB reads: through cacache's reader (8 KiB
        // reads, its own checker) a 1 GB rootfs took 2.2 s, three times
        // what sha256 costs.
        let path = self.content_path(d);
        match sha256_file(&path) {
            Ok((got, _)) if got == *d => Ok(()),
            Ok((got, _)) => Err(ReadFailure::Corrupt(format!(
                "content does not match its digest (sha256 {got})"
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReadFailure::Missing),
            Err(e) => Err(ReadFailure::Other(Error::io(path, e))),
        }
    }

    /// Removes a blob. Gone already is fine.
    pub(crate) fn evict_blob(&self, d: &BlobDigest) -> Result<(), Error> {
        self.changed();
        let path = self.content_path(d);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// Turns a failed read of blob `d` into the caller's error, evicting the
    /// blob when it is damaged.
    fn read_failure(&self, d: &BlobDigest, failure: ReadFailure) -> Error {
        match failure {
            ReadFailure::Missing => Error::MissingBlob {
                name: String::new(),
                digest: *d,
            },
            ReadFailure::Corrupt(reason) => {
                let reason = match self.evict_blob(d) {
                    Ok(()) => reason,
                    Err(e) => format!("{reason}; evicting it failed: {e}"),
                };
                Error::Corrupt {
                    what: format!("blob {d}"),
                    reason,
                }
            }
            ReadFailure::Other(e) => e,
        }
    }

    /// The digest cacache stored content under; always a sha256 here
    /// because the store asks for nothing else.
    fn stored_digest(&self, sri: &cacache::Integrity) -> Result<BlobDigest, Error> {
        BlobDigest::from_integrity(sri).ok_or_else(|| Error::Corrupt {
            what: "new blob".to_string(),
            reason: format!("cacache stored it under {sri}, not one sha256"),
        })
    }
}

/// A blob placed by [`Store::blob_to_file_unchecked`] whose content is
/// still to be checked. Dropping it unchecked is allowed (a run that
/// failed anyway); keeping a result made from the blob is not.
#[derive(Debug)]
pub struct Unchecked {
    store: Store,
    digest: BlobDigest,
}

impl Unchecked {
    /// Reads the store's copy back against its digest: a damaged one is
    /// evicted and reported as [`Error::Corrupt`], as a checked placement
    /// would have.
    pub fn check(self) -> Result<(), Error> {
        self.store
            .verify_content(&self.digest)
            .map_err(|f| self.store.read_failure(&self.digest, f))
    }
}

/// The sha256 and size of the file at `path`, read in [`CHUNK`]s: the
/// digest the CAS would store it under.
pub fn sha256_file(path: &Path) -> std::io::Result<(BlobDigest, u64)> {
    use sha2::Digest as _;
    let mut f = File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((BlobDigest::from_bytes(h.finalize().into()), size))
}

/// Gives a reflinked private copy the usual mode of a new file.
fn make_writable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    {
        let mut perms = std::fs::metadata(path)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(path, perms)
    }
}

/// A fresh temp path in `dest`'s folder (so the final rename is atomic),
/// creating the folder when missing.
fn temp_beside(dest: &Path) -> Result<PathBuf, Error> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.ov-tmp.{}.{n}", std::process::id()));
    // A leftover from a crashed run of the same pid would block the link.
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"hello").unwrap();
        assert_eq!(d, BlobDigest::of_bytes(b"hello"));
        assert!(store.has_blob(&d));
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        let empty = store.put_blob_bytes(b"").unwrap();
        assert_eq!(store.read_blob(&empty).unwrap(), b"");
    }

    #[test]
    fn file_round_trip_in_chunks() {
        let (dir, store) = store();
        // Several chunks and a ragged end; also one small file, which cacache
        // would mmap if the store declared its size.
        for len in [3 * CHUNK + 17, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let src = dir.path().join("src");
            std::fs::write(&src, &data).unwrap();
            let (d, size) = store.put_blob_file(&src).unwrap();
            assert_eq!(size, len as u64);
            assert_eq!(d, BlobDigest::of_bytes(&data));
            assert_eq!(store.read_blob(&d).unwrap(), data);
        }
    }

    #[test]
    fn an_owned_file_is_moved_in_and_reads_back_verified() {
        let (dir, store) = store();
        let data: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i * 13 % 251) as u8).collect();
        let src = dir.path().join("disk.qcow2");
        std::fs::write(&src, &data).unwrap();
        let (d, size) = store.put_blob_file_owned(&src).unwrap();
        assert_eq!((d, size), (BlobDigest::of_bytes(&data), data.len() as u64));
        assert!(!src.exists(), "the file was given up");
        assert_eq!(store.read_blob(&d).unwrap(), data);
        // Read-only, like every stored blob (a hard-linked output must not
        // be able to write through to it).
        let mode = std::fs::metadata(store.content_path(&d))
            .unwrap()
            .permissions();
        assert!(mode.readonly());
        // Stored again: replaces the damaged copy.
        let path = store.content_path(&d);
        let mut p = mode.clone();
        #[allow(clippy::permissions_set_readonly_false)]
        p.set_readonly(false);
        std::fs::set_permissions(&path, p).unwrap();
        std::fs::write(&path, b"damaged").unwrap();
        std::fs::write(&src, &data).unwrap();
        store.put_blob_file_owned(&src).unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), data);
    }

    #[test]
    fn missing_blob_is_reported() {
        let (dir, store) = store();
        let d = BlobDigest::of_bytes(b"never stored");
        assert!(!store.has_blob(&d));
        assert!(matches!(
            store.read_blob(&d),
            Err(Error::MissingBlob { .. })
        ));
        let dest = dir.path().join("out");
        assert!(matches!(
            store.blob_to_file(&d, &dest),
            Err(Error::MissingBlob { .. })
        ));
        assert!(!dest.exists());
    }

    #[test]
    fn corrupt_blob_is_evicted_and_restored_by_a_later_put() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"precious bytes").unwrap();
        flip_byte(&store, &d, 3);
        match store.read_blob(&d) {
            Err(Error::Corrupt { what, .. }) => assert!(what.contains(&d.to_string())),
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert!(!store.has_blob(&d), "corrupt blob was not evicted");
        assert_eq!(store.put_blob_bytes(b"precious bytes").unwrap(), d);
        assert_eq!(store.read_blob(&d).unwrap(), b"precious bytes");
    }

    #[test]
    fn a_put_repairs_a_damaged_blob_in_place() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"precious bytes").unwrap();
        flip_byte(&store, &d, 0);
        store.put_blob_bytes(b"precious bytes").unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"precious bytes");
    }

    #[test]
    fn an_unchecked_placement_is_checked_later_and_a_damaged_blob_evicted() {
        let (dir, store) = store();
        let data: Vec<u8> = (0..CHUNK + 9).map(|i| (i * 5 % 251) as u8).collect();
        let d = store.put_blob_bytes(&data).unwrap();
        let dest = dir.path().join("rootfs.tar");
        let pending = store.blob_to_file_unchecked(&d, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        // Same file system: the placement shares the store's content, so
        // its check is the caller's to run.
        pending
            .expect("a linked blob is left unchecked")
            .check()
            .unwrap();
        // Damaged in the store: placing still succeeds (nothing read it),
        // the check fails naming the blob and evicts it.
        flip_byte(&store, &d, 7);
        let dest2 = dir.path().join("again.tar");
        let pending = store.blob_to_file_unchecked(&d, &dest2).unwrap().unwrap();
        match pending.check() {
            Err(Error::Corrupt { what, .. }) => assert!(what.contains(&d.to_string())),
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert!(!store.has_blob(&d), "the damaged blob was not evicted");
        assert!(matches!(
            store.blob_to_file_unchecked(&d, &dest2),
            Err(Error::MissingBlob { .. })
        ));
    }

    #[test]
    fn blob_to_file_places_and_replaces() {
        let (dir, store) = store();
        let d = store.put_blob_bytes(b"layer tarball").unwrap();
        let dest = dir.path().join("out/sub/layer.tar");
        store.blob_to_file(&d, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"layer tarball");
        // Placing again replaces the file.
        store.blob_to_file(&d, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"layer tarball");
        let copy = dir.path().join("out/disk.qcow2");
        store.blob_copy_to_file(&d, &copy).unwrap();
        std::fs::write(&copy, b"changed by a VM").unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), b"layer tarball");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out/sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }

    #[test]
    fn blob_to_file_refuses_a_corrupt_blob() {
        let (dir, store) = store();
        let d = store.put_blob_bytes(b"layer tarball").unwrap();
        flip_byte(&store, &d, 5);
        let dest = dir.path().join("layer.tar");
        assert!(matches!(
            store.blob_to_file(&d, &dest),
            Err(Error::Corrupt { .. })
        ));
        assert!(!dest.exists(), "a corrupt blob was placed");
        assert!(!store.has_blob(&d));
        let d2 = store.put_blob_bytes(b"layer tarball").unwrap();
        flip_byte(&store, &d2, 5);
        assert!(matches!(
            store.blob_copy_to_file(&d2, &dest),
            Err(Error::Corrupt { .. })
        ));
        assert!(!dest.exists(), "a corrupt blob was copied");
    }

    #[test]
    fn stored_blobs_are_read_only() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"x").unwrap();
        let perms = std::fs::metadata(store.content_path(&d))
            .unwrap()
            .permissions();
        assert!(perms.readonly());
    }
}
