//! `source`: a layer directory, hashed. Its output is the tree digest,
//! known when the project loads, so it never runs.

use super::{Caching, ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};

/// A source node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// The directory, relative to the project root (as shown to users).
    pub path: String,
}

impl Rule for SourceSpec {
    const KIND: NodeKind = NodeKind::Source;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Io
    }

    fn caching(&self) -> Caching {
        Caching::Hashed
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        // The driver takes a source's output from the hashed tree; being
        // asked to run one means it lost track of that.
        Err(ExecError::Spec(format!(
            "{}: a source node is hashed when the project loads, not run",
            ctx.node_id
        )))
    }
}
