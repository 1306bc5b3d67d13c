//! `ov graph [TARGET…] --format F [-o FILE]`: the part of the plan the
//! targets need, with what the next build would do with each node.

use crate::graph::{doc, render};
use crate::plan::predict::RemoteAsk;
use crate::run::record::RunRecord;
use std::path::Path;

/// `ov graph`.
pub fn run(
    root: &Path,
    dirs: &crate::workspace::Dirs,
    args: crate::cli::GraphArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let settings = super::load_settings()?;
    let remote = match super::build::remote_options(&args.remote, &settings)? {
        Some(o) => Some(
            ov_cache::remote::RemoteCache::new(o.config)
                .map_err(|e| super::bad_input(ov_cache::redact(&e.to_string())))?,
        ),
        None => None,
    };
    let endpoint = super::engine_endpoint(&settings)?;
    let ask = remote.as_ref().map(|cache| RemoteAsk { cache, endpoint });
    let ws = crate::workspace::Workspace::open_unkeyed(root, dirs)?;
    super::print_diags(&ws.warnings);
    let ws = crate::plan::predict::predict_with(ws, dirs, ask.as_ref())?;
    if let Some(why) = &ws.remote_failure {
        eprintln!("warning: {why}");
    }
    let nodes = ws.plan.select(&args.targets)?;
    let last = RunRecord::load(&dirs.state, &ws.project.root);
    let doc = doc::next_build(&ws, &nodes, last.as_ref());
    let text = render(&doc, args.format);
    match &args.output {
        // Whole or not at all.
        Some(path) => super::write_named_output(path, text.as_bytes())?,
        None => out.write_all(text.as_bytes())?,
    }
    // Freeing a large plan costs more than building its output; the
    // process is about to exit anyway.
    std::mem::forget(ws);
    Ok(())
}
