//! `ov image validate|list|inspect|generate`: the project as loaded and
//! resolved, without the store or the engine.

use super::print_diags;
use crate::workspace::{load_valid, unknown_image, Dirs, Workspace};
use std::io::Write;
use std::path::Path;

/// `ov image validate`: load and check; a count of what was found.
pub fn validate(root: &Path, dirs: &Dirs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (project, warnings) = load_valid(root, dirs)?;
    print_diags(&warnings);
    writeln!(
        out,
        "ok: {} images, {} layers, {} vms",
        project.images.len(),
        project.layers.len(),
        project.vms.len()
    )?;
    Ok(())
}

/// `ov image list`: enabled images (all with `include_disabled`) in build
/// order.
pub fn list(
    root: &Path,
    dirs: &Dirs,
    include_disabled: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (project, warnings) = load_valid(root, dirs)?;
    print_diags(&warnings);
    for name in crate::plan::resolve::build_order(&project, include_disabled) {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// `ov image inspect NAME`: the resolved image as JSON.
pub fn inspect(root: &Path, dirs: &Dirs, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let (project, resolved, warnings) = crate::workspace::load_resolved(root, dirs)?;
    print_diags(&warnings);
    if !project.images.contains_key(name) {
        return Err(unknown_image(&project, name).into());
    }
    serde_json::to_writer_pretty(&mut *out, &resolved[name])?;
    writeln!(out)?;
    Ok(())
}

/// `ov image generate NAME`: the Containerfile steps of each of the image's
/// nodes.
pub fn generate(root: &Path, dirs: &Dirs, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let ws = Workspace::open(root, dirs)?;
    print_diags(&ws.warnings);
    ws.image(name)?;
    // The build's own quirks: generate prints what a build sends.
    let opts = ov_rules::rule::EngineQuirks::for_build().render_opts();
    let text = super::generate::generate(&ws, name, &opts)?;
    out.write_all(text.as_bytes())?;
    Ok(())
}
