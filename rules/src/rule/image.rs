//! `image`: finish an image on its last layer (ENV, EXPOSE, init assembly,
//! USER, labels). Its user-facing tag is the build driver's to apply: for
//! `tag: auto` it is the run's calver, which is no part of the node's key.

use super::layer::build_steps;
use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::render_image;
use crate::engine::ContextTar;
use crate::NodeKind;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};

/// An image node's spec: the image finished on its last layer node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// The image's name.
    pub name: String,
    /// The node it is built `FROM` (its last layer node, or its base).
    pub parent: String,
    /// The user's tag, `<registry>/<name>:<tag>`, moved to every build.
    pub tag: String,
    /// The image after base-chain resolution.
    pub resolved: Resolved,
    /// The init system (a build.yml `init` name), if the image has one.
    pub init: Option<String>,
    /// build.yml `init.<init>`, as written.
    pub init_def: Option<Json>,
    /// The text of the init's header file (its text, not its name, is an
    /// ingredient); `None` when there is none or it could not be read.
    pub init_header: Option<String>,
    /// Merged layer capabilities.
    pub capabilities: Capabilities,
    /// `eval:` checks of the image and its layers, for the label.
    pub eval: Vec<Json>,
    /// Every service of the image's layers, each with its `layer`.
    pub services: Vec<Json>,
    /// The image entry's runtime metadata, with `port` and `network`
    /// falling back to `defaults` as ov resolves them (the labels read it).
    pub meta: IndexMap<String, Json>,
    /// The URL of the image's skill page, when the project has one, for
    /// its label. Left out of the spec when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<String>,
    /// The image entry's `produce:`, for its label.
    pub produce: Vec<String>,
    /// The image entry's own `eval:` checks, for its label.
    pub image_eval: Vec<Json>,
    /// What the labels need of each of the image's layers, in install order.
    pub label_layers: Vec<LabelLayer>,
    /// The `env:` of each layer the image installs itself, in install order
    /// (a later layer wins); its base image holds the rest, expanded for
    /// its own user.
    pub env: Vec<IndexMap<String, String>>,
    /// Every layer's `port:`.
    pub port: Vec<String>,
}

/// The image as resolved: the fields rendering reads are typed, the rest
/// (base chain, closure…) is kept as resolution wrote it, for labels and
/// the key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The image user.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// Its home: `WORKDIR`, and what `~` and `$HOME` in `env:` expand to.
    pub home: String,
    /// The user is the distro's `base_user`, which the base image ships.
    pub user_adopted: bool,
    /// `registry`.
    pub registry: Option<String>,
    /// The distro tags.
    pub distro: Vec<String>,
    /// The package formats.
    pub build: Vec<String>,
    /// Every other field of the resolved image.
    #[serde(flatten)]
    pub rest: Map<String, Json>,
}

/// One layer as the image's labels see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelLayer {
    /// The layer's name.
    pub name: String,
    /// Whether the image installs it itself (not through its base).
    pub own: bool,
    /// Its layer.yml fields that labels carry
    /// ([`LABEL_FIELDS`](crate::containerfile::LABEL_FIELDS), `shell`,
    /// `port`, `env`, `path_append`, `service`, `eval`), only those it
    /// has, under their own names, as the loader checked them. Shared by
    /// every image that lists the layer.
    #[serde(flatten)]
    pub fields: std::sync::Arc<Map<String, Json>>,
}

/// Capabilities the image's layers ask for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Keep `USER root` at the end (bootc images).
    pub preserve_user: bool,
    /// Extra OCI labels.
    pub oci_label: Map<String, Json>,
}

impl Rule for ImageSpec {
    const KIND: NodeKind = NodeKind::Image;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Engine
    }

    fn restore(&self) -> super::Restore {
        // Stored as OCI parts: a hit whose image left the engine loads them.
        super::Restore::Oci
    }

    fn tags_node_image(&self) -> bool {
        true
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        run(self, ctx).await
    }
}

async fn run(spec: &ImageSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let tag = &spec.tag;
    let opts = ctx.quirks.render_opts();
    let rendered = render_image(spec, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
    let what = format!("image `{}`", spec.name);
    let mut out = build_steps(ctx, &what, &spec.parent, rendered, ContextTar::new()).await?;
    out.meta = json!({ "tag": tag, "node_tag": out.meta.get("tag") });
    Ok(out)
}
