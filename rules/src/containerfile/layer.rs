//! A layer node: one layer applied on its parent image. Order: variables,
//! the layer's environment (ov sets every layer's `env:` and `path_append`
//! before any layer's steps, so a layer's own steps see them), OS packages
//! (one RUN per package format, from build.yml's install template), tasks.

use super::accept::{has_control, is_package_name, is_template_value, is_var_name};
use super::env::{env_literal, expand_home};
use super::quote::{comment_text, env_value};
use super::{tasks, RenderError, RenderOpts, Rendered, SpecView, Steps, User};
use crate::template::{self, from_json, object, strings, Value};
use serde_json::{Map, Value as Json};

/// What a layer spec says, read once.
pub(super) struct Layer<'a> {
    pub(super) name: &'a str,
    pub(super) view: SpecView<'a>,
    pub(super) user: User,
    /// Package formats in install order (`context.build`).
    pub(super) build: Vec<&'a str>,
    /// The build.yml distro the formats come from (`context.build_distro`).
    pub(super) distro: Option<&'a str>,
    /// build.yml `distro.<d>.format.<fmt>` definitions.
    pub(super) formats: Option<&'a Map<String, Json>>,
    pub(super) tasks: &'a [Json],
}

impl<'a> Layer<'a> {
    fn read(spec: &'a Json) -> Result<Layer<'a>, RenderError> {
        let name = spec
            .get("layer")
            .and_then(Json::as_str)
            .ok_or_else(|| RenderError::Spec {
                node: "layer".into(),
                message: "spec has no string `layer` (the layer name)".into(),
            })?;
        let view = SpecView {
            node: format!("layer `{name}`"),
            v: spec,
        };
        let context = view.object("context")?;
        let user = User::read(&view, context)?;
        let build = match context.and_then(|c| c.get("build")) {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .map(|f| {
                    f.as_str()
                        .ok_or_else(|| view.err("`context.build` must list strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(view.err("`context.build` must be a list")),
        };
        let distro = context
            .and_then(|c| c.get("build_distro"))
            .and_then(Json::as_str);
        let formats = view.object("formats")?;
        let tasks = view.array("tasks")?;
        Ok(Layer {
            name,
            user,
            build,
            distro,
            formats,
            tasks,
            view,
        })
    }

    /// `distro.<d>.format.<fmt>.<key>`, the build.yml key a template or
    /// setting came from, for messages.
    pub(super) fn format_key(&self, fmt: &str, key: &str) -> String {
        match self.distro {
            Some(d) => format!("distro.{d}.format.{fmt}.{key}"),
            None => format!("format.{fmt}.{key}"),
        }
    }

    /// The first package format the distro defines: its cache mounts serve
    /// root `cmd:` tasks too, as in ov (a `dnf install` in a task reuses
    /// the package cache).
    pub(super) fn primary_format(&self) -> Option<&'a Map<String, Json>> {
        self.build
            .iter()
            .find_map(|f| self.formats?.get(*f)?.as_object())
    }
}

/// Renders a layer node's steps. See the module docs of
/// [`crate::containerfile`] for what the build context holds.
#[cfg(test)]
pub(crate) fn render_layer(spec: &Json, opts: &RenderOpts) -> Result<Rendered, RenderError> {
    render_layer_with(spec, opts, &StageRefs::new())
}

/// Builder name → the image its stage node made, for `COPY --from`. A
/// stage missing here is named by its node id (for `ov image generate`,
/// which shows other nodes by id).
pub type StageRefs = std::collections::BTreeMap<String, String>;

/// [`render_layer`] with the images of the layer's builder stages.
pub(crate) fn render_layer_with(
    spec: &Json,
    opts: &RenderOpts,
    refs: &StageRefs,
) -> Result<Rendered, RenderError> {
    let layer = Layer::read(spec)?;
    let mut out = Steps::default();
    out.step(format!("# Layer: {}", comment_text(layer.name)));
    // The parent may be an image whose last instruction is `USER <uid>`;
    // packages and tasks start as root.
    out.step("USER root");

    let stage_refs = stage_refs(&layer, refs)?;
    copy_stage_outputs(&layer, &stage_refs, &mut out)?;
    builder_env(&layer, &stage_refs, &mut out)?;

    if tasks::uses_arch(&layer)? {
        // ov exports ARCH (amd64/arm64) for `${ARCH}` in task fields; only
        // layers that use it get it, so other layers keep their cache.
        out.step("ARG TARGETARCH");
        out.step("ENV ARCH=${TARGETARCH}");
    }
    env_block(&layer, "var", &mut out)?;
    env_block(&layer, "env", &mut out)?;
    path_append(&layer, &mut out)?;
    packages(&layer, opts, &stage_refs, &mut out)?;
    tasks::render(&layer, opts, &mut out)?;
    inline_builders(&layer, opts, &mut out)?;
    shell_snippets(&layer, &mut out)?;
    out.finish(&layer.view.node)
}

/// The layer's `shell:` block (spec `shell`), as ov writes it after the
/// tasks and inline builders: see [`super::shell`].
fn shell_snippets(layer: &Layer, out: &mut Steps) -> Result<(), RenderError> {
    let Some(v) = layer.view.get("shell") else {
        return Ok(());
    };
    let cfg: super::shell::ShellConfig =
        serde_json::from_value(v.clone()).map_err(|e| layer.view.err(format!("`shell`: {e}")))?;
    super::shell::render(&layer.view.node, layer.name, &cfg, &layer.user.home, out)
}

/// One of the layer's `stages`: builder name → `{node, copy_artifact,
/// copy_binary}`, with the image to copy from.
struct LayerStage<'a> {
    builder: &'a str,
    entry: &'a Map<String, Json>,
    from: String,
}

fn stage_refs<'a>(layer: &Layer<'a>, refs: &StageRefs) -> Result<Vec<LayerStage<'a>>, RenderError> {
    let Some(stages) = layer.view.object("stages")? else {
        return Ok(Vec::new());
    };
    stages
        .iter()
        .map(|(b, entry)| {
            let entry = entry
                .as_object()
                .ok_or_else(|| layer.view.err(format!("`stages.{b}` must be a map")))?;
            let node = entry
                .get("node")
                .and_then(Json::as_str)
                .ok_or_else(|| layer.view.err(format!("`stages.{b}` has no `node`")))?;
            let from = refs.get(b).cloned().unwrap_or_else(|| node.to_string());
            Ok(LayerStage {
                builder: b.as_str(),
                entry,
                from,
            })
        })
        .collect()
}

/// ov copies builder outputs after the image's environment and before any
/// layer's steps; here, where each layer is its own node, that is the start
/// of the layer that triggered the builder.
fn copy_stage_outputs(
    layer: &Layer,
    stages: &[LayerStage],
    out: &mut Steps,
) -> Result<(), RenderError> {
    for LayerStage {
        builder,
        entry,
        from,
    } in stages
    {
        let copies = super::stage::artifact_copies(&layer.view, builder, entry, from, &layer.user)?;
        if !copies.is_empty() {
            out.step(format!("# Copy {} artifacts", comment_text(builder)));
        }
        for c in copies {
            out.step(c);
        }
    }
    Ok(())
}

/// Inline builders (ov's `cargo`): the builder's `install_template` in the
/// layer's own steps, after its tasks, as the image user
/// (`Generator.writeLayerSteps`, step 4). Their templates bind-mount the
/// layer's files `from={{.LayerStage}}`, a stage named after the layer.
fn inline_builders(layer: &Layer, opts: &RenderOpts, out: &mut Steps) -> Result<(), RenderError> {
    let inline = layer.view.array("inline")?;
    if inline.is_empty() {
        return Ok(());
    }
    out.step(format!("USER {}", layer.user.uid));
    for entry in inline {
        let builder = entry
            .get("builder")
            .and_then(Json::as_str)
            .ok_or_else(|| layer.view.err("`inline` entries need a string `builder`"))?;
        let def = entry
            .get("def")
            .and_then(Json::as_object)
            .ok_or_else(|| layer.view.err(format!("`inline.{builder}` has no `def`")))?;
        let text =
            super::stage::render_inline(&layer.view, builder, def, layer.name, &layer.user, opts)?;
        out.text(&text);
    }
    out.step("USER root");
    out.context_stage = Some(layer.name.to_string());
    Ok(())
}

/// The runtime environment a triggered builder contributes (pixi's
/// `runtime_env` and `path_contribution`), which ov adds to the image's
/// `ENV` once any layer triggers the builder (`collectBuilderRuntimeEnv`);
/// here the triggering layer sets it. `~` is the image home.
fn builder_env(layer: &Layer, stages: &[LayerStage], out: &mut Steps) -> Result<(), RenderError> {
    let inline = layer.view.array("inline")?;
    let mut defs: Vec<(&str, &Map<String, Json>)> =
        stages.iter().map(|s| (s.builder, s.entry)).collect();
    for e in inline {
        if let (Some(b), Some(d)) = (
            e.get("builder").and_then(Json::as_str),
            e.get("def").and_then(Json::as_object),
        ) {
            defs.push((b, d));
        }
    }
    defs.sort_by_key(|(b, _)| *b);
    for (builder, def) in defs {
        if let Some(env) = def.get("runtime_env").and_then(Json::as_object) {
            let mut keys: Vec<&String> = env.keys().collect();
            keys.sort();
            for k in keys {
                let what = format!("build.yml `builder.{builder}.runtime_env.{k}`");
                if !is_var_name(k) {
                    return Err(layer.view.err(format!("{what}: not a variable name")));
                }
                let text = super::scalar_text(&env[k])
                    .ok_or_else(|| layer.view.err(format!("{what} must be a string")))?;
                let v = env_value(&expand_home(&text, &layer.user.home))
                    .ok_or_else(|| layer.view.err(format!("{what} has a newline")))?;
                out.step(format!("ENV {k}={v}"));
            }
        }
        let parts: Vec<String> = def
            .get("path_contribution")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|e| {
                e.as_str()
                    .map(|s| expand_home(s, &layer.user.home))
                    .ok_or_else(|| {
                        layer.view.err(format!(
                            "build.yml `builder.{builder}.path_contribution` must list strings"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        if !parts.is_empty() {
            let v = env_value(&format!("{}:${{PATH}}", parts.join(":"))).ok_or_else(|| {
                layer.view.err(format!(
                    "build.yml `builder.{builder}.path_contribution` has a newline"
                ))
            })?;
            out.step(format!("ENV PATH={v}"));
        }
    }
    Ok(())
}

/// `var:` and `env:` maps: one ENV per key, sorted by key so the text does
/// not depend on map order. `env:` values are written as ov writes them:
/// `~` and `$HOME` made the image user's home, other `$` kept literal.
fn env_block(layer: &Layer, key: &str, out: &mut Steps) -> Result<(), RenderError> {
    let Some(map) = layer.view.object(key)? else {
        return Ok(());
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        if !is_var_name(k) {
            return Err(layer.view.err(format!(
                "`{key}` key {k:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )));
        }
        let text = super::scalar_text(&map[k])
            .ok_or_else(|| layer.view.err(format!("`{key}.{k}` must be a string")))?;
        let v = if key == "env" {
            env_literal(&expand_home(&text, &layer.user.home))
        } else {
            env_value(&text)
        };
        let v = v.ok_or_else(|| {
            layer
                .view
                .err(format!("`{key}.{k}` has a newline; ENV cannot hold it"))
        })?;
        out.step(format!("ENV {k}={v}"));
    }
    Ok(())
}

/// `path_append:` entries go in front of `$PATH`, as ov's generator puts
/// them (`ENV PATH="<entries>:${PATH}"`), so a layer's tools win over the
/// base image's.
fn path_append(layer: &Layer, out: &mut Steps) -> Result<(), RenderError> {
    let entries = layer.view.array("path_append")?;
    if entries.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            e.as_str()
                .map(|s| expand_home(s, &layer.user.home))
                .ok_or_else(|| layer.view.err("`path_append` must list strings"))
        })
        .collect::<Result<_, _>>()?;
    let v = env_value(&format!("{}:${{PATH}}", parts.join(":")))
        .ok_or_else(|| layer.view.err("`path_append` has a newline"))?;
    out.step(format!("ENV PATH={v}"));
    Ok(())
}

/// Section fields with the names ov's install context gives them.
const SECTION_FIELDS: &[(&str, &str)] = &[
    ("package", "Packages"),
    ("repo", "Repos"),
    ("option", "Options"),
    ("options", "Options"),
    ("copr", "Copr"),
    ("module", "Modules"),
    ("exclude", "Exclude"),
    ("keys", "Keys"),
];

/// `foo_bar` → `FooBar`: how a section field ov has no name for reaches a
/// custom template.
fn go_name(key: &str) -> String {
    key.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// One RUN per package format with packages, in the image's format order.
fn packages(
    layer: &Layer,
    opts: &RenderOpts,
    stages: &[LayerStage],
    out: &mut Steps,
) -> Result<(), RenderError> {
    let Some(sections) = layer.view.object("packages")? else {
        return Ok(());
    };
    for fmt in &layer.build {
        let Some(section) = sections.get(*fmt) else {
            continue;
        };
        let section = section
            .as_object()
            .ok_or_else(|| layer.view.err(format!("`packages.{fmt}` must be a map")))?;
        let packages = list_of_text(layer, fmt, section.get("package"))?;
        section_text_is_safe(layer, fmt, section, &packages)?;
        if packages.is_empty() {
            // ov installs nothing (and adds no repos) for a section
            // without packages.
            continue;
        }
        let def = layer
            .formats
            .and_then(|f| f.get(*fmt))
            .and_then(Json::as_object)
            .ok_or_else(|| {
                layer.view.err(format!(
                    "it installs `{fmt}` packages but build.yml has no `{}`",
                    layer.format_key(fmt, "install_template")
                ))
            })?;
        let key = layer.format_key(fmt, "install_template");
        let text = def
            .get("install_template")
            .and_then(Json::as_str)
            .ok_or_else(|| layer.view.err(format!("build.yml has no string `{key}`")))?;
        // A format with its own builder stage (aur) copies the stage's
        // packages in with `COPY --from={{.StageName}}`.
        let stage = stages
            .iter()
            .find(|s| s.builder == *fmt)
            .map(|s| s.from.as_str());
        let data = install_context(layer, section, def, packages, stage.unwrap_or(""));
        let rendered = template::render(&key, text, data, opts.helpers()).map_err(|source| {
            RenderError::Template {
                node: layer.view.node.clone(),
                source,
            }
        })?;
        out.text(&rendered);
    }
    Ok(())
}

/// Packages and every other section value reach the install template's
/// shell, quoted or not as the template's author chose: a package name is
/// one plain shell word, every other value a [`is_template_value`].
fn section_text_is_safe(
    layer: &Layer,
    fmt: &str,
    section: &Map<String, Json>,
    packages: &[String],
) -> Result<(), RenderError> {
    if let Some(p) = packages.iter().find(|p| !is_package_name(p)) {
        return Err(layer.view.err(format!(
            "`packages.{fmt}` entry {p:?} is not a package name (letters, digits and . _ + - : ~ @ / = , * only)"
        )));
    }
    fn unsafe_text(v: &Json) -> bool {
        match v {
            Json::String(s) => !is_template_value(s),
            Json::Array(a) => a.iter().any(unsafe_text),
            Json::Object(o) => o.iter().any(|(k, v)| has_control(k) || unsafe_text(v)),
            _ => false,
        }
    }
    if let Some((k, _)) = section.iter().find(|(_, v)| unsafe_text(v)) {
        return Err(layer.view.err(format!(
            "`packages.{fmt}.{k}` holds a quote, line break, `$(`, `;`, `&`, `|`, `<`, `>` or \
             another character that would break out of the install command"
        )));
    }
    Ok(())
}

fn list_of_text(layer: &Layer, fmt: &str, v: Option<&Json>) -> Result<Vec<String>, RenderError> {
    match v {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| {
                super::scalar_text(i).ok_or_else(|| {
                    layer
                        .view
                        .err(format!("`packages.{fmt}` lists a non-scalar"))
                })
            })
            .collect(),
        Some(_) => Err(layer
            .view
            .err(format!("`packages.{fmt}.package` must be a list"))),
    }
}

/// ov's `InstallContext`: every field present (so a template typo is an
/// error, as with the Go struct), section fields under ov's names, plus
/// any other section field under its Go-style name.
fn install_context(
    layer: &Layer,
    section: &Map<String, Json>,
    def: &Map<String, Json>,
    packages: Vec<String>,
    stage: &str,
) -> Value {
    let empty = || Value::Array(Vec::new());
    let mut fields: Vec<(String, Value)> = vec![
        (
            "CacheMounts".into(),
            def.get("cache_mount").map(from_json).unwrap_or_else(empty),
        ),
        ("Packages".into(), strings(&packages)),
        ("Repos".into(), empty()),
        ("Options".into(), empty()),
        ("Copr".into(), empty()),
        ("Modules".into(), empty()),
        ("Exclude".into(), empty()),
        ("Keys".into(), empty()),
        ("StageName".into(), Value::from(stage)),
        ("BuilderRef".into(), Value::from("")),
        ("User".into(), Value::from(layer.user.name.as_str())),
        ("UID".into(), Value::from(layer.user.uid)),
        ("GID".into(), Value::from(layer.user.gid)),
        ("Home".into(), Value::from(layer.user.home.as_str())),
    ];
    // Known fields first, then the rest in key order, so the result does
    // not depend on the section's key order.
    let mut keys: Vec<&String> = section.keys().collect();
    keys.sort();
    for k in keys {
        if k == "package" {
            continue;
        }
        let v = &section[k];
        let name = SECTION_FIELDS
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| go_name(k));
        let value = match v {
            Json::Array(items) if k != "repo" => strings(
                items
                    .iter()
                    .map(|i| super::scalar_text(i).unwrap_or_else(|| i.to_string())),
            ),
            other => from_json(other),
        };
        match fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => fields.push((name, value)),
        }
    }
    object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_names() {
        assert_eq!(go_name("signed_by"), "SignedBy");
        assert_eq!(go_name("keys"), "Keys");
    }
}
