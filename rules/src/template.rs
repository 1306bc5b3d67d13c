//! Go `text/template` rendering for build.yml templates (install templates,
//! service templates, init templates), on the `gtmpl` crate, with ov's
//! helper functions.
//!
//! ov renders these templates with Go structs as data. Here the data is a
//! gtmpl [`Value`]: build a struct-like context with [`object`] (a missing
//! field is an error, as it is for a Go struct) and convert YAML/JSON data
//! with [`from_json`] (JSON objects become maps: a missing key is "no value",
//! as it is for a Go `map[string]any`).
//!
//! Differences from Go that matter to the templates ov ships, and how they
//! are handled:
//!
//! - gtmpl's `printf "%s"` fails on a missing map key where Go prints
//!   `%!s(<nil>)`; ov's templates only call it inside `{{if .key}}`.
//! - `range` over a map follows gtmpl's `HashMap` order, not Go's sorted
//!   order, so output would not be deterministic: pass lists (ov does:
//!   `EnvList` is a sorted list of `{Key, Value}`), never maps to range over.
//! - A Go `*bool` is true in `{{if}}` whenever it is set, even to false;
//!   represent a set `*bool` with [`opt_bool`] (a non-empty string that
//!   `derefBool` reads back) and an unset one with `Value::Nil`.

pub use gtmpl::Value;
use gtmpl::{Context, FuncError, Template};
use std::collections::HashMap;

/// Switches that change what the helpers print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Helpers {
    /// Render `sharing=locked` on cache mounts. Off for engines whose
    /// buildah hangs on a RUN with two locked cache mounts (podman 4.3.x):
    /// the mounts are then shared, which only risks a concurrent package
    /// manager run seeing a half-written cache.
    pub locked_cache_mounts: bool,
}

/// A template that failed to parse or to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    /// Which template: the build.yml key it came from
    /// (`distro.fedora.format.rpm.install_template`).
    pub template: String,
    /// gtmpl's message.
    pub message: String,
}

/// Renders `text` with `data`. An empty template renders to an empty string
/// (as in ov). `name` is the build.yml key the template came from; errors
/// carry it.
pub fn render(
    name: &str,
    text: &str,
    data: Value,
    helpers: Helpers,
) -> Result<String, TemplateError> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let err = |message: String| TemplateError {
        template: name.to_string(),
        message,
    };
    let mut tmpl = Template::with_name(name);
    tmpl.add_funcs(&funcs(helpers));
    tmpl.parse(text).map_err(|e| err(e.to_string()))?;
    tmpl.render(&Context::from(data))
        .map_err(|e| err(exec_message(e)))
}

/// gtmpl's message, except that a missing field names the fields there are
/// instead of dumping the whole data (in `HashMap` order).
fn exec_message(e: gtmpl::error::ExecError) -> String {
    match e {
        gtmpl::error::ExecError::NoFiledFor(field, Value::Object(m) | Value::Map(m)) => {
            let mut have: Vec<&String> = m.keys().collect();
            have.sort();
            let have: Vec<&str> = have.into_iter().map(String::as_str).collect();
            format!("no field `{field}` (there are: {})", have.join(", "))
        }
        other => other.to_string(),
    }
}

/// Parses `text` without rendering it, to report a broken template before
/// any node needs it.
pub fn check(name: &str, text: &str) -> Result<(), TemplateError> {
    let mut tmpl = Template::with_name(name);
    tmpl.add_funcs(&funcs(Helpers::default()));
    tmpl.parse(text).map_err(|e| TemplateError {
        template: name.to_string(),
        message: e.to_string(),
    })
}

fn funcs(helpers: Helpers) -> Vec<(&'static str, gtmpl::Func)> {
    // gtmpl functions are plain fn pointers (no captures), so the one
    // switch picks between two functions instead of being read at run time.
    let cache_mounts: gtmpl::Func = if helpers.locked_cache_mounts {
        cache_mounts_locked
    } else {
        cache_mounts_unlocked
    };
    vec![
        ("cacheMounts", cache_mounts),
        ("cacheMountsOwned", cache_mounts_owned),
        ("quote", quote),
        ("default", default),
        ("splitFirst", split_first),
        ("replace", replace),
        ("join", join),
        ("hasSuffix", has_suffix),
        ("anyRepoHasURL", any_repo_has_url),
        ("derefBool", deref_bool),
    ]
}

/// A struct-like value: reading a field it lacks is an error (as for a Go
/// struct), so a typo in a template is reported instead of printing
/// `<no value>`.
pub fn object<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Converts JSON to a gtmpl value. Objects become maps (a missing key reads
/// as "no value", which `{{if}}` treats as false, as Go does for maps).
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A list of strings.
pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(items.into_iter().map(|s| Value::from(s.as_ref())).collect())
}

