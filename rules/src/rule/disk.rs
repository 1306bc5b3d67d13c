//! `disk`: turn an image, a cloud image or a bootstrapped rootfs into a VM
//! disk. Not executable yet (VM work comes later): running one is a clear
//! error.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What a disk is made from: the VM sources that build one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskSource {
    /// A downloaded cloud image.
    CloudImage,
    /// An ov image installed by `bootc install`.
    Bootc,
    /// A rootfs from a bootstrap builder.
    Bootstrap,
}

/// A disk node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// What the disk is made from.
    pub source_kind: DiskSource,
    /// `disk_size` as written.
    pub disk_size: Json,
    /// `source.rootfs` (filesystem type).
    pub rootfs: Option<Json>,
    /// `source.root_size`.
    pub root_size: Option<Json>,
    /// `source.kernel_args`.
    pub kernel_args: Option<Json>,
    /// The disk format (`qcow2`).
    pub format: String,
}

impl Rule for DiskSpec {
    const KIND: NodeKind = NodeKind::Disk;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Privileged
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        Err(super::not_yet(ctx, Self::KIND))
    }
}
