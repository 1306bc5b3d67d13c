//! The typed parts of a VM entry that its seed and cloud image are made
//! from: `cloud_init:`, `ssh.key_source` and `source.checksum`. Each value
//! is checked where it is written, so a bad one is an error naming
//! vm.yml:line:col and the field, before anything builds.

use super::decode::{self, check_keys, Cx, Keys};
use super::yaml::{Node, Value};
use crate::diag::did_you_mean;
use ov_rules::rule::cloud_image::Checksum;
use ov_rules::vm::cloud_init::{
    CloudInit, Mirrors, Network, OvInstall, User, WriteFile, ENCODINGS, OV_INSTALL_STRATEGIES,
};
use ov_rules::vm::ssh_key::{KeySource, KEYWORDS};

const CLOUD_INIT_KEYS: &[&str] = &[
    "hostname",
    "timezone",
    "locale",
    "users",
    "package",
    "runcmd",
    "bootcmd",
    "write_files",
    "network",
    "mirrors",
    "ov_install",
    "extra",
];

/// Text that goes into the seed's YAML and so into the guest: control
/// characters other than newline and tab are refused (cloud-init's YAML
/// reader rejects most of them, and none belongs in a command or name).
fn text(cx: &mut Cx, field: &str, v: &Node, multiline: bool) -> Option<String> {
    let s = decode::string(cx, field, v)?;
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        cx.error(
            v,
            format!("`{field}` holds the control character {c:?}, which cloud-init cannot read"),
        );
        return None;
    }
    Some(s)
}

fn opt_text(cx: &mut Cx, field: &str, v: Option<&Node>) -> Option<String> {
    v.and_then(|v| text(cx, field, v, false))
        .filter(|s| !s.is_empty())
}

