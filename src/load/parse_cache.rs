//! What reading a project's files costs, kept between runs: each
//! `layer.yml` *decoded*, keyed by its fingerprint, so a warm run only
//! `stat`s the ~2,000 `layer.yml` files of a large project, and neither
//! parses nor decodes them. Only `layer.yml` files are kept: the few root
//! files are edited most, and each edit would have the whole cache written
//! again.
//!
//! A decoded layer depends on the file's bytes, on where the project is
//! (messages show paths relative to it) and on this ov's decoding, so the
//! cache is kept under a context of the project's path and this binary:
//! another ov, or the project seen from elsewhere, starts afresh.

use crate::load::yaml::{self, Duplicate, Node, SyntaxError};
use ov_cache::{atomic_write, Fingerprint};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const FORMAT: &str = "ov-parse-cache-v2";

/// The largest project file ov reads: far above any real one, far below
/// what would strain memory once parsed into nodes.
pub const MAX_FILE: u64 = 16 << 20;

/// Decoded layers by path (each as JSON: a layer holds free-form JSON
/// values, which only a self-describing format reads back), with the
/// fingerprint they were read at.
type Entries = HashMap<PathBuf, (Fingerprint, String)>;

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    format: String,
    context: [u8; 32],
    entries: Entries,
}

/// Why a file could not be turned into YAML documents.
#[derive(Debug)]
pub enum ReadError {
    /// Could not be read at all.
    Io(std::io::Error),
    /// A fifo, device or directory: reading it could block or never end.
    NotAFile,
    /// Larger than any project file ([`MAX_FILE`]).
    TooLarge(u64),
    /// Not UTF-8.
    NotText,
    /// Not YAML.
    Syntax(SyntaxError),
    /// YAML, but with keys written twice in one mapping.
    Duplicates(Vec<Duplicate>),
}

/// Parsed files, and decoded layers by path. Safe to use from many threads
/// at once.
#[derive(Default)]
pub struct ParseCache {
    path: Option<PathBuf>,
    context: [u8; 32],
    old: Entries,
    /// What this run read, by path; `None` for an entry kept as it was
    /// (taken from `old` when saved, not copied on every read).
    fresh: Mutex<HashMap<PathBuf, (Fingerprint, Option<String>)>>,
    /// Every path parsed (or found unreadable), for the dry run's memo.
    read: Mutex<Vec<PathBuf>>,
    started_ns: i128,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

/// A hash of what a result kept between runs depends on besides the
/// project's files: its format (`magic`), this ov binary (its version and
/// its own fingerprint, so a rebuilt ov never uses an older one's), the
/// working directory and the project's path. `None` when the binary
/// cannot be found: nothing is kept then.
pub(crate) fn context_hasher(magic: &[u8], root: &Path) -> Option<blake3::Hasher> {
    let exe = std::env::current_exe().ok()?;
    let exe_fp = Fingerprint::of(&std::fs::metadata(&exe).ok()?);
    let cwd = std::env::current_dir().ok()?;
    let mut h = blake3::Hasher::new();
    for field in [
        magic,
        env!("CARGO_PKG_VERSION").as_bytes(),
        exe.as_os_str().as_encoded_bytes(),
        &postcard::to_allocvec(&exe_fp).ok()?,
        cwd.as_os_str().as_encoded_bytes(),
        root.as_os_str().as_encoded_bytes(),
    ] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field);
    }
    Some(h)
}

impl ParseCache {
    /// Loads the cache file at `path` for the project at `root`; anything
    /// unreadable, or kept for another context, means an empty cache.
    pub fn load(path: Option<&Path>, root: &Path) -> Self {
        let context = context_hasher(FORMAT.as_bytes(), root).map(|h| *h.finalize().as_bytes());
        let old = path
            .zip(context)
            .and_then(|(p, context)| {
                let d = postcard::from_bytes::<OnDisk>(&std::fs::read(p).ok()?).ok()?;
                (d.format == FORMAT && d.context == context).then_some(d.entries)
            })
            .unwrap_or_default();
        ParseCache {
            // No context, nothing kept.
            path: path.filter(|_| context.is_some()).map(Path::to_path_buf),
            context: context.unwrap_or_default(),
            old,
            fresh: Mutex::default(),
            read: Mutex::default(),
            started_ns: now_ns(),
        }
    }

    /// The documents of `path`, parsed now.
    pub fn parse(&self, path: &Path) -> Result<Arc<Vec<Node>>, ReadError> {
        self.stat(path)?;
        read_docs(path)
    }

    /// Records `path` as read, and its fingerprint when it is a file ov
    /// may read.
    fn stat(&self, path: &Path) -> Result<Fingerprint, ReadError> {
        if let Ok(mut read) = self.read.lock() {
            read.push(path.to_path_buf());
        }
        let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
        if !meta.is_file() {
            return Err(ReadError::NotAFile);
        }
        if meta.len() > MAX_FILE {
            return Err(ReadError::TooLarge(meta.len()));
        }
        Ok(Fingerprint::of(&meta))
    }

