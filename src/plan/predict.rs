//! What the next build would do, without running anything: keys computed
//! from the outputs the store recorded for each dependency's key, so a node
//! whose key is in the store is known to be cached and its dependents are
//! keyed exactly as the build will key them. `ov build --dry-run` and
//! `ov explain` read the plan through this.

use crate::plan::keys;
use crate::workspace::{Dirs, Workspace};
use ov_cache::remote::RemoteCache;
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
    /// Nodes the local store lacks and the remote cache holds (only when
    /// a remote cache was asked).
    pub remote: HashSet<NodeIndex>,
    /// The first failure of the remote cache, after which it was not asked
    /// again (redacted).
    pub remote_failure: Option<String>,
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

/// Keys `ws` (opened keyed or not) against the store in `dirs` (no store:
/// nothing is cached).
pub fn predict(ws: Workspace, dirs: &Dirs) -> anyhow::Result<Predicted> {
    predict_with(ws, dirs, None)
}

/// A remote cache to ask, and the engine whose platform keys engine nodes
/// when this machine never built (keys in a remote were made on one).
pub struct RemoteAsk<'a> {
    /// The remote cache.
    pub cache: &'a RemoteCache,
    /// The engine endpoint.
    pub endpoint: String,
}

/// [`predict`], asking `remote` about each key the local store lacks, as
/// the build would: a remote hit's output keys its dependents.
pub fn predict_with(
    mut ws: Workspace,
    dirs: &Dirs,
    remote: Option<&RemoteAsk>,
) -> anyhow::Result<Predicted> {
    let dir = dirs.cache.join("store");
    // Asking a remote needs somewhere to keep the records it sends.
    let store = if dir.is_dir() || remote.is_some() {
        Some(Store::open(&dir)?)
    } else {
        None
    };
    let rt = match remote {
        Some(_) => Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        ),
        None => None,
    };
    let mut cached = HashSet::new();
    let mut checked = HashSet::new();
    let mut in_remote = HashSet::new();
    let mut remote_failure = None;
    if store.is_none() {
        ws.keys = keys::compute(&ws.plan, &ws.trees, &EnginePlatform::unknown(), |_, _| None);
    }
    if let Some(store) = &store {
        let plan = &ws.plan;
        // Keys the remote holds were made on a real platform: a machine
        // that never built asks its engine once (and remembers it).
        let platform = match (keys::remembered_platform(store), remote, rt.as_ref()) {
            (Some(p), _, _) => p,
            (None, Some(r), Some(rt)) => {
                let asked = rt.block_on(async {
                    let engine = ov_rules::engine::Engine::connect(&r.endpoint).await?;
                    ov_rules::rule::ContainerEngine::platform(&engine).await
                });
                match asked {
                    Ok(p) => {
                        let _ = keys::remember_platform(store, &p);
                        p
                    }
                    Err(_) => EnginePlatform::unknown(),
                }
            }
            _ => EnginePlatform::unknown(),
        };
        ws.keys = keys::compute(plan, &ws.trees, &platform, |ix, key| {
            let node = &plan.graph[ix];
            // A base is re-resolved on every build; predict what it found last.
            if node.spec.caching() == Caching::EveryBuild {
                let (_, r) = store.last(&node.id).ok().flatten()?;
                checked.insert(ix);
                return Some(keys::output_bytes(&r.output));
            }
            if let Ok(Lookup::Hit(r)) = store.get_action(key) {
                cached.insert(ix);
                return Some(keys::output_bytes(&r.output));
            }
            let (remote, rt) = (remote?, rt.as_ref()?);
            if remote_failure.is_some() {
                return None;
            }
            match rt.block_on(remote.cache.peek(store, key)) {
                Ok(Some(r)) => {
                    in_remote.insert(ix);
                    Some(keys::output_bytes(&r.output))
                }
                Ok(None) => None,
                Err(e) => {
                    remote_failure = Some(ov_cache::redact(&format!(
                        "the remote cache failed ({e}); nodes it may hold show as `run`"
                    )));
                    None
                }
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
        remote: in_remote,
        remote_failure,
        checked,
    })
}
