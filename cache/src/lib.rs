//! `ov-cache`: the content-addressed vocabulary of ov and the places it keeps
//! what it has already learned.
//!
//! This crate knows nothing of ov files, rules or the CLI. It owns:
//!
//! - the digest newtypes ([`NodeKey`], [`TreeDigest`], [`FileDigest`]), each with
//!   one canonical text form and a validating [`FromStr`](std::str::FromStr), so a
//!   key can never be confused with a file digest or a plain string;
//! - the persistent [`StatCache`] (path, size, mtime, inode → digest), which lets
//!   an unchanged file go unread on the next run, and [`hash_files`], which hashes
//!   many files on all cores through it;
//! - [`atomic_write`], the one way this crate puts a file in place: a temp file
//!   in the same folder, then a rename, so a crash leaves the old file or the
//!   new one and never half of either.
//!
//! ```
//! use ov_cache::{Digest, FileDigest};
//! let d = FileDigest::of_bytes(b"hello");
//! let back: FileDigest = d.to_string().parse().unwrap();
//! assert_eq!(d, back);
//! ```
#![deny(missing_docs)]

mod atomic;
mod digest;
mod error;
mod fingerprint;
mod hashing;
mod statcache;

pub use atomic::atomic_write;
pub use digest::{Digest, DigestParseError, FileDigest, NodeKey, TreeDigest};
pub use error::Error;
pub use fingerprint::Fingerprint;
pub use hashing::{hash_files, HashedFile};
pub use statcache::StatCache;
