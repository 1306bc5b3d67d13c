//! A layer's `task:` list, in order. Every verb of ov's format renders or
//! fails with an error naming the layer, the task index and the verb.
//!
//! As in ov: adjacent `mkdir`/`link`/`setcap` tasks run as the same user
//! share one RUN; a task's `user:` switches `USER` around it (root by
//! default); `${USER}`, `${UID}`, `${GID}`, `${HOME}` and a leading `~/`
//! in paths are the image user's; other `${VAR}`s are left for the
//! builder and the shell (the layer's `var:` are ENV).

use super::accept::{has_control, is_user_spec};
use super::layer::Layer;
use super::quote::{comment_text, copy_args, sh_dq, sh_sq, sh_word};
use super::{scalar_text, RenderError, RenderOpts, Steps, User};
use crate::template::{cache_mount_flag, cache_sharing};
use serde_json::{Map, Value as Json};
use std::collections::BTreeSet;

/// The verbs ov's format documents.
const VERBS: &[&str] = &[
    "cmd", "mkdir", "copy", "write", "link", "download", "setcap", "build",
];

/// Where the layer's directory (the build context) is mounted for `cmd:`.
const CTX: &str = "/ctx";

/// Continuation between the parts of a long RUN.
const CONT: &str = " \\\n    ";

struct Task<'a> {
    layer: &'a str,
    index: usize,
    verb: &'a str,
    arg: String,
    fields: Option<&'a Map<String, Json>>,
}

impl<'a> Task<'a> {
    fn read(layer: &'a Layer, index: usize) -> Result<Task<'a>, RenderError> {
        let t = &layer.tasks[index];
        let verb = t.get("verb").and_then(Json::as_str).ok_or_else(|| {
            layer
                .view
                .err(format!("`tasks[{index}]` has no string `verb`"))
        })?;
        if !VERBS.contains(&verb) {
            return Err(RenderError::UnknownVerb {
                layer: layer.name.to_string(),
                index,
                verb: verb.to_string(),
            });
        }
        let arg = match t.get("arg") {
            None | Some(Json::Null) => String::new(),
            Some(v) => scalar_text(v).unwrap_or_else(|| v.to_string()),
        };
        let task = Task {
            layer: layer.name,
            index,
            verb,
            arg,
            fields: t.get("spec").and_then(Json::as_object),
        };
        task.check_text()?;
        Ok(task)
    }

    /// Every field but the script, the written content and the comment
    /// lands on one Containerfile line: none may break it.
    fn check_text(&self) -> Result<(), RenderError> {
        fn first_control(v: &Json) -> Option<&str> {
            match v {
                Json::String(s) => has_control(s).then_some(s.as_str()),
                Json::Array(a) => a.iter().find_map(first_control),
                Json::Object(o) => o.iter().find_map(|(k, v)| {
                    if has_control(k) {
                        Some(k.as_str())
                    } else {
                        first_control(v)
                    }
                }),
                _ => None,
            }
        }
        let multi_line_ok = |k: &str| k == "comment" || k == "content" || k == "cmd";
        if self.verb != "cmd" && has_control(&self.arg) {
            return Err(self.err(format!(
                "{:?} holds a line break or control character",
                self.arg
            )));
        }
        for (k, v) in self.fields.into_iter().flatten() {
            if multi_line_ok(k) {
                continue;
            }
            if let Some(s) = first_control(v) {
                return Err(self.err(format!(
                    "`{k}` {s:?} holds a line break or control character"
                )));
            }
        }
        if let Some(u) = self.get("user").and_then(Json::as_str) {
            if !u.trim().is_empty() && !is_user_spec(u.trim()) {
                return Err(self.err(format!(
                    "`user` {u:?} is not a user (a name or id, optionally `:group`)"
                )));
            }
        }
        Ok(())
    }

    fn err(&self, message: impl Into<String>) -> RenderError {
        RenderError::Task {
            layer: self.layer.to_string(),
            index: self.index,
            verb: self.verb.to_string(),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.fields?.get(key).filter(|v| !v.is_null())
    }

    /// A scalar field as text.
    fn text(&self, key: &str) -> Result<Option<String>, RenderError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => scalar_text(v)
                .map(Some)
                .ok_or_else(|| self.err(format!("`{key}` must be a string"))),
        }
    }

