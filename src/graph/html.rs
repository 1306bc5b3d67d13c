//! One self-contained HTML page of the graph document: the layout drawn as
//! inline SVG (each node a `<g>` with `data-node-id` and `data-state`), the
//! document itself as embedded JSON, and the styles and script inline, so
//! the file works offline and can be kept as a CI artifact.

use super::doc::{GraphDoc, Moment, State};
use super::layout::{layout, NODE_H, NODE_W};
use super::{colour, state_colour};
use ov_rules::NodeKind;
use std::collections::BTreeMap;
use std::fmt::Write;

const PAGE: &str = include_str!("page/page.html");
const CSS: &str = include_str!("page/page.css");
const JS: &str = include_str!("page/page.js");
/// Space around the drawing.
const MARGIN: f64 = 20.0;

/// Escapes text for an XML/HTML attribute value or text node.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` appear only
/// inside strings in JSON, where their `\u` escapes mean the same, so no
/// `</script>` or `<!--` in a node name can end the element.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Shortens a name to fit a box, keeping its end (the part that differs).
fn fit(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    }
}

fn svg(doc: &GraphDoc) -> String {
    let ends: Vec<(usize, usize)> = doc.edges.iter().map(|e| e.ends).collect();
    let placed = layout(doc.nodes.len(), &ends);
    let mut s = String::with_capacity(doc.nodes.len() * 420 + doc.edges.len() * 120);
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"{m} {m} {w:.0} {h:.0}\">",
        w = placed.width + 2.0 * MARGIN,
        h = placed.height + 2.0 * MARGIN,
        m = -MARGIN,
    );
    s.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto\"><path d=\"M0 0L10 5L0 10z\" fill=\"#777\"/></marker></defs>\n");
    s.push_str("<g id=\"edges\">\n");
    for e in &doc.edges {
        let (a, b) = e.ends;
        let (ax, ay) = placed.at[a];
        let (bx, by) = placed.at[b];
        let (x1, y1, x2, y2) = (ax + NODE_W, ay + NODE_H / 2.0, bx, by + NODE_H / 2.0);
        let bend = ((x2 - x1) / 2.0).max(20.0);
        let critical = doc.nodes[a].critical && doc.nodes[b].critical;
        let _ = writeln!(
            s,
            "<path class=\"edge{}\" data-from=\"{a}\" data-to=\"{b}\" d=\"M{x1:.1} {y1:.1}C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}\"/>",
            if critical { " critical" } else { "" },
            x1 + bend,
            x2 - bend,
        );
    }
    s.push_str("</g>\n<g id=\"nodes\">\n");
    for (i, n) in doc.nodes.iter().enumerate() {
        let (x, y) = placed.at[i];
        let top = match n.last_ms {
            Some(ms) => format!("{} · {}", n.kind, duration(ms)),
            None => n.kind.to_string(),
        };
        let _ = writeln!(
            s,
            "<g class=\"node{crit}\" data-i=\"{i}\" data-node-id=\"{id}\" data-state=\"{state}\" data-kind=\"{kind}\" transform=\"translate({x:.1},{y:.1})\"><title>{id}</title><rect width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"7\" fill=\"{fill}\"/><text class=\"k\" x=\"8\" y=\"17\">{top}</text><text x=\"8\" y=\"36\">{label}</text></g>",
            crit = if n.critical { " critical" } else { "" },
            id = escape(&n.id),
            state = n.state.as_str(),
            kind = n.kind,
            fill = colour(n.kind),
            top = escape(&top),
            label = escape(&fit(&n.label, 26)),
        );
    }
    s.push_str("</g>\n</svg>");
    s
}

