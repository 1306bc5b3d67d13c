//! `stage`: a build.yml builder's stage for one layer, run on the builder
//! image; the layer node copies its outputs in. The layer's directory is
//! the build context; the Containerfile comes from
//! [`render_stage`](crate::containerfile::render_stage).

use super::layer::build_containerfile;
use super::{ExecCtx, ExecError, NodeOutput};
use crate::containerfile::{render_stage, RenderOpts, StagePlace};
use crate::engine::ContextTar;

/// Runs a stage node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let builder = ctx.spec_str("builder")?.to_string();
    let layer = ctx.spec_str("layer")?.to_string();
    let builder_node = ctx.spec_str("builder_node")?.to_string();
    let builder_img = ctx.dep_image(&builder_node)?.hex().to_string();
    let opts = RenderOpts {
        locked_cache_mounts: ctx.quirks.locked_cache_mounts,
    };
    let place = StagePlace {
        builder_ref: &builder_img,
        copy_src: ".",
    };
    let containerfile =
        render_stage(ctx.spec, place, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut context = ContextTar::new();
    if let Some(dir) = ctx.layer_dir {
        context.add_dir(dir)?;
    }
    build_containerfile(
        ctx,
        &format!("`{builder}` stage of layer `{layer}`"),
        containerfile,
        context,
    )
    .await
}
