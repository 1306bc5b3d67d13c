//! Mermaid flowchart.

use super::{colour, View};
use std::fmt::Write;

fn label(s: &str) -> String {
    s.replace('"', "#quot;")
}

pub fn render(view: &View) -> String {
    let mut s = String::from("flowchart LR\n");
    for (i, &ix) in view.nodes.iter().enumerate() {
        let n = &view.plan.graph[ix];
        let _ = writeln!(s, "  n{i}[\"{}: {}\"]", n.kind(), label(&n.label));
        let _ = writeln!(s, "  style n{i} fill:{}", colour(n.kind()));
    }
    for (a, b) in view.edges() {
        let _ = writeln!(s, "  n{a} --> n{b}");
    }
    s
}
