//! The build's saved plan: the graph a full plan made (every node's spec,
//! its edges, the names that reach it), the layer trees it keyed and the
//! layer directories, kept in `<cache-dir>/build-plan.v2` under the
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
//! values, which postcard cannot read back without a schema), after the
//! checksummed part of the file, with what a build asks of every node
//! kept beside each in that part (see [`crate::plan::spec`]): a build
//! reads the text of only the specs it needs, and a text that does not
//! hash to its node's key is refused then. A plan is only kept when every
//! spec reads back equal to the planned one and the structure had settled
//! before the run began; a tree that had not (the build right after a
//! layer edit) is kept marked stale, and hashed again by every build until
//! one finds it settled. A plan that is missing, torn, of another format
//! or for another context costs a full plan, nothing more.

use crate::load::model::Project;
use crate::plan::inputs::SourceTree;
use crate::plan::spec::{Facts, Kept, KeptSteps, Steps, Text};
use crate::plan::watch::{
    context, now_ns, read_kept_with_tail, recheck, watch, write_kept_with_tail, Tail, Unsettled,
    Watched, WatchedTree,
};
use crate::plan::{Plan, PlanNode, Spec};
use crate::workspace::{Dirs, Planned};
use ov_cache::Witness;
use ov_rules::rule::LayerSpec;
use ov_rules::NodeSpec;
use petgraph::graph::NodeIndex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which shared steps `t` are (their address).
fn steps_id(t: &Steps) -> usize {
    Arc::as_ptr(t).cast::<()>() as usize
}

/// The saved plan's file name in the cache dir.
pub const FILE: &str = "build-plan.v2";

/// What the last format was called, removed when a plan is saved.
const OLD_FILE: &str = "build-plan.v1";

/// The file's first bytes; a plan of another format is not read.
const MAGIC: &[u8; 16] = b"ov-build-plan-2\n";

/// What decides whether the rest can be used at all, read first.
#[derive(Serialize, Deserialize)]
struct Head {
    context: [u8; 32],
    structure: Witness,
    /// How long the tail is, checked against the file's size.
    tail_len: u64,
    /// How long the trees' part is: the graph's starts after it.
    trees_len: u64,
}

/// A slice of the file's tail (see [`crate::plan::watch::Tail`]): the
/// specs' text, which most builds read little of, is kept after the part
/// read up front.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Span {
    at: u64,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    label: String,
    layer: Option<String>,
    /// Where in the tail the spec's JSON is; a layer application's is
    /// without its steps. Read only when a build asks for the spec (see
    /// [`crate::plan::spec`]).
    spec: Span,
    /// A layer application's steps: an index into [`Graph::steps`].
    steps: Option<u32>,
    /// What a build asks of every node, kept so that it need not read
    /// the spec: the head of its key and how it is scheduled and cached.
    facts: Facts,
}

/// The file's payload is three parts one after the other, each read on
/// its own: the [`Head`], the [`Trees`] and the [`Graph`]. A build checks
/// the witnesses while it reads the graph on another core, and writes back
/// re-hashed trees with the graph's bytes as they were.
fn join_parts(head: &mut Head, trees: &[u8], graph: &[u8]) -> Option<Vec<u8>> {
    head.trees_len = trees.len() as u64;
    let mut out = postcard::to_allocvec(head).ok()?;
    out.reserve(trees.len() + graph.len());
    out.extend_from_slice(trees);
    out.extend_from_slice(graph);
    Some(out)
}

/// The layer trees, and what tells whether their files changed.
#[derive(Serialize, Deserialize)]
struct Trees {
    watched: Vec<WatchedTree>,
    /// The planned tree of each watched one.
    trees: Vec<SourceTree>,
}

