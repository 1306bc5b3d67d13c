//! `layer`: one layer applied on its parent image. The layer's directory is
//! the build context; its Containerfile steps come from
//! [`render_layer`](crate::containerfile::render_layer).

use super::{ExecCtx, ExecError, NodeOutput};
use crate::containerfile::{render_layer_with, RenderOpts, Rendered, StageRefs};
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
    let opts = RenderOpts {
        locked_cache_mounts: ctx.quirks.locked_cache_mounts,
    };
    // The images of the layer's builder stages, for `COPY --from`.
    let mut refs = StageRefs::new();
    if let Some(stages) = ctx.spec.get("stages").and_then(|s| s.as_object()) {
        for (builder, entry) in stages {
            let node = entry
                .get("node")
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            refs.insert(builder.clone(), ctx.dep_image(node)?.hex().to_string());
        }
    }
    let rendered =
        render_layer_with(ctx.spec, &opts, &refs).map_err(|e| ExecError::Spec(e.to_string()))?;
    let mut context = ContextTar::new();
    if let Some(dir) = ctx.layer_dir {
        context.add_dir(dir)?;
    }
    build_steps(ctx, &format!("layer `{layer}`"), &parent, rendered, context).await
}
