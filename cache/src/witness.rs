//! A [`Witness`]: what a set of filesystem inputs looked like, so a later
//! run can tell with stats alone, on all cores, that none of them changed.

use crate::Fingerprint;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The fingerprints of a set of paths (`None`: the path did not exist),
/// grouped by directory so they can be checked relative to one open
/// handle per directory.
///
/// It makes the same bet as the stat cache: an unchanged fingerprint is
/// unchanged contents. A directory's fingerprint covers its listing (its
/// mtime moves when an entry is added, removed or renamed), not the
/// contents of its files; record those files too.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Witness {
    groups: Vec<Group>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Group {
    /// A directory, as given (absolute or relative to the working dir).
    dir: String,
    /// The directory's own fingerprint, when its listing counts.
    dir_fp: Option<Option<Fingerprint>>,
    /// (path relative to `dir`, whether a final symlink is followed,
    /// fingerprint).
    entries: Vec<(String, bool, Option<Fingerprint>)>,
}

/// A group while it is collected: the directory's own fingerprint (when
/// it counts) and its entries by (relative path, followed).
type Building = (
    Option<Option<Fingerprint>>,
    BTreeMap<(String, bool), Option<Fingerprint>>,
);

/// Collects a [`Witness`].
#[derive(Default)]
pub struct WitnessBuilder {
    groups: BTreeMap<String, Building>,
    /// A path that is not UTF-8 cannot be stored; the witness is then void.
    void: bool,
}

fn text(path: &Path) -> Option<&str> {
    path.to_str()
}

impl WitnessBuilder {
    /// A directory whose listing counts, with the fingerprint it had when
    /// it was listed (`None`: it did not exist).
    pub fn dir(&mut self, dir: &Path, fp: Option<Fingerprint>) {
        let Some(d) = text(dir) else {
            self.void = true;
            return;
        };
        self.groups.entry(d.to_string()).or_default().0 = Some(fp);
    }

    /// A directory whose listing counts, stat'ed now (through symlinks)
    /// unless it is recorded already. Its state must be the one it was
    /// listed in: see [`Witness::settled`].
    pub fn dir_now(&mut self, dir: &Path) {
        let known = text(dir)
            .and_then(|d| self.groups.get(d))
            .is_some_and(|g| g.0.is_some());
        if !known {
            let fp = std::fs::metadata(dir).ok().map(|m| Fingerprint::of(&m));
            self.dir(dir, fp);
        }
    }

    /// An entry under `dir` at `rel` (`/`-separated), taken as it is (a
    /// symlink is not followed), with the fingerprint it had when read.
    pub fn entry(&mut self, dir: &Path, rel: &str, fp: Option<Fingerprint>) {
        let Some(d) = text(dir) else {
            self.void = true;
            return;
        };
        let g = self.groups.entry(d.to_string()).or_default();
        g.1.insert((rel.to_string(), false), fp);
    }

