//! Containerfile steps for `layer` and `image` nodes, rendered from the
//! specs the planner builds ([`LayerSpec`], [`ImageSpec`]).
//!
//! A node is built `FROM` its parent (the executor writes that line), so
//! the steps here never contain `FROM` and never refer to other stages: a
//! layer node's build context is the layer's own directory plus the
//! [`Rendered::context_files`] staged next to it; an image node's context
//! is only its staged files. That is why `write:` content, supervisord
//! configs and the like are returned as files instead of ov's extra
//! `FROM scratch` stages.
//!
//! Rendering is a pure function of the spec and [`RenderOpts`]: the same
//! inputs give the same bytes, so the output can be hashed.

pub mod accept;
pub mod env;
mod image;
mod labels;
mod layer;
pub mod preamble;
pub(crate) mod quote;
pub mod shell;
pub mod stage;
mod tasks;

pub use labels::{check_label_field, LABEL_FIELDS};

use crate::rule::{ImageSpec, LayerSpec, StageSpec};
use crate::template::TemplateError;
pub use layer::StageRefs;
pub use preamble::render_preamble;
use serde_json::Value as Json;
pub use stage::StagePlace;

/// Renders a layer node's steps. See the module docs for what the build
/// context holds.
pub fn render_layer(spec: &LayerSpec, opts: &RenderOpts) -> Result<Rendered, RenderError> {
    render_layer_with(spec, opts, &StageRefs::new())
}

/// [`render_layer`] with the images its builder stages made, for their
/// `COPY --from` (without one, a stage is named by its node id, as
/// `ov image generate` shows other nodes).
pub fn render_layer_with(
    spec: &LayerSpec,
    opts: &RenderOpts,
    refs: &StageRefs,
) -> Result<Rendered, RenderError> {
    layer::render_layer_with(&as_json(spec, "layer", &spec.layer)?, opts, refs)
}

/// Renders a builder stage node's whole Containerfile (see [`stage`]).
pub fn render_stage(
    spec: &StageSpec,
    place: StagePlace,
    opts: &RenderOpts,
) -> Result<String, RenderError> {
    stage::render_stage(&as_json(spec, "stage", &spec.layer)?, place, opts)
}

/// Renders an image node's steps.
pub fn render_image(spec: &ImageSpec, opts: &RenderOpts) -> Result<Rendered, RenderError> {
    image::render_image(&as_json(spec, "image", &spec.name)?, opts)
}

/// The spec as the JSON the renderer reads: the same text that is hashed
/// into the node's key, so rendering sees exactly what was keyed.
fn as_json(spec: &impl serde::Serialize, kind: &str, name: &str) -> Result<Json, RenderError> {
    serde_json::to_value(spec).map_err(|e| RenderError::Spec {
        node: format!("{kind} `{name}`"),
        message: e.to_string(),
    })
}

/// Engine quirks that change the rendered text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOpts {
    /// Keep `sharing=locked` on cache mounts. False on podman 4.3.x: its
    /// buildah hangs on a RUN with two `sharing=locked` cache mounts
    /// (buildah #4342), so the mounts are rendered shared there.
    pub locked_cache_mounts: bool,
}

impl Default for RenderOpts {
    /// Locked cache mounts, as ov renders them: right for every engine
    /// without the buildah bug.
    fn default() -> Self {
        RenderOpts {
            locked_cache_mounts: true,
        }
    }
}

impl RenderOpts {
    pub(crate) fn helpers(&self) -> crate::template::Helpers {
        crate::template::Helpers {
            locked_cache_mounts: self.locked_cache_mounts,
        }
    }
}

/// What a node adds to its parent image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Containerfile instructions in order, without `FROM`. One entry is one
    /// instruction (continuation lines included) or one comment line; no
    /// entry ends with a newline.
    pub steps: Vec<String>,
    /// Files to put in the build context, by path inside the context,
    /// sorted by path, each path once.
    pub context_files: Vec<(String, Vec<u8>)>,
    /// A stage of that name holding the build context, which the steps
    /// bind-mount with `from=` (ov's `FROM scratch AS <layer>`; an inline
    /// builder's `.LayerStage`). The executor writes it before `FROM`.
    pub context_stage: Option<String>,
}

impl Rendered {
    /// The named context stage, as Containerfile text to put first.
    pub fn context_stage_text(&self) -> String {
        match &self.context_stage {
            Some(name) => format!("FROM scratch AS {name}\nCOPY ./ /\n\n"),
            None => String::new(),
        }
    }

    /// The steps as Containerfile text (one per line, newline-terminated).
    pub fn containerfile(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(s);
            out.push('\n');
        }
        out
    }
}

