//! `ov cache gc`'s engine half: the node images (`localhost/ov-node:<key>`)
//! this cache dir made whose keys its store no longer holds are untagged;
//! the engine removes an image with its last tag when nothing uses it, and
//! the untagged parents (one per build step) that this leaves dangling.
//!
//! A key is held while the store has its entry or a last-run record names
//! it (the latest build of a node stays until that node builds again).
//! Only keys this cache dir marked are candidates ([`super::owned`]): other
//! cache dirs share the engine and the tag namespace. A key is looked at
//! under its claim, which a build holds from before it builds an image
//! until the result is recorded, and never while a live run has it in its
//! journal: gc never takes an image a running build made but has not
//! recorded yet.

use super::owned;
use ov_cache::{Lookup, NodeKey, Store};
use ov_rules::engine::Engine;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// What the engine half of gc did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineGc {
    /// Node tags removed.
    pub untagged: usize,
    /// Of their images, those removed with the tag (it was their last).
    pub removed: usize,
    /// Stale keys left because a live build holds them.
    pub busy: usize,
}

impl fmt::Display for EngineGc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engine: untagged {} node images the store no longer holds ({} removed with their last tag)",
            self.untagged, self.removed
        )?;
        if self.busy > 0 {
            write!(f, "; left {} that a running build holds", self.busy)?;
        }
        Ok(())
    }
}

/// The keys journaled by live runs on the cache dir `cache`.
fn live_journals(cache: &Path) -> HashSet<NodeKey> {
    let Ok(entries) = std::fs::read_dir(cache.join("tmp")) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter(|e| super::alive(&e.file_name().to_string_lossy()))
        .flat_map(|e| super::debris::journaled(&e.path()))
        .collect()
}

/// Collects the engine images of the cache dir `cache` (whose store is
/// `store`). Asks the engine about this cache dir's keys one by one: a
/// list of every image costs minutes on an engine that holds thousands.
pub async fn collect(engine: &Engine, store: &Store, cache: &Path) -> anyhow::Result<EngineGc> {
    let mut report = EngineGc::default();
    for key in owned::marked(store) {
        let Ok(Some(_claim)) = store.try_lock_key(&key) else {
            report.busy += 1;
            continue;
        };
        // Looked up under the claim: a build that recorded it is done.
        let held = matches!(store.get_action(&key), Ok(Lookup::Hit(_)))
            || store.last_run_keys()?.contains(&key);
        if held {
            continue;
        }
        // Read under the claim, after the build that journaled the key
        // (before making its tag) took it: a live run's key shows here.
        if live_journals(cache).contains(&key) {
            report.busy += 1;
            continue;
        }
        let tag = owned::node_tag(&key);
        if let Some(image) = engine.image_usage(&tag).await? {
            if !engine.remove_tag(&tag).await? {
                continue;
            }
            report.untagged += 1;
            if image.tags.len() == 1 && engine.image_usage(image.id.as_str()).await?.is_none() {
                report.removed += 1;
            }
        }
        owned::unmark(store, &key);
    }
    Ok(report)
}

/// What [`usage`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineUsage {
    /// Images holding a node tag of this cache dir.
    pub images: usize,
    /// The sum of their sizes: a layer two of them share (their base, a
    /// parent node's layers) is counted in each.
    pub bytes: u64,
}

impl fmt::Display for EngineUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engine images:        {} ({} summed over images; a layer they share is counted in each, as the engine does not say which are shared)",
            self.images,
            ov_cache::format_size(self.bytes)
        )
    }
}

/// The engine images this cache dir's node tags hold.
pub async fn usage(engine: &Engine, store: &Store) -> anyhow::Result<EngineUsage> {
    let mut u = EngineUsage::default();
    let mut seen = HashSet::new();
    for key in owned::marked(store) {
        if let Some(img) = engine.image_usage(&owned::node_tag(&key)).await? {
            if seen.insert(img.id.clone()) {
                u.images += 1;
                u.bytes += img.size;
            }
        }
    }
    Ok(u)
}

/// [`collect`] for a command without a runtime of its own (`ov cache gc`).
pub fn collect_now(endpoint: &str, store: &Store, cache: &Path) -> anyhow::Result<EngineGc> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let engine = Engine::connect(endpoint).await?;
        collect(&engine, store, cache).await
    })
}

/// [`usage`] for a command without a runtime of its own (`ov cache stats`).
/// Statistics are not worth a long wait: an engine busy enough to take
/// longer is reported as such.
pub fn usage_now(endpoint: &str, store: &Store) -> anyhow::Result<EngineUsage> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);
    tokio::runtime::Runtime::new()?.block_on(async {
        let asked = async {
            let engine = Engine::connect(endpoint).await?;
            usage(&engine, store).await
        };
        tokio::time::timeout(PATIENCE, asked)
            .await
            .map_err(|_| anyhow::anyhow!("the engine did not answer within {PATIENCE:?}"))?
    })
}
