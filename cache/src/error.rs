//! The crate's error type.

use crate::BlobDigest;
use std::path::PathBuf;

/// What can go wrong in the cache crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// cacache, which keeps the store, failed for a reason other than a
    /// missing or corrupt entry (those have their own variants).
    #[error("store {path}: {source}")]
    Store {
        /// The store's folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: cacache::Error,
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

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
