//! What a full plan learned of the layer directories, kept between runs in
//! `<cache-dir>/layers.v1`: what discovery found under each discover root
//! (and the directories it listed), and each layer tree it hashed.
//!
//! An edit of the project's root files (image.yml, build.yml, vm.yml)
//! changes none of that, yet a full plan walked every discover root, walked
//! every layer directory again for the layer-file check, and listed and
//! stat'ed each one a third time to hash it through the stat cache. With
//! what is kept, the next full plan asks by stats alone: a discover root
//! whose listed directories all have the fingerprints they had is not
//! walked again, and a tree whose every fingerprint is unchanged is neither
//! checked nor hashed again (see [`ov_cache::tree_unchanged`]).
//!
//! It is kept only from a plan that found the project valid, so every kept
//! tree passed the layer-file check, and only what had settled before that
//! run began (see [`ov_cache::Fingerprint::settled`]): a tree or walk that
//! had not is left out, and walked, hashed and checked again next time.
//! The file is written atomically with a checksum; one that is missing,
//! torn, of another format or for another context (another ov binary,
//! project, cache or state dir) costs the walks and the hashing, nothing
//! more.

use crate::load::model::Project;
use crate::plan::inputs::SourceTree;
use crate::plan::watch::{context, read_kept, write_kept};
use crate::workspace::Dirs;
use ov_cache::{Witness, WitnessBuilder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The file's name in the cache dir.
pub const FILE: &str = "layers.v1";

/// The file's first bytes; a file of another format is not read.
const MAGIC: &[u8; 16] = b"ov-layers-v1\n\0\0\0";

/// One discover root's walk: what it found, and what it listed to find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walk {
    /// The discover root.
    pub root: PathBuf,
    /// Whether the walk went below the root's own subdirectories.
    pub recursive: bool,
    /// The `layer.yml` files found, in the order the walk gives them.
    pub files: Vec<PathBuf>,
    /// Every directory listed under the root (the root itself not
    /// included): any file added or removed in one moves its fingerprint.
    pub listed: Vec<PathBuf>,
}

/// The file's contents: owned when read, borrowed when written (postcard
/// writes a reference as what it points at).
#[derive(Serialize, Deserialize)]
struct Kept<W, P, T> {
    context: [u8; 32],
    /// Each walk, with a witness of its root and the directories it listed.
    walks: Vec<(W, Witness)>,
    /// Layer trees by directory.
    trees: Vec<(P, T)>,
}

/// What was kept and is still so on disk: what a full plan takes instead
/// of walking, checking and hashing again.
#[derive(Default)]
pub struct Reuse {
    /// Walks whose root and listed directories are all unchanged.
    pub walks: Vec<Walk>,
    /// Trees whose every fingerprint is unchanged, by directory.
    pub trees: HashMap<PathBuf, SourceTree>,
    /// How many trees were kept, unchanged or not.
    kept_trees: usize,
}

impl Reuse {
    /// What is kept in `dirs`' cache for the project at `root`, checked
    /// against the disk; nothing when there is no usable file.
    pub fn load(root: &Path, dirs: &Dirs) -> Reuse {
        let _t = crate::diag::phase("kept layers");
        let Some(context) = context(MAGIC, root, dirs, &[]) else {
            return Reuse::default();
        };
        let kept = read_kept(&dirs.cache.join(FILE), MAGIC)
            .and_then(|bytes| postcard::from_bytes::<Kept<Walk, PathBuf, SourceTree>>(&bytes).ok());
        let Some(kept) = kept.filter(|k| k.context == context) else {
            return Reuse::default();
        };
        let walks = kept
            .walks
            .into_iter()
            .filter(|(_, w)| w.unchanged())
            .map(|(walk, _)| walk)
            .collect();
        let kept_trees = kept.trees.len();
        let trees = kept
            .trees
            .into_par_iter()
            .filter(|(dir, t)| unchanged(dir, t))
            .collect();
        Reuse {
            walks,
            trees,
            kept_trees,
        }
    }

