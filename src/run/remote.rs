//! The build's side of the remote cache: on a local miss, ask the remote
//! and restore what it has into the local store (then the node is an
//! ordinary local hit); after a node is recorded, upload it in the
//! background; at the end, wait for the uploads for a bounded time.
//!
//! Never worse than no cache: the first time the server fails (down, slow,
//! an error status, a reset, a cut body) the run warns once and goes on
//! without it, so a dead server costs one time-out. An entry that fails its
//! checks (wrong bytes, a bad signature) is a miss; the first such is
//! warned about too, and later ones only counted. Nothing unchecked
//! reaches the local store (see `ov_cache::remote`).

use super::Shared;
use ov_cache::remote::{Config, Mode, RemoteCache, RemoteError, SigningKey};
use ov_cache::NodeKey;
use petgraph::graph::NodeIndex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The default bound on the wait for uploads at the end of a run.
pub const DEFAULT_UPLOAD_WAIT: Duration = Duration::from_secs(600);

/// What `ov build` was told about the remote cache.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// The server and how to use it.
    pub config: Config,
    /// How long the end of a run waits for uploads still going.
    pub upload_wait: Duration,
}

/// The remote cache of one run, and its counters.
pub struct Remote {
    cache: RemoteCache,
    upload_wait: Duration,
    /// Set by the first server failure: the rest of the run does without.
    off: AtomicBool,
    warned: AtomicBool,
    hits: AtomicUsize,
    misses: AtomicUsize,
    errors: AtomicUsize,
    uploads: AtomicUsize,
    tasks: Mutex<tokio::task::JoinSet<()>>,
}

/// A run's remote cache figures, for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RemoteCounts {
    /// Entries found and restored.
    pub hits: usize,
    /// Lookups that found nothing usable.
    pub misses: usize,
    /// Failed calls and refused entries.
    pub errors: usize,
    /// Entries uploaded.
    pub uploads: usize,
    /// Blob bytes downloaded.
    pub bytes_down: u64,
    /// Blob bytes uploaded.
    pub bytes_up: u64,
}

