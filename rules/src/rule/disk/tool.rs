//! Host tools a disk node runs itself (qemu-img), cancellable.

use super::super::ExecError;
use crate::engine::EngineError;
use std::process::Stdio;
use tokio_util::sync::CancellationToken;

/// Who runs a tool: the node (for messages) and its cancel token. Not the
/// whole context, which cannot be held across an await in a `Send` future.
#[derive(Clone, Copy)]
pub(super) struct Runner<'a> {
    pub node_id: &'a str,
    pub cancel: &'a CancellationToken,
}

/// Runs `program args` on the host; its output on success, a failure
/// naming the command otherwise. Ctrl-C kills it.
pub(super) async fn run(
    ctx: Runner<'_>,
    program: &str,
    args: &[&str],
) -> Result<String, ExecError> {
    let shown = format!("{program} {}", args.join(" "));
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            ExecError::Spec(format!(
                "{}: cannot run `{program}` ({e}); install it on this host (qemu-utils)",
                ctx.node_id
            ))
        })?;
    let out = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(ExecError::Engine(EngineError::Cancelled)),
        out = child.wait_with_output() => out?,
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(ExecError::Failed {
            message: format!("{}: `{shown}` failed ({})", ctx.node_id, out.status),
            output: text,
        });
    }
    Ok(text)
}
