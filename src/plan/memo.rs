//! The dry run's memo: what the last full plan found, kept fine-grained in
//! `<cache-dir>/dry-run.v2`, so that the next dry run pays only for what
//! changed since.
//!
//! A full plan (load, resolve, hash, plan, key) is ~0.6 s on a project of
//! 2,000 layers; most of it goes to building and canonicalising the specs
//! of ~8,000 nodes. Yet the edit people make between two builds is most
//! often one file of one layer, and that changes no spec at all: only that
//! layer's tree digest, and through it the keys downstream. So the memo
//! keeps, per phase, the result and the fingerprints of what it read:
//!
//! - **structure**: every YAML file parsed, `ov.lock`, the discover roots
//!   and the directories walked under them, copy sources, init headers
//!   (a [`Witness`]). These decide the model, the graph and every spec.
//! - **trees**: per layer directory, its digest, a witness of its listing
//!   and files, and its *shape* (the names and kinds of its entries: what
//!   validation and builder detection read of it).
//! - **nodes**, in dependency order: each node's id and kind, the key
//!   ingredients that come from its spec (already hashed: rule, spec,
//!   engine), its tree, its dependencies; and the results: key, what it
//!   contributes to dependents (its output digest, or its key), whether
//!   the store holds it.
//! - the store's generation file and engine platform, which the "cached"
//!   answers and the predicted keys come from.
//!
//! The next dry run checks the structure by stats alone. If it changed,
//! it plans in full (and remembers that). Otherwise only the trees whose
//! witness changed are hashed again; a tree whose shape changed also means
//! a full plan. Keys are then recomputed from the stored ingredients, in
//! dependency order, only where a tree or a dependency's contribution
//! changed (or for all nodes when the store changed), asking the store
//! only about those keys: a node whose recomputed contribution is the old
//! one stops the invalidation there (early cutoff). Why an engine of our
//! own and not salsa or DICE is in BUILD.md ("Incremental planning").
//!
//! Every result is rendered by the same code as a full plan's, and a full
//! plan checks, before it saves, that the stored ingredients give back
//! each of its keys. A memo is only written when every fingerprint in it
//! had settled (see [`ov_cache::Fingerprint::settled`]) before the run
//! began, so no change made while the run read its inputs can hide behind
//! an equal fingerprint. The file is written atomically (not synced: its
//! checksum refuses one a power loss cut) and carries a format tag and a
//! checksum; one that is missing, torn, damaged, of another format or for
//! another context costs a full plan, nothing more.

use crate::plan::keys;
use crate::plan::predict::Predicted;
use crate::plan::watch::{
    context, now_ns, read_kept, recheck, watch, write_kept, Unsettled, Watched, WatchedTree,
};
use crate::workspace::Dirs;
use ov_cache::{Digest, Fingerprint, Lookup, NodeKey, Store, TreeDigest, Witness};
use ov_rules::rule::Caching;
use ov_rules::Ingredients;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The memo's file name in the cache dir.
pub const FILE: &str = "dry-run.v2";

/// The file's first bytes; a memo of another format is not read.
const MAGIC: &[u8; 16] = b"ov-dry-run-v2\n\0\0";

#[derive(Clone, Serialize, Deserialize)]
struct NodeMemo {
    id: String,
    kind: String,
    /// The ingredients taken from the spec, hashed: (name, digest).
    head: Vec<(String, [u8; 32])>,
    /// For a source node: the label it is keyed under and its tree.
    source: Option<(String, u32)>,
    /// Dependencies (indices into the node list), sorted by id.
    deps: Vec<u32>,
    /// Its [`Caching`] is `EveryBuild`: the last result of its id, not of
    /// its key, predicts its output.
    every_build: bool,
    /// Its [`Caching`] is `Hashed`: re-checked on every build.
    hashed: bool,
    key: [u8; 32],
    /// What it contributes to its dependents' keys.
    output: [u8; 32],
    cached: bool,
    checked: bool,
}

/// What decides whether the rest of the memo can be used at all. It is
/// written first, and read alone first: after a structure edit, the
/// ~8,000 node entries behind it are not decoded only to be thrown away.
#[derive(Clone, Serialize, Deserialize)]
struct Head {
    context: [u8; 32],
    structure: Witness,
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    /// Written as its two fields: postcard puts a struct's fields one
    /// after the other, so a memo can be read head first.
    head: Head,
    store_exists: bool,
    generation: Option<Fingerprint>,
    platform: [u8; 32],
    trees: Vec<WatchedTree>,
    nodes: Vec<NodeMemo>,
    /// The nodes a dry run of this context prints, in order.
    selected: Vec<u32>,
    /// What the plan warned about (it depends on the structure only).
    stderr: String,
}

