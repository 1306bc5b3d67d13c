//! `cloud_init:` of a VM, typed, and the NoCloud files rendered from it.
//!
//! The rendering follows ov's renderer field by field: the same defaults
//! (a `default` user first, the SSH user added with the key, the minimum
//! packages and the sshd runcmd), the same key names and the same key
//! order (Go marshals maps with sorted keys). Every value from vm.yml goes
//! through a YAML emitter, and the emitted text is parsed back and compared
//! before it is used, so no string can change the document's shape.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// `cloud_init:` as vm.yml declares it (Go `VmCloudInit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudInit {
    /// The guest's hostname; none when unset (ov passes only this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `timezone` (e.g. `UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `locale` (e.g. `en_US.UTF-8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Extra users created at first boot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    /// Packages installed at first boot, after ov's minimum set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub package: Vec<String>,
    /// Commands run once at first boot, after ov's sshd command.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runcmd: Vec<String>,
    /// Commands run early on every boot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bootcmd: Vec<String>,
    /// Files written at first boot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_files: Vec<WriteFile>,
    /// network-config v2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Package mirrors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<Mirrors>,
    /// How the ov binary reaches the guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ov_install: Option<OvInstall>,
    /// `extra:`, parsed: a cloud-config mapping appended as a second
    /// document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Json>,
}

/// One entry of `cloud_init.users` (Go `VmCloudInitUser`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct User {
    /// The account name.
    pub name: String,
    /// Passwordless sudo.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sudo: bool,
    /// Supplementary groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Login shell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Password login disabled (cloud-init's default when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_passwd: Option<bool>,
}

/// One entry of `cloud_init.write_files` (Go `VmCloudInitFile`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriteFile {
    /// Absolute path in the guest.
    pub path: String,
    /// The body.
    pub content: String,
    /// `user:group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Octal mode, as text (`0644`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perms: Option<String>,
    /// `b64`, `gz` or `gz+b64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// The encodings cloud-init's write_files knows.
pub const ENCODINGS: &[&str] = &["b64", "gz", "gz+b64"];

/// `cloud_init.network` (Go `VmCloudInitNetwork`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Schema version; 2 when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Interface name to its settings, passed through.
    pub ethernets: IndexMap<String, Json>,
}

/// `cloud_init.mirrors` (Go `VmCloudInitMirrors`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mirrors {
    /// apt mirrors (the first is used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apt: Vec<String>,
    /// dnf mirrors (read by ov, not rendered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dnf: Vec<String>,
    /// pacman mirrors (read by ov, not rendered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pacman: Vec<String>,
}

/// `cloud_init.ov_install` (Go `VmOvInstall`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OvInstall {
    /// `auto`, `scp`, `url` or `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Where the guest downloads ov from (strategy `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `sha256:<hex>` of that download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// The strategies of `ov_install`.
pub const OV_INSTALL_STRATEGIES: &[&str] = &["auto", "scp", "url", "skip"];

/// What the renderer needs besides `cloud_init:` (ov's runtime params and
/// the parts of the VM spec it reads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context<'a> {
    /// The SSH user (ssh.user, else source.base_user, else `root` for
    /// bootc sources, else none).
    pub ssh_user: Option<&'a str>,
    /// `source.base_user`.
    pub base_user: Option<&'a str>,
    /// `source.distro` (names the ssh package and unit).
    pub distro: Option<&'a str>,
    /// The public key to authorize, when cloud-init injects one.
    pub authorized_key: Option<&'a str>,
    /// cloud-init's instance id.
    pub instance_id: &'a str,
}

/// The three NoCloud files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// `user-data`: `#cloud-config` and the document(s).
    pub user_data: String,
    /// `meta-data`: instance id and hostname.
    pub meta_data: String,
    /// `network-config`, when `cloud_init.network` has interfaces (ov
    /// writes the file only then).
    pub network_config: Option<String>,
}

/// The emitter could not write a document that reads back as itself.
#[derive(Debug, thiserror::Error)]
#[error("cloud-init: {0}")]
pub struct RenderError(String);

const SUDO_ALL: &str = "ALL=(ALL) NOPASSWD:ALL";

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_string())
}

fn strings(v: &[String]) -> Yaml {
    Yaml::Array(v.iter().map(|x| s(x)).collect())
}

/// A mapping with its keys sorted, as Go's encoder writes a map.
fn sorted(entries: Vec<(&str, Yaml)>) -> Yaml {
    let mut entries = entries;
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Hash::new();
    for (k, v) in entries {
        h.insert(s(k), v);
    }
    Yaml::Hash(h)
}

/// JSON to YAML; `sort` sorts mapping keys (a Go map), otherwise their
/// written order is kept (ov copies `extra` as written).
fn from_json(v: &Json, sort: bool) -> Yaml {
    match v {
        Json::Null => Yaml::Null,
        Json::Bool(b) => Yaml::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Json::String(x) => s(x),
        Json::Array(a) => Yaml::Array(a.iter().map(|x| from_json(x, sort)).collect()),
        Json::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            if sort {
                keys.sort();
            }
            let mut h = Hash::new();
            for k in keys {
                h.insert(s(k), from_json(&o[k], sort));
            }
            Yaml::Hash(h)
        }
    }
}