    /// The kept walk of a discover root, when it still holds.
    pub fn walk(&self, root: &Path, recursive: bool) -> Option<&Walk> {
        self.walks
            .iter()
            .find(|w| w.root == root && w.recursive == recursive)
    }

    /// Whether the tree at `dir` is kept and unchanged: it passed the
    /// layer-file check when it was kept, and would pass it again.
    pub fn has_tree(&self, dir: &Path) -> bool {
        self.trees.contains_key(dir)
    }
}

/// Whether the tree `t` taken of `dir` is still the one on disk.
fn unchanged(dir: &Path, t: &SourceTree) -> bool {
    let dirs = t.dirs.iter().map(|(rel, fp)| (rel.as_str(), *fp));
    let files = t.files.iter().map(|f| (f.rel.as_str(), f.fingerprint));
    ov_cache::tree_unchanged(dir, t.root, dirs.chain(files))
}

/// Whether every fingerprint of `t` had settled when a run that began at
/// `started_ns` took it.
fn settled(t: &SourceTree, started_ns: i128) -> bool {
    t.root.is_none_or(|fp| fp.settled(started_ns))
        && t.dirs.iter().all(|(_, fp)| fp.settled(started_ns))
        && t.files.iter().all(|f| f.fingerprint.settled(started_ns))
}

