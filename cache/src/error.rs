//! The crate's error type.

use crate::BlobDigest;
use std::path::PathBuf;

/// What can go wrong in the cache crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    ///
    /// The OS message is part of the text and deliberately not a `source`:
    /// printing the chain (`{:#}`) would repeat it.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// cacache, which keeps the store, failed for a reason other than a
    /// missing or corrupt entry (those have their own variants).
    ///
    /// The text carries cacache's whole story (what it was doing, on which
    /// file, and the OS message, which cacache keeps only as its source), so
    /// it is no `source` either.
    #[error("{}", store_message(path, cause))]
    Store {
        /// The store's folder.
        path: PathBuf,
        /// The cause.
        cause: cacache::Error,
    },
    /// Something in the store did not match its digest or could not be
    /// decoded. It has already been evicted, so the next run rebuilds it
    /// instead of tripping over it again.
    #[error("corrupt {what} in the store (evicted): {reason}")]
    Corrupt {
        /// What was damaged, e.g. `blob 1a2b…`.
        what: String,
        /// How it was found to be damaged.
        reason: String,
    },
    /// A blob that was asked for, or that a result refers to, is not in the
    /// store.
    #[error("blob {digest}{} is not in the store", described(name))]
    MissingBlob {
        /// What the blob is, e.g. the name in a [`BlobRef`](crate::BlobRef);
        /// empty when the caller asked for the digest alone.
        name: String,
        /// Its digest.
        digest: BlobDigest,
    },
    /// A result names a blob with a size other than the stored blob's, so
    /// one of the two is wrong and the result is refused.
    #[error(
        "blob {digest} ({name}) is {stored} bytes in the store, but the result says {claimed}"
    )]
    BlobSize {
        /// The name in the [`BlobRef`](crate::BlobRef).
        name: String,
        /// Its digest.
        digest: BlobDigest,
        /// The size the result claims.
        claimed: u64,
        /// The size of the stored blob.
        stored: u64,
    },
}

/// ` (name)`, or nothing for an unnamed blob.
fn described(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" ({name})")
    }
}

/// `<what cacache did, naming its file>: <OS message>` for an I/O failure,
/// which is how a full disk reads ("… No space left on device"); cacache's
/// own text otherwise.
fn store_message(path: &std::path::Path, cause: &cacache::Error) -> String {
    match cause {
        cacache::Error::IoError(io, doing) => format!("{doing}: {io}"),
        cacache::Error::SerdeError(e, doing) => format!("store {}: {doing}: {e}", path.display()),
        other => format!("store {}: {other}", path.display()),
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }

    /// The OS error behind this one, if it is an I/O failure: callers tell
    /// a read-only or full cache dir from a damaged one by it.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { cause, .. } => Some(cause),
            Error::Store {
                cause: cacache::Error::IoError(io, _),
                ..
            } => Some(io),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed with its chain, as `ov` prints errors, an error names the OS
    /// message once.
    fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(&format!(": {s}"));
            next = s.source();
        }
        out
    }

    #[test]
    fn an_io_error_names_the_os_message_once() {
        let e = Error::io("/x/store", std::io::Error::from_raw_os_error(20));
        let text = chain(&e);
        assert_eq!(text.matches("Not a directory").count(), 1, "{text}");
        assert!(text.starts_with("/x/store: "), "{text}");
    }

    #[test]
    fn a_store_io_error_names_what_failed_and_the_os_message_once() {
        let io = std::io::Error::from_raw_os_error(28);
        let e = Error::Store {
            path: "/x/store".into(),
            cause: cacache::Error::IoError(
                io,
                "Failed to write to index bucket at \"/x/store/index-v5/ab\"".into(),
            ),
        };
        let text = chain(&e);
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        assert!(text.contains("/x/store/index-v5/ab"), "{text}");
        assert_eq!(e.to_string(), text, "the message lost its cause");
    }
}
