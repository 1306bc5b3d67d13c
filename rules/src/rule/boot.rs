//! `boot`: boot a VM, wait for it, run its deploy-scope checks and shut it
//! down. Not executable yet (VM work comes later): running one is a clear
//! error.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The RAM a boot node reserves until its spec says (`ram` is free text
/// such as `4G` today).
const RAM_MIB: u64 = 1024;

/// A boot node's spec: the VM entry's fields as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootSpec {
    /// `ram`.
    pub ram: Json,
    /// `cpus`.
    pub cpus: Json,
    /// `firmware`.
    pub firmware: Json,
    /// `machine`.
    pub machine: Json,
    /// `network`.
    pub network: Json,
    /// `libvirt`.
    pub libvirt: Json,
    /// `ssh`.
    pub ssh: Json,
    /// `eval`.
    pub eval: Json,
    /// `deploy_eval`.
    pub deploy_eval: Json,
}

impl Rule for BootSpec {
    const KIND: NodeKind = NodeKind::Boot;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Vm { ram_mib: RAM_MIB }
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        Err(super::not_yet(ctx, Self::KIND))
    }
}
