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

use crate::model::Project;
use crate::workspace::Workspace;
use anyhow::{anyhow, Context as _};
use ov_rules::{NodeKind, RenderOpts, Rendered};
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde_json::{json, Value as Json};
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
        let rendered = match node.kind {
            NodeKind::Layer => ov_rules::render_layer(&node.spec, opts),
            NodeKind::Image => {
                let spec = complete_image_spec(&ws.project, &node.spec)?;
                ov_rules::render_image(&spec, opts)
            }
            _ => continue,
        }
        .with_context(|| format!("rendering node `{}`", node.id))?;
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

/// Adds what `render_image` reads but the planner's image spec does not
/// carry yet, each only when the spec lacks it (so this becomes a no-op
/// once the planner provides them): `init_header` (the init system's
/// header file), `capabilities` (merged from the image's layers:
/// `preserve_user`, `oci_label`) and `eval` (the image's and its layers'
/// checks, for the label).
fn complete_image_spec(project: &Project, spec: &Json) -> Result<Json, anyhow::Error> {
    let mut spec = spec.clone();
    let name = spec
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let closure: Vec<&crate::model::Layer> = spec
        .pointer("/resolved/closure")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| project.layers.get(l.as_str()?))
        .collect();
    let Some(obj) = spec.as_object_mut() else {
        return Ok(spec);
    };
    if !obj.contains_key("init_header") {
        let header = obj
            .get("init_def")
            .and_then(|d| d.get("header_file"))
            .and_then(Json::as_str)
            .filter(|f| !f.is_empty());
        if let Some(file) = header {
            let path = project.root.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading init header {}", path.display()))?;
            obj.insert("init_header".into(), Json::String(text));
        }
    }
    if !obj.contains_key("capabilities") {
        let mut preserve_user = false;
        let mut labels = serde_json::Map::new();
        for caps in closure.iter().filter_map(|l| l.capabilities.as_ref()) {
            preserve_user |= caps.get("preserve_user").and_then(Json::as_bool) == Some(true);
            if let Some(m) = caps.get("oci_label").and_then(Json::as_object) {
                labels.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        obj.insert(
            "capabilities".into(),
            json!({ "preserve_user": preserve_user, "oci_label": labels }),
        );
    }
    if !obj.contains_key("eval") {
        let own = project
            .images
            .get(&name)
            .map(|i| i.eval.as_slice())
            .unwrap_or_default();
        let checks: Vec<Json> = own
            .iter()
            .chain(closure.iter().flat_map(|l| &l.eval))
            .cloned()
            .collect();
        obj.insert("eval".into(), Json::Array(checks));
    }
    Ok(spec)
}
