//! The build driver's logic on a fake engine: what a hit, a failure, a
//! vanished image and a cancel do to engine calls and to the store. The
//! real engine's side is tested end to end in tests/.

use super::{run_on, BuildOptions, Cancel, EngineSource, ImageCheck, Outcome};
use crate::run::progress::Mode;
use crate::workspace::{Dirs, Workspace};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use ov_cache::Store;
use ov_rules::engine::{BuildRequest, EngineError, EnginePlatform, ImageId, RunOutput, RunSpec};
use ov_rules::images::{ImageSnapshot, ListedImage};
use ov_rules::rule::ContainerEngine;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const BASE: &str = "localhost/fake-base:1";

/// An engine that keeps images as tags in a map. A build's image id is a
/// hash of its Containerfile, so the same build gives the same id.
#[derive(Default)]
struct Fake {
    /// Tag → image id.
    tags: Mutex<HashMap<String, ImageId>>,
    /// The Containerfile of every build started.
    builds: Mutex<Vec<String>>,
    calls: AtomicUsize,
    /// A build whose Containerfile contains this fails.
    fail: Mutex<Option<String>>,
    /// The first build whose Containerfile contains this fails as podman
    /// does when an image of its build cache is removed under it.
    storage_race: Mutex<Option<String>>,
    /// A build cancels the run with this token (Ctrl-C mid-build) and
    /// waits for the cancel to reach it.
    interrupt: Mutex<Option<CancellationToken>>,
    /// The major version the engine reports.
    major: Mutex<String>,
    /// Exports fail (an engine without the call).
    no_export: std::sync::atomic::AtomicBool,
    /// Images loaded from archives.
    loads: AtomicUsize,
}

