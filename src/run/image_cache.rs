//! An OCI registry as an image cache (`--image-cache oci://host:port/ns`):
//! on a local miss of a node that keeps its image as OCI parts, the
//! result and its parts are pulled from the registry into the store (then
//! the hit restores the image like any other); after such a node is built,
//! they are pushed, in read-write mode.
//!
//! Never worse than no cache: the first failure (down, 500, a time-out,
//! wrong bytes) is said once and the registry is left alone for the rest
//! of the run, which goes on locally.

use super::Shared;
use ov_cache::{ActionResult, BlobRef, Digest, NodeKey};
use ov_rules::oci::registry::{Registry, RegistryUrl};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a run may push to the image cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Pull only (builds of untrusted changes).
    Read,
    /// Pull, and push what this run builds.
    Readwrite,
}

/// The image cache of a run.
pub struct ImageCache {
    registry: Registry,
    write: bool,
    broken: AtomicBool,
}

impl std::fmt::Debug for ImageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImageCache({}, write: {})",
            self.registry.url(),
            self.write
        )
    }
}

impl ImageCache {
    /// The cache at `url` (`oci://host:port/namespace`); an error names
    /// what is wrong with the URL.
    pub fn new(url: &str, mode: Mode) -> Result<ImageCache, String> {
        Ok(ImageCache {
            registry: Registry::new(RegistryUrl::parse(url)?),
            write: mode == Mode::Readwrite,
            broken: AtomicBool::new(false),
        })
    }

    /// Says the first failure, and stops using the registry for this run.
    fn fail(&self, sh: &Shared, e: &dyn std::fmt::Display) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            sh.progress.warn(&format!(
                "image cache {}: {e}; building without it for the rest of this run",
                self.registry.url()
            ));
        }
    }

    /// Pulls the result of `key` and its image's parts into the local
    /// store; true when it is there now.
    pub async fn fetch(&self, sh: &Arc<Shared>, key: &NodeKey) -> bool {
        if self.broken.load(Ordering::Relaxed) || sh.read_only {
            return false;
        }
        let (parts, json) = match self.registry.pull(&key.to_string(), &sh.store).await {
            Ok(Some(found)) => found,
            Ok(None) => return false,
            Err(e) => {
                self.fail(sh, &e);
                return false;
            }
        };
        let mut result: ActionResult = match serde_json::from_str(&json) {
            Ok(r) => r,
            Err(e) => {
                self.fail(sh, &format!("the result under {key} is unreadable ({e})"));
                return false;
            }
        };
        // The blobs are those just pulled (the manifest as the registry
        // holds it); the pusher's log stays with the pusher.
        result.blobs = parts
            .named()
            .into_iter()
            .map(|(name, p)| BlobRef {
                name,
                digest: p.digest,
                size: p.size,
            })
            .collect();
        let (store, k) = (sh.store.clone(), *key);
        match tokio::task::spawn_blocking(move || store.put_action(&k, &result)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                sh.progress
                    .warn(&format!("could not record what the image cache gave: {e}"));
                false
            }
            Err(_) => false,
        }
    }

    /// Pushes the recorded result of `key` and its image's parts.
    pub async fn publish(&self, sh: &Arc<Shared>, key: &NodeKey) {
        if !self.write || self.broken.load(Ordering::Relaxed) {
            return;
        }
        let (store, k) = (sh.store.clone(), *key);
        let found = tokio::task::spawn_blocking(move || {
            let r = match store.get_action(&k) {
                Ok(ov_cache::Lookup::Hit(r)) => r,
                _ => return None,
            };
            let blobs: Vec<_> = r
                .blobs
                .iter()
                .map(|b| (b.name.clone(), b.digest, b.size))
                .collect();
            let parts = ov_rules::oci::recorded(&blobs, &store)?.ok()?;
            Some((parts, r))
        })
        .await
        .ok()
        .flatten();
        let Some((parts, result)) = found else { return };
        let json = serde_json::to_string(&result).unwrap_or_default();
        let scratch = sh.scratch.join(format!("push-{}", key.short(16)));
        let pushed = self
            .registry
            .push(&key.to_string(), &parts, &json, &sh.store, &scratch)
            .await;
        let _ = std::fs::remove_dir_all(&scratch);
        if let Err(e) = pushed {
            self.fail(sh, &e);
        }
    }
}
