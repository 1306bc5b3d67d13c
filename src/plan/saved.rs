//! The build's saved plan: the graph a full plan made (every node's spec,
//! its edges, the names that reach it), the layer trees it keyed and the
//! layer directories, kept in `<cache-dir>/build-plan.v1` under the
//! witnesses of [`super::watch`].
//!
//! While the project's structure is unchanged, so is its plan: an edit of
//! layer files changes only trees, and through them keys, which a build
//! computes itself as its nodes finish. So the next `ov build` reads the
//! plan back, hashing again only the trees whose witness changed, instead
//! of loading, validating, resolving, hashing and planning the project
//! (most of the ~0.6 s a full plan takes at the bench project's size).
//! What a full plan warned about is kept with it and said again.
//!
//! Specs are kept as the JSON their `Serialize` writes (they hold JSON
//! values, which postcard cannot read back without a schema), and read
//! back on all cores. A plan is only kept when every spec reads back equal
//! to the planned one and the structure had settled before the run began;
//! a tree that had not (the build right after a layer edit) is kept marked
//! stale, and hashed again by every build until one finds it settled. The
//! file carries a checksum: a plan that is missing, torn, of another format
//! or for another context costs a full plan, nothing more.

use crate::load::model::Project;
use crate::plan::inputs::SourceTree;
use crate::plan::watch::{
    context, now_ns, read_kept, recheck, watch, write_kept, Unsettled, Watched, WatchedTree,
};
use crate::plan::{Plan, PlanNode};
use crate::workspace::{Dirs, Planned};
use ov_cache::Witness;
use ov_rules::rule::LayerSpec;
use ov_rules::{NodeKind, NodeSpec};
use petgraph::graph::NodeIndex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A layer's steps, as its applications share them.
type Steps = Arc<[ov_rules::CanonicalJson]>;

/// Which shared steps `t` are (their address).
fn steps_id(t: &Steps) -> usize {
    Arc::as_ptr(t).cast::<()>() as usize
}

/// The saved plan's file name in the cache dir.
pub const FILE: &str = "build-plan.v1";

/// The file's first bytes; a plan of another format is not read.
const MAGIC: &[u8; 16] = b"ov-build-plan-1\n";

/// What decides whether the rest can be used at all, read first.
#[derive(Serialize, Deserialize)]
struct Head {
    context: [u8; 32],
    structure: Witness,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    label: String,
    kind: String,
    layer: Option<String>,
    /// The spec's JSON; a layer application's without its steps.
    spec: String,
    /// A layer application's steps: an index into [`Saved::steps`].
    steps: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    /// Written as its two fields first (postcard puts a struct's fields
    /// one after the other), so the file can be read head first.
    head: Head,
    watched: Vec<WatchedTree>,
    /// The planned tree of each watched one.
    trees: Vec<SourceTree>,
    /// Layer key → its tree, an index into `trees`; `None` for a layer
    /// without a directory (its tree is empty).
    tree_of_layer: Vec<(String, Option<u32>)>,
    root: PathBuf,
    layer_dirs: Vec<(String, PathBuf)>,
    /// In the plan's index order, so indices stay what they were.
    nodes: Vec<SavedNode>,
    /// Each layer's steps (`LayerSpec::tasks`), once: every application
    /// of a layer shares them, and they were 3.6 of the bench plan's
    /// 9.5 MB when written with every application.
    steps: Vec<String>,
    /// In the plan's edge order.
    edges: Vec<(u32, u32)>,
    aliases: Vec<(String, u32)>,
    images: Vec<(String, u32)>,
    vms: Vec<(String, u32)>,
    short: Vec<(String, Vec<(String, u32)>)>,
    /// What the full plan warned about.
    warnings: String,
}

/// One build's view of the saved plan.
pub struct SavedPlan {
    path: PathBuf,
    /// What the plan depends on besides files; `None` disables it.
    context: Option<[u8; 32]>,
    /// When this run began, ns since the epoch.
    started_ns: i128,
}

