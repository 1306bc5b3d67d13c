//! The graph document: the selected nodes with their keys, ingredients and
//! state, and the edges between them. `ov graph --format json` prints it,
//! the HTML page embeds it, and DOT and Mermaid are drawn from it, so every
//! picture says the same thing.

use super::critical::{critical_path, Timed};
use crate::plan::keys::Keys;
use crate::plan::predict::Predicted;
use crate::plan::why;
use crate::plan::Plan;
use crate::run::record::{Ending, RunRecord};
use ov_rules::{Manifest, NodeKind};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::collections::HashMap;

/// What a node's colour says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its key is in the local store: the next build runs nothing for it.
    Cached,
    /// Its key came from the remote cache.
    Remote,
    /// The next build runs it.
    Run,
    /// Checked on every build (a source tree hashed, an external base
    /// resolved), with a known last result.
    Checked,
    /// It ran (after a build).
    Built,
    /// It failed (after a build).
    Failed,
    /// It was not run: a dependency failed or the build stopped.
    Skipped,
}

impl State {
    /// The word used in markup and legends.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Cached => "cached",
            State::Remote => "remote",
            State::Run => "run",
            State::Checked => "checked",
            State::Built => "built",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }
}

/// One ingredient of a key.
#[derive(Clone, Debug, Serialize)]
pub struct DocIngredient {
    /// Its name (`file layers/web/nginx.conf`, `dep image:x`, `spec`).
    pub name: String,
    /// Its digest, hex.
    pub digest: String,
}

/// One node.
#[derive(Clone, Debug, Serialize)]
pub struct DocNode {
    /// Node id, e.g. `layer:web@web`.
    pub id: String,
    /// Its kind.
    pub kind: NodeKind,
    /// A short name.
    pub label: String,
    /// Its key.
    pub key: String,
    /// What the next build does with it, or what the build did.
    pub state: State,
    /// Why it will run, as `ov explain` words it (its first reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// `ov explain`'s verdict lines, or what the build did.
    pub explain: Vec<String>,
    /// The key's ingredients.
    pub ingredients: Vec<DocIngredient>,
    /// How long its last run took, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<u64>,
    /// The first line of its error (failed), or why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Bytes its result keeps in the store (after a build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// On the critical path of the run the document shows.
    pub critical: bool,
}

/// One edge, dependency first.
#[derive(Clone, Debug, Serialize)]
pub struct DocEdge {
    /// The dependency's id.
    pub from: String,
    /// The dependent's id.
    pub to: String,
    /// Positions of both ends in `nodes`.
    #[serde(skip)]
    pub ends: (usize, usize),
}

/// Which build the states describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Moment {
    /// What the next build would do (`ov graph`).
    NextBuild,
    /// What a build did (`ov build --graph-out`).
    AfterBuild,
}

/// The critical path of the run the document shows.
#[derive(Clone, Debug, Serialize)]
pub struct RunPath {
    /// Node ids on it, first first.
    pub critical_path: Vec<String>,
    /// When its last node finished, in ms since the run began.
    pub total_ms: u64,
    /// When that run began, in Unix milliseconds.
    pub started_unix_ms: u64,
}

/// The whole document.
#[derive(Clone, Debug, Serialize)]
pub struct GraphDoc {
    /// Which build the states describe.
    pub moment: Moment,
    /// Nodes, dependencies before dependents.
    pub nodes: Vec<DocNode>,
    /// Edges between them.
    pub edges: Vec<DocEdge>,
    /// The critical path of the last run (or of this one), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunPath>,
}

impl GraphDoc {
    /// The document as JSON text, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Each node's dependencies, as positions in `nodes`.
    pub fn deps(&self) -> Vec<Vec<usize>> {
        let mut deps = vec![Vec::new(); self.nodes.len()];
        for e in &self.edges {
            deps[e.ends.1].push(e.ends.0);
        }
        deps
    }

    /// Marks the critical path of `record` (matched to nodes by id).
    fn mark_critical(&mut self, record: &RunRecord) {
        let ends: HashMap<&str, u64> = record
            .nodes
            .iter()
            .filter(|n| n.ending.is_some_and(|e| e != Ending::Skipped))
            .map(|n| (n.id.as_str(), n.end_ms))
            .collect();
        let deps = self.deps();
        let timed: Vec<Timed> = self
            .nodes
            .iter()
            .zip(&deps)
            .map(|(n, d)| Timed {
                end_ms: ends.get(n.id.as_str()).copied(),
                deps: d,
            })
            .collect();
        let (path, total_ms) = critical_path(&timed);
        if path.is_empty() {
            return;
        }
        for &i in &path {
            self.nodes[i].critical = true;
        }
        self.run = Some(RunPath {
            critical_path: path.iter().map(|&i| self.nodes[i].id.clone()).collect(),
            total_ms,
            started_unix_ms: record.started_unix_ms,
        });
    }
}

fn ingredients(m: &Manifest) -> Vec<DocIngredient> {
    m.entries
        .iter()
        .map(|e| DocIngredient {
            name: e.name.clone(),
            digest: e.digest.clone(),
        })
        .collect()
}

