//! Node keys: blake3 over each node's rule tag, canonical spec, source
//! digests and the digests of its dependencies, computed in topological
//! order.
//!
//! A dependency contributes its *output* digest when one is known (a source
//! node's tree digest; from the executor on, the recorded output of a built
//! node), so a dependency rebuilt to the same output does not cascade. Until
//! a node has been built, its key stands in for its output.

use crate::inputs::SourceTree;
use crate::plan::Plan;
use ov_cache::{Digest, NodeKey};
use ov_rules::{Ingredients, Manifest, NodeKind};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::HashMap;

/// Keys and manifests, indexed like the plan's nodes.
#[derive(Debug, Default)]
pub struct Keys {
    /// `keys[i]` is the key of node `i`.
    pub keys: Vec<NodeKey>,
    /// `manifests[i]` lists what went into `keys[i]`.
    pub manifests: Vec<Manifest>,
}

/// Computes every key of `plan`. `outputs` gives known output digests by
/// node id (empty before anything was built).
pub fn compute(
    plan: &Plan,
    trees: &HashMap<String, SourceTree>,
    outputs: &HashMap<String, [u8; 32]>,
) -> Keys {
    let g = &plan.graph;
    let n = g.node_count();
    let mut keys = vec![NodeKey::from_bytes([0; 32]); n];
    let mut manifests = vec![Manifest::default(); n];
    let mut stand_in: Vec<[u8; 32]> = vec![[0; 32]; n];
    // The planner adds dependencies before dependents, but a toposort keeps
    // this correct whatever order nodes were added in.
    let dirs: HashMap<&str, &str> = g
        .node_weights()
        .filter(|n| n.kind == NodeKind::Source)
        .filter_map(|n| Some((n.layer.as_deref()?, n.label.as_str())))
        .collect();
    let order = petgraph::algo::toposort(g, None).unwrap_or_else(|_| g.node_indices().collect());
    for ix in order {
        let node = &g[ix];
        let mut ing = Ingredients::new(node.kind, &node.spec);
        let tree = node.layer.as_ref().and_then(|l| trees.get(l));
        if node.kind == NodeKind::Source {
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
            ing.dep(&g[d].id, &stand_in[d.index()]);
        }
        if let (Some(t), Some(layer)) = (tree, &node.layer) {
            if matches!(node.kind, NodeKind::Source | NodeKind::Layer) {
                let prefix = dirs.get(layer.as_str()).copied().unwrap_or_default();
                for f in &t.files {
                    ing.file(&format!("{prefix}/{}", f.rel), f.digest);
                }
            }
        }
        let (key, manifest) = ing.finish();
        keys[ix.index()] = key;
        manifests[ix.index()] = manifest;
        stand_in[ix.index()] = match (node.kind, tree) {
            (NodeKind::Source, Some(t)) => *t.digest.as_bytes(),
            _ => outputs.get(&node.id).copied().unwrap_or(*key.as_bytes()),
        };
    }
    Keys { keys, manifests }
}