    /// What the `layer.yml` at `path` decodes to: read back from a run
    /// that saw the file at the same fingerprint, or parsed and `decode`d
    /// now (and kept when `keep` says the result may be, and the file has
    /// settled). A layer with errors is never kept, so the errors are
    /// found again, by the same code, on every run until they are fixed.
    pub fn layer<T: Serialize + DeserializeOwned>(
        &self,
        path: &Path,
        decode: impl FnOnce(&[Node]) -> T,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<T, ReadError> {
        let fp = self.stat(path)?;
        if let Some((seen, json)) = self.old.get(path) {
            // A layer holds its steps as canonical text already: taken as
            // they are, not canonicalized again.
            let kept = (*seen == fp)
                .then(|| ov_rules::read_own(|| serde_json::from_str::<T>(json).ok()))
                .flatten();
            if let Some(value) = kept {
                self.remember(path, fp, None);
                return Ok(value);
            }
        }
        let value = decode(&read_docs(path)?);
        // A file written shortly before this run could change again within
        // the same timestamp tick without its fingerprint moving; only
        // vouch for one that has settled.
        if fp.settled(self.started_ns) && keep(&value) {
            if let Ok(json) = serde_json::to_string(&value) {
                self.remember(path, fp, Some(json));
            }
        }
        Ok(value)
    }

    fn remember(&self, path: &Path, fp: Fingerprint, json: Option<String>) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.insert(path.to_path_buf(), (fp, json));
        }
    }

    /// Every path [`parse`](Self::parse) or [`layer`](Self::layer) was
    /// asked for so far.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        self.read.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Writes back what this run read (dropping files it no longer reads),
    /// unless nothing changed.
    pub fn save(self) {
        let Some(path) = self.path else { return };
        let fresh = self.fresh.into_inner().unwrap_or_default();
        let unchanged = fresh.len() == self.old.len() && fresh.values().all(|(_, j)| j.is_none());
        if unchanged {
            return;
        }
        let mut old = self.old;
        let entries = fresh
            .into_iter()
            .filter_map(|(p, (fp, json))| {
                let json = json.or_else(|| old.remove(&p).map(|(_, j)| j))?;
                Some((p, (fp, json)))
            })
            .collect();
        let on_disk = OnDisk {
            format: FORMAT.into(),
            context: self.context,
            entries,
        };
        if let Ok(bytes) = postcard::to_allocvec(&on_disk) {
            // The cache is only a speed-up; failing to write it is not an error.
            let _ = atomic_write(&path, &bytes);
        }
    }
}

/// The YAML documents in `path` (its stat taken already): a key written
/// twice in one mapping is an error, as bad YAML is.
fn read_docs(path: &Path) -> Result<Arc<Vec<Node>>, ReadError> {
    let bytes = read_at_most(path)?;
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotText)?;
    let docs = yaml::parse(&text).map_err(ReadError::Syntax)?;
    let duplicates = yaml::duplicate_keys(&docs);
    if !duplicates.is_empty() {
        return Err(ReadError::Duplicates(duplicates));
    }
    Ok(Arc::new(docs))
}

