//! Listing and hashing whole directory trees on all cores, through the
//! [`StatCache`], in one pass per tree.
//!
//! On Unix every path is resolved relative to an open handle on the tree's
//! root (`openat`, `fstatat`), so the kernel walks one component per file
//! instead of the whole absolute path: on trees of many small files the
//! path walks, opens and stats cost more than the hashing. A file the cache
//! does not know is opened and `fstat`ed instead of `stat`ed by path, and a
//! file whose fingerprint has settled is read with a single `read` (see
//! [`Fingerprint::settled`]).

use crate::{Digest, Error, FileDigest, Fingerprint, StatCache};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One regular file of a tree.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Path relative to the tree's root, `/`-separated.
    pub rel: String,
    /// Its fingerprint, taken before it was read.
    pub fingerprint: Fingerprint,
    /// blake3 of its contents.
    pub digest: FileDigest,
}

/// One symbolic link of a tree: a link is copied as a link, so its target
/// text is the input (following it could leave the tree or find nothing).
#[derive(Clone, Debug)]
pub struct TreeLink {
    /// Path relative to the tree's root, `/`-separated.
    pub rel: String,
    /// The fingerprint of the link itself (not of what it points at).
    pub fingerprint: Fingerprint,
    /// The link's target, as bytes.
    pub target: Vec<u8>,
}

/// A listed and hashed directory tree.
#[derive(Clone, Debug, Default)]
pub struct HashedTree {
    /// The root's fingerprint; `None` when it does not exist (an empty tree).
    pub root: Option<Fingerprint>,
    /// Regular files, sorted by path.
    pub files: Vec<TreeFile>,
    /// Symbolic links, sorted by path.
    pub links: Vec<TreeLink>,
    /// Every subdirectory listed, with its fingerprint. A directory's
    /// mtime moves when an entry is added, removed or renamed, so these
    /// (with `root`) let a caller tell the listing is still the same.
    pub dirs: Vec<(String, Fingerprint)>,
    /// Entries that are none of these (fifos, sockets, device nodes),
    /// sorted by path: not hashed, but part of what the listing holds,
    /// so that one appearing changes it.
    pub others: Vec<String>,
}

/// A digest worth remembering: (path, fingerprint, digest).
type Fresh = (PathBuf, Fingerprint, FileDigest);

/// Lists every tree in `roots` and hashes its regular files, trees in
/// parallel (and the files of a large tree in parallel too). Entries whose
/// name `keep` rejects are skipped, and so is everything under a skipped
/// directory; names that are not UTF-8 are skipped. A missing or unreadable
/// root is an empty tree; an unreadable subdirectory is listed as empty
/// (its fingerprint is still recorded). A file that cannot be read is an
/// error naming it.
///
/// Fresh digests are recorded in `cache` under the same rules as
/// [`hash_files`](crate::hash_files).
pub fn hash_trees(
    roots: &[&Path],
    cache: &mut StatCache,
    keep: impl Fn(&str) -> bool + Sync,
) -> Result<Vec<HashedTree>, Error> {
    let started = crate::hashing::now_ns();
    let shared: &StatCache = cache;
    let results: Vec<Result<(HashedTree, Vec<Fresh>), Error>> = roots
        .par_iter()
        .map(|root| imp::hash_tree(root, shared, started, &keep))
        .collect();
    let mut trees = Vec::with_capacity(results.len());
    let mut fresh = Vec::new();
    for r in results {
        let (tree, f) = r?;
        trees.push(tree);
        fresh.extend(f);
    }
    // One batch of inserts once the parallel part is over: the map is not
    // shared between threads, and reserving once avoids rehashing.
    cache.insert_many(fresh);
    Ok(trees)
}

