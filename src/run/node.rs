//! One node of a build: key it from what its dependencies produced, look
//! the key up in the store, and run the node's rule only on a miss.
//!
//! The order of the steps is what keeps the cache honest: a result is
//! recorded only after the rule succeeded and every file it names is in the
//! CAS; a failed or cancelled node records nothing; a corrupt entry is
//! reported, evicted by the store and rebuilt, never used. A miss is claimed
//! (see `claim`) and looked up again before the rule runs, so processes
//! sharing a store build each key once.

use super::Shared;
use crate::plan::{keys, PlanNode};
use ov_cache::{ActionResult, BlobRef, Lookup};
use ov_cache::{Digest, NodeKey};
use ov_rules::engine::{EnginePlatform, ImageId};
use ov_rules::oci;
use ov_rules::rule::{Caching, ExecCtx, ExecError, NodeOutput, Restore};
use ov_rules::{NodeKind, NodeSpec};
use petgraph::graph::NodeIndex;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How a node ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Its rule ran.
    Built,
    /// Its key was in the local store.
    Cached,
    /// Its key was restored from the remote cache.
    Remote,
    /// A node that is always re-checked (an external base, a source tree).
    Checked,
}

impl Done {
    /// The word progress shows.
    pub fn word(self) -> &'static str {
        match self {
            Done::Built => "built",
            Done::Cached => "cached",
            Done::Remote => "remote",
            Done::Checked => "checked",
        }
    }
}

/// Why a node failed: a message and the output of the failing step.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What failed.
    pub message: String,
    /// Output of the failing step.
    pub output: String,
    /// True when it stopped because of Ctrl-C.
    pub cancelled: bool,
}

