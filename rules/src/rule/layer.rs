//! `layer`: one layer applied on its parent image. The layer's directory is
//! the build context; its Containerfile steps come from
//! [`render_layer`](crate::containerfile::render_layer).

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::{render_layer_with, Rendered, StageRefs};
use crate::engine::{BuildRequest, ContextTar, EngineError};
use crate::NodeKind;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    /// Shared by the layer's applications on images of one distro.
    pub packages: Arc<Map<String, Json>>,
    /// build.yml `distro.<d>.format.<fmt>` for each of the image's formats
    /// (install templates, cache mounts), as written.
    /// Shared: every layer node of an image holds the same map.
    pub formats: Arc<Map<String, Json>>,
    /// The layer's `task:` steps, as the loader checked them, kept as
    /// canonical text. Shared: every application of the layer holds the
    /// same steps.
    pub tasks: Arc<[crate::CanonicalJson]>,
    /// `var:`.
    pub var: IndexMap<String, String>,
    /// `env:`.
    pub env: IndexMap<String, String>,
    /// `path_append:`.
    pub path_append: Vec<String>,
    /// build.yml builder stages the layer triggers, by builder name: the
    /// stage node to copy from and what to copy.
    pub stages: BTreeMap<String, StageUse>,
    /// Inline builders the layer triggers (ov's `cargo`), by sorted name:
    /// `{builder, def}`, rendered in the layer's own steps.
    pub inline: Vec<Json>,
    /// layer.yml `shell:` (ov's shell-init snippets), as the loader checked
    /// it. Absent from the spec when the layer has none, so other layers
    /// keep their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Json>,
}

/// A builder stage as the layer that triggers it uses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageUse {
    /// The stage node (one of the layer's dependencies).
    pub node: String,
    /// build.yml `copy_artifact`.
    pub copy_artifact: Option<Json>,
    /// build.yml `copy_binary`.
    pub copy_binary: Option<Json>,
    /// build.yml `runtime_env`.
    pub runtime_env: Option<Json>,
    /// build.yml `path_contribution`.
    pub path_contribution: Option<Json>,
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
    /// Its home: what `~` and `$HOME` in `env:` and `path_append` expand
    /// to.
    pub home: String,
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
    let mut containerfile = rendered.context_stage_text();
    containerfile.push_str(&format!("FROM {}\n", parent_img.hex()));
    for step in &rendered.steps {
        containerfile.push_str(step);
        containerfile.push('\n');
    }
    for (path, data) in &rendered.context_files {
        context.add_file(path, data, 0o644)?;
    }
    build_containerfile(ctx, what, containerfile, context).await
}

/// Builds a whole Containerfile on `context`, tags the result with the
/// node's tag and returns the image.
pub(super) async fn build_containerfile(
    ctx: &mut ExecCtx<'_>,
    what: &str,
    containerfile: String,
    context: ContextTar,
) -> Result<NodeOutput, ExecError> {
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
    let mut result = Err(EngineError::Cancelled);
    for attempt in 0..2 {
        result = ctx
            .engine
            .build(
                BuildRequest {
                    containerfile: containerfile.clone(),
                    context: context.clone(),
                    tag: tag.clone(),
                    labels: labels.clone(),
                },
                ctx.cancel,
                &mut sink,
            )
            .await;
        match &result {
            Err(EngineError::Build { message, .. })
                if attempt == 0 && storage_changed_under_the_build(message) =>
            {
                sink(&format!(
                    "ov: the engine's storage changed under the build ({}); building again",
                    message.trim()
                ));
            }
            _ => break,
        }
    }
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

/// True for the error podman gives when an image it meant to reuse from
/// its build cache was removed while the build looked at it (another
/// build's clean-up, `ov cache gc`, `podman rmi` at the same moment). The
/// next attempt sees the storage as it is now, so one retry is enough.
fn storage_changed_under_the_build(message: &str) -> bool {
    message.contains("layer not known")
}

async fn run(spec: &LayerSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let opts = ctx.quirks.render_opts();
    // The images of the layer's builder stages, for `COPY --from`.
    let mut refs = StageRefs::new();
    for (builder, stage) in &spec.stages {
        refs.insert(
            builder.clone(),
            ctx.dep_image(&stage.node)?.hex().to_string(),
        );
    }
    let rendered =
        render_layer_with(spec, &opts, &refs).map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut context = ContextTar::new();
    if let Some(dir) = ctx.layer_dir {
        context.add_dir(dir)?;
    }
    let what = format!("layer `{}`", spec.layer);
    build_steps(ctx, &what, &spec.parent, rendered, context).await
}