/// Whether a YAML reader might take the plain scalar `v` for something
/// other than a string: under YAML 1.1 (cloud-init's PyYAML) dates, `1_000`,
/// `0o17`, `1:20` and the like are numbers or timestamps, and the emitter
/// only knows YAML 1.2's rules. Such strings are written double-quoted.
/// Erring towards quoting costs nothing: a quoted string is still itself.
fn ambiguous(v: &str) -> bool {
    let first = v.chars().next();
    first.is_some_and(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.' | ':'))
}

/// `doc` with each ambiguous string replaced by a placeholder the emitter
/// is sure to double-quote, and the strings replaced, in order.
fn mark(doc: &Yaml, taken: &mut Vec<String>) -> Yaml {
    match doc {
        Yaml::String(v) if ambiguous(v) => {
            taken.push(v.clone());
            Yaml::String(format!("\u{1}{}\u{1}", taken.len() - 1))
        }
        Yaml::Array(a) => Yaml::Array(a.iter().map(|x| mark(x, taken)).collect()),
        Yaml::Hash(h) => {
            let mut out = Hash::new();
            for (k, v) in h {
                let k = mark(k, taken);
                out.insert(k, mark(v, taken));
            }
            Yaml::Hash(out)
        }
        other => other.clone(),
    }
}

/// Emits `doc` and checks that it parses back to `doc`. Literal blocks
/// are tried first (readable `content:`); when one cannot carry a string
/// (leading spaces, several trailing newlines), the plain emitter, which
/// double-quotes and escapes, is used. Ambiguous strings (see
/// [`ambiguous`]) go out double-quoted: the emitter quotes their
/// placeholders, and each quoted placeholder is swapped for the string
/// quoted by a JSON encoder (a JSON string is a YAML double-quoted scalar).
fn emit(doc: &Yaml) -> Result<String, RenderError> {
    let mut taken = Vec::new();
    let marked = mark(doc, &mut taken);
    for multiline in [true, false] {
        let mut out = String::new();
        let mut e = YamlEmitter::new(&mut out);
        e.multiline_strings(multiline);
        e.dump(&marked)
            .map_err(|e| RenderError(format!("emitting YAML: {e}")))?;
        let mut body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
        for (i, v) in taken.iter().enumerate() {
            let quoted = serde_json::to_string(v).unwrap_or_default();
            body = body.replacen(&format!("\"\\u0001{i}\\u0001\""), &quoted, 1);
        }
        let back = YamlLoader::load_from_str(&body).ok();
        if back.as_deref() == Some(std::slice::from_ref(doc)) {
            return Ok(body + "\n");
        }
    }
    Err(RenderError(
        "a value could not be written as YAML that reads back the same".into(),
    ))
}

/// The SSH package and unit names of a distro, as ov picks them.
fn ssh_names(distro: Option<&str>) -> (&'static str, &'static str) {
    match distro {
        Some("debian" | "ubuntu") => ("openssh-server", "ssh"),
        _ => ("openssh", "sshd"),
    }
}

fn user_entry(u: &User, key: Option<&str>) -> Yaml {
    let mut e = vec![("name", s(&u.name))];
    if u.sudo {
        e.push(("sudo", s(SUDO_ALL)));
    }
    if !u.groups.is_empty() {
        e.push(("groups", strings(&u.groups)));
    }
    if let Some(sh) = u.shell.as_deref().filter(|x| !x.is_empty()) {
        e.push(("shell", s(sh)));
    }
    if let Some(l) = u.lock_passwd {
        e.push(("lock_passwd", Yaml::Boolean(l)));
    }
    if let Some(k) = key {
        e.push(("ssh_authorized_keys", Yaml::Array(vec![s(k)])));
    }
    sorted(e)
}

/// `users:`: `default` first; declared users as written, the SSH user's
/// entry getting the key; else an entry for the SSH user: only the key
/// when it is the image's own `base_user`, a full sudo account otherwise.
fn users(ci: &CloudInit, cx: &Context) -> Yaml {
    let mut out = vec![s("default")];
    let ssh_user = cx.ssh_user.filter(|u| !u.is_empty());
    let mut merged = false;
    for u in &ci.users {
        let mine = Some(u.name.as_str()) == ssh_user;
        merged |= mine;
        out.push(user_entry(u, cx.authorized_key.filter(|_| mine)));
    }
    if let (Some(user), false) = (ssh_user, merged) {
        let key = cx
            .authorized_key
            .map(|k| ("ssh_authorized_keys", Yaml::Array(vec![s(k)])));
        let entry = if cx.base_user == Some(user) {
            sorted(std::iter::once(("name", s(user))).chain(key).collect())
        } else {
            sorted(
                [
                    ("name", s(user)),
                    ("sudo", s(SUDO_ALL)),
                    ("groups", Yaml::Array(vec![s("wheel")])),
                    ("shell", s("/bin/bash")),
                ]
                .into_iter()
                .chain(key)
                .collect(),
            )
        };
        out.push(entry);
    }
    Yaml::Array(out)
}

fn packages(ci: &CloudInit, cx: &Context) -> Vec<String> {
    let (pkg, _) = ssh_names(cx.distro);
    let mut out: Vec<String> = Vec::new();
    for p in [pkg, "curl", "tar"]
        .into_iter()
        .chain(ci.package.iter().map(String::as_str))
    {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// Single-quotes `v` for a POSIX shell.
fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

fn runcmd(ci: &CloudInit, cx: &Context) -> Vec<String> {
    let (_, unit) = ssh_names(cx.distro);
    let mut out = vec![format!("systemctl enable --now {unit}")];
    out.extend(ci.runcmd.iter().cloned());
    if let Some(oi) = &ci.ov_install {
        if let (Some("url"), Some(url)) = (oi.strategy.as_deref(), oi.url.as_deref()) {
            // ov puts the URL in the command as written; here it is quoted
            // for the shell, so a URL cannot add a command.
            out.push(format!("curl -fL {} -o /usr/local/bin/ov", sh_quote(url)));
            out.push("chmod +x /usr/local/bin/ov".into());
            if let Some(sum) = oi.checksum.as_deref().filter(|c| !c.is_empty()) {
                let line = format!("{}  /usr/local/bin/ov", sum.trim_start_matches("sha256:"));
                out.push(format!(
                    "echo {} | sha256sum --check --status || (rm -f /usr/local/bin/ov; exit 1)",
                    sh_quote(&line)
                ));
            }
        }
    }
    out
}

fn write_files(files: &[WriteFile]) -> Yaml {
    Yaml::Array(
        files
            .iter()
            .map(|f| {
                let mut e = vec![("path", s(&f.path)), ("content", s(&f.content))];
                for (k, v) in [
                    ("owner", &f.owner),
                    ("permissions", &f.perms),
                    ("encoding", &f.encoding),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        e.push((k, s(v)));
                    }
                }
                sorted(e)
            })
            .collect(),
    )
}

/// Renders the NoCloud files of `ci` (ov's `RenderCloudInit`).
pub fn render(ci: &CloudInit, cx: &Context) -> Result<Rendered, RenderError> {
    let hostname = ci.hostname.as_deref().filter(|h| !h.is_empty());

    let mut meta = Vec::new();
    if !cx.instance_id.is_empty() {
        meta.push(("instance-id", s(cx.instance_id)));
    }
    if let Some(h) = hostname {
        meta.push(("local-hostname", s(h)));
    }
    let meta_data = emit(&sorted(meta))?;

    let network_config = match &ci.network {
        Some(n) if !n.ethernets.is_empty() => {
            let eth: serde_json::Map<String, Json> = n
                .ethernets
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some(emit(&sorted(vec![
                ("version", Yaml::Integer(i64::from(n.version.unwrap_or(2)))),
                ("ethernets", from_json(&Json::Object(eth), true)),
            ]))?)
        }
        _ => None,
    };

    let mut user = Vec::new();
    if let Some(h) = hostname {
        user.push(("hostname", s(h)));
    }
    for (k, v) in [("timezone", &ci.timezone), ("locale", &ci.locale)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            user.push((k, s(v)));
        }
    }
    user.push(("users", users(ci, cx)));
    user.push(("packages", strings(&packages(ci, cx))));
    if !ci.bootcmd.is_empty() {
        user.push(("bootcmd", strings(&ci.bootcmd)));
    }
    user.push(("runcmd", strings(&runcmd(ci, cx))));
    if !ci.write_files.is_empty() {
        user.push(("write_files", write_files(&ci.write_files)));
    }
    if let Some(apt) = ci.mirrors.as_ref().and_then(|m| m.apt.first()) {
        user.push((
            "apt",
            sorted(vec![
                ("preserve_sources_list", Yaml::Boolean(false)),
                (
                    "primary",
                    Yaml::Array(vec![sorted(vec![
                        ("arches", Yaml::Array(vec![s("default")])),
                        ("uri", s(apt)),
                    ])]),
                ),
            ]),
        ));
    }
    let mut user_data = format!("#cloud-config\n{}", emit(&sorted(user))?);
    if let Some(extra) = &ci.extra {
        user_data.push_str("---\n");
        user_data.push_str(&emit(&from_json(extra, false))?);
    }
    Ok(Rendered {
        user_data,
        meta_data,
        network_config,
    })
}

/// cloud-init's instance id for a VM instance: UUID-shaped like ov's, but
/// derived from the instance's domain name and what the seed is made of,
/// so the same instance with the same seed keeps its id across builds and
/// a changed seed is a new instance to cloud-init.
pub fn instance_id(domain: &str, seed_spec: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"ov cloud-init instance\0");
    h.update(domain.as_bytes());
    h.update([0]);
    h.update(seed_spec);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
#[path = "cloud_init_tests.rs"]
mod tests;
