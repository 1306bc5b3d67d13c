//! cacache's index buckets, read as bytes so that one damaged line costs
//! only itself.
//!
//! A bucket is a file of lines `\n<sha256 of json>\t<json>`, appended to on
//! every insert. cacache 13 reads it with `BufRead::lines().map_while(Ok)`:
//! the first line that is not UTF-8 ends the read, and every entry after it
//! is never seen again, so each build misses those keys and rebuilds them.
//! (A UTF-8 line that fails its hash is skipped on its own.) Here both kinds
//! of damage are found and the bucket is rewritten with its sound lines,
//! which cacache then reads whole again.
//!
//! Repairing in the store rather than patching cacache keeps the fix in code
//! we own and test, and works on stores written by any cacache version; the
//! bucket layout it relies on is pinned by a test.

use super::Store;
use crate::Error;
use sha1::Digest as _;
use std::path::{Path, PathBuf};

/// cacache's index folder (`index-v<INDEX_VERSION>`).
pub(crate) const INDEX_DIR: &str = "index-v5";

/// How often a repair re-reads a bucket that grew while it was rewritten.
const REPAIR_TRIES: usize = 5;

/// Where cacache keeps the bucket of `index_key`: the sha1 of the key in
/// hex, split `ab/cd/<rest>`.
pub(crate) fn bucket_path(root: &Path, index_key: &str) -> PathBuf {
    let hex = hex::encode(sha1::Sha1::digest(index_key.as_bytes()));
    root.join(INDEX_DIR)
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(&hex[4..])
}

/// A bucket's lines, sorted into sound and damaged.
struct Scan {
    /// The bucket's length when read.
    len: u64,
    /// The sound lines, in order, without their newlines.
    sound: Vec<Vec<u8>>,
    /// How many lines were damaged.
    damaged: usize,
}

/// Whether a line is one cacache wrote and can read: UTF-8, two fields,
/// the JSON matching its hash.
fn sound(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let Some((hash, json)) = text.split_once('\t') else {
        return false;
    };
    !json.contains('\t')
        && hex::encode(sha2::Sha256::digest(json.as_bytes())) == hash
        && serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok()
}

/// Reads a bucket; `None` when there is none.
fn scan(path: &Path) -> Result<Option<Scan>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut scan = Scan {
        len: bytes.len() as u64,
        sound: Vec::new(),
        damaged: 0,
    };
    // cacache starts every entry with a newline, so empty lines are normal.
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if sound(line) {
            scan.sound.push(line.to_vec());
        } else {
            scan.damaged += 1;
        }
    }
    Ok(Some(scan))
}

impl Store {
    /// The bucket of `index_key`.
    pub(crate) fn bucket_of(&self, index_key: &str) -> PathBuf {
        bucket_path(&self.root, index_key)
    }

