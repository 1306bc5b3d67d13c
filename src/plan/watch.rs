//! What a result kept between runs rests on, and how it is kept: the
//! project's *structure* (its YAML files, `ov.lock`, the directories walked
//! for them, copy sources, init headers) and each layer tree, each under a
//! [`Witness`] of the fingerprints read; and a checksummed file to keep
//! them in. The dry run's memo ([`super::memo`]) and the build's saved
//! plan ([`super::saved`]) are both valid exactly while the structure is
//! unchanged, so both take it from here.
//!
//! A witness is only taken when every fingerprint in it had settled (see
//! [`ov_cache::Fingerprint::settled`]) before the run began, so no change
//! made while the run read its inputs can hide behind an equal fingerprint.

use crate::load::model::Project;
use crate::load::parse_cache::context_hasher;
use crate::plan::inputs::{hash_dirs, SourceFile, SourceTree};
use crate::workspace::Dirs;
use ov_cache::{checksummed_write_with, Digest, Fingerprint, StatCache, Witness, WitnessBuilder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One layer directory as a kept result saw it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct WatchedTree {
    pub dir: PathBuf,
    pub witness: Witness,
    pub shape: [u8; 32],
    pub digest: [u8; 32],
    /// Holds a symbolic link: validation reads where each one points, so
    /// any change to such a tree means a full plan.
    pub has_links: bool,
    /// Files of the tree that are also structure (its layer.yml), with
    /// their fingerprints: a change to one means a full plan. Kept here,
    /// not in the structure's witness, so a no-op stats them once.
    pub structural: Vec<(String, Fingerprint)>,
    /// Its files had not all settled when it was watched, so its witness
    /// proves nothing: it is hashed again every time until a run that
    /// finds it settled writes it anew.
    pub stale: bool,
}

impl WatchedTree {
    fn of(dir: &Path, t: &SourceTree) -> Option<WatchedTree> {
        let mut b = WitnessBuilder::default();
        b.dir(dir, t.root);
        for (rel, fp) in &t.dirs {
            b.entry(dir, rel, Some(*fp));
        }
        for f in &t.files {
            b.entry(dir, &f.rel, Some(f.fingerprint));
        }
        Some(WatchedTree {
            dir: dir.to_path_buf(),
            witness: b.finish()?,
            shape: shape(t),
            digest: *t.digest.as_bytes(),
            has_links: t.files.iter().any(SourceFile::is_link),
            structural: Vec::new(),
            stale: false,
        })
    }
}

/// The names and kinds of a tree's entries: what validation and builder
/// detection read of a layer directory besides its YAML (a fifo or socket
/// added is refused by validation, so it is part of the shape).
fn shape(t: &SourceTree) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[u8::from(t.root.is_some())]);
    for f in &t.files {
        h.update(&(f.rel.len() as u64).to_le_bytes());
        h.update(f.rel.as_bytes());
        h.update(&[u8::from(f.is_link())]);
    }
    h.update(b"/");
    for (rel, _) in &t.dirs {
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
    }
    h.update(b"/");
    for rel in &t.others {
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// A plan's structure and trees, witnessed.
pub(crate) struct Watched<'a> {
    pub structure: Witness,
    /// One per layer directory.
    pub trees: Vec<WatchedTree>,
    /// Layer key → its directory's entry in `trees` (inline layers, which
    /// have no directory, have none).
    pub tree_of_layer: HashMap<&'a str, u32>,
    /// The planned tree of each entry of `trees`.
    pub sources: Vec<&'a SourceTree>,
}

/// Which trees may be watched that have not settled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsettled {
    /// None: what is kept holds results computed from the trees.
    Refuse,
    /// Any, marked [`WatchedTree::stale`]: what is kept does not depend
    /// on the trees' contents, and the run right after an edit should
    /// still keep it.
    Stale,
}

