//! `layer`: one layer applied on its parent image. The layer's directory is
//! the build context; its Containerfile steps come from
//! [`render_layer`](crate::containerfile::render_layer).

use super::{ExecCtx, ExecError, NodeOutput};
use crate::containerfile::Rendered;
use crate::engine::{BuildRequest, ContextTar, EngineError};
use serde_json::json;
use std::collections::HashMap;

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
    let containerfile = format!("FROM {}\n{}", parent_img.hex(), rendered.containerfile());
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

/// Runs a layer node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let layer = ctx.spec_str("layer")?.to_string();
    let parent = ctx.spec_str("parent")?.to_string();
    let rendered = super::steps_sent(crate::NodeKind::Layer, ctx.spec, ctx.quirks)
        .ok_or_else(|| ExecError::Spec(format!("{}: not a layer", ctx.node_id)))?
        .map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut context = ContextTar::new();
    if let Some(dir) = ctx.layer_dir {
        context.add_dir(dir)?;
    }
    build_steps(ctx, &format!("layer `{layer}`"), &parent, rendered, context).await
}
