//! `base`: make an external image present and report its id.
//!
//! A ref like `quay.io/fedora/fedora:43` is mutable, so the node is run on
//! every build (an inspect, milliseconds) and its output is the image id it
//! finds: when the ref moves, dependents rebuild; when it does not, they are
//! cached. `ov lock` pins the id in `ov.lock`; a pinned id wins over the ref
//! and is pulled by digest only when the engine does not already hold it.

use super::{ExecCtx, ExecError, NodeOutput};
use serde_json::json;

/// Runs a base node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let r = ctx.spec_str("ref")?.to_string();
    let pinned = ctx.spec.get("pinned").and_then(|v| v.as_str());
    let engine = ctx.engine;
    let id = match pinned {
        Some(p) => match engine.image_id(p).await? {
            Some(id) => id,
            None => {
                let by_digest = format!("{}@{p}", crate::engine::split_tag(&r).0);
                engine.pull(&by_digest, ctx.cancel).await?;
                engine.image_id(p).await?.ok_or_else(|| ExecError::Failed {
                    message: format!("pulled {by_digest} but the engine has no image {p}"),
                    output: String::new(),
                })?
            }
        },
        None => match engine.image_id(&r).await? {
            Some(id) => id,
            None => {
                engine
                    .pull(&r, ctx.cancel)
                    .await
                    .map_err(|e| ExecError::Failed {
                        message: format!(
                            "base image {r} is not in the engine and could not be pulled\n  \
                         fix: load or build it first (scripts/setup.sh imports \
                         localhost/bookworm-minbase:1), or check the registry is reachable"
                        ),
                        output: e.to_string(),
                    })?;
                engine
                    .image_id(&r)
                    .await?
                    .ok_or_else(|| ExecError::Failed {
                        message: format!("pulled {r} but the engine does not list it"),
                        output: String::new(),
                    })?
            }
        },
    };
    Ok(NodeOutput {
        digest: id.to_string(),
        image: Some(id),
        meta: json!({ "ref": r }),
        ..Default::default()
    })
}