/// Witnesses what a plan of `project` over `trees` read; `None` when an
/// input cannot be recorded or has not settled (it could not be kept).
pub(crate) fn watch<'a>(
    project: &'a Project,
    trees: &'a HashMap<String, SourceTree>,
    started_ns: i128,
    unsettled: Unsettled,
) -> Option<Watched<'a>> {
    // A file edited moments ago (the usual run right after an edit)
    // cannot be remembered under its fingerprint: whatever is built below
    // would only be thrown away. The trees are asked first, straight from
    // their fingerprints, before their witnesses are built.
    let tree_settled = |t: &SourceTree| {
        t.root.is_none_or(|fp| fp.settled(started_ns))
            && t.dirs.iter().all(|(_, fp)| fp.settled(started_ns))
            && t.files.iter().all(|f| f.fingerprint.settled(started_ns))
    };
    if unsettled == Unsettled::Refuse && !trees.values().all(tree_settled) {
        return None;
    }
    // One tree per layer directory.
    let mut sources: Vec<(&Path, &SourceTree)> = Vec::new();
    let mut tree_of_layer: HashMap<&str, u32> = HashMap::new();
    let mut tree_of_dir: HashMap<&Path, u32> = HashMap::new();
    for (name, tree) in trees {
        let dir = project.layers.get(name)?.dir.as_path();
        if dir.as_os_str().is_empty() {
            continue;
        }
        let ix = *tree_of_dir.entry(dir).or_insert_with(|| {
            sources.push((dir, tree));
            (sources.len() - 1) as u32
        });
        tree_of_layer.insert(name, ix);
    }

    let mut structural: Vec<Vec<(String, Fingerprint)>> = vec![Vec::new(); sources.len()];
    let mut b = WitnessBuilder::default();
    for f in &project.inputs.files {
        // A file of a hashed tree (a layer.yml that is not a link) is
        // watched by that tree's witness.
        let in_tree = f.parent().and_then(|d| tree_of_dir.get(d)).and_then(|&t| {
            let rel = f.file_name()?.to_str()?;
            let file = sources[t as usize].1.file(rel)?;
            (!file.is_link()).then(|| (t, rel.to_string(), file.fingerprint))
        });
        match in_tree {
            Some((t, rel, fp)) => structural[t as usize].push((rel, fp)),
            None => b.path_now(f),
        }
    }
    // The YAML files are where an edit usually is: no need to look further.
    if !b.settled(started_ns) {
        return None;
    }
    for d in &project.inputs.dirs {
        b.dir_now(d);
    }
    // Validation only asks whether a copy source exists and what it is. In
    // a hashed tree, its shape says that (and its witness sees the
    // contents change); only a source elsewhere needs its own witness.
    let in_a_tree = |p: &Path| p.ancestors().skip(1).any(|a| tree_of_dir.contains_key(a));
    for path in crate::load::validate::copy_source_paths(project) {
        if !in_a_tree(&path) {
            b.path_now(&path);
        }
    }
    for path in crate::plan::header_files(project) {
        b.path_now(&path);
    }
    let structure = b.finish()?;
    if !structure.settled(started_ns) {
        return None;
    }
    let mut watched: Vec<WatchedTree> = sources
        .par_iter()
        .map(|(dir, tree)| {
            let mut w = WatchedTree::of(dir, tree)?;
            w.stale = !tree_settled(tree);
            Some(w)
        })
        .collect::<Option<_>>()?;
    for (t, s) in watched.iter_mut().zip(structural) {
        t.structural = s;
    }
    Some(Watched {
        structure,
        trees: watched,
        tree_of_layer,
        sources: sources.into_iter().map(|(_, t)| t).collect(),
    })
}

/// A watched tree that changed since, hashed again.
pub(crate) struct Rehashed {
    /// Its index among the watched trees.
    pub index: usize,
    pub tree: SourceTree,
    /// Its digest is another than the one watched.
    pub moved: bool,
}

/// Hashes again the trees whose witness changed, and updates their
/// entries in `trees`. `None` when one of them changed its shape, holds a
/// link, or had its structural file (layer.yml) change: what was kept
/// depends on those, and a full plan is needed.
pub(crate) fn recheck(trees: &mut [WatchedTree]) -> Option<Vec<Rehashed>> {
    let changed: Vec<usize> = trees
        .par_iter()
        .enumerate()
        .filter(|(_, t)| t.stale || !t.witness.unchanged())
        .map(|(i, _)| i)
        .collect();
    if changed.iter().any(|&i| trees[i].has_links) {
        return None;
    }
    let roots: Vec<&Path> = changed.iter().map(|&i| trees[i].dir.as_path()).collect();
    let fresh = hash_dirs(&roots, &mut StatCache::in_memory()).ok()?;
    let mut out = Vec::with_capacity(changed.len());
    for (i, t) in changed.into_iter().zip(fresh) {
        let mut m = WatchedTree::of(&trees[i].dir, &t)?;
        if m.shape != trees[i].shape || m.has_links {
            return None;
        }
        m.structural = std::mem::take(&mut trees[i].structural);
        if m.structural
            .iter()
            .any(|(rel, fp)| t.file(rel).map(|f| f.fingerprint) != Some(*fp))
        {
            return None;
        }
        let moved = m.digest != trees[i].digest;
        trees[i] = m;
        out.push(Rehashed {
            index: i,
            tree: t,
            moved,
        });
    }
    Some(out)
}

/// When this run began, ns since the epoch.
pub(crate) fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

/// A hash of everything a kept result depends on that is not a file of
/// the project: what [`context_hasher`] covers (its format, this ov
/// binary, where it runs and on what), and which targets were asked for.
pub(crate) fn context(
    magic: &[u8],
    root: &Path,
    dirs: &Dirs,
    targets: &[String],
) -> Option<[u8; 32]> {
    let mut h = context_hasher(magic, root)?;
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(dirs.repo_cache.as_os_str().as_encoded_bytes());
    field(dirs.state.as_os_str().as_encoded_bytes());
    field(&(targets.len() as u64).to_le_bytes());
    for t in targets {
        field(t.as_bytes());
    }
    Some(*h.finalize().as_bytes())
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    to: W,
    hash: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.to.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
}

