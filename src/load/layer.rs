//! Decoding `layer.yml` (ov-format §1.4).

use super::decode::{self, check_keys, Cx, Keys};
use super::literal;
use crate::load::model::{Layer, Task};
use crate::load::yaml::Node;
use serde_json::Value as Json;

const KNOWN: &[&str] = &[
    "name",
    "version",
    "description",
    "require",
    "layer",
    "package",
    "distro",
    "task",
    "var",
    "env",
    "path_append",
    "port",
    "service",
    "volume",
    "data",
    "alias",
    "route",
    "port_relay",
    "extract",
    "security",
    "libvirt",
    "hooks",
    "secret",
    "env_provide",
    "env_require",
    "env_accept",
    "secret_accept",
    "secret_require",
    "mcp_provide",
    "mcp_require",
    "mcp_accept",
    "shell",
    "artifact",
    "capabilities",
    "requires_capability",
    "engine",
    "eval",
    "from",
];

const LEGACY: &[(&str, &str)] = &[
    ("rpm", "`distro: {fedora: {package: …}}`"),
    ("deb", "`distro: {debian: {package: …}}`"),
    ("pac", "`distro: {arch: {package: …}}`"),
    ("aur", "`distro: {arch: {aur: …}}`"),
    ("depends", "`require`"),
    ("layers", "`layer`"),
    ("tests", "`eval`"),
    ("tasks", "`task`"),
    ("ports", "`port`"),
    ("volumes", "`volume`"),
    ("env_accepts", "`env_accept`"),
    ("env_provides", "`env_provide`"),
    ("env_requires", "`env_require`"),
    ("secret_accepts", "`secret_accept`"),
    ("secret_requires", "`secret_require`"),
    ("mcp_provides", "`mcp_provide`"),
    ("mcp_requires", "`mcp_require`"),
    ("mcp_accepts", "`mcp_accept`"),
    ("info", "`description` (info: was removed)"),
    ("status", "`description.tag` (status: was removed)"),
    (
        "directory",
        "the layer's own directory (directory: was removed)",
    ),
    ("packages", "`package`"),
    ("services", "`service`"),
];

/// Task verbs; each task has exactly one.
pub const VERBS: &[&str] = &[
    "cmd", "mkdir", "copy", "write", "link", "download", "setcap", "build",
];

/// The distro section names ov maps to package formats.
const DISTROS: &[&str] = &["fedora", "arch", "debian", "ubuntu", "cachyos"];

/// Decodes the body under `layer:`.
pub fn decode(cx: &mut Cx, layer: &mut Layer, node: &Node) {
    let what = format!("layer `{}`", layer.name);
    let keys = Keys {
        what: &what,
        known: KNOWN,
        legacy: LEGACY,
        drift: &[],
    };
    for (key, _, v) in check_keys(cx, node, &keys) {
        match key.as_str() {
            "require" => layer.require = decode::spanned_list(cx, &key, v, false),
            "layer" => layer.includes = decode::spanned_list(cx, &key, v, false),
            "package" => {
                literal::packages(cx, &key, v);
                layer.package = decode::list(cx, &key, v, true)
            }
            "distro" => distro(cx, layer, v),
            "task" => {
                let (steps, json) = tasks(cx, &what, v);
                layer.tasks = steps;
                layer.task_json = json.into();
            }
            "var" | "env" => {
                literal::var_map(cx, &key, v);
                let map = decode::string_map(cx, &key, v);
                if key == "var" {
                    layer.var = map
                } else {
                    layer.env = map
                }
            }
            "path_append" => {
                literal::one_line(cx, &key, v);
                layer.path_append = decode::list(cx, &key, v, true)
            }
            "port" => {
                literal::one_line(cx, &key, v);
                layer.port = port_list(cx, v)
            }
            "service" => {
                if v.as_str().is_some() {
                    cx.error(v, format!("{what}: `service` must be a list of entries; raw supervisord text is an old spelling"));
                } else {
                    literal::services(cx, v);
                    layer.service = decode::json_list(cx, &key, v);
                    for (svc, node) in layer.service.iter_mut().zip(v.as_seq().unwrap_or_default())
                    {
                        // Written by ov's lexical migrator; ov's Go tag is `auto_start`.
                        if let Some(obj) = svc.as_object_mut() {
                            if let Some(val) = obj.remove("autostart") {
                                cx.warn(
                                    node.get("autostart").unwrap_or(node),
                                    format!(
                                        "{what}: service key `autostart` is read as `auto_start`"
                                    ),
                                );
                                obj.entry("auto_start").or_insert(val);
                            }
                        }
                    }
                }
            }
            "eval" => {
                // Checks run as shell arguments, which cannot hold a NUL.
                literal::no_nul(cx, &key, v);
                layer.eval = decode::json_list(cx, &key, v)
            }
            "capabilities" => layer.capabilities = Some(v.to_json()),
            "shell" => {
                shell(cx, &what, v);
                layer.meta.insert(key, v.to_json());
            }
            "name" | "from" => {}
            _ => {
                let json = v.to_json();
                if ov_rules::containerfile::LABEL_FIELDS.contains(&key.as_str()) {
                    if let Err(e) = ov_rules::containerfile::check_label_field(&key, &json) {
                        cx.error(
                            v,
                            format!("{what}: `{key}` cannot go into ov's labels: {e}"),
                        );
                    }
                }
                layer.meta.insert(key, json);
            }
        }
    }
}

