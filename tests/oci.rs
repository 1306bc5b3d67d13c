//! Images kept in the cache as OCI parts: a build's images removed from
//! the engine come back from the cache with their ids, without an engine
//! build; a child image shares its parent's layer blobs; an OCI registry
//! serves as an image cache for a machine with an empty cache dir.

use crate::build::{build, built_ok, ov_for, Built};
use crate::util::{local_fixture, podman_run, Ov, Project};
use ov_cache::{ActionResult, BlobDigest, NodeKey, Store};
use std::collections::{BTreeSet, HashSet};
use std::process::Command;

/// The image-making nodes of `deb-tasks` whose images are this test's
/// own (the preamble is shared with every build of the fixture).
const OWN: [&str; 3] = ["image:app", "layer:b@app", "layer:a@app"];

/// A copy of `deb-tasks` whose layers and tag are unique to one test, so
/// removing its images touches no other build.
struct Unique {
    project: Project,
    tag: String,
    marker: String,
}

impl Unique {
    fn new() -> Unique {
        let project = Project::copy_of(&local_fixture("deb-tasks"));
        let marker = format!(
            "oci{}x{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        project.edit("overthink.yml", "tag: test", &format!("tag: {marker}"));
        project.append("layers/a/a.txt", &format!("{marker}\n"));
        Unique {
            tag: format!("localhost/ov-test/app:{marker}"),
            project,
            marker,
        }
    }
}

impl Drop for Unique {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", &self.tag]).output();
    }
}

/// The key and result the store last recorded for `id`.
fn last(ov: &Ov, id: &str) -> (NodeKey, ActionResult) {
    let store = Store::open(&ov.cache_dir().join("store")).unwrap();
    store
        .last(id)
        .unwrap()
        .unwrap_or_else(|| panic!("no record of {id}"))
}

