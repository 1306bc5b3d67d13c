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
use ov_rules::{NodeKind, RenderOpts, Rendered};
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde_json::Value as Json;
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
        let quirks = ov_rules::exec::EngineQuirks {
            locked_cache_mounts: opts.locked_cache_mounts,
        };
        let Some(rendered) = ov_rules::exec::steps_sent(node.kind, &node.spec, &quirks) else {
            continue;
        };
        let rendered = rendered.with_context(|| format!("rendering node `{}`", node.id))?;
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "# node: {}", node.id);
        let _ = writeln!(out, "FROM {}", parent_ref(ws, ix));
        out.push_str(&rendered.containerfile());
        context_files(&rendered, &mut out);
    }
    Ok(out)
}

/// The layer and image nodes from the chain's root to `top`, in build order.
fn chain(ws: &Workspace, top: NodeIndex) -> Vec<NodeIndex> {
    let mut out = Vec::new();
    let mut cur = Some(top);
    while let Some(ix) = cur {
        let node = &ws.plan.graph[ix];
        if !matches!(node.kind, NodeKind::Layer | NodeKind::Image) {
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
    match node.kind {
        NodeKind::Layer => {
            let id = node.spec.get("parent")?.as_str()?;
            ws.plan.by_id.get(id).copied()
        }
        _ => ws
            .plan
            .graph
            .neighbors_directed(ix, Direction::Incoming)
            .next(),
    }
}

fn parent_ref(ws: &Workspace, ix: NodeIndex) -> String {
    let Some(p) = parent(ws, ix) else {
        return "scratch".into();
    };
    let node = &ws.plan.graph[p];
    match node.kind {
        NodeKind::Base => node
            .spec
            .get("ref")
            .and_then(Json::as_str)
            .unwrap_or(&node.id)
            .to_string(),
        NodeKind::Image => node
            .spec
            .get("tag")
            .and_then(Json::as_str)
            .unwrap_or(&node.id)
            .to_string(),
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
