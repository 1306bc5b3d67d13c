//! A boot node's typed spec: what vm.yml says about booting a VM, checked
//! once at load, so the executor and `ov vm` never see free text where a
//! size, a port or a choice belongs. Every string here that reaches domain
//! XML or a qemu argument is either a closed choice or was checked by
//! [`plain_token`] at load; XML rendering escapes them all the same.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The firmware a VM boots with (`firmware:`), as ov names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    /// SeaBIOS (ov's default).
    #[default]
    Bios,
    /// OVMF without secure boot.
    UefiInsecure,
    /// OVMF with secure boot (needs SMM, so a q35 machine).
    UefiSecure,
}

impl Firmware {
    /// The spellings vm.yml accepts.
    pub const NAMES: [&'static str; 3] = ["bios", "uefi-insecure", "uefi-secure"];

    /// Reads `firmware:`.
    pub fn parse(s: &str) -> Option<Firmware> {
        match s {
            "bios" => Some(Firmware::Bios),
            "uefi-insecure" => Some(Firmware::UefiInsecure),
            "uefi-secure" => Some(Firmware::UefiSecure),
            _ => None,
        }
    }

    /// True for the OVMF variants.
    pub fn is_uefi(self) -> bool {
        self != Firmware::Bios
    }
}

/// One `network.port_forwards` entry: `host:guest`, TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    /// The port on the host (127.0.0.1).
    pub host: u16,
    /// The port in the guest.
    pub guest: u16,
}

impl PortForward {
    /// Reads `"8080:80"` (a bare `"80"` forwards the same port).
    pub fn parse(s: &str) -> Option<PortForward> {
        let port = |p: &str| p.trim().parse::<u16>().ok().filter(|p| *p != 0);
        match s.split_once(':') {
            Some((h, g)) => Some(PortForward {
                host: port(h)?,
                guest: port(g)?,
            }),
            None => port(s).map(|p| PortForward { host: p, guest: p }),
        }
    }
}

/// Where the public key the guest trusts comes from (`ssh.key_source`):
/// the seed's type, so the two read one key alike.
pub use crate::vm::ssh_key::KeySource;

/// How the build reaches the guest over ssh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshAccess {
    /// The guest user (`ssh.user`; ov's default for cloud images is `ov`).
    pub user: String,
    /// `ssh.port`: the host port `ov vm create` forwards to guest :22.
    /// Build-time boots pick a free port instead, so two builds never
    /// collide.
    pub port: u16,
    /// `ssh.key_source`.
    pub key: KeySource,
}

/// A `libvirt.devices.graphics` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graphics {
    /// `spice`, `vnc` or `none`.
    pub kind: String,
    /// `listen` (an address, checked at load).
    pub listen: Option<String>,
}

/// A `libvirt.devices.video` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    /// `model` (virtio, qxl, vga, cirrus, bochs, ramfb, none).
    pub model: String,
    /// `heads`.
    pub heads: Option<u32>,
}

/// When a booted VM counts as up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// A line the serial console prints once the guest is up; `None`:
    /// the ssh port answering and accepting the instance key.
    pub console: Option<String>,
    /// How long the guest gets, in seconds.
    pub timeout_s: u64,
}

/// The default time a guest gets to come up: a Debian guest under TCG
/// answers ssh after about 80 s on the project's machines.
pub const DEFAULT_READY_TIMEOUT_S: u64 = 600;

/// A boot node's spec, typed (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootSpec {
    /// The VM's name in vm.yml.
    pub vm: String,
    /// `ram`, in MiB.
    pub ram_mib: u64,
    /// `cpus`.
    pub cpus: u32,
    /// `firmware`.
    pub firmware: Firmware,
    /// `machine` (`q35` when unset).
    pub machine: Option<String>,
    /// `disk_size` in bytes: the instance overlay grows to it.
    pub disk_size: Option<u64>,
    /// `network.model` (`virtio` when unset).
    pub nic_model: Option<String>,
    /// `network.port_forwards` (only `ov vm create` forwards them).
    pub port_forwards: Vec<PortForward>,
    /// `ssh`.
    pub ssh: SshAccess,
    /// `libvirt.devices.graphics`.
    pub graphics: Vec<Graphics>,
    /// `libvirt.devices.video`.
    pub video: Vec<Video>,
    /// `ready`.
    pub ready: Ready,
    /// The checks run on the booted guest: `eval:` then `deploy_eval:`.
    pub checks: Vec<Json>,
    /// True when the plan gives it a seed (a cloud-init ISO).
    pub seed: bool,
}

/// Parses a size as vm.yml writes them (`4G`, `8192M`, `2 GiB`, `512MiB`,
/// a bare number of bytes) into bytes. Binary units, as qemu reads them.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let value: f64 = num.parse().ok()?;
    if !(value.is_finite() && value > 0.0) {
        return None;
    }
    let bytes = value * mult as f64;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// True for a word that can stand in XML and a qemu option list as is:
/// letters, digits, `.`, `-`, `_`, at most 64 of them. Machine types and
/// device models are such words; anything else is refused at load.
pub fn plain_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_qemu_reads_them() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("8192M"), Some(8192 << 20));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        for bad in ["", "G", "4 gigs", "-1G", "4Q", "0", "4GiBs"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn port_forwards_and_choices_parse() {
        assert_eq!(
            PortForward::parse("8080:80"),
            Some(PortForward {
                host: 8080,
                guest: 80
            })
        );
        assert_eq!(PortForward::parse("443").map(|p| p.guest), Some(443));
        assert_eq!(PortForward::parse("70000:80"), None);
        assert_eq!(PortForward::parse("a:b"), None);
        assert_eq!(Firmware::parse("uefi-secure"), Some(Firmware::UefiSecure));
        assert_eq!(Firmware::parse("uefi"), None);
        assert!(plain_token("pc-q35-7.2"));
        assert!(!plain_token("q35'/><x"));
    }
}
