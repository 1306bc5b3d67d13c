//! `ov-cache`: the content-addressed vocabulary of ov and the places it keeps
//! what it has already learned.
//!
//! This crate knows nothing of ov files, rules or the CLI. It owns:
//!
//! - the digest newtypes ([`NodeKey`], [`TreeDigest`], [`FileDigest`], and the
//!   sha256 [`BlobDigest`] of the CAS), each with one canonical text form and a
//!   validating [`FromStr`](std::str::FromStr), so a key can never be confused
//!   with a file digest or a plain string;
//! - the persistent [`StatCache`] (path, size, mtime, inode → digest), which lets
//!   an unchanged file go unread on the next run, and [`hash_files`], which hashes
//!   many files on all cores through it;
//! - the local [`Store`] in `<cache-dir>/store` (kept by cacache): a CAS of
//!   blobs by sha256, an action cache of [`ActionResult`]s by [`NodeKey`], and
//!   a last-run record per node id (for `ov explain` and the scheduler's
//!   durations), with `ov cache stats|verify|gc` ([`Store::stats`],
//!   [`Store::verify`], [`Store::gc`], [`parse_size`]). Every read is verified
//!   and whatever is damaged is evicted, never returned;
//! - [`remote`], the remote cache: Bazel's HTTP cache protocol (`/ac/`,
//!   `/cas/`), streamed, every download verified before it enters the
//!   local store, entries optionally signed;
//! - [`redact`], the one function that hides secrets (URL passwords,
//!   token-like query parameters) in every message ov prints;
//! - [`atomic_write`], the one way this crate puts a file of its own in place
//!   (cacache does the same for the store's content): a temp file in the same
//!   folder, then a rename, so a crash leaves the old file or the new one and
//!   never half of either.
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
mod process;
mod redact;
pub mod remote;
mod statcache;
mod store;
mod tree;
mod witness;

pub use atomic::{atomic_write, atomic_write_with, checksummed_write_with};
pub use digest::{BlobDigest, Digest, DigestParseError, FileDigest, NodeKey, TreeDigest};
pub use error::Error;
pub use fingerprint::{Fingerprint, SETTLE_NS};
pub use hashing::{hash_files, HashedFile};
pub use process::process_alive;
pub use redact::{redact, redact_json, MASK};
pub use statcache::StatCache;
pub use store::{
    format_size, parse_size, sha256_file, ActionResult, BlobRef, GcReport, KeyLock, Lookup,
    SizeParseError, Stats, Store, Unchecked, VerifyProblem, VerifyReport,
};
pub use tree::{hash_trees, tree_unchanged, HashedTree, TreeFile, TreeLink};
pub use witness::{Witness, WitnessBuilder};