/// Why a spec could not be rendered. Every variant names the node (layer or
/// image) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The spec is not shaped as the planner builds it (a key missing or of
    /// the wrong type).
    #[error("{node}: {message}")]
    Spec {
        /// `layer \`x\`` or `image \`x\``.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A build.yml template failed to parse or render.
    #[error("{node}: {source}")]
    Template {
        /// `layer \`x\`` or `image \`x\``.
        node: String,
        /// The template (its build.yml key) and gtmpl's message.
        #[source]
        source: TemplateError,
    },
    /// A task is missing a field or has a bad value.
    #[error("layer `{layer}`: task[{index}] (`{verb}`): {message}")]
    Task {
        /// The layer.
        layer: String,
        /// The task's index in the layer's `task:` list.
        index: usize,
        /// The task's verb.
        verb: String,
        /// What is wrong.
        message: String,
    },
    /// A task verb ov's format does not document.
    #[error(
        "layer `{layer}`: task[{index}] has unknown verb `{verb}` (known: cmd, mkdir, copy, \
         write, link, download, setcap, build)"
    )]
    UnknownVerb {
        /// The layer.
        layer: String,
        /// The task's index in the layer's `task:` list.
        index: usize,
        /// The verb found.
        verb: String,
    },
    /// Something the format allows that this renderer does not do yet.
    #[error("{node}: {message}")]
    Unsupported {
        /// `layer \`x\`` or `image \`x\``.
        node: String,
        /// What is not supported.
        message: String,
    },
}

/// Collects steps and context files.
#[derive(Default)]
struct Steps {
    steps: Vec<String>,
    files: std::collections::BTreeMap<String, Vec<u8>>,
    context_stage: Option<String>,
}

impl Steps {
    fn step(&mut self, s: impl Into<String>) {
        self.steps.push(s.into());
    }

    /// Adds rendered template text, split into instructions.
    fn text(&mut self, text: &str) {
        self.steps.extend(split_instructions(text));
    }

    /// Stages `data` at `path` in the build context.
    fn file(&mut self, path: String, data: Vec<u8>) {
        self.files.insert(path, data);
    }

    /// The steps, each checked to be the one instruction (or comment) it
    /// was built as: a last guard, should a project string reach a step
    /// unescaped, against it ending the line and starting another.
    fn finish(self, node: &str) -> Result<Rendered, RenderError> {
        for s in &self.steps {
            if s.contains('\0') || split_instructions(s).len() != 1 {
                return Err(RenderError::Spec {
                    node: node.to_string(),
                    message: format!(
                        "a value would split a step into several instructions: {}",
                        s.escape_debug()
                    ),
                });
            }
        }
        Ok(Rendered {
            steps: self.steps,
            context_files: self.files.into_iter().collect(),
            context_stage: self.context_stage,
        })
    }
}

/// Splits Containerfile text into instructions the way the Containerfile
/// parser reads it: a line ending in `\` continues onto the next, and
/// comment or blank lines inside a continuation do not end it. Comment
/// lines outside an instruction are steps of their own; blank lines are
/// dropped.
fn split_instructions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if continuing {
            if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(line);
            }
            if !(trimmed.is_empty() || trimmed.starts_with('#')) {
                continuing = line.trim_end().ends_with('\\');
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        out.push(line.trim_end().to_string());
        if !trimmed.starts_with('#') {
            continuing = line.trim_end().ends_with('\\');
        }
    }
    out
}

/// Read-only access to a spec, with errors that name the node.
struct SpecView<'a> {
    node: String,
    v: &'a Json,
}

impl<'a> SpecView<'a> {
    fn err(&self, message: impl Into<String>) -> RenderError {
        RenderError::Spec {
            node: self.node.clone(),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, RenderError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(format!("spec `{key}` must be a string"))),
        }
    }

    fn array(&self, key: &str) -> Result<&'a [Json], RenderError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Json::Array(a)) => Ok(a),
            Some(_) => Err(self.err(format!("spec `{key}` must be a list"))),
        }
    }

    fn object(&self, key: &str) -> Result<Option<&'a serde_json::Map<String, Json>>, RenderError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.err(format!("spec `{key}` must be a map"))),
        }
    }
}

/// A JSON scalar as text (ov's `fmt.Sprint` of YAML scalars).
fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The image user: name, ids and home. Home is `context.home` when the
/// planner gives it, else `/root` for root and `/home/<user>` otherwise
/// (ov's rule when the base image does not say).
#[derive(Clone, Debug)]
struct User {
    name: String,
    uid: u64,
    gid: u64,
    home: String,
}

impl User {
    fn read(
        view: &SpecView,
        obj: Option<&serde_json::Map<String, Json>>,
    ) -> Result<User, RenderError> {
        let get = |k: &str| obj.and_then(|o| o.get(k)).filter(|v| !v.is_null());
        let name = match get("user") {
            None => "user".to_string(),
            Some(v) => scalar_text(v).ok_or_else(|| view.err("`user` must be a string"))?,
        };
        let id = |k: &str| -> Result<u64, RenderError> {
            match get(k) {
                None => Ok(1000),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| view.err(format!("`{k}` must be a number"))),
            }
        };
        let home = match get("home").and_then(Json::as_str) {
            Some(h) => h.to_string(),
            None if name == "root" => "/root".to_string(),
            None => format!("/home/{name}"),
        };
        Ok(User {
            uid: id("uid")?,
            gid: id("gid")?,
            name,
            home,
        })
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
