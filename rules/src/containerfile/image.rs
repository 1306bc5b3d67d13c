//! An image node: finishes the last layer into the image users run. Order,
//! as at the end of ov's Containerfile: environment, exposed ports, init
//! system assembly, the final `USER`, then labels last (a label edit then
//! only reruns the labels).

use super::accept::{is_package_name, is_var_name};
use super::env::{env_literal, expand_home};
use super::quote::{comment_text, copy_args, label_key, label_value};
use super::{scalar_text, RenderError, RenderOpts, Rendered, SpecView, Steps, User};
use crate::template::{self, object, opt_bool, strings, Value};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Renders an image node's steps.
///
/// Spec keys read: `name`, `tag`, `resolved` (`user`, `uid`, `gid`,
/// `home`, `registry`, `distro`, `build`), `init`, `init_def`, `services`,
/// `meta` (`port`, `env`), `env`, `port`, and when present `init_header`
/// (the init system's header file, e.g. `templates/supervisord.header.conf`),
/// `capabilities` (`preserve_user`, `oci_label`) and `eval` (checks for the
/// label).
pub(crate) fn render_image(spec: &Json, opts: &RenderOpts) -> Result<Rendered, RenderError> {
    let name = spec
        .get("name")
        .and_then(Json::as_str)
        .ok_or_else(|| RenderError::Spec {
            node: "image".into(),
            message: "spec has no string `name`".into(),
        })?;
    let view = SpecView {
        node: format!("image `{name}`"),
        v: spec,
    };
    let resolved = view.object("resolved")?;
    let user = User::read(&view, resolved)?;
    let caps = view.object("capabilities")?;
    let preserve_user = caps
        .and_then(|c| c.get("preserve_user"))
        .and_then(Json::as_bool)
        .unwrap_or(false);

    let mut out = Steps::default();
    out.step(format!("# Image: {}", comment_text(name)));
    env(&view, &user.home, &mut out)?;
    expose(&view, &mut out)?;
    init(&view, &user, opts, &mut out)?;
    // bootc-style images boot systemd, which starts user sessions itself:
    // they keep USER root (ov's `preserve_user` capability).
    if !preserve_user {
        out.step(format!("USER {}", user.uid));
    }
    labels(&view, name, &user, &mut out)?;
    out.finish(&view.node)
}