/// A Go `*bool`: `None` is nil; a set value is truthy in `{{if}}` even when
/// false, and `derefBool` gives the bool back.
pub fn opt_bool(b: Option<bool>) -> Value {
    match b {
        None => Value::Nil,
        Some(true) => Value::from("true"),
        Some(false) => Value::from("false"),
    }
}

/// Go's `fmt.Sprint` of one value, as far as the templates need it.
pub fn go_sprint(v: &Value) -> String {
    match v {
        Value::NoValue | Value::Nil => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_sprint).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) | Value::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_sprint(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Function(_) => "<func>".to_string(),
    }
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `--mount=type=cache,…` flag. The id depends only on the path (and
/// the owner), so a cache survives any change to the layer using it.
pub fn cache_mount_flag(dst: &str, sharing: Option<&str>, owner: Option<(u64, u64)>) -> String {
    let id = format!("ov-{}", dst.trim_start_matches('/').replace('/', "-"));
    match owner {
        Some((uid, gid)) => {
            format!("--mount=type=cache,id={id}-uid{uid},dst={dst},uid={uid},gid={gid}")
        }
        None => match sharing {
            Some(s) => format!("--mount=type=cache,id={id},dst={dst},sharing={s}"),
            None => format!("--mount=type=cache,id={id},dst={dst}"),
        },
    }
}

/// The sharing a build.yml `cache_mount` entry asks for (default locked),
/// or none when locked mounts are off.
pub fn cache_sharing(requested: Option<&str>, helpers: Helpers) -> Option<String> {
    let s = requested.filter(|s| !s.is_empty()).unwrap_or("locked");
    (s != "locked" || helpers.locked_cache_mounts).then(|| s.to_string())
}

/// ov joins cache mounts with a line continuation so each sits on its own
/// line of the RUN.
const MOUNT_SEP: &str = " \\\n    ";

fn mount_entries(v: &Value, what: &str) -> Result<Vec<(String, Option<String>)>, FuncError> {
    let items = match v {
        Value::Array(items) => items.as_slice(),
        Value::Nil | Value::NoValue => &[],
        other => {
            return Err(FuncError::Generic(format!(
                "{what}: expected a list of cache mounts, got {}",
                go_sprint(other)
            )))
        }
    };
    items
        .iter()
        .map(|m| {
            let (Value::Map(m) | Value::Object(m)) = m else {
                return Err(FuncError::Generic(format!(
                    "{what}: a cache mount must be a map with `dst`, got {}",
                    go_sprint(m)
                )));
            };
            let get = |k: &str, k2: &str| match m.get(k).or_else(|| m.get(k2)) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let dst = get("dst", "Dst")
                .ok_or_else(|| FuncError::Generic(format!("{what}: a cache mount has no `dst`")))?;
            Ok((dst, get("sharing", "Sharing")))
        })
        .collect()
}

fn cache_mounts_with(args: &[Value], helpers: Helpers) -> Result<Value, FuncError> {
    let [m] = args else {
        return Err(FuncError::ExactlyXArgs("cacheMounts".into(), 1));
    };
    let parts: Vec<String> = mount_entries(m, "cacheMounts")?
        .into_iter()
        .map(|(dst, sharing)| {
            cache_mount_flag(
                &dst,
                cache_sharing(sharing.as_deref(), helpers).as_deref(),
                None,
            )
        })
        .collect();
    Ok(Value::from(parts.join(MOUNT_SEP)))
}

fn cache_mounts_locked(args: &[Value]) -> Result<Value, FuncError> {
    cache_mounts_with(
        args,
        Helpers {
            locked_cache_mounts: true,
        },
    )
}

fn cache_mounts_unlocked(args: &[Value]) -> Result<Value, FuncError> {
    cache_mounts_with(
        args,
        Helpers {
            locked_cache_mounts: false,
        },
    )
}

fn as_u64(v: &Value, what: &str) -> Result<u64, FuncError> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| FuncError::Generic(format!("{what}: expected a number, got {}", go_sprint(v))))
}

