//! A VM's disk fields, typed at load: `disk_size` and `source.root_size` in
//! bytes, `source.rootfs`, `source.disk_format` and `source.transport` from
//! their closed sets, and the strings that reach the disk script
//! (`kernel_args`, `ssh.user`) checked for what the script cannot carry.
//! Anything else is an error at its line, before anything builds.

use super::decode::Cx;
use crate::load::model::VmDisk;
use crate::load::yaml::Node;
use ov_rules::rule::disk::{is_kernel_args, is_user_name, parse_size};
use ov_rules::rule::{DiskFormat, RootFs, Transport};

/// Reads the disk fields of VM entry `node` (`what` names it) whose source
/// is `source`. A missing `disk_size` is not an error here: as in ov, only
/// building a bootstrap or bootc disk needs one (the disk node says so).
pub fn decode(cx: &mut Cx, what: &str, node: &Node, source: &Node) -> VmDisk {
    let mut disk = VmDisk {
        size: size(cx, what, "disk_size", node.get("disk_size")),
        root_size: size(cx, what, "source.root_size", source.get("root_size")),
        ..VmDisk::default()
    };
    if let Some(v) = source.get("rootfs") {
        if let Some(r) = one_of(cx, what, "source.rootfs", v, RootFs::parse, &RootFs::NAMES) {
            disk.rootfs = r;
        }
    }
    if let Some(v) = source.get("disk_format") {
        if let Some(f) = one_of(
            cx,
            what,
            "source.disk_format",
            v,
            DiskFormat::parse,
            &DiskFormat::NAMES,
        ) {
            disk.format = f;
        }
    }
    if let Some(v) = source.get("transport") {
        if let Some(t) = one_of(
            cx,
            what,
            "source.transport",
            v,
            Transport::parse,
            &Transport::NAMES,
        ) {
            disk.transport = t;
        }
    }
    if let Some(v) = source.get("kernel_args") {
        match v.as_str() {
            Some(k) if is_kernel_args(k) => disk.kernel_args = Some(k.to_string()),
            Some(k) => cx.error(
                v,
                format!(
                    "{what}: `source.kernel_args` `{k}` cannot go on a kernel command line as \
                     written (no quotes, `$`, `\\`, `|`, `&`, `;` or control characters)"
                ),
            ),
            None => cx.error(v, format!("{what}: `source.kernel_args` must be text")),
        }
    }
    if let Some(v) = node.get("ssh").and_then(|s| s.get("user")) {
        match v.as_str() {
            Some(u) if is_user_name(u) => disk.ssh_user = Some(u.to_string()),
            Some(u) => cx.error(
                v,
                format!(
                    "{what}: `ssh.user` `{u}` is not a user name (lower-case letters, digits, \
                     `_` and `-`, starting with a letter or `_`)"
                ),
            ),
            None => cx.error(v, format!("{what}: `ssh.user` must be text")),
        }
    }
    if let (Some(root), Some(size)) = (disk.root_size, disk.size) {
        if root > size {
            if let Some(v) = source.get("root_size") {
                cx.error(
                    v,
                    format!("{what}: `source.root_size` is larger than `disk_size`"),
                );
            }
        }
    }
    disk
}

fn size(cx: &mut Cx, what: &str, field: &str, v: Option<&Node>) -> Option<u64> {
    let v = v?;
    let text = match v.as_str() {
        Some(t) => t.to_string(),
        None => {
            let j = v.to_json();
            if j.is_null() {
                return None;
            }
            j.to_string()
        }
    };
    match parse_size(&text) {
        Ok(n) => Some(n),
        Err(e) => {
            cx.error(v, format!("{what}: `{field}`: {e}"));
            None
        }
    }
}

fn one_of<T>(
    cx: &mut Cx,
    what: &str,
    field: &str,
    v: &Node,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
) -> Option<T> {
    let text = v.as_str().unwrap_or("");
    let found = parse(text);
    if found.is_none() {
        cx.error(
            v,
            format!(
                "{what}: `{field}` `{text}` is not one of {}{}",
                names.join(", "),
                crate::diag::did_you_mean(text, names.iter().copied())
            ),
        );
    }
    found
}
