//! Whole-project checks that need every file loaded: names that point
//! nowhere, cycles, disabled internal bases, missing `copy:` sources and VMs
//! that name unknown images. Every error names file, line and column.

use crate::diag::{did_you_mean, Diagnostics, Loc};
use crate::load::image_ref::is_image_ref;
use crate::load::model::{Project, Spanned, VmSourceKind};
use crate::plan::resolve::{internal_base, ResolvedImage};
use indexmap::{IndexMap, IndexSet};
use rayon::prelude::*;
use std::path::Path;

/// Runs every check, adding to `diags`.
pub fn validate(project: &Project, diags: &mut Diagnostics) {
    layer_names(project, diags);
    layer_cycles(project, diags);
    bases(project, diags);
    copy_sources(project, diags);
    init_headers(project, diags);
    vms(project, diags);
}

/// What is checked of the images as resolved, which needs a project that
/// passed [`validate`] (resolving needs sound bases: no cycles, no unknown
/// names): `user_policy: adopt` needs the image's distro to declare
/// `base_user`.
pub fn adopted_users(
    project: &Project,
    resolved: &IndexMap<String, ResolvedImage>,
    diags: &mut Diagnostics,
) {
    for (name, r) in resolved {
        if r.user_policy != "adopt" {
            continue;
        }
        let def = crate::plan::resolve::distro_for(project, &r.distro);
        if def
            .and_then(|(_, d)| crate::plan::user::BaseUser::from_distro(d))
            .is_none()
        {
            let img = project.images.get(name).unwrap_or(&project.defaults);
            let distro = match def {
                Some((d, _)) => format!("distro `{d}`"),
                None => format!("its distro {:?} (build.yml defines none of them)", r.distro),
            };
            diags.error(
                img.loc.clone(),
                format!(
                    "image `{name}`: `user_policy: adopt` needs `base_user` (name, uid, gid, home) \
                     in build.yml for {distro}"
                ),
            );
        }
    }
}

/// The init systems some image may assemble: forced by an image (or the
/// defaults), hinted by a layer, or supervisord for any layer with
/// services (the planner's choice, without resolving images).
fn inits_in_use(project: &Project) -> IndexSet<&str> {
    let mut used: IndexSet<&str> = project
        .images
        .values()
        .chain(std::iter::once(&project.defaults))
        .filter_map(|i| i.init.as_deref())
        .collect();
    for l in project.layers.values() {
        if let Some(h) = l
            .capabilities
            .as_ref()
            .and_then(|c| c.get("init_system_hint")?.as_str())
        {
            used.insert(h);
        }
        if !l.service.is_empty() {
            used.insert("supervisord");
        }
    }
    used
}

/// An init's `header_file` goes into every image that uses the init: it
/// must exist where its build.yml came from (a remote include's checkout,
/// else the project), found now rather than when the image node runs
/// after others have built.
fn init_headers(project: &Project, diags: &mut Diagnostics) {
    for name in inits_in_use(project) {
        let Some(def) = project.build.inits.get(name) else {
            continue;
        };
        let Some(file) = def.get("header_file").and_then(|f| f.as_str()) else {
            continue;
        };
        if file.is_empty() {
            continue;
        }
        let id = format!("init.{name}");
        let at = project.build.locs.get(&id).cloned();
        let origin = project.build.origins.get(&id);
        let rel = Path::new(file);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            diags.error(
                at,
                format!("init `{name}`: header_file `{file}` must be a path inside the tree of its build.yml, without `..`"),
            );
            continue;
        }
        let path = project.build.asset(&project.root, &id, file);
        if path.is_file() {
            continue;
        }
        let msg = match origin {
            Some(o) => format!(
                "init `{name}`: header_file `{file}` is not in {} (looked for {}); the checkout in the repo cache is incomplete or of another version",
                o.include,
                path.display()
            ),
            None => format!(
                "init `{name}`: header_file `{file}` does not exist in the project (looked for {})",
                path.display()
            ),
        };
        diags.error(at, msg);
    }
}