/// `cacheMountsOwned MOUNTS UID GID`: mounts owned by the build user, with
/// a trailing separator because templates put the command right after.
fn cache_mounts_owned(args: &[Value]) -> Result<Value, FuncError> {
    let [m, uid, gid] = args else {
        return Err(FuncError::ExactlyXArgs("cacheMountsOwned".into(), 3));
    };
    let (uid, gid) = (
        as_u64(uid, "cacheMountsOwned")?,
        as_u64(gid, "cacheMountsOwned")?,
    );
    let entries = mount_entries(m, "cacheMountsOwned")?;
    if entries.is_empty() {
        return Ok(Value::from(""));
    }
    let mut out: Vec<String> = entries
        .into_iter()
        .map(|(dst, _)| cache_mount_flag(&dst, None, Some((uid, gid))))
        .collect();
    out.push(String::new());
    Ok(Value::from(out.join(MOUNT_SEP)))
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("quote".into(), 1));
    };
    Ok(Value::from(go_quote(&go_sprint(v))))
}

/// `default VALUE FALLBACK` (value first, unlike sprig): the fallback when
/// the value prints empty or nil.
fn default(args: &[Value]) -> Result<Value, FuncError> {
    let [v, fallback] = args else {
        return Err(FuncError::ExactlyXArgs("default".into(), 2));
    };
    let s = go_sprint(v);
    Ok(if s.is_empty() || s == "<nil>" {
        fallback.clone()
    } else {
        v.clone()
    })
}

fn string_arg<'a>(f: &str, v: &'a Value) -> Result<&'a str, FuncError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(FuncError::Generic(format!(
            "{f}: expected a string, got {}",
            go_sprint(other)
        ))),
    }
}

fn split_first(args: &[Value]) -> Result<Value, FuncError> {
    let [s, sep] = args else {
        return Err(FuncError::ExactlyXArgs("splitFirst".into(), 2));
    };
    let (s, sep) = (string_arg("splitFirst", s)?, string_arg("splitFirst", sep)?);
    // Go's SplitN with an empty separator splits after the first UTF-8
    // character.
    let first = if sep.is_empty() {
        s.chars().next().map(String::from).unwrap_or_default()
    } else {
        s.split(sep).next().unwrap_or_default().to_string()
    };
    Ok(Value::from(first))
}

fn replace(args: &[Value]) -> Result<Value, FuncError> {
    let [s, old, new] = args else {
        return Err(FuncError::ExactlyXArgs("replace".into(), 3));
    };
    let (s, old, new) = (
        string_arg("replace", s)?,
        string_arg("replace", old)?,
        string_arg("replace", new)?,
    );
    Ok(Value::from(s.replace(old, new)))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [elems, sep] = args else {
        return Err(FuncError::ExactlyXArgs("join".into(), 2));
    };
    let sep = string_arg("join", sep)?;
    Ok(Value::from(match elems {
        Value::Array(items) => items.iter().map(go_sprint).collect::<Vec<_>>().join(sep),
        other => go_sprint(other),
    }))
}

fn has_suffix(args: &[Value]) -> Result<Value, FuncError> {
    let [s, suffix] = args else {
        return Err(FuncError::ExactlyXArgs("hasSuffix".into(), 2));
    };
    Ok(Value::from(
        string_arg("hasSuffix", s)?.ends_with(string_arg("hasSuffix", suffix)?),
    ))
}

fn any_repo_has_url(args: &[Value]) -> Result<Value, FuncError> {
    let [repos] = args else {
        return Err(FuncError::ExactlyXArgs("anyRepoHasURL".into(), 1));
    };
    let found = match repos {
        Value::Array(items) => items.iter().any(|r| match r {
            Value::Map(m) | Value::Object(m) => m
                .get("url")
                .is_some_and(|u| !matches!(u, Value::NoValue) && !go_sprint(u).is_empty()),
            _ => false,
        }),
        Value::Nil | Value::NoValue => false,
        other => {
            return Err(FuncError::Generic(format!(
                "anyRepoHasURL: expected a list of repos, got {}",
                go_sprint(other)
            )))
        }
    };
    Ok(Value::from(found))
}

