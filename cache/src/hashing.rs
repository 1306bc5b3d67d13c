//! Hashing many files on all cores, through the [`StatCache`].

use crate::{Digest, Error, FileDigest, Fingerprint, StatCache};
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One hashed file.
#[derive(Clone, Debug)]
pub struct HashedFile {
    /// The path as given.
    pub path: PathBuf,
    /// Its fingerprint when it was hashed.
    pub fingerprint: Fingerprint,
    /// blake3 of its contents.
    pub digest: FileDigest,
}

/// Hashes `paths` in parallel. A file whose fingerprint matches the cache is
/// not read. Fresh digests are recorded in `cache`, except for files that
/// changed while being read or had not settled when this call began (see
/// [`Fingerprint::settled`]: a rewrite within the same timestamp tick could
/// otherwise hide behind an equal fingerprint).
pub fn hash_files(paths: &[PathBuf], cache: &mut StatCache) -> Result<Vec<HashedFile>, Error> {
    let started = now_ns();
    let shared: &StatCache = cache;
    let results: Vec<Result<(HashedFile, bool), Error>> = paths
        .par_iter()
        .map(|path| {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            let fp = Fingerprint::of(&meta);
            if let Some(digest) = shared.lookup(path, &fp) {
                return Ok((
                    HashedFile {
                        path: path.clone(),
                        fingerprint: fp,
                        digest,
                    },
                    false,
                ));
            }
            let (digest, after) = hash_one(path)?;
            let stable = after == fp && fp.settled(started);
            Ok((
                HashedFile {
                    path: path.clone(),
                    fingerprint: fp,
                    digest,
                },
                stable,
            ))
        })
        .collect();
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let (h, record) = r?;
        if record {
            cache.insert(h.path.clone(), h.fingerprint, h.digest);
        }
        out.push(h);
    }
    Ok(out)
}

/// Now, in nanoseconds since the epoch (`i128::MAX` if the clock is
/// before it, so nothing counts as settled).
pub(crate) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

thread_local! {
    /// One read buffer per worker thread, allocated once rather than
    /// zeroed for every small file.
    static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
}

/// blake3 of one file, streamed so a multi-GB file is never held in memory,
/// and the fingerprint of the open file once read (an `fstat`, cheaper than
/// a second lookup by path), to tell whether it changed while being read.
fn hash_one(path: &Path) -> Result<(FileDigest, Fingerprint), Error> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok::<(), Error>(())
    })?;
    let after = f.metadata().map_err(|e| Error::io(path, e))?;
    Ok((
        FileDigest::from_bytes(*hasher.finalize().as_bytes()),
        Fingerprint::of(&after),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"hello").unwrap();
        // Backdate so the file is not "racy" against this run.
        let old = SystemTime::now() - std::time::Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&a)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut cache = StatCache::in_memory();
        let out = hash_files(std::slice::from_ref(&a), &mut cache).unwrap();
        assert_eq!(out[0].digest, FileDigest::of_bytes(b"hello"));
        assert_eq!(cache.len(), 1);
        // A changed file is read again, not served from the cache.
        std::fs::write(&a, b"world!").unwrap();
        let out = hash_files(std::slice::from_ref(&a), &mut cache).unwrap();
        assert_eq!(out[0].digest, FileDigest::of_bytes(b"world!"));
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let mut cache = StatCache::in_memory();
        let err = hash_files(&[PathBuf::from("/nonexistent/x")], &mut cache).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"));
    }
}
