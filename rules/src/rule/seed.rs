//! `seed`: a VM's cloud-init NoCloud seed ISO. Not executable yet (VM work
//! comes later): running one is a clear error.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A seed node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSpec {
    /// The VM's hostname (its name).
    pub hostname: String,
    /// `cloud_init` as written.
    pub cloud_init: Json,
    /// `ssh` as written.
    pub ssh: Json,
    /// `source.base_user`.
    pub base_user: Option<Json>,
}

impl Rule for SeedSpec {
    const KIND: NodeKind = NodeKind::Seed;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Cpu
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        Err(super::not_yet(ctx, Self::KIND))
    }
}