    /// A path read through any symlinks, stat'ed now. Its state must be
    /// the one it was read in: see [`Witness::settled`]. A path recorded
    /// already by [`entry`](Self::entry) as a file that is not a symlink
    /// needs no stat of its own: through symlinks or not, it is that file.
    pub fn path_now(&mut self, path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            self.void = true;
            return;
        };
        let (Some(d), Some(n)) = (text(dir), name.to_str()) else {
            self.void = true;
            return;
        };
        let g = self.groups.entry(d.to_string()).or_default();
        let key = (n.to_string(), false);
        if g.1
            .get(&key)
            .is_some_and(|fp| fp.is_some_and(|f| !f.is_symlink()))
        {
            return;
        }
        let fp = std::fs::metadata(path).ok().map(|m| Fingerprint::of(&m));
        g.1.insert((key.0, true), fp);
    }

    /// Whether every fingerprint recorded so far had settled for a run
    /// that began at `started_ns` (see [`Witness::settled`]): a caller
    /// that would drop an unsettled witness can stop collecting early.
    pub fn settled(&self, started_ns: i128) -> bool {
        self.groups.values().all(|(dir_fp, entries)| {
            dir_fp.flatten().is_none_or(|fp| fp.settled(started_ns))
                && entries
                    .values()
                    .all(|fp| fp.is_none_or(|fp| fp.settled(started_ns)))
        })
    }

    /// The witness, or `None` when a path could not be recorded.
    pub fn finish(self) -> Option<Witness> {
        if self.void {
            return None;
        }
        Some(Witness {
            groups: self
                .groups
                .into_iter()
                .map(|(dir, (dir_fp, entries))| {
                    // A path recorded both ways (a layer.yml hashed in its
                    // tree and parsed) needs one stat when it is not a
                    // symlink and both saw the same: `stat` is `lstat` then.
                    let redundant = |rel: &str, follow: bool, fp: &Option<Fingerprint>| {
                        follow
                            && entries.get(&(rel.to_string(), false)).is_some_and(|seen| {
                                seen == fp && seen.is_some_and(|f| !f.is_symlink())
                            })
                    };
                    let entries = entries
                        .iter()
                        .filter(|((rel, follow), fp)| !redundant(rel, *follow, fp))
                        .map(|((rel, follow), fp)| (rel.clone(), *follow, *fp))
                        .collect();
                    Group {
                        dir,
                        dir_fp,
                        entries,
                    }
                })
                .collect(),
        })
    }
}

impl Witness {
    /// How many paths it covers.
    pub fn len(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.entries.len() + usize::from(g.dir_fp.is_some()))
            .sum()
    }

    /// Whether it covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every recorded fingerprint had settled (see
    /// [`Fingerprint::settled`]) when a run that began at `started_ns`
    /// read it. Only then does an equal fingerprint later prove that the
    /// path did not change after the run read it; a witness that has not
    /// settled must not be kept.
    pub fn settled(&self, started_ns: i128) -> bool {
        self.groups.iter().all(|g| {
            g.dir_fp.flatten().is_none_or(|fp| fp.settled(started_ns))
                && g.entries
                    .iter()
                    .all(|(_, _, fp)| fp.is_none_or(|fp| fp.settled(started_ns)))
        })
    }

    /// Whether every path still has the fingerprint recorded (and every
    /// absent path is still absent). Stats only, directories in parallel.
    pub fn unchanged(&self) -> bool {
        self.groups.par_iter().all(imp::group_unchanged)
    }
}

#[cfg(unix)]
mod imp {
    use super::*;
    use rustix::fs::{fstat, openat, statat, AtFlags, Mode, OFlags, CWD};

