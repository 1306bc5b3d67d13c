//! What `stat` says about a file, enough to tell that it has not changed.

use serde::{Deserialize, Serialize};
use std::fs::Metadata;
use std::time::SystemTime;

/// Size, modification time (ns), inode and mode of a file. Two equal
/// fingerprints of one path mean the contents are taken as unchanged, the
/// same bet git's index and ninja make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode number (0 where the platform has none).
    pub inode: u64,
    /// Unix permission bits (0 where the platform has none).
    pub mode: u32,
}

/// How long before a run began a file must have last changed for its
/// fingerprint to be trusted without a second look (see
/// [`Fingerprint::settled`]): wider than any local filesystem's timestamp
/// granularity (2 s on FAT) and than the lag of the kernel's coarse clock.
pub const SETTLE_NS: i128 = 2_000_000_000;

impl Fingerprint {
    /// Whether this is the fingerprint of a symbolic link itself.
    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }

    /// Whether the file last changed well before `started_ns` (the start of
    /// this run, ns since the epoch). Any later write stamps an mtime at or
    /// after `started_ns` minus the timestamp granularity, so it cannot
    /// leave this fingerprint unchanged: a digest or listing taken after
    /// this fingerprint was read can be remembered under it without checking
    /// again that the file did not change in between.
    pub fn settled(&self, started_ns: i128) -> bool {
        self.mtime_ns < started_ns.saturating_sub(SETTLE_NS)
    }

    /// Reads the fingerprint out of file metadata.
    pub fn of(meta: &Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        #[cfg(unix)]
        let (inode, mode) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.mode())
        };
        #[cfg(not(unix))]
        let (inode, mode) = (0, 0);
        Fingerprint {
            size: meta.len(),
            mtime_ns,
            inode,
            mode,
        }
    }
}