    /// Rewrites the bucket at `path` with only its sound lines, if any are
    /// damaged, and returns how many lines it dropped.
    ///
    /// The rewrite is a temp file and a rename, so readers see the old
    /// bucket or the repaired one. An entry appended by another process
    /// between the read and the rename would be lost with the old file; the
    /// bucket's length is checked again just before the rename to make that
    /// window small, and the worst outcome is one rebuild.
    pub(crate) fn repair_bucket(&self, path: &Path) -> Result<usize, Error> {
        for _ in 0..REPAIR_TRIES {
            let Some(scan) = scan(path)? else {
                return Ok(0);
            };
            if scan.damaged == 0 {
                return Ok(0);
            }
            let mut text = Vec::new();
            for line in &scan.sound {
                text.push(b'\n');
                text.extend_from_slice(line);
            }
            let grew = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) != scan.len;
            if grew {
                continue;
            }
            crate::atomic_write(path, &text)?;
            self.changed();
            return Ok(scan.damaged);
        }
        // Appended to on every try: someone is busy there; leave it be.
        Ok(0)
    }

    /// Repairs every damaged bucket of the index: the bucket (relative to
    /// the store) and how many lines it dropped, or why it could not be
    /// read or rewritten.
    pub(crate) fn repair_index(&self) -> Vec<(PathBuf, Result<usize, Error>)> {
        let mut buckets = Vec::new();
        let _ = super::scan::walk(&self.root.join(INDEX_DIR), &mut |path, _| {
            // `atomic_write`'s temp files of a repair under way.
            let temp = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !temp {
                buckets.push(path.to_path_buf());
            }
        });
        buckets
            .into_iter()
            .filter_map(|path| {
                let outcome = self.repair_bucket(&path);
                let rel = path.strip_prefix(&self.root).unwrap_or(&path).to_path_buf();
                match outcome {
                    Ok(0) => None,
                    other => Some((rel, other)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::{Digest, Lookup, NodeKey};

    /// Turns one byte of line `line` (counted from 0, empty lines skipped)
    /// of a bucket into 0xff, which is never UTF-8.
    pub fn damage_line(bucket: &Path, line: usize) {
        let mut bytes = std::fs::read(bucket).unwrap();
        let starts: Vec<usize> = (0..bytes.len())
            .filter(|&i| bytes[i] != b'\n' && (i == 0 || bytes[i - 1] == b'\n'))
            .collect();
        bytes[starts[line] + 3] = 0xff;
        std::fs::write(bucket, bytes).unwrap();
    }

    #[test]
    fn bucket_path_matches_cacache_layout() {
        let (_dir, store) = store();
        cacache::index::insert(store.root(), "ac/xyz", cacache::WriteOpts::new()).unwrap();
        assert!(store.bucket_of("ac/xyz").is_file());
    }

    /// Two entries in one bucket (as when a key was recorded twice), the
    /// older damaged.
    fn two_lines(store: &crate::Store, key: &NodeKey) -> PathBuf {
        let old = result("old", &[]);
        store.put_action(key, &old).unwrap();
        let new = result("new", &[]);
        store.put_action(key, &new).unwrap();
        let bucket = store.bucket_of(&super::super::action::ac_key(key));
        damage_line(&bucket, 0);
        bucket
    }

    #[test]
    fn a_lookup_sees_past_a_damaged_line() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"k");
        let bucket = two_lines(&store, &key);
        // What cacache alone makes of it: the entry after the damage is gone.
        assert_eq!(
            cacache::metadata_sync(store.root(), super::super::action::ac_key(&key)).unwrap(),
            None
        );
        match store.get_action(&key).unwrap() {
            Lookup::Hit(r) => assert_eq!(r.node_id, "new"),
            other => panic!("want the newer entry, got {other:?}"),
        }
        let text = std::fs::read(&bucket).unwrap();
        assert!(std::str::from_utf8(&text).is_ok(), "bucket not repaired");
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn verify_repairs_damaged_buckets_and_says_so() {
        let (_dir, store) = store();
        let (a, b, c) = (
            NodeKey::of_bytes(b"a"),
            NodeKey::of_bytes(b"b"),
            NodeKey::of_bytes(b"c"),
        );
        two_lines(&store, &a);
        // A line cacache skips on its own: UTF-8, but not its hash.
        store.put_action(&b, &result("b", &[])).unwrap();
        let bucket = store.bucket_of(&super::super::action::ac_key(&b));
        let mut text = std::fs::read(&bucket).unwrap();
        text.extend_from_slice(b"\n0123\t{\"torn\": ");
        std::fs::write(&bucket, text).unwrap();
        store.put_action(&c, &result("c", &[])).unwrap();

        let report = store.verify().unwrap();
        let buckets: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.what.starts_with("index bucket"))
            .collect();
        assert_eq!(buckets.len(), 2, "{report}");
        assert!(buckets
            .iter()
            .all(|p| p.evicted && p.reason.contains("1 damaged line")));
        assert_eq!(report.problems.len(), 2, "{report}");
        assert_eq!(report.actions, 3, "{report}");
        for key in [a, b, c] {
            assert!(matches!(store.get_action(&key).unwrap(), Lookup::Hit(_)));
        }
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn flipped_bytes_anywhere_in_a_bucket_never_hide_a_sound_line() {
        let (_dir, store) = store();
        let key = NodeKey::of_bytes(b"k");
        let index_key = super::super::action::ac_key(&key);
        for i in 0..3 {
            store
                .put_action(&key, &result(&format!("r{i}"), &[]))
                .unwrap();
        }
        let bucket = store.bucket_of(&index_key);
        let pristine = std::fs::read(&bucket).unwrap();
        let lines: Vec<&[u8]> = pristine
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        // Flip a byte at many offsets; each time, exactly the lines not
        // touched must survive, and the newest of them must be found.
        for at in (0..pristine.len()).step_by(7) {
            if pristine[at] == b'\n' {
                continue;
            }
            let mut bytes = pristine.clone();
            bytes[at] ^= 0x80;
            std::fs::write(&bucket, &bytes).unwrap();
            let hit = line_at(&pristine, at);
            let newest_intact = if hit == lines.len() - 1 {
                hit - 1
            } else {
                lines.len() - 1
            };
            match store.get_action(&key).unwrap() {
                Lookup::Hit(r) => assert_eq!(r.node_id, format!("r{newest_intact}"), "at {at}"),
                other => panic!("at {at}: got {other:?}, want line {newest_intact}"),
            }
            // Verify leaves the sound lines whatever the lookup did.
            store.verify().unwrap();
            let kept = std::fs::read(&bucket).unwrap();
            let kept = kept
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            assert_eq!(kept, lines.len() - 1, "at {at}");
        }
    }

    /// Which line (from 0) byte `at` is in; every line starts with `\n`.
    fn line_at(bytes: &[u8], at: usize) -> usize {
        bytes[..at].iter().filter(|&&b| b == b'\n').count() - 1
    }
}