fn unknown_layer(project: &Project, r: &Spanned<String>, whose: &str, diags: &mut Diagnostics) {
    if !project.layers.contains_key(&r.value) {
        let hint = match skipped_layer_dir(project, &r.value) {
            Some(why) => format!(" ({why})"),
            None => did_you_mean(&r.value, project.layers.keys().map(String::as_str)),
        };
        diags.error(
            Some(r.loc.clone()),
            format!("{whose}: unknown layer `{}`{hint}", r.value),
        );
    }
}

/// Why discovery skipped an entry named `name` under a walked directory,
/// shown relative to the project: a directory without a `layer.yml` file
/// (easy to miss when it holds the layer's other files), or a symlink,
/// which discovery does not follow.
fn skipped_layer_dir(project: &Project, name: &str) -> Option<String> {
    let walked = &project.inputs.dirs;
    let shown = |p: &Path| {
        p.strip_prefix(&project.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let below = walked
        .iter()
        .filter(|d| d.file_name().is_some_and(|n| n == name))
        // The roots themselves are listed too; only what lies below one
        // (whose parent was walked) could have been a layer.
        .filter(|d| d.parent().is_some_and(|p| walked.iter().any(|w| w == p)));
    for dir in below {
        let file = dir.join("layer.yml");
        if file.symlink_metadata().is_ok() && !file.is_file() {
            return Some(format!("{} is not a file", shown(&file)));
        }
        if !file.is_file() {
            return Some(format!("{}/ exists but has no layer.yml", shown(dir)));
        }
    }
    walked
        .iter()
        .map(|w| w.join(name))
        .find(|p| p.symlink_metadata().is_ok_and(|m| m.is_symlink()))
        .map(|link| {
            format!(
                "{} is a symlink, which layer discovery does not follow",
                shown(&link)
            )
        })
}

fn layer_names(project: &Project, diags: &mut Diagnostics) {
    for (name, img) in &project.images {
        for l in &img.layers {
            unknown_layer(project, l, &format!("image `{name}`"), diags);
        }
    }
    for (name, layer) in &project.layers {
        for r in &layer.require {
            unknown_layer(project, r, &format!("layer `{name}` require"), diags);
        }
        for r in &layer.includes {
            unknown_layer(project, r, &format!("layer `{name}` layer"), diags);
        }
    }
}

/// Finds cycles through `require` and `layer` and prints each whole.
fn layer_cycles(project: &Project, diags: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: std::collections::HashMap<&str, Mark> = Default::default();
    let mut reported: IndexSet<Vec<String>> = IndexSet::new();
    fn dfs<'p>(
        project: &'p Project,
        name: &'p str,
        path: &mut Vec<(&'p str, Option<&'p Spanned<String>>)>,
        marks: &mut std::collections::HashMap<&'p str, Mark>,
        reported: &mut IndexSet<Vec<String>>,
        diags: &mut Diagnostics,
    ) {
        match marks.get(name) {
            Some(Mark::Done) => return,
            Some(Mark::Open) => {
                let start = path.iter().position(|(n, _)| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[start..].iter().map(|(n, _)| n.to_string()).collect();
                let mut canon = cycle.clone();
                canon.sort();
                if reported.insert(canon) {
                    cycle.push(name.to_string());
                    let loc = path.last().and_then(|(_, via)| via.map(|s| s.loc.clone()));
                    diags.error(loc, format!("layer cycle: {}", cycle.join(" → ")));
                }
                return;
            }
            None => {}
        }
        let Some(layer) = project.layers.get(name) else {
            return;
        };
        marks.insert(name, Mark::Open);
        for r in layer.require.iter().chain(&layer.includes) {
            // The path holds (layer, edge taken out of it).
            path.push((name, Some(r)));
            dfs(project, &r.value, path, marks, reported, diags);
            path.pop();
        }
        marks.insert(name, Mark::Done);
    }
    for name in project.layers.keys() {
        let mut path = Vec::new();
        dfs(project, name, &mut path, &mut marks, &mut reported, diags);
    }
}

fn looks_like_name(s: &str) -> bool {
    !s.contains('/') && !s.contains(':') && !s.contains('.') && s != "scratch"
}

fn bases(project: &Project, diags: &mut Diagnostics) {
    let names = || project.images.keys().map(String::as_str);
    for (name, img) in &project.images {
        let whose = format!("image `{name}`");
        if let Some(base) = img.base.as_ref() {
            let b = &base.value;
            if b == name {
                diags.error(Some(base.loc.clone()), format!("{whose} is its own base"));
            } else if project.images.contains_key(b) && internal_base(project, b).is_none() {
                diags.error(
                    Some(base.loc.clone()),
                    format!("{whose}: base `{b}` is a disabled image; enable it (ov would silently treat the name as a registry ref)"),
                );
            } else if !project.images.contains_key(b) && looks_like_name(b) {
                diags.error(
                    Some(base.loc.clone()),
                    format!("{whose}: unknown image `{b}` as base{}; an external base is a full OCI ref (registry/name:tag)", did_you_mean(b, names())),
                );
            } else if !project.images.contains_key(b) {
                not_a_ref(b, &base.loc, &format!("{whose}: base"), diags);
            }
        }
        if let Some(from) = &img.from {
            if !from.value.starts_with("builder:") {
                diags.error(
                    Some(from.loc.clone()),
                    format!("{whose}: `from` must be `builder:<name>`"),
                );
            } else {
                let builder = &from.value["builder:".len()..];
                if !project.build.builders.contains_key(builder) {
                    diags.error(
                        Some(from.loc.clone()),
                        format!(
                            "{whose}: unknown bootstrap builder `{builder}`{}",
                            did_you_mean(
                                builder,
                                project.build.builders.keys().map(String::as_str)
                            )
                        ),
                    );
                }
                if img.bootstrap_builder_image.is_none() {
                    diags.error(
                        Some(from.loc.clone()),
                        format!("{whose}: `from: builder:…` needs `bootstrap_builder_image`"),
                    );
                }
            }
        }
        if let Some(bi) = &img.bootstrap_builder_image {
            image_ref(
                project,
                bi,
                &format!("{whose} bootstrap_builder_image"),
                diags,
            );
        }
        for b in img.builder.iter().flat_map(|m| m.values()) {
            if b.value != *name {
                image_ref(project, b, &format!("{whose} builder"), diags);
            }
        }
    }
    for b in project.defaults.builder.iter().flat_map(|m| m.values()) {
        image_ref(project, b, "defaults builder", diags);
    }
    // Cycles through bases, following the same edge the resolver follows
    // (a bootstrap builder image before `base`).
    let next_of = |name: &str| -> Option<String> {
        let img = &project.images[name];
        let next = match crate::plan::resolve::base_of(project, img) {
            crate::plan::resolve::BaseRef::Internal(b) => b,
            crate::plan::resolve::BaseRef::Bootstrap { builder_image, .. } => builder_image,
            crate::plan::resolve::BaseRef::External(b) => b,
        };
        project.images.contains_key(&next).then_some(next)
    };
    for start in project.images.keys() {
        let mut chain = vec![start.clone()];
        let mut cur = start.clone();
        while let Some(next) = next_of(&cur) {
            if let Some(pos) = chain.iter().position(|c| *c == next) {
                // Report a cycle once, from its smallest member.
                if pos == 0 && chain.iter().min() == Some(start) {
                    chain.push(next);
                    let img = &project.images[start];
                    let loc = img
                        .bootstrap_builder_image
                        .as_ref()
                        .or(img.base.as_ref())
                        .map(|b| b.loc.clone());
                    diags.error(loc, format!("base cycle: {}", chain.join(" → ")));
                }
                break;
            }
            chain.push(next.clone());
            cur = next;
        }
    }
}

fn image_ref(project: &Project, r: &Spanned<String>, whose: &str, diags: &mut Diagnostics) {
    if !project.images.contains_key(&r.value) && looks_like_name(&r.value) {
        diags.error(
            Some(r.loc.clone()),
            format!(
                "{whose}: unknown image `{}`{}",
                r.value,
                did_you_mean(&r.value, project.images.keys().map(String::as_str))
            ),
        );
    } else if !project.images.contains_key(&r.value) {
        not_a_ref(&r.value, &r.loc, whose, diags);
    }
}

/// An external image the engine would be asked for must be a reference
/// it can parse, or the build fails late with an engine status code.
fn not_a_ref(r: &str, loc: &Loc, whose: &str, diags: &mut Diagnostics) {
    if !is_image_ref(r) {
        diags.error(
            Some(loc.clone()),
            format!(
                "{whose} `{r}` is not an image reference ([registry[:port]/]name[:tag][@digest], \
                 lowercase name, no scheme or credentials)"
            ),
        );
    }
}

/// Every path [`validate`] looks for as a copy source (the dry run's memo
/// watches them: removing one makes the project invalid).
pub fn copy_source_paths(project: &Project) -> impl Iterator<Item = std::path::PathBuf> + '_ {
    project
        .layers
        .values()
        .filter(|l| !l.dir.as_os_str().is_empty())
        .flat_map(|l| {
            l.tasks
                .iter()
                .filter(|t| t.verb == "copy")
                .map(|t| l.dir.join(t.arg.trim_start_matches('/')))
        })
}

fn copy_sources(project: &Project, diags: &mut Diagnostics) {
    // A `stat` per copy source: thousands on a large project, so the
    // layers are checked in parallel and their findings kept in order.
    let layers: Vec<(&String, &crate::load::model::Layer)> = project.layers.iter().collect();
    let found: Vec<Vec<(Loc, String)>> = layers
        .par_iter()
        .map(|(name, layer)| copy_sources_of(name, layer))
        .collect();
    for (loc, message) in found.into_iter().flatten() {
        diags.error(Some(loc), message);
    }
}

fn copy_sources_of(name: &str, layer: &crate::load::model::Layer) -> Vec<(Loc, String)> {
    let mut found = Vec::new();
    for task in layer.tasks.iter().filter(|t| t.verb == "copy") {
        let src = task.arg.trim_start_matches('/');
        let escapes = std::path::Path::new(src)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        let message = if layer.dir.as_os_str().is_empty() {
            format!(
                "layer `{name}` is defined inline and has no directory to copy `{}` from; give \
                 it a directory under layers/",
                task.arg
            )
        } else if escapes {
            format!(
                "layer `{name}`: copy source `{}` leaves the layer directory",
                task.arg
            )
        } else if src.contains(['*', '?', '[', '\\']) {
            // The builder globs COPY sources and ignores escapes when it
            // renames the copy, so such a name copies another file or fails.
            format!(
                "layer `{name}`: copy source `{}` holds `*`, `?`, `[` or `\\`, which the \
                 builder reads as a pattern, not a file name; rename the file",
                task.arg
            )
        } else if !layer.dir.join(src).exists() {
            format!(
                "layer `{name}`: copy source `{}` does not exist in {}",
                task.arg, layer.display_dir
            )
        } else {
            continue;
        };
        found.push((task.loc.clone(), message));
    }
    found
}

fn vms(project: &Project, diags: &mut Diagnostics) {
    for (name, vm) in &project.vms {
        let Some(image) = &vm.image else { continue };
        match vm.source_kind {
            VmSourceKind::Bootc => {
                let is_ref = image.value.contains('/');
                if !is_ref && !project.images.contains_key(&image.value) {
                    diags.error(
                        Some(image.loc.clone()),
                        format!(
                            "vm `{name}`: bootc source names unknown image `{}`{}",
                            image.value,
                            did_you_mean(&image.value, project.images.keys().map(String::as_str))
                        ),
                    );
                }
            }
            VmSourceKind::Bootstrap => {
                image_ref(project, image, &format!("vm `{name}` builder_image"), diags)
            }
            _ => {}
        }
    }
}
