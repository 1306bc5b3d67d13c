//! docker-archive tars, the format podman 4's Docker-compatible API exports
//! (`GET /images/{name}/get`) and loads (`POST /images/load`): split one
//! into OCI parts in the CAS, and assemble one back from them.
//!
//! A docker-archive holds `manifest.json` (`[{"Config": "<id>.json",
//! "RepoTags": [...], "Layers": ["<diff id>.tar", ...]}]`), the image
//! config under the name it lists, and each layer as an uncompressed tar,
//! possibly reached through symlinks. The config's bytes are kept exactly
//! (their sha256 is the image id), and each layer's sha256 is its diff id,
//! so a load of what was split gives the image its old id back.

use super::{OciError, Part, Parts};
use ov_cache::{BlobDigest, Store};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The most a config or `manifest.json` may take: both are small JSON,
/// and they are held in memory.
const MAX_JSON: u64 = 16 << 20;

/// What an archive entry turned out to be.
enum Entry {
    /// A file stored in the CAS (or found there already).
    Stored(Part),
    /// Small JSON kept in memory.
    Json(Vec<u8>),
    /// A symlink to another entry.
    Link(PathBuf),
}

/// Reads the docker-archive `tar` of one image, storing its config and
/// each layer in `store` as it streams past (checked below against the
/// config's diff ids), then an OCI image manifest listing them.
pub fn split(tar: impl Read, store: &Store) -> Result<Parts, OciError> {
    let mut entries: HashMap<PathBuf, Entry> = HashMap::new();
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().map_err(OciError::archive)? {
        let mut e = e.map_err(OciError::archive)?;
        let path = normal(&e.path().map_err(OciError::archive)?);
        let kind = e.header().entry_type();
        if kind.is_symlink() {
            if let Some(target) = e.link_name().map_err(OciError::archive)? {
                let base = path.parent().unwrap_or(Path::new(""));
                entries.insert(path.clone(), Entry::Link(normal(&base.join(target))));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = e.size();
        let name = path.to_string_lossy().into_owned();
        let top_json = path.components().count() == 1 && name.ends_with(".json");
        if top_json {
            if size > MAX_JSON {
                return Err(OciError::Format(format!("{name} is {size} bytes")));
            }
            let mut buf = Vec::with_capacity(size as usize);
            e.read_to_end(&mut buf).map_err(OciError::archive)?;
            entries.insert(path, Entry::Json(buf));
            continue;
        }
        if !name.ends_with(".tar") {
            // `<id>/json`, `<id>/VERSION`, `repositories`: docker's legacy
            // metadata, which the config and manifest.json supersede.
            continue;
        }
        // Stored even when the CAS has the digest: storing repairs a
        // damaged copy, and a result must never name a blob whose bytes
        // are wrong (a rebuild after a corrupt store would record one).
        let (digest, size) = store
            .put_blob_reader(&mut e, &name)
            .map_err(|x| OciError::Store(x.to_string()))?;
        let part = Part { digest, size };
        entries.insert(path, Entry::Stored(part));
    }
    let resolve = |mut p: PathBuf| -> Option<&Entry> {
        for _ in 0..8 {
            match entries.get(&p)? {
                Entry::Link(t) => p = t.clone(),
                other => return Some(other),
            }
        }
        None
    };
    let Some(Entry::Json(index)) = resolve(PathBuf::from("manifest.json")) else {
        return Err(OciError::Format("no manifest.json".into()));
    };
    let index: Vec<ArchiveImage> = serde_json::from_slice(index)
        .map_err(|e| OciError::Format(format!("manifest.json: {e}")))?;
    let [image] = index.as_slice() else {
        return Err(OciError::Format(format!(
            "manifest.json lists {} images, not one",
            index.len()
        )));
    };
    let Some(Entry::Json(config)) = resolve(normal(Path::new(&image.config))) else {
        return Err(OciError::Format(format!("no config {}", image.config)));
    };
    let mut layers = Vec::new();
    for l in &image.layers {
        match resolve(normal(Path::new(l))) {
            Some(Entry::Stored(p)) => layers.push(*p),
            _ => return Err(OciError::Format(format!("no layer {l}"))),
        }
    }
    let diff_ids = diff_ids(config)?;
    let got: Vec<String> = layers
        .iter()
        .map(|p| format!("sha256:{}", p.digest))
        .collect();
    if got != diff_ids {
        return Err(OciError::Format(format!(
            "the layers {got:?} are not the config's diff ids {diff_ids:?}"
        )));
    }
    let config = Part {
        digest: store
            .put_blob_bytes(config)
            .map_err(|e| OciError::Store(e.to_string()))?,
        size: config.len() as u64,
    };
    let manifest = super::manifest_json(&config, &layers)?;
    let manifest = Part {
        digest: store
            .put_blob_bytes(&manifest)
            .map_err(|e| OciError::Store(e.to_string()))?,
        size: manifest.len() as u64,
    };
    Ok(Parts {
        manifest,
        config,
        layers,
    })
}

/// The `rootfs.diff_ids` of an image config.
pub fn diff_ids(config: &[u8]) -> Result<Vec<String>, OciError> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| OciError::Format(format!("config: {e}")))?;
    v.pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| OciError::Format("the config has no rootfs.diff_ids".into()))
}

