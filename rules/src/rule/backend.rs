//! The container engine as rules and the build driver use it.
//!
//! Executors and the driver hold a `&dyn ContainerEngine`, not the bollard
//! client, so the driver's logic (what a hit, a failure or a cancel does)
//! can be tested against a fake. [`Engine`] is the real one; the methods
//! mirror its own, which say what each call does.

use crate::engine::{
    BuildRequest, Engine, EngineError, EnginePlatform, ImageId, RunOutput, RunSpec,
};
use crate::images::ImageSnapshot;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// A container engine: builds, runs and tags images. Object-safe, so a
/// build holds one behind a pointer whatever it is.
pub trait ContainerEngine: Send + Sync {
    /// The id of the image `reference` names, `None` when there is none.
    fn image_id<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ImageId>, EngineError>>;
    /// Points `tag` at image `id`.
    fn tag<'a>(&'a self, id: &'a ImageId, tag: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    /// Builds a Containerfile on its context; `on_line` gets the log.
    fn build<'a>(
        &'a self,
        req: BuildRequest,
        cancel: &'a CancellationToken,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<ImageId, EngineError>>;
    /// Pulls `reference` from its registry.
    fn pull<'a>(
        &'a self,
        reference: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    /// Imports a rootfs tarball as image `tag`.
    fn import<'a>(
        &'a self,
        rootfs: &'a Path,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<ImageId, EngineError>>;
    /// Runs a script in a throwaway container.
    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutput, EngineError>>;
    /// Every tagged image, in one call.
    fn images(&self) -> BoxFuture<'_, Result<ImageSnapshot, EngineError>>;
    /// Removes a tag (and the image, when it was its last).
    fn remove_tag<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<bool, EngineError>>;
    /// The run ids of the containers ov started that still exist.
    fn run_ids(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>>;
    /// Removes the containers of run `run_id` (of every run when `None`).
    fn remove_run_containers<'a>(
        &'a self,
        run_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<usize, EngineError>>;
    /// What of the engine can change the images it builds (for keys).
    fn platform(&self) -> BoxFuture<'_, Result<EnginePlatform, EngineError>>;
    /// The image `reference` as a docker-archive tar, streamed.
    fn export_image<'a>(&'a self, reference: &'a str) -> BoxStream<'a, Result<Bytes, EngineError>>;
    /// Loads a docker-archive tar; it tags what its `manifest.json` names.
    fn load_image<'a>(
        &'a self,
        archive: BoxStream<'static, Result<Bytes, std::io::Error>>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    /// True when one list of every image is cheaper than a check per node.
    fn cheap_image_list(&self) -> bool;
    /// API calls made so far.
    fn calls(&self) -> usize;
    /// Containers created so far.
    fn containers_created(&self) -> usize;
}

impl ContainerEngine for Engine {
    fn image_id<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ImageId>, EngineError>> {
        Box::pin(Engine::image_id(self, reference))
    }
    fn tag<'a>(&'a self, id: &'a ImageId, tag: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::tag(self, id, tag))
    }
    fn build<'a>(
        &'a self,
        req: BuildRequest,
        cancel: &'a CancellationToken,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        Box::pin(Engine::build(self, req, cancel, on_line))
    }
    fn pull<'a>(
        &'a self,
        reference: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::pull(self, reference, cancel))
    }
    fn import<'a>(
        &'a self,
        rootfs: &'a Path,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        Box::pin(Engine::import(self, rootfs, tag))
    }
    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutput, EngineError>> {
        Box::pin(Engine::run(self, spec, cancel))
    }
    fn images(&self) -> BoxFuture<'_, Result<ImageSnapshot, EngineError>> {
        Box::pin(Engine::images(self))
    }
    fn remove_tag<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<bool, EngineError>> {
        Box::pin(Engine::remove_tag(self, reference))
    }
    fn run_ids(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        Box::pin(Engine::run_ids(self))
    }
    fn remove_run_containers<'a>(
        &'a self,
        run_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<usize, EngineError>> {
        Box::pin(Engine::remove_run_containers(self, run_id))
    }
    fn platform(&self) -> BoxFuture<'_, Result<EnginePlatform, EngineError>> {
        Box::pin(Engine::platform(self))
    }
    fn export_image<'a>(&'a self, reference: &'a str) -> BoxStream<'a, Result<Bytes, EngineError>> {
        Engine::export_image(self, reference)
    }
    fn load_image<'a>(
        &'a self,
        archive: BoxStream<'static, Result<Bytes, std::io::Error>>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::load_image(self, archive, cancel))
    }
    fn cheap_image_list(&self) -> bool {
        Engine::cheap_image_list(self)
    }
    fn calls(&self) -> usize {
        Engine::calls(self)
    }
    fn containers_created(&self) -> usize {
        Engine::containers_created(self)
    }
}

