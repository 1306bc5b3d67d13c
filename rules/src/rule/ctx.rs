//! What an executor gets and gives back.
//!
//! An executor gets an [`ExecCtx`] (the engine, what its dependencies
//! produced, a scratch directory and a cancellation token; the spec is the
//! rule itself) and returns a [`NodeOutput`]. It never touches the store:
//! files it wants kept are listed in [`NodeOutput::files`] and the caller
//! puts them in the CAS before recording the result, so a result is only
//! ever recorded once everything it names is stored.

use super::{BlobPlacer, ContainerEngine};
use crate::engine::{EngineError, ImageId};
use crate::NodeKey;
use ov_cache::BlobDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// What a finished node produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeOutput {
    /// The digest dependents key on: an image id, a blob digest, a report
    /// digest. Equal outputs stop a rebuild from cascading.
    pub digest: String,
    /// When set, [`digest`](Self::digest) is left empty and is the stored
    /// file of this name (`sha256:<hex>`, its CAS digest), filled in by
    /// the driver as it stores the file: a disk of gigabytes is then read
    /// and hashed once, not once more for its own digest.
    #[serde(skip)]
    pub digest_of: Option<String>,
    /// The engine image this node leaves, for dependents to build `FROM`.
    pub image: Option<ImageId>,
    /// Files to keep in the CAS, by name (a rootfs tarball, a report).
    #[serde(skip)]
    pub files: Vec<(String, PathBuf)>,
    /// Rule-specific facts (tag, counts) for `ov explain` and the summary.
    pub meta: Json,
    /// The node's log.
    #[serde(skip)]
    pub log: String,
    /// What the store holds of this output once recorded (or restored
    /// from a hit), by name: how dependents reach its files through
    /// [`ExecCtx::dep_blob`]. Set by the build driver, never by executors.
    #[serde(skip)]
    pub stored: Vec<(String, BlobDigest)>,
}

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The node's own work failed; `output` is what it printed.
    #[error("{message}")]
    Failed {
        /// What failed.
        message: String,
        /// Output of the failing step.
        output: String,
    },
    /// The spec is not something this rule can run (yet).
    #[error("{0}")]
    Spec(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Names the file in an I/O error, whose own text is only the OS message
/// ("No space left on device").
pub(crate) fn at(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
    move |e| {
        ExecError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    }
}

impl ExecError {
    /// True when the run was cancelled rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ExecError::Engine(EngineError::Cancelled))
    }
}

/// Rendering choices that depend on the engine.
#[derive(Clone, Debug, Default)]
pub struct EngineQuirks {
    /// podman 4.3's buildah hangs on a RUN with two `sharing=locked` cache
    /// mounts; false drops `sharing=locked`.
    pub locked_cache_mounts: bool,
}

impl EngineQuirks {
    /// What a build renders with, whatever the engine: podman 4.3 hangs on
    /// RUNs with two locked cache mounts, and locked mounts only serialise
    /// package managers, so they are always left out. `ov image generate`
    /// prints with the same quirks, so it shows what a build sends.
    pub fn for_build() -> Self {
        EngineQuirks {
            locked_cache_mounts: false,
        }
    }

    /// The renderer's options for these quirks.
    pub fn render_opts(&self) -> crate::containerfile::RenderOpts {
        crate::containerfile::RenderOpts {
            locked_cache_mounts: self.locked_cache_mounts,
        }
    }
}

/// Everything an executor may use.
pub struct ExecCtx<'a> {
    /// The engine.
    pub engine: &'a dyn ContainerEngine,
    /// The node's id (`layer:web@web`).
    pub node_id: &'a str,
    /// The node's key (names the images it tags).
    pub key: &'a NodeKey,
    /// Outputs of the node's dependencies, by node id.
    pub deps: &'a HashMap<String, NodeOutput>,
    /// The layer directory this node applies, if any.
    pub layer_dir: Option<&'a Path>,
    /// The project root (for templates such as supervisord's header).
    pub project_root: &'a Path,
    /// A fresh directory the node may write to; removed afterwards.
    pub scratch: &'a Path,
    /// This run's id, stamped on every container it starts.
    pub run_id: &'a str,
    /// Fires on Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// Engine-dependent rendering.
    pub quirks: &'a EngineQuirks,
    /// Receives log lines as they come, for progress.
    pub on_line: &'a mut (dyn FnMut(&str) + Send),
    /// Places dependencies' stored files (see [`ExecCtx::dep_blob`]).
    pub blobs: &'a dyn BlobPlacer,
    /// Where VM instances keep their state (see [`crate::vm::Instance`]).
    pub vm_state: &'a Path,
    /// Where downloads keep their partial files between builds (in the
    /// cache dir: unlike `scratch`, it outlives the run).
    pub downloads: &'a Path,
}

impl ExecCtx<'_> {
    /// The tag every image-producing node gives its result, so the engine
    /// keeps it (no dangling image to prune) and a cache hit can check it.
    pub fn node_tag(&self) -> String {
        format!("localhost/ov-node:{}", self.key)
    }

    /// Puts the file `name` that dependency `id` stored at `dest`,
    /// verified and without reading it into memory. `writable: false` may
    /// hard-link the store's own copy (mode 0444: never write to it);
    /// `true` gives a private copy (a reflink where the file system can).
    pub fn dep_blob(
        &self,
        id: &str,
        name: &str,
        dest: &Path,
        writable: bool,
    ) -> Result<(), ExecError> {
        let digest = self.dep_digest(id, name)?;
        self.blobs.place(&digest, dest, writable).map_err(at(dest))
    }

    /// Like [`ExecCtx::dep_blob`] with `writable: false`, but reading the
    /// blob back against its digest may be left to the check returned, to
    /// run beside work that does not yet read `dest` (a gigabyte rootfs
    /// checked while a disk is partitioned). The rule must run the check
    /// and fail on its error before it returns an output made from `dest`.
    pub fn dep_blob_unchecked(
        &self,
        id: &str,
        name: &str,
        dest: &Path,
    ) -> Result<super::backend::PendingCheck, ExecError> {
        let digest = self.dep_digest(id, name)?;
        self.blobs.place_unchecked(&digest, dest).map_err(at(dest))
    }

    /// The digest of the file `name` that dependency `id` stored.
    fn dep_digest(&self, id: &str, name: &str) -> Result<ov_cache::BlobDigest, ExecError> {
        self.deps
            .get(id)
            .and_then(|o| o.stored.iter().find(|(n, _)| n == name))
            .map(|(_, d)| *d)
            .ok_or_else(|| ExecError::Spec(format!("{}: `{id}` stored no `{name}`", self.node_id)))
    }

    /// The image of the dependency named `id`.
    pub fn dep_image(&self, id: &str) -> Result<&ImageId, ExecError> {
        self.deps
            .get(id)
            .and_then(|o| o.image.as_ref())
            .ok_or_else(|| ExecError::Spec(format!("{}: no image from `{id}`", self.node_id)))
    }
}