impl Failure {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            output: String::new(),
            cancelled: false,
        }
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Self {
        let cancelled = e.is_cancelled();
        match e {
            ExecError::Failed { message, output } => Failure {
                message,
                output,
                cancelled,
            },
            ExecError::Engine(ov_rules::engine::EngineError::Build { message, log }) => Failure {
                message,
                output: log,
                cancelled,
            },
            other => Failure {
                message: other.to_string(),
                output: String::new(),
                cancelled,
            },
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the store's blocking calls off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::new(format!("internal error: {e}")))
}

/// The node's spec: one a saved plan kept is read here, on first use.
fn spec_of(node: &PlanNode) -> Result<&NodeSpec, Failure> {
    node.spec
        .get()
        .map_err(|e| Failure::new(format!("{}: {e}", node.id)))
}

/// An image node's tag; `None` for the other kinds.
fn image_tag(node: &PlanNode) -> Result<Option<&str>, Failure> {
    if node.kind() != NodeKind::Image {
        return Ok(None);
    }
    Ok(match spec_of(node)? {
        NodeSpec::Image(image) => Some(&image.tag),
        _ => None,
    })
}

/// Builds, or finds in the cache, node `ix`.
pub async fn run(
    sh: Arc<Shared>,
    ix: NodeIndex,
    cancel: CancellationToken,
) -> Result<Done, Failure> {
    let started = Instant::now();
    let node = &sh.ws.plan.graph[ix];
    if let Some(tree) = keys::source_output(&sh.ws.plan, &sh.ws.trees, ix) {
        sh.set_output(
            ix,
            NodeOutput {
                digest: format!("blake3:{}", blake3::Hash::from(tree).to_hex()),
                ..Default::default()
            },
        );
        return Ok(Done::Checked);
    }
    let platform = if keys::uses_engine(&node.spec) {
        sh.platform()
            .await
            .map_err(|e| Failure::new(format!("{}: {e}", node.id)))?
    } else {
        EnginePlatform::unknown()
    };
    let (key, manifest) = {
        let outputs = sh.outputs.lock().map_err(|_| Failure::new("poisoned"))?;
        keys::node_key(&sh.ws.plan, &sh.ws.trees, &sh.dirs, &platform, ix, |d| {
            keys::source_output(&sh.ws.plan, &sh.ws.trees, d)
                .or_else(|| {
                    outputs[d.index()]
                        .as_ref()
                        .map(|o| keys::output_bytes(&o.digest))
                })
                .unwrap_or([0; 32])
        })
    };
    if let Ok(mut keys) = sh.run_keys.lock() {
        keys[ix.index()] = Some((key, manifest.clone()));
    }
    let deps = dep_outputs(&sh, ix);
    let (last_image, holder) = if let Some(tag) = image_tag(node)? {
        let sh2 = sh.clone();
        let last = blocking(move || super::tags::last_image(&sh2, ix)).await?;
        (last, super::tags::holder(&sh, ix, tag).await?)
    } else {
        (None, None)
    };
    // External bases are re-resolved every time: a ref can move.
    let every_build = node.spec.caching() == Caching::EveryBuild;
    let cacheable = !every_build && !sh.refresh.contains(&ix);
    // Held until the result is recorded (or the node fails), so another
    // process building the same key waits for it instead of duplicating it.
    let mut _claim = None;
    // A refreshed node builds its key again: it holds the claim like any
    // build, so gc does not take the image before it is recorded.
    if !cacheable && !every_build && !sh.read_only {
        _claim = super::claim::claim(&sh, ix, &key, &cancel).await?;
    }
    if cacheable {
        let (h, l) = (holder.as_ref(), last_image.as_ref());
        if let Some(done) = look_up(&sh, ix, &key, h, l, &cancel).await? {
            return Ok(done);
        }
        if !sh.read_only {
            _claim = super::claim::claim(&sh, ix, &key, &cancel).await?;
        }
        // Whoever held the claim before us has likely recorded the key.
        if let Some(done) = look_up(&sh, ix, &key, h, l, &cancel).await? {
            return Ok(done);
        }
        // Restored into the local store, a remote hit goes through the
        // local checks like any hit (an image must still be in the engine).
        if super::remote::restore(&sh, ix, &key).await {
            if let Some(done) = look_up(&sh, ix, &key, h, l, &cancel).await? {
                return Ok(match done {
                    Done::Cached => Done::Remote,
                    other => other,
                });
            }
        }
    }
    let listed = match (node.kind(), sh.images.get()) {
        (NodeKind::Base, Some(images)) => match spec_of(node)? {
            NodeSpec::Base(base) => base.from_snapshot(images),
            _ => None,
        },
        _ => None,
    };
    if let Some(out) = listed {
        return settle_base(&sh, ix, key, manifest, out, started.elapsed()).await;
    }
    let engine = sh.engine().await.map_err(|e| Failure::new(e.to_string()))?;
    // Journal the node tag only when this run is about to create it. Tags
    // are content-addressed, so another cache dir (or an earlier run) may
    // already hold this one for a result it recorded; a sweep after this
    // run dies must not take it from them.
    if node.spec.tags_node_image()
        && engine
            .image_id(&format!("localhost/ov-node:{key}"))
            .await
            .map_err(|e| Failure::new(format!("{}: {e}", node.id)))?
            .is_none()
    {
        super::debris::note(&sh.scratch, &key)
            .map_err(|e| Failure::new(format!("{}: {e}", sh.scratch.display())))?;
    }
    let scratch = sh
        .scratch
        .join(format!("{}-{}", node.kind(), key.short(16)));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Failure::new(format!("{}: {e}", scratch.display())))?;
    let layer_dir = node
        .layer
        .as_ref()
        .and_then(|l| sh.ws.layer_dirs.get(l))
        .cloned();
    let progress = sh.progress.clone();
    let id = node.id.clone();
    let mut on_line = move |l: &str| progress.line(&id, l);
    let mut ctx = ExecCtx {
        engine: &*engine,
        node_id: &node.id,
        key: &key,
        deps: &deps,
        layer_dir: layer_dir.as_deref().filter(|d| !d.as_os_str().is_empty()),
        project_root: &sh.ws.root,
        scratch: &scratch,
        run_id: &sh.run_id,
        cancel: &cancel,
        quirks: &sh.quirks,
        on_line: &mut on_line,
        blobs: &*sh.store,
        vm_state: &sh.vm_state,
        downloads: &sh.downloads,
    };
    let result = spec_of(node)?.execute(&mut ctx).await;
    if node.spec.tags_node_image() {
        sh.engine_builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e.into());
        }
    };
    let took = started.elapsed();
    if every_build {
        let _ = std::fs::remove_dir_all(&scratch);
        return settle_base(&sh, ix, key, manifest, out, took).await;
    }
    if let Some(tag) = image_tag(node)? {
        // The executor leaves the user's tag to the driver: a `tag: auto`
        // image gets this run's calver, which its key does not see.
        let (before, last) = (holder.as_ref(), last_image.as_ref());
        super::tags::settle(&sh, ix, tag, &out, false, before, last).await?;
    }
    let mut out = out;
    let export_started = Instant::now();
    let parts = store_parts(&sh, ix, &*engine, &out).await;
    if let (Some(p), Some(m)) = (&parts, out.meta.as_object_mut()) {
        // What keeping the image cost, for `ov explain` and BUILD.md's figures.
        m.insert(
            "oci_export".into(),
            json!({"ms": export_started.elapsed().as_millis() as u64, "layers": p.layers.len()}),
        );
    }
    let recorded = record(&sh, ix, key, manifest, &out, parts.as_ref(), took, true).await;
    let recorded = recorded.map(|(stored, digest)| {
        out.digest = digest;
        stored
    });
    if let (Ok(_), Some(_), Some(cache)) = (&recorded, &parts, &sh.image_cache) {
        cache.publish(&sh, &key).await;
    }
    if recorded.is_ok() {
        super::remote::upload_later(&sh, ix, key);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    out.stored = recorded?;
    sh.set_output(ix, out);
    Ok(Done::Built)
}