/// `shell:` as ov reads it (its `ShellConfig.UnmarshalYAML`): a generic
/// body (`init`, `path_append`, `path`, `priority`) and per-shell blocks
/// (`bash`, `zsh`, `fish`, `sh`: `init`, `path_append`, `path`); any other
/// key is an error. Paths become COPY destinations in the image.
fn shell(cx: &mut Cx, what: &str, v: &Node) {
    use ov_rules::containerfile::shell::SHELLS;
    const GENERIC: &[&str] = &["init", "path_append", "path", "priority"];
    fn block(cx: &mut Cx, what: &str, field: &str, v: &Node, known: &[&str]) {
        let Some(entries) = v.as_map() else {
            cx.error(
                v,
                format!("{what}: `{field}` must be a map, found {}", v.shape()),
            );
            return;
        };
        for (k, val) in entries {
            let Some(key) = k.as_str() else { continue };
            let name = format!("{field}.{key}");
            match key {
                "init" if val.as_str().is_none() && !val.is_null() => {
                    cx.error(val, format!("{what}: `{name}` must be text (shell code)"))
                }
                "init" => {}
                "priority" if field == "shell" => {
                    if !matches!(val.to_json(), Json::Number(_) | Json::Null) {
                        cx.error(val, format!("{what}: `{name}` must be a number"))
                    }
                }
                "path" => shell_path(cx, what, &name, val),
                "path_append" => match val.as_seq() {
                    Some(items) => items
                        .iter()
                        .for_each(|i| literal::shell_dir(cx, what, &name, i)),
                    None if val.is_null() => {}
                    None => cx.error(
                        val,
                        format!("{what}: `{name}` must be a list of directories"),
                    ),
                },
                s if field == "shell" && SHELLS.contains(&s) => {
                    block(cx, what, &name, val, &["init", "path_append", "path"])
                }
                other => cx.error(
                    k,
                    format!(
                        "{what}: `{field}` has unknown key `{other}` (expected {}){}",
                        known.join(", "),
                        crate::diag::did_you_mean(other, known.iter().copied())
                    ),
                ),
            }
        }
    }
    let known: Vec<&str> = GENERIC.iter().chain(SHELLS).copied().collect();
    block(cx, what, "shell", v, &known);
}

