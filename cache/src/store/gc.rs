//! Garbage collection: shrink the store to a size, least recently used
//! first, keeping the last run of every node as long as possible.

use super::action::Unusable;
use super::last::LastFile;
use super::{format_size, last_use, Store};
use crate::{BlobDigest, Error, NodeKey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, SystemTime};

/// A temp file younger than this may belong to a write in progress in
/// another process, so gc leaves it alone.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The size asked for.
    pub max_size: u64,
    /// The store's size before.
    pub before_bytes: u64,
    /// The store's size after. Above `max_size` only when what is left
    /// cannot be collected (last-run records, the index, fresh temp files).
    pub after_bytes: u64,
    /// Action-cache entries removed, roots included.
    pub removed_actions: u64,
    /// Of those, entries named by a last-run record.
    pub removed_roots: u64,
    /// Blobs removed.
    pub removed_blobs: u64,
    /// Stale temp files of interrupted writes removed.
    pub removed_temp: u64,
    /// Damaged or incomplete action entries found on the way and evicted
    /// (whatever the size).
    pub evicted_corrupt: u64,
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} action entries ({} of them last runs), {} blobs, {} temp files; \
             {} -> {} (limit {})",
            self.removed_actions,
            self.removed_roots,
            self.removed_blobs,
            self.removed_temp,
            format_size(self.before_bytes),
            format_size(self.after_bytes),
            format_size(self.max_size),
        )?;
        if self.evicted_corrupt > 0 {
            write!(f, "; evicted {} damaged entries", self.evicted_corrupt)?;
        }
        Ok(())
    }
}

/// A live AC entry as gc sees it.
struct Entry {
    index_key: String,
    integrity: cacache::Integrity,
    key: NodeKey,
    record: BlobDigest,
    blobs: Vec<BlobDigest>,
    last_use: SystemTime,
}

/// The running state of one collection: what is left and its size.
struct Collector<'a> {
    store: &'a Store,
    /// Content still present, with its size.
    present: HashMap<BlobDigest, u64>,
    /// How many entries and last-run records still refer to each blob.
    refs: HashMap<BlobDigest, u32>,
    /// The store's size as it shrinks. Only removed files are subtracted,
    /// not the index lines that go with them, so it never under-states.
    total: u64,
    max_size: u64,
    report: GcReport,
}

impl Collector<'_> {
    fn done(&self) -> bool {
        self.total <= self.max_size
    }

    /// Subtracts `d` if it is no longer on disk.
    fn account(&mut self, d: &BlobDigest) {
        if !self.store.content_path(d).exists() {
            if let Some(size) = self.present.remove(d) {
                self.total = self.total.saturating_sub(size);
            }
        }
    }

    fn remove_blob(&mut self, d: &BlobDigest) -> Result<(), Error> {
        self.store.evict_blob(d)?;
        if self.present.contains_key(d) {
            self.report.removed_blobs += 1;
        }
        self.account(d);
        Ok(())
    }

    /// Drops one reference to each blob; removes those left unreferenced.
    fn release(&mut self, blobs: &[BlobDigest]) -> Result<(), Error> {
        for b in blobs {
            let left = match self.refs.get_mut(b) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n
                }
                None => 0,
            };
            if left == 0 {
                self.refs.remove(b);
                self.remove_blob(b)?;
            }
        }
        Ok(())
    }

    /// Removes an entry: the index first, then its record, then the blobs
    /// nothing else refers to. A crash in between leaves blobs without an
    /// entry (collected next time), never an entry without its blobs.
    fn remove_entry(&mut self, e: &Entry) -> Result<(), Error> {
        self.store.evict_action(&e.index_key, &e.integrity);
        self.account(&e.record);
        self.report.removed_actions += 1;
        self.release(&e.blobs)
    }
}

