//! The boot half of a VM entry, typed at load: sizes parsed, choices
//! checked, every string that reaches domain XML or a qemu argument held
//! to a plain word or an address. A bad value is an error at its
//! file:line:col, before anything builds.

use super::decode::Cx;
use super::yaml::Node;
use crate::diag::did_you_mean;
use ov_rules::rule::boot::spec::{
    self, plain_token, BootSpec, Firmware, Graphics, KeySource, PortForward, Ready, SshAccess,
    Video, DEFAULT_READY_TIMEOUT_S,
};
use serde_json::Value as Json;

/// ov's defaults for a VM that says nothing.
const DEFAULT_RAM_MIB: u64 = 4096;
const DEFAULT_CPUS: u32 = 2;
const DEFAULT_SSH_PORT: u16 = 2222;
const NET_MODES: [&str; 1] = ["user"];
const GRAPHICS: [&str; 3] = ["spice", "vnc", "none"];
const VIDEO: [&str; 7] = ["virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none"];

fn choice<'a>(cx: &mut Cx, node: &Node, field: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let s = node.as_str();
    match s.and_then(|s| allowed.iter().find(|a| **a == s)) {
        Some(a) => Some(a),
        None => {
            let got = s.unwrap_or(node.shape());
            cx.error(
                node,
                format!(
                    "{field}: `{got}` is not one of {}{}",
                    allowed.join(", "),
                    did_you_mean(got, allowed.iter().copied())
                ),
            );
            None
        }
    }
}

fn int(cx: &mut Cx, node: &Node, field: &str, min: u64, max: u64) -> Option<u64> {
    match node.as_str().and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            cx.error(
                node,
                format!(
                    "{field} must be a whole number from {min} to {max}, not `{}`",
                    node.as_str().unwrap_or(node.shape())
                ),
            );
            None
        }
    }
}

fn size(cx: &mut Cx, node: &Node, field: &str) -> Option<u64> {
    match node.as_str().and_then(spec::parse_size) {
        Some(n) => Some(n),
        None => {
            cx.error(
                node,
                format!(
                    "{field}: `{}` is not a size (write it as 4G, 8192M or 2 GiB)",
                    node.as_str().unwrap_or(node.shape())
                ),
            );
            None
        }
    }
}

fn token(cx: &mut Cx, node: &Node, field: &str) -> Option<String> {
    match node.as_str() {
        Some(s) if plain_token(s) => Some(s.to_string()),
        _ => {
            cx.error(
                node,
                format!(
                    "{field}: `{}` is not a plain name (letters, digits, `.`, `-`, `_`)",
                    node.as_str().unwrap_or(node.shape())
                ),
            );
            None
        }
    }
}

fn checks(node: Option<&Node>) -> Vec<Json> {
    match node.map(Node::to_json) {
        Some(Json::Array(a)) => a,
        _ => Vec::new(),
    }
}