/// Whether the tree at `root` is still the one listed with these
/// fingerprints: its root's (`None`: it did not exist), and every
/// subdirectory's, file's and link's (`entries`, by path relative to the
/// root; a directory's mtime moves when its listing does). Stats alone,
/// relative to one open handle on the root. An unchanged fingerprint
/// proves an unchanged tree only if it had settled when it was taken (see
/// [`Fingerprint::settled`]).
pub fn tree_unchanged<'a>(
    root: &Path,
    root_fp: Option<Fingerprint>,
    entries: impl IntoIterator<Item = (&'a str, Fingerprint)>,
) -> bool {
    imp::tree_unchanged(root, root_fp, &mut entries.into_iter())
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Files of one tree hashed per rayon task; small trees stay on one thread.
const FILES_PER_TASK: usize = 32;

/// Files at least this large are read in big chunks hashed on all cores,
/// so one large file does not leave the other cores idle.
const LARGE_FILE: u64 = 1 << 20;

/// Hashes what `read` yields: `size` is what the file's fingerprint says it
/// holds. A settled file (see [`Fingerprint::settled`]) stops once `size`
/// bytes are in, without the extra `read` that would return 0: a change
/// after the fingerprint was taken moves its mtime, so the cache cannot
/// serve this digest for the changed file. Each read asks for one byte
/// more than is left, so a file that grew is still read to its end.
/// Returns the digest and whether exactly `size` bytes were read.
fn hash_stream(
    size: u64,
    settled: bool,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<(FileDigest, bool)> {
    thread_local! {
        /// One read buffer per worker thread, allocated once.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
    }
    let mut hasher = blake3::Hasher::new();
    let mut total: u64 = 0;
    let mut step = |buf: &mut [u8], hasher: &mut blake3::Hasher| -> std::io::Result<bool> {
        let left = size.saturating_sub(total).saturating_add(1);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = loop {
            match read(&mut buf[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(false);
        }
        if want >= 128 * 1024 {
            hasher.update_rayon(&buf[..n]);
        } else {
            hasher.update(&buf[..n]);
        }
        total += n as u64;
        Ok(!(settled && total == size))
    };
    if size >= LARGE_FILE {
        let mut buf = vec![0; 1 << 20];
        while step(&mut buf, &mut hasher)? {}
    } else {
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            while step(&mut buf, &mut hasher)? {}
            Ok::<(), std::io::Error>(())
        })?;
    }
    Ok((
        FileDigest::from_bytes(*hasher.finalize().as_bytes()),
        total == size,
    ))
}

/// The fingerprint in a `stat` result, equal to what [`Fingerprint::of`]
/// reads from the same file's metadata.
// The field types of `struct stat` differ between architectures.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
pub(crate) fn fingerprint_of_stat(st: &rustix::fs::Stat) -> Fingerprint {
    let ns = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
    Fingerprint {
        size: st.st_size as u64,
        // As `Fingerprint::of`: a time before the epoch reads as 0.
        mtime_ns: ns.max(0),
        inode: st.st_ino as u64,
        mode: st.st_mode as u32,
    }
}

#[cfg(unix)]
mod imp {
    use super::*;
    use rustix::fs::{
        fstat, openat, readlinkat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD,
    };
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use super::fingerprint_of_stat as fingerprint;

    fn io_err(path: &Path, e: rustix::io::Errno) -> Error {
        Error::io(path, std::io::Error::from(e))
    }

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    /// A tree's root, opened; else (not a directory, or missing) its
    /// fingerprint, if any. The root may be a link to a directory (a layer
    /// dir can be); only entries inside the tree are taken as they are.
    fn open_root(root: &Path) -> Result<OwnedFd, Option<Fingerprint>> {
        let flags = DIR_FLAGS.difference(OFlags::NOFOLLOW);
        openat(CWD, root, flags, Mode::empty()).map_err(|_| {
            statat(CWD, root, AtFlags::empty())
                .ok()
                .map(|s| fingerprint(&s))
        })
    }

    pub(super) fn hash_tree(
        root: &Path,
        cache: &StatCache,
        started: i128,
        keep: &(impl Fn(&str) -> bool + Sync),
    ) -> Result<(HashedTree, Vec<Fresh>), Error> {
        let fd = match open_root(root) {
            Ok(fd) => fd,
            Err(root_fp) => {
                return Ok((
                    HashedTree {
                        root: root_fp,
                        ..HashedTree::default()
                    },
                    Vec::new(),
                ));
            }
        };
        let mut tree = HashedTree {
            root: fstat(&fd).ok().map(|s| fingerprint(&s)),
            ..HashedTree::default()
        };
        let mut files = Vec::new();
        let mut links = Vec::new();
        let dup = rustix::io::dup(&fd).map_err(|e| io_err(root, e))?;
        list(
            fd.as_fd(),
            dup,
            "",
            keep,
            &mut files,
            &mut links,
            &mut tree.dirs,
            &mut tree.others,
        );
        files.sort_unstable();
        links.sort_unstable();
        tree.others.sort_unstable();
        let hashed: Vec<Result<(TreeFile, Option<Fresh>), Error>> = files
            .into_par_iter()
            .with_min_len(FILES_PER_TASK)
            .map(|rel| hash_at(fd.as_fd(), root, rel, cache, started))
            .collect();
        let mut fresh = Vec::new();
        tree.files.reserve(hashed.len());
        for h in hashed {
            let (f, new) = h?;
            tree.files.push(f);
            fresh.extend(new);
        }
        for rel in links {
            let path = root.join(&rel);
            let st = statat(&fd, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_err(&path, e))?;
            let target = readlinkat(&fd, rel.as_str(), Vec::new()).map_err(|e| io_err(&path, e))?;
            tree.links.push(TreeLink {
                rel,
                fingerprint: fingerprint(&st),
                target: target.into_bytes(),
            });
        }
        Ok((tree, fresh))
    }

    pub(super) fn tree_unchanged(
        root: &Path,
        root_fp: Option<Fingerprint>,
        entries: &mut dyn Iterator<Item = (&str, Fingerprint)>,
    ) -> bool {
        let fd = match open_root(root) {
            Ok(fd) => fd,
            // Not a directory (now): the same tree only if it was not one
            // then either, and had nothing in it.
            Err(now) => return now == root_fp && entries.next().is_none(),
        };
        if fstat(&fd).ok().map(|s| fingerprint(&s)) != root_fp {
            return false;
        }
        for (rel, want) in entries {
            let now = statat(&fd, rel, AtFlags::SYMLINK_NOFOLLOW).map(|s| fingerprint(&s));
            if now.ok() != Some(want) {
                return false;
            }
        }
        true
    }

    /// Lists `dir` (at `rel` under `root`) and its subdirectories. Each
    /// directory is closed before its subdirectories are opened, so a deep
    /// tree holds one descriptor, not one per level.
    #[allow(clippy::too_many_arguments)]
    fn list(
        root: BorrowedFd<'_>,
        dir: OwnedFd,
        rel: &str,
        keep: &(impl Fn(&str) -> bool + Sync),
        files: &mut Vec<String>,
        links: &mut Vec<String>,
        dirs: &mut Vec<(String, Fingerprint)>,
        others: &mut Vec<String>,
    ) {
        let mut subdirs = Vec::new();
        if let Ok(mut d) = Dir::new(dir) {
            while let Some(entry) = d.read() {
                // An unreadable listing is listed as far as it could be read.
                let Ok(entry) = entry else { break };
                let Ok(name) = std::str::from_utf8(entry.file_name().to_bytes()) else {
                    continue;
                };
                if name == "." || name == ".." || !keep(name) {
                    continue;
                }
                let path = join(rel, name);
                let ft = match entry.file_type() {
                    // Some filesystems do not say in the listing.
                    FileType::Unknown => statat(root, path.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| FileType::from_raw_mode(s.st_mode))
                        .unwrap_or(FileType::Unknown),
                    ft => ft,
                };
                match ft {
                    FileType::Directory => subdirs.push(path),
                    FileType::Symlink => links.push(path),
                    FileType::RegularFile => files.push(path),
                    FileType::Unknown => {}
                    _ => others.push(path),
                }
            }
        }
        for sub in subdirs {
            match openat(root, sub.as_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => {
                    if let Ok(st) = fstat(&fd) {
                        dirs.push((sub.clone(), fingerprint(&st)));
                    }
                    list(root, fd, &sub, keep, files, links, dirs, others);
                }
                Err(_) => {
                    if let Ok(st) = statat(root, sub.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                        dirs.push((sub, fingerprint(&st)));
                    }
                }
            }
        }
    }

    fn hash_at(
        root_fd: BorrowedFd<'_>,
        root: &Path,
        rel: String,
        cache: &StatCache,
        started: i128,
    ) -> Result<(TreeFile, Option<Fresh>), Error> {
        let path = root.join(&rel);
        // A file the cache knows is most likely unchanged: one stat. A file
        // it does not know is opened right away and `fstat`ed.
        if let Some((seen, digest)) = cache.remembered(&path) {
            let st =
                statat(root_fd, rel.as_str(), AtFlags::empty()).map_err(|e| io_err(&path, e))?;
            let fp = fingerprint(&st);
            if fp == seen {
                return Ok((
                    TreeFile {
                        rel,
                        fingerprint: fp,
                        digest,
                    },
                    None,
                ));
            }
        }
        let fd = openat(
            root_fd,
            rel.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&path, e))?;
        let fp = fingerprint(&fstat(&fd).map_err(|e| io_err(&path, e))?);
        let settled = fp.settled(started);
        let (digest, whole) = hash_stream(fp.size, settled, |buf| {
            rustix::io::read(&fd, buf).map_err(std::io::Error::from)
        })
        .map_err(|e| Error::io(&path, e))?;
        // Only a settled file is remembered: a later write to it cannot
        // keep this fingerprint.
        let fresh = (whole && settled).then_some((path, fp, digest));
        Ok((
            TreeFile {
                rel,
                fingerprint: fp,
                digest,
            },
            fresh,
        ))
    }

    #[cfg(test)]
    pub(super) fn stat_fingerprint(path: &Path) -> Fingerprint {
        fingerprint(&statat(CWD, path, AtFlags::empty()).unwrap())
    }
}

#[cfg(not(unix))]
mod imp {
    //! The same walk through `std::fs`, by full path.
    use super::*;
    use std::io::Read;

    pub(super) fn tree_unchanged(
        root: &Path,
        root_fp: Option<Fingerprint>,
        entries: &mut dyn Iterator<Item = (&str, Fingerprint)>,
    ) -> bool {
        let fp = |p: &Path, follow: bool| {
            let m = if follow {
                std::fs::metadata(p)
            } else {
                std::fs::symlink_metadata(p)
            };
            m.ok().map(|m| Fingerprint::of(&m))
        };
        if fp(root, true) != root_fp {
            return false;
        }
        for (rel, want) in entries {
            if fp(&root.join(rel), false) != Some(want) {
                return false;
            }
        }
        true
    }

    pub(super) fn hash_tree(
        root: &Path,
        cache: &StatCache,
        started: i128,
        keep: &(impl Fn(&str) -> bool + Sync),
    ) -> Result<(HashedTree, Vec<Fresh>), Error> {
        let mut tree = HashedTree {
            root: std::fs::metadata(root).ok().map(|m| Fingerprint::of(&m)),
            ..HashedTree::default()
        };
        let mut files = Vec::new();
        let mut links = Vec::new();
        list(
            root,
            "",
            keep,
            &mut files,
            &mut links,
            &mut tree.dirs,
            &mut tree.others,
        );
        files.sort_unstable();
        links.sort_unstable();
        tree.others.sort_unstable();
        let mut fresh = Vec::new();
        for rel in files {
            let path = root.join(&rel);
            let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
            let fp = Fingerprint::of(&meta);
            let digest = match cache.remembered(&path) {
                Some((seen, d)) if seen == fp => d,
                _ => {
                    let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                    let (d, whole) = hash_stream(fp.size, false, |b| f.read(b))
                        .map_err(|e| Error::io(&path, e))?;
                    let after = f.metadata().map(|m| Fingerprint::of(&m));
                    if whole && fp.settled(started) && after.is_ok_and(|a| a == fp) {
                        fresh.push((path.clone(), fp, d));
                    }
                    d
                }
            };
            tree.files.push(TreeFile {
                rel,
                fingerprint: fp,
                digest,
            });
        }
        for rel in links {
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            let target = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
            tree.links.push(TreeLink {
                rel,
                fingerprint: Fingerprint::of(&meta),
                target: target.into_os_string().into_encoded_bytes(),
            });
        }
        Ok((tree, fresh))
    }

    fn list(
        root: &Path,
        rel: &str,
        keep: &(impl Fn(&str) -> bool + Sync),
        files: &mut Vec<String>,
        links: &mut Vec<String>,
        dirs: &mut Vec<(String, Fingerprint)>,
        others: &mut Vec<String>,
    ) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries {
            let Ok(entry) = entry else { break };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !keep(name) {
                continue;
            }
            let path = join(rel, name);
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if let Ok(m) = std::fs::symlink_metadata(entry.path()) {
                    dirs.push((path.clone(), Fingerprint::of(&m)));
                }
                list(root, &path, keep, files, links, dirs, others);
            } else if ft.is_symlink() {
                links.push(path);
            } else if ft.is_file() {
                files.push(path);
            } else {
                others.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn backdate(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    fn not_hidden(name: &str) -> bool {
        !name.starts_with('.')
    }

    /// Every fingerprint of `t` but the root's, as `tree_unchanged` takes them.
    fn entries(t: &HashedTree) -> Vec<(&str, Fingerprint)> {
        let dirs = t.dirs.iter().map(|(r, fp)| (r.as_str(), *fp));
        let files = t.files.iter().map(|f| (f.rel.as_str(), f.fingerprint));
        let links = t.links.iter().map(|l| (l.rel.as_str(), l.fingerprint));
        dirs.chain(files).chain(links).collect()
    }

    #[test]
    fn an_unchanged_tree_is_told_by_stats_and_any_change_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("sub/b"), b"b").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a", root.join("link")).unwrap();
        let hash =
            || hash_trees(&[&root], &mut StatCache::in_memory(), |_| true).unwrap()[0].clone();
        let same = |t: &HashedTree| tree_unchanged(&root, t.root, entries(t));
        let t = hash();
        assert!(same(&t));
        // A file added deep down moves its directory's fingerprint.
        std::fs::write(root.join("sub/c"), b"c").unwrap();
        assert!(!same(&t), "a file added was not seen");
        let t = hash();
        assert!(same(&t));
        // New contents of another size.
        std::fs::write(root.join("a"), b"longer").unwrap();
        assert!(!same(&t), "a file rewritten was not seen");
        let t = hash();
        // A link pointed elsewhere is a new link.
        #[cfg(unix)]
        {
            std::fs::remove_file(root.join("link")).unwrap();
            std::os::unix::fs::symlink("sub/b", root.join("link")).unwrap();
            assert!(!same(&t), "a link pointed elsewhere was not seen");
        }
        let t = hash();
        // The root gone, and a tree that had no root.
        std::fs::remove_dir_all(&root).unwrap();
        assert!(!same(&t), "the root removed was not seen");
        let gone = hash();
        assert!(gone.root.is_none() && same(&gone));
    }

    #[test]
    fn lists_hashes_and_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("a"), b"hello").unwrap();
        std::fs::write(root.join("sub/deeper/b"), b"").unwrap();
        std::fs::write(root.join(".git/c"), b"hidden").unwrap();
        std::fs::write(root.join(".swp"), b"hidden").unwrap();
        let big: Vec<u8> = (0..3 * LARGE_FILE + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("big"), &big).unwrap();
        for f in ["a", "sub/deeper/b", "big"] {
            backdate(&root.join(f));
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink("a", root.join("link")).unwrap();
        let mut cache = StatCache::in_memory();
        let trees = hash_trees(&[root], &mut cache, not_hidden).unwrap();
        let t = &trees[0];
        let rels: Vec<&str> = t.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a", "big", "sub/deeper/b"]);
        assert_eq!(t.files[0].digest, FileDigest::of_bytes(b"hello"));
        assert_eq!(t.files[1].digest, FileDigest::of_bytes(&big));
        assert_eq!(t.files[2].digest, FileDigest::of_bytes(b""));
        let dirs: Vec<&str> = t.dirs.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(dirs, ["sub", "sub/deeper"]);
        assert!(t.root.is_some());
        #[cfg(unix)]
        {
            assert_eq!(t.links.len(), 1);
            assert_eq!(t.links[0].target, b"a");
            // The fingerprint taken through a directory handle is the one
            // `Fingerprint::of` gives, so both paths share one cache.
            let meta = std::fs::metadata(root.join("a")).unwrap();
            assert_eq!(Fingerprint::of(&meta), t.files[0].fingerprint);
            assert_eq!(
                Fingerprint::of(&meta),
                imp::stat_fingerprint(&root.join("a"))
            );
        }
        assert_eq!(cache.len(), 3);
        // A changed file is read again, not served from the cache.
        std::fs::write(root.join("a"), b"world!").unwrap();
        let trees = hash_trees(&[root], &mut cache, not_hidden).unwrap();
        assert_eq!(trees[0].files[0].digest, FileDigest::of_bytes(b"world!"));
    }

    #[test]
    fn a_missing_root_is_an_empty_tree() {
        let mut cache = StatCache::in_memory();
        let trees = hash_trees(&[Path::new("/nonexistent/x")], &mut cache, not_hidden).unwrap();
        assert!(trees[0].files.is_empty());
        assert!(trees[0].root.is_none());
    }

    #[test]
    fn a_grown_file_is_read_to_its_end() {
        // The fingerprint said 3 bytes, the file now holds 6: all 6 are
        // hashed and the digest is not worth remembering.
        let data = b"abcdef";
        let mut at = 0;
        let (d, whole) = hash_stream(3, true, |buf| {
            let n = buf.len().min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            at += n;
            Ok(n)
        })
        .unwrap();
        assert_eq!(d, FileDigest::of_bytes(data));
        assert!(!whole);
    }
}