/// The page for `doc`.
pub fn render(doc: &GraphDoc) -> String {
    let mut counts: BTreeMap<&str, (State, usize)> = BTreeMap::new();
    for n in &doc.nodes {
        counts.entry(n.state.as_str()).or_insert((n.state, 0)).1 += 1;
    }
    let mut css = String::from(CSS);
    let mut states = String::new();
    let mut count_text = Vec::new();
    for (name, (state, count)) in &counts {
        let c = state_colour(*state);
        let _ = writeln!(css, ".node[data-state=\"{name}\"] rect {{ stroke: {c}; }}");
        let _ = write!(
            states,
            "<label><input type=\"checkbox\" value=\"{name}\" checked> <span class=\"swatch\" style=\"border-color:{c}\"></span> {name} ({count})</label>"
        );
        count_text.push(format!("{count} {name}"));
    }
    let _ = writeln!(
        css,
        ".node[data-state=\"run\"] rect, .node[data-state=\"failed\"] rect {{ stroke-dasharray: 6 3; }}"
    );
    let mut targets = String::new();
    for (i, n) in doc.nodes.iter().enumerate() {
        if matches!(
            n.kind,
            NodeKind::Image | NodeKind::Disk | NodeKind::Boot | NodeKind::Eval
        ) {
            let _ = write!(targets, "<option value=\"{i}\">{}</option>", escape(&n.id));
        }
    }
    let moment = match doc.moment {
        Moment::NextBuild => "what the next build would do",
        Moment::AfterBuild => "what the build did",
    };
    let critical = match &doc.run {
        Some(r) => format!(
            "critical path: {} nodes, {}",
            r.critical_path.len(),
            duration(r.total_ms)
        ),
        None => String::new(),
    };
    // Compact: the same document `--format json` prints, without its indent.
    let json = script_json(&serde_json::to_string(doc).unwrap_or_default());
    let svg = svg(doc);
    let parts: [(&str, &str); 9] = [
        ("/*CSS*/", &css),
        ("<!--MOMENT-->", moment),
        ("<!--COUNTS-->", &escape(&count_text.join(", "))),
        ("<!--CRITICAL-->", &escape(&critical)),
        ("<!--TARGETS-->", &targets),
        ("<!--STATES-->", &states),
        ("<!--SVG-->", &svg),
        ("/*JSON*/", &json),
        ("/*JS*/", JS),
    ];
    // Each marker is looked for in the template only, never in what was
    // put in before it.
    let mut out = String::with_capacity(PAGE.len() + css.len() + svg.len() + json.len() + JS.len());
    let mut rest = PAGE;
    for (marker, value) in parts {
        match rest.split_once(marker) {
            Some((before, after)) => {
                out.push_str(before);
                out.push_str(value);
                rest = after;
            }
            None => debug_assert!(false, "page template lacks {marker}"),
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::doc::{DocEdge, DocNode};

    fn node(id: &str, state: State) -> DocNode {
        DocNode {
            id: id.into(),
            kind: NodeKind::Layer,
            label: id.into(),
            key: "k".into(),
            state,
            why: None,
            explain: vec![],
            ingredients: vec![],
            last_ms: Some(1500),
            message: None,
            bytes: None,
            critical: false,
        }
    }

    fn doc() -> GraphDoc {
        GraphDoc {
            moment: Moment::NextBuild,
            nodes: vec![
                node("layer:a\"<b>@x", State::Cached),
                node("layer:</script><script>alert(1)</script>@x", State::Run),
            ],
            edges: vec![DocEdge {
                from: "layer:a\"<b>@x".into(),
                to: "layer:</script><script>alert(1)</script>@x".into(),
                ends: (0, 1),
            }],
            run: None,
        }
    }

    #[test]
    fn names_are_escaped_in_markup_and_cannot_end_the_script() {
        let page = render(&doc());
        assert!(page.contains("data-node-id=\"layer:a&quot;&lt;b&gt;@x\" data-state=\"cached\""));
        assert!(page.contains("data-state=\"run\""));
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own");
        assert!(!page.contains("<script>alert"));
        // The embedded JSON still reads back as the document.
        let start = page.find("id=\"ov-graph\">").unwrap() + "id=\"ov-graph\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        let json: serde_json::Value = serde_json::from_str(&doc().to_json()).unwrap();
        assert_eq!(back, json);
    }

    #[test]
    fn every_marker_is_filled_and_nothing_is_fetched() {
        let page = render(&doc());
        for marker in [
            "/*CSS*/",
            "<!--SVG-->",
            "/*JSON*/",
            "/*JS*/",
            "<!--TARGETS-->",
        ] {
            assert!(!page.contains(marker), "{marker} left in the page");
        }
        for remote in ["http://", "https://", "src=\"", "<link"] {
            let hits: Vec<_> = page
                .match_indices(remote)
                .filter(|(i, _)| !page[*i..].starts_with("http://www.w3.org/2000/svg"))
                .collect();
            assert!(hits.is_empty(), "the page refers to {remote}");
        }
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(fit("short", 26), "short");
        let f = fit("layer:a-very-long-layer-name@some-image", 12);
        assert_eq!(f.chars().count(), 12);
        assert!(f.ends_with("some-image"));
    }
}
