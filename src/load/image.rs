//! Decoding image entries and the `defaults` block (ov-format §1.3).

use super::decode::{self, check_keys, Cx, Keys};
use crate::load::model::{Image, Spanned};
use crate::load::yaml::Node;
use indexmap::IndexMap;

const KNOWN: &[&str] = &[
    "enabled",
    "base",
    "from",
    "bootstrap_builder_image",
    "layer",
    "platform",
    "tag",
    "registry",
    "distro",
    "build",
    "builder",
    "produce",
    "port",
    "user",
    "uid",
    "gid",
    "user_policy",
    "env",
    "env_file",
    "security",
    "network",
    "alias",
    "shell",
    "init",
    "data_image",
    "merge",
    "eval",
    "deploy_eval",
    "description",
    "version",
    "status",
    "info",
    "name",
];

const LEGACY: &[(&str, &str)] = &[
    ("platforms", "`platform`"),
    ("ports", "`port`"),
    ("tests", "`eval`"),
    ("builds", "`produce`"),
    ("pkg", "`distro` + `build`"),
    ("layers", "`layer`"),
    (
        "bootc",
        "a layer with `capabilities` (e.g. the bootc-base metalayer)",
    ),
    ("vm", "a `vm:` entity in vm.yml"),
];

/// Decodes one image entry (or `defaults`, with `what = "defaults"`).
pub fn decode(cx: &mut Cx, name: &str, node: &Node, what: &str) -> Image {
    let mut img = Image {
        name: name.to_string(),
        loc: Some(cx.loc(node)),
        ..Image::default()
    };
    let keys = Keys {
        what,
        known: KNOWN,
        legacy: LEGACY,
        drift: &[],
    };
    for (key, k, v) in check_keys(cx, node, &keys) {
        match key.as_str() {
            "enabled" => img.enabled = decode::boolean(cx, &key, v),
            "base" => img.base = decode::spanned_string(cx, &key, v),
            "from" => img.from = decode::spanned_string(cx, &key, v),
            "bootstrap_builder_image" => {
                img.bootstrap_builder_image = decode::spanned_string(cx, &key, v)
            }
            "layer" => img.layers = decode::spanned_list(cx, &key, v, false),
            "platform" => img.platform = Some(decode::list(cx, &key, v, true)),
            "tag" | "registry" => {
                super::literal::image_field(cx, &key, v);
                let s = decode::string(cx, &key, v);
                if key == "tag" {
                    img.tag = s
                } else {
                    img.registry = s
                }
            }
            "distro" => img.distro = Some(decode::list(cx, &key, v, true)),
            "build" => img.build = Some(decode::list(cx, &key, v, true)),
            "produce" => img.produce = Some(decode::list(cx, &key, v, true)),
            "user" => {
                super::literal::image_field(cx, &key, v);
                img.user = decode::string(cx, &key, v)
            }
            "uid" => img.uid = decode::number(cx, &key, v),
            "gid" => img.gid = decode::number(cx, &key, v),
            "user_policy" => img.user_policy = decode::string(cx, &key, v),
            "init" => img.init = decode::string(cx, &key, v),
            "eval" => {
                // Checks run as shell arguments, which cannot hold a NUL.
                super::literal::no_nul(cx, &key, v);
                img.eval = decode::json_list(cx, &key, v)
            }
            "builder" => img.builder = builder_map(cx, v),
            "status" | "info" => {
                cx.warn(k, format!("{what}: `{key}` is a dead key; ov ignores it"))
            }
            "name" => {}
            _ => {
                img.meta.insert(key, v.to_json());
            }
        }
    }
    img
}

fn builder_map(cx: &mut Cx, v: &Node) -> Option<IndexMap<String, Spanned<String>>> {
    if v.as_str().is_some() {
        cx.error(
            v,
            "`builder` must be a map of format to image (e.g. `{pixi: my-builder}`); the scalar form is an old spelling",
        );
        return None;
    }
    let mut out = IndexMap::new();
    for (k, val) in v.as_map().unwrap_or_default() {
        let (Some(fmt), Some(img)) = (k.as_str(), decode::spanned_string(cx, "builder", val))
        else {
            continue;
        };
        out.insert(fmt.to_string(), img);
    }
    Some(out)
}
