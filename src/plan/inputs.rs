//! Source inputs: the files of every layer directory, hashed on all cores
//! through the persistent stat cache, and folded into tree digests.

use crate::load::model::Project;
use ov_cache::{hash_trees, Digest, FileDigest, Fingerprint, HashedTree, StatCache, TreeDigest};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// A [`SourceFile`]'s mode when it is a symbolic link.
pub const LINK_MODE: u32 = 0o120000;

/// One file of a source tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the tree root, `/`-separated.
    pub rel: String,
    /// Unix mode bits that matter to a build (the executable bits), or
    /// [`LINK_MODE`] for a symbolic link.
    pub mode: u32,
    /// Content digest (of `symlink:<target>` for a link).
    pub digest: FileDigest,
    /// The fingerprint the digest was taken at (a link's own, not its
    /// target's): a later stat that matches it means the same input.
    pub fingerprint: Fingerprint,
}

impl SourceFile {
    /// Whether it is a symbolic link.
    pub fn is_link(&self) -> bool {
        self.mode == LINK_MODE
    }
}

/// A hashed directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceTree {
    /// The tree's files, sorted by relative path.
    pub files: Vec<SourceFile>,
    /// Digest over relative paths, modes and file digests.
    pub digest: TreeDigest,
    /// The tree's root directory's fingerprint (`None`: it does not exist).
    pub root: Option<Fingerprint>,
    /// Every subdirectory listed, with its fingerprint: together with
    /// `root`, what tells that no file was added or removed since.
    pub dirs: Vec<(String, Fingerprint)>,
    /// Entries that are not files, links or directories (fifos, sockets,
    /// device nodes): not hashed, and refused by validation, but part of
    /// the tree's shape so that one appearing means a full plan.
    pub others: Vec<String>,
}

impl SourceTree {
    /// The tree of a layer without a directory.
    pub fn empty() -> SourceTree {
        source_tree(HashedTree::default())
    }

    /// Whether a file of that name sits at the tree's root.
    pub fn has_root_file(&self, name: &str) -> bool {
        self.file(name).is_some()
    }

    /// The file at `rel` (files are sorted by path).
    pub fn file(&self, rel: &str) -> Option<&SourceFile> {
        let at = self
            .files
            .binary_search_by(|f| f.rel.as_str().cmp(rel))
            .ok()?;
        Some(&self.files[at])
    }
}

/// Hashes the directory of every layer in `layers` (by layer key): each
/// directory is listed and hashed in one parallel pass. Every entry counts,
/// hidden ones too: the key must cover exactly what the build context sends
/// (ov copies a layer's whole directory, dotfiles included), or an edited
/// dotfile would be served from the cache. A layer without a directory (an
/// inline layer) has an empty tree.
pub fn hash_layer_dirs(
    project: &Project,
    layers: &[&str],
    cache: &mut StatCache,
) -> Result<HashMap<String, SourceTree>, ov_cache::Error> {
    let found: Vec<(&str, &Path)> = layers
        .iter()
        .filter_map(|name| project.layers.get(*name).map(|l| (*name, l.dir.as_path())))
        .collect();
    let roots: Vec<&Path> = found
        .iter()
        .map(|(_, d)| *d)
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    let mut hashed = hash_dirs(&roots, cache)?.into_iter();
    let mut out = HashMap::with_capacity(found.len());
    for (name, dir) in found {
        let t = if dir.as_os_str().is_empty() {
            source_tree(HashedTree::default())
        } else {
            hashed
                .next()
                .unwrap_or_else(|| source_tree(HashedTree::default()))
        };
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

/// Hashes the directories `roots` (each one layer's), in one parallel pass.
pub fn hash_dirs(
    roots: &[&Path],
    cache: &mut StatCache,
) -> Result<Vec<SourceTree>, ov_cache::Error> {
    Ok(hash_trees(roots, cache, |_| true)?
        .into_iter()
        .map(source_tree)
        .collect())
}

/// A hashed tree as the planner keeps it: symbolic links as files whose
/// contents are their targets.
fn source_tree(t: HashedTree) -> SourceTree {
    let mut files: Vec<SourceFile> = t
        .files
        .into_iter()
        .map(|f| SourceFile {
            rel: f.rel,
            mode: f.fingerprint.mode & 0o111,
            digest: f.digest,
            fingerprint: f.fingerprint,
        })
        .collect();
    if !t.links.is_empty() {
        for l in t.links {
            let mut bytes = b"symlink:".to_vec();
            bytes.extend(&l.target);
            files.push(SourceFile {
                rel: l.rel,
                mode: LINK_MODE,
                digest: FileDigest::of_bytes(&bytes),
                fingerprint: l.fingerprint,
            });
        }
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
    }
    let digest = tree_digest(&files);
    SourceTree {
        files,
        digest,
        root: t.root,
        dirs: t.dirs,
        others: t.others,
    }
}

/// blake3 over (path, mode, digest) of every file, in path order.
pub fn tree_digest(files: &[SourceFile]) -> TreeDigest {
    let mut h = blake3::Hasher::new();
    h.update(b"ov-tree-v1");
    for f in files {
        h.update(&(f.rel.len() as u64).to_le_bytes());
        h.update(f.rel.as_bytes());
        h.update(&f.mode.to_le_bytes());
        h.update(f.digest.as_bytes());
    }
    TreeDigest::from_bytes(*h.finalize().as_bytes())
}
