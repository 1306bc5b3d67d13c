//! `ov cache verify`: re-hash everything, evict what is damaged.

use super::action::Unusable;
use super::last::LastFile;
use super::{format_size, ReadFailure, Store};
use crate::Error;
use rayon::prelude::*;
use std::fmt;

/// One damaged thing [`Store::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// What, e.g. `blob 1a2b…` or `action entry ac/…`.
    pub what: String,
    /// What is wrong with it.
    pub reason: String,
    /// Whether it was evicted. Only a file that could not be read at all
    /// (an I/O error, which may pass) is kept.
    pub evicted: bool,
}

/// What [`Store::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Content files re-hashed (blobs and AC records).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Action-cache entries checked.
    pub actions: u64,
    /// Last-run records checked.
    pub last_runs: u64,
    /// Everything found damaged.
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, what: String, reason: String, evicted: bool) {
        self.problems.push(VerifyProblem {
            what,
            reason,
            evicted,
        });
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verified {} blobs ({}), {} action entries, {} last-run records: ",
            self.blobs,
            format_size(self.bytes),
            self.actions,
            self.last_runs
        )?;
        if self.is_clean() {
            return f.write_str("all sound");
        }
        write!(f, "{} damaged", self.problems.len())?;
        for p in &self.problems {
            let fate = if p.evicted { "evicted" } else { "kept" };
            write!(f, "\n  {}: {} ({fate})", p.what, p.reason)?;
        }
        Ok(())
    }
}

impl Store {
    /// Re-hashes every blob (on all cores) and checks every AC entry and
    /// last-run record; evicts what is damaged, including entries whose
    /// blobs were damaged, and reports it. Reads the whole store, so it
    /// takes as long as reading that many bytes.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let inv = self.inventory()?;
        let mut report = VerifyReport::default();

        for (bucket, outcome) in &inv.repaired {
            let what = format!("index bucket {}", bucket.display());
            match outcome {
                Ok(n) => {
                    let s = if *n == 1 { "" } else { "s" };
                    let reason = format!(
                        "{n} damaged line{s} dropped; the entries after them are readable again"
                    );
                    report.problem(what, reason, true);
                }
                Err(e) => report.problem(what, e.to_string(), false),
            }
        }

        let checked: Vec<_> = inv
            .content
            .par_iter()
            .map(|c| (c, self.verify_content(&c.digest)))
            .collect();
        for (c, outcome) in checked {
            let what = format!("blob {}", c.digest);
            match outcome {
                Ok(()) => {
                    report.blobs += 1;
                    report.bytes += c.size;
                }
                // Removed meanwhile, by another process's gc.
                Err(ReadFailure::Missing) => {}
                Err(ReadFailure::Corrupt(reason)) => {
                    let evicted = self.evict_blob(&c.digest).is_ok();
                    report.problem(what, reason, evicted);
                }
                Err(ReadFailure::Other(e)) => report.problem(what, e.to_string(), false),
            }
        }
        for path in &inv.stray_content {
            let evicted = std::fs::remove_file(path).is_ok();
            let what = format!("file {}", path.display());
            report.problem(what, "not named by a sha256".to_string(), evicted);
        }

        // After the blobs, so an entry that lost one is caught here.
        for a in &inv.actions {
            let outcome = match a.key {
                Some(key) => self.check_action(&key, &a.integrity).map(|_| ()),
                None => Err(Unusable::Corrupt("its key is not a node key".to_string())),
            };
            let what = format!("action entry {}", a.index_key);
            match outcome {
                Ok(()) => report.actions += 1,
                Err(Unusable::Corrupt(reason)) => {
                    self.evict_action(&a.index_key, &a.integrity);
                    report.problem(what, reason, true);
                }
                Err(Unusable::Failed(e)) => report.problem(what, e.to_string(), false),
            }
        }

        for path in &inv.last {
            let what = format!("last-run record {}", path.display());
            match Self::read_last_file(path) {
                Ok(LastFile::Record(_)) => report.last_runs += 1,
                Ok(LastFile::Gone) => {}
                Ok(LastFile::Damaged(reason)) => report.problem(what, reason, true),
                Err(e) => report.problem(what, e.to_string(), false),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::{Digest, Lookup, NodeKey};

    #[test]
    fn a_sound_store_verifies_clean() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"rootfs").unwrap();
        let key = NodeKey::of_bytes(b"k");
        let r = result("n", &[("rootfs.tar", d, 6)]);
        store.put_action(&key, &r).unwrap();
        store.record_last("n", &key, &r).unwrap();
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{report}");
        // The blob and the entry's record.
        assert_eq!((report.blobs, report.actions, report.last_runs), (2, 1, 1));
        assert!(report.to_string().ends_with("all sound"));
    }

    #[test]
    fn a_flipped_byte_is_found_and_evicted_with_its_entry() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(&[42u8; 4096]).unwrap();
        let sound = store.put_blob_bytes(b"sound").unwrap();
        let key = NodeKey::of_bytes(b"k");
        store
            .put_action(&key, &result("n", &[("disk", d, 4096)]))
            .unwrap();
        flip_byte(&store, &d, 4000);

        let report = store.verify().unwrap();
        assert!(!report.is_clean());
        let whats: Vec<_> = report.problems.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats.len(), 2, "{report}");
        assert!(whats[0].contains(&d.to_string()));
        assert!(whats[1].contains(&key.to_string()));
        assert!(report.problems.iter().all(|p| p.evicted));
        assert!(report.to_string().contains("2 damaged"));

        assert!(!store.has_blob(&d));
        assert!(store.has_blob(&sound));
        assert_eq!(store.get_action(&key).unwrap(), Lookup::Miss);
        assert!(store.verify().unwrap().is_clean());
    }

    #[test]
    fn a_stray_file_in_the_content_store_is_reported() {
        let (_dir, store) = store();
        let d = store.put_blob_bytes(b"x").unwrap();
        let stray = store.content_path(&d).with_file_name("not-a-digest");
        std::fs::write(&stray, b"junk").unwrap();
        let report = store.verify().unwrap();
        assert_eq!(report.problems.len(), 1, "{report}");
        assert!(!stray.exists());
    }
}