fn image_of(reference: &str) -> Option<String> {
    let out = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes this test's own images (top first: a parent with a child
/// cannot go) and checks they are gone.
fn remove_images(u: &Unique, ov: &Ov) {
    let _ = Command::new("podman").args(["rmi", &u.tag]).output();
    for id in OWN {
        let (_, r) = last(ov, id);
        let rmi = Command::new("podman")
            .args(["rmi", "-f", &r.output])
            .output()
            .unwrap();
        assert!(rmi.status.success(), "{rmi:?}");
        assert_eq!(image_of(&r.output), None, "{id} is still in the engine");
    }
}

/// The digests of a result's layer blobs, bottom first.
fn layers(r: &ActionResult) -> Vec<BlobDigest> {
    r.blobs
        .iter()
        .filter(|b| b.name.starts_with("oci/layer/"))
        .map(|b| b.digest)
        .collect()
}

/// Builds again after the images left, re-running the eval checks on what
/// comes back, and checks nothing was built and every image is back with
/// its id.
fn assert_restored(u: &Unique, ov: &Ov, ids: &[(String, String)]) -> Built {
    let again = build(ov, &["--refresh", "eval:app"]);
    assert_eq!(again.code, Some(0), "{}", again.report());
    assert_eq!(again.count("engine_builds"), 0, "{:?}", again.summary());
    assert_eq!(again.nodes("built"), ["eval:app"], "only the checks ran");
    assert_eq!(again.count("images_restored"), 3, "{:?}", again.summary());
    for (id, image) in ids {
        assert_eq!(
            image_of(image).as_deref(),
            Some(image.trim_start_matches("sha256:")),
            "{id} came back with another id"
        );
    }
    let user = image_of(&u.tag).expect("the user tag is back");
    assert_eq!(Some(&format!("sha256:{user}")), ids.first().map(|(_, i)| i));
    let out = podman_run(&u.tag, "cat /opt/a/a.txt /opt/b/b.txt");
    assert!(out.contains(&u.marker) && out.contains("beta"), "{out}");
    again
}

#[test]
fn images_that_left_the_engine_come_back_from_the_cache_with_their_ids() {
    let u = Unique::new();
    let ov = ov_for(u.project.path());
    let cold = built_ok(&ov);
    assert_eq!(cold.count("engine_builds"), 4, "{:?}", cold.summary());
    let ids: Vec<(String, String)> = OWN
        .iter()
        .map(|id| (id.to_string(), last(&ov, id).1.output))
        .collect();
    // Each image's parts are blobs of its result; a child's layers start
    // with its parent's, the same blobs.
    let (a, b, image) = (
        last(&ov, "layer:a@app").1,
        last(&ov, "layer:b@app").1,
        last(&ov, "image:app").1,
    );
    for r in [&a, &b, &image] {
        let names: Vec<&str> = r.blobs.iter().map(|b| b.name.as_str()).collect();
        assert!(
            names.starts_with(&["oci/manifest.json", "oci/config.json"]),
            "{names:?}"
        );
    }
    assert!(layers(&b).len() > layers(&a).len());
    assert!(
        layers(&b).starts_with(&layers(&a)),
        "b does not share a's layers"
    );
    assert!(layers(&image).starts_with(&layers(&b)));
    // Nothing is stored twice: the CAS holds each distinct blob once, so
    // the files in it are the distinct digests all results name.
    let store = Store::open(&ov.cache_dir().join("store")).unwrap();
    let mut named: HashSet<BlobDigest> = HashSet::new();
    let mut listed = 0;
    for id in [
        "preamble:app",
        "layer:a@app",
        "layer:b@app",
        "image:app",
        "eval:app",
    ] {
        let (_, r) = last(&ov, id);
        listed += r.blobs.len();
        named.extend(r.blobs.iter().map(|b| b.digest));
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.blobs as usize, named.len(), "{stats:?}");
    assert!(named.len() < listed, "no blob is shared: {listed} listed");

    remove_images(&u, &ov);
    assert_restored(&u, &ov, &ids);
    // And now nothing is missing: a plain build does nothing.
    let noop = built_ok(&ov);
    assert_eq!((noop.count("built"), noop.count("images_restored")), (0, 0));
    let keys: BTreeSet<String> = OWN.iter().map(|id| last(&ov, id).0.to_string()).collect();
    assert_eq!(keys.len(), 3);
}

/// Starts the project's registry (idempotent) on 127.0.0.1:5000.
fn registry() {
    let setup = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-registry.sh");
    let out = Command::new("bash").arg(setup).output().unwrap();
    assert!(
        out.status.success(),
        "setup-registry.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tags of `repo` in the project's registry.
fn registry_tags(repo: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:5000/v2/{repo}/tags/list")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fresh_cache_dir_restores_images_from_a_registry() {
    registry();
    let u = Unique::new();
    let url = format!("oci://127.0.0.1:5000/ov-test/{}", u.marker);
    // Machine A builds and pushes.
    let a = ov_for(u.project.path()).env("OV_IMAGE_CACHE", &url);
    let cold = built_ok(&a);
    assert!(cold.warnings().is_empty(), "{:?}", cold.warnings());
    let ids: Vec<(String, String)> = OWN
        .iter()
        .map(|id| (id.to_string(), last(&a, id).1.output))
        .collect();
    let mut tags = registry_tags(&format!("ov-test/{}/ov-node", u.marker));
    tags.sort();
    let mut keys: Vec<String> = ["preamble:app", "layer:a@app", "layer:b@app", "image:app"]
        .iter()
        .map(|id| last(&a, id).0.to_string())
        .collect();
    keys.sort();
    assert_eq!(tags, keys, "one image per key tag");
    remove_images(&u, &a);
    // Machine B: an empty cache dir, read-only use of the registry.
    let b = ov_for(u.project.path())
        .env("OV_IMAGE_CACHE", &url)
        .env("OV_IMAGE_CACHE_MODE", "read");
    let again = assert_restored(&u, &b, &ids);
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
}

/// A registry that answers 500 to everything, on a free port.
fn failing_registry() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    port
}

#[test]
fn a_registry_that_is_down_or_fails_costs_one_warning_and_the_build_goes_on() {
    let u = Unique::new();
    // Port 1: nothing listens.
    let down = "oci://127.0.0.1:1/x".to_string();
    let failing = format!("oci://127.0.0.1:{}/x", failing_registry());
    for url in [down, failing] {
        let ov = ov_for(u.project.path()).env("OV_IMAGE_CACHE", &url);
        let b = built_ok(&ov);
        let about: Vec<String> = b
            .warnings()
            .into_iter()
            .filter(|w| w.contains("image cache"))
            .collect();
        assert_eq!(about.len(), 1, "{url}: {:?}", b.warnings());
        assert_eq!(b.count("failed"), 0);
        assert!(last(&ov, "image:app").1.blobs.len() > 2, "recorded locally");
    }
    // A URL that is not one is bad input, before anything builds.
    let ov = ov_for(u.project.path());
    let r = ov.run(&["build", "--image-cache", "http://127.0.0.1:5000/x"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--image-cache"), "{}", r.stderr);
}
