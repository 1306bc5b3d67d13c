//! What the next build would do, without running anything: keys computed
//! from the outputs the store recorded for each dependency's key, so a node
//! whose key is in the store is known to be cached and its dependents are
//! keyed exactly as the build will key them. `ov build --dry-run` and
//! `ov explain` read the plan through this.

use crate::plan::keys;
use crate::workspace::{Dirs, Workspace};
use ov_cache::NodeKey;
use ov_cache::{ActionResult, Lookup, Store};
use ov_rules::engine::EnginePlatform;
use ov_rules::rule::Caching;
use petgraph::graph::NodeIndex;
use std::collections::HashSet;

/// A workspace whose keys take the store into account.
pub struct Predicted {
    ws: Workspace,
    store: Option<Store>,
    /// Nodes whose key the store holds.
    pub cached: HashSet<NodeIndex>,
    /// Nodes re-checked on every build whose last result is known: source
    /// trees (hashed already) and external bases (resolved before).
    pub checked: HashSet<NodeIndex>,
}

impl std::ops::Deref for Predicted {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

impl Predicted {
    /// The store the keys were predicted from (`None`: no store yet).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The last recorded run of `ix` (any key), for explaining what changed.
    pub fn last(&self, ix: NodeIndex) -> Option<(NodeKey, ActionResult)> {
        let id = &self.ws.plan.graph[ix].id;
        self.store.as_ref()?.last(id).ok().flatten()
    }
}

/// Re-keys `ws` against the store in `dirs` (no store: nothing is cached).
pub fn predict(mut ws: Workspace, dirs: &Dirs) -> anyhow::Result<Predicted> {
    let dir = dirs.cache.join("store");
    let store = if dir.is_dir() {
        Some(Store::open(&dir)?)
    } else {
        None
    };
    let mut cached = HashSet::new();
    let mut checked = HashSet::new();
    if let Some(store) = &store {
        let plan = &ws.plan;
        let platform = keys::remembered_platform(store).unwrap_or_else(EnginePlatform::unknown);
        ws.keys = keys::compute(plan, &ws.trees, &platform, |ix, key| {
            let node = &plan.graph[ix];
            // A base is re-resolved on every build; predict what it found last.
            if node.spec.caching() == Caching::EveryBuild {
                let (_, r) = store.last(&node.id).ok().flatten()?;
                checked.insert(ix);
                return Some(keys::output_bytes(&r.output));
            }
            match store.get_action(key) {
                Ok(Lookup::Hit(r)) => {
                    cached.insert(ix);
                    Some(keys::output_bytes(&r.output))
                }
                _ => None,
            }
        });
    }
    if store.is_some() {
        checked.extend(
            ws.plan
                .graph
                .node_indices()
                .filter(|ix| ws.plan.graph[*ix].spec.caching() == Caching::Hashed),
        );
    }
    Ok(Predicted {
        ws,
        store,
        cached,
        checked,
    })
}
