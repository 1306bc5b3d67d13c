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

use crate::plan::inputs::{hash_dirs, SourceFile, SourceTree};
use crate::plan::keys;
use crate::plan::predict::Predicted;
use crate::workspace::Dirs;
use ov_cache::{
    checksummed_write_with, Digest, Fingerprint, Lookup, NodeKey, Store, TreeDigest, Witness,
};
use ov_cache::{StatCache, WitnessBuilder};
use ov_rules::rule::Caching;
use ov_rules::Ingredients;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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

#[derive(Clone, Serialize, Deserialize)]
struct TreeMemo {
    dir: PathBuf,
    witness: Witness,
    shape: [u8; 32],
    digest: [u8; 32],
    /// Holds a symbolic link: validation reads where each one points, so
    /// any change to such a tree means a full plan.
    has_links: bool,
    /// Files of the tree that are also structure (its layer.yml), with
    /// their fingerprints: a change to one means a full plan. Kept here,
    /// not in the structure's witness, so a no-op stats them once.
    structural: Vec<(String, Fingerprint)>,
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
    trees: Vec<TreeMemo>,
    nodes: Vec<NodeMemo>,
    /// The nodes a dry run of this context prints, in order.
    selected: Vec<u32>,
    /// What the plan warned about (it depends on the structure only).
    stderr: String,
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    to: W,
    hash: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.to.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
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

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

/// A hash of everything the output depends on that is not a file of the
/// project: this ov binary (its version and its own fingerprint, so a
/// rebuilt ov never replays an older one's output), where it runs and on
/// what, and which targets were asked for.
fn context(root: &Path, dirs: &Dirs, targets: &[String]) -> Option<[u8; 32]> {
    let exe = std::env::current_exe().ok()?;
    let exe_fp = Fingerprint::of(&std::fs::metadata(&exe).ok()?);
    let cwd = std::env::current_dir().ok()?;
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(MAGIC);
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(exe.as_os_str().as_encoded_bytes());
    field(&postcard::to_allocvec(&exe_fp).ok()?);
    field(cwd.as_os_str().as_encoded_bytes());
    field(root.as_os_str().as_encoded_bytes());
    field(dirs.repo_cache.as_os_str().as_encoded_bytes());
    field(dirs.state.as_os_str().as_encoded_bytes());
    field(&(targets.len() as u64).to_le_bytes());
    for t in targets {
        field(t.as_bytes());
    }
    Some(*h.finalize().as_bytes())
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

/// The names and kinds of a tree's entries: what validation and builder
/// detection read of a layer directory besides its YAML.
fn shape(t: &SourceTree) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[u8::from(t.root.is_some())]);
    for f in &t.files {
        h.update(&(f.rel.len() as u64).to_le_bytes());
        h.update(f.rel.as_bytes());
        h.update(&[u8::from(f.is_link())]);
    }
    h.update(b"/");
    for (rel, _) in &t.dirs {
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn tree_memo(dir: &Path, t: &SourceTree) -> Option<TreeMemo> {
    let mut b = WitnessBuilder::default();
    b.dir(dir, t.root);
    for (rel, fp) in &t.dirs {
        b.entry(dir, rel, Some(*fp));
    }
    for f in &t.files {
        b.entry(dir, &f.rel, Some(f.fingerprint));
    }
    Some(TreeMemo {
        dir: dir.to_path_buf(),
        witness: b.finish()?,
        shape: shape(t),
        digest: *t.digest.as_bytes(),
        has_links: t.files.iter().any(SourceFile::is_link),
        structural: Vec::new(),
    })
}

/// The key of `nodes[i]` from its stored ingredients and its dependencies'
/// current contributions.
fn key_of(nodes: &[NodeMemo], trees: &[TreeMemo], i: usize) -> NodeKey {
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
fn rekey(nodes: &mut [NodeMemo], trees: &[TreeMemo], store: Option<&Store>, i: usize) -> bool {
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
            context: context(root, dirs, targets),
            started_ns: now_ns(),
        }
    }

    /// The memo of this context, if its structure is unchanged.
    fn load(&self) -> Option<Stored> {
        let context = self.context?;
        let bytes = std::fs::read(&self.path).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (sum, payload) = rest.split_at_checked(32)?;
        if blake3::hash(payload).as_bytes() != sum {
            return None;
        }
        let (head, _) = postcard::take_from_bytes::<Head>(payload).ok()?;
        if head.context != context || !head.structure.unchanged() {
            return None;
        }
        postcard::from_bytes(payload).ok()
    }

    /// Streams the memo to disk: at the bench project's size its bytes
    /// are 4 MB, and the run is at its peak of memory here.
    fn write(&self, stored: &Stored) {
        // Its checksum refuses a file cut by a power loss, so it is not
        // synced to disk: a cut memo costs a full plan, nothing more.
        let _ = checksummed_write_with(&self.path, |f| {
            use std::io::{Seek, SeekFrom, Write};
            f.write_all(MAGIC)?;
            f.write_all(&[0; 32])?;
            let mut out = Hashing {
                to: std::io::BufWriter::with_capacity(256 * 1024, &mut *f),
                hash: blake3::Hasher::new(),
            };
            postcard::to_io(stored, &mut out).map_err(std::io::Error::other)?;
            let Hashing { to, hash } = out;
            let f = to.into_inner().map_err(|e| e.into_error())?;
            f.seek(SeekFrom::Start(MAGIC.len() as u64))?;
            f.write_all(hash.finalize().as_bytes())
        });
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
        let changed: Vec<usize> = stored
            .trees
            .par_iter()
            .enumerate()
            .filter(|(_, t)| !t.witness.unchanged())
            .map(|(i, _)| i)
            .collect();
        if changed.is_empty() && !store_changed {
            return Some(Replay {
                stdout: render(&stored.nodes, &stored.selected),
                stderr: stored.stderr,
            });
        }
        if changed.iter().any(|&i| stored.trees[i].has_links) {
            return None;
        }
        let roots: Vec<&Path> = changed
            .iter()
            .map(|&i| stored.trees[i].dir.as_path())
            .collect();
        let fresh = hash_dirs(&roots, &mut StatCache::in_memory()).ok()?;
        let mut moved_tree = vec![false; stored.trees.len()];
        for (&i, t) in changed.iter().zip(&fresh) {
            let mut m = tree_memo(&stored.trees[i].dir, t)?;
            if m.shape != stored.trees[i].shape || m.has_links {
                return None;
            }
            m.structural = std::mem::take(&mut stored.trees[i].structural);
            if m.structural
                .iter()
                .any(|(rel, fp)| t.file(rel).map(|f| f.fingerprint) != Some(*fp))
            {
                return None;
            }
            moved_tree[i] = m.digest != stored.trees[i].digest;
            stored.trees[i] = m;
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
            && changed
                .iter()
                .all(|&i| stored.trees[i].witness.settled(self.started_ns));
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
    let project = &ws.project;
    let g = &ws.plan.graph;

    // A file edited moments ago (the usual dry run right after an edit)
    // cannot be remembered under its fingerprint: whatever is built below
    // would only be thrown away. The trees are asked first, straight from
    // their fingerprints, before their witnesses are built.
    let tree_settled = |t: &SourceTree| {
        t.root.is_none_or(|fp| fp.settled(started_ns))
            && t.dirs.iter().all(|(_, fp)| fp.settled(started_ns))
            && t.files.iter().all(|f| f.fingerprint.settled(started_ns))
    };
    if !ws.trees.values().all(tree_settled) {
        return None;
    }
    // One tree per layer directory.
    let mut sources: Vec<(&Path, &SourceTree)> = Vec::new();
    let mut tree_of_layer: HashMap<&str, u32> = HashMap::new();
    let mut tree_of_dir: HashMap<&Path, u32> = HashMap::new();
    for (name, tree) in &ws.trees {
        let dir = project.layers.get(name)?.dir.as_path();
        if dir.as_os_str().is_empty() {
            continue;
        }
        let ix = *tree_of_dir.entry(dir).or_insert_with(|| {
            sources.push((dir, tree));
            (sources.len() - 1) as u32
        });
        tree_of_layer.insert(name, ix);
    }

    let mut structural: Vec<Vec<(String, Fingerprint)>> = vec![Vec::new(); sources.len()];
    let mut b = WitnessBuilder::default();
    for f in &project.inputs.files {
        // A file of a hashed tree (a layer.yml that is not a link) is
        // watched by that tree's witness.
        let in_tree = f.parent().and_then(|d| tree_of_dir.get(d)).and_then(|&t| {
            let rel = f.file_name()?.to_str()?;
            let file = sources[t as usize].1.file(rel)?;
            (!file.is_link()).then(|| (t, rel.to_string(), file.fingerprint))
        });
        match in_tree {
            Some((t, rel, fp)) => structural[t as usize].push((rel, fp)),
            None => b.path_now(f),
        }
    }
    // The YAML files are where an edit usually is: no need to look further.
    if !b.settled(started_ns) {
        return None;
    }
    for d in &project.inputs.dirs {
        b.dir_now(d);
    }
    // Validation only asks whether a copy source exists and what it is. In
    // a hashed tree, its shape says that (and its witness sees the
    // contents change); only a source elsewhere needs its own witness.
    let in_a_tree = |p: &Path| p.ancestors().skip(1).any(|a| tree_of_dir.contains_key(a));
    for path in crate::load::validate::copy_source_paths(project) {
        if !in_a_tree(&path) {
            b.path_now(&path);
        }
    }
    for path in crate::plan::header_files(project) {
        b.path_now(&path);
    }
    let structure = b.finish()?;
    let generation = generation(store_dir);
    if !structure.settled(started_ns) || !generation.is_none_or(|g| g.settled(started_ns)) {
        return None;
    }
    let mut trees: Vec<TreeMemo> = sources
        .par_iter()
        .map(|(dir, tree)| tree_memo(dir, tree))
        .collect::<Option<_>>()?;
    for (t, s) in trees.iter_mut().zip(structural) {
        t.structural = s;
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
    use std::time::{Duration, SystemTime};

    /// Sets the mtime of everything under `dir` (and `dir`) a minute back,
    /// so every input has settled.
    fn backdate(dir: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                backdate(&path);
            } else {
                let f = std::fs::File::options().write(true).open(&path).unwrap();
                f.set_modified(old).unwrap();
            }
        }
        std::fs::File::open(dir).unwrap().set_modified(old).unwrap();
    }

    fn copy(src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let to = dst.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &to);
            } else {
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
    }

    struct Setup {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        dirs: Dirs,
    }

    /// What a dry run of the whole project prints, by a full plan.
    fn full(s: &Setup) -> String {
        let mut out = Vec::new();
        crate::commands::build::dry_run(&s.root, &s.dirs, &[], &[], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A settled copy of the mini fixture whose memo a full plan wrote.
    fn remembered() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        copy(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mini")),
            &root,
        );
        let dirs = Dirs {
            cache: tmp.path().join("cache"),
            repo_cache: tmp.path().join("repos"),
            state: tmp.path().join("state"),
        };
        let s = Setup {
            _tmp: tmp,
            root,
            dirs,
        };
        // The first plan makes the VM's key pair (an input of the plan);
        // all inputs are then older than the settling time.
        crate::workspace::Workspace::open(&s.root, &s.dirs).unwrap();
        backdate(&s.root);
        backdate(&s.dirs.state);
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
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        // A kill -9 can leave no torn file (the write is atomic), but a
        // file cut anywhere must still be refused, not misread.
        let mut bad: Vec<Vec<u8>> = (0..good.len())
            .step_by(good.len() / 64 + 1)
            .map(|n| good[..n].to_vec())
            .collect();
        bad.extend([flipped, b"garbage".to_vec()]);
        for b in bad {
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