/// A plan read back.
pub struct Restored {
    /// What the build runs.
    pub planned: Planned,
    /// What the full plan warned about, to say again.
    pub warnings: String,
    /// Trees were hashed again and all of them had settled: the file with
    /// them, worth writing back so the next build need not.
    pub rewrite: Option<Rewrite>,
}

/// A saved plan with some of its trees hashed again.
pub struct Rewrite {
    path: PathBuf,
    saved: Saved,
}

impl Rewrite {
    /// Writes it (only a speed-up: failing is not an error).
    pub fn write(self) {
        let _ = write_kept(&self.path, MAGIC, &self.saved);
    }
}

impl SavedPlan {
    /// The saved plan of a build in `root`. Call before anything is read:
    /// the time it is made is when the run began.
    pub fn new(root: &Path, dirs: &Dirs) -> SavedPlan {
        SavedPlan {
            path: dirs.cache.join(FILE),
            context: context(MAGIC, root, dirs, &[]),
            started_ns: now_ns(),
        }
    }

    /// The plan, if the project's structure is unchanged since it was
    /// saved; trees whose files changed are hashed again.
    pub fn load(&self) -> Option<Restored> {
        let context = self.context?;
        let payload = read_kept(&self.path, MAGIC)?;
        let (head, _) = postcard::take_from_bytes::<Head>(&payload).ok()?;
        if head.context != context || !head.structure.unchanged() {
            return None;
        }
        let mut saved: Saved = postcard::from_bytes(&payload).ok()?;
        drop(payload);
        let rehashed = recheck(&mut saved.watched)?;
        let settled = rehashed
            .iter()
            .all(|r| saved.watched[r.index].witness.settled(self.started_ns));
        let fresh = !rehashed.is_empty();
        for r in rehashed {
            saved.trees[r.index] = r.tree;
        }
        let planned = restore(&saved)?;
        Some(Restored {
            planned,
            warnings: saved.warnings.clone(),
            rewrite: (fresh && settled).then(|| Rewrite {
                path: self.path.clone(),
                saved,
            }),
        })
    }

    /// Keeps the plan of a full plan of `project`, when that is safe (see
    /// the module docs). Only a speed-up: failing is not an error.
    pub fn save(&self, project: &Project, planned: &Planned, warnings: &str) {
        let Some(context) = self.context else { return };
        if let Some(saved) = snapshot(project, planned, context, self.started_ns, warnings) {
            let _ = write_kept(&self.path, MAGIC, &saved);
        }
    }
}

