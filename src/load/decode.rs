//! Small typed readers over [`Node`]s that report through [`Diagnostics`].

use crate::diag::{did_you_mean, Diagnostics, Loc};
use crate::load::model::Spanned;
use crate::load::yaml::{Node, Value};
use indexmap::IndexMap;
use serde_json::Value as Json;
use std::path::PathBuf;
use std::sync::Arc;

/// The file being decoded and the sink for what is found wrong in it.
pub struct Cx<'a> {
    /// The file as shown to the user.
    pub file: Arc<PathBuf>,
    /// Where problems go.
    pub diags: &'a mut Diagnostics,
}

impl Cx<'_> {
    pub fn loc(&self, node: &Node) -> Loc {
        Loc::new(&self.file, node.span)
    }

    pub fn error(&mut self, node: &Node, msg: impl Into<String>) {
        let loc = self.loc(node);
        self.diags.error(Some(loc), msg);
    }

    pub fn warn(&mut self, node: &Node, msg: impl Into<String>) {
        let loc = self.loc(node);
        self.diags.warn(Some(loc), msg);
    }
}

/// What a key of an entity means to this reader.
pub struct Keys<'k> {
    /// What kind of entry this is, for messages ("image `web`").
    pub what: &'k str,
    /// Keys ov reads.
    pub known: &'k [&'k str],
    /// Old spellings ov rejects, with the spelling that replaced them.
    pub legacy: &'k [(&'k str, &'k str)],
    /// Spellings that drifted in real files; accepted with a warning and
    /// read as the second name.
    pub drift: &'k [(&'k str, &'k str)],
}

/// Checks every key of `map`: legacy keys are errors naming the new
/// spelling, drifted ones warnings, unknown ones warnings naming the closest
/// known key. Returns the map entries with drifted keys renamed.
pub fn check_keys<'n>(
    cx: &mut Cx,
    map: &'n Node,
    keys: &Keys,
) -> Vec<(String, &'n Node, &'n Node)> {
    let Some(entries) = map.as_map() else {
        cx.error(
            map,
            format!("{} must be a map, found {}", keys.what, map.shape()),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let Some(key) = k.as_str() else {
            cx.warn(k, format!("{}: a key must be text; ignored", keys.what));
            continue;
        };
        if keys.known.contains(&key) {
            out.push((key.to_string(), k, v));
        } else if let Some((_, new)) = keys.legacy.iter().find(|(old, _)| *old == key) {
            cx.error(
                k,
                format!(
                    "{}: `{key}` is an old spelling; write {new} (ov migrate rewrites it)",
                    keys.what
                ),
            );
        } else if let Some((_, to)) = keys.drift.iter().find(|(from, _)| *from == key) {
            cx.warn(
                k,
                format!(
                    "{}: `{key}` is read as `{to}` (ov itself ignores `{key}`)",
                    keys.what
                ),
            );
            out.push((to.to_string(), k, v));
        } else {
            cx.warn(
                k,
                format!(
                    "{}: unknown key `{key}` ignored{}",
                    keys.what,
                    did_you_mean(key, keys.known.iter().copied())
                ),
            );
        }
    }
    out
}

pub fn string(cx: &mut Cx, field: &str, v: &Node) -> Option<String> {
    match &v.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        Value::Null => None,
        _ => {
            cx.error(v, format!("`{field}` must be text, found {}", v.shape()));
            None
        }
    }
}

pub fn spanned_string(cx: &mut Cx, field: &str, v: &Node) -> Option<Spanned<String>> {
    let loc = cx.loc(v);
    string(cx, field, v).map(|s| Spanned::new(s, loc))
}

pub fn boolean(cx: &mut Cx, field: &str, v: &Node) -> Option<bool> {
    match v.to_json() {
        Json::Bool(b) => Some(b),
        Json::Null => None,
        _ => {
            cx.error(v, format!("`{field}` must be true or false"));
            None
        }
    }
}

pub fn number(cx: &mut Cx, field: &str, v: &Node) -> Option<u32> {
    match v.to_json() {
        Json::Number(n) if n.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {
            n.as_u64().map(|n| n as u32)
        }
        Json::String(s) if s.parse::<u32>().is_ok() => s.parse().ok(),
        Json::Null => None,
        _ => {
            cx.error(
                v,
                format!("`{field}` must be a whole number from 0 to {}", u32::MAX),
            );
            None
        }
    }
}

/// A list of text items; a single scalar counts as a one-item list when
/// `scalar_ok` (ov's `build: rpm` shorthand).
pub fn spanned_list(cx: &mut Cx, field: &str, v: &Node, scalar_ok: bool) -> Vec<Spanned<String>> {
    match &v.value {
        Value::Null => Vec::new(),
        Value::Scalar { .. } if scalar_ok => spanned_string(cx, field, v).into_iter().collect(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| match &item.value {
                Value::Scalar { .. } => spanned_string(cx, field, item),
                _ => {
                    cx.error(
                        item,
                        format!("`{field}` items must be text, found {}", item.shape()),
                    );
                    None
                }
            })
            .collect(),
        _ => {
            cx.error(v, format!("`{field}` must be a list, found {}", v.shape()));
            Vec::new()
        }
    }
}

pub fn list(cx: &mut Cx, field: &str, v: &Node, scalar_ok: bool) -> Vec<String> {
    spanned_list(cx, field, v, scalar_ok)
        .into_iter()
        .map(|s| s.value)
        .collect()
}

/// A list of anything (checks, services), as JSON items.
pub fn json_list(cx: &mut Cx, field: &str, v: &Node) -> Vec<Json> {
    match &v.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items.iter().map(Node::to_json).collect(),
        _ => {
            cx.error(v, format!("`{field}` must be a list, found {}", v.shape()));
            Vec::new()
        }
    }
}

/// A map of text to text (env, var). Non-text values are rendered as JSON
/// text, as Go's YAML decoder does for `map[string]string`.
pub fn string_map(cx: &mut Cx, field: &str, v: &Node) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    match &v.value {
        Value::Null => {}
        Value::Map(entries) => {
            for (k, val) in entries {
                let Some(key) = k.as_str() else {
                    cx.error(k, format!("`{field}` keys must be text"));
                    continue;
                };
                let text = match val.to_json() {
                    Json::String(s) => s,
                    Json::Null => String::new(),
                    other => other.to_string(),
                };
                out.entry(key.to_string()).or_insert(text);
            }
        }
        _ => cx.error(v, format!("`{field}` must be a map, found {}", v.shape())),
    }
    out
}
