//! `image`: finish an image on its last layer (ENV, EXPOSE, init assembly,
//! USER, labels). Its user-facing tag is the build driver's to apply: for
//! `tag: auto` it is the run's calver, which is no part of the node's key.

use super::layer::build_steps;
use super::{ExecCtx, ExecError, NodeOutput};
use crate::engine::ContextTar;
use serde_json::json;

/// Runs an image node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let name = ctx.spec_str("name")?.to_string();
    let tag = ctx.spec_str("tag")?.to_string();
    let parent = ctx.spec_str("parent")?.to_string();
    let rendered = super::steps_sent(crate::NodeKind::Image, ctx.spec, ctx.quirks)
        .ok_or_else(|| ExecError::Spec(format!("{}: not an image", ctx.node_id)))?
        .map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut out = build_steps(
        ctx,
        &format!("image `{name}`"),
        &parent,
        rendered,
        ContextTar::new(),
    )
    .await?;
    out.meta = json!({ "tag": tag, "node_tag": out.meta.get("tag") });
    Ok(out)
}