    fn required(&self, key: &str) -> Result<String, RenderError> {
        self.text(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.err(format!("needs `{key}`")))
    }

    /// The verb's own argument (the path, command or URL).
    fn arg(&self) -> Result<&str, RenderError> {
        if self.arg.is_empty() {
            return Err(self.err(format!("`{}` is empty", self.verb)));
        }
        Ok(&self.arg)
    }

    /// `mode:` as octal digits (`"0644"`, or 644 written as a number).
    fn mode(&self) -> Result<Option<String>, RenderError> {
        let Some(m) = self.text("mode")? else {
            return Ok(None);
        };
        let ok = (3..=4).contains(&m.len()) && m.chars().all(|c| ('0'..='7').contains(&c));
        if !ok {
            return Err(self.err(format!("`mode` must be octal like \"0644\", found `{m}`")));
        }
        Ok(Some(m))
    }

    fn comment(&self) -> Option<&'a str> {
        self.get("comment").and_then(Json::as_str)
    }

    /// `env:` as sorted `export K='v'` commands.
    fn exports(&self) -> Result<Vec<String>, RenderError> {
        let Some(env) = self.get("env") else {
            return Ok(Vec::new());
        };
        let env = env
            .as_object()
            .ok_or_else(|| self.err("`env` must be a map"))?;
        let mut keys: Vec<&String> = env.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let valid = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(self.err(format!("`env` key `{k}` is not a variable name")));
                }
                let v = scalar_text(&env[k])
                    .ok_or_else(|| self.err(format!("`env.{k}` must be a string")))?;
                Ok(format!("export {k}={}", sh_sq(&v)))
            })
            .collect()
    }
}

/// Who a task runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunAs {
    /// The `USER` argument.
    directive: String,
    /// `--chown` for COPY; none for root (COPY's default).
    chown: Option<String>,
    /// The image user's ids when the task runs as the image user (for
    /// cache mounts it can write).
    owner: Option<(u64, u64)>,
}

impl RunAs {
    fn is_root(&self) -> bool {
        self.directive == "root"
    }
}

/// ov's rule: empty, `root` or `0` is root; `${USER}` (or the image user's
/// name or uid) is the image user by number; `uid:gid` and other names are
/// used as written.
fn run_as(field: Option<&str>, user: &User) -> RunAs {
    let raw = field.unwrap_or("").trim();
    let u = subst(raw, user);
    if u.is_empty() || u == "root" || u == "0" {
        return RunAs {
            directive: "root".into(),
            chown: None,
            owner: None,
        };
    }
    if raw == "${USER}" || u == user.name || u == user.uid.to_string() {
        return RunAs {
            directive: user.uid.to_string(),
            chown: Some(format!("{}:{}", user.uid, user.gid)),
            owner: Some((user.uid, user.gid)),
        };
    }
    let chown = if u.contains(':') {
        u.clone()
    } else {
        format!("{u}:{u}")
    };
    RunAs {
        directive: u,
        chown: Some(chown),
        owner: None,
    }
}

/// Replaces the image user's `${USER}`, `${UID}`, `${GID}`, `${HOME}`.
fn subst(s: &str, user: &User) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match name {
            "USER" => out.push_str(&user.name),
            "UID" => out.push_str(&user.uid.to_string()),
            "GID" => out.push_str(&user.gid.to_string()),
            "HOME" => out.push_str(&user.home),
            _ => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A path field: `~/` is the image user's home, then [`subst`].
fn path(s: &str, user: &User) -> String {
    let s = match s.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", user.home),
        None => s.to_string(),
    };
    subst(&s, user)
}

