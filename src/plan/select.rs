//! Which nodes a command asks for: targets with everything they need, and
//! `--refresh` names, each resolved like a target.

use crate::diag::{Diagnostics, InvalidProject};
use crate::plan::Plan;
use petgraph::graph::NodeIndex;
use std::collections::HashSet;

impl Plan {
    /// The image and VM boot nodes of `name` when an image and a VM both
    /// have that name.
    pub fn shared_name(&self, name: &str) -> Option<(NodeIndex, NodeIndex)> {
        let img = *self.images.get(name)?;
        let vm = *self.vms.get(name)?;
        (img != vm).then_some((img, vm))
    }

    /// The nodes needed for `targets` (all nodes when empty), in
    /// topological order. An unknown target is an error naming the closest one.
    pub fn select(&self, targets: &[String]) -> Result<Vec<NodeIndex>, InvalidProject> {
        let g = &self.graph;
        let order =
            petgraph::algo::toposort(g, None).unwrap_or_else(|_| g.node_indices().collect());
        if targets.is_empty() {
            return Ok(order);
        }
        let mut diags = Diagnostics::default();
        let mut want = HashSet::new();
        let mut stack = Vec::new();
        for t in targets {
            match self.resolve(t, "target") {
                Ok(ix) => {
                    stack.push(ix);
                    // A VM may share its image's name (real projects do):
                    // the name means both, never one picked silently.
                    if let Some((img, vm)) = self.shared_name(t) {
                        stack.extend([img, vm]);
                    }
                }
                Err(why) => diags.error(None, why),
            }
        }
        if diags.has_errors() {
            return Err(InvalidProject(diags));
        }
        while let Some(ix) = stack.pop() {
            if want.insert(ix) {
                stack.extend(g.neighbors_directed(ix, petgraph::Direction::Incoming));
            }
        }
        Ok(order.into_iter().filter(|ix| want.contains(ix)).collect())
    }

    /// The nodes `--refresh` names; an unknown name is bad input (exit 2),
    /// with the closest node id, like an unknown target.
    pub fn refresh_set(&self, names: &[String]) -> Result<HashSet<NodeIndex>, InvalidProject> {
        let mut diags = Diagnostics::default();
        let mut set = HashSet::new();
        for r in names {
            match self.resolve(r, "node") {
                Ok(ix) => {
                    set.insert(ix);
                }
                Err(why) => diags.error(None, format!("--refresh: {why}")),
            }
        }
        if diags.has_errors() {
            return Err(InvalidProject(diags));
        }
        Ok(set)
    }
}
