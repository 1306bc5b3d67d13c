//! Decoding VM entities from `vm.yml` and `deploy.yml`'s `vm:` map (§1.5).

use super::decode::{self, check_keys, Cx, Keys};
use super::vm_seed;
use crate::diag::Diagnostics;
use crate::load::model::{Project, Spanned, Vm, VmSourceKind};
use crate::load::yaml::Node;
use indexmap::IndexMap;
use ov_rules::rule::cloud_image::Checksum;
use ov_rules::vm::ssh_key::{self, KeySource};
use ov_rules::vm::Instance;
use serde_json::Value as Json;
use std::path::Path;

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
    "ready",
];

/// Spellings written by ov's own migrator that ov's Go tags do not read.
const DRIFT: &[(&str, &str)] = &[("cpu", "cpus")];
const NESTED_DRIFT: &[(&str, &str, &str)] = &[
    ("network", "port_forward", "port_forwards"),
    ("libvirt", "device", "devices"),
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
    let cloud_init = node
        .get("cloud_init")
        .filter(|n| !n.is_null())
        .map(|n| vm_seed::cloud_init(cx, &what, n));
    let ssh = node.get("ssh");
    let key_source = match ssh.and_then(|s| s.get("key_source")) {
        Some(n) if !n.is_null() => Spanned::new(
            vm_seed::key_source(cx, n).unwrap_or(KeySource::None),
            cx.loc(n),
        ),
        _ => Spanned::new(KeySource::Auto, cx.loc(ssh.unwrap_or(node))),
    };
    let key_via_cloud_init = vm_seed::inject_via_cloud_init(cx, ssh, kind == VmSourceKind::Bootc);
    let checksum = if kind == VmSourceKind::CloudImage {
        vm_seed::checksum(cx, source.get("checksum"))
    } else {
        Checksum::Sidecar
    };
    let disk = super::vm_disk::decode(cx, &what, node, source);
    let mut source_json = source.to_json();
    if let Json::Object(o) = &mut source_json {
        o.remove("kind");
    }
    let boot = super::vm_boot::decode(cx, name, node, kind == VmSourceKind::CloudImage);
    Some(Vm {
        boot,
        name: name.to_string(),
        loc: cx.loc(node),
        source_kind: kind,
        image,
        source: source_json,
        spec,
        cloud_init,
        key_source,
        key_via_cloud_init,
        checksum,
        ssh_public_key: None,
        disk,
    })
}

/// Whether the VM gets a seed ISO: cloud images always do, other kinds
/// when they declare `cloud_init:` (ov's rule).
pub fn wants_seed(vm: &Vm) -> bool {
    vm.source_kind == VmSourceKind::CloudImage || vm.cloud_init.is_some()
}

/// Resolves every buildable VM's public key per `ssh.key_source` (for the
/// default instance under `vm_state`): a path is read (relative to the
/// project root, `~/` from `$HOME`) and must be a public key, and
/// `generate` makes the pair now, since the public half is part of the
/// seed's key (and what a boot logs in with). The key is kept on the VM
/// (`ssh_public_key`) for every node that needs it. The files read become
/// inputs of the plan.
pub fn resolve_keys(project: &mut Project, vm_state: &Path, diags: &mut Diagnostics) {
    let root = project.root.clone();
    let mut inputs = Vec::new();
    // Lifecycle kinds (clone, imported) build nothing and boot nothing.
    let builds = |v: &Vm| !matches!(v.source_kind, VmSourceKind::Clone | VmSourceKind::Imported);
    for vm in project.vms.values_mut().filter(|v| builds(v)) {
        if let KeySource::Path(p) = &vm.key_source.value {
            let p = match p.strip_prefix("~") {
                Ok(rest) => ssh_key::home().map(|h| h.join(rest)).unwrap_or(p.clone()),
                Err(_) => root.join(p),
            };
            vm.key_source.value = KeySource::Path(p);
        }
        let Ok(instance) = Instance::new(&vm.name, None) else {
            diags.error(
                Some(vm.loc.clone()),
                format!(
                    "vm `{}`: the name cannot name a VM instance (letters, digits, `-`, `_`, `.`)",
                    vm.name
                ),
            );
            continue;
        };
        inputs.extend(ssh_key::inputs(&vm.key_source.value, &instance, vm_state));
        match ssh_key::public_key(&vm.key_source.value, &instance, vm_state) {
            Ok(k) => vm.ssh_public_key = k.map(|k| k.line),
            Err(e) => diags.error(
                Some(vm.key_source.loc.clone()),
                format!("vm `{}`: `ssh.key_source`: {e}", vm.name),
            ),
        }
    }
    project.inputs.files.extend(inputs);
}
