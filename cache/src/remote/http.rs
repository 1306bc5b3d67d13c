//! The HTTP side: one pooled client, small requests with a total time-out,
//! and blob bodies streamed both ways with their digests checked on the fly
//! (never a whole blob in memory).

use super::error::{transport, RemoteError};
use super::Config;
use crate::{BlobDigest, Store};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode, Url};
use sha2::Digest as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Chunks read from the store for an upload.
const CHUNK: usize = 1 << 20;

/// Chunks of a download in flight between the network and the disk.
const IN_FLIGHT: usize = 32;

/// Chunks of an upload read ahead of the network.
const READ_AHEAD: usize = 4;

/// Numbers the temp files of downloads.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// The client and the server's base URL.
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    auth: Option<super::Auth>,
    timeout: std::time::Duration,
}

impl Http {
    pub(crate) fn new(cfg: &Config) -> Result<Http, RemoteError> {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("ov/", env!("CARGO_PKG_VERSION")))
            // No client-wide read time-out: reqwest's runs from the start of
            // a request to its answer, which would cut off any upload longer
            // than it. Each call bounds its own stalls instead (see `stall`).
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.parallel.max(1));
        if let Some(path) = &cfg.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| RemoteError::Local(crate::Error::io(path, e)))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RemoteError::Rejected(format!("{}: not a PEM CA bundle: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(RemoteError::Rejected(format!(
                    "{}: holds no PEM certificate",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b
            .build()
            .map_err(|e| RemoteError::Rejected(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Http {
            client,
            base: cfg.url.clone(),
            auth: cfg.auth.clone(),
            timeout: cfg.timeout,
        })
    }

    /// `<base>/<kind>/<name>`.
    pub(crate) fn url(&self, kind: &str, name: &str) -> Url {
        // Both parts are ours (`ac`/`cas`, hex digests): joining cannot fail.
        self.base
            .join(&format!("{kind}/{name}"))
            .unwrap_or_else(|_| self.base.clone())
    }

    fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url.clone());
        // reqwest marks these headers sensitive: they are left out of its
        // Debug output.
        match &self.auth {
            Some(super::Auth::Bearer(t)) => r.bearer_auth(t),
            Some(super::Auth::Basic { user, password }) => r.basic_auth(user, Some(password)),
            None => r,
        }
    }

    async fn send(
        &self,
        method: &'static str,
        url: &Url,
        r: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RemoteError> {
        r.send()
            .await
            .map_err(|e| transport(&format!("{method} {url}"), &e.without_url()))
    }

    fn status(method: &'static str, url: &Url, status: StatusCode) -> RemoteError {
        RemoteError::Status {
            method,
            url: url.to_string(),
            status: status.as_u16(),
        }
    }

    /// `f`, unless it takes longer than the time-out: one step of a
    /// transfer (an answer, a chunk) that does not come is a stall.
    async fn stall<T>(
        &self,
        method: &'static str,
        url: &Url,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T, RemoteError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| self.stalled(method, url))
    }

    fn stalled(&self, method: &'static str, url: &Url) -> RemoteError {
        RemoteError::Transport(format!(
            "{method} {url}: operation timed out (no progress for {:.1}s)",
            self.timeout.as_secs_f64()
        ))
    }

    /// `f`, an upload whose body counts its chunks in `moved`, unless a
    /// whole time-out passes without a chunk taken (or, once all are sent,
    /// without the answer).
    async fn watch<T>(
        &self,
        method: &'static str,
        url: &Url,
        moved: &AtomicU64,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T, RemoteError> {
        tokio::pin!(f);
        let mut seen = moved.load(Ordering::Relaxed);
        loop {
            match tokio::time::timeout(self.timeout, &mut f).await {
                Ok(v) => return Ok(v),
                Err(_) => {
                    let now = moved.load(Ordering::Relaxed);
                    if now == seen {
                        return Err(self.stalled(method, url));
                    }
                    seen = now;
                }
            }
        }
    }

    /// Whether the server has `url`.
    pub(crate) async fn head(&self, url: &Url) -> Result<bool, RemoteError> {
        let r = self.request(Method::HEAD, url).timeout(self.timeout);
        let resp = self.send("HEAD", url, r).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(Self::status("HEAD", url, s)),
        }
    }

    /// A small body (at most `limit` bytes), `None` when missing.
    pub(crate) async fn get_small(
        &self,
        url: &Url,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let r = self.request(Method::GET, url).timeout(self.timeout);
        let resp = self.send("GET", url, r).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(Self::status("GET", url, s)),
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transport(&format!("GET {url}"), &e.without_url()))?;
            if body.len() + chunk.len() > limit {
                return Err(RemoteError::Rejected(format!(
                    "GET {url}: more than {limit} bytes, too large for an entry"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// Puts a small body.
    pub(crate) async fn put_small(&self, url: &Url, body: Vec<u8>) -> Result<(), RemoteError> {
        let r = self
            .request(Method::PUT, url)
            .timeout(self.timeout)
            .body(body);
        let resp = self.send("PUT", url, r).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(Self::status("PUT", url, s)),
        }
    }

    /// Downloads blob `d` of `size` bytes into the store, checking its
    /// sha256 as it streams to a temp file; only a blob that matches is
    /// moved into the content store. Returns the bytes received.
    pub(crate) async fn get_blob(
        &self,
        store: &Store,
        d: &BlobDigest,
        size: u64,
    ) -> Result<u64, RemoteError> {
        let url = self.url("cas", &d.to_string());
        let r = self.request(Method::GET, &url);
        let resp = self.stall("GET", &url, self.send("GET", &url, r)).await??;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(RemoteError::Rejected(format!(
                    "GET {url}: the entry names this blob but the server does not have it"
                )))
            }
            s => return Err(Self::status("GET", &url, s)),
        }
        if let Some(len) = resp.content_length() {
            if len != size {
                return Err(RemoteError::Rejected(format!(
                    "GET {url}: {len} bytes where the entry says {size}"
                )));
            }
        }
        let tmp_dir = store.root().join("tmp");
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(IN_FLIGHT);
        // Disk writes and hashing run on their own thread, alongside the
        // network reads.
        let writer = tokio::task::spawn_blocking(move || write_hashed(&tmp_dir, rx));
        let mut received = 0u64;
        let mut stream = resp.bytes_stream();
        let pumped: Result<(), RemoteError> = async {
            while let Some(chunk) = self.stall("GET", &url, stream.next()).await? {
                let chunk =
                    chunk.map_err(|e| transport(&format!("GET {url}"), &e.without_url()))?;
                received += chunk.len() as u64;
                if received > size {
                    return Err(RemoteError::Rejected(format!(
                        "GET {url}: more than the {size} bytes the entry says"
                    )));
                }
                if tx.send(chunk).await.is_err() {
                    // The writer stopped; its error is reported below.
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop(tx);
        let written = writer.await.map_err(|e| {
            RemoteError::Local(crate::Error::io(store.root(), std::io::Error::other(e)))
        })?;
        pumped?;
        let written = written.map_err(RemoteError::Local)?;
        if written.len != size {
            return Err(RemoteError::Rejected(format!(
                "GET {url}: the body ended after {} of {size} bytes",
                written.len
            )));
        }
        if written.digest != *d {
            return Err(RemoteError::Rejected(format!(
                "GET {url}: the bytes received hash to {}, not to the blob's digest",
                written.digest
            )));
        }
        let store = store.clone();
        let d = *d;
        tokio::task::spawn_blocking(move || written.install(&store, &d))
            .await
            .map_err(|e| {
                RemoteError::Local(crate::Error::io(PathBuf::new(), std::io::Error::other(e)))
            })?
            .map_err(RemoteError::Local)?;
        Ok(received)
    }

    /// Uploads stored blob `d` of `size` bytes. The stream re-hashes the
    /// blob and holds back its last chunk until the digest checks, so a
    /// blob damaged on this disk fails the upload instead of reaching the
    /// server under a digest it does not have (such a blob is evicted).
    pub(crate) async fn put_blob(
        &self,
        store: &Store,
        d: &BlobDigest,
        size: u64,
    ) -> Result<u64, RemoteError> {
        let url = self.url("cas", &d.to_string());
        let path = store.content_path(d);
        let file = std::fs::File::open(&path)
            .map_err(|e| RemoteError::Local(crate::Error::io(&path, e)))?;
        let damaged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let moved = std::sync::Arc::new(AtomicU64::new(0));
        let body = verified(file, *d, size, damaged.clone());
        let counted = {
            let moved = moved.clone();
            body.inspect(move |_| {
                moved.fetch_add(1, Ordering::Relaxed);
            })
        };
        let r = self
            .request(Method::PUT, &url)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(counted));
        let sent = self
            .watch("PUT", &url, &moved, self.send("PUT", &url, r))
            .await;
        if damaged.load(Ordering::Relaxed) {
            let _ = store.evict_blob(d);
            return Err(RemoteError::Local(crate::Error::Corrupt {
                what: format!("blob {d}"),
                reason: "it does not match its digest; it was not uploaded".into(),
            }));
        }
        match sent??.status() {
            s if s.is_success() => Ok(size),
            s => Err(Self::status("PUT", &url, s)),
        }
    }
}

/// A download on disk, hashed, not yet in the store. Dropping it removes
/// the temp file.
struct Written {
    tmp: PathBuf,
    digest: BlobDigest,
    len: u64,
    installed: bool,
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Written {
    /// Moves the checked file to its place in the content store, read-only
    /// as the store keeps content. Not synced: a blob lost in a crash is
    /// found missing or short by the next lookup (sizes are checked) and
    /// fetched again, and its content is verified whenever it is read.
    fn install(mut self, store: &Store, d: &BlobDigest) -> Result<(), crate::Error> {
        let dest = store.content_path(d);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        }
        let mut perms = std::fs::metadata(&self.tmp)
            .map_err(|e| crate::Error::io(&self.tmp, e))?
            .permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&self.tmp, perms).map_err(|e| crate::Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &dest).map_err(|e| crate::Error::io(&dest, e))?;
        self.installed = true;
        store.changed();
        Ok(())
    }
}

/// Writes the chunks from `rx` to a new temp file in `dir`, hashing them.
fn write_hashed(
    dir: &std::path::Path,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<Written, crate::Error> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("remote-{}-{n}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| crate::Error::io(&tmp, e))?;
    let mut written = Written {
        tmp,
        digest: BlobDigest::from_bytes([0; 32]),
        len: 0,
        installed: false,
    };
    let mut out = std::io::BufWriter::with_capacity(CHUNK, file);
    let mut hasher = sha2::Sha256::new();
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
        out.write_all(&chunk)
            .map_err(|e| crate::Error::io(&written.tmp, e))?;
        written.len += chunk.len() as u64;
    }
    out.flush().map_err(|e| crate::Error::io(&written.tmp, e))?;
    written.digest = BlobDigest::from_bytes(hasher.finalize().into());
    Ok(written)
}

/// The file as a stream of chunks, read and re-hashed on a blocking thread
/// a few chunks ahead of the network; the last chunk is sent only once the
/// whole file matched `d` and `size`, else the stream ends in an error (and
/// `damaged` is set), which aborts the request before the server has the
/// whole body.
fn verified(
    mut file: std::fs::File,
    d: BlobDigest,
    size: u64,
    damaged: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut hasher = sha2::Sha256::new();
        // The latest chunk, held until the next read shows it is not the
        // last one.
        let mut held: Option<Bytes> = None;
        let mut read = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            while n < CHUNK {
                match std::io::Read::read(&mut file, &mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hasher.update(&buf);
            read += n as u64;
            if let Some(earlier) = held.replace(Bytes::from(buf)) {
                if tx.blocking_send(Ok(earlier)).is_err() {
                    // The request was dropped.
                    return;
                }
            }
        }
        let got = BlobDigest::from_bytes(hasher.finalize().into());
        if got != d || read != size {
            damaged.store(true, Ordering::Relaxed);
            let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                "blob {d} in the store does not match its digest"
            ))));
        } else if let Some(last) = held {
            let _ = tx.blocking_send(Ok(last));
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