/// The plan `saved` holds.
fn restore(saved: &Saved) -> Option<Planned> {
    // Written by the specs' own `Serialize` and checked to read back
    // equal when saved (see `snapshot`).
    let steps: Vec<Steps> = saved
        .steps
        .par_iter()
        .map(|text| ov_rules::read_own(|| serde_json::from_str(text)).ok())
        .collect::<Option<_>>()?;
    let specs: Vec<NodeSpec> = saved
        .nodes
        .par_iter()
        .map(|n| {
            let kind = NodeKind::parse(&n.kind)?;
            let mut spec = ov_rules::read_own(|| NodeSpec::from_json(kind, &n.spec)).ok()?;
            match (&mut spec, n.steps) {
                (NodeSpec::Layer(l), Some(i)) => l.tasks = steps.get(i as usize)?.clone(),
                (_, None) => {}
                _ => return None,
            }
            Some(spec)
        })
        .collect::<Option<_>>()?;
    let mut plan = Plan::default();
    for (n, spec) in saved.nodes.iter().zip(specs) {
        let ix = plan.graph.add_node(PlanNode {
            id: n.id.clone(),
            label: n.label.clone(),
            spec,
            layer: n.layer.clone(),
        });
        plan.by_id.insert(n.id.clone(), ix);
    }
    let count = plan.graph.node_count();
    let at = |i: u32| (i as usize) < count;
    let ix = |i: u32| NodeIndex::new(i as usize);
    for &(a, b) in &saved.edges {
        if !at(a) || !at(b) {
            return None;
        }
        plan.graph.add_edge(ix(a), ix(b), ());
    }
    let names = |v: &[(String, u32)]| -> Option<Vec<(String, NodeIndex)>> {
        v.iter()
            .map(|(name, i)| at(*i).then(|| (name.clone(), ix(*i))))
            .collect()
    };
    plan.aliases = names(&saved.aliases)?.into_iter().collect();
    plan.images = names(&saved.images)?.into_iter().collect();
    plan.vms = names(&saved.vms)?.into_iter().collect();
    plan.short = saved
        .short
        .iter()
        .map(|(short, full)| Some((short.clone(), names(full)?)))
        .collect::<Option<_>>()?;
    let mut trees = HashMap::with_capacity(saved.tree_of_layer.len());
    for (layer, t) in &saved.tree_of_layer {
        let tree = match t {
            Some(t) => saved.trees.get(*t as usize)?.clone(),
            None => SourceTree::empty(),
        };
        trees.insert(layer.clone(), tree);
    }
    Some(Planned {
        plan,
        trees,
        root: saved.root.clone(),
        layer_dirs: saved.layer_dirs.iter().cloned().collect(),
    })
}