fn user_ok(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.len() <= 32
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// Reads the boot fields of VM `name` (`node` is its entry). `cloud` is
/// true for cloud-image VMs, whose default ssh user is `ov`.
pub fn decode(cx: &mut Cx, name: &str, node: &Node, cloud: bool) -> Option<BootSpec> {
    let errors = cx.diags.errors().count();
    let what = format!("vm `{name}`");
    let field = |f: &str| format!("{what}: {f}");
    let ram_mib = match node.get("ram") {
        Some(n) => size(cx, n, &field("ram")).map_or(DEFAULT_RAM_MIB, |b| b >> 20),
        None => DEFAULT_RAM_MIB,
    };
    if let (Some(n), true) = (node.get("ram"), ram_mib < 64) {
        cx.error(n, format!("{}: at least 64M", field("ram")));
    }
    let cpus = node
        .get("cpus")
        .and_then(|n| int(cx, n, &field("cpus"), 1, 256))
        .map_or(DEFAULT_CPUS, |c| c as u32);
    let firmware = node
        .get("firmware")
        .and_then(|n| choice(cx, n, &field("firmware"), &Firmware::NAMES))
        .and_then(Firmware::parse)
        .unwrap_or_default();
    let machine = node
        .get("machine")
        .and_then(|n| token(cx, n, &field("machine")));
    if let (Some(m), Firmware::UefiSecure, Some(n)) = (&machine, firmware, node.get("machine")) {
        if !m.contains("q35") {
            cx.error(
                n,
                format!(
                    "{}: secure boot needs a q35 machine, not `{m}`",
                    field("machine")
                ),
            );
        }
    }
    let disk_size = node
        .get("disk_size")
        .and_then(|n| size(cx, n, &field("disk_size")));
    let net = node.get("network");
    let nic_model = net
        .and_then(|n| n.get("model"))
        .and_then(|n| token(cx, n, &field("network.model")));
    if let Some(m) = net.and_then(|n| n.get("mode")) {
        choice(cx, m, &field("network.mode"), &NET_MODES);
    }
    let mut port_forwards = Vec::new();
    if let Some(pf) = net.and_then(|n| n.get("port_forwards")) {
        for item in pf.as_seq().unwrap_or_default() {
            match item.as_str().and_then(PortForward::parse) {
                Some(p) => port_forwards.push(p),
                None => cx.error(
                    item,
                    format!(
                        "{}: `{}` is not `HOST:GUEST` (ports 1 to 65535)",
                        field("network.port_forwards"),
                        item.as_str().unwrap_or(item.shape())
                    ),
                ),
            }
        }
    }
    let ssh = node.get("ssh");
    let user = match ssh.and_then(|s| s.get("user")) {
        Some(n) => match n.as_str() {
            Some(u) if user_ok(u) => u.to_string(),
            _ => {
                cx.error(
                    n,
                    format!(
                        "{}: `{}` is not a user name",
                        field("ssh.user"),
                        n.as_str().unwrap_or(n.shape())
                    ),
                );
                String::new()
            }
        },
        None if cloud => "ov".into(),
        None => "root".into(),
    };
    let port = ssh
        .and_then(|s| s.get("port"))
        .and_then(|n| int(cx, n, &field("ssh.port"), 1, 65535))
        .map_or(DEFAULT_SSH_PORT, |p| p as u16);
    let key = ssh
        .and_then(|s| s.get("key_source"))
        .and_then(Node::as_str)
        .map(KeySource::parse)
        .unwrap_or_default();
    let devices = node
        .get("libvirt")
        .and_then(|l| l.get("devices").or_else(|| l.get("device")));
    let mut graphics = Vec::new();
    for g in devices
        .and_then(|d| d.get("graphics"))
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        let kind = g
            .get("type")
            .and_then(|t| choice(cx, t, &field("libvirt.devices.graphics.type"), &GRAPHICS));
        let listen = match g.get("listen") {
            Some(l) => match l.as_str().map(|s| s.parse::<std::net::IpAddr>()) {
                Some(Ok(ip)) => Some(ip.to_string()),
                _ => {
                    cx.error(
                        l,
                        format!(
                            "{}: `{}` is not an IP address",
                            field("libvirt.devices.graphics.listen"),
                            l.as_str().unwrap_or(l.shape())
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(kind) = kind {
            graphics.push(Graphics {
                kind: kind.to_string(),
                listen,
            });
        }
    }
    let mut video = Vec::new();
    for v in devices
        .and_then(|d| d.get("video"))
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        let model = v
            .get("model")
            .and_then(|t| choice(cx, t, &field("libvirt.devices.video.model"), &VIDEO));
        let heads = v
            .get("heads")
            .and_then(|h| int(cx, h, &field("libvirt.devices.video.heads"), 1, 16))
            .map(|h| h as u32);
        if let Some(model) = model {
            video.push(Video {
                model: model.to_string(),
                heads,
            });
        }
    }
    let ready_node = node.get("ready");
    let console = ready_node
        .and_then(|r| r.get("console"))
        .and_then(Node::as_str)
        .map(str::to_string);
    let timeout_s = ready_node
        .and_then(|r| r.get("timeout"))
        .and_then(|n| int(cx, n, &field("ready.timeout"), 1, 24 * 3600))
        .unwrap_or(DEFAULT_READY_TIMEOUT_S);
    let mut all_checks = checks(node.get("eval"));
    all_checks.extend(checks(node.get("deploy_eval")));
    if key == KeySource::None && !all_checks.is_empty() {
        if let Some(n) = ssh.and_then(|s| s.get("key_source")) {
            cx.error(
                n,
                format!(
                    "{}: `none` leaves no way to run the VM's checks over ssh",
                    field("ssh.key_source")
                ),
            );
        }
    }
    if cx.diags.errors().count() > errors {
        return None;
    }
    Some(BootSpec {
        vm: name.to_string(),
        ram_mib,
        cpus,
        firmware,
        machine,
        disk_size,
        nic_model,
        port_forwards,
        ssh: SshAccess { user, port, key },
        graphics,
        video,
        ready: Ready { console, timeout_s },
        checks: all_checks,
        seed: false,
    })
}
