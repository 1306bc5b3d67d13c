//! Node keys: blake3 over each node's rule tag, canonical spec, source
//! digests and the digests of its dependencies, computed in topological
//! order.
//!
//! A dependency contributes its *output* digest when one is known (a source
//! node's tree digest; from the executor on, the recorded output of a built
//! node), so a dependency rebuilt to the same output does not cascade. Until
//! a node has been built, its key stands in for its output.
//!
//! A node that makes an engine image also hashes the engine's
//! [`EnginePlatform`] (kind, major version, OS, architecture): the same
//! Containerfile gives another image on another engine.

use crate::plan::inputs::SourceTree;
use crate::plan::Plan;
use ov_cache::{Digest, NodeKey};
use ov_rules::engine::EnginePlatform;
use ov_rules::{Ingredients, Manifest, NodeKind};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use rayon::prelude::*;
use std::collections::HashMap;

/// Keys, indexed like the plan's nodes, and what lists any one of them
/// again.
#[derive(Debug, Default)]
pub struct Keys {
    /// `keys[i]` is the key of node `i`.
    pub keys: Vec<NodeKey>,
    /// `outputs[i]` is what node `i` contributed to its dependents' keys:
    /// its output digest when known, else its key.
    pub outputs: Vec<[u8; 32]>,
    /// `heads[i]`: node `i`'s rule tag and canonical spec, hashed.
    heads: Vec<[[u8; 32]; 2]>,
    /// The engine platform's digest, for the nodes that hash it.
    engine: [u8; 32],
    /// [`source_dirs`] of the plan, for listing file ingredients.
    dirs: HashMap<String, String>,
}

impl Keys {
    /// What went into `ix`'s key, listed: its head, engine, source, each
    /// dependency's contribution and every file of its tree. Listing all
    /// ~40,000 ingredients of a large plan up front would cost more than
    /// keying it, and a plan is listed a node at a time (explain, the
    /// graph page), so a listing is rebuilt from what keyed the node.
    pub fn manifest(
        &self,
        plan: &Plan,
        trees: &HashMap<String, SourceTree>,
        ix: NodeIndex,
    ) -> Manifest {
        let Some(head) = self.heads.get(ix.index()) else {
            return Manifest::default();
        };
        let ing = Ingredients::from_head(head);
        key_from(plan, trees, &self.dirs, &self.engine, ix, ing, |d| {
            self.outputs[d.index()]
        })
        .1
    }

    /// The ingredients `ix`'s key starts with, hashed (rule, spec and, for
    /// a node that makes an engine image, the engine): with
    /// [`Ingredients::replay`], its source and its dependencies, they give
    /// back the key.
    pub fn head(&self, plan: &Plan, ix: NodeIndex) -> Option<Vec<(String, [u8; 32])>> {
        let h = self.heads.get(ix.index())?;
        let mut out = vec![("rule".to_string(), h[0]), ("spec".to_string(), h[1])];
        if uses_engine(&plan.graph[ix].spec) {
            out.push(("engine".to_string(), self.engine));
        }
        Some(out)
    }
}

/// The 32 bytes a finished node contributes to its dependents' keys: a
/// hash of its output text (an image id, a blob digest, a tree digest).
pub fn output_bytes(output: &str) -> [u8; 32] {
    *blake3::hash(output.as_bytes()).as_bytes()
}

/// Computes every key of `plan`. `outputs` gives known output digests by
/// node index (from the store: what the last build of that key produced);
/// a node without one stands in with its key.
pub fn compute(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    engine: &EnginePlatform,
    mut known_output: impl FnMut(NodeIndex, &NodeKey) -> Option<[u8; 32]>,
) -> Keys {
    let g = &plan.graph;
    let n = g.node_count();
    let mut keys = vec![NodeKey::from_bytes([0; 32]); n];
    let mut stand_in: Vec<[u8; 32]> = vec![[0; 32]; n];
    // The planner adds dependencies before dependents, but a toposort keeps
    // this correct whatever order nodes were added in.
    let order = petgraph::algo::toposort(g, None).unwrap_or_else(|_| g.node_indices().collect());
    let dirs = source_dirs(plan);
    let engine = Ingredients::digest_of_engine(engine);
    // Canonicalising and hashing the specs is most of the work and needs
    // no dependency: do it on every core first.
    let heads: Vec<[[u8; 32]; 2]> = g
        .raw_nodes()
        .par_iter()
        .map(|n| *n.weight.spec.head())
        .collect();
    for ix in order {
        let ing = Ingredients::from_head(&heads[ix.index()]).unlisted();
        let (key, _) = key_from(plan, trees, &dirs, &engine, ix, ing, |d| {
            stand_in[d.index()]
        });
        stand_in[ix.index()] = match source_output(plan, trees, ix) {
            Some(o) => o,
            None => known_output(ix, &key).unwrap_or(*key.as_bytes()),
        };
        keys[ix.index()] = key;
    }
    Keys {
        keys,
        outputs: stand_in,
        heads,
        engine,
        dirs,
    }
}

