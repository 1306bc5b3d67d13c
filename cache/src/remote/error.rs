//! How a remote cache call fails, sorted by what the build does next.

/// A failed remote cache call. Its text names the URL without credentials
/// (they never enter the client's URLs), and callers still pass it through
/// [`redact`](crate::redact) before showing it.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The server could not be reached, timed out, reset the connection or
    /// cut a body short: it will likely do so again, so a build stops
    /// asking it.
    #[error("{0}")]
    Transport(String),
    /// The server answered with a status that is neither success nor "not
    /// found" (a 500, a 401, a 507): likewise.
    #[error("{method} {url}: the server answered {status}")]
    Status {
        /// The request's method.
        method: &'static str,
        /// Its URL (credentials are never in it).
        url: String,
        /// The status code.
        status: u16,
    },
    /// The server answered, but the entry cannot be used: bytes that do
    /// not match their digest, an undecodable value, a missing or wrong
    /// signature, a blob it names but lacks. A miss; nothing of it was
    /// kept.
    #[error("{0}")]
    Rejected(String),
    /// The local store failed while taking or giving a blob.
    #[error("{0}")]
    Local(crate::Error),
}

impl RemoteError {
    /// True when the server itself misbehaves (down, slow, failing), as
    /// opposed to one bad entry or a local problem.
    pub fn is_server_failure(&self) -> bool {
        matches!(self, RemoteError::Transport(_) | RemoteError::Status { .. })
    }
}

/// A transport error with its causes, which is where "connection reset" or
/// "operation timed out" is said.
pub(crate) fn transport(what: &str, e: &(dyn std::error::Error + 'static)) -> RemoteError {
    let mut text = format!("{what}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    RemoteError::Transport(text)
}
