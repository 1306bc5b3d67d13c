//! Project strings that reach a Containerfile or a shell, checked where
//! they are written so a bad one is an error at its file:line:col before
//! anything is planned. The predicates are the renderer's own
//! ([`ov_rules::containerfile::accept`]): what passes here renders.
//!
//! Only `cmd:` scripts, `write:` contents and comments may span lines; a
//! NUL fits nowhere but a `write:` content (a staged file).

use super::decode::Cx;
use crate::load::yaml::{Node, Value};
use ov_rules::containerfile::accept::{
    has_control, is_home_path, is_package_name, is_template_value, is_user_name, is_user_spec,
    is_var_name,
};

/// The text of a scalar node (other shapes are checked by their readers).
fn text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

/// `{s:?}`-style quoting: shows line breaks as `\n` so the message stays
/// one line and shows what is wrong.
fn shown(s: &str) -> String {
    format!("{s:?}")
}

/// Every scalar (and map key) under `node` is one line.
pub fn one_line(cx: &mut Cx, field: &str, node: &Node) {
    match &node.value {
        Value::Scalar { text, .. } => {
            if has_control(text) {
                cx.error(
                    node,
                    format!(
                        "`{field}` value {} holds a line break or control character, which a \
                         Containerfile line cannot hold",
                        shown(text)
                    ),
                );
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| one_line(cx, field, i)),
        Value::Map(entries) => {
            for (k, v) in entries {
                one_line(cx, field, k);
                one_line(cx, field, v);
            }
        }
        Value::Null => {}
    }
}

/// A directory that ov writes into a shell line (`export PATH="$PATH:<dir>"`
/// in a profile file): nothing the shell would interpret inside double
/// quotes, except a leading `$HOME` (or `~`), which is expanded before.
pub fn shell_dir(cx: &mut Cx, what: &str, field: &str, node: &Node) {
    let Some(text) = node.as_str() else { return };
    let rest = text
        .strip_prefix("$HOME")
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or(text);
    if has_control(text) || rest.contains(['"', '`', '\\', '$']) {
        cx.error(
            node,
            format!(
                "{what}: `{field}` entry {} cannot go into a shell line (no `\"`, `` ` ``, `\\` \
                 or `$` but a leading `$HOME`)",
                shown(text)
            ),
        );
    }
}

/// No NUL anywhere under `node` (multi-line text is fine).
pub fn no_nul(cx: &mut Cx, field: &str, node: &Node) {
    match &node.value {
        Value::Scalar { text, .. } if text.contains('\0') => {
            cx.error(node, format!("`{field}` holds a NUL character"));
        }
        Value::Seq(items) => items.iter().for_each(|i| no_nul(cx, field, i)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| no_nul(cx, field, v)),
        _ => {}
    }
}

/// `env:`/`var:` maps: keys are variable names, values one line.
pub fn var_map(cx: &mut Cx, field: &str, node: &Node) {
    for (k, v) in node.as_map().unwrap_or_default() {
        if let Some(key) = text(k) {
            if !is_var_name(key) {
                cx.error(
                    k,
                    format!(
                        "`{field}` key {} is not a variable name (letters, digits and `_`, \
                         not starting with a digit)",
                        shown(key)
                    ),
                );
            }
        }
        one_line(cx, &format!("{field}.{}", text(k).unwrap_or("?")), v);
    }
}

/// A package list (or single package): each entry one plain shell word.
pub fn packages(cx: &mut Cx, field: &str, node: &Node) {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Scalar { .. } => vec![node],
        _ => Vec::new(),
    };
    for item in items {
        if let Some(p) = text(item) {
            if !is_package_name(p) {
                cx.error(
                    item,
                    format!(
                        "`{field}` entry {} is not a package name (letters, digits and \
                         . _ + - : ~ @ / = , * only)",
                        shown(p)
                    ),
                );
            }
        }
    }
}

/// Every scalar under `node` can sit in an install template's shell
/// ([`is_template_value`]).
fn template_values(cx: &mut Cx, field: &str, node: &Node) {
    match &node.value {
        Value::Scalar { text, .. } if !is_template_value(text) => cx.error(
            node,
            format!(
                "`{field}` value {} holds a quote, backslash, line break, `$(`, `;`, `&`, `|`, \
                 `<`, `>` or parenthesis, which would break out of the install command",
                shown(text)
            ),
        ),
        Value::Seq(items) => items.iter().for_each(|i| template_values(cx, field, i)),
        Value::Map(entries) => {
            for (k, v) in entries {
                one_line(cx, field, k);
                template_values(cx, field, v);
            }
        }
        _ => {}
    }
}

/// A `distro:` section: its packages as [`packages`], the rest values an
/// install template can hold.
pub fn distro_section(cx: &mut Cx, name: &str, section: &Node) {
    for (k, v) in section.as_map().unwrap_or_default() {
        let key = text(k).unwrap_or("?");
        let field = format!("distro.{name}.{key}");
        if key == "package" {
            packages(cx, &field, v);
        } else {
            template_values(cx, &field, v);
        }
    }
}

