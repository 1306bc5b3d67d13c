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

/// Keys and manifests, indexed like the plan's nodes.
#[derive(Debug, Default)]
pub struct Keys {
    /// `keys[i]` is the key of node `i`.
    pub keys: Vec<NodeKey>,
    /// `manifests[i]` lists what went into `keys[i]`.
    pub manifests: Vec<Manifest>,
    /// `outputs[i]` is what node `i` contributed to its dependents' keys:
    /// its output digest when known, else its key.
    pub outputs: Vec<[u8; 32]>,
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
    let mut manifests = vec![Manifest::default(); n];
    let mut stand_in: Vec<[u8; 32]> = vec![[0; 32]; n];
    // The planner adds dependencies before dependents, but a toposort keeps
    // this correct whatever order nodes were added in.
    let order = petgraph::algo::toposort(g, None).unwrap_or_else(|_| g.node_indices().collect());
    let dirs = source_dirs(plan);
    // Canonicalising and hashing the specs is most of the work and needs
    // no dependency: do it on every core first.
    let heads: Vec<[[u8; 32]; 2]> = g
        .raw_nodes()
        .par_iter()
        .map(|n| Ingredients::head(&n.weight.spec))
        .collect();
    for ix in order {
        let (key, manifest) = key_from(plan, trees, &dirs, engine, ix, &heads[ix.index()], |d| {
            stand_in[d.index()]
        });
        stand_in[ix.index()] = match source_output(plan, trees, ix) {
            Some(o) => o,
            None => known_output(ix, &key).unwrap_or(*key.as_bytes()),
        };
        keys[ix.index()] = key;
        manifests[ix.index()] = manifest;
    }
    Keys {
        keys,
        manifests,
        outputs: stand_in,
    }
}

/// True for the kinds whose output is an engine image, whose keys hash
/// the engine's platform.
pub fn uses_engine(spec: &ov_rules::NodeSpec) -> bool {
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
    let head = Ingredients::head(&plan.graph[ix].spec);
    key_from(plan, trees, dirs, engine, ix, &head, dep_output)
}

/// [`node_key`] with the spec's [`Ingredients::head`] computed already.
fn key_from(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    dirs: &HashMap<String, String>,
    engine: &EnginePlatform,
    ix: NodeIndex,
    head: &[[u8; 32]; 2],
    dep_output: impl Fn(NodeIndex) -> [u8; 32],
) -> (NodeKey, Manifest) {
    let g = &plan.graph;
    let node = &g[ix];
    let mut ing = Ingredients::from_head(head);
    if uses_engine(&node.spec) {
        ing.engine(engine);
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
        if matches!(
            node.kind(),
            NodeKind::Source | NodeKind::Layer | NodeKind::Stage
        ) {
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
