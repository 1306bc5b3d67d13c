//! `ov lock [--update [REF…]]`: pin every external base ref to the image
//! id the engine has for it. On an air-gapped machine the engine's local
//! image is pinned as it is, without trying to pull; a ref the engine does
//! not hold is pulled once, then pinned.

use crate::load::model::Project;
use crate::plan::lock::Lock;
use crate::plan::resolve::{self, BaseRef};
use ov_rules::engine::Engine;
use std::collections::BTreeSet;
use tokio_util::sync::CancellationToken;

/// Every ref the project builds on that is not one of its own images.
pub fn external_refs(project: &Project) -> BTreeSet<String> {
    let resolved = resolve::resolve_all(project);
    let mut out = BTreeSet::new();
    for img in resolved.values() {
        match &img.base {
            BaseRef::External(r) => {
                out.insert(r.clone());
            }
            BaseRef::Bootstrap { builder_image, .. } if !resolved.contains_key(builder_image) => {
                out.insert(builder_image.clone());
            }
            _ => {}
        }
    }
    for vm in project.vms.values() {
        if let Some(i) = &vm.image {
            if !resolved.contains_key(&i.value) {
                out.insert(i.value.clone());
            }
        }
    }
    out
}

/// Resolves and writes `ov.lock`; returns what it holds.
pub async fn lock(
    project: &Project,
    endpoint: &str,
    update: bool,
    only: &[String],
) -> anyhow::Result<Lock> {
    let mut lock = Lock {
        version: 1,
        base: project.lock.clone(),
    };
    let refs = external_refs(project);
    for r in only {
        if !refs.contains(r) {
            anyhow::bail!(
                "`{r}` is not an external base of this project{}",
                crate::diag::did_you_mean(r, refs.iter().map(String::as_str))
            );
        }
    }
    let engine = Engine::connect(endpoint).await?;
    let cancel = CancellationToken::new();
    // Refs no image uses any more leave the lock.
    lock.base.retain(|r, _| refs.contains(r));
    for r in &refs {
        let wanted = only.is_empty() || only.contains(r);
        if lock.base.contains_key(r) && !(update && wanted) {
            continue;
        }
        let id = match engine.image_id(r).await? {
            Some(id) => id,
            None => {
                engine.pull(r, &cancel).await.map_err(|e| {
                    anyhow::anyhow!("{r} is not in the engine and could not be pulled: {e}")
                })?;
                engine
                    .image_id(r)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("pulled {r} but the engine does not list it"))?
            }
        };
        lock.base.insert(r.clone(), id.to_string());
    }
    lock.save(&project.root)?;
    Ok(lock)
}

/// `ov lock [--update [REF…]]`: pins the project's external bases and
/// prints each pin.
pub fn run(
    root: &std::path::Path,
    dirs: &crate::workspace::Dirs,
    update: bool,
    refs: &[String],
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let (project, warnings) = crate::workspace::load_valid(root, dirs)?;
    super::print_diags(&warnings);
    let settings = super::load_settings()?;
    let endpoint = super::engine_endpoint(&settings)?;
    let rt = tokio::runtime::Runtime::new()?;
    let lock = rt.block_on(lock(&project, &endpoint, update, refs))?;
    for (r, id) in &lock.base {
        writeln!(out, "{r} {id}")?;
    }
    Ok(())
}
