//! The container engine, through bollard and the Docker-compatible API
//! (podman's service socket by default, Docker's through `DOCKER_HOST`).
//!
//! Only what the rules need: build a Containerfile on a context tar, import
//! a rootfs tarball, run a throwaway container, look images up. Every call
//! has a time-out and every long call stops on its cancellation token, so a
//! hung engine or a Ctrl-C never hangs ov. Containers ov starts carry the
//! label [`RUN_LABEL`] so a later run can remove what a killed run left.

use crate::images::{ImageSnapshot, ListedImage};
use crate::ping::Pong;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::{body_stream, body_try_stream, Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use crate::context::ContextTar;

/// The label every container ov starts carries; its value is the run id.
pub const RUN_LABEL: &str = "org.overthinkos.ov.run";

/// The default socket: podman's rootful API service.
pub const PODMAN_SOCKET: &str = "unix:///run/podman/podman.sock";

/// An engine image id (`sha256:<hex>` as the engine reports it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageId(String);

impl ImageId {
    /// Wraps an id the engine reported, adding the `sha256:` prefix podman's
    /// compat API sometimes leaves out.
    pub fn new(id: &str) -> Self {
        if id.contains(':') {
            ImageId(id.to_string())
        } else {
            ImageId(format!("sha256:{id}"))
        }
    }
    /// The bare hex, as `FROM` accepts it on every engine.
    pub fn hex(&self) -> &str {
        self.0.rsplit(':').next().unwrap_or(&self.0)
    }
    /// The full text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers at the endpoint.
    #[error("cannot reach the container engine at {endpoint}: {message}\n  fix: run `ov doctor`, or start the service (`podman system service --time=0 {PODMAN_SOCKET} &`)")]
    Connect {
        /// Where we looked.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The connection to the engine broke or was refused in the middle of
    /// a build: the service died or was restarted.
    #[error("the container engine went away during {what}: {source}\n  fix: run `ov doctor`; if the service is down, restart it (`podman system service --time=0 {PODMAN_SOCKET} &`) and build again (the next build removes what this one left)")]
    Gone {
        /// Which call.
        what: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An engine call failed.
    #[error("{what}: {source}")]
    Api {
        /// Which call.
        what: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A build step failed; `log` is the build's output up to the failure.
    #[error("{message}")]
    Build {
        /// The engine's message.
        message: String,
        /// Output of the build.
        log: String,
    },
    /// The call took longer than its time-out.
    #[error("{what} timed out after {secs} s")]
    Timeout {
        /// Which call.
        what: String,
        /// The time-out.
        secs: u64,
    },
    /// The run was cancelled (Ctrl-C).
    #[error("cancelled")]
    Cancelled,
    /// A local file could not be read or packed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    let what = what.into();
    move |source| {
        if is_transport(&source) {
            EngineError::Gone { what, source }
        } else {
            EngineError::Api { what, source }
        }
    }
}

/// True for errors of the connection itself (refused, reset, closed
/// mid-answer), as opposed to an answer the engine gave.
fn is_transport(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::SocketNotFoundError(_)
    )
}

/// One image as [`Engine::image_usage`] describes it.
#[derive(Clone, Debug)]
pub struct ImageUsage {
    /// Its id.
    pub id: ImageId,
    /// Every `repo:tag` pointing at it (none: dangling).
    pub tags: Vec<String>,
    /// Bytes of all its layers, those it shares with other images included.
    pub size: u64,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// Which engine answers, for keys (the engine shapes image output) and doctor.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineIdentity {
    /// `podman` or `docker`.
    pub kind: String,
    /// Its version.
    pub version: String,
    /// The API version it speaks.
    pub api_version: String,
}

/// What of the engine can change the images it builds: its kind, major
/// version and platform. Part of the key of every node that makes an
/// engine image, so an image built by podman 4 on amd64 is never reused
/// for docker, podman 5 or arm64.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnginePlatform {
    /// `podman` or `docker`.
    pub kind: String,
    /// The major version (`4`).
    pub major: String,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, … (Go's names, as engines report them).
    pub arch: String,
}

impl EnginePlatform {
    /// The stand-in used to predict keys before any build met an engine.
    pub fn unknown() -> Self {
        let u = || "unknown".to_string();
        EnginePlatform {
            kind: u(),
            major: u(),
            os: u(),
            arch: u(),
        }
    }

    /// From a ping's `Server` header (`Libpod/4.3.1 (linux)`,
    /// `Docker/24.0.5 (linux)`) of an engine on a local socket, which
    /// therefore runs on this machine's architecture.
    pub fn from_server_header(server: &str) -> Option<Self> {
        let (name, rest) = server.split_once('/')?;
        let (version, os) = rest.split_once(' ')?;
        let os = os.trim().strip_prefix('(')?.strip_suffix(')')?;
        let kind = match name.to_ascii_lowercase().as_str() {
            "libpod" => "podman",
            "docker" => "docker",
            _ => return None,
        };
        Some(EnginePlatform {
            kind: kind.to_string(),
            major: major_of(version)?,
            os: os.to_string(),
            arch: go_arch(std::env::consts::ARCH).to_string(),
        })
    }
}

/// The major version of `4.3.1`.
fn major_of(version: &str) -> Option<String> {
    let m = version.trim().split('.').next()?;
    (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then(|| m.to_string())
}

/// Rust's name of an architecture as Go (and so every engine) spells it.
fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A file to build: Containerfile text plus its context.
pub struct BuildRequest {
    /// The Containerfile.
    pub containerfile: String,
    /// The context (the layer's directory plus generated files).
    pub context: ContextTar,
    /// The tag to give the result.
    pub tag: String,
    /// Labels for the build's containers.
    pub labels: HashMap<String, String>,
}

/// A throwaway container to run.
#[derive(Default)]
pub struct RunSpec {
    /// Image to run.
    pub image: String,
    /// Shell script run with `/bin/sh -c`.
    pub script: String,
    /// Privileged (loop devices, debootstrap's mounts).
    pub privileged: bool,
    /// Run as this user instead of the image's.
    pub user: Option<String>,
    /// `host:container[:opts]` bind mounts.
    pub binds: Vec<String>,
    /// The run id, for [`RUN_LABEL`].
    pub run_id: String,
    /// Time-out.
    pub timeout: Option<Duration>,
}

/// What a container printed and how it ended.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code (0 = success).
    pub exit_code: i64,
    /// stdout and stderr, interleaved as the engine gave them.
    pub output: String,
}

/// A connected engine. Clones share one count of the API calls made, so a
/// build can report (and a test bound) what a no-op costs.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    calls: Arc<AtomicUsize>,
    created: Arc<AtomicUsize>,
    pong: Pong,
    /// The unix socket, when the endpoint is one (for libpod calls).
    socket: Option<String>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: u64 = 600;

async fn timed<T>(
    what: &str,
    secs: u64,
    fut: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .map_err(|_| EngineError::Timeout {
            what: what.to_string(),
            secs,
        })?
}

impl Engine {
    /// The endpoint to use: `DOCKER_HOST` (as Docker's own tools honour
    /// it), else `configured` (the user's setting), else podman's socket.
    pub fn endpoint(configured: Option<&str>) -> String {
        std::env::var("DOCKER_HOST")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| configured.map(str::to_string))
            .unwrap_or_else(|| PODMAN_SOCKET.to_string())
    }

    /// Connects and checks the engine answers.
    pub async fn connect(endpoint: &str) -> Result<Engine, EngineError> {
        // Endpoints may carry credentials (`tcp://user:pass@host`), and
        // bollard's messages repeat them.
        let fail = |message: String| EngineError::Connect {
            endpoint: ov_cache::redact(endpoint),
            message: ov_cache::redact(&message),
        };
        let docker = if endpoint.starts_with("unix://") || endpoint.starts_with('/') {
            Docker::connect_with_unix(endpoint, CALL_TIMEOUT, API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_http(endpoint, CALL_TIMEOUT, API_DEFAULT_VERSION)
        }
        .map_err(|e| fail(e.to_string()))?;
        let engine = |pong| Engine {
            docker: docker.clone(),
            calls: Arc::new(AtomicUsize::new(1)),
            created: Arc::new(AtomicUsize::new(0)),
            pong,
            socket: crate::ping::unix_path(endpoint).map(str::to_string),
        };
        // On a socket, the ping that checks the engine answers also reads
        // its headers (podman's version); elsewhere bollard pings.
        if let Some(path) = crate::ping::unix_path(endpoint) {
            match tokio::time::timeout(CONNECT_TIMEOUT, crate::ping::ping_unix(path)).await {
                Ok(Ok(pong)) => return Ok(engine(pong)),
                Ok(Err(e)) => return Err(fail(e)),
                Err(_) => {
                    return Err(fail(format!(
                        "no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, docker.ping()).await {
            Ok(Ok(_)) => Ok(engine(Pong::default())),
            Ok(Err(e)) => Err(fail(e.to_string())),
            Err(_) => Err(fail(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// True when one list of every image is cheaper than a check per node
    /// (see [`crate::ping`]): every engine but podman before 5.
    pub fn cheap_image_list(&self) -> bool {
        self.pong.cheap_image_list()
    }

    /// The bollard client, counting the call about to be made.
    fn call(&self) -> &Docker {
        self.calls.fetch_add(1, Ordering::Relaxed);
        &self.docker
    }

    /// How many API calls this engine (and its clones) made, the connect
    /// ping included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many containers this engine (and its clones) created, so a run
    /// that started none need not look for its leftovers.
    pub fn containers_created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    /// Every tagged image the engine holds, in one call.
    pub async fn images(&self) -> Result<ImageSnapshot, EngineError> {
        // Tagged images only: with `all`, podman 4.3 lists every
        // intermediate image too, ten times slower (73 s against 7 s for
        // 1,066 images). An image that lost its tags but lives on as
        // another's parent is still found: a hit missing from the list
        // gets one inspect of its own.
        let list = timed("list images", 120, async {
            self.call()
                .list_images(Some(ListImagesOptionsBuilder::default().build()))
                .await
                .map_err(api("list images"))
        })
        .await?;
        Ok(ImageSnapshot::new(list.into_iter().map(|i| {
            ListedImage {
                id: ImageId::new(&i.id),
                // podman lists an untagged image as `<none>:<none>`.
                tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| !t.starts_with("<none>"))
                    .collect(),
                labels: i.labels,
            }
        })))
    }

    /// The image `reference` names (a tag or an id) with its size, tags,
    /// parent and labels; `None` when the engine has no such image. One
    /// inspect: unlike a list, its cost does not grow with the engine's
    /// other images.
    pub async fn image_usage(&self, reference: &str) -> Result<Option<ImageUsage>, EngineError> {
        let r = timed("inspect image", 60, async {
            Ok(self.call().inspect_image(reference).await)
        })
        .await?;
        let i = match r {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(api(format!("inspect image {reference}"))(e)),
        };
        Ok(Some(ImageUsage {
            id: ImageId::new(i.id.as_deref().unwrap_or(reference)),
            tags: i
                .repo_tags
                .unwrap_or_default()
                .into_iter()
                .filter(|t| !t.starts_with("<none>"))
                .collect(),
            size: i.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            labels: i.config.and_then(|c| c.labels).unwrap_or_default(),
        }))
    }

    /// Removes the tag `reference`, and the image when it was its last tag
    /// and no container uses it. `Ok(false)` when there was no such tag.
    pub async fn remove_tag(&self, reference: &str) -> Result<bool, EngineError> {
        let r = timed("remove image", 60, async {
            Ok(self
                .call()
                .remove_image(
                    reference,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await)
        })
        .await?;
        match r {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(api(format!("remove image {reference}"))(e)),
        }
    }

    /// The engine's kind and version.
    pub async fn identity(&self) -> Result<EngineIdentity, EngineError> {
        let v = timed("version", 30, async {
            self.call().version().await.map_err(api("version"))
        })
        .await?;
        let podman = v
            .components
            .iter()
            .flatten()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"));
        Ok(EngineIdentity {
            kind: if podman { "podman" } else { "docker" }.to_string(),
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
        })
    }

    /// The engine's [`EnginePlatform`]: from the connect ping's headers on a
    /// local socket (no call), else from one version call.
    pub async fn platform(&self) -> Result<EnginePlatform, EngineError> {
        if let Some(p) = self
            .pong
            .server
            .as_deref()
            .and_then(EnginePlatform::from_server_header)
        {
            return Ok(p);
        }
        let v = timed("version", 30, async {
            self.call().version().await.map_err(api("version"))
        })
        .await?;
        let podman = v
            .components
            .iter()
            .flatten()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"));
        let version = v.version.unwrap_or_default();
        Ok(EnginePlatform {
            kind: if podman { "podman" } else { "docker" }.to_string(),
            major: major_of(&version).unwrap_or(version),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        })
    }

    /// The image `reference` as a docker-archive tar (`manifest.json`, the
    /// config as `<id>.json`, each layer as an uncompressed tar), streamed.
    pub fn export_image<'a>(
        &'a self,
        reference: &'a str,
    ) -> futures_util::stream::BoxStream<'a, Result<bytes::Bytes, EngineError>> {
        let what = format!("export image {reference}");
        self.call()
            .export_image(reference)
            .map(move |r| r.map_err(api(what.clone())))
            .boxed()
    }

    /// Loads a docker-archive tar (what [`Engine::export_image`] gives, or
    /// one assembled from its parts); it tags what its `manifest.json` names.
    pub async fn load_image(
        &self,
        archive: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let opts = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut s = self.call().import_image_stream(opts, archive, None);
        timed("load image", CALL_TIMEOUT, async {
            loop {
                let item = tokio::select! {
                    _ = cancel.cancelled() => return Err(EngineError::Cancelled),
                    item = s.next() => item,
                };
                match item {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(api("load image")(e)),
                    Some(Ok(info)) => {
                        if let Some(e) = info.error_detail.and_then(|d| d.message) {
                            return Err(EngineError::Build {
                                message: format!("load image: {e}"),
                                log: String::new(),
                            });
                        }
                    }
                }
            }
        })
        .await
    }

    /// The engine's default OCI runtime, storage driver and root dir, for
    /// `ov doctor`.
    pub async fn runtime_info(&self) -> Result<(String, String, String), EngineError> {
        let i = timed("info", 30, async {
            self.call().info().await.map_err(api("info"))
        })
        .await?;
        Ok((
            i.default_runtime.unwrap_or_default(),
            i.driver.unwrap_or_default(),
            i.docker_root_dir.unwrap_or_default(),
        ))
    }

    /// The id of `reference` if the engine holds it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<ImageId>, EngineError> {
        let r = timed("inspect image", 60, async {
            Ok(self.call().inspect_image(reference).await)
        })
        .await?;
        match r {
            Ok(i) => Ok(i.id.as_deref().map(ImageId::new)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(api(format!("inspect image {reference}"))(e)),
        }
    }

    /// Tags `id` as `tag` (`repo:tag`).
    pub async fn tag(&self, id: &ImageId, tag: &str) -> Result<(), EngineError> {
        let (repo, t) = split_tag(tag);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(t)
            .build();
        timed("tag image", 60, async {
            self.call()
                .tag_image(id.as_str(), Some(opts))
                .await
                .map_err(api(format!("tag {id} as {tag}")))
        })
        .await
    }

    /// Builds a Containerfile; returns the new image's id. `on_line` gets
    /// each line of build output as it arrives.
    ///
    /// The engine gets one tar: the context plus the Containerfile as
    /// `.ov.Containerfile`. When the environment variable
    /// [`KEEP_CONTEXTS_ENV`] (`OV_KEEP_CONTEXTS=DIR`) is set, that tar is
    /// also unpacked to `DIR/<n>-<tag>/` before the build starts (`n` counts
    /// up from 000 in the order builds start, the tag with every character
    /// outside `[A-Za-z0-9._-]` as `_`), so another tool can build exactly
    /// what ov built (`bench/web.sh` does, against `podman build`).
    pub async fn build(
        &self,
        req: BuildRequest,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageId, EngineError> {
        // The Containerfile goes in under a name no layer uses.
        let mut ctx = req.context;
        ctx.add_file(".ov.Containerfile", req.containerfile.as_bytes(), 0o644)?;
        if let Some(dir) = std::env::var_os(KEEP_CONTEXTS_ENV).filter(|d| !d.is_empty()) {
            let tag = req.tag.clone();
            ctx = tokio::task::spawn_blocking(move || {
                keep_context(Path::new(&dir), &tag, &ctx).map(|_| ctx)
            })
            .await
            .map_err(std::io::Error::other)??;
        }
        // The tar is written while the engine reads it, never whole in memory.
        let (body, producer) = ctx.into_stream();
        let opts = BuildImageOptionsBuilder::default()
            .dockerfile(".ov.Containerfile")
            .t(&req.tag)
            .rm(true)
            .forcerm(true)
            .labels(&req.labels)
            .build();
        let mut log = String::new();
        let mut stream = self
            .call()
            .build_image(opts, None, Some(body_try_stream(body)));
        let mut failed = None;
        loop {
            // Cancelling drops the stream, and with it the body: the tar
            // writer stops at its next chunk.
            let item = tokio::select! {
                _ = cancel.cancelled() => return Err(EngineError::Cancelled),
                item = stream.next() => item,
            };
            let Some(item) = item else { break };
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream.as_deref().or(info.status.as_deref()) {
                        for line in s.lines() {
                            on_line(line);
                        }
                        log.push_str(s);
                    }
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        failed = Some(EngineError::Build {
                            message: e,
                            log: std::mem::take(&mut log),
                        });
                        break;
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    failed = Some(EngineError::Build {
                        message: error,
                        log: std::mem::take(&mut log),
                    });
                    break;
                }
                Err(e) => {
                    failed = Some(api("build")(e));
                    break;
                }
            }
        }
        drop(stream);
        // A context that could not be read is the cause of whatever the
        // engine said (and a success on a cut context is no success).
        match producer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(EngineError::Io(e)),
            Err(e) => return Err(EngineError::Io(std::io::Error::other(e))),
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.image_id(&req.tag)
            .await?
            .ok_or_else(|| EngineError::Build {
                message: format!("the engine reported success but has no image {}", req.tag),
                log,
            })
    }

    /// Pulls `reference` (`repo:tag` or `repo@sha256:…`) from its registry.
    pub async fn pull(
        &self,
        reference: &str,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut s = self.call().create_image(Some(opts), None, None);
        timed("pull", CALL_TIMEOUT, async {
            loop {
                let item = tokio::select! {
                    _ = cancel.cancelled() => return Err(EngineError::Cancelled),
                    item = s.next() => item,
                };
                match item {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(api(format!("pull {reference}"))(e)),
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
    }

    /// Imports a rootfs tarball (plain or gzip) as image `tag`.
    pub async fn import(&self, rootfs: &Path, tag: &str) -> Result<ImageId, EngineError> {
        // podman's compat import leaks a copy of every tarball; its own
        // endpoint does not (see `crate::libpod`).
        if let (Some(socket), Some(version)) = (&self.socket, &self.pong.libpod) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let imported = timed("import rootfs", CALL_TIMEOUT, async {
                crate::libpod::import(socket, version, rootfs, tag)
                    .await
                    .map_err(|e| EngineError::Build {
                        message: format!("import {}: {e}", rootfs.display()),
                        log: String::new(),
                    })
            })
            .await?;
            return self.image_id(tag).await?.ok_or_else(|| EngineError::Build {
                message: format!(
                    "import of {} made {imported} but no image {tag}",
                    rootfs.display()
                ),
                log: String::new(),
            });
        }
        let file = tokio::fs::File::open(rootfs).await?;
        let stream = tokio_util::io::ReaderStream::new(file).filter_map(|r| async { r.ok() });
        // podman ignores the `tag` parameter of an import; the tag must ride
        // in `repo`.
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(tag)
            .build();
        let mut s = self
            .call()
            .create_image(Some(opts), Some(body_stream(stream)), None);
        timed("import rootfs", CALL_TIMEOUT, async {
            while let Some(item) = s.next().await {
                if let Err(e) = item {
                    return Err(api(format!("import {}", rootfs.display()))(e));
                }
            }
            Ok(())
        })
        .await?;
        self.image_id(tag).await?.ok_or_else(|| EngineError::Build {
            message: format!("import of {} made no image {tag}", rootfs.display()),
            log: String::new(),
        })
    }

    /// Runs `spec.script` in a throwaway container and removes it, whatever
    /// happens (also on cancel).
    pub async fn run(
        &self,
        spec: &RunSpec,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, EngineError> {
        let labels = HashMap::from([(RUN_LABEL.to_string(), spec.run_id.clone())]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            // The image's own entrypoint (an init system) must not wrap the script.
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec![spec.script.clone()]),
            user: spec.user.clone(),
            labels: Some(labels),
            host_config: Some(HostConfig {
                privileged: Some(spec.privileged),
                binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.created.fetch_add(1, Ordering::Relaxed);
        let created = timed("create container", 120, async {
            self.call()
                .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
                .await
                .map_err(api(format!("create a container of {}", spec.image)))
        })
        .await?;
        let id = created.id;
        let result = self.run_created(&id, spec, cancel).await;
        let _ = self.remove_container(&id).await;
        result
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &RunSpec,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, EngineError> {
        timed("start container", 120, async {
            self.call()
                .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(api("start container"))
        })
        .await?;
        let limit = spec.timeout.unwrap_or(Duration::from_secs(3600));
        let exit_code = tokio::select! {
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            _ = tokio::time::sleep(limit) => return Err(EngineError::Timeout {
                what: format!("container of {}", spec.image), secs: limit.as_secs() }),
            r = self.wait_container(id) => r?,
        };
        let mut output = String::new();
        let mut logs = self.call().logs(
            id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        while let Some(Ok(chunk)) = logs.next().await {
            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(RunOutput { exit_code, output })
    }

    /// Waits for container `id` to stop; its exit code. On podman through
    /// its own endpoint: the compat one spins a core of the service for as
    /// long as the container runs (see `crate::libpod`).
    async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        if let (Some(socket), Some(version)) = (&self.socket, &self.pong.libpod) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            return crate::libpod::wait(socket, version, id)
                .await
                .map_err(api("wait for container"));
        }
        let mut wait = self.call().wait_container(id, None);
        match wait.next().await {
            Some(Ok(w)) => Ok(w.status_code),
            // bollard turns a non-zero exit into an error.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(api("wait for container")(e)),
            None => Ok(-1),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        timed("remove container", 60, async {
            self.call()
                .remove_container(id, Some(opts))
                .await
                .map_err(api("remove container"))
        })
        .await
    }

    /// Containers (running or not) carrying the label filter `label`.
    async fn labelled(
        &self,
        label: &str,
    ) -> Result<Vec<bollard::models::ContainerSummary>, EngineError> {
        let filters = HashMap::from([("label", vec![label])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        timed("list containers", 60, async {
            self.call()
                .list_containers(Some(opts))
                .await
                .map_err(api("list containers"))
        })
        .await
    }

    /// The run ids of every container ov started that still exists.
    pub async fn run_ids(&self) -> Result<Vec<String>, EngineError> {
        let mut ids: Vec<String> = self
            .labelled(RUN_LABEL)
            .await?
            .into_iter()
            .filter_map(|c| c.labels?.get(RUN_LABEL).cloned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Removes every container labelled with `run_id`, or with any run id
    /// when `None` (leftovers of runs that were killed).
    pub async fn remove_run_containers(&self, run_id: Option<&str>) -> Result<usize, EngineError> {
        let filter = match run_id {
            Some(r) => format!("{RUN_LABEL}={r}"),
            None => RUN_LABEL.to_string(),
        };
        let list = self.labelled(&filter).await?;
        let mut n = 0;
        for c in list {
            if let Some(id) = c.id {
                if self.remove_container(&id).await.is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

/// The environment variable naming a directory where [`Engine::build`]
/// keeps a copy of every build context it sends.
pub const KEEP_CONTEXTS_ENV: &str = "OV_KEEP_CONTEXTS";

/// Unpacks the context `ctx` of a build tagged `tag`, as the tar sent, into
/// `dir/<n>-<tag>/` and returns that directory; `n` (three digits or more)
/// is one more than the highest number already in `dir`, from 000. One
/// process numbers its builds in the order they start; two processes must
/// not share `dir`.
pub fn keep_context(
    dir: &Path,
    tag: &str,
    ctx: &ContextTar,
) -> std::io::Result<std::path::PathBuf> {
    static NUMBERING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let name: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = {
        let _guard = NUMBERING.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(dir)?;
        let mut n = 0usize;
        for entry in std::fs::read_dir(dir)? {
            let file_name = entry?.file_name();
            let file_name = file_name.to_string_lossy();
            if let Some(Ok(m)) = file_name.split('-').next().map(str::parse::<usize>) {
                n = n.max(m + 1);
            }
        }
        let out = dir.join(format!("{n:03}-{name}"));
        std::fs::create_dir(&out)?;
        out
    };
    // Through an unnamed temp file, not memory: a context can be large.
    let mut tar = ctx.write_to(tempfile::tempfile_in(dir)?)?;
    std::io::Seek::rewind(&mut tar)?;
    tar::Archive::new(tar).unpack(&out)?;
    Ok(out)
}

/// `registry/name:tag` → (`registry/name`, `tag`); `latest` when untagged.
pub fn split_tag(r: &str) -> (&str, &str) {
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => (&r[..i], &r[i + 1..]),
        _ => (r, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_keeps_registry_ports() {
        assert_eq!(split_tag("localhost:5000/x:1"), ("localhost:5000/x", "1"));
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(split_tag("a/b:c"), ("a/b", "c"));
    }

    #[test]
    fn platforms_come_from_the_server_header() {
        let p = EnginePlatform::from_server_header("Libpod/4.3.1 (linux)").unwrap();
        assert_eq!(
            (p.kind.as_str(), p.major.as_str(), p.os.as_str()),
            ("podman", "4", "linux")
        );
        assert_eq!(p.arch, go_arch(std::env::consts::ARCH));
        let d = EnginePlatform::from_server_header("Docker/24.0.5 (linux)").unwrap();
        assert_eq!((d.kind.as_str(), d.major.as_str()), ("docker", "24"));
        assert_eq!(EnginePlatform::from_server_header("nginx/1.22"), None);
        assert_eq!(
            EnginePlatform::from_server_header("Libpod/x.1 (linux)"),
            None
        );
        assert_eq!(go_arch("x86_64"), "amd64");
    }

    #[test]
    fn image_ids_take_a_prefix() {
        assert_eq!(ImageId::new("abc").as_str(), "sha256:abc");
        assert_eq!(ImageId::new("sha256:abc").hex(), "abc");
    }

    #[test]
    fn kept_contexts_are_numbered_copies_of_the_tar() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("index.html"), "page").unwrap();
        let mut t = ContextTar::new();
        t.add_dir(src.path()).unwrap();
        t.add_file(".ov/init/x.conf", b"conf", 0o644).unwrap();
        t.add_file(".ov.Containerfile", b"FROM scratch\n", 0o644)
            .unwrap();
        let keep = tempfile::tempdir().unwrap();
        let root = keep.path().join("ctx");
        let a = keep_context(&root, "localhost/ov-node:ab12", &t).unwrap();
        let b = keep_context(&root, "localhost/x:y", &t).unwrap();
        assert_eq!(a, root.join("000-localhost_ov-node_ab12"));
        assert_eq!(b, root.join("001-localhost_x_y"));
        let read = |p: &str| std::fs::read_to_string(a.join(p)).unwrap();
        assert_eq!(read("index.html"), "page");
        assert_eq!(read(".ov/init/x.conf"), "conf");
        assert_eq!(read(".ov.Containerfile"), "FROM scratch\n");
    }
}
