//! `cloud-image`: fetch a VM's cloud image and verify its checksum. Not
//! executable yet (VM work comes later): running one is a clear error.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A cloud-image node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudImageSpec {
    /// Where the image is downloaded from.
    pub url: Option<String>,
    /// `source.checksum` as written (a digest or a checksum file's URL).
    pub checksum: Option<Json>,
}

impl Rule for CloudImageSpec {
    const KIND: NodeKind = NodeKind::CloudImage;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Io
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        Err(super::not_yet(ctx, Self::KIND))
    }
}
