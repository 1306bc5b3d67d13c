//! `ov cache gc`'s engine half: the node images (`localhost/ov-node:<key>`)
//! this cache dir made whose keys its store no longer holds are untagged,
//! and the build steps under them that this leaves unused are removed.
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
use ov_rules::engine::{Engine, ImageId, ImageUsage};
use ov_rules::images::NODE_LABEL;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// What the engine half of gc did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineGc {
    /// Node tags removed (with their image when it was the last tag).
    pub untagged: usize,
    /// Untagged build steps under them, removed.
    pub pruned: usize,
    /// Stale keys left because a live build holds them.
    pub busy: usize,
}

impl fmt::Display for EngineGc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engine: untagged {} node images the store no longer holds, removed {} unused build steps under them",
            self.untagged, self.pruned
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
/// `store`).
pub async fn collect(engine: &Engine, store: &Store, cache: &Path) -> anyhow::Result<EngineGc> {
    let mut report = EngineGc::default();
    let images = engine.image_usage().await?;
    let by_id: HashMap<&ImageId, &ImageUsage> = images.iter().map(|i| (&i.id, i)).collect();
    let by_tag: HashMap<&str, &ImageUsage> = images
        .iter()
        .flat_map(|i| i.tags.iter().map(move |t| (t.as_str(), i)))
        .collect();
    // Read after the listing: a tag listed was journaled before it was made.
    let live = live_journals(cache);
    let mut stale: Vec<(NodeKey, Option<&ImageUsage>)> = owned::marked(store)
        .into_iter()
        .map(|k| (k, by_tag.get(owned::node_tag(&k).as_str()).copied()))
        .collect();
    // Newest first: an image goes before the one it was built on.
    stale.sort_by_key(|(_, i)| std::cmp::Reverse(i.map_or(0, |i| i.created_unix)));
    let mut below = Vec::new();
    for (key, image) in stale {
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
        if live.contains(&key) {
            report.busy += 1;
            continue;
        }
        if image.is_some() {
            if !engine.remove_tag(&owned::node_tag(&key)).await? {
                continue;
            }
            report.untagged += 1;
            below.extend(image.and_then(|i| i.parent.clone()));
        }
        owned::unmark(store, &key);
    }
    // What the engine kept under a removed image: untagged steps of ov's
    // builds that nothing else uses (another child gets a refusal).
    let mut seen = HashSet::new();
    while let Some(id) = below.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(img) = by_id.get(&id) else { continue };
        let ours = img.labels.contains_key(NODE_LABEL);
        if !img.tags.is_empty() || !ours || img.containers > 0 {
            continue;
        }
        if engine.remove_unused_image(&id).await? {
            report.pruned += 1;
            below.extend(img.parent.clone());
        }
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
    /// Bytes in layers no other image holds, when the engine says.
    pub unique: Option<u64>,
}

impl fmt::Display for EngineUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engine images:        {} ({} summed over images, shared layers counted in each image",
            self.images,
            ov_cache::format_size(self.bytes)
        )?;
        match self.unique {
            Some(u) => write!(
                f,
                "; {} in layers only they hold)",
                ov_cache::format_size(u)
            ),
            None => write!(f, "; the engine does not say which layers are shared)"),
        }
    }
}

/// The engine images this cache dir's node tags hold.
pub async fn usage(engine: &Engine, store: &Store) -> anyhow::Result<EngineUsage> {
    let images = engine.image_usage().await?;
    let ours: HashSet<NodeKey> = owned::marked(store).into_iter().collect();
    let mut u = EngineUsage {
        unique: Some(0),
        ..EngineUsage::default()
    };
    for img in &images {
        let held = img
            .tags
            .iter()
            .filter_map(|t| owned::key_of_tag(t))
            .any(|k| ours.contains(&k));
        if !held {
            continue;
        }
        u.images += 1;
        u.bytes += img.size;
        u.unique = match (u.unique, img.shared_size) {
            (Some(sum), Some(shared)) => Some(sum + img.size.saturating_sub(shared)),
            _ => None,
        };
    }
    if u.images == 0 {
        u.unique = None;
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
