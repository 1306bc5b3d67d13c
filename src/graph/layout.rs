//! Where each node goes on the page: a layered (Sugiyama) layout from the
//! `rust-sugiyama` crate, dependencies left of their dependents.
//!
//! Graphviz's `dot` took 2 minutes for the 1,941 nodes of the scaled bench
//! project and did not finish the full one (7,753 nodes) in 4; with the
//! barycenter heuristic and no transposition sweeps this takes 0.4 s and
//! 5 s (BUILD.md, "The graph page").

use rust_sugiyama::configure::{Config, CrossingMinimization};

/// A node's box, in page units.
pub const NODE_W: f64 = 190.0;
/// See [`NODE_W`].
pub const NODE_H: f64 = 46.0;
/// Space between layers, and between the boxes of one layer.
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 14.0;
/// Space between disconnected parts, stacked top to bottom.
const GAP_PART: f64 = 40.0;

/// Top-left corners of the boxes, by node position, and the page's size.
pub struct Placed {
    /// Each node's box corner.
    pub at: Vec<(f64, f64)>,
    /// The page's width.
    pub width: f64,
    /// The page's height.
    pub height: f64,
}

/// Lays out `n` nodes joined by `edges` (dependency first).
pub fn layout(n: usize, edges: &[(usize, usize)]) -> Placed {
    // The crate lays layers out top to bottom; each vertex's first extent
    // runs along its layer, the second across layers. Turned a quarter,
    // layers become columns, so the box's height goes first.
    let vertices: Vec<(u32, (f64, f64))> = (0..n)
        .map(|i| (i as u32, (NODE_H + GAP_Y, NODE_W + GAP_X)))
        .collect();
    let edges: Vec<(u32, u32)> = edges.iter().map(|&(a, b)| (a as u32, b as u32)).collect();
    let config = Config {
        vertex_spacing: 0.0,
        transpose: false,
        c_minimization: CrossingMinimization::Barycenter,
        ..Default::default()
    };
    let mut parts = rust_sugiyama::from_vertices_and_edges(&vertices, &edges, &config);
    // Big parts first, so the graph people came for is at the top.
    parts.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
    let mut at = vec![(0.0, 0.0); n];
    let (mut width, mut top) = (0.0f64, 0.0f64);
    for (part, _, _) in parts {
        let min = |f: fn(&(f64, f64)) -> f64| {
            part.iter().map(|(_, c)| f(c)).fold(f64::INFINITY, f64::min)
        };
        let (min_along, min_across) = (min(|c| c.0), min(|c| c.1));
        let mut bottom = top;
        for (v, (along, across)) in &part {
            let x = across - min_across;
            let y = top + along - min_along;
            if let Some(slot) = at.get_mut(*v) {
                *slot = (x, y);
            }
            width = width.max(x + NODE_W);
            bottom = bottom.max(y + NODE_H);
        }
        top = bottom + GAP_PART;
    }
    Placed {
        at,
        width,
        height: (top - GAP_PART).max(NODE_H),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < NODE_W && (a.1 - b.1).abs() < NODE_H
    }

    #[test]
    fn dependencies_sit_left_of_dependents_and_no_boxes_overlap() {
        // A diamond, a chain hanging off it, and a part of its own.
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (5, 6)];
        let p = layout(8, &edges);
        for (a, b) in edges {
            assert!(p.at[a].0 < p.at[b].0, "{a} → {b}: {:?}", p.at);
        }
        for i in 0..8 {
            for j in i + 1..8 {
                assert!(!overlaps(p.at[i], p.at[j]), "{i} and {j}: {:?}", p.at);
            }
            assert!(p.at[i].0 + NODE_W <= p.width && p.at[i].1 + NODE_H <= p.height);
        }
    }

    #[test]
    fn an_empty_graph_is_an_empty_page() {
        let p = layout(0, &[]);
        assert!(p.at.is_empty());
        assert_eq!(p.width, 0.0);
    }
}
