//! `base`: make an external image present and report its id.
//!
//! A ref like `quay.io/fedora/fedora:43` is mutable, so the node is run on
//! every build (an inspect, milliseconds) and its output is the image id it
//! finds: when the ref moves, dependents rebuild; when it does not, they are
//! cached. `ov lock` pins the id in `ov.lock`; a pinned id wins over the ref
//! and is pulled by digest only when the engine does not already hold it.

use super::{Caching, ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::engine::ImageId;
use crate::images::ImageSnapshot;
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A base node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseSpec {
    /// The image reference as written (`quay.io/fedora/fedora:43`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The image id `ov.lock` pins it to, if any.
    pub pinned: Option<String>,
}

impl BaseSpec {
    /// The base's output as the build's image list shows it, with no
    /// engine call; `None` when the list does not hold it (then
    /// [`Rule::execute`] asks, and pulls if need be).
    pub fn from_snapshot(&self, images: &ImageSnapshot) -> Option<NodeOutput> {
        let r = &self.reference;
        let id = match &self.pinned {
            Some(p) => Some(ImageId::new(p)).filter(|id| images.has(id))?,
            None => images.tagged(r)?.clone(),
        };
        Some(output(r, id))
    }
}

impl Rule for BaseSpec {
    const KIND: NodeKind = NodeKind::Base;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Io
    }

    fn caching(&self) -> Caching {
        Caching::EveryBuild
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        run(self, ctx).await
    }
}

fn output(r: &str, id: ImageId) -> NodeOutput {
    NodeOutput {
        digest: id.to_string(),
        image: Some(id),
        meta: json!({ "ref": r }),
        ..Default::default()
    }
}

async fn run(spec: &BaseSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let r = spec.reference.clone();
    let pinned = spec.pinned.as_deref();
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