/// Looks `key` up in the store: `Some(Cached)` when its result is there
/// and still usable (the output is set), `None` to build it.
async fn look_up(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: &NodeKey,
    holder: Option<&ImageId>,
    last_image: Option<&ImageId>,
    cancel: &CancellationToken,
) -> Result<Option<Done>, Failure> {
    let node = &sh.ws.plan.graph[ix];
    let get = || {
        let (store, k) = (sh.store.clone(), *key);
        blocking(move || store.get_action(&k))
    };
    let mut found = get().await?;
    if let (Ok(Lookup::Miss), Some(cache)) = (&found, &sh.image_cache) {
        if spec_of(node)?.restore() == Restore::Oci && cache.fetch(sh, key).await {
            found = get().await?;
        }
    }
    match found {
        Ok(Lookup::Hit(r)) => {
            if let Some(out) = reuse(sh, ix, key, &r, cancel).await? {
                if let Some(tag) = image_tag(node)? {
                    super::tags::settle(sh, ix, tag, &out, false, holder, last_image).await?;
                }
                sh.set_output(ix, out);
                sh.saved_ms
                    .fetch_add(r.duration_ms, std::sync::atomic::Ordering::Relaxed);
                return Ok(Some(Done::Cached));
            }
        }
        Ok(Lookup::Corrupt { reason }) => sh.progress.warn(&format!(
            "{}: the cached result was corrupt ({reason}); it was removed and the node is rebuilt",
            node.id
        )),
        Ok(Lookup::Miss) => {}
        Err(e) => sh.progress.warn(&format!(
            "{}: cache lookup failed ({e}); rebuilding",
            node.id
        )),
    }
    Ok(None)
}

/// Finishes a base node. Not a cache entry (a ref is re-resolved every
/// build), but what it resolved to is remembered so `--dry-run` can
/// predict the keys built on it.
async fn settle_base(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: NodeKey,
    manifest: ov_rules::Manifest,
    out: NodeOutput,
    took: Duration,
) -> Result<Done, Failure> {
    let store = sh.store.clone();
    let id = sh.ws.plan.graph[ix].id.clone();
    let same = blocking(move || store.last(&id))
        .await?
        .ok()
        .flatten()
        .is_some_and(|(k, r)| k == key && r.output == out.digest);
    // Unchanged: leave the record (and the store's generation) alone.
    if !same {
        if let Err(f) = record(sh, ix, key, manifest, &out, None, took, false).await {
            sh.progress
                .warn(&format!("{}: {}", sh.ws.plan.graph[ix].id, f.message));
        }
    }
    sh.set_output(ix, out);
    Ok(Done::Checked)
}

