//! What a layer directory may hold. Its whole tree (hidden entries too) is
//! sent to the engine as the build context, so entries the engine cannot
//! take, or that are not the layer's own, are bad input found before any
//! build: sockets, fifos and device nodes; symbolic links whose target
//! climbs out of the layer directory (the engine refuses a context holding
//! one, with an empty error); ov's own cache dir.

use crate::diag::{Diagnostics, Loc};
use crate::load::model::{Layer, Project};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Checks the directory of every layer of `project` (on all cores), adding
/// an error per bad entry to `diags`, but for those `passed` says passed
/// this check and are unchanged since. `cache` is ov's cache dir.
pub fn check(
    project: &Project,
    cache: &Path,
    passed: impl Fn(&Path) -> bool,
    diags: &mut Diagnostics,
) {
    let mut seen = HashSet::new();
    let layers: Vec<(&String, &Layer)> = project
        .layers
        .iter()
        .filter(|(_, l)| !l.dir.as_os_str().is_empty() && seen.insert(&l.dir))
        .filter(|(_, l)| !passed(&l.dir))
        .collect();
    if layers.is_empty() {
        return;
    }
    let cache = CacheDir::new(cache);
    let found: Vec<Vec<(Loc, String)>> = layers
        .par_iter()
        .map(|(name, layer)| check_layer(name, layer, &cache))
        .collect();
    for (loc, message) in found.into_iter().flatten() {
        diags.error(Some(loc), message);
    }
}

/// The name of the layer whose directory holds `path`, if any.
pub fn layer_holding<'p>(project: &'p Project, path: &Path) -> Option<&'p str> {
    let path = CacheDir::new(path);
    project
        .layers
        .iter()
        .find(|(_, l)| !l.dir.as_os_str().is_empty() && path.within(&l.dir).is_some())
        .map(|(name, _)| name.as_str())
}

/// The cache dir, resolved, with the identity of each of its existing
/// ancestors: telling whether it lies in a layer costs one `stat` per
/// layer, whatever links sit on either path.
struct CacheDir {
    path: PathBuf,
    ancestors: Vec<(PathBuf, FileId)>,
}

impl CacheDir {
    fn new(path: &Path) -> Self {
        let path = resolved(path);
        let ancestors = path
            .ancestors()
            .filter_map(|a| Some((a.to_path_buf(), file_id(a)?)))
            .collect();
        CacheDir { path, ancestors }
    }

    /// The cache dir relative to `dir` when `dir` holds it (or is it).
    fn within(&self, dir: &Path) -> Option<&Path> {
        let id = file_id(dir)?;
        let (holder, _) = self.ancestors.iter().find(|(_, a)| *a == id)?;
        self.path.strip_prefix(holder).ok()
    }
}

/// What tells two paths to one file apart from two files.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(unix)]
fn file_id(p: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}
#[cfg(not(unix))]
type FileId = PathBuf;
#[cfg(not(unix))]
fn file_id(p: &Path) -> Option<FileId> {
    p.canonicalize().ok()
}

fn check_layer(name: &str, layer: &Layer, cache: &CacheDir) -> Vec<(Loc, String)> {
    let mut found = Vec::new();
    let dir = lexical(&absolute(&layer.dir));
    let shown = |rel: &Path| -> Loc { Loc::file(&Path::new(&layer.display_dir).join(rel)) };
    let cache_rel = cache.within(&layer.dir);
    if let Some(rel) = cache_rel {
        found.push((
            shown(rel),
            format!(
                "layer `{name}`: the cache dir lies inside this layer's directory, so ov's own \
                 files would be sent with the layer; pick a cache dir outside every layer \
                 (--cache-dir or OV_CACHE_DIR)"
            ),
        ));
    }
    let cache_id = cache_rel.and_then(|_| file_id(&cache.path));
    let walk = walkdir::WalkDir::new(&layer.dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        // The cache dir is reported above; what ov writes there is not the
        // user's to fix.
        .filter_entry(|e| {
            cache_id.is_none() || !e.file_type().is_dir() || file_id(e.path()) != cache_id
        });
    for entry in walk {
        // An unreadable entry is reported when the layer is hashed or sent.
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let rel = path.strip_prefix(&layer.dir).unwrap_or(path);
        let ft = entry.file_type();
        if let Some(kind) = ov_rules::context::special_kind(&ft) {
            found.push((
                shown(rel),
                format!(
                    "layer `{name}`: this is {kind}; a layer directory may hold only files, \
                     directories and symbolic links (the engine cannot take it): move it out"
                ),
            ));
        } else if ft.is_symlink() {
            let Ok(target) = std::fs::read_link(path) else {
                continue;
            };
            let parent = dir.join(rel.parent().unwrap_or(Path::new("")));
            // An absolute target is a path in the image, not on this machine.
            if target.is_relative() && !lexical(&parent.join(&target)).starts_with(&dir) {
                found.push((
                    shown(rel),
                    format!(
                        "layer `{name}`: symbolic link to `{}` points outside the layer \
                         directory, the only directory the engine gets (it refuses such a \
                         link): copy the file in instead",
                        target.display()
                    ),
                ));
            }
        }
    }
    found
}

/// `p` made absolute without touching the filesystem.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `p` with `.` and `..` taken away by name (a `..` above `/` stays at `/`).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `p` with links resolved as far as it exists: the cache dir may not
/// exist yet, and the temp dirs of tests sit behind links on some systems.
fn resolved(p: &Path) -> PathBuf {
    let abs = lexical(&absolute(p));
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_takes_dots_away_by_name() {
        assert_eq!(lexical(Path::new("/p/layers/a/../../x")), Path::new("/p/x"));
        assert_eq!(lexical(Path::new("/p/./a/../../../..")), Path::new("/"));
    }

    #[test]
    fn resolved_keeps_the_missing_tail() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        assert_eq!(resolved(&d.path().join("no/such")), real.join("no/such"));
    }
}