impl Remote {
    /// A remote cache for one run.
    pub fn new(opts: &RemoteOptions) -> anyhow::Result<Remote> {
        let cache = RemoteCache::new(opts.config.clone())
            .map_err(|e| anyhow::anyhow!(ov_cache::redact(&e.to_string())))?;
        Ok(Remote {
            cache,
            upload_wait: opts.upload_wait,
            off: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            uploads: AtomicUsize::new(0),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    fn usable(&self) -> bool {
        !self.off.load(Ordering::Relaxed)
    }

    /// Counts a failure, turns the server off for the run when it is the
    /// server's, and warns the first time only.
    fn failed(&self, sh: &Shared, doing: &str, e: &RemoteError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let server = e.is_server_failure();
        if server {
            self.off.store(true, Ordering::Relaxed);
        }
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        let then = if server {
            "this build goes on without it"
        } else {
            "the entry was not used; further problems are only counted"
        };
        sh.progress.warn(&ov_cache::redact(&format!(
            "remote cache {}: {doing}: {e}; {then}",
            self.cache.config().url
        )));
    }

    /// The figures so far.
    pub fn counts(&self) -> RemoteCounts {
        RemoteCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            uploads: self.uploads.load(Ordering::Relaxed),
            bytes_down: self.cache.bytes_downloaded(),
            bytes_up: self.cache.bytes_uploaded(),
        }
    }
}

/// Hook for a local miss of `key`: looks it up in the remote cache and, on
/// a hit, restores the result and its blobs into the local store. True
/// when the local store now has the key (look it up again); false to
/// build.
pub async fn restore(sh: &Arc<Shared>, ix: NodeIndex, key: &NodeKey) -> bool {
    let Some(remote) = &sh.remote else {
        return false;
    };
    // A read-only cache dir takes nothing in.
    if sh.read_only || !remote.usable() {
        return false;
    }
    match remote.cache.fetch(&sh.store, key).await {
        Ok(Some(r)) => {
            remote.hits.fetch_add(1, Ordering::Relaxed);
            // `ov explain` and the scheduler's estimates learn of it too.
            let _ = sh.store.record_last(&r.node_id, key, &r);
            true
        }
        Ok(None) => {
            remote.misses.fetch_add(1, Ordering::Relaxed);
            false
        }
        Err(e) => {
            remote.misses.fetch_add(1, Ordering::Relaxed);
            let node = &sh.ws.plan.graph[ix].id;
            remote.failed(sh, &format!("looking up {node}"), &e);
            false
        }
    }
}

/// Hook after node `ix` was built and recorded under `key`: uploads its
/// result in the background (read-write mode only). The transfer limit of
/// the remote cache bounds how many run at once.
pub fn upload_later(sh: &Arc<Shared>, ix: NodeIndex, key: NodeKey) {
    let Some(remote) = &sh.remote else {
        return;
    };
    if remote.cache.config().mode != Mode::ReadWrite || sh.read_only || !remote.usable() {
        return;
    }
    let sh2 = sh.clone();
    let task = async move {
        let Some(remote) = &sh2.remote else {
            return;
        };
        if !remote.usable() {
            return;
        }
        let node = sh2.ws.plan.graph[ix].id.clone();
        let store = sh2.store.clone();
        let found = tokio::task::spawn_blocking(move || store.get_action(&key)).await;
        let Ok(Ok(ov_cache::Lookup::Hit(result))) = found else {
            return;
        };
        match remote.cache.publish(&sh2.store, &key, &result).await {
            Ok(()) => {
                remote.uploads.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => remote.failed(&sh2, &format!("uploading {node}"), &e),
        }
    };
    if let Ok(mut tasks) = remote.tasks.lock() {
        tasks.spawn(task);
    }
}

/// Hook at the end of a run: waits for the uploads still going, at most the
/// configured time, then abandons the rest with a warning.
pub async fn finish(sh: &Shared) -> Option<RemoteCounts> {
    let remote = sh.remote.as_ref()?;
    let mut tasks = match remote.tasks.lock() {
        Ok(mut t) => std::mem::take(&mut *t),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    let waited = tokio::time::timeout(remote.upload_wait, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if waited.is_err() {
        let left = tasks.len();
        tasks.abort_all();
        remote.errors.fetch_add(left, Ordering::Relaxed);
        sh.progress.warn(&ov_cache::redact(&format!(
            "remote cache {}: {left} upload(s) still running after {}s were abandoned",
            remote.cache.config().url,
            remote.upload_wait.as_secs()
        )));
    }
    Some(remote.counts())
}

/// The remote cache options from what the user gave: the URL (flag,
/// `OV_REMOTE_CACHE` or the `cache.remote` setting), the mode, and the
/// environment (`var`) for credentials, the signing key, the CA file and
/// time-outs. `None` when no URL is set. Errors are bad input.
pub fn options(
    url: Option<&str>,
    mode: Mode,
    ca_file: Option<std::path::PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<RemoteOptions>, String> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let basic = var("OV_REMOTE_CACHE_USER")
        .map(|u| (u, var("OV_REMOTE_CACHE_PASSWORD").unwrap_or_default()));
    let netrc_path = var("NETRC")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".netrc")));
    let netrc = netrc_path.and_then(|p| std::fs::read_to_string(p).ok());
    let mut config = Config::new(
        url,
        mode,
        var("OV_REMOTE_CACHE_TOKEN"),
        basic,
        netrc.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    config.ca_file = ca_file.or_else(|| var("OV_REMOTE_CACHE_CA").map(Into::into));
    config.signing_key = var("OV_CACHE_SIGNING_KEY").and_then(SigningKey::new);
    let secs = |name: &str, default: Duration| -> Result<Duration, String> {
        match var(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{name}: `{v}` is not a positive number of seconds")),
        }
    };
    config.timeout = secs("OV_REMOTE_CACHE_TIMEOUT", config.timeout)?;
    Ok(Some(RemoteOptions {
        config,
        upload_wait: secs("OV_REMOTE_CACHE_UPLOAD_WAIT", DEFAULT_UPLOAD_WAIT)?,
    }))
}
