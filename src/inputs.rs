//! Source inputs: the files of every layer directory, hashed on all cores
//! through the persistent stat cache, and folded into tree digests.

use crate::model::Project;
use ov_cache::{hash_files, Digest, FileDigest, StatCache, TreeDigest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One file of a source tree.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path relative to the tree root, `/`-separated.
    pub rel: String,
    /// Unix mode bits that matter to a build (the executable bits).
    pub mode: u32,
    /// Content digest.
    pub digest: FileDigest,
}

/// A hashed directory.
#[derive(Clone, Debug)]
pub struct SourceTree {
    /// The tree's files, sorted by relative path.
    pub files: Vec<SourceFile>,
    /// Digest over relative paths, modes and file digests.
    pub digest: TreeDigest,
}

impl SourceTree {
    /// Whether a file of that name sits at the tree's root.
    pub fn has_root_file(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.rel == name)
    }
}

/// Lists every regular file under `dir`, skipping hidden entries (editor and
/// VCS litter should not rebuild images).
fn list_files(
    dir: &Path,
    rel: &str,
    out: &mut Vec<(String, PathBuf)>,
    links: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let rel_path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            list_files(&entry.path(), &rel_path, out, links)?;
        } else if ft.is_symlink() {
            // A link is copied as a link: its target text is the input, and
            // following it could leave the tree or find nothing.
            links.push((rel_path, entry.path()));
        } else if ft.is_file() {
            out.push((rel_path, entry.path()));
        }
    }
    Ok(())
}

/// Hashes the directory of every layer in `layers` (by layer key).
pub fn hash_layer_dirs(
    project: &Project,
    layers: &[&str],
    cache: &mut StatCache,
) -> Result<HashMap<String, SourceTree>, ov_cache::Error> {
    use rayon::prelude::*;
    type Listing = (String, Vec<(String, PathBuf)>, Vec<(String, PathBuf)>);
    let listed: Vec<Listing> = layers
        .par_iter()
        .filter_map(|name| project.layers.get(*name).map(|l| (name, l)))
        .map(|(name, layer)| {
            let mut files = Vec::new();
            let mut links = Vec::new();
            if !layer.dir.as_os_str().is_empty() {
                let _ = list_files(&layer.dir, "", &mut files, &mut links);
            }
            files.sort();
            (name.to_string(), files, links)
        })
        .collect();
    let all: Vec<PathBuf> = listed
        .iter()
        .flat_map(|(_, f, _)| f.iter().map(|(_, p)| p.clone()))
        .collect();
    let hashed = hash_files(&all, cache)?;
    let mut it = hashed.into_iter();
    let mut out = HashMap::new();
    for (name, files, links) in listed {
        let mut tree = Vec::with_capacity(files.len());
        for (rel, _) in files {
            let Some(h) = it.next() else { break };
            tree.push(SourceFile {
                rel,
                mode: h.fingerprint.mode & 0o111,
                digest: h.digest,
            });
        }
        for (rel, path) in links {
            let target = std::fs::read_link(&path).map_err(|e| ov_cache::Error::Io {
                path: path.clone(),
                source: e,
            })?;
            let mut bytes = b"symlink:".to_vec();
            bytes.extend(target.as_os_str().as_encoded_bytes());
            tree.push(SourceFile {
                rel,
                mode: 0o120000,
                digest: FileDigest::of_bytes(&bytes),
            });
        }
        tree.sort_by(|a, b| a.rel.cmp(&b.rel));
        let digest = tree_digest(&tree);
        out.insert(
            name,
            SourceTree {
                files: tree,
                digest,
            },
        );
    }
    Ok(out)
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