/// The docker-archive the fake exports for image `id`: one layer holding
/// the id, and a config naming it (so a load can give the id back).
fn fake_archive(id: &ImageId) -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(id.as_str().len() as u64);
    h.set_mode(0o644);
    layer
        .append_data(&mut h, "id", id.as_str().as_bytes())
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let diff = ov_cache::BlobDigest::of_bytes(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "ov-fake": id.as_str(),
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!([
        {"Config": "c.json", "RepoTags": [], "Layers": [format!("{diff}.tar")]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{diff}.tar"), &layer),
        ("c.json".to_string(), &config),
        ("manifest.json".to_string(), &index),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// The tag and image id a docker-archive made by [`fake_archive`] (and
/// reassembled from its parts) loads as.
fn fake_load(archive: &[u8]) -> (String, ImageId) {
    let mut files = HashMap::new();
    for e in tar::Archive::new(archive).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(name, data);
    }
    let index: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&files[index[0]["Config"].as_str().unwrap()]).unwrap();
    (
        index[0]["RepoTags"][0].as_str().unwrap().to_string(),
        ImageId::new(config["ov-fake"].as_str().unwrap()),
    )
}

impl Fake {
    fn new() -> Arc<Fake> {
        let fake = Fake::default();
        fake.tags
            .lock()
            .unwrap()
            .insert(BASE.into(), ImageId::new("sha256:ba5e"));
        *fake.major.lock().unwrap() = "4".into();
        Arc::new(fake)
    }

    fn builds_of(&self, what: &str) -> usize {
        let b = self.builds.lock().unwrap();
        b.iter().filter(|c| c.contains(what)).count()
    }

    fn forget(&self, tag_part: &str) {
        let mut tags = self.tags.lock().unwrap();
        let ids: Vec<ImageId> = tags
            .iter()
            .filter(|(t, _)| t.contains(tag_part))
            .map(|(_, id)| id.clone())
            .collect();
        tags.retain(|_, id| !ids.contains(id));
    }

    fn node_tags(&self) -> usize {
        let tags = self.tags.lock().unwrap();
        tags.keys().filter(|t| t.contains("ov-node:")).count()
    }

    fn lookup(&self, reference: &str) -> Option<ImageId> {
        let tags = self.tags.lock().unwrap();
        tags.get(reference)
            .cloned()
            .or_else(|| tags.values().find(|id| id.as_str() == reference).cloned())
    }

    fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl ContainerEngine for Fake {
    fn image_id<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ImageId>, EngineError>> {
        self.call();
        Box::pin(async move { Ok(self.lookup(reference)) })
    }
    fn tag<'a>(&'a self, id: &'a ImageId, tag: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        self.call();
        self.tags.lock().unwrap().insert(tag.into(), id.clone());
        Box::pin(async { Ok(()) })
    }
    fn build<'a>(
        &'a self,
        req: BuildRequest,
        cancel: &'a CancellationToken,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        self.call();
        Box::pin(async move {
            self.builds.lock().unwrap().push(req.containerfile.clone());
            on_line("STEP 1/1");
            let ctrl_c = self.interrupt.lock().unwrap().clone();
            if let Some(ctrl_c) = ctrl_c {
                // The engine got as far as tagging the result.
                let id = ImageId::new("sha256:cut");
                self.tags.lock().unwrap().insert(req.tag, id);
                ctrl_c.cancel();
                cancel.cancelled().await;
                return Err(EngineError::Cancelled);
            }
            let race = self
                .storage_race
                .lock()
                .unwrap()
                .take_if(|r| req.containerfile.contains(r.as_str()));
            if race.is_some() {
                return Err(EngineError::Build {
                    message: "checking if cached image exists from a previous build: \
                              getting top layer info: layer not known"
                        .into(),
                    log: String::new(),
                });
            }
            let fail = self.fail.lock().unwrap().clone();
            if fail.is_some_and(|f| req.containerfile.contains(&f)) {
                return Err(EngineError::Build {
                    message: "RUN exited 1".into(),
                    log: "boom".into(),
                });
            }
            let id = ImageId::new(blake3::hash(req.containerfile.as_bytes()).to_hex().as_str());
            self.tags.lock().unwrap().insert(req.tag, id.clone());
            Ok(id)
        })
    }
    fn pull<'a>(
        &'a self,
        reference: &'a str,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.call();
        Box::pin(async move {
            Err(EngineError::Build {
                message: format!("no registry holds {reference}"),
                log: String::new(),
            })
        })
    }
    fn import<'a>(
        &'a self,
        _: &'a Path,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<ImageId, EngineError>> {
        self.call();
        let id = ImageId::new(blake3::hash(tag.as_bytes()).to_hex().as_str());
        self.tags.lock().unwrap().insert(tag.into(), id.clone());
        Box::pin(async move { Ok(id) })
    }
    fn run<'a>(
        &'a self,
        _: &'a RunSpec,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<RunOutput, EngineError>> {
        self.call();
        Box::pin(async {
            Ok(RunOutput {
                exit_code: 0,
                output: String::new(),
            })
        })
    }
    fn images(&self) -> BoxFuture<'_, Result<ImageSnapshot, EngineError>> {
        self.call();
        let mut by_id: HashMap<ImageId, Vec<String>> = HashMap::new();
        for (tag, id) in self.tags.lock().unwrap().iter() {
            by_id.entry(id.clone()).or_default().push(tag.clone());
        }
        let listed = by_id.into_iter().map(|(id, tags)| ListedImage {
            id,
            tags,
            labels: HashMap::new(),
        });
        let snapshot = ImageSnapshot::new(listed);
        Box::pin(async move { Ok(snapshot) })
    }
    fn remove_tag<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<bool, EngineError>> {
        self.call();
        let removed = self.tags.lock().unwrap().remove(reference).is_some();
        Box::pin(async move { Ok(removed) })
    }
    fn run_ids(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        self.call();
        Box::pin(async { Ok(Vec::new()) })
    }
    fn remove_run_containers<'a>(
        &'a self,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<usize, EngineError>> {
        self.call();
        Box::pin(async { Ok(0) })
    }
    fn platform(&self) -> BoxFuture<'_, Result<EnginePlatform, EngineError>> {
        let major = self.major.lock().unwrap().clone();
        Box::pin(async move {
            Ok(EnginePlatform {
                kind: "podman".into(),
                major,
                os: "linux".into(),
                arch: "amd64".into(),
            })
        })
    }
    fn export_image<'a>(&'a self, reference: &'a str) -> BoxStream<'a, Result<Bytes, EngineError>> {
        self.call();
        let found = self.lookup(reference);
        let item = match found {
            Some(id) if !self.no_export.load(Ordering::Relaxed) => {
                Ok(Bytes::from(fake_archive(&id)))
            }
            _ => Err(EngineError::Build {
                message: format!("cannot export {reference}"),
                log: String::new(),
            }),
        };
        futures_util::stream::iter([item]).boxed()
    }
    fn load_image<'a>(
        &'a self,
        archive: BoxStream<'static, Result<Bytes, std::io::Error>>,
        _: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.call();
        Box::pin(async move {
            let chunks: Vec<_> = archive.collect().await;
            let mut all = Vec::new();
            for c in chunks {
                all.extend_from_slice(&c?);
            }
            let (tag, id) = fake_load(&all);
            self.tags.lock().unwrap().insert(tag, id);
            self.loads.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
    fn cheap_image_list(&self) -> bool {
        true
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
    fn containers_created(&self) -> usize {
        0
    }
}

/// A project of two layers (`b` on `a`) in image `app` on [`BASE`].
struct Project {
    dir: tempfile::TempDir,
    dirs: Dirs,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            (
                "overthink.yml",
                "version: 2026.141.1600\ninclude: [build.yml]\n\
                 discover:\n  layer:\n    - path: layers\n\
                 defaults:\n  registry: localhost/fake\n  build: [deb]\n  \
                 distro: [debian:12, debian]\n  tag: t\n\
                 image:\n  app:\n    base: localhost/fake-base:1\n    layer: [b]\n",
            ),
            (
                "build.yml",
                "distro:\n  debian:\n    format:\n      deb:\n        \
                 install_template: \"RUN apt-get install -y{{range .Packages}} {{.}}{{end}}\"\n",
            ),
            (
                "layers/a/layer.yml",
                "layer:\n  task:\n    - mkdir: /opt/a\n",
            ),
            (
                "layers/b/layer.yml",
                "layer:\n  require: [a]\n  task:\n    - mkdir: /opt/b\n",
            ),
        ];
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let dirs = Dirs {
            cache: dir.path().join(".cache"),
            repo_cache: dir.path().join(".repos"),
            state: dir.path().join("state"),
        };
        Project { dir, dirs }
    }

    fn build(&self, fake: &Arc<Fake>, cancel: Cancel) -> Outcome {
        let ws = Workspace::open(self.dir.path(), &self.dirs).unwrap();
        let opts = BuildOptions {
            vm_ram_mib: 4096,
            jobs: 2,
            keep_going: false,
            progress: Mode::Plain,
            endpoint: "unused".into(),
            refresh: Vec::new(),
            image_check: ImageCheck::Auto,
            image_cache: None,
            remote: None,
            plan: Default::default(),
        };
        let engine = EngineSource::Given(fake.clone());
        run_on(
            Arc::new(ws.into_planned().0),
            &self.dirs,
            &[],
            &opts,
            engine,
            cancel,
        )
        .unwrap()
    }

    fn no_cancel() -> Cancel {
        Cancel::Token(CancellationToken::new())
    }

    /// Whether the store holds a result for node `id`.
    fn recorded(&self, id: &str) -> bool {
        let store = Store::open(&self.dirs.cache.join("store")).unwrap();
        store.last(id).unwrap().is_some()
    }
}

