//! A cache of parsed YAML trees keyed by file fingerprint, so a warm run
//! only `stat`s the ~2,000 `layer.yml` files of a large project. Only
//! `layer.yml` files are kept: the few root files are edited most, and
//! each edit would have the whole cache written again.

use crate::load::yaml::{self, Duplicate, Node, SyntaxError};
use ov_cache::{atomic_write, Fingerprint};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const FORMAT: &str = "ov-parse-cache-v1";

/// The files the cache keeps.
const LAYER_FILE: &str = "layer.yml";

/// The largest project file ov reads: far above any real one, far below
/// what would strain memory once parsed into nodes.
pub const MAX_FILE: u64 = 16 << 20;

/// Parsed documents by path, with the fingerprint they were parsed at.
type Entries = HashMap<PathBuf, (Fingerprint, Arc<Vec<Node>>)>;

#[derive(Serialize, Deserialize, Default)]
struct OnDisk {
    format: String,
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

/// Parsed documents by path. Safe to use from many threads at once.
#[derive(Default)]
pub struct ParseCache {
    path: Option<PathBuf>,
    old: Entries,
    fresh: Mutex<Entries>,
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

impl ParseCache {
    /// Loads the cache file at `path`; anything unreadable means an empty cache.
    pub fn load(path: Option<&Path>) -> Self {
        let old = path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| postcard::from_bytes::<OnDisk>(&b).ok())
            .filter(|d| d.format == FORMAT)
            .map(|d| d.entries)
            .unwrap_or_default();
        ParseCache {
            path: path.map(Path::to_path_buf),
            old,
            fresh: Mutex::default(),
            read: Mutex::default(),
            started_ns: now_ns(),
        }
    }

    /// The documents of `path`, parsed now or remembered from a run that saw
    /// the same fingerprint.
    pub fn parse(&self, path: &Path) -> Result<Arc<Vec<Node>>, ReadError> {
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
        let fp = Fingerprint::of(&meta);
        // Only layer.yml files are kept: they are the thousands a warm run
        // would otherwise parse. The few others (image.yml, build.yml, …)
        // parse in a few milliseconds, and are the files edited most: kept,
        // each edit of one had the whole cache written again.
        let keep = path.file_name().is_some_and(|n| n == LAYER_FILE);
        let remembered = match self.old.get(path) {
            Some((seen, docs)) if keep && *seen == fp => Some(docs.clone()),
            _ => None,
        };
        let cached = remembered.is_some();
        let docs = match remembered {
            Some(docs) => docs,
            None => {
                let bytes = read_at_most(path)?;
                let text = String::from_utf8(bytes).map_err(|_| ReadError::NotText)?;
                Arc::new(yaml::parse(&text).map_err(ReadError::Syntax)?)
            }
        };
        // Checked on every read, cached or not, so no cache (however it was
        // written) can hide a duplicate.
        let duplicates = yaml::duplicate_keys(&docs);
        if !duplicates.is_empty() {
            return Err(ReadError::Duplicates(duplicates));
        }
        // A file written shortly before this run could change again within
        // the same timestamp tick without its fingerprint moving; only
        // vouch for one that has settled.
        if keep && (cached || fp.settled(self.started_ns)) {
            self.remember(path, fp, docs.clone());
        }
        Ok(docs)
    }

    fn remember(&self, path: &Path, fp: Fingerprint, docs: Arc<Vec<Node>>) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.insert(path.to_path_buf(), (fp, docs));
        }
    }

    /// Every path [`parse`](Self::parse) was asked for so far.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        self.read.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Writes back what this run read (dropping files it no longer reads),
    /// unless nothing changed.
    pub fn save(self) {
        let Some(path) = self.path else { return };
        let fresh = self.fresh.into_inner().unwrap_or_default();
        let unchanged = fresh.len() == self.old.len()
            && fresh
                .iter()
                .all(|(p, (fp, _))| self.old.get(p).is_some_and(|(o, _)| o == fp));
        if unchanged {
            return;
        }
        let on_disk = OnDisk {
            format: FORMAT.into(),
            entries: fresh,
        };
        if let Ok(bytes) = postcard::to_allocvec(&on_disk) {
            // The cache is only a speed-up; failing to write it is not an error.
            let _ = atomic_write(&path, &bytes);
        }
    }
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

    /// A tree that holds a duplicate key can reach the cache (written by an
    /// ov that did not look for them, or read back from any run); the
    /// duplicate must still be an error when the tree comes from there.
    #[test]
    fn duplicates_in_a_cached_tree_are_still_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("layer.yml");
        let text = "layer:\n  env: {}\n  env: {}\n";
        std::fs::write(&file, text).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let fp = Fingerprint::of(&std::fs::metadata(&file).unwrap());
        let mut entries = Entries::new();
        entries.insert(file.clone(), (fp, Arc::new(yaml::parse(text).unwrap())));
        let on_disk = OnDisk {
            format: FORMAT.into(),
            entries,
        };
        let cache_file = dir.path().join("parse-cache");
        std::fs::write(&cache_file, postcard::to_allocvec(&on_disk).unwrap()).unwrap();
        let cache = ParseCache::load(Some(&cache_file));
        assert!(cache.old.contains_key(&file));
        match cache.parse(&file) {
            Err(ReadError::Duplicates(d)) => assert_eq!(d.len(), 1, "{d:?}"),
            other => panic!("expected the duplicate `env`, got {other:?}"),
        }
    }

    /// An edit of a file other than a layer.yml (image.yml is edited far
    /// more often) leaves the cache file as it was: rewriting it, megabytes
    /// in a large project, cost more than parsing that file each run.
    #[test]
    fn only_layer_files_are_kept_so_an_image_yml_edit_leaves_the_cache_alone() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layers/a/layer.yml");
        let image = dir.path().join("image.yml");
        std::fs::create_dir_all(layer.parent().unwrap()).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        let put = |p: &Path, text: &str| {
            std::fs::write(p, text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        put(&layer, "layer:\n  env: {A: b}\n");
        put(&image, "image:\n  app: {}\n");
        let cache_file = dir.path().join("parse-cache");
        let run = || {
            let cache = ParseCache::load(Some(&cache_file));
            let docs = (cache.parse(&layer).unwrap(), cache.parse(&image).unwrap());
            cache.save();
            docs
        };
        run();
        let kept = ParseCache::load(Some(&cache_file));
        assert!(kept.old.contains_key(&layer), "the layer.yml was not kept");
        assert!(!kept.old.contains_key(&image), "image.yml was kept");
        let written = std::fs::metadata(&cache_file).unwrap().modified().unwrap();
        put(&image, "image:\n  app: {}\n  other: {}\n");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (_, images) = run();
        // Read afresh, not from any cache.
        assert_eq!(images[0].as_map().map(<[_]>::len), Some(1));
        let top = &images[0].as_map().unwrap()[0].1;
        assert_eq!(top.as_map().map(<[_]>::len), Some(2), "{top:?}");
        assert_eq!(
            std::fs::metadata(&cache_file).unwrap().modified().unwrap(),
            written,
            "the cache was written again for an image.yml edit"
        );
    }
}
