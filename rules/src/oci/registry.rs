//! An OCI registry as an image cache (`oci://host:port/namespace`), like
//! BuildKit's registry cache, spoken directly over the distribution API
//! from the CAS: no engine, so no engine registry configuration.
//!
//! The result of a node that kept its image as parts is pushed to
//! `<namespace>/ov-node:<key>` as that image's OCI manifest, annotated
//! with the result itself ([`RESULT_ANNOTATION`]); the image stays an
//! ordinary image any client can pull. A lookup gets the manifest by key
//! tag, then the config and each layer by digest, each verified against
//! its digest as it streams into the CAS.
//!
//! Plain HTTP, which registries allow only on loopback; TLS registries are
//! refused with a clear error rather than spoken to in the clear.

use super::{OciError, Part, Parts};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use ov_cache::{BlobDigest, Store};
use std::sync::Arc;
use std::time::Duration;

/// The manifest annotation holding the node's result (JSON).
pub const RESULT_ANNOTATION: &str = "org.overthinkos.ov.result";

/// The repository, under the namespace, that holds node images.
const REPO: &str = "ov-node";

/// The OCI image manifest media type.
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// How long a small call (a HEAD, a manifest) may take.
const SMALL: Duration = Duration::from_secs(20);
/// How long a blob transfer may take.
const BLOB: Duration = Duration::from_secs(900);

/// A registry cache location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `host:port`.
    pub authority: String,
    /// The namespace under which `ov-node` lives (may be empty).
    pub namespace: String,
}

