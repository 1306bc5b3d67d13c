//! Mermaid flowchart: fill by kind, a class per state (its border).

use super::doc::{GraphDoc, State};
use super::{colour, state_colour};
use std::collections::BTreeMap;
use std::fmt::Write;

fn label(s: &str) -> String {
    s.replace('"', "#quot;")
}

pub fn render(doc: &GraphDoc) -> String {
    let mut s = String::from("flowchart LR\n");
    let mut by_state: BTreeMap<&str, (State, Vec<usize>)> = BTreeMap::new();
    for (i, n) in doc.nodes.iter().enumerate() {
        let _ = writeln!(s, "  n{i}[\"{}: {}\"]", n.kind, label(&n.label));
        let _ = writeln!(s, "  style n{i} fill:{}", colour(n.kind));
        by_state
            .entry(n.state.as_str())
            .or_insert((n.state, Vec::new()))
            .1
            .push(i);
    }
    for e in &doc.edges {
        let _ = writeln!(s, "  n{} --> n{}", e.ends.0, e.ends.1);
    }
    for (name, (state, nodes)) in by_state {
        let _ = writeln!(
            s,
            "  classDef {name} stroke:{},stroke-width:3px",
            state_colour(state)
        );
        let list: Vec<String> = nodes.iter().map(|i| format!("n{i}")).collect();
        let _ = writeln!(s, "  class {} {name}", list.join(","));
    }
    s
}