/// The plan's graph and names.
#[derive(Serialize, Deserialize)]
struct Graph {
    /// Layer key → its tree, an index into [`Trees::trees`]; `None` for a
    /// layer without a directory (its tree is empty).
    tree_of_layer: Vec<(String, Option<u32>)>,
    root: PathBuf,
    layer_dirs: Vec<(String, PathBuf)>,
    /// In the plan's index order, so indices stay what they were.
    nodes: Vec<SavedNode>,
    /// Each layer's steps (`LayerSpec::tasks`) in the tail, once: every
    /// application of a layer shares them, and they were 3.6 of the bench
    /// plan's 9.5 MB when written with every application.
    steps: Vec<Span>,
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
    /// Its postcard bytes: the plan itself was moved into the build's.
    payload: Vec<u8>,
    /// The file it was read from, whose tail it keeps.
    tail: Arc<Tail>,
}

impl Rewrite {
    /// Writes it (only a speed-up: failing is not an error).
    pub fn write(self) {
        if let Ok(tail) = self.tail.read(0, self.tail.len()) {
            let _ = write_kept_with_tail(&self.path, MAGIC, &self.payload, &tail);
        }
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
        let (payload, tail) = read_kept_with_tail(&self.path, MAGIC)?;
        let (mut head, rest) = postcard::take_from_bytes::<Head>(&payload).ok()?;
        if head.context != context || head.tail_len != tail.len() {
            return None;
        }
        let at = usize::try_from(head.trees_len).ok()?;
        let (trees_bytes, graph_bytes) = rest.split_at_checked(at)?;
        let tail = Arc::new(tail);
        // The witnesses are stats, the graph is memory: one goes on while
        // the other waits. A plan whose structure changed is dropped.
        let (checked, graph) = rayon::join(
            || {
                let mut trees: Trees = postcard::from_bytes(trees_bytes).ok()?;
                if !head.structure.unchanged() {
                    return None;
                }
                let rehashed = recheck(&mut trees.watched)?;
                Some((trees, rehashed))
            },
            || {
                let graph: Graph = postcard::from_bytes(graph_bytes).ok()?;
                restore(graph, &tail)
            },
        );
        let ((mut trees, rehashed), (plan, tree_of_layer, warnings)) = (checked?, graph?);
        let settled = rehashed
            .iter()
            .all(|r| trees.watched[r.index].witness.settled(self.started_ns));
        let fresh = !rehashed.is_empty();
        for r in rehashed {
            *trees.trees.get_mut(r.index)? = r.tree;
        }
        // The head and the graph as they were, the trees anew.
        let rewrite = if fresh && settled {
            postcard::to_allocvec(&trees)
                .ok()
                .and_then(|t| join_parts(&mut head, &t, graph_bytes))
                .map(|payload| Rewrite {
                    path: self.path.clone(),
                    payload,
                    tail: tail.clone(),
                })
        } else {
            None
        };
        let planned = plan.with_trees(trees.trees, tree_of_layer)?;
        Some(Restored {
            planned,
            warnings,
            rewrite,
        })
    }

    /// Keeps the plan of a full plan of `project`, when that is safe (see
    /// the module docs). Only a speed-up: failing is not an error.
    pub fn save(&self, project: &Project, planned: &Planned, warnings: &str) {
        let Some(context) = self.context else { return };
        let Some((mut head, trees, graph, tail)) =
            snapshot(project, planned, context, self.started_ns, warnings)
        else {
            return;
        };
        let (Ok(trees), Ok(graph)) = (postcard::to_allocvec(&trees), postcard::to_allocvec(&graph))
        else {
            return;
        };
        let Some(payload) = join_parts(&mut head, &trees, &graph) else {
            return;
        };
        if write_kept_with_tail(&self.path, MAGIC, &payload, &tail).is_ok() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::remove_file(dir.join(OLD_FILE));
            }
        }
    }
}

