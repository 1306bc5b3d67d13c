//! Why the next build would run a node, in the manner of Ninja's
//! `-d explain`: `layer web@web: layers/web/nginx.conf changed (a1b2… → c3d4…)`.
//! `ov explain` prints it; `ov graph` puts it on each node.

use crate::plan::predict::Predicted;
use ov_rules::Manifest;
use petgraph::graph::NodeIndex;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// One difference between the last recorded manifest and the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An ingredient whose digest moved.
    Changed {
        /// Ingredient name (`file layers/web/nginx.conf`, `dep image:x`).
        name: String,
        /// Digest then.
        old: String,
        /// Digest now.
        new: String,
    },
    /// An ingredient that is new.
    Added {
        /// Its name.
        name: String,
    },
    /// An ingredient that is gone.
    Removed {
        /// Its name.
        name: String,
    },
    /// A field of the resolved spec that changed (the spec is one
    /// ingredient; this says which part of it).
    Spec {
        /// Dotted path into the spec.
        path: String,
    },
}

fn short(d: &str) -> &str {
    d.get(..8).unwrap_or(d)
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = |name: &str| -> String {
            match name.split_once(' ') {
                Some(("file", p)) | Some(("source", p)) => p.to_string(),
                Some(("dep", id)) => format!("dependency {id}"),
                _ => name.to_string(),
            }
        };
        match self {
            Change::Changed { name, old, new } => write!(
                f,
                "{} changed ({}… → {}…)",
                what(name),
                short(old),
                short(new)
            ),
            Change::Added { name } => write!(f, "{} is new", what(name)),
            Change::Removed { name } => write!(f, "{} was removed", what(name)),
            Change::Spec { path } => write!(f, "spec field `{path}` changed"),
        }
    }
}

/// Differences between `old` (as recorded) and `new`, files first, the
/// whole-tree and spec digests only when nothing finer explains them.
pub fn diff(
    old: &[(String, String)],
    new: &Manifest,
    old_spec: Option<&Json>,
    new_spec: &Json,
) -> Vec<Change> {
    let old: BTreeMap<&str, &str> = old.iter().map(|(n, d)| (n.as_str(), d.as_str())).collect();
    let new_map: BTreeMap<&str, &str> = new
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.digest.as_str()))
        .collect();
    let mut out = Vec::new();
    for (name, d) in &new_map {
        match old.get(name) {
            None => out.push(Change::Added {
                name: name.to_string(),
            }),
            Some(o) if o != d => {
                if *name == "spec" {
                    if let Some(os) = old_spec {
                        let mut paths = Vec::new();
                        spec_paths(os, new_spec, String::new(), &mut paths, 0);
                        if !paths.is_empty() {
                            out.extend(paths.into_iter().map(|path| Change::Spec { path }));
                            continue;
                        }
                    }
                }
                out.push(Change::Changed {
                    name: name.to_string(),
                    old: o.to_string(),
                    new: d.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    for name in old.keys() {
        if !new_map.contains_key(name) {
            out.push(Change::Removed {
                name: name.to_string(),
            });
        }
    }
    // A changed file already explains its tree's digest.
    let files_changed = out.iter().any(|c| match c {
        Change::Changed { name, .. } | Change::Added { name } | Change::Removed { name } => {
            name.starts_with("file ")
        }
        Change::Spec { .. } => false,
    });
    if files_changed {
        out.retain(|c| {
            !matches!(c, Change::Changed { name, .. }
                if name.starts_with("source ") || name.starts_with("dep source:"))
        });
    }
    out
}

/// Paths (two levels deep) where `a` and `b` differ.
fn spec_paths(a: &Json, b: &Json, prefix: String, out: &mut Vec<String>, depth: usize) {
    if a == b {
        return;
    }
    match (a, b) {
        (Json::Object(x), Json::Object(y)) if depth < 2 => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                spec_paths(
                    x.get(k).unwrap_or(&Json::Null),
                    y.get(k).unwrap_or(&Json::Null),
                    p,
                    out,
                    depth + 1,
                );
            }
        }
        _ => out.push(if prefix.is_empty() {
            "(whole spec)".into()
        } else {
            prefix
        }),
    }
}

/// What the next build does with a node, and why.
pub struct Verdict {
    /// True when the node will run.
    pub runs: bool,
    /// The lines `ov explain` prints after the ingredients, each starting
    /// with the node's kind and label.
    pub lines: Vec<String>,
    /// The first reason it will run, without the label (`None`: cached).
    pub why: Option<String>,
}

/// The verdict on `ix` from the keys predicted against the store, given
/// its last recorded run (`ws.last(ix)`) and its key's listing
/// (`ws.keys.manifest`), which every caller shows as well.
pub fn verdict(
    ws: &Predicted,
    ix: NodeIndex,
    last: Option<(ov_cache::NodeKey, ov_cache::ActionResult)>,
    manifest: &ov_rules::Manifest,
) -> Verdict {
    let n = &ws.plan.graph[ix];
    let label = format!("{} {}", n.kind(), n.label);
    let mut reasons: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    if ws.cached.contains(&ix) {
        lines.push(format!("{label}: cached (this key was built before)"));
        return Verdict {
            runs: false,
            lines,
            why: None,
        };
    }
    match last {
        None => {
            reasons.push("never built with this cache".into());
            lines.push(format!("{label}: will run (never built with this cache)"));
        }
        Some((old_key, old)) => {
            let spec = n
                .spec
                .get()
                .map(ov_rules::NodeSpec::to_json)
                .unwrap_or_default();
            let changes = diff(&old.manifest, manifest, old.meta.get("spec"), &spec);
            lines.push(format!(
                "{label}: will run (last run had key {})",
                ov_cache::Digest::short(&old_key, 12)
            ));
            if changes.is_empty() {
                reasons.push(
                    "nothing it names changed, but its result is no longer in the cache".into(),
                );
            }
            reasons.extend(changes.iter().map(ToString::to_string));
        }
    }
    // One line per change, as `ninja -d explain` does.
    lines.extend(reasons.iter().map(|r| format!("{label}: {r}")));
    Verdict {
        runs: true,
        lines,
        why: reasons.into_iter().next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ov_rules::Ingredient;
    use serde_json::json;

    fn m(entries: &[(&str, &str)]) -> Manifest {
        Manifest {
            entries: entries
                .iter()
                .map(|(n, d)| Ingredient {
                    name: n.to_string(),
                    digest: d.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_changed_file_is_named_with_both_digests() {
        let old = vec![
            ("source layers/web".to_string(), "aaaa1111".to_string()),
            (
                "file layers/web/nginx.conf".to_string(),
                "a1b2c3d4e5".to_string(),
            ),
        ];
        let new = m(&[
            ("source layers/web", "bbbb2222"),
            ("file layers/web/nginx.conf", "c3d4e5f6a7"),
        ]);
        let d = diff(&old, &new, None, &json!({}));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].to_string(),
            "layers/web/nginx.conf changed (a1b2c3d4… → c3d4e5f6…)"
        );
    }

    #[test]
    fn spec_changes_name_the_field() {
        let old = vec![("spec".to_string(), "11".to_string())];
        let new = m(&[("spec", "22"), ("dep image:x", "33")]);
        let d = diff(
            &old,
            &new,
            Some(&json!({"env": {"A": "1"}, "tasks": []})),
            &json!({"env": {"A": "2"}, "tasks": []}),
        );
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec!["dependency image:x is new", "spec field `env.A` changed"]
        );
    }
}