/// One dry run's view of its memo.
pub struct Memo {
    path: PathBuf,
    store: PathBuf,
    /// What the output depends on besides files; `None` disables the memo.
    context: Option<[u8; 32]>,
    /// When this run began, ns since the epoch.
    started_ns: i128,
}

/// A dry run answered from the memo.
pub struct Replay {
    /// What to print on stdout.
    pub stdout: String,
    /// What to print on stderr (warnings).
    pub stderr: String,
}

/// What a dry run says of a node: the word and whether it would run.
pub fn status(refresh: bool, cached: bool, checked: bool) -> (&'static str, bool) {
    if refresh {
        ("run", true)
    } else if cached {
        ("cached", false)
    } else if checked {
        ("check", false)
    } else {
        ("run", true)
    }
}

/// One line of a dry run.
pub fn line(out: &mut String, status: &str, kind: &str, key: &NodeKey, id: &str) {
    let _ = writeln!(out, "{:<6} {:<12} {} {}", status, kind, key.short(12), id);
}

/// The last line of a dry run.
pub fn summary(out: &mut String, would_run: usize) {
    let _ = writeln!(out, "{would_run} nodes would run");
}

fn render(nodes: &[NodeMemo], selected: &[u32]) -> String {
    let mut out = String::with_capacity(selected.len() * 64);
    let mut would_run = 0;
    for &i in selected {
        let n = &nodes[i as usize];
        let (word, runs) = status(false, n.cached, n.checked);
        would_run += usize::from(runs);
        line(&mut out, word, &n.kind, &NodeKey::from_bytes(n.key), &n.id);
    }
    summary(&mut out, would_run);
    out
}

/// The store's generation file's fingerprint (`None`: absent).
fn generation(store: &Path) -> Option<Fingerprint> {
    std::fs::metadata(Store::generation_path(store))
        .ok()
        .map(|m| Fingerprint::of(&m))
}

fn platform_digest(store: Option<&Store>) -> [u8; 32] {
    let p = store.and_then(keys::remembered_platform);
    let text = serde_json::to_string(&p).unwrap_or_default();
    *blake3::hash(text.as_bytes()).as_bytes()
}

/// The key of `nodes[i]` from its stored ingredients and its dependencies'
/// current contributions.
fn key_of(nodes: &[NodeMemo], trees: &[WatchedTree], i: usize) -> NodeKey {
    let n = &nodes[i];
    let mut ing = Ingredients::replay(n.head.iter().map(|(name, d)| (name.as_str(), d)));
    if let Some((label, t)) = &n.source {
        ing.source(label, TreeDigest::from_bytes(trees[*t as usize].digest));
    }
    for &d in &n.deps {
        let dep = &nodes[d as usize];
        ing.dep(&dep.id, &dep.output);
    }
    ing.finish().0
}

/// Sets a node's key and results anew; whether what it contributes to its
/// dependents changed.
fn rekey(nodes: &mut [NodeMemo], trees: &[WatchedTree], store: Option<&Store>, i: usize) -> bool {
    // As `predict` keys a full plan: a source's output is its tree; else
    // the store's answer for the node's id (every-build nodes) or key.
    let key = key_of(nodes, trees, i);
    let n = &nodes[i];
    let (mut output, mut cached) = (*key.as_bytes(), false);
    let mut checked = n.hashed && store.is_some();
    if let Some((_, t)) = &n.source {
        output = trees[*t as usize].digest;
    } else if let Some(s) = store {
        if n.every_build {
            if let Ok(Some((_, r))) = s.last(&n.id) {
                output = keys::output_bytes(&r.output);
                checked = true;
            }
        } else if let Ok(Lookup::Hit(r)) = s.get_action(&key) {
            output = keys::output_bytes(&r.output);
            cached = true;
        }
    }
    let n = &mut nodes[i];
    let moved = n.output != output;
    n.key = *key.as_bytes();
    n.output = output;
    n.cached = cached;
    n.checked = checked;
    moved
}

impl Memo {
    /// The memo of a dry run of `targets` in `root`. Call before anything
    /// is read: the time it is made is when the run began.
    pub fn new(root: &Path, dirs: &Dirs, targets: &[String]) -> Memo {
        Memo {
            path: dirs.cache.join(FILE),
            store: dirs.cache.join("store"),
            context: context(MAGIC, root, dirs, targets),
            started_ns: now_ns(),
        }
    }