impl Store {
    /// Shrinks the store to at most `max_size` bytes (as counted by
    /// [`Stats::total_bytes`](crate::Stats)), stopping as soon as it fits:
    ///
    /// 1. stale temp files of interrupted writes (older than an hour);
    /// 2. blobs no entry or last-run record refers to, oldest first;
    /// 3. action entries, least recently used first, each removed before
    ///    the blobs only it refers to;
    /// 4. last, the roots: the entries and blobs named by the last-run
    ///    records, least recently used first.
    ///
    /// Lock files no build holds are deleted first, whatever the size.
    /// Last-run records themselves are kept (they are small history). Damaged
    /// entries met on the way are evicted whatever the size. Safe to run
    /// while other processes use the store: an entry written meanwhile may
    /// lose a blob, and is then reported corrupt and rebuilt, never returned.
    pub fn gc(&self, max_size: u64) -> Result<GcReport, Error> {
        self.prune_locks();
        let inv = self.inventory()?;
        let mut c = Collector {
            store: self,
            present: inv.content.iter().map(|f| (f.digest, f.size)).collect(),
            refs: HashMap::new(),
            total: inv.total_bytes,
            max_size,
            report: GcReport {
                max_size,
                before_bytes: inv.total_bytes,
                ..GcReport::default()
            },
        };
        let used: HashMap<BlobDigest, SystemTime> =
            inv.content.iter().map(|f| (f.digest, f.last_use)).collect();

        // Decode every entry, evicting the unusable ones.
        let mut entries = Vec::new();
        for a in &inv.actions {
            let checked = match a.key {
                Some(key) => self.check_action(&key, &a.integrity).map(|ch| (key, ch)),
                None => Err(Unusable::Corrupt("not a node key".to_string())),
            };
            match checked {
                Ok((key, ch)) => entries.push(Entry {
                    index_key: a.index_key.clone(),
                    integrity: a.integrity.clone(),
                    key,
                    record: ch.record,
                    blobs: ch.result.blobs.iter().map(|b| b.digest).collect(),
                    last_use: used
                        .get(&ch.record)
                        .copied()
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                }),
                Err(Unusable::Corrupt(_)) => {
                    self.evict_action(&a.index_key, &a.integrity);
                    if let Some(record) = BlobDigest::from_integrity(&a.integrity) {
                        c.account(&record);
                    }
                    c.report.evicted_corrupt += 1;
                }
                Err(Unusable::Failed(e)) => return Err(e),
            }
        }

        // Roots: the keys of the last-run records, and the blobs they name
        // (pinned even where their entry is gone).
        let mut roots: BTreeMap<NodeKey, (SystemTime, Vec<BlobDigest>)> = BTreeMap::new();
        for path in &inv.last {
            if let LastFile::Record(rec) = Self::read_last_file(path)? {
                let Ok(key) = rec.key.parse::<NodeKey>() else {
                    continue;
                };
                let when = std::fs::metadata(path)
                    .map(|m| last_use(&m))
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let root = roots.entry(key).or_insert((when, Vec::new()));
                root.0 = root.0.max(when);
                root.1.extend(rec.result.blobs.iter().map(|b| b.digest));
            }
        }
        for b in entries
            .iter()
            .flat_map(|e| &e.blobs)
            .chain(roots.values().flat_map(|r| &r.1))
        {
            *c.refs.entry(*b).or_default() += 1;
        }
        let records: HashSet<BlobDigest> = entries.iter().map(|e| e.record).collect();

        // 1. Stale temp files.
        let stale_before = SystemTime::now() - STALE_TEMP;
        let mut temps: Vec<_> = inv
            .other
            .iter()
            .filter(|o| o.temp && o.last_use < stale_before)
            .collect();
        temps.sort_by_key(|o| o.last_use);
        for t in temps {
            if c.done() {
                break;
            }
            if std::fs::remove_file(&t.path).is_ok() {
                c.total = c.total.saturating_sub(t.size);
                c.report.removed_temp += 1;
            }
        }

        // 2. Unreferenced blobs.
        let mut orphans: Vec<_> = inv
            .content
            .iter()
            .filter(|f| !c.refs.contains_key(&f.digest) && !records.contains(&f.digest))
            .collect();
        orphans.sort_by_key(|f| (f.last_use, f.digest));
        for f in orphans {
            if c.done() {
                break;
            }
            c.remove_blob(&f.digest)?;
        }

        // 3. Entries that are no root, least recently used first.
        let (mut rooted, mut others): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|e| roots.contains_key(&e.key));
        others.sort_by_key(|e| (e.last_use, e.key));
        for e in &others {
            if c.done() {
                break;
            }
            c.remove_entry(e)?;
        }

        // 4. Roots, least recently used first: the entry, then the pins.
        rooted.sort_by_key(|e| e.key);
        let mut order: Vec<(SystemTime, NodeKey)> = roots
            .iter()
            .map(|(key, (when, _))| {
                let entry_use = rooted
                    .binary_search_by_key(key, |e| e.key)
                    .map(|i| rooted[i].last_use)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                ((*when).max(entry_use), *key)
            })
            .collect();
        order.sort();
        for (_, key) in order {
            if c.done() {
                break;
            }
            if let Ok(i) = rooted.binary_search_by_key(&key, |e| e.key) {
                c.remove_entry(&rooted[i])?;
                c.report.removed_roots += 1;
            }
            if let Some((_, pins)) = roots.get(&key) {
                c.release(pins)?;
            }
        }