/// Keeps what the full plan of `project` (valid: it was planned) learned:
/// its walks and its layer trees (`trees`, by layer name), those that had
/// settled before the run began at `started_ns`. Nothing is written when
/// it is all what `reused` held. Only a speed-up: a failure to write is
/// not an error.
pub fn save(
    root: &Path,
    dirs: &Dirs,
    project: &Project,
    trees: &HashMap<String, SourceTree>,
    reused: &Reuse,
    started_ns: i128,
) {
    let mut by_dir: HashMap<&Path, &SourceTree> = HashMap::with_capacity(trees.len());
    for (name, tree) in trees {
        let Some(layer) = project.layers.get(name) else {
            continue;
        };
        if !layer.dir.as_os_str().is_empty() {
            by_dir.insert(layer.dir.as_path(), tree);
        }
    }
    let walks_reused = project
        .inputs
        .walks
        .iter()
        .all(|w| reused.walk(&w.root, w.recursive) == Some(w));
    let trees_reused = by_dir.keys().all(|d| reused.has_tree(d));
    if walks_reused && trees_reused && reused.kept_trees == by_dir.len() {
        return;
    }
    let _t = crate::diag::phase("kept layers: save");
    let Some(context) = context(MAGIC, root, dirs, &[]) else {
        return;
    };
    let walks: Vec<(&Walk, Witness)> = project
        .inputs
        .walks
        .par_iter()
        .filter_map(|w| {
            let mut b = WitnessBuilder::default();
            b.dir_now(&w.root);
            for d in &w.listed {
                b.dir_now(d);
            }
            let witness = b.finish()?;
            witness.settled(started_ns).then_some((w, witness))
        })
        .collect();
    let mut kept_trees: Vec<(&Path, &SourceTree)> = by_dir
        .into_par_iter()
        .filter(|(_, t)| settled(t, started_ns))
        .collect();
    kept_trees.sort_unstable_by_key(|(d, _)| *d);
    let kept = Kept {
        context,
        walks,
        trees: kept_trees,
    };
    let _ = write_kept(&dirs.cache.join(FILE), MAGIC, &kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixture::{backdate, damaged, mkfifo, settled_fixture, Setup};
    use crate::workspace::Workspace;

    /// Node ids and keys of a full plan of `s` with the cache in `dirs`.
    fn planned(s: &Setup, dirs: &Dirs) -> Vec<(String, String)> {
        let ws = Workspace::open(&s.root, dirs).unwrap();
        ws.plan
            .graph
            .node_indices()
            .map(|ix| {
                (
                    ws.plan.graph[ix].id.clone(),
                    ws.keys.keys[ix.index()].to_string(),
                )
            })
            .collect()
    }

    /// What a full plan with a cache of its own (nothing kept) makes.
    fn from_scratch(s: &Setup) -> Vec<(String, String)> {
        let fresh = Dirs {
            cache: s.dirs.cache.with_file_name("scratch-cache"),
            ..s.dirs.clone()
        };
        let _ = std::fs::remove_dir_all(&fresh.cache);
        planned(s, &fresh)
    }

    /// A settled mini fixture whose layers a full plan kept.
    fn kept() -> Setup {
        let s = settled_fixture(|_| {});
        planned(&s, &s.dirs);
        let r = Reuse::load(&s.root, &s.dirs);
        assert!(!r.walks.is_empty(), "no walk was kept");
        assert!(r.kept_trees > 0 && r.trees.len() == r.kept_trees);
        s
    }

    #[test]
    fn a_root_file_edit_reuses_every_walk_and_tree_and_plans_as_from_scratch() {
        let s = kept();
        let image_yml = s.root.join("image.yml");
        let text = std::fs::read_to_string(&image_yml).unwrap();
        std::fs::write(&image_yml, text + "# edited\n").unwrap();
        // Settled, as the rest: only image.yml's own fingerprint moves.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30);
        std::fs::File::options()
            .write(true)
            .open(&image_yml)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let r = Reuse::load(&s.root, &s.dirs);
        assert_eq!(r.trees.len(), r.kept_trees, "a tree was taken as changed");
        assert!(!r.walks.is_empty());
        let before = std::fs::read(s.dirs.cache.join(FILE)).unwrap();
        assert_eq!(planned(&s, &s.dirs), from_scratch(&s));
        // Nothing it kept changed, so nothing was written.
        assert_eq!(std::fs::read(s.dirs.cache.join(FILE)).unwrap(), before);
    }

    #[test]
    fn a_layer_added_or_a_file_edited_is_walked_or_hashed_again() {
        let s = kept();
        // A new layer under the discover root: the walk no longer holds.
        let extra = s.root.join("layers/extra");
        std::fs::create_dir(&extra).unwrap();
        std::fs::write(extra.join("layer.yml"), "layer:\n  package: [jq]\n").unwrap();
        // A file of a kept layer gets new contents.
        let file = s.root.join("layers/greeting/layer.yml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text + "# edited\n").unwrap();
        let r = Reuse::load(&s.root, &s.dirs);
        assert!(
            r.walk(&s.root.join("layers"), true).is_none(),
            "the walk still held"
        );
        assert!(!r.has_tree(&s.root.join("layers/greeting")));
        assert!(r.has_tree(&s.root.join("layers/web")));
        let ws = Workspace::open(&s.root, &s.dirs).unwrap();
        assert!(
            ws.project.layers.contains_key("extra"),
            "the new layer was not found"
        );
        backdate(&s.root);
        assert_eq!(planned(&s, &s.dirs), from_scratch(&s));
        // The plan after it kept the new state, which holds again.
        let r = Reuse::load(&s.root, &s.dirs);
        assert!(r.walk(&s.root.join("layers"), true).is_some());
        assert!(r.has_tree(&s.root.join("layers/greeting")));
    }

    #[test]
    fn a_fifo_in_a_kept_layer_is_still_refused() {
        let s = kept();
        mkfifo(&s.root.join("layers/greeting/pipe"));
        let err = Workspace::open(&s.root, &s.dirs)
            .err()
            .expect("a fifo was let through");
        assert!(format!("{err:#}").contains("fifo"), "{err:#}");
    }

    #[test]
    fn a_damaged_file_is_not_read_and_costs_only_the_walks() {
        let s = kept();
        let path = s.dirs.cache.join(FILE);
        let good = std::fs::read(&path).unwrap();
        let want = from_scratch(&s);
        for bad in damaged(&good) {
            std::fs::write(&path, &bad).unwrap();
            let r = Reuse::load(&s.root, &s.dirs);
            assert!(r.walks.is_empty() && r.trees.is_empty() && r.kept_trees == 0);
        }
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(planned(&s, &s.dirs), want);
        assert_ne!(
            std::fs::read(&path).unwrap(),
            b"garbage",
            "it was not kept again"
        );
    }
}