/// The file's bytes, refusing one that grew past [`MAX_FILE`] since its stat.
fn read_at_most(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::load::model::Layer;

    /// Writes `text` to `path` with an mtime a minute back: settled, so a
    /// run may keep what it read.
    fn put(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    /// The layer `file` (in `root`) as the loader decodes it, through `cache`.
    fn layer(
        cache: &ParseCache,
        root: &Path,
        file: &Path,
    ) -> Result<(Layer, Diagnostics), ReadError> {
        let dir = file.parent().unwrap();
        let name = dir.file_name().unwrap().to_str().unwrap();
        super::super::read_layer(cache, root, name, dir, file).map(|(l, d, _)| (l, d))
    }

    /// A run that reads the layer back from the cache gets the very layer
    /// (and warnings) that decoding it gave: every field, free-form JSON
    /// and steps included, survives being kept.
    #[test]
    fn a_kept_layer_reads_back_as_it_was_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("layers/web/layer.yml");
        put(
            &file,
            r#"layer:
  require: [base]
  layer: [tools]
  package: [nginx, "curl"]
  distro:
    debian: {package: [a, b], repo: {url: "https://x/y", n: 1.5}}
  env: {PORT: "8080", EMPTY: ""}
  var: {v: w}
  path_append: [/opt/bin]
  port: ["8080/tcp"]
  service:
    - {name: web, exec: "nginx -g 'daemon off;'", enabled: true}
  eval:
    - {cmd: "test -x /usr/sbin/nginx", expect: 0}
  capabilities: {preserve_user: true, oci_label: {a: "b"}}
  task:
    - mkdir: /srv/www
      mode: "0755"
    - write: /srv/www/index.html
      content: "<h1>hi \u00e9</h1>\n"
    - cmd: echo "$PORT" > /tmp/p
      user: root
  description: a web server
  unknown_field: {nested: [1, 2.25, null, false]}
"#,
        );
        let cache_file = root.join("parse-cache");
        let fresh = ParseCache::load(Some(&cache_file), root);
        let decoded = layer(&fresh, root, &file).unwrap();
        fresh.save();
        let kept = ParseCache::load(Some(&cache_file), root);
        assert!(kept.old.contains_key(&file), "the layer was not kept");
        let read_back = layer(&kept, root, &file).unwrap();
        assert_eq!(format!("{read_back:?}"), format!("{decoded:?}"));
        // It came from the cache: the entry is marked kept as it was.
        let fresh = kept.fresh.lock().unwrap();
        assert!(matches!(fresh.get(&file), Some((_, None))));
    }

    /// A duplicate key is an error found on every read, and a layer whose
    /// decoding found errors is never kept: the next run says them again.
    #[test]
    fn layers_with_errors_are_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let dup = root.join("layers/a/layer.yml");
        let bad = root.join("layers/b/layer.yml");
        put(&dup, "layer:\n  env: {}\n  env: {}\n");
        put(&bad, "layer:\n  package: {not: a list}\n");
        let cache_file = root.join("parse-cache");
        for _ in 0..2 {
            let cache = ParseCache::load(Some(&cache_file), root);
            match layer(&cache, root, &dup) {
                Err(ReadError::Duplicates(d)) => assert_eq!(d.len(), 1, "{d:?}"),
                other => panic!("expected the duplicate `env`, got {other:?}"),
            }
            let (_, diags) = layer(&cache, root, &bad).unwrap();
            assert!(diags.has_errors(), "{diags:?}");
            assert!(cache.old.is_empty());
            cache.save();
        }
    }

    /// What one project kept is not read for another place: messages show
    /// paths relative to the project, so the same file seen from another
    /// root decodes to another layer.
    #[test]
    fn a_cache_kept_for_another_root_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p/layers/a/layer.yml");
        put(&file, "layer:\n  env: {A: b}\n");
        let cache_file = dir.path().join("parse-cache");
        let root = dir.path().join("p");
        let cache = ParseCache::load(Some(&cache_file), &root);
        layer(&cache, &root, &file).unwrap();
        cache.save();
        assert!(!ParseCache::load(Some(&cache_file), &root).old.is_empty());
        assert!(ParseCache::load(Some(&cache_file), dir.path())
            .old
            .is_empty());
    }

    /// A layer.yml edited moments ago is decoded but not kept: it could
    /// change again within the same timestamp tick.
    #[test]
    fn a_layer_that_has_not_settled_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("layers/a/layer.yml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "layer:\n  env: {A: b}\n").unwrap();
        let cache_file = root.join("parse-cache");
        let cache = ParseCache::load(Some(&cache_file), root);
        layer(&cache, root, &file).unwrap();
        cache.save();
        assert!(ParseCache::load(Some(&cache_file), root).old.is_empty());
    }

    /// An edit of a file other than a layer.yml (image.yml is edited far
    /// more often) leaves the cache file as it was: rewriting it, megabytes
    /// in a large project, cost more than parsing that file each run.
    #[test]
    fn only_layer_files_are_kept_so_an_image_yml_edit_leaves_the_cache_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("layers/a/layer.yml");
        let image = root.join("image.yml");
        put(&file, "layer:\n  env: {A: b}\n");
        put(&image, "image:\n  app: {}\n");
        let cache_file = root.join("parse-cache");
        let run = || {
            let cache = ParseCache::load(Some(&cache_file), root);
            layer(&cache, root, &file).unwrap();
            let images = cache.parse(&image).unwrap();
            cache.save();
            images
        };
        run();
        let kept = ParseCache::load(Some(&cache_file), root);
        assert!(kept.old.contains_key(&file), "the layer.yml was not kept");
        assert!(!kept.old.contains_key(&image), "image.yml was kept");
        let written = std::fs::metadata(&cache_file).unwrap().modified().unwrap();
        put(&image, "image:\n  app: {}\n  other: {}\n");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let images = run();
        // Read afresh, not from any cache.
        let top = &images[0].as_map().unwrap()[0].1;
        assert_eq!(top.as_map().map(<[_]>::len), Some(2), "{top:?}");
        assert_eq!(
            std::fs::metadata(&cache_file).unwrap().modified().unwrap(),
            written,
            "the cache was written again for an image.yml edit"
        );
    }
}