        let mut after = 0;
        super::scan::walk(&self.root, &mut |_, meta| after += meta.len())?;
        c.report.after_bytes = after;
        Ok(c.report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::{Digest, Lookup};

    /// Stores a blob of `len` bytes unique to `seed` and an entry for it,
    /// last used at `used` (Unix seconds).
    fn entry(store: &Store, seed: &str, len: usize, used: u64) -> (NodeKey, BlobDigest) {
        let data: Vec<u8> = seed.bytes().cycle().take(len).collect();
        let d = store.put_blob_bytes(&data).unwrap();
        let key = NodeKey::of_bytes(seed.as_bytes());
        store
            .put_action(&key, &result(seed, &[("out", d, len as u64)]))
            .unwrap();
        let meta = cacache::metadata_sync(store.root(), format!("ac/{key}"))
            .unwrap()
            .unwrap();
        let record = BlobDigest::from_integrity(&meta.integrity).unwrap();
        set_last_use(&store.content_path(&record), used);
        (key, d)
    }

    fn is_hit(store: &Store, key: &NodeKey) -> bool {
        matches!(store.get_action(key).unwrap(), Lookup::Hit(_))
    }

    #[test]
    fn nothing_goes_when_it_fits() {
        let (_dir, store) = store();
        let (k, _) = entry(&store, "a", 10_000, 1_000);
        store.put_blob_bytes(b"orphan").unwrap();
        let before = store.stats().unwrap();
        let r = store.gc(before.total_bytes).unwrap();
        assert_eq!((r.removed_actions, r.removed_blobs), (0, 0));
        assert_eq!(store.stats().unwrap(), before);
        assert!(is_hit(&store, &k));
    }

    #[test]
    fn orphans_go_first_then_least_recently_used_entries() {
        let (_dir, store) = store();
        let (old, old_blob) = entry(&store, "old", 100_000, 1_000);
        let (new, new_blob) = entry(&store, "new", 100_000, 2_000);
        let orphan = store.put_blob_bytes(&[7u8; 50_000]).unwrap();
        let total = store.stats().unwrap().total_bytes;

        // Room for everything but the orphan.
        let r = store.gc(total - 40_000).unwrap();
        assert!(!store.has_blob(&orphan));
        assert_eq!((r.removed_blobs, r.removed_actions), (1, 0));
        assert!(is_hit(&store, &old) && is_hit(&store, &new));

        // Room for one entry: the older one goes, entry and blob.
        let r = store.gc(total - 120_000).unwrap();
        assert_eq!((r.removed_actions, r.removed_blobs), (1, 1));
        assert!(r.after_bytes <= r.max_size, "{r}");
        assert!(store.stats().unwrap().total_bytes <= total - 120_000);
        assert_eq!(store.get_action(&old).unwrap(), Lookup::Miss);
        assert!(!store.has_blob(&old_blob));
        assert!(is_hit(&store, &new) && store.has_blob(&new_blob));
    }

    #[test]
    fn entries_go_before_their_blobs_and_shared_blobs_stay() {
        let (_dir, store) = store();
        let shared = store.put_blob_bytes(&[1u8; 80_000]).unwrap();
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        store
            .put_action(&a, &result("a", &[("out", shared, 80_000)]))
            .unwrap();
        store
            .put_action(&b, &result("b", &[("out", shared, 80_000)]))
            .unwrap();
        let total = store.stats().unwrap().total_bytes;
        // Dropping one entry frees almost nothing, so gc goes on until the
        // blob goes, and only with its last entry.
        let r = store.gc(total - 1_000).unwrap();
        assert_eq!((r.removed_actions, r.removed_blobs), (2, 1));
        assert!(!store.has_blob(&shared));
        // No entry was left pointing at a removed blob.
        assert_eq!(store.get_action(&a).unwrap(), Lookup::Miss);
        assert_eq!(store.get_action(&b).unwrap(), Lookup::Miss);
        assert_eq!(store.stats().unwrap().actions, 0);
    }

    #[test]
    fn roots_are_kept_while_possible() {
        let (_dir, store) = store();
        // The root is the oldest entry; LRU alone would remove it first.
        let (root, root_blob) = entry(&store, "root", 100_000, 1_000);
        let (other, _) = entry(&store, "other", 100_000, 2_000);
        let r = result("root", &[("out", root_blob, 100_000)]);
        store.record_last("root", &root, &r).unwrap();
        let total = store.stats().unwrap().total_bytes;

        let r = store.gc(total - 50_000).unwrap();
        assert_eq!((r.removed_actions, r.removed_roots), (1, 0));
        assert!(is_hit(&store, &root));
        assert_eq!(store.get_action(&other).unwrap(), Lookup::Miss);

        // When even the root does not fit, it goes too; its record stays.
        let r = store.gc(0).unwrap();
        assert_eq!(r.removed_roots, 1);
        assert!(!store.has_blob(&root_blob));
        assert!(store.last("root").unwrap().is_some());
        assert_eq!(store.stats().unwrap().blobs, 0);
    }

    #[test]
    fn damaged_entries_are_evicted_whatever_the_size() {
        let (_dir, store) = store();
        let (k, d) = entry(&store, "a", 1_000, 1_000);
        store.evict_blob(&d).unwrap();
        let r = store.gc(u64::MAX).unwrap();
        assert_eq!(r.evicted_corrupt, 1);
        assert_eq!(store.get_action(&k).unwrap(), Lookup::Miss);
    }

    #[test]
    fn stale_temp_files_go_fresh_ones_stay() {
        let (_dir, store) = store();
        let tmp = store.root().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let (stale, fresh) = (tmp.join("stale"), tmp.join("fresh"));
        std::fs::write(&stale, [0u8; 10_000]).unwrap();
        std::fs::write(&fresh, [0u8; 10_000]).unwrap();
        set_last_use(&stale, 1_000);
        let r = store.gc(0).unwrap();
        assert_eq!(r.removed_temp, 1);
        assert!(!stale.exists() && fresh.exists());
    }
}
