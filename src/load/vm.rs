//! Decoding VM entities from `vm.yml` and `deploy.yml`'s `vm:` map (§1.5).

use super::decode::{self, check_keys, Cx, Keys};
use crate::load::model::{Vm, VmSourceKind};
use crate::load::yaml::Node;
use indexmap::IndexMap;
use serde_json::Value as Json;

const KNOWN: &[&str] = &[
    "source",
    "disk_size",
    "ram",
    "cpus",
    "firmware",
    "machine",
    "network",
    "ssh",
    "cloud_init",
    "libvirt",
    "eval",
    "deploy_eval",
    "snapshot",
    "name",
    "description",
];

/// Spellings written by ov's own migrator that ov's Go tags do not read.
const DRIFT: &[(&str, &str)] = &[("cpu", "cpus")];
const NESTED_DRIFT: &[(&str, &str, &str)] = &[
    ("network", "port_forward", "port_forwards"),
    ("libvirt", "device", "devices"),
    ("cloud_init", "user", "users"),
];

const SOURCE_KNOWN: &[&str] = &[
    "kind",
    "url",
    "checksum",
    "cache",
    "base_user",
    "image",
    "transport",
    "rootfs",
    "root_size",
    "kernel_args",
    "builder",
    "builder_image",
    "distro",
    "package",
    "bootstrap_arch",
    "bootstrap_variant",
    "from_vm",
    "from_snapshot",
    "cloud_init_clean",
    "libvirt_name",
    "disk_path",
    "disk_format",
    "disk_bus",
];

pub fn decode(cx: &mut Cx, name: &str, node: &Node) -> Option<Vm> {
    let what = format!("vm `{name}`");
    let keys = Keys {
        what: &what,
        known: KNOWN,
        legacy: &[("packages", "`cloud_init.package`")],
        drift: DRIFT,
    };
    let mut spec = IndexMap::new();
    let mut source = None;
    for (key, k, v) in check_keys(cx, node, &keys) {
        match key.as_str() {
            "source" => source = Some(v),
            "name" => {}
            _ => {
                let mut json = v.to_json();
                for (parent, from, to) in NESTED_DRIFT {
                    if key == *parent {
                        if let Some(obj) = json.as_object_mut() {
                            if let Some(val) = obj.remove(*from) {
                                cx.warn(
                                    v.get(from).unwrap_or(k),
                                    format!("{what}: `{parent}.{from}` is read as `{parent}.{to}` (ov itself ignores `{from}`)"),
                                );
                                obj.entry(to.to_string()).or_insert(val);
                            }
                        }
                    }
                }
                spec.insert(key, json);
            }
        }
    }
    let Some(source) = source else {
        cx.error(
            node,
            format!("{what}: missing `source` (kind: cloud_image, bootc or bootstrap)"),
        );
        return None;
    };
    let skeys = Keys {
        what: &format!("{what} source"),
        known: SOURCE_KNOWN,
        legacy: &[],
        drift: &[],
    };
    check_keys(cx, source, &skeys);
    let kind_node = source.get("kind");
    let kind = match kind_node.and_then(Node::as_str) {
        Some("cloud_image") => VmSourceKind::CloudImage,
        Some("bootc") => VmSourceKind::Bootc,
        Some("bootstrap") => VmSourceKind::Bootstrap,
        Some("clone") => VmSourceKind::Clone,
        Some("imported") => VmSourceKind::Imported,
        other => {
            let kinds = ["cloud_image", "bootc", "bootstrap", "clone", "imported"];
            let msg = match other {
                Some(k) => format!(
                    "{what}: unknown source kind `{k}`{}",
                    crate::diag::did_you_mean(k, kinds)
                ),
                None => format!(
                    "{what}: `source.kind` is missing (one of {})",
                    kinds.join(", ")
                ),
            };
            cx.error(kind_node.unwrap_or(source), msg);
            return None;
        }
    };
    let image_field = match kind {
        VmSourceKind::Bootc => "image",
        VmSourceKind::Bootstrap => "builder_image",
        _ => "",
    };
    let image = source
        .get(image_field)
        .and_then(|n| decode::spanned_string(cx, image_field, n));
    if kind == VmSourceKind::Bootc && image.is_none() {
        cx.error(source, format!("{what}: a bootc source needs `image`"));
    }
    // The builder has to run in some image: the plan's bootstrap node
    // depends on it.
    if kind == VmSourceKind::Bootstrap && image.is_none() {
        cx.error(
            source,
            format!("{what}: a bootstrap source needs `builder_image`"),
        );
    }
    if kind == VmSourceKind::CloudImage && source.get("url").and_then(Node::as_str).is_none() {
        cx.error(source, format!("{what}: a cloud_image source needs `url`"));
    }
    let disk = super::vm_disk::decode(cx, &what, node, source);
    let mut source_json = source.to_json();
    if let Json::Object(o) = &mut source_json {
        o.remove("kind");
    }
    Some(Vm {
        name: name.to_string(),
        loc: cx.loc(node),
        source_kind: kind,
        image,
        source: source_json,
        spec,
        disk,
    })
}
