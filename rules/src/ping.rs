//! The engine's `_ping`, read with its headers.
//!
//! podman answers a ping with `Libpod-Api-Version`, which tells, at no
//! extra call, whether one image list is cheaper than a check per node:
//! podman 4's compat list works out sizes and parents image by image (about
//! 0.1 s each on a loaded machine), so with a few hundred images in the
//! engine one list costs seconds, while one inspect costs ~20 ms. bollard's
//! `ping` keeps the headers to itself, so this asks through hyper, which
//! bollard already runs on.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What a ping told about the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pong {
    /// podman's version (`4.3.1`); `None` for other engines, or when the
    /// ping went through bollard.
    pub libpod: Option<String>,
    /// The `Server` header (`Libpod/4.3.1 (linux)`), which names the
    /// engine's kind, version and OS.
    pub server: Option<String>,
}

impl Pong {
    /// True when listing every image at once is the cheap way to check
    /// many of them: every engine but podman before 5.
    pub fn cheap_image_list(&self) -> bool {
        let major = |v: &str| {
            v.split('.')
                .next()
                .and_then(|m| m.trim().parse::<u32>().ok())
        };
        match self.libpod.as_deref() {
            Some(v) => major(v).is_none_or(|m| m >= 5),
            None => true,
        }
    }
}

/// The socket path of a `unix://` (or bare path) endpoint.
pub fn unix_path(endpoint: &str) -> Option<&str> {
    endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.starts_with('/').then_some(endpoint))
}

/// Pings the engine listening on the unix socket `path`.
pub async fn ping_unix(path: &str) -> Result<Pong, String> {
    let client: Client<hyperlocal::UnixConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
    let uri: hyper::Uri = hyperlocal::Uri::new(path, "/_ping").into();
    let resp = client.get(uri).await.map_err(|e| chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("the engine answered {}", resp.status()));
    }
    let libpod = resp
        .headers()
        .get("Libpod-Api-Version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let server = resp
        .headers()
        .get(hyper::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Pong { libpod, server })
}

/// An error with its causes, as one line (hyper's own text is only
/// "client error (Connect)").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
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
    fn only_podman_before_5_lists_images_slowly() {
        let pong = |v: Option<&str>| Pong {
            libpod: v.map(str::to_string),
            server: None,
        };
        assert!(!pong(Some("4.3.1")).cheap_image_list());
        assert!(!pong(Some("3.4.4")).cheap_image_list());
        assert!(pong(Some("5.0.0")).cheap_image_list());
        assert!(pong(Some("5.4.2")).cheap_image_list());
        assert!(pong(None).cheap_image_list());
        // A version it cannot read is not taken as an old podman.
        assert!(pong(Some("next")).cheap_image_list());
    }

    #[test]
    fn unix_endpoints_name_their_socket() {
        assert_eq!(unix_path("unix:///run/x.sock"), Some("/run/x.sock"));
        assert_eq!(unix_path("/run/x.sock"), Some("/run/x.sock"));
        assert_eq!(unix_path("tcp://127.0.0.1:2375"), None);
    }

    #[tokio::test]
    async fn a_missing_socket_says_why() {
        let e = ping_unix("/nonexistent/ov-test.sock").await.unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}