/// What to keep of a full plan; `None` when an input cannot be recorded,
/// has not settled, or a spec would not read back as it is.
fn snapshot(
    project: &Project,
    planned: &Planned,
    context: [u8; 32],
    started_ns: i128,
    warnings: &str,
) -> Option<Saved> {
    let Watched {
        structure,
        trees: watched,
        tree_of_layer,
        sources,
    } = watch(project, &planned.trees, started_ns, Unsettled::Stale)?;
    let g = &planned.plan.graph;
    // Each layer's steps once, by the `Arc` its applications share.
    let mut step_of: HashMap<usize, u32> = HashMap::new();
    let mut shared: Vec<&Steps> = Vec::new();
    for n in g.node_weights() {
        if let NodeSpec::Layer(l) = &n.spec {
            step_of.entry(steps_id(&l.tasks)).or_insert_with(|| {
                shared.push(&l.tasks);
                (shared.len() - 1) as u32
            });
        }
    }
    let steps: Vec<String> = shared
        .par_iter()
        .map(|t| serde_json::to_string(t).ok())
        .collect::<Option<_>>()?;
    let steps_back: Vec<Steps> = steps
        .par_iter()
        .map(|text| serde_json::from_str(text).ok())
        .collect::<Option<_>>()?;
    let nodes: Vec<SavedNode> = g
        .raw_nodes()
        .par_iter()
        .map(|n| {
            let n = &n.weight;
            let (spec, steps) = match &n.spec {
                NodeSpec::Layer(l) => {
                    let i = *step_of.get(&steps_id(&l.tasks))?;
                    let without = LayerSpec {
                        tasks: Arc::from(Vec::new()),
                        ..l.clone()
                    };
                    let spec = serde_json::to_string(&NodeSpec::Layer(without)).ok()?;
                    (spec, Some(i))
                }
                other => (serde_json::to_string(other).ok()?, None),
            };
            // Kept only if it reads back as planned (a value serde cannot
            // round-trip would give the build another key).
            let mut back = NodeSpec::from_json(n.kind(), &spec).ok()?;
            if let (NodeSpec::Layer(l), Some(i)) = (&mut back, steps) {
                l.tasks = steps_back.get(i as usize)?.clone();
            }
            (back == n.spec).then(|| SavedNode {
                id: n.id.clone(),
                label: n.label.clone(),
                kind: n.kind().as_str().to_string(),
                layer: n.layer.clone(),
                spec,
                steps,
            })
        })
        .collect::<Option<_>>()?;
    let index = |ix: &NodeIndex| ix.index() as u32;
    let named = |m: &mut dyn Iterator<Item = (&String, &NodeIndex)>| -> Vec<(String, u32)> {
        m.map(|(name, ix)| (name.clone(), index(ix))).collect()
    };
    let plan = &planned.plan;
    Some(Saved {
        head: Head { context, structure },
        watched,
        trees: sources.into_iter().cloned().collect(),
        tree_of_layer: planned
            .trees
            .keys()
            .map(|layer| (layer.clone(), tree_of_layer.get(layer.as_str()).copied()))
            .collect(),
        root: planned.root.clone(),
        layer_dirs: planned
            .layer_dirs
            .iter()
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect(),
        nodes,
        steps,
        edges: g
            .raw_edges()
            .iter()
            .map(|e| (index(&e.source()), index(&e.target())))
            .collect(),
        aliases: named(&mut plan.aliases.iter()),
        images: named(&mut plan.images.iter()),
        vms: named(&mut plan.vms.iter()),
        short: plan
            .short
            .iter()
            .map(|(short, full)| {
                let full = full.iter().map(|(f, ix)| (f.clone(), index(ix))).collect();
                (short.clone(), full)
            })
            .collect(),
        warnings: warnings.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixture::{damaged, mkfifo, settled_fixture, Setup};
    use crate::workspace::Workspace;

    /// A full plan of the project, and its plan kept as a build keeps it.
    fn plan_and_save(s: &Setup) -> Planned {
        let saved = SavedPlan::new(&s.root, &s.dirs);
        let (planned, project) = Workspace::open_unkeyed(&s.root, &s.dirs)
            .unwrap()
            .into_planned();
        saved.save(&project, &planned, "warning: kept\n");
        planned
    }

    fn load(s: &Setup) -> Option<Restored> {
        SavedPlan::new(&s.root, &s.dirs).load()
    }

    /// A settled copy of the mini fixture whose plan a build kept.
    fn kept() -> Setup {
        kept_with(|_| {})
    }

    /// [`kept`], with the project changed by `prepare` first.
    fn kept_with(prepare: fn(&Path)) -> Setup {
        let s = settled_fixture(prepare);
        assert!(load(&s).is_none(), "nothing is kept yet");
        plan_and_save(&s);
        assert!(s.dirs.cache.join(FILE).exists(), "no plan was kept");
        s
    }

    fn same(a: &Planned, b: &Planned) {
        let ids = |p: &Planned| -> Vec<(String, NodeSpec)> {
            p.plan
                .graph
                .node_weights()
                .map(|n| (n.id.clone(), n.spec.clone()))
                .collect()
        };
        assert_eq!(ids(a), ids(b));
        let edges = |p: &Planned| -> Vec<(usize, usize)> {
            p.plan
                .graph
                .raw_edges()
                .iter()
                .map(|e| (e.source().index(), e.target().index()))
                .collect()
        };
        assert_eq!(edges(a), edges(b));
        assert_eq!(a.plan.aliases, b.plan.aliases);
        assert_eq!(a.plan.short, b.plan.short);
        assert_eq!(a.trees, b.trees);
        assert_eq!(a.layer_dirs, b.layer_dirs);
    }

    #[test]
    fn a_kept_plan_is_read_back_as_planned_with_its_warnings() {
        let s = kept();
        let r = load(&s).expect("an unchanged project's plan is read back");
        assert_eq!(r.warnings, "warning: kept\n");
        assert!(r.rewrite.is_none(), "nothing was hashed again");
        same(&r.planned, &plan_and_save(&s));
    }

    #[test]
    fn an_edited_layer_file_hashes_its_tree_again_and_is_written_back_once_settled() {
        let s = kept();
        let file = s.root.join("layers/greeting/hello.txt");
        std::fs::write(&file, "edited moments ago").unwrap();
        let r = load(&s).expect("a layer file's edit needs no full plan");
        assert!(r.rewrite.is_none(), "an edit that has not settled is kept");
        same(&r.planned, &plan_and_save(&s));
        // The plan just saved holds that tree stale: it is hashed again,
        // and written back once it has settled.
        settle(std::slice::from_ref(&file));
        let r = load(&s).unwrap();
        same(
            &r.planned,
            &Workspace::open_unkeyed(&s.root, &s.dirs)
                .unwrap()
                .into_planned()
                .0,
        );
        r.rewrite
            .expect("a settled tree hashed again is written back")
            .write();
        assert!(
            load(&s).unwrap().rewrite.is_none(),
            "hashed again after the write"
        );
    }

    /// Moves the mtime of `paths` half a minute back: settled, and not
    /// what they were when the plan was kept.
    fn settle(paths: &[PathBuf]) {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30);
        for p in paths {
            std::fs::File::open(p).unwrap().set_modified(old).unwrap();
        }
    }

    #[test]
    fn a_change_of_structure_needs_a_full_plan() {
        type Change = fn(&Path) -> Vec<PathBuf>;
        let changes: [(&str, Change); 5] = [
            ("image.yml", |r| {
                let p = r.join("image.yml");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, t.replace("- web", "- web\n      - greeting")).unwrap();
                vec![p]
            }),
            ("a layer.yml", |r| {
                let p = r.join("layers/web/layer.yml");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, format!("{t}\n")).unwrap();
                vec![p]
            }),
            ("a file added to a layer", |r| {
                let p = r.join("layers/web/new.txt");
                std::fs::write(&p, "x").unwrap();
                vec![p, r.join("layers/web")]
            }),
            // Hashing skips it, but validation refuses it.
            ("a fifo added to a layer", |r| {
                mkfifo(&r.join("layers/web/pipe"));
                vec![r.join("layers/web")]
            }),
            ("ov.lock", |r| {
                let p = r.join("ov.lock");
                std::fs::write(&p, "base: {}\n").unwrap();
                vec![p]
            }),
        ];
        for (what, change) in changes {
            let s = kept();
            assert!(load(&s).is_some());
            settle(&change(&s.root));
            assert!(load(&s).is_none(), "{what}: the kept plan was read back");
        }
    }

    #[test]
    fn a_fifo_in_a_layer_subdirectory_needs_a_full_plan() {
        // Discovery does not walk hidden directories: only the tree's witness
        // sees what changes in one.
        let s = kept_with(|r| {
            std::fs::create_dir(r.join("layers/web/.cfg")).unwrap();
            std::fs::write(r.join("layers/web/.cfg/x"), "x").unwrap();
        });
        let sub = s.root.join("layers/web/.cfg");
        std::fs::write(sub.join("x"), "y").unwrap();
        settle(&[sub.join("x"), sub.clone()]);
        assert!(load(&s).is_some(), "a file's edit needs no full plan");
        mkfifo(&sub.join("pipe"));
        settle(std::slice::from_ref(&sub));
        // Hashing skips it, but validation refuses it.
        assert!(load(&s).is_none(), "the fifo went unseen");
    }

    #[test]
    fn a_torn_or_damaged_plan_costs_only_a_full_plan() {
        let s = kept();
        let path = s.dirs.cache.join(FILE);
        let good = std::fs::read(&path).unwrap();
        for b in damaged(&good) {
            std::fs::write(&path, &b).unwrap();
            assert!(load(&s).is_none(), "a plan of {} bytes was read", b.len());
        }
    }

    #[test]
    fn a_structure_that_has_not_settled_is_not_kept() {
        let s = kept();
        std::fs::remove_file(s.dirs.cache.join(FILE)).unwrap();
        // Just written: a change in the same timestamp tick could hide.
        let p = s.root.join("image.yml");
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, t).unwrap();
        plan_and_save(&s);
        assert!(!s.dirs.cache.join(FILE).exists());
    }
}
