//! What one build did, node by node: kept as `last-run.json` in the state
//! dir so `ov graph` can show the last run's times and critical path, and
//! handed to `ov build --graph-out`.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file name in the state dir.
pub const FILE: &str = "last-run.json";

/// How a node ended in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    /// Its rule ran.
    Built,
    /// Its key was in the local store.
    Cached,
    /// Its key came from the remote cache.
    Remote,
    /// Re-checked on every build (a source tree, an external base).
    Checked,
    /// It failed.
    Failed,
    /// A dependency failed, or the build stopped first.
    Skipped,
}

/// One node of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRun {
    /// Node id.
    pub id: String,
    /// How it ended (`None`: never started, e.g. Ctrl-C came first).
    pub ending: Option<Ending>,
    /// When it started and ended, in ms since the run began.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
    /// The key it ran under, when it got that far.
    pub key: Option<String>,
    /// The first line of its error, or why it was skipped.
    pub message: Option<String>,
    /// Bytes its result keeps in the store.
    pub bytes: Option<u64>,
}

/// A whole run, nodes in the order they were scheduled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it began, in Unix milliseconds.
    pub started_unix_ms: u64,
    /// Its wall time.
    pub elapsed_ms: u64,
    /// Its nodes.
    pub nodes: Vec<NodeRun>,
}

impl RunRecord {
    /// Writes the record into `state_dir` atomically: a reader sees the
    /// old record or the new one, never a torn one.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self)?;
        ov_cache::atomic_write(&state_dir.join(FILE), &json).map_err(std::io::Error::other)
    }

    /// The last run recorded in `state_dir`; `None` when there is none or
    /// it cannot be read (it only adds detail to a picture).
    pub fn load(state_dir: &Path) -> Option<RunRecord> {
        let bytes = std::fs::read(state_dir.join(FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_record_reads_back_and_a_torn_one_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RunRecord::load(dir.path()), None);
        let r = RunRecord {
            started_unix_ms: 7,
            elapsed_ms: 9,
            nodes: vec![NodeRun {
                id: "layer:a@x".into(),
                ending: Some(Ending::Failed),
                start_ms: 1,
                end_ms: 5,
                key: Some("k".into()),
                message: Some("exit 1".into()),
                bytes: None,
            }],
        };
        r.save(dir.path()).unwrap();
        assert_eq!(RunRecord::load(dir.path()), Some(r));
        std::fs::write(dir.path().join(FILE), b"{\"started_unix_ms\": 7, \"nod").unwrap();
        assert_eq!(RunRecord::load(dir.path()), None);
    }
}