/// Nodes (with their planned keys, in state `Run`) and edges of `nodes`.
fn skeleton(plan: &Plan, keys: &Keys, nodes: &[NodeIndex], moment: Moment) -> GraphDoc {
    let pos: HashMap<NodeIndex, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let g = &plan.graph;
    let doc_nodes = nodes
        .iter()
        .map(|&ix| {
            let n = &g[ix];
            DocNode {
                id: n.id.clone(),
                kind: n.kind(),
                label: n.label.clone(),
                // A build's workspace is unkeyed: its keys come from the run.
                key: keys
                    .keys
                    .get(ix.index())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                state: State::Run,
                why: None,
                explain: Vec::new(),
                // Listed by the caller, which knows where they come from.
                ingredients: Vec::new(),
                last_ms: None,
                message: None,
                bytes: None,
                critical: false,
            }
        })
        .collect();
    let mut ends: Vec<(usize, usize)> = nodes
        .iter()
        .flat_map(|n| g.edges(*n))
        .filter_map(|e| Some((*pos.get(&e.source())?, *pos.get(&e.target())?)))
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let edges = ends
        .into_iter()
        .map(|(a, b)| DocEdge {
            from: g[nodes[a]].id.clone(),
            to: g[nodes[b]].id.clone(),
            ends: (a, b),
        })
        .collect();
    GraphDoc {
        moment,
        nodes: doc_nodes,
        edges,
        run: None,
    }
}

/// What the next build would do with `nodes`, and the last run's times
/// and critical path from `last_run` (matched by node id).
pub fn next_build(ws: &Predicted, nodes: &[NodeIndex], last_run: Option<&RunRecord>) -> GraphDoc {
    let mut doc = skeleton(&ws.plan, &ws.keys, nodes, Moment::NextBuild);
    let last_ms: HashMap<&str, u64> = last_run
        .map(|r| {
            r.nodes
                .iter()
                .filter(|n| n.ending == Some(Ending::Built))
                .map(|n| (n.id.as_str(), n.end_ms.saturating_sub(n.start_ms)))
                .collect()
        })
        .unwrap_or_default();
    for (d, &ix) in doc.nodes.iter_mut().zip(nodes) {
        let what = format!("{} {}", d.kind.as_str(), d.label);
        // One read of the node's last run, and one listing of its key,
        // serve its verdict, duration and ingredients.
        let last = ws.last(ix);
        let manifest = ws.keys.manifest(&ws.plan, &ws.trees, ix);
        if ws.remote.contains(&ix) {
            d.state = State::Remote;
            d.explain = vec![format!(
                "{what}: in the remote cache (the next build restores it)"
            )];
        } else if !ws.cached.contains(&ix) && ws.checked.contains(&ix) {
            d.state = State::Checked;
            d.explain = vec![format!(
                "{what}: checked on every build (its last result is known)"
            )];
        } else {
            let verdict = why::verdict(ws, ix, last.clone(), &manifest);
            d.state = if verdict.runs {
                State::Run
            } else {
                State::Cached
            };
            d.why = verdict.why;
            d.explain = verdict.lines;
        }
        d.last_ms = last_ms
            .get(d.id.as_str())
            .copied()
            .or_else(|| last.map(|(_, r)| r.duration_ms));
        d.ingredients = ingredients(&manifest);
    }
    if let Some(r) = last_run {
        doc.mark_critical(r);
    }
    doc
}

/// What a build did with `order`: `record` is its run, `keys` the keys it
/// computed (by node index; a node it never keyed keeps its planned key).
pub fn after_build(
    plan: &Plan,
    planned: &Keys,
    order: &[NodeIndex],
    record: &RunRecord,
    keys: &[Option<(ov_cache::NodeKey, Manifest)>],
) -> GraphDoc {
    let mut doc = skeleton(plan, planned, order, Moment::AfterBuild);
    for ((d, &ix), run) in doc.nodes.iter_mut().zip(order).zip(&record.nodes) {
        if let Some((key, manifest)) = keys.get(ix.index()).and_then(Option::as_ref) {
            d.key = key.to_string();
            d.ingredients = ingredients(manifest);
        }
        let took = run.end_ms.saturating_sub(run.start_ms);
        let what = format!("{} {}", d.kind.as_str(), d.label);
        (d.state, d.explain) = match run.ending {
            Some(Ending::Built) => (State::Built, vec![format!("{what}: built in {took} ms")]),
            Some(Ending::Cached) => (State::Cached, vec![format!("{what}: cached")]),
            Some(Ending::Remote) => (
                State::Remote,
                vec![format!("{what}: restored from the remote cache")],
            ),
            Some(Ending::Checked) => (State::Checked, vec![format!("{what}: checked")]),
            Some(Ending::Failed) => (
                State::Failed,
                vec![format!(
                    "{what}: failed: {}",
                    run.message.as_deref().unwrap_or("(no message)")
                )],
            ),
            Some(Ending::Skipped) | None => (
                State::Skipped,
                vec![format!(
                    "{what}: skipped ({})",
                    run.message.as_deref().unwrap_or("the build stopped")
                )],
            ),
        };
        if run.ending.is_some() {
            d.last_ms = Some(took);
        }
        d.message = run.message.clone();
        d.bytes = run.bytes;
    }
    doc.mark_critical(record);
    doc
}