/// Where executors get the files their dependencies stored: the local
/// store, or a fake in tests. Object-safe for the same reason as
/// [`ContainerEngine`].
pub trait BlobPlacer: Send + Sync {
    /// Puts blob `digest` at `dest`, verified; see [`super::ExecCtx::dep_blob`]
    /// for what `writable` means.
    fn place(
        &self,
        digest: &ov_cache::BlobDigest,
        dest: &Path,
        writable: bool,
    ) -> std::io::Result<()>;

    /// Puts blob `digest` at `dest` read-only, as `place(…, false)` does,
    /// but may leave reading it back against its digest to the check it
    /// returns, so a long read overlaps other work (see
    /// [`super::ExecCtx::dep_blob_unchecked`]). The default checks now.
    fn place_unchecked(
        &self,
        digest: &ov_cache::BlobDigest,
        dest: &Path,
    ) -> std::io::Result<PendingCheck> {
        self.place(digest, dest, false)?;
        Ok(Box::new(|| Ok(())))
    }
}

/// A check of a placed blob still to run; see [`BlobPlacer::place_unchecked`].
pub type PendingCheck = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

impl BlobPlacer for ov_cache::Store {
    fn place(
        &self,
        digest: &ov_cache::BlobDigest,
        dest: &Path,
        writable: bool,
    ) -> std::io::Result<()> {
        let placed = if writable {
            self.blob_copy_to_file(digest, dest)
        } else {
            self.blob_to_file(digest, dest)
        };
        placed.map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn place_unchecked(
        &self,
        digest: &ov_cache::BlobDigest,
        dest: &Path,
    ) -> std::io::Result<PendingCheck> {
        let pending = self
            .blob_to_file_unchecked(digest, dest)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Box::new(move || match pending {
            Some(p) => p.check().map_err(|e| std::io::Error::other(e.to_string())),
            None => Ok(()),
        }))
    }
}

/// An engine for rules that must never reach one (disks from cloud images,
/// boots): every call panics naming the method, so a test of such a rule
/// fails loudly if it touches the engine.
pub struct NoEngine;

macro_rules! never {
    ($what:literal) => {
        panic!(concat!("this rule called the container engine: ", $what))
    };
}

impl ContainerEngine for NoEngine {
    fn image_id<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<ImageId>, EngineError>> {
        never!("image_id")
    }
    fn tag<'a>(&'a self, _: &'a ImageId, _: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        never!("tag")
    }
    fn build<'a>(
        &'a self,
        _: BuildRequest,
        _: &'a CancellationToken,
        _: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        never!("build")
    }
    fn pull<'a>(
        &'a self,
        _: &'a str,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        never!("pull")
    }
    fn import<'a>(
        &'a self,
        _: &'a Path,
        _: &'a str,
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        never!("import")
    }
    fn run<'a>(
        &'a self,
        _: &'a RunSpec,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutput, EngineError>> {
        never!("run")
    }
    fn images(&self) -> BoxFuture<'_, Result<ImageSnapshot, EngineError>> {
        never!("images")
    }
    fn remove_tag<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, EngineError>> {
        never!("remove_tag")
    }
    fn run_ids(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        never!("run_ids")
    }
    fn remove_run_containers<'a>(
        &'a self,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<usize, EngineError>> {
        never!("remove_run_containers")
    }
    fn platform(&self) -> BoxFuture<'_, Result<EnginePlatform, EngineError>> {
        never!("platform")
    }
    fn export_image<'a>(&'a self, _: &'a str) -> BoxStream<'a, Result<Bytes, EngineError>> {
        never!("export_image")
    }
    fn load_image<'a>(
        &'a self,
        _: BoxStream<'static, Result<Bytes, std::io::Error>>,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        never!("load_image")
    }
    fn cheap_image_list(&self) -> bool {
        never!("cheap_image_list")
    }
    fn calls(&self) -> usize {
        0
    }
    fn containers_created(&self) -> usize {
        0
    }
}
