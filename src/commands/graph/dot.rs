//! Graphviz DOT.

use super::{colour, View};
use std::fmt::Write;

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn render(view: &View) -> String {
    let mut s = String::from("digraph ov {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n");
    for &ix in &view.nodes {
        let n = &view.plan.graph[ix];
        let label = format!("{}\n{}", n.kind(), n.label);
        let _ = writeln!(
            s,
            "  {} [label={}, fillcolor={}];",
            quote(&n.id),
            quote(&label),
            quote(colour(n.kind()))
        );
    }
    for (a, b) in view.edges() {
        let _ = writeln!(
            s,
            "  {} -> {};",
            quote(&view.plan.graph[view.nodes[a]].id),
            quote(&view.plan.graph[view.nodes[b]].id)
        );
    }
    s.push_str("}\n");
    s
}