fn texts(cx: &mut Cx, field: &str, v: &Node, multiline: bool) -> Vec<String> {
    match &v.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Scalar { .. } => text(cx, field, i, multiline),
                _ => {
                    cx.error(
                        i,
                        format!("`{field}` items must be text, found {}", i.shape()),
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

/// Names the one of `allowed` a bad value was likely meant to be.
fn one_of(cx: &mut Cx, field: &str, v: &Node, allowed: &[&str]) -> Option<String> {
    let s = text(cx, field, v, false)?;
    if allowed.contains(&s.as_str()) {
        return Some(s);
    }
    cx.error(
        v,
        format!(
            "`{field}`: `{s}` is not one of {}{}",
            allowed.join(", "),
            did_you_mean(&s, allowed.iter().copied())
        ),
    );
    None
}

fn hostname_ok(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn user(cx: &mut Cx, what: &str, v: &Node) -> Option<User> {
    let keys = Keys {
        what,
        known: &["name", "sudo", "groups", "shell", "lock_passwd"],
        legacy: &[],
        drift: &[],
    };
    let mut u = User::default();
    for (key, _, val) in check_keys(cx, v, &keys) {
        match key.as_str() {
            "name" => u.name = text(cx, "cloud_init.users.name", val, false).unwrap_or_default(),
            "sudo" => u.sudo = decode::boolean(cx, "cloud_init.users.sudo", val).unwrap_or(false),
            "groups" => u.groups = texts(cx, "cloud_init.users.groups", val, false),
            "shell" => u.shell = text(cx, "cloud_init.users.shell", val, false),
            _ => u.lock_passwd = decode::boolean(cx, "cloud_init.users.lock_passwd", val),
        }
    }
    if u.name.is_empty() {
        cx.error(
            v,
            format!("{what}: `cloud_init.users` entries need a `name`"),
        );
        return None;
    }
    Some(u)
}

fn write_file(cx: &mut Cx, what: &str, v: &Node) -> Option<WriteFile> {
    let keys = Keys {
        what,
        known: &["path", "content", "owner", "perms", "encoding"],
        legacy: &[],
        drift: &[],
    };
    let mut f = WriteFile::default();
    for (key, _, val) in check_keys(cx, v, &keys) {
        match key.as_str() {
            "path" => f.path = text(cx, "cloud_init.write_files.path", val, false)?,
            "content" => f.content = text(cx, "cloud_init.write_files.content", val, true)?,
            "owner" => f.owner = text(cx, "cloud_init.write_files.owner", val, false),
            "perms" => {
                let p = text(cx, "cloud_init.write_files.perms", val, false)?;
                if !(p.len() <= 5 && p.chars().all(|c| ('0'..='7').contains(&c)) && !p.is_empty()) {
                    cx.error(
                        val,
                        format!(
                            "`cloud_init.write_files.perms`: `{p}` is not an octal mode like 0644"
                        ),
                    );
                }
                f.perms = Some(p);
            }
            _ => f.encoding = one_of(cx, "cloud_init.write_files.encoding", val, ENCODINGS),
        }
    }
    if !f.path.starts_with('/') {
        cx.error(
            v,
            format!("{what}: `cloud_init.write_files` entries need an absolute `path`"),
        );
        return None;
    }
    Some(f)
}

fn network(cx: &mut Cx, v: &Node) -> Option<Network> {
    let keys = Keys {
        what: "cloud_init.network",
        known: &["version", "ethernets"],
        legacy: &[],
        drift: &[],
    };
    let mut n = Network::default();
    for (key, _, val) in check_keys(cx, v, &keys) {
        if key == "version" {
            n.version = decode::number(cx, "cloud_init.network.version", val);
            continue;
        }
        for (name, cfg) in val.as_map().unwrap_or_default() {
            let Some(name_s) = text(cx, "cloud_init.network.ethernets", name, false) else {
                continue;
            };
            if cfg.as_map().is_none() {
                cx.error(
                    cfg,
                    format!(
                        "`cloud_init.network.ethernets.{name_s}` must be a map, found {}",
                        cfg.shape()
                    ),
                );
                continue;
            }
            n.ethernets.insert(name_s, cfg.to_json());
        }
        if val.as_map().is_none() && !val.is_null() {
            cx.error(
                val,
                format!(
                    "`cloud_init.network.ethernets` must be a map, found {}",
                    val.shape()
                ),
            );
        }
    }
    Some(n)
}

fn ov_install(cx: &mut Cx, v: &Node) -> OvInstall {
    let keys = Keys {
        what: "cloud_init.ov_install",
        known: &["strategy", "url", "checksum"],
        legacy: &[],
        drift: &[],
    };
    let mut o = OvInstall::default();
    for (key, _, val) in check_keys(cx, v, &keys) {
        match key.as_str() {
            "strategy" => {
                o.strategy = one_of(
                    cx,
                    "cloud_init.ov_install.strategy",
                    val,
                    OV_INSTALL_STRATEGIES,
                )
            }
            "url" => o.url = text(cx, "cloud_init.ov_install.url", val, false),
            _ => {
                o.checksum = text(cx, "cloud_init.ov_install.checksum", val, false);
                if let Some(c) = &o.checksum {
                    if !c.is_empty()
                        && sha256_hex(c.strip_prefix("sha256:").unwrap_or("")).is_none()
                    {
                        cx.error(
                            val,
                            format!("`cloud_init.ov_install.checksum`: `{c}` is not sha256:<64 hex digits>"),
                        );
                    }
                }
            }
        }
    }
    if o.strategy.as_deref() == Some("url") && o.url.is_none() {
        cx.error(v, "`cloud_init.ov_install`: strategy `url` needs a `url`");
    }
    o
}

/// `cloud_init:` of vm `what`.
pub fn cloud_init(cx: &mut Cx, what: &str, v: &Node) -> CloudInit {
    let keys = Keys {
        what: &format!("{what} cloud_init"),
        known: CLOUD_INIT_KEYS,
        legacy: &[],
        drift: &[("user", "users")],
    };
    let mut ci = CloudInit::default();
    for (key, _, val) in check_keys(cx, v, &keys) {
        let field = format!("cloud_init.{key}");
        match key.as_str() {
            "hostname" => {
                ci.hostname = opt_text(cx, &field, Some(val));
                if let Some(h) = ci.hostname.as_deref().filter(|h| !hostname_ok(h)) {
                    cx.error(val, format!("`{field}`: `{h}` is not a host name (letters, digits, `-`, dot-separated)"));
                }
            }
            "timezone" => ci.timezone = opt_text(cx, &field, Some(val)),
            "locale" => ci.locale = opt_text(cx, &field, Some(val)),
            "users" => match &val.value {
                Value::Seq(items) => {
                    ci.users = items
                        .iter()
                        .filter_map(|i| user(cx, &format!("{what} {field}"), i))
                        .collect()
                }
                Value::Null => {}
                _ => cx.error(
                    val,
                    format!("`{field}` must be a list, found {}", val.shape()),
                ),
            },
            "package" => ci.package = texts(cx, &field, val, false),
            "runcmd" => ci.runcmd = texts(cx, &field, val, true),
            "bootcmd" => ci.bootcmd = texts(cx, &field, val, true),
            "write_files" => match &val.value {
                Value::Seq(items) => {
                    ci.write_files = items
                        .iter()
                        .filter_map(|i| write_file(cx, &format!("{what} {field}"), i))
                        .collect()
                }
                Value::Null => {}
                _ => cx.error(
                    val,
                    format!("`{field}` must be a list, found {}", val.shape()),
                ),
            },
            "network" => ci.network = network(cx, val),
            "mirrors" => {
                let keys = Keys {
                    what: "cloud_init.mirrors",
                    known: &["apt", "dnf", "pacman"],
                    legacy: &[],
                    drift: &[],
                };
                let mut m = Mirrors::default();
                for (k, _, list) in check_keys(cx, val, &keys) {
                    let items = texts(cx, &format!("cloud_init.mirrors.{k}"), list, false);
                    match k.as_str() {
                        "apt" => m.apt = items,
                        "dnf" => m.dnf = items,
                        _ => m.pacman = items,
                    }
                }
                ci.mirrors = Some(m);
            }
            "ov_install" => ci.ov_install = Some(ov_install(cx, val)),
            _ => {
                // Raw cloud-config: parsed here, so the seed writes it
                // through the emitter like every other value.
                let Some(raw) = text(cx, &field, val, true) else {
                    continue;
                };
                let raw = raw.strip_prefix("#cloud-config\n").unwrap_or(&raw);
                match super::yaml::parse(raw) {
                    Ok(docs) if docs.len() == 1 && docs[0].as_map().is_some() => {
                        ci.extra = Some(docs[0].to_json())
                    }
                    Ok(docs) if docs.iter().all(Node::is_null) => {}
                    Ok(_) => cx.error(val, format!("`{field}` must be one cloud-config mapping")),
                    Err(e) => cx.error(
                        val,
                        format!(
                            "`{field}` is not YAML: {} (line {} of the text)",
                            e.message, e.span.line
                        ),
                    ),
                }
            }
        }
    }
    ci
}

fn sha256_hex(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// `source.checksum`: ov's `{type: sha256, value: <hex>}` (an empty value
/// means the sidecar), or a digest (`sha256:<hex>` or bare hex), or the URL
/// of a checksum file.
pub fn checksum(cx: &mut Cx, v: Option<&Node>) -> Checksum {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Checksum::Sidecar;
    };
    let digest = |cx: &mut Cx, node: &Node, s: &str| -> Checksum {
        let hex = s.trim().strip_prefix("sha256:").unwrap_or(s.trim());
        match sha256_hex(hex) {
            Some(h) => Checksum::Sha256(h),
            None => {
                cx.error(
                    node,
                    format!("`source.checksum`: `{s}` is not a sha256 (64 hex digits, optionally after `sha256:`) nor a checksum file URL"),
                );
                Checksum::Sidecar
            }
        }
    };
    match &v.value {
        Value::Scalar { text, .. }
            if text.starts_with("https://") || text.starts_with("http://") =>
        {
            Checksum::File(text.clone())
        }
        Value::Scalar { text, .. } => digest(cx, v, text),
        Value::Map(_) => {
            let keys = Keys {
                what: "source.checksum",
                known: &["type", "value"],
                legacy: &[],
                drift: &[],
            };
            let mut value = None;
            for (key, _, val) in check_keys(cx, v, &keys) {
                if key == "type" {
                    one_of(cx, "source.checksum.type", val, &["sha256"]);
                } else {
                    value = decode::string(cx, "source.checksum.value", val).map(|s| (s, val));
                }
            }
            match value {
                Some((s, _)) if s.is_empty() => Checksum::Sidecar,
                Some((s, node)) if s.starts_with("https://") || s.starts_with("http://") => {
                    let _ = node;
                    Checksum::File(s)
                }
                Some((s, node)) => digest(cx, node, &s),
                None => Checksum::Sidecar,
            }
        }
        _ => {
            cx.error(
                v,
                format!(
                    "`source.checksum` must be a digest, a URL or {{type, value}}, found {}",
                    v.shape()
                ),
            );
            Checksum::Sidecar
        }
    }
}

/// `ssh.key_source` as written; whether a path exists is checked once the
/// project root is known (see [`super::vm::resolve_keys`]). A word that is
/// close to a keyword and names no file is taken for a misspelt keyword.
pub fn key_source(cx: &mut Cx, v: &Node) -> Option<KeySource> {
    let s = text(cx, "ssh.key_source", v, false)?;
    let src = KeySource::parse(&s);
    if let KeySource::Path(p) = &src {
        let hint = did_you_mean(&s, KEYWORDS.iter().copied());
        if !hint.is_empty() && !s.contains('/') && !p.exists() {
            cx.error(
                v,
                format!(
                    "`ssh.key_source`: `{s}` is not one of {} nor a public key file{hint}",
                    KEYWORDS.join(", ")
                ),
            );
            return None;
        }
    }
    Some(src)
}

/// `ssh.key_injection.cloud_init`: whether cloud-init gets the key.
/// ov's default is yes except for bootc VMs.
pub fn inject_via_cloud_init(cx: &mut Cx, ssh: Option<&Node>, bootc: bool) -> bool {
    let node = ssh
        .and_then(|s| s.get("key_injection"))
        .and_then(|k| k.get("cloud_init"));
    match node.and_then(|n| {
        one_of(
            cx,
            "ssh.key_injection.cloud_init",
            n,
            &["auto", "enabled", "disabled"],
        )
    }) {
        Some(v) if v == "enabled" => true,
        Some(v) if v == "disabled" => false,
        _ => !bootc,
    }
}
