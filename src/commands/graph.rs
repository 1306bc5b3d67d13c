//! `ov graph [TARGET…] --format F [-o FILE]`: the part of the plan the
//! targets need, with what the next build would do with each node.

use crate::graph::{doc, render, Format};
use crate::run::record::RunRecord;
use std::path::Path;

/// Writes `text` to `path` whole or not at all.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    ov_cache::atomic_write(path, text.as_bytes())?;
    Ok(())
}

/// `ov graph`.
pub fn run(
    root: &Path,
    dirs: &crate::workspace::Dirs,
    targets: &[String],
    format: Format,
    output: Option<&Path>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let ws = super::open_predicted(root, dirs)?;
    super::print_diags(&ws.warnings);
    let nodes = ws.select(targets)?;
    let last = RunRecord::load(&dirs.state);
    let doc = doc::next_build(&ws, &nodes, last.as_ref());
    let text = render(&doc, format);
    match output {
        Some(path) => write_atomically(path, &text)?,
        None => out.write_all(text.as_bytes())?,
    }
    // Freeing a large plan costs more than building its output; the
    // process is about to exit anyway.
    std::mem::forget(ws);
    Ok(())
}
