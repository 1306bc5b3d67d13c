//! `{"nodes":[{"id","kind","label","key"}],"edges":[{"from","to"}]}`.

use super::View;
use serde_json::json;

pub fn render(view: &View) -> String {
    let g = &view.plan.graph;
    let nodes: Vec<_> = view
        .nodes
        .iter()
        .map(|&ix| {
            let n = &g[ix];
            json!({"id": n.id, "kind": n.kind(), "label": n.label, "key": view.keys.keys[ix.index()].to_string()})
        })
        .collect();
    let edges: Vec<_> = view
        .edges()
        .into_iter()
        .map(|(a, b)| json!({"from": g[view.nodes[a]].id, "to": g[view.nodes[b]].id}))
        .collect();
    let mut s =
        serde_json::to_string_pretty(&json!({"nodes": nodes, "edges": edges})).unwrap_or_default();
    s.push('\n');
    s
}
