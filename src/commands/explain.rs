//! `ov explain`: what goes into a node's key, and what changed since the
//! last run of that node (the reasons come from [`crate::plan::why`]).

use crate::plan::why;

/// `ov explain NODE`: the node's key, its ingredients, and why the next
/// build would run it (or that it is cached).
pub fn run(
    root: &std::path::Path,
    dirs: &crate::workspace::Dirs,
    node: &str,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let ws = super::open_predicted(root, dirs)?;
    super::print_diags(&ws.warnings);
    let ix = ws.plan.resolve(node, "node").map_err(super::bad_input)?;
    let n = &ws.plan.graph[ix];
    let key = &ws.keys.keys[ix.index()];
    let manifest = &ws.keys.manifest(&ws.plan, &ws.trees, ix);
    writeln!(out, "{} ({})", n.id, n.kind())?;
    writeln!(out, "key {key}")?;
    writeln!(out, "ingredients:")?;
    for ing in &manifest.entries {
        writeln!(out, "  {}  {}", &ing.digest[..16], ing.name)?;
    }
    for line in why::verdict(&ws, ix, ws.last(ix), manifest).lines {
        writeln!(out, "{line}")?;
    }
    if n.kind() == ov_rules::NodeKind::Stage {
        writeln!(
            out,
            "impure: the builder's package registry (npm, conda channels, the AUR, …) is read at build time and is not part of the key (use `ov build --refresh {}`)",
            n.id
        )?;
    }
    if matches!(
        n.kind(),
        ov_rules::NodeKind::Layer | ov_rules::NodeKind::Preamble
    ) {
        writeln!(
            out,
            "impure: package repositories and `download:` URLs are read at build time and are not part of the key (use `ov build --refresh {}`)",
            n.id
        )?;
    }
    if n.kind() == ov_rules::NodeKind::Bootstrap {
        writeln!(
            out,
            "impure: the package mirror the bootstrap installs from is read at build time and is not part of the key (use `ov build --refresh {}`)",
            n.id
        )?;
    }
    Ok(())
}