/// A `shell` destination: absolute, or under the home (`~/`, `$HOME/`),
/// one line, and no other `$` (ov writes it quoted, nothing expands).
fn shell_path(cx: &mut Cx, what: &str, field: &str, v: &Node) {
    let Some(p) = v.as_str() else {
        if !v.is_null() {
            cx.error(v, format!("{what}: `{field}` must be a path"));
        }
        return;
    };
    let rest = p
        .strip_prefix("~/")
        .or_else(|| p.strip_prefix("$HOME/"))
        .or_else(|| p.strip_prefix('/'));
    let bad = match rest {
        None => Some("is not absolute (nor under `~/` or `$HOME/`)"),
        Some(r) if r.contains('$') => Some("has a `$` other than a leading `$HOME`"),
        Some(r) if r.is_empty() || r.ends_with('/') => Some("names a directory, not a file"),
        Some(_) if ov_rules::containerfile::accept::has_control(p) => {
            Some("holds a line break or control character")
        }
        Some(_) => None,
    };
    if let Some(why) = bad {
        cx.error(v, format!("{what}: `{field}` {p:?} {why}"));
    }
}

fn port_list(cx: &mut Cx, v: &Node) -> Vec<String> {
    match v.to_json() {
        Json::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Json::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Json::Null => Vec::new(),
        Json::String(s) => vec![s],
        Json::Number(n) => vec![n.to_string()],
        _ => {
            cx.error(v, "`port` must be a list");
            Vec::new()
        }
    }
}

fn distro(cx: &mut Cx, layer: &mut Layer, v: &Node) {
    let Some(entries) = v.as_map() else {
        if !v.is_null() {
            cx.error(
                v,
                format!(
                    "`distro` must be a map of distro to section, found {}",
                    v.shape()
                ),
            );
        }
        return;
    };
    for (k, section) in entries {
        let Some(name) = k.as_str() else { continue };
        let versioned = name.contains('-') || name.contains(':');
        if !versioned && !DISTROS.contains(&name) {
            cx.warn(
                k,
                format!(
                    "layer `{}`: distro section `{name}` matches no known distro{}",
                    layer.name,
                    crate::diag::did_you_mean(name, DISTROS.iter().copied())
                ),
            );
        }
        if section.as_map().is_none() && !section.is_null() {
            cx.error(
                section,
                format!("`distro.{name}` must be a map (package, repo, …)"),
            );
            continue;
        }
        literal::distro_section(cx, name, section);
        layer.distro.insert(name.to_string(), section.to_json());
    }
}

/// The layer's steps, and each as the layer spec holds it.
fn tasks(cx: &mut Cx, what: &str, v: &Node) -> (Vec<Task>, Vec<ov_rules::CanonicalJson>) {
    let Some(items) = v.as_seq() else {
        if !v.is_null() {
            cx.error(
                v,
                format!("{what}: `task` must be a list, found {}", v.shape()),
            );
        }
        return (Vec::new(), Vec::new());
    };
    let mut out = Vec::new();
    let mut json = Vec::new();
    for item in items {
        let Some(entries) = item.as_map() else {
            cx.error(
                item,
                format!(
                    "{what}: a task must be a map with one verb ({})",
                    VERBS.join(", ")
                ),
            );
            continue;
        };
        let verbs: Vec<(&str, &Node)> = entries
            .iter()
            .filter_map(|(k, val)| k.as_str().filter(|k| VERBS.contains(k)).map(|k| (k, val)))
            .collect();
        match verbs.as_slice() {
            [(verb, arg)] => {
                literal::task(cx, item);
                literal::task_fields(cx, item, verb, arg);
                let arg_text = match arg.to_json() {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                json.push(ov_rules::CanonicalJson::new(&serde_json::json!({
                    "verb": verb,
                    "arg": arg_text,
                    "spec": item.to_json(),
                })));
                out.push(Task {
                    verb: verb.to_string(),
                    arg: arg_text,
                    loc: cx.loc(arg),
                });
            }
            [] => cx.error(
                item,
                format!(
                    "{what}: a task needs one verb ({}); found none",
                    VERBS.join(", ")
                ),
            ),
            many => cx.error(
                item,
                format!(
                    "{what}: a task has exactly one verb; found {}",
                    many.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
    (out, json)
}