/// `service:` entries: one line each; `use_packaged` is a unit name an
/// enable template puts on its command line.
pub fn services(cx: &mut Cx, node: &Node) {
    one_line(cx, "service", node);
    for entry in node.as_seq().unwrap_or_default() {
        if let Some(unit) = entry.get("use_packaged") {
            if unit.as_str().is_some_and(|u| !u.is_empty()) {
                packages(cx, "use_packaged", unit);
            }
        }
    }
}

/// One `task:` entry.
pub fn task(cx: &mut Cx, item: &Node) {
    for (k, v) in item.as_map().unwrap_or_default() {
        let key = text(k).unwrap_or("?");
        match key {
            "content" => {}
            "cmd" | "comment" => no_nul(cx, key, v),
            "env" => var_map(cx, "env", v),
            "user" => {
                one_line(cx, key, v);
                if let Some(u) = text(v).map(str::trim) {
                    if !u.is_empty() && !has_control(u) && !is_user_spec(u) {
                        cx.error(
                            v,
                            format!(
                                "`user` {} is not a user (a name or id, optionally `:group`)",
                                shown(u)
                            ),
                        );
                    }
                }
            }
            _ => one_line(cx, key, v),
        }
    }
}

/// What the renderer needs of a task with verb `verb` and argument `arg`,
/// checked here so a missing or malformed field is an error at its
/// position instead of a build that fails after other nodes ran.
pub fn task_fields(cx: &mut Cx, item: &Node, verb: &str, arg: &Node) {
    let empty = |n: &Node| match &n.value {
        Value::Scalar { text, .. } => text.trim().is_empty(),
        _ => false,
    };
    if empty(arg) {
        cx.error(arg, format!("`{verb}` is empty"));
    }
    let needs = |cx: &mut Cx, field: &str, why: &str| {
        if item.get(field).is_none_or(empty) {
            cx.error(arg, format!("`{verb}` needs `{field}` ({why})"));
        }
    };
    match verb {
        "copy" => needs(cx, "to", "where to put it"),
        "link" => needs(cx, "target", "what the link points at"),
        _ => {}
    }
    if let Some(mode) = item.get("mode") {
        let m = text(mode).unwrap_or("").trim();
        if !((3..=4).contains(&m.len()) && m.chars().all(|c| ('0'..='7').contains(&c))) {
            cx.error(
                mode,
                format!(
                    "`mode` must be octal like \"0644\", found `{}`",
                    m.escape_debug()
                ),
            );
        }
    }
}

/// An image entry's name: it names the image in the engine and in
/// Containerfile comments, so it follows the OCI name grammar.
pub fn image_name(cx: &mut Cx, node: &Node, name: &str) {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !ok {
        cx.error(
            node,
            format!(
                "image name {} is not an OCI name (lowercase letters, digits, `.`, `_`, `-`, \
                 starting with a letter or digit)",
                shown(name)
            ),
        );
    }
}

/// An image's `tag`, `registry` and `user`: single words.
pub fn image_field(cx: &mut Cx, field: &str, node: &Node) {
    one_line(cx, field, node);
    let Some(s) = text(node) else { return };
    if has_control(s) {
        return;
    }
    let ok = match field {
        "tag" => {
            s.len() <= 128
                && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        }
        // The preamble's `useradd` and `groupadd` take it as a word.
        "user" => is_user_name(s),
        _ => !s.is_empty() && !s.contains(char::is_whitespace),
    };
    if !ok {
        cx.error(
            node,
            format!("`{field}` {} is not a valid {field}", shown(s)),
        );
    }
}

/// build.yml `distro.<d>.base_user`: the account the base image ships,
/// which the renderer puts into a `WORKDIR`, ENV values and a shell check.
pub fn base_user(cx: &mut Cx, distro: &str, node: &Node) {
    let what = format!("distro.{distro}.base_user");
    if node.as_map().is_none() {
        cx.error(
            node,
            format!("`{what}` must be a map of name, uid, gid and home"),
        );
        return;
    }
    for field in ["name", "uid", "gid", "home"] {
        let Some(v) = node.get(field) else {
            cx.error(node, format!("`{what}` needs `{field}`"));
            continue;
        };
        let s = text(v).unwrap_or("");
        let ok = match field {
            "name" => is_user_name(s),
            "home" => is_home_path(s),
            _ => s.parse::<u32>().is_ok(),
        };
        if !ok {
            let want = match field {
                "name" => "a login name (letters, digits, `.`, `_`, `-`)",
                "home" => "an absolute path (letters, digits, `.`, `_`, `-`, `/`)",
                _ => "a number",
            };
            cx.error(v, format!("`{what}.{field}` {} is not {want}", shown(s)));
        }
    }
}
