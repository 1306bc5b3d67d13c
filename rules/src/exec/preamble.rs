//! `preamble`: an external base image made ready for layers, as ov's
//! bootstrap preamble does (see [`crate::containerfile::preamble`]). It
//! needs no files, so its build context is empty.

use super::layer::build_steps;
use super::{ExecCtx, ExecError, NodeOutput};
use crate::containerfile::preamble::{render_preamble, PreambleSpec};
use crate::containerfile::RenderOpts;
use crate::engine::ContextTar;

/// Runs a preamble node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let spec = PreambleSpec::from_json(ctx.spec)
        .map_err(|e| ExecError::Spec(format!("{}: {e}", ctx.node_id)))?;
    let opts = RenderOpts {
        locked_cache_mounts: ctx.quirks.locked_cache_mounts,
    };
    let rendered = render_preamble(&spec, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
    let what = format!("preamble `{}`", ctx.node_id);
    build_steps(ctx, &what, &spec.parent, rendered, ContextTar::new()).await
}
