//! A YAML tree that remembers where every node came from.
//!
//! ov files are decoded by hand from this tree rather than through serde so
//! that every warning and error can name the file, line and column of the
//! key or value at fault, and so unknown, legacy and drifted keys can be told
//! apart (serde would either drop them silently or reject the whole file).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl From<Marker> for Span {
    fn from(m: Marker) -> Self {
        Span {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where it starts.
    pub span: Span,
}

/// The shapes a node can take. Scalars stay text; typed readers decide
/// what a scalar means, YAML 1.2-core style, and only for plain scalars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `~`, `null`, or nothing at all.
    Null,
    /// A scalar; `plain` is false when it was quoted or a block scalar.
    Scalar {
        /// The text.
        text: String,
        /// Unquoted.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Where the scanner stopped.
    pub span: Span,
    /// What it said.
    pub message: String,
}

impl Node {
    /// The text of a scalar (quoted or not).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the node is null.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short word for the node's shape, for error messages.
    pub fn shape(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// The node as JSON, with plain scalars typed (bool, integer, float,
    /// null) the way YAML 1.2's core schema reads them. Used for canonical
    /// spec bytes and for `inspect` output.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar { text, plain } => {
                if !plain {
                    return J::String(text.clone());
                }
                match text.as_str() {
                    "true" | "True" | "TRUE" => J::Bool(true),
                    "false" | "False" | "FALSE" => J::Bool(false),
                    "null" | "Null" | "NULL" | "~" => J::Null,
                    t => {
                        if let Ok(i) = t.parse::<i64>() {
                            J::from(i)
                        } else if let Some(f) = t
                            .parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite() && t.contains(|c: char| c.is_ascii_digit()))
                        {
                            serde_json::Number::from_f64(f)
                                .map(J::Number)
                                .unwrap_or_else(|| J::String(t.to_string()))
                        } else {
                            J::String(t.to_string())
                        }
                    }
                }
            }
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    m.entry(key_text(k)).or_insert_with(|| v.to_json());
                }
                J::Object(m)
            }
        }
    }
}

/// A mapping key as text: scalars by their text whatever their style (ov
/// looks keys up by text), anything else as its JSON.
fn key_text(k: &Node) -> String {
    match &k.value {
        Value::Scalar { text, .. } => text.clone(),
        _ => serde_json::to_string(&k.to_json()).unwrap_or_default(),
    }
}

/// A key written twice in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key, as text.
    pub key: String,
    /// Where it is first written.
    pub first: Span,
    /// Where it is written again.
    pub again: Span,
}

/// Every key written twice in one mapping, in the order of the second
/// occurrences. YAML forbids them, yet parsers keep one silently, so a
/// setting the author sees in the file may not be the one read.
pub fn duplicate_keys(docs: &[Node]) -> Vec<Duplicate> {
    let mut found = Vec::new();
    for doc in docs {
        find_duplicates(doc, &mut found);
    }
    found.sort_by_key(|d| (d.again.line, d.again.col, d.first.line, d.first.col));
    // An aliased mapping is a copy that keeps the anchor's spans: report
    // each duplicate once.
    found.dedup();
    found
}

fn find_duplicates(node: &Node, found: &mut Vec<Duplicate>) {
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|n| find_duplicates(n, found)),
        Value::Map(entries) => {
            let mut first: HashMap<String, Span> = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                let key = key_text(k);
                match first.get(&key) {
                    Some(span) => found.push(Duplicate {
                        key,
                        first: *span,
                        again: k.span,
                    }),
                    None => {
                        first.insert(key, k.span);
                    }
                }
                find_duplicates(k, found);
                find_duplicates(v, found);
            }
        }
        Value::Null | Value::Scalar { .. } => {}
    }
}

/// Parses every `---` document of `text`.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    // A byte-order mark (some editors write one) is not content; left in,
    // it would be glued to the first key and shift the first line's columns.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        span: (*e.marker()).into(),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

/// Nesting deeper than this is refused (a parser limit too), so recursive
/// walks over the tree cannot overflow the stack.
const MAX_DEPTH: usize = 256;

