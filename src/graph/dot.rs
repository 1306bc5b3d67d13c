//! Graphviz DOT: fill by kind, border by state, and a `state` attribute
//! that tools reading the DOT can use (Graphviz keeps unknown attributes).

use super::doc::GraphDoc;
use super::{colour, state_colour};
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

pub fn render(doc: &GraphDoc) -> String {
    let mut s = String::from("digraph ov {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", penwidth=2];\n");
    for n in &doc.nodes {
        let label = format!("{}\n{}", n.kind, n.label);
        let _ = writeln!(
            s,
            "  {} [label={}, fillcolor={}, color={}, state={}];",
            quote(&n.id),
            quote(&label),
            quote(colour(n.kind)),
            quote(state_colour(n.state)),
            quote(n.state.as_str())
        );
    }
    for e in &doc.edges {
        let _ = writeln!(s, "  {} -> {};", quote(&e.from), quote(&e.to));
    }
    s.push_str("}\n");
    s
}