/// The plan `graph` holds, but for its trees. Specs are not read here:
/// each is read when the build first asks for more than its kept facts.
fn restore(graph: Graph, tail: &Arc<Tail>) -> Option<(Unrooted, TreeOfLayer, String)> {
    let Graph {
        tree_of_layer,
        root,
        layer_dirs,
        nodes,
        steps,
        edges,
        aliases,
        images,
        vms,
        short,
        warnings,
    } = graph;
    let text = |s: Span| Text {
        tail: tail.clone(),
        at: s.at,
        len: s.len,
    };
    let steps: Vec<Arc<KeptSteps>> = steps
        .into_iter()
        .map(|s| Arc::new(KeptSteps::new(text(s))))
        .collect();
    let mut plan = Plan {
        graph: petgraph::graph::DiGraph::with_capacity(nodes.len(), edges.len()),
        ..Plan::default()
    };
    plan.by_id.reserve(nodes.len());
    for n in nodes {
        let steps = match n.steps {
            Some(i) => Some(steps.get(i as usize)?.clone()),
            None => None,
        };
        let ix = plan.graph.add_node(PlanNode {
            id: n.id.clone(),
            label: n.label,
            spec: Spec::kept(Kept::new(n.facts, text(n.spec), steps)),
            layer: n.layer,
        });
        plan.by_id.insert(n.id, ix);
    }
    let count = plan.graph.node_count();
    let at = |i: u32| (i as usize) < count;
    let ix = |i: u32| NodeIndex::new(i as usize);
    for (a, b) in edges {
        if !at(a) || !at(b) {
            return None;
        }
        plan.graph.add_edge(ix(a), ix(b), ());
    }
    let names = |v: Vec<(String, u32)>| -> Option<Vec<(String, NodeIndex)>> {
        v.into_iter()
            .map(|(name, i)| at(i).then(|| (name, ix(i))))
            .collect()
    };
    plan.aliases = names(aliases)?.into_iter().collect();
    plan.images = names(images)?.into_iter().collect();
    plan.vms = names(vms)?.into_iter().collect();
    plan.short = short
        .into_iter()
        .map(|(short, full)| Some((short, names(full)?)))
        .collect::<Option<_>>()?;
    let unrooted = Unrooted {
        plan,
        root,
        layer_dirs: layer_dirs.into_iter().collect(),
    };
    Some((unrooted, tree_of_layer, warnings))
}

/// Layer key → its tree, an index into the kept trees.
type TreeOfLayer = Vec<(String, Option<u32>)>;

/// A restored plan waiting for its trees.
struct Unrooted {
    plan: Plan,
    root: PathBuf,
    layer_dirs: HashMap<String, PathBuf>,
}

impl Unrooted {
    fn with_trees(self, kept: Vec<SourceTree>, tree_of_layer: TreeOfLayer) -> Option<Planned> {
        // A tree is moved to the last layer that uses it (two layers may
        // share a directory), and copied for the others.
        let mut uses = vec![0usize; kept.len()];
        for (_, t) in &tree_of_layer {
            if let Some(t) = t {
                *uses.get_mut(*t as usize)? += 1;
            }
        }
        let mut kept: Vec<Option<SourceTree>> = kept.into_iter().map(Some).collect();
        let mut trees = HashMap::with_capacity(tree_of_layer.len());
        for (layer, t) in tree_of_layer {
            let tree = match t {
                Some(t) => {
                    let t = t as usize;
                    uses[t] -= 1;
                    let kept = kept.get_mut(t)?;
                    if uses[t] == 0 {
                        kept.take()?
                    } else {
                        kept.clone()?
                    }
                }
                None => SourceTree::empty(),
            };
            trees.insert(layer, tree);
        }
        Some(Planned {
            plan: self.plan,
            trees,
            root: self.root,
            layer_dirs: self.layer_dirs,
        })
    }
}

