//! `layer`: one layer applied on its parent image. The layer's directory is
//! the build context; its Containerfile steps come from
//! [`render_layer`](crate::containerfile::render_layer).

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::{render_layer, RenderOpts, Rendered};
use crate::engine::{BuildRequest, ContextTar, EngineError};
use crate::NodeKind;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};

/// A layer node's spec: one layer applied on one parent in one image
/// context. Images whose chains ask for the same application share it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// The layer's name.
    pub layer: String,
    /// The node it is built `FROM` (one of its dependencies).
    pub parent: String,
    /// What of the image the layer's rendering depends on.
    pub context: LayerContext,
    /// The layer's package sections per package format (`rpm`, `deb`…),
    /// already chosen for the image's distro: `package`, `repo`, `copr`….
    pub packages: Map<String, Json>,
    /// build.yml `distro.<d>.format.<fmt>` for each of the image's formats
    /// (install templates, cache mounts), as written.
    pub formats: Map<String, Json>,
    /// The layer's `task:` steps, as the loader checked them.
    pub tasks: Vec<Json>,
    /// `var:`.
    pub var: IndexMap<String, String>,
    /// `env:`.
    pub env: IndexMap<String, String>,
    /// `path_append:`.
    pub path_append: Vec<String>,
    /// build.yml builder stages the layer triggers → the builder image the
    /// image's `builder:` map names for it (`None`: it names none).
    pub builders: BTreeMap<String, Option<String>>,
}

/// The image context a layer node is rendered in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerContext {
    /// The image's distro tags (`debian:12`, `debian`).
    pub distro: Vec<String>,
    /// Its package formats, in install order.
    pub build: Vec<String>,
    /// The image user.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// `auto`, `adopt` or `create`.
    pub user_policy: String,
    /// The build.yml distro the formats come from.
    pub build_distro: Option<String>,
}

impl Rule for LayerSpec {
    const KIND: NodeKind = NodeKind::Layer;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Engine
    }

    fn tags_node_image(&self) -> bool {
        true
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        run(self, ctx).await
    }
}

/// Builds `FROM <parent>` plus `rendered` on the context `context`, tags it
/// with the node's tag and returns the image. Shared by layer and image nodes.
pub(super) async fn build_steps(
    ctx: &mut ExecCtx<'_>,
    what: &str,
    parent: &str,
    rendered: Rendered,
    mut context: ContextTar,
) -> Result<NodeOutput, ExecError> {
    let parent_img = ctx.dep_image(parent)?.clone();
    let mut containerfile = format!("FROM {}\n", parent_img.hex());
    for step in &rendered.steps {
        containerfile.push_str(step);
        containerfile.push('\n');
    }
    for (path, data) in &rendered.context_files {
        context.add_file(path, data, 0o644)?;
    }
    let tag = ctx.node_tag();
    let mut log = String::new();
    let on_line = &mut *ctx.on_line;
    let mut sink = |l: &str| {
        log.push_str(l);
        log.push('\n');
        on_line(l);
    };
    let labels = HashMap::from([(
        crate::images::NODE_LABEL.to_string(),
        ctx.node_id.to_string(),
    )]);
    let result = ctx
        .engine
        .build(
            BuildRequest {
                containerfile: containerfile.clone(),
                context,
                tag: tag.clone(),
                labels,
            },
            ctx.cancel,
            &mut sink,
        )
        .await;
    let id = match result {
        Ok(id) => id,
        Err(EngineError::Build { message, log }) => {
            return Err(ExecError::Failed {
                message: format!("{what}: {message}"),
                output: log,
            })
        }
        Err(e) => return Err(e.into()),
    };
    Ok(NodeOutput {
        digest: id.to_string(),
        image: Some(id),
        meta: json!({ "tag": tag }),
        log: format!("{containerfile}\n{log}"),
        ..Default::default()
    })
}

async fn run(spec: &LayerSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let opts = RenderOpts {
        locked_cache_mounts: ctx.quirks.locked_cache_mounts,
    };
    let rendered = render_layer(spec, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut context = ContextTar::new();
    if let Some(dir) = ctx.layer_dir {
        context.add_dir(dir)?;
    }
    let what = format!("layer `{}`", spec.layer);
    build_steps(ctx, &what, &spec.parent, rendered, context).await
}