/// `$ARCH` or `${ARCH}` (not `$BUILD_ARCH`) somewhere in `s`.
fn mentions_arch(s: &str) -> bool {
    s.match_indices("${ARCH}").next().is_some()
        || s.match_indices("$ARCH").any(|(i, _)| {
            !s[i + 5..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn any_string(v: &Json, f: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Json::String(s) => f(s),
        Json::Array(a) => a.iter().any(|v| any_string(v, f)),
        Json::Object(o) => o.values().any(|v| any_string(v, f)),
        _ => false,
    }
}

/// Whether a task or variable uses ov's `ARCH` auto-variable.
pub(super) fn uses_arch(layer: &Layer) -> Result<bool, RenderError> {
    let vars = layer.view.object("var")?;
    Ok(layer.tasks.iter().any(|t| any_string(t, &mentions_arch))
        || vars.is_some_and(|v| v.values().any(|v| any_string(v, &mentions_arch))))
}

/// Renders every task.
pub(super) fn render(layer: &Layer, opts: &RenderOpts, out: &mut Steps) -> Result<(), RenderError> {
    let tasks: Vec<Task> = (0..layer.tasks.len())
        .map(|i| Task::read(layer, i))
        .collect::<Result<_, _>>()?;
    // Directories the author creates (and their ancestors): no automatic
    // parent mkdir for them.
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for t in tasks.iter().filter(|t| t.verb == "mkdir") {
        let mut p = path(&t.arg, &layer.user);
        while !p.is_empty() && p != "/" && p != "." {
            declared.insert(p.clone());
            p = parent_dir(&p).unwrap_or_default();
        }
    }
    let mut running = "root".to_string();
    let mut i = 0;
    while i < tasks.len() {
        let t = &tasks[i];
        let who = run_as(t.get("user").and_then(Json::as_str), &layer.user);
        if who.directive != running {
            out.step(format!("USER {}", who.directive));
            running = who.directive.clone();
        }
        if let Some(c) = t.comment() {
            for line in c.lines() {
                out.step(format!("# {}", comment_text(line)).trim_end().to_string());
            }
        }
        match t.verb {
            "mkdir" | "link" | "setcap" => {
                let mut batch = vec![t];
                while let Some(next) = tasks.get(i + 1) {
                    let same_user =
                        run_as(next.get("user").and_then(Json::as_str), &layer.user) == who;
                    if next.verb != t.verb || !same_user || next.comment().is_some() {
                        break;
                    }
                    batch.push(next);
                    i += 1;
                }
                match t.verb {
                    "mkdir" => out.step(mkdir(&batch, &layer.user)?),
                    "link" => out.step(link(&batch, &layer.user)?),
                    _ => out.step(setcap(&batch, &layer.user)?),
                }
            }
            "copy" => copy(t, &who, layer, &mut declared, out)?,
            "write" => write(t, &who, layer, &mut declared, out)?,
            "cmd" => cmd(t, &who, layer, opts, out)?,
            "download" => out.step(download(t, &who, &layer.user, opts)?),
            "build" => {
                // Only a marker: ov writes it and runs builders in their
                // own stages (here: stage nodes, copied in at the layer's
                // start).
                let has_stages = layer.view.object("stages")?.is_some_and(|s| !s.is_empty());
                let why = if has_stages {
                    "handled by builder stage"
                } else {
                    "this layer triggers no builder"
                };
                out.step(format!("# build: {} ({why})", comment_text(t.arg()?)));
            }
            other => {
                return Err(RenderError::UnknownVerb {
                    layer: layer.name.to_string(),
                    index: t.index,
                    verb: other.to_string(),
                })
            }
        }
        i += 1;
    }
    if running != "root" {
        out.step("USER root");
    }
    Ok(())
}

fn parent_dir(p: &str) -> Option<String> {
    let p = p.trim_end_matches('/');
    let (dir, _) = p.rsplit_once('/')?;
    Some(if dir.is_empty() {
        "/".into()
    } else {
        dir.into()
    })
}

fn mkdir(batch: &[&Task], user: &User) -> Result<String, RenderError> {
    let mut all = Vec::new();
    // Paths per mode, modes in first-seen order.
    let mut by_mode: Vec<(String, Vec<String>)> = Vec::new();
    for t in batch {
        let p = sh_word(&path(t.arg()?, user));
        all.push(p.clone());
        if let Some(m) = t.mode()? {
            match by_mode.iter_mut().find(|(mode, _)| *mode == m) {
                Some((_, paths)) => paths.push(p),
                None => by_mode.push((m, vec![p])),
            }
        }
    }
    let mut parts = vec![format!("mkdir -p {}", all.join(" "))];
    for (m, paths) in by_mode {
        parts.push(format!("chmod {m} {}", paths.join(" ")));
    }
    Ok(format!("RUN {}", parts.join(" && ")))
}

fn link(batch: &[&Task], user: &User) -> Result<String, RenderError> {
    let parts: Vec<String> = batch
        .iter()
        .map(|t| {
            let target = path(&t.required("target")?, user);
            Ok(format!(
                "ln -sf {} {}",
                sh_word(&target),
                sh_word(&path(t.arg()?, user))
            ))
        })
        .collect::<Result<_, RenderError>>()?;
    Ok(format!("RUN {}", parts.join(" && ")))
}

fn setcap(batch: &[&Task], user: &User) -> Result<String, RenderError> {
    let parts: Vec<String> = batch
        .iter()
        .map(|t| {
            let p = sh_word(&path(t.arg()?, user));
            Ok(match t.text("caps")?.filter(|c| !c.trim().is_empty()) {
                // No caps: strip them (ov's meaning of an empty `caps`).
                None => format!("setcap -r {p} 2>/dev/null || true"),
                Some(c) => format!("setcap {} {p}", sh_word(c.trim())),
            })
        })
        .collect::<Result<_, RenderError>>()?;
    Ok(format!("RUN {}", parts.join(" && ")))
}

/// COPY creates missing parents as root; for a non-root task ov creates
/// them first as the task's user so the user owns them.
fn parent_mkdir(
    dest: &str,
    who: &RunAs,
    user: &User,
    declared: &mut BTreeSet<String>,
    out: &mut Steps,
) {
    if who.is_root() {
        return;
    }
    let Some(parent) = parent_dir(dest) else {
        return;
    };
    if parent == "/" || parent == user.home || declared.contains(&parent) {
        return;
    }
    out.step(format!("RUN mkdir -p {}", sh_word(&parent)));
    let mut p = parent;
    while !p.is_empty() && p != "/" {
        declared.insert(p.clone());
        p = parent_dir(&p).unwrap_or_default();
    }
}

fn copy_flags(mode: String, who: &RunAs) -> Vec<String> {
    let mut flags = vec![format!("--chmod={mode}")];
    if let Some(c) = &who.chown {
        flags.push(format!("--chown={c}"));
    }
    flags
}

/// `copy: <file in the layer dir>` — the build context is the layer
/// directory, so the source is used as written.
fn copy(
    t: &Task,
    who: &RunAs,
    layer: &Layer,
    declared: &mut BTreeSet<String>,
    out: &mut Steps,
) -> Result<(), RenderError> {
    let src = t.arg()?;
    let escapes = src.starts_with('/') || src.split('/').any(|c| c == "..");
    if escapes {
        return Err(t.err(format!(
            "`{src}` must be a path inside the layer directory (relative, no `..`)"
        )));
    }
    let dest = path(&t.required("to")?, &layer.user);
    parent_mkdir(&dest, who, &layer.user, declared, out);
    // ov's default mode for copied files is 0755 (they are often scripts).
    let mode = t.mode()?.unwrap_or_else(|| "0755".into());
    out.step(copy_args(&copy_flags(mode, who), src, &dest));
    Ok(())
}

/// `write: <path>` with `content:` — the content is staged in the build
/// context under its blake3 digest, so equal content is one file and the
/// name changes when the content does.
fn write(
    t: &Task,
    who: &RunAs,
    layer: &Layer,
    declared: &mut BTreeSet<String>,
    out: &mut Steps,
) -> Result<(), RenderError> {
    let dest = path(t.arg()?, &layer.user);
    let content = t.text("content")?.ok_or_else(|| t.err("needs `content`"))?;
    let staged = format!(".ov/write/{}", blake3::hash(content.as_bytes()).to_hex());
    parent_mkdir(&dest, who, &layer.user, declared, out);
    let mode = t.mode()?.unwrap_or_else(|| "0644".into());
    out.step(copy_args(&copy_flags(mode, who), &staged, &dest));
    out.file(staged, content.into_bytes());
    Ok(())
}

/// Shell lines every `cmd:`/`download:` may need first: the task's `env:`
/// and, when the text uses it, ov's `BUILD_ARCH` (x86_64/aarch64).
fn preamble(t: &Task, text: &str) -> Result<Vec<String>, RenderError> {
    let mut lines = t.exports()?;
    if text.contains("BUILD_ARCH") {
        lines.push("export BUILD_ARCH=\"$(uname -m)\"".into());
    }
    Ok(lines)
}

/// `cmd:` runs with the layer directory (the build context) bind-mounted
/// at `/ctx` and, as root, the package cache mounts of the image's first
/// package format (a `dnf install` in a task reuses the package cache, as
/// in ov). A one-line command is RUN as written (`/bin/sh -c`). A script of
/// several lines cannot sit in a RUN's shell form (a heredoc would, but
/// podman 4.3's buildah has none), so it is staged in the build context
/// under its blake3 digest and run from `/ctx` with `bash -e`, as ov runs
/// every `cmd:` (bash, `set -e`).
fn cmd(
    t: &Task,
    who: &RunAs,
    layer: &Layer,
    opts: &RenderOpts,
    out: &mut Steps,
) -> Result<(), RenderError> {
    let script = t.arg()?.trim_end_matches('\n');
    if script.trim().is_empty() {
        return Err(t.err("`cmd` is empty"));
    }
    let mut flags = vec![format!("--mount=type=bind,target={CTX}")];
    if who.is_root() {
        if let Some(def) = layer.primary_format() {
            for m in def
                .get("cache_mount")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let Some(dst) = m.get("dst").and_then(Json::as_str) else {
                    continue;
                };
                let sharing =
                    cache_sharing(m.get("sharing").and_then(Json::as_str), opts.helpers());
                flags.push(cache_mount_flag(dst, sharing.as_deref(), None));
            }
        }
    }
    let pre = preamble(t, script)?;
    // A lone `\r` (or another control character) ends a line for some
    // readers of a Containerfile: such a script is staged like a
    // multi-line one.
    let body = if has_control(script) {
        let mut full = String::new();
        for line in pre {
            full.push_str(&line);
            full.push('\n');
        }
        full.push_str(script);
        full.push('\n');
        let staged = format!(".ov/cmd/{}.sh", blake3::hash(full.as_bytes()).to_hex());
        let run = format!("bash -e {CTX}/{staged}");
        out.file(staged, full.into_bytes());
        run
    } else {
        let mut parts = pre;
        parts.push(script.to_string());
        parts.join(" && ")
    };
    out.step(format!("RUN {}{CONT}{body}", flags.join(CONT)));
    Ok(())
}

/// `download: <url>` into `to:`, through a download cache keyed by the URL
/// (as ov's) so a rebuild of the layer does not fetch again; `.part` then
/// rename, so a failed fetch is never reused.
fn download(t: &Task, who: &RunAs, user: &User, opts: &RenderOpts) -> Result<String, RenderError> {
    let url = t.arg()?;
    let to = t.text("to")?.map(|p| path(&p, user));
    let extract = match t.text("extract")?.map(|e| e.trim().to_string()) {
        Some(e) if !e.is_empty() => e,
        _ if url.ends_with(".tar.gz") || url.ends_with(".tgz") => "tar.gz".into(),
        _ => "none".into(),
    };
    let strip = match t.get("strip_components") {
        None => 0,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| t.err("`strip_components` must be a number"))?,
    };
    let include: Vec<String> = match t.get("include") {
        None => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| scalar_text(i).map(|s| sh_word(&s)))
            .collect::<Option<_>>()
            .ok_or_else(|| t.err("`include` must list strings"))?,
        Some(v) => vec![sh_word(
            &scalar_text(v).ok_or_else(|| t.err("`include` must be a list"))?,
        )],
    };
    let mode = t.mode()?;
    let dest = || {
        to.as_deref()
            .map(sh_word)
            .ok_or_else(|| t.err(format!("extract `{extract}` needs `to`")))
    };
    let strip_flag = if strip > 0 {
        format!(" --strip-components={strip}")
    } else {
        String::new()
    };
    let tar = |flags: &str| -> Result<String, RenderError> {
        let d = dest()?;
        let inc: String = include.iter().map(|i| format!(" {i}")).collect();
        Ok(format!(
            "mkdir -p {d} && tar {flags} \"$f\"{strip_flag} -C {d}{inc}"
        ))
    };
    let mut install = match extract.as_str() {
        "tar.gz" => tar("-xzf")?,
        "tar.xz" => tar("-xJf")?,
        "tar.zst" => tar("--zstd -xf")?,
        "zip" => {
            if strip > 0 {
                return Err(t.err("`strip_components` does not apply to zip"));
            }
            let d = dest()?;
            format!("mkdir -p {d} && unzip -o \"$f\" -d {d}")
        }
        "sh" => "sh \"$f\"".into(),
        "none" => format!(
            "install -D -m {} \"$f\" {}",
            mode.as_deref().unwrap_or("0644"),
            dest()?
        ),
        other => {
            return Err(t.err(format!(
                "unknown `extract: {other}` (tar.gz, tar.xz, tar.zst, zip, sh, none)"
            )))
        }
    };
    if let Some(m) = &mode {
        if !matches!(extract.as_str(), "none" | "sh") {
            install.push_str(&format!(" && chmod -R {m} {}", dest()?));
        }
    }
    let u = sh_dq(url);
    let mut lines = preamble(t, url)?;
    // The image user gets a cache it owns; other non-root users none (a
    // root-owned cache is not writable for them).
    let cache = if who.is_root() {
        Some(cache_mount_flag(
            "/tmp/downloads",
            cache_sharing(None, opts.helpers()).as_deref(),
            None,
        ))
    } else {
        who.owner
            .map(|o| cache_mount_flag("/tmp/downloads", None, Some(o)))
    };
    match &cache {
        Some(_) => {
            lines.push(format!(
                "f=/tmp/downloads/$(printf %s {u} | sha256sum | cut -c1-64)"
            ));
            lines.push(format!(
                "{{ [ -s \"$f\" ] || {{ curl -fsSL {u} -o \"$f.part\" && mv -f \"$f.part\" \"$f\"; }}; }}"
            ));
            lines.push(install);
        }
        None => {
            lines.push("f=$(mktemp)".into());
            lines.push(format!("curl -fsSL {u} -o \"$f\""));
            lines.push(install);
            lines.push("rm -f \"$f\"".into());
        }
    }
    let mut run = String::from("RUN ");
    if let Some(c) = cache {
        run.push_str(&c);
        run.push_str(CONT);
    }
    run.push_str(&lines.join(&format!(" &&{CONT}")));
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            name: "user".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/user".into(),
        }
    }

    #[test]
    fn paths_and_users() {
        let u = user();
        assert_eq!(path("~/.config/x", &u), "/home/user/.config/x");
        assert_eq!(
            path("${HOME}/a/${MINE}/${USER}", &u),
            "/home/user/a/${MINE}/user"
        );
        assert_eq!(subst("${UID}:${GID} ${", &u), "1000:1000 ${");
        assert_eq!(run_as(None, &u).directive, "root");
        assert_eq!(run_as(Some("0"), &u).chown, None);
        let me = run_as(Some("${USER}"), &u);
        assert_eq!(
            (me.directive.as_str(), me.chown.as_deref()),
            ("1000", Some("1000:1000"))
        );
        assert_eq!(run_as(Some("user"), &u), me);
        assert_eq!(
            run_as(Some("nobody"), &u).chown.as_deref(),
            Some("nobody:nobody")
        );
        assert_eq!(parent_dir("/a/b"), Some("/a".into()));
        assert_eq!(parent_dir("/a"), Some("/".into()));
    }

    #[test]
    fn arch() {
        assert!(mentions_arch("x-${ARCH}.tgz"));
        assert!(mentions_arch("x-$ARCH"));
        assert!(!mentions_arch("x-$ARCHIVE"));
        assert!(!mentions_arch("$BUILD_ARCH only"));
    }
}
