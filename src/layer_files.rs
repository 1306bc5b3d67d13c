//! What a layer directory may hold. Its whole tree (hidden entries too) is
//! sent to the engine as the build context, so entries the engine cannot
//! take, or that are not the layer's own, are bad input found before any
//! build: sockets, fifos and device nodes; symbolic links whose target
//! climbs out of the layer directory (the engine refuses a context holding
//! one, with an empty error); ov's own cache dir.

use crate::diag::{Diagnostics, Loc};
use crate::model::{Layer, Project};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Checks the directory of every layer of `project`, adding an error per
/// bad entry to `diags`. `cache` is ov's cache dir.
pub fn check(project: &Project, cache: &Path, diags: &mut Diagnostics) {
    let cache = resolved(cache);
    let mut seen = HashSet::new();
    for (name, layer) in &project.layers {
        if layer.dir.as_os_str().is_empty() || !seen.insert(layer.dir.clone()) {
            continue;
        }
        check_layer(name, layer, &cache, diags);
    }
}

/// The name of the layer whose directory holds `path`, if any.
pub fn layer_holding<'p>(project: &'p Project, path: &Path) -> Option<&'p str> {
    let path = resolved(path);
    project
        .layers
        .iter()
        .find(|(_, l)| !l.dir.as_os_str().is_empty() && path.starts_with(resolved(&l.dir)))
        .map(|(name, _)| name.as_str())
}

fn check_layer(name: &str, layer: &Layer, cache: &Path, diags: &mut Diagnostics) {
    let dir = absolute(&layer.dir);
    let real_dir = resolved(&layer.dir);
    let shown = |rel: &Path| -> Loc {
        let p = Path::new(&layer.display_dir).join(rel);
        Loc::file(&p)
    };
    let cache_inside = cache.starts_with(&real_dir);
    if cache_inside {
        let rel = cache.strip_prefix(&real_dir).unwrap_or(cache);
        diags.error(
            Some(shown(rel)),
            format!(
                "layer `{name}`: the cache dir lies inside this layer's directory, so ov's own files \
                 would be sent with the layer; pick a cache dir outside every layer \
                 (--cache-dir or OV_CACHE_DIR)"
            ),
        );
    }
    let walk = walkdir::WalkDir::new(&layer.dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        // The cache dir is reported above; what ov writes there is not the
        // user's to fix.
        .filter_entry(|e| !(cache_inside && e.file_type().is_dir() && resolved(e.path()) == cache));
    for entry in walk {
        // An unreadable entry is reported when the layer is hashed or sent.
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let rel = path.strip_prefix(&layer.dir).unwrap_or(path);
        let ft = entry.file_type();
        if let Some(kind) = ov_rules::context::special_kind(&ft) {
            diags.error(
                Some(shown(rel)),
                format!(
                    "layer `{name}`: this is {kind}; a layer directory may hold only files, \
                     directories and symbolic links (the engine cannot take it): move it out"
                ),
            );
        } else if ft.is_symlink() {
            let Ok(target) = std::fs::read_link(path) else {
                continue;
            };
            let parent = dir.join(rel.parent().unwrap_or(Path::new("")));
            // An absolute target is a path in the image, not on this machine.
            if target.is_relative() && !lexical(&parent.join(&target)).starts_with(&dir) {
                diags.error(
                    Some(shown(rel)),
                    format!(
                        "layer `{name}`: symbolic link to `{}` points outside the layer \
                         directory, the only directory the engine gets (it refuses such a \
                         link): copy the file in instead",
                        target.display()
                    ),
                );
            }
        }
    }
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