#[test]
fn a_cached_node_makes_no_build_call() {
    let p = Project::new();
    let fake = Fake::new();
    let first = p.build(&fake, Project::no_cancel());
    // The base is external, so the image has a preamble node too.
    assert_eq!(first.summary.built, 4, "the preamble, a, b and the image");
    assert_eq!(fake.builds.lock().unwrap().len(), 4);
    let second = p.build(&fake, Project::no_cancel());
    assert_eq!(fake.builds.lock().unwrap().len(), 4, "no build call");
    assert_eq!(second.summary.built, 0);
    assert_eq!(second.summary.cached_local, 4);
    assert_eq!(second.summary.engine_builds, 0);
}

/// Podman fails a build whose cached step image was removed under it (by
/// another build's clean-up or `ov cache gc`): the build is tried once
/// more, and the node is built, not failed.
#[test]
fn a_build_whose_cache_image_vanished_under_it_is_tried_again() {
    let p = Project::new();
    let fake = Fake::new();
    *fake.storage_race.lock().unwrap() = Some("# Layer: a".into());
    let out = p.build(&fake, Project::no_cancel());
    assert_eq!(out.summary.failed, 0);
    assert_eq!(out.summary.built, 4);
    assert_eq!(fake.builds_of("# Layer: a"), 2, "one retry");
    assert!(p.recorded("layer:a@app"));
    // Any other build error is not retried.
    let p = Project::new();
    let fake = Fake::new();
    *fake.fail.lock().unwrap() = Some("# Layer: a".into());
    p.build(&fake, Project::no_cancel());
    assert_eq!(fake.builds_of("# Layer: a"), 1);
}

