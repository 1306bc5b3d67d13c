//! podman's own (libpod) endpoints, where the compat one bollard speaks
//! misbehaves.
//!
//! Waiting for a container through the compat `POST /containers/{id}/wait`
//! makes podman 4.3's service spin a core for as long as the container
//! runs (7 s of its CPU for a 6 s `sleep`, measured here); on a 2-core
//! machine that is a core taken from the container it waits for: a disk
//! script ran 10–13% slower through ov than under `podman run`. The
//! libpod `wait` costs it nothing measurable.
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
    let (status, text) = send(req).await?;
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

/// Waits until container `id` has stopped, through the podman socket
/// `socket` (API `version`); its exit code. Errors come as bollard's, so
/// they are told apart as the compat call's are: a broken connection is
/// an `IOError` (the engine went away), an answer a server error.
pub async fn wait(socket: &str, version: &str, id: &str) -> Result<i64, bollard::errors::Error> {
    use bollard::errors::Error as E;
    let gone = |message: String| E::IOError {
        err: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, message),
    };
    let path = format!("/v{version}/libpod/containers/{id}/wait?condition=stopped");
    let uri: hyper::Uri = hyperlocal::Uri::new(socket, &path).into();
    let body: Body = BodyExt::boxed(http_body_util::Empty::new().map_err(|e| match e {}));
    let req = hyper::Request::post(uri)
        .body(body)
        .map_err(|e| gone(e.to_string()))?;
    let (status, text) = send(req).await.map_err(gone)?;
    let answer = |message: String| E::DockerResponseServerError {
        status_code: status.as_u16(),
        message,
    };
    if !status.is_success() {
        return Err(answer(text.trim().to_string()));
    }
    text.trim()
        .parse()
        .map_err(|e| answer(format!("podman's answer {text:?}: {e}")))
}

/// Sends `req` on its unix socket; the status and the body as text. An
/// error is the connection's (refused, reset, cut mid-answer).
async fn send(req: hyper::Request<Body>) -> Result<(hyper::StatusCode, String), String> {
    let client: Client<hyperlocal::UnixConnector, Body> =
        Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
    let resp = client
        .request(req)
        .await
        .map_err(|e| crate::ping::chain(&e))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
