//! What one build did, node by node: kept in the state dir, one file per
//! project (`runs/<digest of the project's path>.json`), so `ov graph` can
//! show that project's last run's times and critical path; and handed to
//! `ov build --graph-out`.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where the last run of the project at `root` is kept. The state dir is
/// shared by every project of the user; node ids are not unique across
/// projects (`image:web`), so each project has its own record.
pub fn path(state_dir: &Path, root: &Path) -> std::path::PathBuf {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = blake3::hash(root.as_os_str().as_encoded_bytes());
    state_dir
        .join("runs")
        .join(format!("{}.json", &digest.to_hex()[..32]))
}

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
    /// The project's directory, as given.
    pub project: std::path::PathBuf,
    /// When it began, in Unix milliseconds.
    pub started_unix_ms: u64,
    /// Its wall time.
    pub elapsed_ms: u64,
    /// Its nodes.
    pub nodes: Vec<NodeRun>,
}

impl RunRecord {
    /// Writes the record of its project into `state_dir` atomically: a
    /// reader sees the old record or the new one, never a torn one.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self)?;
        ov_cache::atomic_write(&path(state_dir, &self.project), &json)
            .map_err(std::io::Error::other)
    }

    /// The last run of the project at `root` recorded in `state_dir`;
    /// `None` when there is none or it cannot be read (it only adds detail
    /// to a picture).
    pub fn load(state_dir: &Path, root: &Path) -> Option<RunRecord> {
        let bytes = std::fs::read(path(state_dir, root)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_record_reads_back_and_a_torn_one_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        assert_eq!(RunRecord::load(dir.path(), &project), None);
        let r = RunRecord {
            project: project.clone(),
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
        assert_eq!(RunRecord::load(dir.path(), &project), Some(r));
        std::fs::write(
            path(dir.path(), &project),
            b"{\"started_unix_ms\": 7, \"nod",
        )
        .unwrap();
        assert_eq!(RunRecord::load(dir.path(), &project), None);
    }

    #[test]
    fn each_project_keeps_its_own_last_run() {
        // Two projects share the user's state dir and a node id.
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let run = |project: &Path, end_ms| RunRecord {
            project: project.to_path_buf(),
            nodes: vec![NodeRun {
                id: "image:web".into(),
                ending: Some(Ending::Built),
                end_ms,
                ..Default::default()
            }],
            ..Default::default()
        };
        run(&a, 10).save(dir.path()).unwrap();
        run(&b, 20).save(dir.path()).unwrap();
        assert_eq!(RunRecord::load(dir.path(), &a), Some(run(&a, 10)));
        assert_eq!(RunRecord::load(dir.path(), &b), Some(run(&b, 20)));
    }
}
