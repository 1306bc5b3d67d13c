//! `ov image generate NAME`: the Containerfile steps of every node that
//! builds an image, as text to read (or diff), not to feed to an engine:
//! each node is its own build `FROM` its parent, so the output is one
//! section per node, in build order.
//!
//! The image's chain is walked from the root: the layer nodes and image
//! node of each internal base image, then the image's own layer nodes and
//! its image node. Each section is a `# node: <id>` header, `FROM
//! <parent>` (an external ref as written, an internal base image by its
//! tag, other nodes by id) and the rendered steps, followed by the files
//! staged in the node's build context as `#|` comment lines.

use crate::workspace::Workspace;
use anyhow::{anyhow, Context as _};
use ov_rules::{NodeKind, NodeSpec, RenderOpts, Rendered};
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use std::fmt::Write as _;

/// Renders every node that builds `image`, root first.
pub fn generate(ws: &Workspace, image: &str, opts: &RenderOpts) -> Result<String, anyhow::Error> {
    ws.image(image)?;
    let plan = &ws.plan;
    let &top = plan.images.get(image).ok_or_else(|| {
        anyhow!("image `{image}` is not planned (it is disabled and nothing needs it)")
    })?;
    let mut out = String::new();
    for ix in chain(ws, top) {
        let node = &plan.graph[ix];
        for s in stages_of(ws, ix) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&stage_section(ws, s, opts)?);
        }
        let quirks = ov_rules::rule::EngineQuirks {
            locked_cache_mounts: opts.locked_cache_mounts,
        };
        // The chain holds only preamble, layer and image nodes; the others write no
        // Containerfile.
        let Some(rendered) = ov_rules::rule::steps_sent(node.spec.get()?, &quirks) else {
            continue;
        };
        let rendered = rendered.with_context(|| format!("rendering node `{}`", node.id))?;
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "# node: {}", node.id);
        out.push_str(&rendered.context_stage_text());
        let _ = writeln!(out, "FROM {}", parent_ref(ws, ix));
        out.push_str(&rendered.containerfile());
        context_files(&rendered, &mut out);
    }
    Ok(out)
}

/// The preamble, layer and image nodes from the chain's root to `top`, in
/// build order.
fn chain(ws: &Workspace, top: NodeIndex) -> Vec<NodeIndex> {
    let mut out = Vec::new();
    let mut cur = Some(top);
    while let Some(ix) = cur {
        let node = &ws.plan.graph[ix];
        if !matches!(
            node.kind(),
            NodeKind::Layer | NodeKind::Image | NodeKind::Preamble
        ) {
            break;
        }
        out.push(ix);
        cur = parent(ws, ix);
    }
    out.reverse();
    out
}

/// The node `ix` is built on: a layer's spec names it; an image node has
/// exactly one incoming edge, from it.
fn parent(ws: &Workspace, ix: NodeIndex) -> Option<NodeIndex> {
    let node = &ws.plan.graph[ix];
    match node.spec.get() {
        Ok(NodeSpec::Layer(spec)) => ws.plan.by_id.get(&spec.parent).copied(),
        _ => ws
            .plan
            .graph
            .neighbors_directed(ix, Direction::Incoming)
            .next(),
    }
}

/// The builder stage nodes a layer node copies from.
fn stages_of(ws: &Workspace, ix: NodeIndex) -> Vec<NodeIndex> {
    let g = &ws.plan.graph;
    let mut out: Vec<NodeIndex> = g
        .neighbors_directed(ix, Direction::Incoming)
        .filter(|&d| g[d].kind() == NodeKind::Stage)
        .collect();
    out.sort_by(|a, b| g[*a].id.cmp(&g[*b].id));
    out
}

/// A stage node's whole Containerfile: it names its builder image itself.
fn stage_section(
    ws: &Workspace,
    ix: NodeIndex,
    opts: &RenderOpts,
) -> Result<String, anyhow::Error> {
    let node = &ws.plan.graph[ix];
    let Ok(NodeSpec::Stage(spec)) = node.spec.get() else {
        return Err(anyhow::anyhow!("node `{}` is not a stage", node.id));
    };
    let builder = ws
        .plan
        .by_id
        .get(&spec.builder_node)
        .map(|&b| node_ref(ws, b))
        .unwrap_or_else(|| "scratch".into());
    let place = ov_rules::StagePlace {
        builder_ref: &builder,
        copy_src: ".",
    };
    let text = ov_rules::render_stage(spec, place, opts)
        .with_context(|| format!("rendering node `{}`", node.id))?;
    Ok(format!("# node: {}\n{text}", node.id))
}

fn parent_ref(ws: &Workspace, ix: NodeIndex) -> String {
    match parent(ws, ix) {
        Some(p) => node_ref(ws, p),
        None => "scratch".into(),
    }
}

/// How a section names another node's image: an external ref as written,
/// an image by its tag, anything else by its id.
fn node_ref(ws: &Workspace, p: NodeIndex) -> String {
    let node = &ws.plan.graph[p];
    match node.spec.get() {
        Ok(NodeSpec::Base(spec)) => spec.reference.clone(),
        Ok(NodeSpec::Image(spec)) => spec.tag.clone(),
        _ => node.id.clone(),
    }
}

fn context_files(r: &Rendered, out: &mut String) {
    for (path, data) in &r.context_files {
        let _ = writeln!(out, "# context file: {path}");
        match std::str::from_utf8(data) {
            Ok(text) => {
                for line in text.lines() {
                    let _ = writeln!(out, "{}", format!("#| {line}").trim_end());
                }
            }
            Err(_) => {
                let _ = writeln!(out, "#| ({} bytes)", data.len());
            }
        }
    }
}