#[test]
fn a_failed_node_records_nothing_and_its_dependents_do_not_run() {
    let p = Project::new();
    let fake = Fake::new();
    *fake.fail.lock().unwrap() = Some("# Layer: a".into());
    let out = p.build(&fake, Project::no_cancel());
    assert_eq!(out.summary.failed, 1);
    assert_eq!(out.summary.skipped, 2, "b and the image");
    assert_eq!(fake.builds_of("# Layer: b"), 0);
    assert_eq!(fake.builds_of("# Image: app"), 0);
    assert!(!p.recorded("layer:a@app"));
    assert!(!p.recorded("image:app"));
    // The next build runs it again: a failure is not cached.
    *fake.fail.lock().unwrap() = None;
    let again = p.build(&fake, Project::no_cancel());
    // a, b and the image; the preamble was recorded the first time.
    assert_eq!(again.summary.built, 3);
    assert_eq!(fake.builds_of("# Layer: a"), 2);
}

#[test]
fn a_hit_whose_image_left_the_engine_is_loaded_from_its_parts() {
    let p = Project::new();
    let fake = Fake::new();
    p.build(&fake, Project::no_cancel());
    let (b_key_tag, b_image) = {
        let store = Store::open(&p.dirs.cache.join("store")).unwrap();
        let (key, r) = store.last("layer:b@app").unwrap().unwrap();
        let names: Vec<&str> = r.blobs.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "oci/manifest.json",
                "oci/config.json",
                "oci/layer/0000.tar",
                "log"
            ]
        );
        (format!("localhost/ov-node:{key}"), r.output)
    };
    fake.forget(&b_key_tag);
    let out = p.build(&fake, Project::no_cancel());
    assert_eq!(fake.builds_of("# Layer: b"), 1, "b is not built again");
    assert_eq!(fake.loads.load(Ordering::Relaxed), 1);
    assert_eq!(out.summary.images_restored, 1);
    assert_eq!(out.summary.engine_builds, 0);
    assert_eq!((out.summary.built, out.summary.cached_local), (0, 4));
    assert_eq!(
        fake.lookup(&b_key_tag).map(|i| i.to_string()),
        Some(b_image),
        "loaded under its node tag with its recorded id"
    );
}

#[test]
fn a_new_engine_major_version_rebuilds_every_image_node() {
    let p = Project::new();
    let fake = Fake::new();
    p.build(&fake, Project::no_cancel());
    *fake.major.lock().unwrap() = "5".into();
    let out = p.build(&fake, Project::no_cancel());
    assert_eq!(out.summary.built, 4, "the preamble, a, b and the image");
    let again = p.build(&fake, Project::no_cancel());
    assert_eq!(again.summary.built, 0);
}

