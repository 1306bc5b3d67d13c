//! Builder stages: a build.yml `builder.<name>.stage_template` run for one
//! layer on the builder image the image's `builder:` map names, whose
//! outputs (`copy_artifact`, `copy_binary`) the layer then copies in.
//!
//! ov writes each stage into the image's one Containerfile
//! (`Generator.generateContainerfile`, the loop over
//! `BuilderConfig.BuilderNames()` calling `buildStageContext` and
//! `RenderTemplate(<builder>-stage)`). Here a stage is its own node: its
//! Containerfile is a scratch stage named after the layer holding the
//! layer's directory (ov's `FROM scratch AS <layer>`, which templates reach
//! as `.LayerStage`), then the rendered template. The template's `FROM
//! {{.BuilderRef}}` names the builder node's image and `.CopySrc` is the
//! build context root, which is the layer's directory.
//!
//! A stage spec, as the planner builds it:
//!
//! ```json
//! { "builder": "npm", "layer": "hello", "builder_node": "image:npm-builder",
//!   "def": { …build.yml builder.npm… },
//!   "context": { "user": "user", "uid": 1000, "gid": 1000, "home": "/home/user" },
//!   "layer_files": ["package.json"],
//!   "section": { "package": […], "option": […] } }
//! ```
//!
//! `layer_files` are the layer's root files the definition asks about
//! (detect files, their `.lock`, `pixi.lock`, the build script); `section`
//! is the layer's package section of the builder's `detect_config` format.

use super::accept::{is_package_name, is_stage_name, is_template_value};
use super::quote::comment_text;
use super::{scalar_text, RenderError, RenderOpts, SpecView, User};
use crate::template::{self, from_json, object, strings, Value};
use serde_json::{Map, Value as Json};

/// Where a stage's template points that differs between ov's one
/// Containerfile and our node: the builder image and the layer's files.
#[derive(Clone, Copy, Debug)]
pub struct StagePlace<'a> {
    /// `.BuilderRef`: the builder image (ov: its full tag; here its id).
    pub builder_ref: &'a str,
    /// `.CopySrc`: the layer's directory in the build context (ov:
    /// `layers/<name>`; here `.`, the context is the layer's directory).
    pub copy_src: &'a str,
}

/// The stage's name, as ov names it (`<layer>-<builder>-build`).
pub fn stage_name(layer: &str, builder: &str) -> String {
    format!("{layer}-{builder}-build")
}

/// The layer and builder names become stage names (`<layer>`,
/// `<layer>-<builder>-build`).
pub(super) fn check_stage_names(
    view: &SpecView,
    layer: &str,
    builder: &str,
) -> Result<(), RenderError> {
    for name in [layer, &stage_name(layer, builder)] {
        if !is_stage_name(name) {
            return Err(view.err(format!(
                "`{name}` is not a stage name (lower-case letters, digits, `-`, `_`, `.`, \
                 starting with a letter); a layer that triggers a builder names a stage \
                 after itself"
            )));
        }
    }
    Ok(())
}

/// A stage spec, read once.
struct Stage<'a> {
    builder: &'a str,
    layer: &'a str,
    def: &'a Map<String, Json>,
    user: User,
    files: Vec<&'a str>,
    section: Option<&'a Map<String, Json>>,
    view: SpecView<'a>,
}

impl<'a> Stage<'a> {
    fn read(spec: &'a Json) -> Result<Stage<'a>, RenderError> {
        let text = |k: &str| {
            spec.get(k)
                .and_then(Json::as_str)
                .ok_or_else(|| RenderError::Spec {
                    node: "stage".into(),
                    message: format!("spec has no string `{k}`"),
                })
        };
        let (builder, layer) = (text("builder")?, text("layer")?);
        let view = SpecView {
            node: format!("stage `{builder}` of layer `{layer}`"),
            v: spec,
        };
        check_stage_names(&view, layer, builder)?;
        let def = view
            .object("def")?
            .ok_or_else(|| view.err("spec has no `def` (the build.yml builder)"))?;
        let user = User::read(&view, view.object("context")?)?;
        let files = view
            .array("layer_files")?
            .iter()
            .map(|f| {
                f.as_str()
                    .ok_or_else(|| view.err("`layer_files` must list strings"))
            })
            .collect::<Result<_, _>>()?;
        let section = view.object("section")?;
        Ok(Stage {
            builder,
            layer,
            def,
            user,
            files,
            section,
            view,
        })
    }

    fn key(&self, field: &str) -> String {
        format!("builder.{}.{field}", self.builder)
    }

    fn def_str(&self, field: &str) -> Result<Option<&'a str>, RenderError> {
        match self.def.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(self
                .view
                .err(format!("build.yml `{}` must be a string", self.key(field)))),
        }
    }

    fn has(&self, file: &str) -> bool {
        self.files.contains(&file)
    }

    fn template_err(&self, source: template::TemplateError) -> RenderError {
        RenderError::Template {
            node: self.view.node.clone(),
            source,
        }
    }
}

