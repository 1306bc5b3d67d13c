//! podman's own (libpod) endpoints, where the compat one bollard speaks
//! misbehaves.
//!
//! Importing a rootfs through the compat `POST /images/create?fromSrc=-`
//! makes podman copy the body to `$TMPDIR/api_load.tar*` and never remove
//! it (podman#28531, open; seen on podman 4.3 here: 14 GB of them in a
//! day of builds). `POST /libpod/images/import` keeps its copy only for the
//! call. bollard does not speak libpod, so this goes through hyper on the
//! engine's socket, as [`crate::ping`] does.

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Imports the rootfs tarball (plain or gzip) at `tarball` as image
/// `reference` through the podman socket `socket` (API `version`); the new
/// image's id.
pub async fn import(
    socket: &str,
    version: &str,
    tarball: &Path,
    reference: &str,
) -> Result<String, String> {
    let file = tokio::fs::File::open(tarball)
        .await
        .map_err(|e| format!("{}: {e}", tarball.display()))?;
    let frames = tokio_util::io::ReaderStream::new(file).map(|r| r.map(Frame::data));
    let body: Body = BodyExt::boxed(StreamBody::new(frames));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("reference", reference)
        .finish();
    let path = format!("/v{version}/libpod/images/import?{query}");
    let uri: hyper::Uri = hyperlocal::Uri::new(socket, &path).into();
    let req = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/x-tar")
        .body(body)
        .map_err(|e| e.to_string())?;
    let client: Client<hyperlocal::UnixConnector, Body> =
        Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
    let resp = client
        .request(req)
        .await
        .map_err(|e| crate::ping::chain(&e))?;
    let status = resp.status();
    let text = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&text);
    if !status.is_success() {
        return Err(format!("podman answered {status}: {}", text.trim()));
    }
    #[derive(serde::Deserialize)]
    struct Imported {
        #[serde(rename = "Id")]
        id: String,
    }
    serde_json::from_str::<Imported>(&text)
        .map(|i| i.id)
        .map_err(|e| format!("podman's answer {text:?}: {e}"))
}
