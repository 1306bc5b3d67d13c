//! The graph document as JSON: the same text the HTML page embeds.

use super::doc::GraphDoc;

pub fn render(doc: &GraphDoc) -> String {
    doc.to_json()
}