#[test]
fn a_hit_whose_image_left_the_engine_without_parts_runs_again() {
    let p = Project::new();
    let fake = Fake::new();
    fake.no_export.store(true, Ordering::Relaxed);
    p.build(&fake, Project::no_cancel());
    let b_key_tag = {
        let store = Store::open(&p.dirs.cache.join("store")).unwrap();
        let (key, _) = store.last("layer:b@app").unwrap().unwrap();
        format!("ov-node:{key}")
    };
    fake.forget(&b_key_tag);
    let out = p.build(&fake, Project::no_cancel());
    assert_eq!(fake.builds_of("# Layer: b"), 2, "b is built again");
    assert_eq!(fake.builds_of("# Layer: a"), 1);
    // The rebuild gave b the same image, so the image node is still cached.
    assert_eq!(fake.builds_of("# Image: app"), 1);
    assert_eq!((out.summary.built, out.summary.cached_local), (1, 3));
}

#[test]
fn ctrl_c_mid_build_records_nothing_and_leaves_no_node_tag() {
    let p = Project::new();
    let fake = Fake::new();
    let ctrl_c = CancellationToken::new();
    *fake.interrupt.lock().unwrap() = Some(ctrl_c.clone());
    let out = p.build(&fake, Cancel::Token(ctrl_c));
    assert!(out.interrupted);
    assert_eq!(out.summary.built, 0);
    assert_eq!(fake.builds.lock().unwrap().len(), 1, "nothing starts after");
    assert!(!p.recorded("layer:a@app"));
    assert_eq!(
        fake.node_tags(),
        0,
        "the run removes the tag it never recorded"
    );
}

#[test]
fn a_dependency_s_stored_file_is_placed_by_name_and_an_unknown_name_is_an_error() {
    use ov_rules::rule::{EngineQuirks, ExecCtx, NodeOutput};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let digest = store.put_blob_bytes(b"a disk").unwrap();
    let mut deps = HashMap::new();
    deps.insert(
        "disk:vm".to_string(),
        NodeOutput {
            stored: vec![("disk.qcow2".into(), digest)],
            ..Default::default()
        },
    );
    let fake = Fake::new();
    let key = <ov_cache::NodeKey as ov_cache::Digest>::from_bytes([7; 32]);
    let cancel = CancellationToken::new();
    let mut on_line = |_: &str| {};
    let ctx = ExecCtx {
        engine: &*fake,
        node_id: "boot:vm",
        key: &key,
        deps: &deps,
        layer_dir: None,
        project_root: dir.path(),
        scratch: dir.path(),
        run_id: "1-1",
        cancel: &cancel,
        quirks: &EngineQuirks::default(),
        on_line: &mut on_line,
        blobs: &store,
        vm_state: dir.path(),
        downloads: dir.path(),
    };
    let copy = dir.path().join("copy.qcow2");
    ctx.dep_blob("disk:vm", "disk.qcow2", &copy, true).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), b"a disk");
    // A private copy may be changed without touching the store's.
    std::fs::write(&copy, b"changed").unwrap();
    assert_eq!(store.read_blob(&digest).unwrap(), b"a disk");
    let e = ctx
        .dep_blob("disk:vm", "seed.iso", &dir.path().join("x"), false)
        .unwrap_err();
    assert!(
        e.to_string().contains("`disk:vm` stored no `seed.iso`"),
        "{e}"
    );
    // Placed unchecked: the check comes back to be run later, and fails
    // once the store's copy is damaged.
    let linked = dir.path().join("rootfs.tar");
    let check = ctx
        .dep_blob_unchecked("disk:vm", "disk.qcow2", &linked)
        .unwrap();
    assert_eq!(std::fs::read(&linked).unwrap(), b"a disk");
    check().unwrap();
    let stored = store.content_path(&digest);
    let mut perms = std::fs::metadata(&stored).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&stored, perms).unwrap();
    std::fs::write(&stored, b"a dusk").unwrap();
    let check = ctx
        .dep_blob_unchecked("disk:vm", "disk.qcow2", &linked)
        .unwrap();
    let e = check().unwrap_err();
    assert!(e.to_string().contains("does not match its digest"), "{e}");
}
