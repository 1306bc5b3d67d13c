//! `image`: finish an image on its last layer (ENV, EXPOSE, init assembly,
//! USER, labels) and give it its user-facing tag.

use super::layer::build_steps;
use super::{ExecCtx, ExecError, NodeOutput};
use crate::containerfile::{render_image, RenderOpts};
use crate::engine::ContextTar;
use serde_json::json;

/// Runs an image node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let name = ctx.spec_str("name")?.to_string();
    let tag = ctx.spec_str("tag")?.to_string();
    let parent = ctx.spec_str("parent")?.to_string();
    let opts = RenderOpts {
        locked_cache_mounts: ctx.quirks.locked_cache_mounts,
    };
    let rendered = render_image(ctx.spec, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut out = build_steps(
        ctx,
        &format!("image `{name}`"),
        &parent,
        rendered,
        ContextTar::new(),
    )
    .await?;
    if let Some(id) = &out.image {
        ctx.engine.tag(id, &tag).await?;
    }
    out.meta = json!({ "tag": tag, "node_tag": out.meta.get("tag") });
    Ok(out)
}