fn deref_bool(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("derefBool".into(), 1));
    };
    Ok(Value::from(match v {
        Value::Nil | Value::NoValue => false,
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        other => {
            return Err(FuncError::Generic(format!(
                "derefBool: expected a bool, got {}",
                go_sprint(other)
            )))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOCKED: Helpers = Helpers {
        locked_cache_mounts: true,
    };

    fn r(text: &str, data: Value) -> String {
        render("test", text, data, LOCKED).unwrap()
    }

    #[test]
    fn go_syntax_the_fixtures_use() {
        let data = object([
            ("Kind", Value::from("")),
            ("L", strings(["a", "b"])),
            ("E", strings(Vec::<&str>::new())),
        ]);
        assert_eq!(
            r(
                "{{- if eq .Kind \"x\" -}}\n[x]\n{{- else -}}\n[y]\n{{- end}}\nz",
                data.clone()
            ),
            "[y]\nz"
        );
        assert_eq!(
            r(
                "{{range $i, $v := .L}}{{if $i}},{{end}}{{$v}}{{end}}",
                data.clone()
            ),
            "a,b"
        );
        assert_eq!(
            r(
                "{{if or .E .L}}y{{end}}{{if and .L .Kind}}n{{end}}",
                data.clone()
            ),
            "y"
        );
        assert_eq!(r("{{if .E}}e{{else if .L}}l{{end}}", data.clone()), "l");
        assert_eq!(r("{{if not (eq .Kind \"e\")}}y{{end}}", data), "y");
    }

    #[test]
    fn map_keys_are_optional_struct_fields_are_not() {
        let data = object([("Repos", from_json(&json!([{"name": "x"}])))]);
        assert_eq!(
            r(
                "{{range .Repos}}{{if .url}}u{{else}}{{.name}}{{end}}{{end}}",
                data.clone()
            ),
            "x"
        );
        let e = render("distro.x.install_template", "{{.Nope}}", data, LOCKED).unwrap_err();
        assert_eq!(e.template, "distro.x.install_template");
        assert_eq!(e.message, "no field `Nope` (there are: Repos)");
    }

    #[test]
    fn helpers() {
        let data = object([
            (
                "Repos",
                from_json(&json!([{"name": "a"}, {"name": "b", "url": "https://x/b.repo"}])),
            ),
            ("M", from_json(&json!("nodejs:20"))),
            ("Pk", strings(["a", "b"])),
        ]);
        assert_eq!(r("{{anyRepoHasURL .Repos}}", data.clone()), "true");
        assert_eq!(r("{{splitFirst .M \":\"}}", data.clone()), "nodejs");
        assert_eq!(
            r("{{replace \"a/b/c\" \"/\" \":\"}}", data.clone()),
            "a:b:c"
        );
        assert_eq!(r("{{join .Pk \",\"}}", data.clone()), "a,b");
        assert_eq!(
            r("{{quote \"a \\\"b\\\"\"}}", data.clone()),
            "\"a \\\"b\\\"\""
        );
        assert_eq!(
            r(
                "{{range .Repos}}{{default .siglevel \"Optional\"}} {{end}}",
                data.clone()
            ),
            "Optional Optional "
        );
        assert_eq!(
            r(
                "{{range .Repos}}{{if .url}}{{hasSuffix .url \".repo\"}}{{end}}{{end}}",
                data
            ),
            "true"
        );
        let b = object([("Set", opt_bool(Some(false))), ("Unset", opt_bool(None))]);
        assert_eq!(
            r(
                "{{if .Set}}{{derefBool .Set}}{{end}}/{{if .Unset}}set{{else}}unset{{end}}",
                b
            ),
            "false/unset"
        );
    }

    #[test]
    fn cache_mounts() {
        let data = object([(
            "CacheMounts",
            from_json(
                &json!([{"dst": "/var/cache/apt", "sharing": "locked"}, {"dst": "/var/lib/apt"}]),
            ),
        )]);
        assert_eq!(
            r("{{cacheMounts .CacheMounts}}", data.clone()),
            "--mount=type=cache,id=ov-var-cache-apt,dst=/var/cache/apt,sharing=locked \\\n    \
             --mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt,sharing=locked"
        );
        let unlocked = render(
            "t",
            "{{cacheMounts .CacheMounts}}",
            data.clone(),
            Helpers::default(),
        )
        .unwrap();
        assert!(!unlocked.contains("sharing"), "{unlocked}");
        assert_eq!(
            r("{{cacheMountsOwned .CacheMounts 1000 1000}}x", data),
            "--mount=type=cache,id=ov-var-cache-apt-uid1000,dst=/var/cache/apt,uid=1000,gid=1000 \\\n    \
             --mount=type=cache,id=ov-var-lib-apt-uid1000,dst=/var/lib/apt,uid=1000,gid=1000 \\\n    x"
        );
    }

    #[test]
    fn errors_name_the_template() {
        let e = render(
            "init.x.service_template",
            "{{if}}",
            object(Vec::<(&str, Value)>::new()),
            LOCKED,
        )
        .unwrap_err();
        assert_eq!(e.template, "init.x.service_template");
        assert!(e
            .to_string()
            .starts_with("template `init.x.service_template`: "));
        let e = render("t", "{{splitFirst 1 \":\"}}", Value::Nil, LOCKED).unwrap_err();
        assert!(e.message.contains("splitFirst"), "{e}");
    }
}