/// Turns a cache hit back into an output, checking what lives outside the
/// store: an image must still be in the engine, else the rule says what
/// to do ([`Restore`]: run again, re-import a blob from the CAS, as a
/// bootstrap rootfs is, or load the image's OCI parts). `None` means
/// "rebuild".
async fn reuse(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: &NodeKey,
    r: &ActionResult,
    cancel: &CancellationToken,
) -> Result<Option<NodeOutput>, Failure> {
    let image = r.meta.get("image").and_then(Json::as_str).map(ImageId::new);
    let out = NodeOutput {
        digest: r.output.clone(),
        image: image.clone(),
        meta: r.meta.clone(),
        stored: stored_blobs(r),
        ..Default::default()
    };
    let Some(image) = image else {
        return Ok(Some(out));
    };
    // The build's image list answers for most hits; only what it does not
    // show is asked for (an image listed under no tag, a list that failed).
    if sh.images.get().is_some_and(|l| l.has(&image)) {
        return Ok(Some(out));
    }
    let engine = sh.engine().await.map_err(|e| Failure::new(e.to_string()))?;
    if engine
        .image_id(image.as_str())
        .await
        .map_err(|e| Failure::new(e.to_string()))?
        .is_some()
    {
        return Ok(Some(out));
    }
    let node = &sh.ws.plan.graph[ix];
    let tag = format!("localhost/ov-node:{key}");
    let blob = match spec_of(node)?.restore() {
        Restore::Rerun => None,
        Restore::Import { blob } => {
            // An import is a new image id every time, so another cache dir
            // that imported this key's rootfs recorded another id. Its node
            // tag names the key: take what it holds rather than import the
            // gigabyte again (and untag the other's).
            let tagged = engine
                .image_id(&tag)
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
            if let Some(id) = tagged {
                return Ok(Some(imported(sh, ix, key, r, out, id).await?));
            }
            r.blobs.iter().find(|b| b.name == blob)
        }
        Restore::Oci => {
            let loaded = restore_parts(sh, ix, key, r, &image, &*engine, cancel).await?;
            return Ok(loaded.then_some(out));
        }
    };
    let Some(blob) = blob else {
        sh.progress.warn(&format!(
            "{}: image {image} is cached but no longer in the engine; rebuilding",
            node.id
        ));
        return Ok(None);
    };
    // Restore a bootstrapped base from the CAS instead of re-running it.
    let path = sh.scratch.join(format!("restore-{}", key.short(16)));
    let store = sh.store.clone();
    let d = blob.digest;
    let p = path.clone();
    if let Err(e) = blocking(move || store.blob_to_file(&d, &p)).await? {
        sh.progress.warn(&format!(
            "{}: cannot restore the rootfs ({e}); rebuilding",
            node.id
        ));
        return Ok(None);
    }
    let id = engine
        .import(&path, &tag)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let _ = std::fs::remove_file(&path);
    sh.engine_builds
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some(imported(sh, ix, key, r, out, id).await?))
}

/// The hit `r` with its rootfs now in the engine as image `id` under the
/// node tag (imported by this build, or found there).
async fn imported(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: &NodeKey,
    r: &ActionResult,
    mut out: NodeOutput,
    id: ImageId,
) -> Result<NodeOutput, Failure> {
    let node = &sh.ws.plan.graph[ix];
    // The node tag is this store's again; gc may take it back.
    if let Err(e) = super::owned::mark(&sh.store, key) {
        sh.progress
            .warn(&format!("{}: cannot note its node tag: {e}", node.id));
    }
    out.image = Some(id.clone());
    if let Some(m) = out.meta.as_object_mut() {
        m.insert("image".into(), json!(id));
    }
    // Recorded again under the new id: left naming the old one, the next
    // build would find that gone and import once more, every build, each
    // import leaving the last one's gigabyte behind untagged.
    if !sh.read_only {
        let mut again = r.clone();
        again.meta = out.meta.clone();
        let (store, k) = (sh.store.clone(), *key);
        if let Err(e) = blocking(move || store.put_action(&k, &again)).await? {
            sh.progress.warn(&format!(
                "{}: cannot record its re-imported image: {e}",
                node.id
            ));
        }
    }
    Ok(out)
}

