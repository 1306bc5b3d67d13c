//! Builder stages checked before anything builds: a layer that triggers a
//! build.yml builder (a `detect_file` at its root, or packages of a
//! `detect_config` format the image builds) with a `stage_template` needs a
//! builder image the image's `builder:` map names, and the template must
//! parse (an inline builder's `install_template` too). ov finds these while
//! generating; here they are errors at load, with file:line.

use crate::diag::Diagnostics;
use crate::load::model::Project;
use crate::plan::resolve::ResolvedImage;
use crate::plan::{layer_needs_builder, layer_packages};
use indexmap::IndexMap;
use serde_json::Value as Json;

/// Checks every layer of every image that will be planned.
pub fn check(
    project: &Project,
    resolved: &IndexMap<String, ResolvedImage>,
    diags: &mut Diagnostics,
) {
    let needed = crate::plan::needed_images(project, resolved);
    for (bname, def) in &project.build.builders {
        let inline = def.get("inline").and_then(Json::as_bool) == Some(true);
        let field = if inline {
            "install_template"
        } else {
            "stage_template"
        };
        if let Some(text) = def.get(field).and_then(Json::as_str) {
            let key = format!("builder.{bname}.{field}");
            if let Err(e) = ov_rules::template::check(&key, text) {
                diags.error(
                    project.build.locs.get(&format!("builder.{bname}")).cloned(),
                    e.to_string(),
                );
            }
        }
    }
    // A layer in several images is one error, said once.
    let mut said = std::collections::HashSet::new();
    for img in resolved
        .values()
        .filter(|r| needed.contains(r.name.as_str()))
    {
        for layer_name in &img.install {
            let Some(layer) = project.layers.get(layer_name) else {
                continue;
            };
            let packages = layer_packages(layer, img);
            let on_disk = |f: &str| layer.dir.join(f).symlink_metadata().is_ok();
            for (bname, def) in &project.build.builders {
                if def.get("kind").and_then(Json::as_str) == Some("bootstrap")
                    || !layer_needs_builder(def, on_disk, &packages, img)
                {
                    continue;
                }
                let why = trigger(def, &on_disk);
                let stage = format!("{layer_name}-{bname}-build");
                if ![layer_name.as_str(), &stage]
                    .iter()
                    .all(|n| ov_rules::containerfile::accept::is_stage_name(n))
                {
                    if said.insert((layer_name.clone(), bname.clone())) {
                        diags.error(
                            layer.loc.clone(),
                            format!(
                                "layer `{layer_name}` triggers builder `{bname}` ({why}), which \
                             names a stage after the layer, but `{stage}` is not a stage name \
                             (lower-case letters, digits, `-`, `_`, `.`, starting with a letter): \
                             rename the layer's directory"
                            ),
                        );
                    }
                    continue;
                }
                // Inline builders run in the layer's own steps, on no
                // builder image.
                if def.get("inline").and_then(Json::as_bool) == Some(true) {
                    continue;
                }
                // ov skips a builder with no stage template; so does the plan.
                if def.get("stage_template").and_then(Json::as_str).is_none() {
                    continue;
                }
                if !img.builder.contains_key(bname) {
                    let at = project
                        .images
                        .get(&img.name)
                        .and_then(|i| i.loc.clone())
                        .or_else(|| layer.loc.clone());
                    diags.error(
                        at,
                        format!(
                            "image `{}`: layer `{layer_name}` needs builder `{bname}` ({why}) but \
                             no `builder: {{{bname}: <image>}}` names the image it runs on (in \
                             the image, its base or `defaults`)",
                            img.name
                        ),
                    );
                }
            }
        }
    }
}

/// What made the layer need the builder, for the message.
fn trigger(def: &Json, on_disk: &impl Fn(&str) -> bool) -> String {
    let file = def
        .get("detect_file")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .find(|f| on_disk(f));
    match (file, def.get("detect_config").and_then(Json::as_str)) {
        (Some(f), _) => format!("it has `{f}`"),
        (None, Some(c)) => format!("it lists `{c}` packages"),
        (None, None) => "detected".to_string(),
    }
}