impl RegistryUrl {
    /// Parses `oci://host:port/namespace`. Only loopback hosts: a registry
    /// elsewhere speaks TLS, which this client does not.
    pub fn parse(url: &str) -> Result<RegistryUrl, String> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| format!("`{url}` is not an oci://host:port/namespace URL"))?;
        let (authority, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "`{url}`: only a registry on this machine (127.0.0.1, localhost) is reached over \
                 plain HTTP; others need TLS, which the image cache does not speak yet"
            ));
        }
        let namespace = namespace.trim_matches('/').to_string();
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
        if !namespace.chars().all(ok) {
            return Err(format!(
                "`{url}`: a namespace is lowercase letters, digits, `.`, `_`, `-` and `/`"
            ));
        }
        Ok(RegistryUrl {
            authority: authority.to_string(),
            namespace,
        })
    }

    fn repo(&self) -> String {
        if self.namespace.is_empty() {
            REPO.to_string()
        } else {
            format!("{}/{REPO}", self.namespace)
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection, a reset, a time-out.
    #[error("registry {0}: {1}")]
    Transport(String, String),
    /// An answer other than the protocol's.
    #[error("registry {0} answered {1}")]
    Status(String, StatusCode),
    /// What came back is not what was asked for.
    #[error("registry {0}: {1}")]
    Bad(String, String),
    /// Storing what came back failed.
    #[error(transparent)]
    Oci(#[from] OciError),
}

type Body = BoxBody<Bytes, std::io::Error>;

/// A registry client (connections are reused across calls).
#[derive(Clone)]
pub struct Registry {
    url: RegistryUrl,
    client: Client<HttpConnector, Body>,
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

impl Registry {
    /// A client of `url`; nothing is sent yet.
    pub fn new(url: RegistryUrl) -> Registry {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new()).build(http);
        Registry { url, client }
    }

    /// Where it is, for messages.
    pub fn url(&self) -> String {
        format!("oci://{}/{}", self.url.authority, self.url.namespace)
    }

    fn uri(&self, path: &str) -> String {
        format!(
            "http://{}/v2/{}/{path}",
            self.url.authority,
            self.url.repo()
        )
    }

    async fn send(
        &self,
        req: Request<Body>,
        limit: Duration,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        let what = format!("{} {}", req.method(), req.uri().path());
        match tokio::time::timeout(limit, self.client.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RegistryError::Transport(what, chain(&e))),
            Err(_) => Err(RegistryError::Transport(
                what,
                format!("no answer within {} s", limit.as_secs()),
            )),
        }
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        body: Body,
    ) -> Result<Request<Body>, RegistryError> {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|e| RegistryError::Bad(uri.to_string(), e.to_string()))
    }

    /// True when the registry holds blob `d`.
    async fn has_blob(&self, d: &BlobDigest) -> Result<bool, RegistryError> {
        let uri = self.uri(&format!("blobs/sha256:{d}"));
        let r = self
            .send(self.request(Method::HEAD, &uri, empty())?, SMALL)
            .await?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(RegistryError::Status(uri, s)),
        }
    }

    /// Uploads blob `d` of `size` bytes from the store, streamed (one
    /// monolithic upload: a POST for the location, a PUT of the body).
    async fn push_blob(
        &self,
        d: &BlobDigest,
        store: &Arc<Store>,
        scratch: &std::path::Path,
    ) -> Result<(), RegistryError> {
        let uri = self.uri("blobs/uploads/");
        let r = self
            .send(self.request(Method::POST, &uri, empty())?, SMALL)
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(RegistryError::Status(uri, r.status()));
        }
        let location = r
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| RegistryError::Bad(uri.clone(), "no Location".into()))?
            .to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.url.authority)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest=sha256:{d}");
        // A hard link of the store's file (verified), read as it is sent.
        let path = scratch.join(format!("push-{d}"));
        let (s, p, dd) = (store.clone(), path.clone(), *d);
        tokio::task::spawn_blocking(move || s.blob_to_file(&dd, &p))
            .await
            .map_err(|e| RegistryError::Bad(put.clone(), e.to_string()))?
            .map_err(|e| OciError::Store(e.to_string()))?;
        let file = tokio::fs::File::open(&path).await.map_err(OciError::Io)?;
        let _ = std::fs::remove_file(&path);
        let size = file.metadata().await.map_err(OciError::Io)?.len();
        let stream = tokio_util::io::ReaderStream::new(file).map_ok(Frame::data);
        let body = StreamBody::new(stream).boxed();
        let mut req = self.request(Method::PUT, &put, body)?;
        req.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/octet-stream"),
        );
        req.headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, size.into());
        let r = self.send(req, BLOB).await?;
        if r.status() != StatusCode::CREATED {
            return Err(RegistryError::Status(uri, r.status()));
        }
        Ok(())
    }

    /// Pushes the parts of the result of `key` and the result itself:
    /// blobs the registry lacks, then the annotated manifest under the key.
    pub async fn push(
        &self,
        key: &str,
        parts: &Parts,
        result_json: &str,
        store: &Arc<Store>,
        scratch: &std::path::Path,
    ) -> Result<(), RegistryError> {
        std::fs::create_dir_all(scratch).map_err(OciError::Io)?;
        let mut blobs = vec![parts.config];
        blobs.extend(parts.layers.iter().copied());
        let mut seen = std::collections::HashSet::new();
        for b in blobs.into_iter().filter(|b| seen.insert(b.digest)) {
            if !self.has_blob(&b.digest).await? {
                self.push_blob(&b.digest, store, scratch).await?;
            }
        }
        let (s, d) = (store.clone(), parts.manifest.digest);
        let manifest = tokio::task::spawn_blocking(move || s.read_blob(&d))
            .await
            .map_err(|e| RegistryError::Bad(key.into(), e.to_string()))?
            .map_err(|e| OciError::Store(e.to_string()))?;
        let mut m: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(|e| OciError::Format(format!("image manifest: {e}")))?;
        if let Some(o) = m.as_object_mut() {
            o.insert(
                "annotations".into(),
                serde_json::json!({ RESULT_ANNOTATION: result_json }),
            );
        }
        let bytes = serde_json::to_vec(&m).map_err(|e| OciError::Format(e.to_string()))?;
        let uri = self.uri(&format!("manifests/{key}"));
        let body = Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed();
        let mut req = self.request(Method::PUT, &uri, body)?;
        req.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(MANIFEST_TYPE),
        );
        let r = self.send(req, SMALL).await?;
        if r.status() != StatusCode::CREATED {
            return Err(RegistryError::Status(uri, r.status()));
        }
        Ok(())
    }

    /// The manifest tagged `key` and the result it carries, with its parts
    /// in `store` (the manifest stored as pulled); `None` when the registry
    /// has no such tag.
    pub async fn pull(
        &self,
        key: &str,
        store: &Arc<Store>,
    ) -> Result<Option<(Parts, String)>, RegistryError> {
        let uri = self.uri(&format!("manifests/{key}"));
        let mut req = self.request(Method::GET, &uri, empty())?;
        req.headers_mut().insert(
            hyper::header::ACCEPT,
            hyper::header::HeaderValue::from_static(MANIFEST_TYPE),
        );
        let r = self.send(req, SMALL).await?;
        match r.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(RegistryError::Status(uri, s)),
        }
        let bytes = tokio::time::timeout(SMALL, r.into_body().collect())
            .await
            .map_err(|_| RegistryError::Transport(uri.clone(), "body timed out".into()))?
            .map_err(|e| RegistryError::Transport(uri.clone(), chain(&e)))?
            .to_bytes();
        let m: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Bad(uri.clone(), format!("manifest: {e}")))?;
        let Some(result) = m
            .pointer(&format!(
                "/annotations/{}",
                RESULT_ANNOTATION.replace('/', "~1")
            ))
            .and_then(|v| v.as_str())
            .map(str::to_string)
        else {
            return Err(RegistryError::Bad(
                uri,
                "the manifest carries no ov result".into(),
            ));
        };
        let (s, b) = (store.clone(), bytes.clone());
        let manifest = tokio::task::spawn_blocking(move || s.put_blob_bytes(&b))
            .await
            .map_err(|e| RegistryError::Bad(uri.clone(), e.to_string()))?
            .map_err(|e| OciError::Store(e.to_string()))?;
        let parts = Parts::from_manifest(
            &bytes,
            Part {
                digest: manifest,
                size: bytes.len() as u64,
            },
        )?;
        let mut wanted = vec![parts.config];
        wanted.extend(parts.layers.iter().copied());
        for p in wanted {
            if !store.has_blob(&p.digest) {
                self.pull_blob(&p, store).await?;
            }
        }
        Ok(Some((parts, result)))
    }

    /// Streams blob `p` into the store, checking its digest and size.
    async fn pull_blob(&self, p: &Part, store: &Arc<Store>) -> Result<(), RegistryError> {
        let uri = self.uri(&format!("blobs/sha256:{}", p.digest));
        let r = self
            .send(self.request(Method::GET, &uri, empty())?, BLOB)
            .await?;
        if r.status() != StatusCode::OK {
            return Err(RegistryError::Status(uri, r.status()));
        }
        let body = r
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other);
        let reader = tokio_util::io::StreamReader::new(body);
        let s = store.clone();
        let want = *p;
        let u = uri.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let mut sync = tokio_util::io::SyncIoBridge::new(reader);
            s.put_blob_reader(&mut sync, &u)
        });
        let stored = tokio::time::timeout(BLOB, stored)
            .await
            .map_err(|_| RegistryError::Transport(uri.clone(), "blob timed out".into()))?
            .map_err(|e| RegistryError::Bad(uri.clone(), e.to_string()))?
            .map_err(|e| RegistryError::Transport(uri.clone(), e.to_string()))?;
        // The CAS stores under what it hashed: wrong bytes land under
        // another digest, unreferenced, and gc takes them.
        if stored != (want.digest, want.size) {
            return Err(RegistryError::Bad(
                uri,
                format!(
                    "sent {} ({} bytes), not the blob asked for",
                    stored.0, stored.1
                ),
            ));
        }
        Ok(())
    }
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_loopback_registry_and_a_namespace() {
        let u = RegistryUrl::parse("oci://127.0.0.1:5000/ci/cache").unwrap();
        assert_eq!(u.authority, "127.0.0.1:5000");
        assert_eq!(u.repo(), "ci/cache/ov-node");
        assert_eq!(
            RegistryUrl::parse("oci://localhost:5000").unwrap().repo(),
            "ov-node"
        );
        assert!(RegistryUrl::parse("http://127.0.0.1:5000/x").is_err());
        let e = RegistryUrl::parse("oci://registry.example.org/x").unwrap_err();
        assert!(e.contains("TLS"), "{e}");
        assert!(RegistryUrl::parse("oci://127.0.0.1:5000/Bad Name").is_err());
    }
}