/// Renders the stage's whole Containerfile: the layer's scratch stage,
/// then the builder's stage template. Its last stage is the stage, so
/// building it yields the image the layer copies from.
pub fn render_stage(
    spec: &Json,
    place: StagePlace,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    let stage = Stage::read(spec)?;
    let mut out = format!(
        "# Builder stage: {} for layer {}\nFROM scratch AS {}\nCOPY {}/ /\n\n",
        comment_text(stage.builder),
        comment_text(stage.layer),
        stage.layer,
        place.copy_src,
    );
    out.push_str(&render_template(&stage, place, opts)?);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Only the rendered `stage_template`: the text ov writes for this stage.
pub fn render_stage_template(
    spec: &Json,
    place: StagePlace,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    render_template(&Stage::read(spec)?, place, opts)
}

fn render_template(
    stage: &Stage,
    place: StagePlace,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    let key = stage.key("stage_template");
    let text = stage
        .def_str("stage_template")?
        .ok_or_else(|| stage.view.err(format!("build.yml has no `{key}`")))?;
    let data = stage_context(stage, place, opts)?;
    template::render(&key, text, data, opts.helpers()).map_err(|e| stage.template_err(e))
}

/// ov's `BuildStageContext` (`Generator.buildStageContext`): every field
/// present, so a template typo is an error as with the Go struct.
fn stage_context(
    stage: &Stage,
    place: StagePlace,
    opts: &RenderOpts,
) -> Result<Value, RenderError> {
    let def = stage.def;
    let detect: Vec<&str> = def
        .get("detect_file")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let install = def.get("install_command").and_then(Json::as_object);
    // Manifest, lock and install command only for file-detected builders
    // with install commands (pixi), as in ov.
    let (mut manifest, mut has_lock, mut install_cmd) = ("", false, String::new());
    if let Some(cmds) = install.filter(|c| !c.is_empty() && !detect.is_empty()) {
        manifest = detect.iter().copied().find(|f| stage.has(f)).unwrap_or("");
        has_lock = stage.has(&format!("{manifest}.lock"))
            || (manifest == "pixi.toml" && stage.has("pixi.lock"));
        let cmd = |k: &str| cmds.get(k).and_then(Json::as_str).map(str::to_string);
        install_cmd = has_lock
            .then(|| cmd(&format!("{manifest}+lock")))
            .flatten()
            .or_else(|| cmd(manifest))
            .unwrap_or_default();
    }
    let build_script = stage
        .def_str("build_script")?
        .filter(|s| !s.is_empty() && stage.has(s));
    let (packages, options) = section_lists(stage)?;
    let fields = |manylinux: String| {
        object([
            ("BuilderRef", Value::from(place.builder_ref)),
            (
                "StageName",
                Value::from(stage_name(stage.layer, stage.builder)),
            ),
            ("LayerStage", Value::from(stage.layer)),
            ("CopySrc", Value::from(place.copy_src)),
            ("UID", Value::from(stage.user.uid)),
            ("GID", Value::from(stage.user.gid)),
            ("Home", Value::from(stage.user.home.as_str())),
            ("User", Value::from(stage.user.name.as_str())),
            ("Manifest", Value::from(manifest)),
            ("HasLockFile", Value::Bool(has_lock)),
            ("InstallCmd", Value::from(install_cmd.as_str())),
            ("ManylinuxFix", Value::from(manylinux)),
            (
                "CacheMounts",
                def.get("cache_mount")
                    .map(from_json)
                    .unwrap_or_else(|| Value::Array(Vec::new())),
            ),
            ("Packages", strings(&packages)),
            ("Options", strings(&options)),
            ("HasBuildScript", Value::Bool(build_script.is_some())),
            ("BuildScript", Value::from(build_script.unwrap_or(""))),
        ])
    };
    // ov renders `manylinux_fix` with the same context (ManylinuxFix still
    // empty) and keeps it only when that succeeds.
    let mut manylinux = String::new();
    if let Some(fix) = stage.def_str("manylinux_fix")?.filter(|f| !f.is_empty()) {
        if !manifest.is_empty() {
            manylinux = template::render(
                &stage.key("manylinux_fix"),
                fix,
                fields(String::new()),
                opts.helpers(),
            )
            .unwrap_or_default();
        }
    }
    Ok(fields(manylinux))
}

/// `Packages` and `Options` of a config-detected builder (aur): the layer's
/// section of that format. Both reach the template's shell unquoted.
fn section_lists(stage: &Stage) -> Result<(Vec<String>, Vec<String>), RenderError> {
    let Some(section) = stage.section else {
        return Ok(Default::default());
    };
    let list = |k: &str| -> Result<Vec<String>, RenderError> {
        match section.get(k) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| {
                    scalar_text(v)
                        .ok_or_else(|| stage.view.err(format!("`section.{k}` lists a non-scalar")))
                })
                .collect(),
            Some(_) => Err(stage.view.err(format!("`section.{k}` must be a list"))),
        }
    };
    let packages = list("package")?;
    if let Some(p) = packages.iter().find(|p| !is_package_name(p)) {
        return Err(stage
            .view
            .err(format!("package {p:?} is not a package name")));
    }
    // ov reads `options`; the singular is the current spelling.
    let mut options = list("option")?;
    options.extend(list("options")?);
    if let Some(o) = options.iter().find(|o| !is_template_value(o)) {
        return Err(stage.view.err(format!(
            "option {o:?} holds a character that would break out of the command"
        )));
    }
    Ok((packages, options))
}

