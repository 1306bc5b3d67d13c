//! Which node tags (`localhost/ov-node:<key>`) this cache dir made.
//!
//! Node tags are named by key alone, so every cache dir on one engine
//! writes into the same namespace; `ov cache gc` may only take back the
//! tags of its own store's keys. A build leaves one empty marker file per
//! key whose image it recorded (or restored), beside the store; gc removes
//! the marker with the tag. Both happen under the key's claim, so they
//! never cross.

use ov_cache::{NodeKey, Store};
use std::path::PathBuf;

/// The markers' folder, beside the store's.
pub fn dir(store: &Store) -> PathBuf {
    store.root().with_file_name("node-tags")
}

/// Notes that this cache dir holds the node tag of `key`.
pub fn mark(store: &Store, key: &NodeKey) -> std::io::Result<()> {
    let d = dir(store);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(key.to_string()), b"")
}

/// The keys this cache dir holds node tags for.
pub fn marked(store: &Store) -> Vec<NodeKey> {
    let Ok(entries) = std::fs::read_dir(dir(store)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Forgets the node tag of `key`.
pub fn unmark(store: &Store, key: &NodeKey) {
    let _ = std::fs::remove_file(dir(store).join(key.to_string()));
}

/// The node tag of `key`, as executors give it.
pub fn node_tag(key: &NodeKey) -> String {
    format!("localhost/ov-node:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ov_cache::Digest;

    #[test]
    fn marks_read_back_and_go() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        assert!(marked(&store).is_empty());
        let (a, b) = (NodeKey::of_bytes(b"a"), NodeKey::of_bytes(b"b"));
        mark(&store, &a).unwrap();
        mark(&store, &b).unwrap();
        mark(&store, &a).unwrap();
        let mut got = marked(&store);
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
        unmark(&store, &a);
        assert_eq!(marked(&store), vec![b]);
        assert_eq!(node_tag(&b), format!("localhost/ov-node:{b}"));
    }
}