/// Loads the OCI parts hit `r` recorded back into the engine as the node
/// tag, with the recorded id `image`. False (said as a warning) when there
/// are none or they do not load: the node is rebuilt.
async fn restore_parts(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: &NodeKey,
    r: &ActionResult,
    image: &ImageId,
    engine: &dyn ov_rules::rule::ContainerEngine,
    cancel: &CancellationToken,
) -> Result<bool, Failure> {
    let node = &sh.ws.plan.graph[ix];
    let blobs: Vec<_> = r
        .blobs
        .iter()
        .map(|b| (b.name.clone(), b.digest, b.size))
        .collect();
    let store = sh.store.clone();
    let parts = blocking(move || oci::recorded(&blobs, &store)).await?;
    let parts = match parts {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            sh.progress.warn(&format!(
                "{}: image {image} left the engine and its stored parts are unusable ({e}); rebuilding",
                node.id
            ));
            return Ok(false);
        }
        None => {
            sh.progress.warn(&format!(
                "{}: image {image} is cached but no longer in the engine; rebuilding",
                node.id
            ));
            return Ok(false);
        }
    };
    // The load creates the node tag: journaled like a build's, so a run
    // killed mid-load leaves nothing gc does not know of.
    super::debris::note(&sh.scratch, key)
        .map_err(|e| Failure::new(format!("{}: {e}", sh.scratch.display())))?;
    let tag = format!("localhost/ov-node:{key}");
    let scratch = sh.scratch.join(format!("load-{}", key.short(16)));
    let loaded = oci::load(
        engine,
        &parts,
        &tag,
        image,
        sh.store.clone(),
        &scratch,
        cancel,
    )
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = loaded {
        if cancel.is_cancelled() {
            return Err(Failure {
                message: "cancelled".into(),
                output: String::new(),
                cancelled: true,
            });
        }
        sh.progress.warn(&format!(
            "{}: cannot load image {image} from the cache ({e}); rebuilding",
            node.id
        ));
        return Ok(false);
    }
    if let Err(e) = super::owned::mark(&sh.store, key) {
        sh.progress
            .warn(&format!("{}: cannot note its node tag: {e}", node.id));
    }
    sh.images_restored
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(true)
}

/// Exports the image a node just built into the CAS as OCI parts, when its
/// rule restores hits that way. A failure costs the cache only that: it
/// is said, and a later hit without the image rebuilds it.
async fn store_parts(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    engine: &dyn ov_rules::rule::ContainerEngine,
    out: &NodeOutput,
) -> Option<oci::Parts> {
    let node = &sh.ws.plan.graph[ix];
    let image = out.image.as_ref()?;
    if sh.read_only || !matches!(node.spec.get().map(NodeSpec::restore), Ok(Restore::Oci)) {
        return None;
    }
    match oci::export(engine, image.as_str(), sh.store.clone()).await {
        Ok(p) => Some(p),
        Err(e) => {
            sh.progress.warn(&format!(
                "{}: cannot keep image {image} in the cache ({e}); if it leaves the engine it is rebuilt",
                node.id
            ));
            None
        }
    }
}