    fn flags(follow: bool) -> AtFlags {
        if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        }
    }

    pub(super) fn group_unchanged(g: &Group) -> bool {
        let fp = |r: rustix::io::Result<rustix::fs::Stat>| {
            r.ok().map(|s| crate::tree::fingerprint_of_stat(&s))
        };
        // A directory alone is one stat, as `dir_now` took it.
        if let (Some(want), true) = (g.dir_fp, g.entries.is_empty()) {
            return fp(statat(CWD, g.dir.as_str(), AtFlags::empty())) == want;
        }
        // A few entries are cheaper by full path than opening the directory.
        if g.dir_fp.is_none() && g.entries.len() <= 2 {
            let dir = Path::new(&g.dir);
            return g.entries.iter().all(|(rel, follow, want)| {
                fp(statat(CWD, dir.join(rel), flags(*follow))) == *want
            });
        }
        let fd = openat(
            CWD,
            g.dir.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match fd {
            Ok(fd) => {
                if let Some(want) = g.dir_fp {
                    if fp(fstat(&fd)) != want {
                        return false;
                    }
                }
                g.entries.iter().all(|(rel, follow, want)| {
                    fp(statat(&fd, rel.as_str(), flags(*follow))) == *want
                })
            }
            Err(_) => {
                if let Some(want) = g.dir_fp {
                    if fp(statat(CWD, g.dir.as_str(), AtFlags::empty())) != want {
                        return false;
                    }
                }
                let dir = Path::new(&g.dir);
                g.entries.iter().all(|(rel, follow, want)| {
                    fp(statat(CWD, dir.join(rel), flags(*follow))) == *want
                })
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    pub(super) fn group_unchanged(g: &Group) -> bool {
        let dir = Path::new(&g.dir);
        let fp = |r: std::io::Result<std::fs::Metadata>| r.ok().map(|m| Fingerprint::of(&m));
        g.dir_fp
            .is_none_or(|want| fp(std::fs::metadata(dir)) == want)
            && g.entries.iter().all(|(rel, follow, want)| {
                let p = dir.join(rel);
                let got = if *follow {
                    std::fs::metadata(&p)
                } else {
                    std::fs::symlink_metadata(&p)
                };
                fp(got) == *want
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_trees;
    use crate::StatCache;
    use std::time::{Duration, SystemTime};

    fn backdate(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        let f = std::fs::File::open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    /// A witness of `root`'s tree and of `extra`, as a dry run would build it.
    fn witness(root: &Path, extra: &Path) -> Witness {
        let mut cache = StatCache::in_memory();
        let t = hash_trees(&[root], &mut cache, |n| !n.starts_with('.'))
            .unwrap()
            .remove(0);
        let mut b = WitnessBuilder::default();
        b.dir(root, t.root);
        for (rel, fp) in &t.dirs {
            b.entry(root, rel, Some(*fp));
        }
        for f in &t.files {
            b.entry(root, &f.rel, Some(f.fingerprint));
        }
        b.path_now(extra);
        b.finish().unwrap()
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("l/sub")).unwrap();
        std::fs::write(root.join("l/a"), b"a").unwrap();
        std::fs::write(root.join("l/sub/b"), b"b").unwrap();
        for p in ["l/a", "l/sub/b", "l/sub", "l"] {
            backdate(&root.join(p), 60);
        }
        dir
    }

    #[test]
    fn an_untouched_tree_is_unchanged() {
        let dir = project();
        let w = witness(&dir.path().join("l"), &dir.path().join("absent.lock"));
        assert_eq!(w.len(), 5);
        assert!(w.unchanged());
        let now = crate::hashing::now_ns();
        assert!(w.settled(now));
        // It survives being stored.
        let bytes = postcard::to_allocvec(&w).unwrap();
        let back: Witness = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn every_kind_of_change_is_seen() {
        type Change = fn(&Path);
        let changes: [(&str, Change); 6] = [
            ("content", |r| std::fs::write(r.join("l/a"), b"A").unwrap()),
            ("added file", |r| {
                std::fs::write(r.join("l/sub/new"), b"").unwrap()
            }),
            ("removed file", |r| {
                std::fs::remove_file(r.join("l/sub/b")).unwrap()
            }),
            ("added hidden file", |r| {
                std::fs::write(r.join("l/.swp"), b"").unwrap()
            }),
            ("absent path created", |r| {
                std::fs::write(r.join("absent.lock"), b"").unwrap()
            }),
            ("tree removed", |r| {
                std::fs::remove_dir_all(r.join("l")).unwrap()
            }),
        ];
        for (what, change) in changes {
            let dir = project();
            let w = witness(&dir.path().join("l"), &dir.path().join("absent.lock"));
            change(dir.path());
            assert!(!w.unchanged(), "{what} went unseen");
        }
    }

    #[test]
    fn a_fresh_file_has_not_settled() {
        let dir = project();
        std::fs::write(dir.path().join("l/a"), b"new").unwrap();
        let w = witness(&dir.path().join("l"), &dir.path().join("absent.lock"));
        assert!(!w.settled(crate::hashing::now_ns()));
    }
}
