//! Pictures of the plan. One [`doc::GraphDoc`] (nodes, keys, ingredients,
//! what the next build does with each, or what a build did) is built per
//! request; DOT, Mermaid, JSON and the HTML page are sibling renderers of
//! it, so they can never disagree.

pub mod critical;
pub mod doc;
mod dot;
pub mod html;
mod json;
mod layout;
mod mermaid;

use doc::{GraphDoc, State};

/// Output formats of `ov graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// The graph document: `{"moment","nodes":[…],"edges":[…],"run"}`.
    Json,
    /// One self-contained page: the graph laid out, coloured by state,
    /// with node details, filters and search.
    Html,
}

/// Renders `doc` in `format`.
pub fn render(doc: &GraphDoc, format: Format) -> String {
    match format {
        Format::Dot => dot::render(doc),
        Format::Mermaid => mermaid::render(doc),
        Format::Json => json::render(doc),
        Format::Html => html::render(doc),
    }
}

/// A fill colour per node kind, shared by the pictures.
pub(crate) fn colour(kind: ov_rules::NodeKind) -> &'static str {
    use ov_rules::NodeKind as K;
    match kind {
        K::Source => "#eeeeee",
        K::Base => "#c6dbef",
        K::Bootstrap => "#9ecae1",
        K::Preamble => "#fdae6b",
        K::Stage => "#fee6ce",
        K::Layer => "#fdd0a2",
        K::Image => "#fd8d3c",
        K::Eval => "#c7e9c0",
        K::CloudImage => "#dadaeb",
        K::Disk => "#bcbddc",
        K::Seed => "#efedf5",
        K::Boot => "#9e9ac8",
    }
}

/// A border colour per state, shared by DOT, Mermaid and the page.
pub(crate) fn state_colour(state: State) -> &'static str {
    match state {
        State::Cached => "#2ca02c",
        State::Remote => "#17becf",
        State::Run => "#d62728",
        State::Checked => "#7f7f7f",
        State::Built => "#1f77b4",
        State::Failed => "#000000",
        State::Skipped => "#bbbbbb",
    }
}