/// One image in a docker-archive's `manifest.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ArchiveImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes a docker-archive of `parts` tagged `tag` to `out`, reading each
/// blob from `open` (which the caller verifies): a layer two places list
/// goes in once.
pub fn assemble(
    parts: &Parts,
    tag: &str,
    mut open: impl FnMut(&BlobDigest) -> std::io::Result<std::fs::File>,
    out: impl Write,
) -> Result<(), OciError> {
    let mut tar = tar::Builder::new(out);
    let config_name = format!("{}.json", parts.config.digest);
    let layer_names: Vec<String> = parts
        .layers
        .iter()
        .map(|l| format!("{}.tar", l.digest))
        .collect();
    let index = serde_json::to_vec(&[ArchiveImage {
        config: config_name.clone(),
        repo_tags: vec![tag.to_string()],
        layers: layer_names.clone(),
    }])
    .map_err(|e| OciError::Format(e.to_string()))?;
    append(&mut tar, "manifest.json", index.len() as u64, &index[..])?;
    let config = open(&parts.config.digest).map_err(OciError::archive)?;
    append(&mut tar, &config_name, parts.config.size, config)?;
    let mut done = std::collections::HashSet::new();
    for (l, name) in parts.layers.iter().zip(&layer_names) {
        if done.insert(l.digest) {
            let f = open(&l.digest).map_err(OciError::archive)?;
            append(&mut tar, name, l.size, f)?;
        }
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(OciError::archive)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<(), OciError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o444);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    // A short read (a blob smaller than recorded) fails here rather than
    // giving the engine a cut archive.
    tar.append_data(&mut h, name, data.take(size))
        .map_err(OciError::archive)
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "file", content).unwrap();
        b.into_inner().unwrap()
    }

    /// A docker-archive shaped like podman's: layers by diff id, links,
    /// legacy metadata, manifest.json last.
    fn podman_archive(layers: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let ids: Vec<String> = layers
            .iter()
            .map(|l| BlobDigest::of_bytes(l).to_string())
            .collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids.iter().map(|i| format!("sha256:{i}")).collect::<Vec<_>>()}
        }))
        .unwrap();
        let cid = BlobDigest::of_bytes(&config).to_string();
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            b.append_data(&mut h, name, data).unwrap();
        };
        for (l, id) in layers.iter().zip(&ids) {
            add(&format!("{id}.tar"), l);
        }
        add(&format!("{cid}.json"), &config);
        add("abcd/VERSION", b"1.0");
        let index = serde_json::json!([{"Config": format!("{cid}.json"), "RepoTags": ["x:1"],
            "Layers": ids.iter().map(|i| format!("abcd/../{i}.tar")).collect::<Vec<_>>()}]);
        add("manifest.json", &serde_json::to_vec(&index).unwrap());
        let mut b = b;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "abcd/layer.tar", format!("../{}.tar", ids[0]))
            .unwrap();
        (b.into_inner().unwrap(), config)
    }

    #[test]
    fn split_then_assemble_keeps_config_and_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let layers = vec![layer(b"base"), layer(b"top")];
        let (archive, config) = podman_archive(&layers);
        let parts = split(&archive[..], &store).unwrap();
        assert_eq!(parts.config.digest, BlobDigest::of_bytes(&config));
        assert_eq!(parts.layers.len(), 2);
        assert_eq!(parts.layers[1].digest, BlobDigest::of_bytes(&layers[1]));
        let m: oci_spec::image::ImageManifest =
            serde_json::from_slice(&store.read_blob(&parts.manifest.digest).unwrap()).unwrap();
        assert_eq!(m.layers().len(), 2);
        assert_eq!(
            m.config().digest().digest(),
            parts.config.digest.to_string()
        );
        // Read back from the manifest alone.
        let again = Parts::from_manifest(
            &store.read_blob(&parts.manifest.digest).unwrap(),
            parts.manifest,
        )
        .unwrap();
        assert_eq!(again, parts);
        let mut out = Vec::new();
        let place = dir.path().join("p");
        assemble(
            &again,
            "localhost/ov-node:k",
            |d| {
                store.blob_to_file(d, &place).unwrap();
                std::fs::File::open(&place)
            },
            &mut out,
        )
        .unwrap();
        // What was assembled splits to the same parts.
        let dir2 = tempfile::tempdir().unwrap();
        let store2 = Store::open(dir2.path()).unwrap();
        assert_eq!(split(&out[..], &store2).unwrap(), parts);
    }

    #[test]
    fn layers_must_be_the_configs_diff_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (archive, _) = podman_archive(&[layer(b"base")]);
        // The same archive with the layer's bytes changed (same length).
        let needle = b"base";
        let mut bad = archive.clone();
        let at = bad.windows(4).position(|w| w == needle).unwrap();
        bad[at] = b'c';
        let e = split(&bad[..], &store).unwrap_err();
        assert!(e.to_string().contains("diff ids"), "{e}");
    }

    #[test]
    fn a_damaged_stored_layer_is_repaired_by_the_next_export() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let l = layer(b"shared");
        let d = store.put_blob_bytes(&l).unwrap();
        // Bit rot in the store's only file.
        let file = walkdir::WalkDir::new(dir.path().join("content-v2"))
            .into_iter()
            .flatten()
            .find(|e| e.file_type().is_file())
            .unwrap()
            .into_path();
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[0] ^= 1;
        let mut perms = std::fs::metadata(&file).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&file, perms).unwrap();
        std::fs::write(&file, bytes).unwrap();
        let (archive, _) = podman_archive(std::slice::from_ref(&l));
        let parts = split(&archive[..], &store).unwrap();
        assert_eq!(parts.layers[0].digest, d);
        assert_eq!(store.read_blob(&d).unwrap(), l, "the damaged copy was kept");
    }

    #[test]
    fn an_archive_without_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = split(&layer(b"x")[..], &store).unwrap_err();
        assert!(e.to_string().contains("manifest.json"), "{e}");
    }
}
