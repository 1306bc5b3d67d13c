//! Drawing the plan: DOT, Mermaid and JSON, each a sibling renderer over the
//! same selected subgraph.

mod dot;
mod json;
mod mermaid;

use crate::plan::keys::Keys;
use crate::plan::Plan;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

/// Output formats of `ov graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// `{"nodes":[…],"edges":[…]}`.
    Json,
}

/// A selected part of the plan, in a stable order.
pub struct View<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The keys, for colouring and JSON.
    pub keys: &'a Keys,
    /// Selected nodes, in topological order.
    pub nodes: Vec<NodeIndex>,
}

impl<'a> View<'a> {
    /// Edges between selected nodes, as (from, to) positions in `nodes`.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let pos: std::collections::HashMap<NodeIndex, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        let mut out: Vec<(usize, usize)> = self
            .nodes
            .iter()
            .flat_map(|n| self.plan.graph.edges(*n))
            .filter_map(|e| Some((*pos.get(&e.source())?, *pos.get(&e.target())?)))
            .collect();
        out.sort();
        out
    }
}

/// Renders `view` in `format`.
pub fn render(view: &View, format: Format) -> String {
    match format {
        Format::Dot => dot::render(view),
        Format::Mermaid => mermaid::render(view),
        Format::Json => json::render(view),
    }
}

/// A fill colour per node kind, shared by the pictures.
pub(crate) fn colour(kind: ov_rules::NodeKind) -> &'static str {
    use ov_rules::NodeKind as K;
    match kind {
        K::Source => "#eeeeee",
        K::Base => "#c6dbef",
        K::Bootstrap => "#9ecae1",
        K::Stage => "#fee6ce",
        K::Layer => "#fdd0a2",
        K::Image => "#fd8d3c",
        K::Eval => "#c7e9c0",
        K::CloudImage => "#dadaeb",
        K::Disk => "#bcbddc",
        K::Seed => "#efedf5",
        K::Boot => "#9e9ac8",
    }
}

/// `ov graph [TARGET…] --format F`: the part of the graph the targets need.
pub fn run(
    root: &std::path::Path,
    dirs: &crate::workspace::Dirs,
    targets: &[String],
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let ws = crate::workspace::Workspace::open(root, dirs)?;
    super::print_diags(&ws.warnings);
    let nodes = ws.select(targets)?;
    let view = View {
        plan: &ws.plan,
        keys: &ws.keys,
        nodes,
    };
    out.write_all(render(&view, format).as_bytes())?;
    // Freeing a large plan costs more than building its output; the
    // process is about to exit anyway.
    std::mem::forget(ws);
    Ok(())
}
