//! The user's tag of an image node (`<registry>/<name>:<tag>`) points at
//! the node's image after every build, cached or not.
//!
//! A cache hit proves the image exists, not that the tag is on it: an edit
//! and its revert leave the tag on the edited build, and `podman rmi` of
//! the tag alone leaves no tag at all. The build's image list answers
//! whether the tag is right, so a hit costs an engine call only when the
//! tag must move. When it moves off an image this cache did not last build
//! for the node, another project (or a hand-made image) held the name; that
//! is said, never done silently.

use super::node::Failure;
use super::Shared;
use ov_rules::engine::ImageId;
use ov_rules::images::NODE_LABEL;
use ov_rules::rule::NodeOutput;
use petgraph::graph::NodeIndex;
use serde_json::Value as Json;

/// The user's tag as the engine gets it: `auto` is this run's calver.
fn user_tag(sh: &Shared, tag: &str) -> String {
    super::calver::resolve(tag, &sh.calver)
}

/// The image this cache last recorded for node `ix`, read before the node
/// runs (a fresh build replaces it).
pub fn last_image(sh: &Shared, ix: NodeIndex) -> Option<ImageId> {
    let (_, r) = sh.store.last(&sh.ws.plan.graph[ix].id).ok()??;
    r.meta.get("image").and_then(Json::as_str).map(ImageId::new)
}

/// Where `tag`, the user's tag of image node `ix`, points before the node
/// runs: from the build's image list, or, without one, one inspect of the
/// tag (a fresh build moves the tag, so it must be asked first).
pub async fn holder(sh: &Shared, ix: NodeIndex, tag: &str) -> Result<Option<ImageId>, Failure> {
    let node = &sh.ws.plan.graph[ix];
    let tag = &user_tag(sh, tag);
    if let Some(l) = sh.images.get() {
        return Ok(l.tagged(tag).cloned());
    }
    let engine = sh.engine().await.map_err(|e| Failure::new(e.to_string()))?;
    engine
        .image_id(tag)
        .await
        .map_err(|e| Failure::new(format!("{}: {e}", node.id)))
}

/// Makes `tag`, the user's tag of image node `ix` (`auto` as this run's
/// calver), point at `out`'s image. `tagged` is true when the executor has
/// just tagged it, so only the warning is left to give. `before` is [`holder`] and `last` is
/// [`last_image`], both from before the node ran.
pub async fn settle(
    sh: &Shared,
    ix: NodeIndex,
    tag: &str,
    out: &NodeOutput,
    tagged: bool,
    before: Option<&ImageId>,
    last: Option<&ImageId>,
) -> Result<(), Failure> {
    let node = &sh.ws.plan.graph[ix];
    let tag = &user_tag(sh, tag);
    let Some(image) = &out.image else {
        return Ok(());
    };
    if before == Some(image) {
        return Ok(());
    }
    if !tagged {
        let engine = sh.engine().await.map_err(|e| Failure::new(e.to_string()))?;
        engine
            .tag(image, tag)
            .await
            .map_err(|e| Failure::new(format!("{}: {e}", node.id)))?;
    }
    let Some(before) = before.filter(|b| Some(*b) != last) else {
        return Ok(());
    };
    let whose = match sh.images.get() {
        Some(l) => match l.label(before, NODE_LABEL) {
            Some(other) => format!("an image ov built for {other} in another project or cache"),
            None => "an image ov did not build".to_string(),
        },
        None => "an image this cache did not build for it".to_string(),
    };
    sh.progress.warn(&format!(
        "{}: {tag} pointed at {before} ({whose}); it now points at {image}. \
         Two projects that build one image name take the tag from each other: \
         give one of them another name or tag",
        node.id
    ));
    Ok(())
}