/// An inline builder's `install_template`, rendered with what ov's
/// `writeLayerSteps` gives it: `.LayerStage`, `.UID`, `.GID` and
/// `.CacheMounts`, every other field of `BuildStageContext` empty.
pub(super) fn render_inline(
    view: &SpecView,
    builder: &str,
    def: &Map<String, Json>,
    layer: &str,
    user: &User,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    check_stage_names(view, layer, builder)?;
    let key = format!("builder.{builder}.install_template");
    let text = def
        .get("install_template")
        .and_then(Json::as_str)
        .ok_or_else(|| view.err(format!("build.yml has no string `{key}`")))?;
    let empty = || Value::Array(Vec::new());
    let data = object([
        ("BuilderRef", Value::from("")),
        ("StageName", Value::from("")),
        ("LayerStage", Value::from(layer)),
        ("CopySrc", Value::from("")),
        ("UID", Value::from(user.uid)),
        ("GID", Value::from(user.gid)),
        ("Home", Value::from("")),
        ("User", Value::from("")),
        ("Manifest", Value::from("")),
        ("HasLockFile", Value::Bool(false)),
        ("InstallCmd", Value::from("")),
        ("ManylinuxFix", Value::from("")),
        (
            "CacheMounts",
            def.get("cache_mount").map(from_json).unwrap_or_else(empty),
        ),
        ("Packages", empty()),
        ("Options", empty()),
        ("HasBuildScript", Value::Bool(false)),
        ("BuildScript", Value::from("")),
    ]);
    template::render(&key, text, data, opts.helpers()).map_err(|source| RenderError::Template {
        node: view.node.clone(),
        source,
    })
}

/// The layer's copies of a stage's outputs, as ov writes them after the
/// image's environment ("Copy <builder> artifacts" in
/// `Generator.generateContainerfile`): each `copy_artifact` with
/// `{{.Home}}` replaced by the image home (ov's `expandBuilderPath`),
/// owned by the image user when `chown`, then `copy_binary`. `from` is the
/// stage's image. `entry` is the layer spec's `stages.<builder>`.
pub(super) fn artifact_copies(
    view: &SpecView,
    builder: &str,
    entry: &Map<String, Json>,
    from: &str,
    user: &User,
) -> Result<Vec<String>, RenderError> {
    let path = |v: Option<&Json>, what: &str| -> Result<String, RenderError> {
        let s = v.and_then(Json::as_str).ok_or_else(|| {
            view.err(format!(
                "build.yml `builder.{builder}.{what}` needs string `src` and `dst`"
            ))
        })?;
        let s = s.replace("{{.Home}}", &user.home);
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(view.err(format!(
                "build.yml `builder.{builder}.{what}` path {s:?} is empty or has a space or \
                 line break, which COPY cannot take unquoted"
            )));
        }
        Ok(s)
    };
    let mut out = Vec::new();
    let arts = match entry.get("copy_artifact") {
        None | Some(Json::Null) => &[][..],
        Some(Json::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(view.err(format!(
                "build.yml `builder.{builder}.copy_artifact` must be a list"
            )))
        }
    };
    for a in arts {
        let src = path(a.get("src"), "copy_artifact")?;
        let dst = path(a.get("dst"), "copy_artifact")?;
        if a.get("chown").and_then(Json::as_bool) == Some(true) {
            out.push(format!(
                "COPY --from={from} --chown={}:{} {src} {dst}",
                user.uid, user.gid
            ));
        } else {
            out.push(format!("COPY --from={from} {src} {dst}"));
        }
    }
    if let Some(b) = entry.get("copy_binary").filter(|b| !b.is_null()) {
        let src = path(b.get("src"), "copy_binary")?;
        let dst = path(b.get("dst"), "copy_binary")?;
        out.push(format!("COPY --from={from} {src} {dst}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
