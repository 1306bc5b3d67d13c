//! `ov.lock`: external base refs pinned to the image ids they resolved to.
//!
//! Refs like `quay.io/fedora/fedora:43` move; a pinned id does not. Commit
//! the file (like Cargo.lock) and every machine builds on the same bytes.
//! The pin is part of the base node's spec, so moving it (`ov lock
//! --update`) changes the keys of everything built on that base.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The lock file's name in the project root.
pub const FILE: &str = "ov.lock";

/// The file's contents.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// Ref → pinned image id (`sha256:…`).
    #[serde(default)]
    pub base: BTreeMap<String, String>,
}

/// A lock file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct LockError {
    /// The file.
    pub path: PathBuf,
    /// Where.
    pub line: usize,
    /// Where.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Lock {
    /// Reads `root/ov.lock`; no file is an empty lock.
    pub fn load(root: &Path) -> Result<Lock, LockError> {
        let path = root.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(e) => {
                return Err(LockError {
                    path,
                    line: 0,
                    column: 0,
                    message: e.to_string(),
                })
            }
        };
        let lock: Lock = serde_json::from_str(&text).map_err(|e| LockError {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
            message: format!("not an ov.lock file: {e}"),
        })?;
        if lock.version != 1 {
            return Err(LockError {
                path,
                line: 1,
                column: 1,
                message: format!(
                    "ov.lock version {} is not supported (this ov reads version 1)",
                    lock.version
                ),
            });
        }
        for (r, id) in &lock.base {
            let hex = id.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let line = text
                    .lines()
                    .position(|l| l.contains(r.as_str()))
                    .unwrap_or(0)
                    + 1;
                return Err(LockError {
                    path,
                    line,
                    column: 1,
                    message: format!(
                        "`{r}` is pinned to `{id}`, which is not sha256:<64 hex digits>"
                    ),
                });
            }
        }
        Ok(lock)
    }

    /// Writes `root/ov.lock` atomically.
    pub fn save(&self, root: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(&Lock {
            version: 1,
            base: self.base.clone(),
        })?;
        text.push('\n');
        ov_cache::atomic_write(&root.join(FILE), text.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_pins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lock::load(dir.path()).unwrap(), Lock::default());
        let mut l = Lock::default();
        l.base
            .insert("a:1".into(), format!("sha256:{}", "ab".repeat(32)));
        l.save(dir.path()).unwrap();
        assert_eq!(Lock::load(dir.path()).unwrap().base, l.base);
        std::fs::write(
            dir.path().join(FILE),
            "{\"version\": 1,\n \"base\": {\"x:1\": \"latest\"}}",
        )
        .unwrap();
        let e = Lock::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ov.lock:2:1") && e.contains("x:1"), "{e}");
        std::fs::write(dir.path().join(FILE), "{\"version\": 2}").unwrap();
        assert!(Lock::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }
}