    /// The memo of this context, if its structure is unchanged.
    fn load(&self) -> Option<Stored> {
        let context = self.context?;
        let payload = read_kept(&self.path, MAGIC)?;
        let (head, _) = postcard::take_from_bytes::<Head>(&payload).ok()?;
        if head.context != context || !head.structure.unchanged() {
            return None;
        }
        postcard::from_bytes(&payload).ok()
    }

    /// Streams the memo to disk: at the bench project's size its bytes
    /// are 4 MB, and the run is at its peak of memory here. A memo that
    /// cannot be written costs the next run a full plan, nothing more.
    fn write(&self, stored: &Stored) {
        let _t = crate::diag::phase("memo: write");
        let _ = write_kept(&self.path, MAGIC, stored);
    }

    /// The dry run's output from the memo, when the structure of the
    /// project is unchanged since it was written: layer trees that changed
    /// are hashed again and the keys they reach recomputed. `None` means a
    /// full plan is needed.
    pub fn replay(&self) -> Option<Replay> {
        let mut stored = self.load()?;
        let store_exists = self.store.is_dir();
        if store_exists != stored.store_exists {
            return None;
        }
        let gen_now = generation(&self.store);
        let store_changed = gen_now != stored.generation;
        let store = if store_exists {
            Some(Store::open(&self.store).ok()?)
        } else {
            None
        };
        // The platform is recorded in the store, so it can only have moved
        // with the store's generation.
        if store_changed && platform_digest(store.as_ref()) != stored.platform {
            return None;
        }
        let rehashed = recheck(&mut stored.trees)?;
        if rehashed.is_empty() && !store_changed {
            return Some(Replay {
                stdout: render(&stored.nodes, &stored.selected),
                stderr: stored.stderr,
            });
        }
        let mut moved_tree = vec![false; stored.trees.len()];
        for r in &rehashed {
            moved_tree[r.index] = r.moved;
        }
        // Dependency order: a node's dependencies come before it.
        let mut moved = vec![false; stored.nodes.len()];
        for i in 0..stored.nodes.len() {
            let n = &stored.nodes[i];
            let dirty = store_changed
                || n.source
                    .as_ref()
                    .is_some_and(|(_, t)| moved_tree[*t as usize])
                || n.deps.iter().any(|&d| moved[d as usize]);
            // Early cutoff: dependents only see what a node contributes.
            if dirty {
                moved[i] = rekey(&mut stored.nodes, &stored.trees, store.as_ref(), i);
            }
        }
        let stdout = render(&stored.nodes, &stored.selected);
        stored.generation = gen_now;
        let settled = stored.generation.is_none_or(|g| g.settled(self.started_ns))
            && rehashed
                .iter()
                .all(|r| stored.trees[r.index].witness.settled(self.started_ns));
        if settled {
            self.write(&stored);
        }
        Some(Replay {
            stdout,
            stderr: stored.stderr,
        })
    }

    /// Remembers a full dry run over `ws` of the nodes `selected` (in the
    /// order printed), when that is safe (see the module docs). The memo
    /// is only a speed-up: failing to write it is not an error.
    pub fn save(&self, ws: &Predicted, selected: &[NodeIndex], stderr: &str) {
        let Some(context) = self.context else { return };
        let at = Snapshot {
            store_dir: &self.store,
            context,
            started_ns: self.started_ns,
        };
        if let Some(stored) = snapshot(ws, &at, selected, stderr) {
            self.write(&stored);
        }
    }
}

/// Where and when a memo is taken.
#[derive(Clone, Copy)]
struct Snapshot<'a> {
    store_dir: &'a Path,
    context: [u8; 32],
    /// When the run began (see [`Fingerprint::settled`]).
    started_ns: i128,
}

