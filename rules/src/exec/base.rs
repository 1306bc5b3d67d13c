//! `base`: make an external image present and report its id.
//!
//! A ref like `quay.io/fedora/fedora:43` is mutable, so the node is run on
//! every build (an inspect, milliseconds) and its output is the image id it
//! finds: when the ref moves, dependents rebuild; when it does not, they are
//! cached. `ov lock` pins the id in `ov.lock`; a pinned id wins over the ref
//! and is pulled by digest only when the engine does not already hold it.

use super::{ExecCtx, ExecError, NodeOutput};
use crate::engine::ImageId;
use crate::images::ImageSnapshot;
use serde_json::{json, Value as Json};

/// The base's output as the build's image list shows it, with no engine
/// call; `None` when the list does not hold it (then [`run`] asks, and
/// pulls if need be).
pub fn from_snapshot(spec: &Json, images: &ImageSnapshot) -> Option<NodeOutput> {
    let r = spec.get("ref")?.as_str()?;
    let id = match spec.get("pinned").and_then(Json::as_str) {
        Some(p) => Some(ImageId::new(p)).filter(|id| images.has(id))?,
        None => images.tagged(r)?.clone(),
    };
    Some(output(r, id))
}

fn output(r: &str, id: ImageId) -> NodeOutput {
    NodeOutput {
        digest: id.to_string(),
        image: Some(id),
        meta: json!({ "ref": r }),
        ..Default::default()
    }
}

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
    Ok(output(&r, id))
}