/// What to keep of a full plan; `None` when an input cannot be recorded,
/// has not settled, or a spec would not read back as it is.
fn snapshot(
    project: &Project,
    planned: &Planned,
    context: [u8; 32],
    started_ns: i128,
    warnings: &str,
) -> Option<(Head, Trees, Graph, Vec<u8>)> {
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
        if let NodeSpec::Layer(l) = n.spec.made()? {
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
    let nodes: Vec<(SavedNode, String)> = g
        .raw_nodes()
        .par_iter()
        .map(|n| {
            let n = &n.weight;
            let made = n.spec.made()?;
            let (spec, steps) = match made {
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
            let mut back = NodeSpec::from_json(n.kind(), spec.as_bytes()).ok()?;
            if let (NodeSpec::Layer(l), Some(i)) = (&mut back, steps) {
                l.tasks = steps_back.get(i as usize)?.clone();
            }
            let node = SavedNode {
                id: n.id.clone(),
                label: n.label.clone(),
                layer: n.layer.clone(),
                spec: Span { at: 0, len: 0 },
                steps,
                facts: n.spec.facts(),
            };
            (back == *made).then_some((node, spec))
        })
        .collect::<Option<_>>()?;
    // The texts go in the tail: the steps, then each node's spec.
    let mut tail = Vec::new();
    let mut put = |text: &str| {
        let at = tail.len() as u64;
        tail.extend_from_slice(text.as_bytes());
        Span {
            at,
            len: text.len() as u64,
        }
    };
    let steps: Vec<Span> = steps.iter().map(|t| put(t)).collect();
    let nodes: Vec<SavedNode> = nodes
        .into_iter()
        .map(|(mut node, spec)| {
            node.spec = put(&spec);
            node
        })
        .collect();
    let index = |ix: &NodeIndex| ix.index() as u32;
    let named = |m: &mut dyn Iterator<Item = (&String, &NodeIndex)>| -> Vec<(String, u32)> {
        m.map(|(name, ix)| (name.clone(), index(ix))).collect()
    };
    let plan = &planned.plan;
    let head = Head {
        context,
        structure,
        tail_len: tail.len() as u64,
        trees_len: 0,
    };
    let trees = Trees {
        watched,
        trees: sources.into_iter().cloned().collect(),
    };
    let graph = Graph {
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
    };
    Some((head, trees, graph, tail))
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
        let ids = |p: &Planned| -> Vec<(String, NodeSpec, Facts)> {
            p.plan
                .graph
                .node_weights()
                .map(|n| (n.id.clone(), n.spec.get().unwrap().clone(), n.spec.facts()))
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
            // Damage in the tail (the specs' text) is only seen when a
            // spec is read: see the next test.
            let Some(r) = load(&s) else { continue };
            let unread = r
                .planned
                .plan
                .graph
                .node_weights()
                .filter(|n| n.spec.get().is_err())
                .count();
            assert!(unread > 0, "a damaged plan of {} bytes read back", b.len());
        }
    }

    #[test]
    fn a_damaged_spec_is_refused_when_read_not_misread() {
        let s = kept();
        let path = s.dirs.cache.join(FILE);
        let planned = plan_and_save(&s);
        let good = std::fs::read(&path).unwrap();
        // Every byte of the last quarter (the tail, where the specs' text
        // is), flipped in turn.
        let from = good.len() * 3 / 4;
        let (mut read, mut caught) = (0, 0);
        for at in from..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            let Some(r) = load(&s) else { continue };
            read += 1;
            let mut refused = 0;
            let g = &r.planned.plan.graph;
            for (n, p) in g.node_weights().zip(planned.plan.graph.node_weights()) {
                match n.spec.get() {
                    Ok(spec) => assert_eq!(spec, p.spec.get().unwrap(), "byte {at}: misread"),
                    Err(_) => refused += 1,
                }
            }
            // A flip can also leave the spec as it was (`"init":null`
            // read as an unknown field, whose default is null too).
            if refused > 0 {
                caught += 1;
                assert!(!path.exists(), "byte {at}: the damaged plan was kept");
            }
        }
        assert!(
            caught * 10 > read * 9,
            "{caught} of {read} flips were caught"
        );
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