/// The memo of a full plan; `None` when an input cannot be recorded, has
/// not settled (it could not be kept), or the stored ingredients would not
/// give back the plan's keys.
fn snapshot(
    ws: &Predicted,
    at: &Snapshot<'_>,
    selected: &[NodeIndex],
    stderr: &str,
) -> Option<Stored> {
    let Snapshot {
        store_dir,
        context,
        started_ns,
    } = *at;
    let g = &ws.plan.graph;
    let t = crate::diag::phase("memo: watch");
    let Watched {
        structure,
        trees,
        tree_of_layer,
        ..
    } = watch(&ws.project, &ws.trees, started_ns, Unsettled::Refuse)?;
    drop(t);
    let _t = crate::diag::phase("memo: nodes");
    let generation = generation(store_dir);
    if !generation.is_none_or(|g| g.settled(started_ns)) {
        return None;
    }

    let order = petgraph::algo::toposort(g, None).ok()?;
    let mut pos = vec![0u32; g.node_count()];
    for (p, ix) in order.iter().enumerate() {
        pos[ix.index()] = p as u32;
    }
    let mut nodes = Vec::with_capacity(order.len());
    for &ix in &order {
        let node = &g[ix];
        let head = ws.keys.head(&ws.plan, ix)?;
        let source = match keys::source_output(&ws.plan, &ws.trees, ix) {
            Some(_) => {
                let layer = node.layer.as_deref()?;
                Some((node.label.clone(), *tree_of_layer.get(layer)?))
            }
            None => None,
        };
        let mut deps: Vec<NodeIndex> = g
            .edges_directed(ix, Direction::Incoming)
            .map(|e| e.source())
            .collect();
        deps.sort_by(|a, b| g[*a].id.cmp(&g[*b].id));
        nodes.push(NodeMemo {
            id: node.id.clone(),
            kind: node.kind().as_str().to_string(),
            head,
            source,
            deps: deps.iter().map(|d| pos[d.index()]).collect(),
            every_build: node.spec.caching() == Caching::EveryBuild,
            hashed: node.spec.caching() == Caching::Hashed,
            key: *ws.keys.keys[ix.index()].as_bytes(),
            output: ws.keys.outputs[ix.index()],
            cached: ws.cached.contains(&ix),
            checked: ws.checked.contains(&ix),
        });
    }
    // The stored ingredients must give back every key: if they do not,
    // a replay would key differently from this plan.
    let faithful = (0..nodes.len())
        .into_par_iter()
        .all(|i| *key_of(&nodes, &trees, i).as_bytes() == nodes[i].key);
    if !faithful {
        debug_assert!(
            false,
            "the memo's ingredients do not give back the plan's keys"
        );
        return None;
    }
    Some(Stored {
        head: Head { context, structure },
        store_exists: store_dir.is_dir(),
        generation,
        platform: platform_digest(ws.store()),
        trees,
        nodes,
        selected: selected.iter().map(|ix| pos[ix.index()]).collect(),
        stderr: stderr.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixture::{backdate, damaged, mkfifo, settled_fixture, Setup};

    /// What a dry run of the whole project prints, by a full plan.
    fn full(s: &Setup) -> String {
        let mut out = Vec::new();
        crate::commands::build::dry_run(&s.root, &s.dirs, &[], &[], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A settled copy of the mini fixture whose memo a full plan wrote.
    fn remembered() -> Setup {
        let s = settled_fixture(|_| {});
        assert!(replay(&s, &[]).is_none(), "nothing is remembered yet");
        full(&s);
        assert!(
            s.dirs.cache.join(FILE).exists(),
            "the full plan wrote no memo"
        );
        s
    }

    fn replay(s: &Setup, targets: &[String]) -> Option<Replay> {
        Memo::new(&s.root, &s.dirs, targets).replay()
    }

    #[test]
    fn replays_what_a_full_plan_printed() {
        let s = remembered();
        let r = replay(&s, &[]).unwrap();
        let _ = std::fs::remove_file(s.dirs.cache.join(FILE));
        assert_eq!(r.stdout, full(&s));
        // Other targets are another output.
        assert!(replay(&s, &["app".to_string()]).is_none());
    }

    #[test]
    fn an_edited_layer_file_is_answered_and_keyed_as_a_full_plan_keys_it() {
        let s = remembered();
        let before = replay(&s, &[]).unwrap().stdout;
        std::fs::write(s.root.join("layers/greeting/hello.txt"), "changed").unwrap();
        let r = replay(&s, &[]).expect("a layer file's contents need no full plan");
        assert_ne!(r.stdout, before, "the edit moved no key");
        std::fs::remove_file(s.dirs.cache.join(FILE)).unwrap();
        assert_eq!(r.stdout, full(&s));
    }

    #[test]
    fn a_change_of_structure_needs_a_full_plan() {
        type Change = fn(&Path);
        let changes: &[(&str, Change)] = &[
            ("layer.yml edited", |r| {
                let p = r.join("layers/web/layer.yml");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, text + "# edited\n").unwrap()
            }),
            ("file added to a layer", |r| {
                std::fs::write(r.join("layers/greeting/new.txt"), "x").unwrap()
            }),
            ("file added in a new subdirectory", |r| {
                std::fs::create_dir(r.join("layers/greeting/sub")).unwrap();
                std::fs::write(r.join("layers/greeting/sub/x"), "x").unwrap()
            }),
            ("file removed from a layer", |r| {
                std::fs::remove_file(r.join("layers/greeting/hello.txt")).unwrap()
            }),
            ("file replaced by a symlink", |r| {
                let p = r.join("layers/greeting/hello.txt");
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("layer.yml", &p).unwrap()
            }),
            ("root YAML edited", |r| {
                let p = r.join("image.yml");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, text + "# edited\n").unwrap()
            }),
            ("ov.lock created", |r| {
                std::fs::write(r.join("ov.lock"), "{}").unwrap()
            }),
            ("layer directory added", |r| {
                std::fs::create_dir(r.join("layers/extra")).unwrap()
            }),
            // Hashing skips it, but validation refuses it.
            ("fifo added to a layer", |r| {
                mkfifo(&r.join("layers/greeting/pipe"))
            }),
        ];
        for (what, change) in changes {
            let s = remembered();
            assert!(
                replay(&s, &[]).is_some(),
                "{what}: not remembered to begin with"
            );
            change(&s.root);
            assert!(replay(&s, &[]).is_none(), "{what} went unseen");
        }
    }

    #[test]
    fn a_change_in_the_store_re_asks_it_about_every_key() {
        let s = remembered();
        let result = |id: &str, kind: &str| ov_cache::ActionResult {
            node_id: id.into(),
            kind: kind.into(),
            output: "sha256:feed".into(),
            blobs: Vec::new(),
            duration_ms: 1,
            finished_unix_ms: 1,
            manifest: Vec::new(),
            meta: serde_json::Value::Null,
        };
        // A store that appears is a full plan (it turns source nodes into
        // "check"): make one, with an entry no node has.
        let store = Store::open(&s.dirs.cache.join("store")).unwrap();
        store
            .put_action(&NodeKey::from_bytes([9; 32]), &result("x", "layer"))
            .unwrap();
        backdate(&s.dirs.cache.join("store"));
        assert!(replay(&s, &[]).is_none());
        full(&s);
        // Record the layer node of `greeting` as built: its line turns from
        // "run" to "cached" only if the replay asks the store again.
        let stored = Memo::new(&s.root, &s.dirs, &[]).load().unwrap();
        let node = stored
            .nodes
            .iter()
            .find(|n| n.kind == "layer" && n.id.contains("greeting"))
            .unwrap();
        let before = replay(&s, &[]).unwrap().stdout;
        let is = |out: &str, word: &str| {
            out.lines()
                .any(|l| l.starts_with(word) && l.ends_with(&node.id))
        };
        assert!(is(&before, "run"), "{before}");
        store
            .put_action(
                &NodeKey::from_bytes(node.key),
                &result(&node.id, &node.kind),
            )
            .unwrap();
        backdate(&s.dirs.cache.join("store"));
        let replayed = replay(&s, &[]).expect("a store change needs no full plan");
        assert!(is(&replayed.stdout, "cached"), "{}", replayed.stdout);
        std::fs::remove_file(s.dirs.cache.join(FILE)).unwrap();
        assert_eq!(replayed.stdout, full(&s));
    }

    #[test]
    fn a_torn_or_damaged_memo_costs_only_a_full_plan() {
        let s = remembered();
        let path = s.dirs.cache.join(FILE);
        let good = std::fs::read(&path).unwrap();
        for b in damaged(&good) {
            std::fs::write(&path, &b).unwrap();
            assert!(
                replay(&s, &[]).is_none(),
                "a memo of {} bytes was read",
                b.len()
            );
        }
        std::fs::remove_file(&path).unwrap();
        let planned = full(&s);
        assert_eq!(replay(&s, &[]).unwrap().stdout, planned);
    }

    #[test]
    fn inputs_that_have_not_settled_are_not_remembered() {
        let s = remembered();
        std::fs::remove_file(s.dirs.cache.join(FILE)).unwrap();
        // Just written: a change in the same timestamp tick could hide.
        std::fs::write(s.root.join("image.yml.extra"), "x").unwrap();
        std::fs::write(s.root.join("layers/greeting/hello.txt"), "fresh").unwrap();
        full(&s);
        assert!(!s.dirs.cache.join(FILE).exists());
    }
}