/// Streams `value` to `path` as `magic`, a blake3 checksum and its
/// postcard bytes, atomically. Not synced to disk: the checksum refuses a
/// file a power loss cut, and a kept result lost costs only time.
pub(crate) fn write_kept<T: Serialize>(
    path: &Path,
    magic: &[u8; 16],
    value: &T,
) -> Result<(), ov_cache::Error> {
    write_with(
        path,
        magic,
        |out| {
            postcard::to_io(value, out)
                .map(drop)
                .map_err(std::io::Error::other)
        },
        &[],
    )
}

/// [`write_kept`] of `value` (as postcard bytes, with their length first),
/// followed by `tail`, which the checksum does not cover: a reader takes
/// from it only what it needs, and checks that itself (see [`Tail`]).
pub(crate) fn write_kept_with_tail(
    path: &Path,
    magic: &[u8; 16],
    payload: &[u8],
    tail: &[u8],
) -> Result<(), ov_cache::Error> {
    write_with(
        path,
        magic,
        |out| {
            out.write_all(&(payload.len() as u64).to_le_bytes())?;
            out.write_all(payload)
        },
        tail,
    )
}

/// Writes `magic`, the checksum of what `payload` writes, that, and `tail`.
fn write_with(
    path: &Path,
    magic: &[u8; 16],
    payload: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    tail: &[u8],
) -> Result<(), ov_cache::Error> {
    checksummed_write_with(path, |f| {
        use std::io::{Seek, SeekFrom, Write};
        f.write_all(magic)?;
        f.write_all(&[0; 32])?;
        // Buffered before the hash: postcard writes a few bytes at a time,
        // and a hasher fed that way cost more than the whole encoding.
        let mut out = std::io::BufWriter::with_capacity(
            256 * 1024,
            Hashing {
                to: &mut *f,
                hash: blake3::Hasher::new(),
            },
        );
        payload(&mut out)?;
        let Hashing { to: f, hash } = out.into_inner().map_err(|e| e.into_error())?;
        f.write_all(tail)?;
        f.seek(SeekFrom::Start(magic.len() as u64))?;
        f.write_all(hash.finalize().as_bytes())
    })
}

/// The bytes after a kept file's checksummed payload (see
/// [`write_kept_with_tail`]), read a slice at a time from the file the
/// payload was read from: a writer replaces the file, never changes it,
/// so the open file stays the one the payload described.
#[derive(Debug)]
pub(crate) struct Tail {
    path: PathBuf,
    file: std::fs::File,
    start: u64,
    len: u64,
}

impl Tail {
    /// Removes the file the tail was read from, when it still is the one
    /// at its path (a newer one may have replaced it): what it held did
    /// not check out.
    pub fn discard(&self) {
        use std::os::unix::fs::MetadataExt;
        let same = match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// `len` bytes from `at` (counted from the tail's start).
    pub fn read(&self, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let end = at.checked_add(len).filter(|&end| end <= self.len);
        let (Some(_), Ok(n)) = (end, usize::try_from(len)) else {
            return Err(std::io::Error::other("beyond the end of the file"));
        };
        let mut buf = vec![0; n];
        self.file.read_exact_at(&mut buf, self.start + at)?;
        Ok(buf)
    }
}

/// The payload [`write_kept_with_tail`] wrote to `path`, when the file is
/// there, of this format and its payload whole, and its tail.
pub(crate) fn read_kept_with_tail(path: &Path, magic: &[u8; 16]) -> Option<(Vec<u8>, Tail)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut head = [0u8; 56];
    file.read_exact(&mut head).ok()?;
    let (found, rest) = head.split_at(16);
    let (sum, len) = rest.split_at(32);
    if found != magic {
        return None;
    }
    let len_bytes: [u8; 8] = len.try_into().ok()?;
    let len = u64::from_le_bytes(len_bytes);
    let start = 56u64.checked_add(len).filter(|&s| s <= size)?;
    let mut payload = vec![0; usize::try_from(len).ok()?];
    file.read_exact(&mut payload).ok()?;
    let mut hash = blake3::Hasher::new();
    hash.update(&len_bytes);
    hash.update(&payload);
    if hash.finalize().as_bytes() != sum {
        return None;
    }
    let tail = Tail {
        path: path.to_path_buf(),
        file,
        start,
        len: size - start,
    };
    Some((payload, tail))
}

/// The postcard bytes [`write_kept`] wrote to `path`, when the file is
/// there, of this format and whole.
pub(crate) fn read_kept(path: &Path, magic: &[u8; 16]) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    let rest = bytes.strip_prefix(magic.as_slice())?;
    let (sum, payload) = rest.split_at_checked(32)?;
    if blake3::hash(payload).as_bytes() != sum {
        return None;
    }
    bytes.drain(..magic.len() + 32);
    Some(bytes)
}
