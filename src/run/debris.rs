//! What a run leaves in the engine when it ends mid-build, and its removal.
//!
//! Before a node builds an image, the run writes the node's key to a
//! journal in its scratch dir. A key the store recorded is a result; a
//! key it never recorded names an image tag (`localhost/ov-node:<key>`)
//! that nothing will ever read: the build died after the engine tagged it,
//! or the engine died while writing it. The run removes those itself when
//! it ends; when it cannot (ov was killed, or the engine went away), the
//! journal stays and the next build on the cache dir removes them once the
//! run's process is gone. Keys a live run journaled are never touched: that
//! run may be about to record them.

use ov_cache::{Lookup, NodeKey, Store};
use ov_rules::engine::EngineError;
use ov_rules::rule::ContainerEngine;
use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;

/// The journal's name in a run's scratch dir.
const JOURNAL: &str = "engine-journal";

/// Notes that the run in `run_dir` is about to build the image of `key`.
pub fn note(run_dir: &Path, key: &NodeKey) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(JOURNAL))?;
    // One write per line: appends of a line this short are not interleaved.
    f.write_all(format!("{key}\n").as_bytes())
}

/// The keys the run in `run_dir` journaled (none when it built nothing).
pub fn journaled(run_dir: &Path) -> Vec<NodeKey> {
    std::fs::read_to_string(run_dir.join(JOURNAL))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The node tag of `key`, as executors give it.
fn node_tag(key: &NodeKey) -> String {
    format!("localhost/ov-node:{key}")
}

/// Removes the node tags of `keys` that `store` never recorded and that are
/// not in `keep`; returns how many it removed. Fails only when the engine
/// cannot be asked (then the journal must stay for a later build).
pub async fn sweep(
    engine: &dyn ContainerEngine,
    store: &Store,
    keys: &[NodeKey],
    keep: &HashSet<NodeKey>,
) -> Result<usize, EngineError> {
    let mut removed = 0;
    let mut seen = HashSet::new();
    for key in keys {
        if keep.contains(key) || !seen.insert(*key) {
            continue;
        }
        if matches!(store.get_action(key), Ok(Lookup::Hit(_))) {
            continue;
        }
        match engine.remove_tag(&node_tag(key)).await {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e @ (EngineError::Gone { .. } | EngineError::Timeout { .. })) => return Err(e),
            // In use by a container, or some other refusal: it is left,
            // as an untracked image would be.
            Err(_) => {}
        }
    }
    Ok(removed)
}

/// Removes everything in `run_dir` but the journal.
pub fn keep_only_journal(run_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(run_dir) {
        for e in entries.flatten() {
            if e.file_name() != JOURNAL {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ov_cache::Digest;

    #[test]
    fn the_journal_reads_back_what_was_noted() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("123-456");
        assert!(journaled(&run).is_empty());
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        note(&run, &a).unwrap();
        note(&run, &b).unwrap();
        std::fs::write(run.join("scratch-file"), "x").unwrap();
        assert_eq!(journaled(&run), vec![a, b]);
        keep_only_journal(&run);
        assert_eq!(journaled(&run), vec![a, b]);
        assert!(!run.join("scratch-file").exists());
    }
}
