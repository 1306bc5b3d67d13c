//! The durations log: every node's last duration in one small file, so the
//! scheduler gets all of them with one read instead of one per node (with
//! 10k nodes, opening every last-run record costs a few hundred ms).
//!
//! `record_last` appends a line `<checksum> {"id":…,"ms":…}`; a later line
//! wins. One `write` with `O_APPEND` per line, so lines of concurrent
//! processes never interleave. Each write starts with the newline (as
//! cacache's index does), so a line torn by a crash is ended by the next
//! write; it fails its checksum and is skipped. When the log holds many stale lines, [`Store::durations`]
//! rewrites it with one line per node (atomically). An append racing that
//! rewrite can be lost: the durations are priority hints, and the node's
//! next run records it again.

use super::last::LastFile;
use super::Store;
use crate::{atomic_write, Error};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

/// The log's file name, versioned with its format.
pub(crate) const DURATIONS_LOG: &str = "durations-v1.log";

/// Hex characters of blake3 that check a line: enough to catch a torn one.
const SUM_LEN: usize = 16;

/// The log is compacted once it has this many lines beyond one per node.
const SLACK_LINES: usize = 1000;

#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    ms: u64,
}

impl Store {
    /// The last recorded duration of every node id, for the scheduler's
    /// priorities: one read of the durations log, so call it once per build.
    /// May rewrite the log when it has grown (see the module docs). When
    /// the log is missing it is rebuilt from the last-run records, which
    /// reads them all. An unreadable store gives an empty map.
    pub fn durations(&self) -> HashMap<String, u64> {
        let path = self.durations_path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let map = self.durations_from_records();
                if !map.is_empty() {
                    let _ = self.write_durations(&map);
                }
                return map;
            }
            Err(_) => return HashMap::new(),
        };
        let mut map = HashMap::new();
        let mut lines = 0;
        for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            if let Some(line) = parse_line(raw) {
                map.insert(line.id, line.ms);
            }
        }
        if lines > map.len() + SLACK_LINES {
            let _ = self.write_durations(&map);
        }
        map
    }

    /// Appends `node_id`'s latest duration to the log.
    pub(crate) fn log_duration(&self, node_id: &str, ms: u64) -> Result<(), Error> {
        let path = self.durations_path();
        let line = format_line(node_id, ms);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // One write: appends from other processes cannot land inside it.
        f.write_all(&line).map_err(|e| Error::io(&path, e))
    }

    fn durations_path(&self) -> PathBuf {
        self.root.join(DURATIONS_LOG)
    }

    /// Replaces the log with one line per node.
    fn write_durations(&self, map: &HashMap<String, u64>) -> Result<(), Error> {
        let mut ids: Vec<_> = map.iter().collect();
        ids.sort();
        let text: Vec<u8> = ids
            .into_iter()
            .flat_map(|(id, ms)| format_line(id, *ms))
            .collect();
        atomic_write(&self.durations_path(), &text)
    }

    /// The slow way: read every last-run record.
    fn durations_from_records(&self) -> HashMap<String, u64> {
        use rayon::prelude::*;
        self.last_files()
            .par_iter()
            .filter_map(|path| match Self::read_last_file(path) {
                Ok(LastFile::Record(rec)) => Some((rec.node_id, rec.result.duration_ms)),
                _ => None,
            })
            .collect()
    }
}

fn format_line(id: &str, ms: u64) -> Vec<u8> {
    let json = serde_json::json!({ "id": id, "ms": ms }).to_string();
    let sum = blake3::hash(json.as_bytes()).to_hex();
    format!("\n{} {json}", &sum[..SUM_LEN]).into_bytes()
}

fn parse_line(raw: &[u8]) -> Option<Line> {
    let text = std::str::from_utf8(raw).ok()?;
    let (sum, json) = text.split_once(' ')?;
    if sum != &blake3::hash(json.as_bytes()).to_hex()[..SUM_LEN] {
        return None;
    }
    serde_json::from_str(json).ok()
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::{Digest, NodeKey};

    fn run(store: &Store, id: &str, ms: u64) {
        let mut r = result(id, &[]);
        r.duration_ms = ms;
        store
            .record_last(id, &NodeKey::of_bytes(id.as_bytes()), &r)
            .unwrap();
    }

    #[test]
    fn latest_duration_of_every_node() {
        let (_dir, store) = store();
        assert!(store.durations().is_empty());
        run(&store, "layer:a@web", 100);
        run(&store, "image:b", 200);
        run(&store, "layer:a@web", 300);
        let d = store.durations();
        assert_eq!(d.len(), 2);
        assert_eq!((d["layer:a@web"], d["image:b"]), (300, 200));
    }

    #[test]
    fn torn_and_damaged_lines_are_skipped() {
        let (_dir, store) = store();
        run(&store, "a", 1);
        let path = store.durations_path();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        // A crash mid-append, then a good line, then a flipped digit.
        f.write_all(b"\n0123456789abcdef {\"id\":\"a\",\"m")
            .unwrap();
        drop(f);
        run(&store, "b", 2);
        let mut text = std::fs::read(&path).unwrap();
        text.extend(
            format_line("c", 3)
                .into_iter()
                .map(|b| if b == b'3' { b'4' } else { b }),
        );
        std::fs::write(&path, text).unwrap();
        let d = store.durations();
        assert_eq!(
            (d.get("a"), d.get("b"), d.get("c")),
            (Some(&1), Some(&2), None)
        );
    }

    #[test]
    fn a_long_log_is_compacted() {
        let (_dir, store) = store();
        for i in 0..(SLACK_LINES as u64 + 10) {
            store.log_duration("busy", i).unwrap();
        }
        store.log_duration("quiet", 5).unwrap();
        let d = store.durations();
        assert_eq!((d["busy"], d["quiet"]), (SLACK_LINES as u64 + 9, 5));
        let log = std::fs::read_to_string(store.durations_path()).unwrap();
        let lines = log.lines().filter(|l| !l.is_empty()).count();
        assert_eq!(lines, 2);
        assert_eq!(store.durations(), d);
    }

    #[test]
    fn a_lost_log_is_rebuilt_from_the_records() {
        let (_dir, store) = store();
        run(&store, "a", 10);
        run(&store, "b", 20);
        std::fs::remove_file(store.durations_path()).unwrap();
        let d = store.durations();
        assert_eq!((d["a"], d["b"]), (10, 20));
        assert!(store.durations_path().exists());
    }
}
