//! The remote cache: Bazel's HTTP cache protocol, so the servers people
//! already run for Bazel (bazel-remote, nginx with WebDAV, …) hold ov's
//! results too.
//!
//! - `GET|PUT <base>/ac/<node key>`: a REAPI `ActionResult` protobuf
//!   ([`proto`]) whose output files are every CAS blob the entry needs: its
//!   JSON record (path `ov/record.json`, the same [`ActionResult`] the
//!   local store keeps) and each blob the record names. bazel-remote checks
//!   that those blobs exist before it takes the entry, and keeps them while
//!   the entry lives.
//! - `HEAD|GET|PUT <base>/cas/<sha256>`: blobs, streamed both ways. Every
//!   download is checked against its digest before it enters the local
//!   store; an upload re-checks the local blob as it streams.
//!
//! What a result refers to is moved by digest without looking inside, so
//! whatever kind of blob a node stores (a rootfs tarball, a disk, an OCI
//! layer) travels the same way.
//!
//! Entries may be signed ([`SigningKey`], HMAC-SHA256 over the node key and
//! the digests the entry names); with a key set, an unsigned or wrongly
//! signed entry is refused like a damaged one.
//!
//! Nothing here prints: callers decide how a failure is shown (a build
//! warns once and goes on without the server).

mod config;
mod error;
mod http;
mod netrc;
pub mod proto;
mod sign;

pub use config::{Auth, Config, Mode, UrlError, DEFAULT_PARALLEL, DEFAULT_TIMEOUT};
pub use error::RemoteError;
pub use netrc::lookup as netrc_lookup;
pub use sign::SigningKey;

use crate::{ActionResult, BlobDigest, NodeKey, Store};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The output path of an entry's JSON record.
const RECORD_PATH: &str = "ov/record.json";
/// Where the other blobs of an entry are listed.
const BLOB_DIR: &str = "ov/blobs/";
/// The record's format name.
const RECORD_FORMAT: &str = "ov-remote-record-v1";
/// The largest `/ac/` value taken: entries list a handful of blobs.
const AC_LIMIT: usize = 1 << 20;
/// The largest record taken: it is JSON of a key's ingredients.
const RECORD_LIMIT: u64 = 64 << 20;

/// The JSON record of an entry: the node's result as the local store keeps
/// it, naming its key so it cannot be taken for another key's.
#[derive(Serialize, Deserialize)]
struct Record {
    format: String,
    key: String,
    result: ActionResult,
}

/// A connection to one remote cache: one pooled HTTP client, and a limit on
/// transfers at once shared by every call.
pub struct RemoteCache {
    cfg: Config,
    http: http::Http,
    permits: Arc<Semaphore>,
    down: AtomicU64,
    up: AtomicU64,
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCache({})", self.cfg.url)
    }
}