/// The `env:` of the layers the image installs itself, merged (a later
/// layer wins), one ENV per key, sorted, with `~` and `$HOME` made the
/// image user's home, as ov's `writeLayerEnv` does.
fn env(view: &SpecView, home: &str, out: &mut Steps) -> Result<(), RenderError> {
    let mut merged: BTreeMap<&str, String> = BTreeMap::new();
    for layer_env in view.array("env")? {
        let Some(map) = layer_env.as_object() else {
            if layer_env.is_null() {
                continue;
            }
            return Err(view.err("`env` must list maps (one per layer)"));
        };
        for (k, v) in map {
            let text =
                scalar_text(v).ok_or_else(|| view.err(format!("`env.{k}` must be a string")))?;
            merged.insert(k, text);
        }
    }
    for (k, v) in merged {
        if !is_var_name(k) {
            return Err(view.err(format!(
                "`env` key {k:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        let v = env_literal(&expand_home(&v, home))
            .ok_or_else(|| view.err(format!("`env.{k}` has a newline; ENV cannot hold it")))?;
        out.step(format!("ENV {k}={v}"));
    }
    Ok(())
}

/// A layer `port:` entry as an EXPOSE argument: `8080`, `tcp:2222` and
/// `https:443` expose the port (tcp), `udp:53` exposes `53/udp`.
fn expose_arg(p: &str) -> Option<String> {
    let (proto, port) = match p.split_once(':') {
        Some((proto, port)) => (proto, port),
        None => ("tcp", p),
    };
    let port = port.trim();
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(if proto.eq_ignore_ascii_case("udp") {
        format!("{port}/udp")
    } else {
        port.to_string()
    })
}

fn expose(view: &SpecView, out: &mut Steps) -> Result<(), RenderError> {
    let mut ports: Vec<String> = Vec::new();
    for p in view.array("port")? {
        let text = scalar_text(p).ok_or_else(|| view.err("`port` must list ports"))?;
        let arg = expose_arg(&text)
            .ok_or_else(|| view.err(format!("`port` entry `{text}` is not a port")))?;
        if !ports.contains(&arg) {
            ports.push(arg);
        }
    }
    ports.sort();
    for p in ports {
        out.step(format!("EXPOSE {p}"));
    }
    Ok(())
}

/// A layer service entry, read.
struct Service<'a> {
    layer: &'a str,
    name: &'a str,
    fields: &'a Map<String, Json>,
}

impl Service<'_> {
    fn text(&self, keys: &[&str]) -> String {
        keys.iter()
            .find_map(|k| self.fields.get(*k).and_then(scalar_text))
            .unwrap_or_default()
    }

    fn number(&self, keys: &[&str]) -> u64 {
        keys.iter()
            .find_map(|k| {
                let v = self.fields.get(*k)?;
                v.as_u64().or_else(|| v.as_str()?.parse().ok())
            })
            .unwrap_or(0)
    }

    fn list(&self, key: &str) -> Vec<String> {
        match self.fields.get(key) {
            Some(Json::Array(a)) => a.iter().filter_map(scalar_text).collect(),
            Some(v) => scalar_text(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn packaged(&self) -> Option<&str> {
        self.fields
            .get("use_packaged")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    }

    fn scope(&self) -> String {
        let s = self.text(&["scope"]);
        if s.is_empty() {
            "system".into()
        } else {
            s
        }
    }

    /// ov's `ServiceRenderContext`, every field present.
    fn context(&self, user: &User, fragment_dir: &str) -> Value {
        let env: Vec<(String, String)> = match self.fields.get("env") {
            Some(Json::Object(m)) => {
                let mut kv: Vec<(String, String)> = m
                    .iter()
                    .map(|(k, v)| (k.clone(), scalar_text(v).unwrap_or_default()))
                    .collect();
                kv.sort();
                kv
            }
            _ => Vec::new(),
        };
        let exit_codes = match self
            .fields
            .get("exit_code")
            .or(self.fields.get("exit_codes"))
        {
            Some(Json::Array(a)) => a
                .iter()
                .filter_map(scalar_text)
                .collect::<Vec<_>>()
                .join(","),
            Some(v) => scalar_text(v).unwrap_or_default(),
            None => String::new(),
        };
        let auto_start = self
            .fields
            .get("auto_start")
            .or(self.fields.get("autostart"))
            .and_then(|v| v.as_bool().or_else(|| v.as_str()?.parse().ok()));
        let s = |v: String| Value::from(v);
        object([
            ("Name", Value::from(self.name)),
            ("Layer", Value::from(self.layer)),
            ("Exec", s(self.text(&["exec"]))),
            (
                "Env",
                Value::Map(
                    env.iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                        .collect(),
                ),
            ),
            (
                "EnvList",
                Value::Array(
                    env.iter()
                        .map(|(k, v)| {
                            object([
                                ("Key", Value::from(k.as_str())),
                                ("Value", Value::from(v.as_str())),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("Restart", s(self.text(&["restart"]))),
            ("WorkingDirectory", s(self.text(&["working_directory"]))),
            ("User", s(self.text(&["user"]))),
            ("After", strings(self.list("after"))),
            ("Before", strings(self.list("before"))),
            ("WantedBy", strings(self.list("wanted_by"))),
            ("Stdout", s(self.text(&["stdout"]))),
            ("StopTimeout", s(self.text(&["stop_timeout"]))),
            ("Scope", s(self.scope())),
            (
                "PackagedUnit",
                s(self.packaged().unwrap_or_default().to_string()),
            ),
            ("Home", Value::from(user.home.as_str())),
            ("SystemUnitDir", Value::from("/etc/systemd/system")),
            (
                "UserUnitDir",
                s(format!("{}/.config/systemd/user", user.home)),
            ),
            ("FragmentDir", Value::from(fragment_dir)),
            ("Kind", s(self.text(&["kind"]))),
            ("Events", s(self.text(&["events"]))),
            ("AutoStart", opt_bool(auto_start)),
            ("StartRetries", Value::from(self.number(&["start_retries"]))),
            (
                "StartSecs",
                Value::from(self.number(&["start_sec", "start_secs"])),
            ),
            ("StopSignal", s(self.text(&["stop_signal"]))),
            ("ExitCodes", s(exit_codes)),
            ("Priority", Value::from(self.number(&["priority"]))),
        ])
    }
}

fn services<'a>(view: &SpecView<'a>) -> Result<Vec<Service<'a>>, RenderError> {
    view.array("services")?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let fields = s
                .as_object()
                .ok_or_else(|| view.err(format!("`services[{i}]` must be a map")))?;
            let name = fields
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| view.err(format!("`services[{i}]` has no `name`")))?;
            Ok(Service {
                layer: fields.get("layer").and_then(Json::as_str).unwrap_or(""),
                name,
                fields,
            })
        })
        .collect()
}

fn render_tmpl(
    view: &SpecView,
    key: &str,
    text: &str,
    data: Value,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    template::render(key, text, data, opts.helpers()).map_err(|source| RenderError::Template {
        node: view.node.clone(),
        source,
    })
}

/// Init system assembly. `fragment_assembly` (supervisord): every service
/// the init can run becomes a fragment, rendered by the init's
/// `service_schema.service_template` (or a plain `[program:x]` when it has
/// none); header and fragments are concatenated here, staged as one file
/// and copied to the config the init's entrypoint reads (`-c <path>`).
/// Then the packaged system units are enabled (`system_enable_template`)
/// and `post_assembly_template` runs (`bootc container lint`).
fn init(
    view: &SpecView,
    user: &User,
    opts: &RenderOpts,
    out: &mut Steps,
) -> Result<(), RenderError> {
    let Some(init) = view.opt_str("init")? else {
        return Ok(());
    };
    let def = view.object("init_def")?.ok_or_else(|| {
        view.err(format!(
            "init `{init}` has no `init_def` (build.yml `init.{init}`)"
        ))
    })?;
    let def_str = |k: &str| def.get(k).and_then(Json::as_str).filter(|s| !s.is_empty());
    let services = services(view)?;
    let mut steps: Vec<String> = Vec::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    if def_str("model") == Some("fragment_assembly") {
        let schema = def.get("service_schema").and_then(Json::as_object);
        let tmpl = schema
            .and_then(|s| s.get("service_template"))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty());
        let packaged_ok = schema
            .and_then(|s| s.get("supports_packaged"))
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let fragment_dir = def_str("fragment_dir").unwrap_or("");
        let key = format!("init.{init}.service_schema.service_template");
        // One fragment per layer (its services separated by a blank line),
        // fragments concatenated as ov's `cat /supervisor/*.conf` does.
        let mut fragments: Vec<(&str, String)> = Vec::new();
        for s in &services {
            if s.packaged().is_some() && !packaged_ok {
                continue;
            }
            let text = match tmpl {
                Some(t) => render_tmpl(view, &key, t, s.context(user, fragment_dir), opts)?,
                None if s.packaged().is_some() => continue,
                None => format!(
                    "[program:{}]\ncommand={}\nautostart=true\nautorestart=true\n",
                    s.name,
                    s.text(&["exec"])
                ),
            };
            if text.is_empty() {
                continue;
            }
            match fragments.last_mut() {
                Some((layer, buf)) if *layer == s.layer => {
                    if !buf.ends_with("\n\n") {
                        if !buf.ends_with('\n') {
                            buf.push('\n');
                        }
                        buf.push('\n');
                    }
                    buf.push_str(&text);
                }
                _ => fragments.push((s.layer, text)),
            }
            if let Some((_, buf)) = fragments.last_mut() {
                if !buf.ends_with('\n') {
                    buf.push('\n');
                }
            }
        }
        if !fragments.is_empty() {
            let mut conf = String::new();
            if let Some(header_file) = def_str("header_file") {
                let header = view.opt_str("init_header")?.ok_or_else(|| {
                    view.err(format!(
                        "init `{init}` needs its header `{header_file}`, but the spec has no \
                         `init_header` (the file's text)"
                    ))
                })?;
                conf.push_str(header);
            }
            for (_, f) in &fragments {
                conf.push_str(f);
            }
            let target = config_path(def).unwrap_or_else(|| format!("/etc/{init}.conf"));
            let staged = format!(".ov/init/{init}.conf");
            steps.push(format!(
                "# {}: {} service fragment(s)",
                comment_text(init),
                fragments.len()
            ));
            steps.push(copy_args(&["--chmod=0644".to_string()], &staged, &target));
            files.push((staged, conf.into_bytes()));
            // The image starts its init, so `podman run IMAGE` runs the services.
            if let Some(ep) = def.get("entrypoint").and_then(Json::as_array) {
                if !ep.is_empty() && ep.iter().all(Json::is_string) {
                    steps.push(format!("ENTRYPOINT {}", Json::Array(ep.clone())));
                }
            }
        }
    }

    let units: Vec<&str> = services
        .iter()
        .filter(|s| s.scope() == "system")
        .filter_map(|s| s.packaged())
        .collect();
    // The enable template puts unit names on its command line unquoted.
    if let Some(u) = units.iter().find(|u| !is_package_name(u)) {
        return Err(view.err(format!(
            "service `use_packaged` {u:?} is not a unit name (letters, digits and . _ + - : ~ @ / = , * only)"
        )));
    }
    if !units.is_empty() {
        if let Some(t) = def_str("system_enable_template") {
            let key = format!("init.{init}.system_enable_template");
            let text = render_tmpl(view, &key, t, object([("Units", strings(&units))]), opts)?;
            steps.extend(super::split_instructions(&text));
        }
    }
    if let Some(t) = def_str("post_assembly_template") {
        let key = format!("init.{init}.post_assembly_template");
        let text = render_tmpl(view, &key, t, object(Vec::<(&str, Value)>::new()), opts)?;
        steps.extend(super::split_instructions(&text));
    }
    if steps.is_empty() {
        return Ok(());
    }
    // The parent may end as the image user; init assembly needs root.
    out.step("USER root");
    for s in steps {
        out.step(s);
    }
    for (p, data) in files {
        out.file(p, data);
    }
    Ok(())
}

/// The config file an init's entrypoint reads: the argument after `-c`.
fn config_path(def: &Map<String, Json>) -> Option<String> {
    let args: Vec<&str> = def
        .get("entrypoint")?
        .as_array()?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let i = args.iter().position(|a| *a == "-c")?;
    args.get(i + 1).map(|s| s.to_string())
}

/// `LABEL`s last, as ov writes them: see [`super::labels`].
fn labels(view: &SpecView, name: &str, user: &User, out: &mut Steps) -> Result<(), RenderError> {
    let input = super::labels::LabelInput::read(view, name, user)?;
    for (k, v) in super::labels::labels(&input) {
        out.step(format!("LABEL {}={}", label_key(&k), label_value(&v)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(expose_arg("8080").as_deref(), Some("8080"));
        assert_eq!(expose_arg("tcp:2222").as_deref(), Some("2222"));
        assert_eq!(expose_arg("https:443").as_deref(), Some("443"));
        assert_eq!(expose_arg("udp:53").as_deref(), Some("53/udp"));
        assert_eq!(expose_arg("web"), None);
        let def = serde_json::json!({"entrypoint": ["supervisord", "-n", "-c", "/etc/s.conf"]});
        assert_eq!(
            config_path(def.as_object().unwrap()).as_deref(),
            Some("/etc/s.conf")
        );
    }
}