/// True for the kinds whose output is an engine image, whose keys hash
/// the engine's platform.
pub fn uses_engine(spec: &crate::plan::Spec) -> bool {
    spec.tags_node_image()
}

/// Layer name → the directory its source node hashes, as shown to users.
pub fn source_dirs(plan: &Plan) -> HashMap<String, String> {
    plan.graph
        .node_weights()
        .filter(|n| n.kind() == NodeKind::Source)
        .filter_map(|n| Some((n.layer.clone()?, n.label.clone())))
        .collect()
}

/// A source node's output is its tree digest, known before anything runs.
pub fn source_output(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    ix: NodeIndex,
) -> Option<[u8; 32]> {
    let node = &plan.graph[ix];
    if node.kind() != NodeKind::Source {
        return None;
    }
    let t = trees.get(node.layer.as_deref()?)?;
    Some(*t.digest.as_bytes())
}

/// One node's key, given what each dependency contributes (`dep_output`).
pub fn node_key(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    dirs: &HashMap<String, String>,
    engine: &EnginePlatform,
    ix: NodeIndex,
    dep_output: impl Fn(NodeIndex) -> [u8; 32],
) -> (NodeKey, Manifest) {
    let ing = Ingredients::from_head(plan.graph[ix].spec.head());
    let engine = Ingredients::digest_of_engine(engine);
    key_from(plan, trees, dirs, &engine, ix, ing, dep_output)
}

/// Finishes a key started from the node's spec (`ing`): the engine, its
/// source tree, its dependencies and its files.
fn key_from(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    dirs: &HashMap<String, String>,
    engine: &[u8; 32],
    ix: NodeIndex,
    mut ing: Ingredients,
    dep_output: impl Fn(NodeIndex) -> [u8; 32],
) -> (NodeKey, Manifest) {
    let g = &plan.graph;
    let node = &g[ix];
    if uses_engine(&node.spec) {
        ing.engine_digest(engine);
    }
    let tree = node.layer.as_ref().and_then(|l| trees.get(l));
    if node.kind() == NodeKind::Source {
        if let Some(t) = tree {
            ing.source(&node.label, t.digest);
        }
    }
    let mut deps: Vec<_> = g
        .edges_directed(ix, Direction::Incoming)
        .map(|e| e.source())
        .collect();
    deps.sort_by(|a, b| g[*a].id.cmp(&g[*b].id));
    for d in deps {
        ing.dep(&g[d].id, &dep_output(d));
    }
    if let (Some(t), Some(layer)) = (tree, &node.layer) {
        if ing.is_listed()
            && matches!(
                node.kind(),
                NodeKind::Source | NodeKind::Layer | NodeKind::Stage
            )
        {
            let prefix = dirs.get(layer).map(String::as_str).unwrap_or_default();
            for f in &t.files {
                ing.file(&format!("{prefix}/{}", f.rel), f.digest);
            }
        }
    }
    ing.finish()
}

/// The record id under which the store remembers the engine's platform,
/// so `--dry-run` and `ov explain` key engine nodes as the build will
/// without asking the engine. No node id looks like it (theirs are
/// `<kind>:<name>`, and no kind is called `engine`).
const PLATFORM_RECORD: &str = "engine:platform";

/// The platform the last build met, if any build recorded one.
pub fn remembered_platform(store: &ov_cache::Store) -> Option<EnginePlatform> {
    let (_, r) = store.last(PLATFORM_RECORD).ok().flatten()?;
    serde_json::from_str(&r.output).ok()
}

/// Remembers the platform a build met (a no-op when it is the one remembered).
pub fn remember_platform(
    store: &ov_cache::Store,
    platform: &EnginePlatform,
) -> Result<(), ov_cache::Error> {
    let text = serde_json::to_string(platform).unwrap_or_default();
    let r = ov_cache::ActionResult {
        node_id: PLATFORM_RECORD.into(),
        kind: "engine".into(),
        output: text.clone(),
        blobs: Vec::new(),
        duration_ms: 0,
        finished_unix_ms: 0,
        manifest: Vec::new(),
        meta: serde_json::Value::Null,
    };
    let key = NodeKey::from_bytes(*blake3::hash(text.as_bytes()).as_bytes());
    store.record_last(PLATFORM_RECORD, &key, &r)
}