impl RemoteCache {
    /// A client for the cache `cfg` describes. Reads the CA file, if any.
    pub fn new(cfg: Config) -> Result<RemoteCache, RemoteError> {
        Ok(RemoteCache {
            http: http::Http::new(&cfg)?,
            permits: Arc::new(Semaphore::new(cfg.parallel.max(1))),
            cfg,
            down: AtomicU64::new(0),
            up: AtomicU64::new(0),
        })
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Blob bytes downloaded so far.
    pub fn bytes_downloaded(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    /// Blob bytes uploaded so far.
    pub fn bytes_uploaded(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    /// Looks `key` up. On a hit, its record and every blob it names that
    /// the local store lacks are downloaded and checked, and the result is
    /// recorded in `store` (so it is then an ordinary local hit); on a miss,
    /// `None`. An entry that cannot be used is an error and leaves nothing
    /// in `store` but verified blobs.
    pub async fn fetch(
        &self,
        store: &Store,
        key: &NodeKey,
    ) -> Result<Option<ActionResult>, RemoteError> {
        let Some(result) = self.peek(store, key).await? else {
            return Ok(None);
        };
        let mut wanted: Vec<(BlobDigest, u64)> = result
            .blobs
            .iter()
            .filter(|b| {
                std::fs::metadata(store.content_path(&b.digest))
                    .map(|m| m.len())
                    .ok()
                    != Some(b.size)
            })
            .map(|b| (b.digest, b.size))
            .collect();
        wanted.sort();
        wanted.dedup();
        futures_util::future::try_join_all(
            wanted
                .iter()
                .map(|(d, size)| self.get_blob(store, d, *size)),
        )
        .await?;
        let (s, k, r) = (store.clone(), *key, result.clone());
        blocking(move || s.put_action(&k, &r))
            .await?
            .map_err(RemoteError::Local)?;
        Ok(Some(result))
    }

    /// Looks `key` up without restoring it: the entry and its record are
    /// fetched and checked (signature, format, key, blob list) exactly as
    /// [`Self::fetch`] checks them, but the outputs stay on the server and
    /// nothing is recorded in `store` (only the small record blob, verified,
    /// is kept in its CAS). `ov graph` asks this to say which nodes the next
    /// build would restore.
    pub async fn peek(
        &self,
        store: &Store,
        key: &NodeKey,
    ) -> Result<Option<ActionResult>, RemoteError> {
        let url = self.http.url("ac", &key.to_string());
        let ac = {
            let _p = self.permit().await;
            match self.http.get_small(&url, AC_LIMIT).await? {
                Some(body) => body,
                None => return Ok(None),
            }
        };
        let reject = |why: String| RemoteError::Rejected(format!("{url}: {why}"));
        let entry = proto::ActionResult::decode(&ac[..])
            .map_err(|e| reject(format!("not an ActionResult: {e}")))?;
        let listed = Listed::of(&entry).map_err(reject)?;
        if let Some(k) = &self.cfg.signing_key {
            let sig = entry
                .execution_metadata
                .as_ref()
                .map(|m| m.worker.as_str())
                .unwrap_or_default();
            if sig.is_empty() {
                return Err(reject(
                    "the entry is not signed, and a signing key is set".into(),
                ));
            }
            let blobs: Vec<BlobDigest> = listed.blobs.iter().copied().collect();
            if !k.verify(sig, key, &listed.record.0, &blobs) {
                return Err(reject(
                    "the entry's signature does not match the signing key".into(),
                ));
            }
        }
        let (record, record_size) = listed.record;
        if record_size > RECORD_LIMIT {
            return Err(reject(format!("a record of {record_size} bytes")));
        }
        if !store.has_blob(&record) {
            self.get_blob(store, &record, record_size).await?;
        }
        let s = store.clone();
        let bytes = blocking(move || s.read_blob(&record))
            .await?
            .map_err(RemoteError::Local)?;
        let rec: Record = serde_json::from_slice(&bytes)
            .map_err(|e| reject(format!("its record does not decode: {e}")))?;
        if rec.format != RECORD_FORMAT || rec.key != key.to_string() {
            return Err(reject(format!(
                "its record is of format {:?} for key {}",
                rec.format, rec.key
            )));
        }
        let result = rec.result;
        for b in &result.blobs {
            if !listed.blobs.contains(&b.digest) {
                return Err(reject(format!(
                    "its record names blob {} ({}), which the entry does not list",
                    b.digest, b.name
                )));
            }
        }
        Ok(Some(result))
    }

    /// Uploads the result of `key` with every blob it names (those the
    /// server lacks: each is asked for with `HEAD` first), then its record,
    /// then the entry, last, so no reader meets an entry whose blobs are
    /// not there yet. Signed when a signing key is set.
    pub async fn publish(
        &self,
        store: &Store,
        key: &NodeKey,
        result: &ActionResult,
    ) -> Result<(), RemoteError> {
        let mut blobs: Vec<(BlobDigest, u64)> =
            result.blobs.iter().map(|b| (b.digest, b.size)).collect();
        blobs.sort();
        blobs.dedup();
        futures_util::future::try_join_all(
            blobs
                .iter()
                .map(|(d, size)| self.put_blob_if_missing(store, d, *size)),
        )
        .await?;
        let record = serde_json::to_vec(&Record {
            format: RECORD_FORMAT.into(),
            key: key.to_string(),
            result: result.clone(),
        })
        .map_err(|e| {
            RemoteError::Local(crate::Error::io(store.root(), std::io::Error::other(e)))
        })?;
        let record_digest = BlobDigest::of_bytes(&record);
        let record_size = record.len() as u64;
        {
            let _p = self.permit().await;
            let url = self.http.url("cas", &record_digest.to_string());
            if !self.http.head(&url).await? {
                self.http.put_small(&url, record).await?;
                self.up.fetch_add(record_size, Ordering::Relaxed);
            }
        }
        let digest = |d: &BlobDigest, size: u64| proto::Digest {
            hash: d.to_string(),
            size_bytes: size as i64,
        };
        let mut output_files = vec![proto::OutputFile {
            path: RECORD_PATH.into(),
            digest: Some(digest(&record_digest, record_size)),
            is_executable: false,
        }];
        for (i, b) in result.blobs.iter().enumerate() {
            output_files.push(proto::OutputFile {
                // Numbered: names are the node's own and need not be unique
                // or path-like.
                path: format!("{BLOB_DIR}{i}"),
                digest: Some(digest(&b.digest, b.size)),
                is_executable: false,
            });
        }
        let signature = self.cfg.signing_key.as_ref().map(|k| {
            let listed: Vec<BlobDigest> = blobs.iter().map(|(d, _)| *d).collect();
            k.sign(key, &record_digest, &listed)
        });
        let entry = proto::ActionResult {
            output_files,
            exit_code: 0,
            execution_metadata: signature.map(|worker| proto::ExecutedActionMetadata { worker }),
        };
        let _p = self.permit().await;
        self.http
            .put_small(
                &self.http.url("ac", &key.to_string()),
                entry.encode_to_vec(),
            )
            .await
    }

    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.permits
            .acquire()
            .await
            .expect("the transfer semaphore is never closed")
    }

    async fn get_blob(&self, store: &Store, d: &BlobDigest, size: u64) -> Result<(), RemoteError> {
        let _p = self.permit().await;
        let n = self.http.get_blob(store, d, size).await?;
        self.down.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    async fn put_blob_if_missing(
        &self,
        store: &Store,
        d: &BlobDigest,
        size: u64,
    ) -> Result<(), RemoteError> {
        let _p = self.permit().await;
        if self
            .http
            .head(&self.http.url("cas", &d.to_string()))
            .await?
        {
            return Ok(());
        }
        let n = self.http.put_blob(store, d, size).await?;
        self.up.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// What an entry lists: its record, and the set of its other blobs.
struct Listed {
    record: (BlobDigest, u64),
    blobs: BTreeSet<BlobDigest>,
}

impl Listed {
    fn of(entry: &proto::ActionResult) -> Result<Listed, String> {
        let mut record = None;
        let mut blobs = BTreeSet::new();
        for f in &entry.output_files {
            let d = f
                .digest
                .as_ref()
                .ok_or_else(|| format!("output {} has no digest", f.path))?;
            let digest: BlobDigest = d
                .hash
                .parse()
                .map_err(|_| format!("output {} has a malformed digest", f.path))?;
            let size = u64::try_from(d.size_bytes)
                .map_err(|_| format!("output {} has a negative size", f.path))?;
            if f.path == RECORD_PATH {
                record = Some((digest, size));
            } else if f.path.starts_with(BLOB_DIR) {
                blobs.insert(digest);
            }
        }
        let record = record.ok_or_else(|| "not an entry ov wrote (no record)".to_string())?;
        Ok(Listed { record, blobs })
    }
}

/// Runs a store call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RemoteError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        RemoteError::Local(crate::Error::io(
            std::path::PathBuf::new(),
            std::io::Error::other(e),
        ))
    })
}