/// Stores the node's files (and the OCI parts of its image, stored
/// already), then its result, then the last-run pointer. Gives back what
/// was stored and the node's output digest (its file's CAS digest when the
/// rule asked for that, see [`NodeOutput::digest_of`]).
#[allow(clippy::too_many_arguments)]
async fn record(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: NodeKey,
    manifest: ov_rules::Manifest,
    out: &NodeOutput,
    parts: Option<&oci::Parts>,
    took: Duration,
    cache: bool,
) -> Result<(Vec<(String, ov_cache::BlobDigest)>, String), Failure> {
    // The file whose CAS digest is the output's, when the rule named one.
    let digest_file = out
        .digest_of
        .as_ref()
        .map(|name| {
            out.files.iter().find(|(n, _)| n == name).cloned().ok_or_else(|| {
                Failure::new(format!(
                    "internal error: the output's digest is its file `{name}`, which it does not have"
                ))
            })
        })
        .transpose()?;
    if sh.read_only {
        // Nothing is stored, but dependents still key on the file's digest.
        let digest = match digest_file {
            Some((_, path)) => {
                blocking(move || {
                    ov_cache::sha256_file(&path)
                        .map(|(d, _)| file_output(&d))
                        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))
                })
                .await??
            }
            None => out.digest.clone(),
        };
        return Ok((Vec::new(), digest));
    }
    let node = &sh.ws.plan.graph[ix];
    let store = sh.store.clone();
    // The executors of these kinds tag their image `localhost/ov-node:<key>`.
    let owns_tag = out.image.is_some() && node.spec.tags_node_image();
    let files = out.files.clone();
    let scratch = sh.scratch.clone();
    let log = out.log.clone();
    let mut meta = match &out.meta {
        Json::Object(m) => Json::Object(m.clone()),
        _ => json!({}),
    };
    if let Some(m) = meta.as_object_mut() {
        if let Some(img) = &out.image {
            m.insert("image".into(), json!(img));
        }
        // Kept for `ov explain`, which names the spec fields that changed.
        if let Ok(spec) = node.spec.get() {
            m.insert("spec".into(), spec.to_json());
        }
    }
    let result = ActionResult {
        node_id: node.id.clone(),
        kind: node.kind().to_string(),
        output: out.digest.clone(),
        blobs: parts
            .map(|p| {
                p.named()
                    .into_iter()
                    .map(|(name, part)| BlobRef {
                        name,
                        digest: part.digest,
                        size: part.size,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        duration_ms: took.as_millis() as u64,
        finished_unix_ms: now_ms(),
        manifest: manifest
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.digest.clone()))
            .collect(),
        meta,
    };
    // Before the result: gc then never meets a recorded node tag this
    // cache dir does not know it holds (a mark whose record failed is a
    // tag gc may take, as it should).
    if owns_tag {
        super::owned::mark(&store, &key)
            .map_err(|e| Failure::new(format!("{}: {e}", super::owned::dir(&store).display())))?;
    }
    blocking(
        move || -> Result<(Vec<(String, ov_cache::BlobDigest)>, String), ov_cache::Error> {
            let mut result = result;
            for (name, path) in &files {
                // A file in the run's scratch dir is the node's own and is
                // removed after this anyway: moved in, not copied.
                let (digest, size) = if path.starts_with(&scratch) {
                    store.put_blob_file_owned(path)?
                } else {
                    store.put_blob_file(path)?
                };
                result.blobs.push(BlobRef {
                    name: name.clone(),
                    digest,
                    size,
                });
                if digest_file.as_ref().is_some_and(|(n, _)| n == name) {
                    result.output = file_output(&digest);
                }
            }
            if !log.is_empty() {
                let digest = store.put_blob_bytes(log.as_bytes())?;
                result.blobs.push(BlobRef {
                    name: "log".into(),
                    digest,
                    size: log.len() as u64,
                });
            }
            if cache {
                store.put_action(&key, &result)?;
            }
            store.record_last(&result.node_id, &key, &result)?;
            Ok((stored_blobs(&result), result.output))
        },
    )
    .await?
    // The failure is shown under the node's id already.
    .map_err(|e| Failure::new(format!("could not record the result: {e}")))
}

/// The output digest of a node whose output is its file of CAS digest `d`
/// ([`NodeOutput::digest_of`]).
fn file_output(d: &ov_cache::BlobDigest) -> String {
    format!("sha256:{d}")
}

/// A result's files by name, for dependents' [`ExecCtx::dep_blob`].
fn stored_blobs(r: &ActionResult) -> Vec<(String, ov_cache::BlobDigest)> {
    r.blobs.iter().map(|b| (b.name.clone(), b.digest)).collect()
}

/// The outputs of `ix`'s dependencies, by node id.
pub fn dep_outputs(sh: &Shared, ix: NodeIndex) -> HashMap<String, NodeOutput> {
    let g = &sh.ws.plan.graph;
    let outputs = match sh.outputs.lock() {
        Ok(o) => o,
        Err(p) => p.into_inner(),
    };
    g.neighbors_directed(ix, petgraph::Direction::Incoming)
        .filter_map(|d| Some((g[d].id.clone(), outputs[d.index()].clone()?)))
        .collect()
}