/// Aliases may nest; past this many nodes an alias expansion is refused, so a
/// "billion laughs" file fails instead of eating memory.
const MAX_ALIAS_NODES: usize = 1_000_000;

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<(Node, usize, Option<Node>)>,
    anchors: HashMap<usize, (Node, usize)>,
    expanded: usize,
    error: Option<SyntaxError>,
}

fn depth(n: &Node) -> usize {
    match &n.value {
        Value::Seq(s) => 1 + s.iter().map(depth).max().unwrap_or(0),
        Value::Map(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 1,
    }
}

fn count(n: &Node) -> usize {
    match &n.value {
        Value::Seq(s) => 1 + s.iter().map(count).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let d = depth(&node);
            self.anchors.insert(anchor, (node.clone(), d));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, _, pending_key)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                _ => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let span: Span = mark.into();
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                let value = if plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar { text, plain }
                };
                self.push_value(Node { value, span }, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.error = Some(SyntaxError {
                    span,
                    message: format!("nested deeper than {MAX_DEPTH} levels"),
                });
            }
            Event::SequenceStart(anchor, _) => self.stack.push((
                Node {
                    value: Value::Seq(Vec::new()),
                    span,
                },
                anchor,
                None,
            )),
            Event::MappingStart(anchor, _) => self.stack.push((
                Node {
                    value: Value::Map(Vec::new()),
                    span,
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, _)) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some((mut node, d)) => {
                    self.expanded += count(&node);
                    if self.stack.len() + d > MAX_DEPTH {
                        self.error = Some(SyntaxError {
                            span,
                            message: format!("aliases nest deeper than {MAX_DEPTH} levels"),
                        });
                        return;
                    }
                    if self.expanded > MAX_ALIAS_NODES {
                        self.error = Some(SyntaxError {
                            span,
                            message: "aliases expand to too many nodes".into(),
                        });
                        return;
                    }
                    node.span = span;
                    self.push_value(node, 0);
                }
                None => {
                    self.error = Some(SyntaxError {
                        span,
                        message: "alias to an unknown anchor".into(),
                    })
                }
            },
            Event::DocumentEnd => {
                // An empty document contributes nothing.
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions() {
        let docs = parse("a:\n  b: [1, x]\n---\nc: 'q'\n").unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("a").unwrap().get("b").unwrap();
        assert_eq!(b.span, Span { line: 2, col: 6 });
        assert_eq!(b.to_json(), serde_json::json!([1, "x"]));
        assert_eq!(docs[1].get("c").unwrap().as_str(), Some("q"));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let docs = parse("a: 'true'\nb: true\nc: '0644'\nd: 0644\n").unwrap();
        let j = docs[0].to_json();
        assert_eq!(j["a"], serde_json::json!("true"));
        assert_eq!(j["b"], serde_json::json!(true));
        assert_eq!(j["c"], serde_json::json!("0644"));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.span.line >= 1, "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth_with_both_spans() {
        let docs = parse("a: 1\nb:\n  - {x: 1, 'x': 2}\na: 3\n---\nc: {d: 1}\n").unwrap();
        let dups = duplicate_keys(&docs);
        let at = |line, col| Span { line, col };
        assert_eq!(
            dups,
            [
                Duplicate {
                    key: "x".into(),
                    first: at(3, 6),
                    again: at(3, 12)
                },
                Duplicate {
                    key: "a".into(),
                    first: at(1, 1),
                    again: at(4, 1)
                },
            ]
        );
    }

    #[test]
    fn an_aliased_duplicate_is_reported_once() {
        let docs = parse("a: &x {k: 1, k: 2}\nb: *x\nc: *x\n").unwrap();
        assert_eq!(duplicate_keys(&docs).len(), 1);
        assert!(duplicate_keys(&parse("a: &x {k: 1}\nb: *x\n").unwrap()).is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let docs = parse("\u{feff}a: {b: 1}\n").unwrap();
        let b = docs[0].get("a").unwrap().get("b").unwrap();
        assert_eq!(b.span, Span { line: 1, col: 8 });
    }

    #[test]
    fn anchors_expand() {
        let docs = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(
            docs[0].get("b").unwrap().get("k").unwrap().as_str(),
            Some("v")
        );
    }
}
