//! The typed values of a VM's disk fields, parsed once at load so a bad
//! `disk_size` or `rootfs` is an error naming its line, not a failed run.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `source.rootfs`: the root partition's file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootFs {
    /// ov's default.
    #[default]
    Ext4,
    /// XFS.
    Xfs,
    /// Btrfs.
    Btrfs,
}

impl RootFs {
    /// Every accepted spelling, for error messages.
    pub const NAMES: [&'static str; 3] = ["ext4", "xfs", "btrfs"];

    /// Parses a `rootfs` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ext4" => Some(RootFs::Ext4),
            "xfs" => Some(RootFs::Xfs),
            "btrfs" => Some(RootFs::Btrfs),
            _ => None,
        }
    }

    /// The name as written (and as fstab and parted want it).
    pub fn as_str(self) -> &'static str {
        match self {
            RootFs::Ext4 => "ext4",
            RootFs::Xfs => "xfs",
            RootFs::Btrfs => "btrfs",
        }
    }

    /// The command that makes it, forced over whatever the device held.
    pub fn mkfs(self) -> &'static str {
        match self {
            RootFs::Ext4 => "mkfs.ext4 -q -F",
            RootFs::Xfs => "mkfs.xfs -q -f",
            RootFs::Btrfs => "mkfs.btrfs -q -f",
        }
    }
}

impl fmt::Display for RootFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The disk file's format (`ov vm build --type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFormat {
    /// QEMU copy-on-write v2: sparse wherever it is stored.
    #[default]
    Qcow2,
    /// A plain disk image.
    Raw,
}

impl DiskFormat {
    /// Every accepted spelling, for error messages.
    pub const NAMES: [&'static str; 2] = ["qcow2", "raw"];

    /// Parses a format name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "qcow2" => Some(DiskFormat::Qcow2),
            "raw" => Some(DiskFormat::Raw),
            _ => None,
        }
    }

    /// The name qemu-img uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `source.transport` of a bootc VM: where `bootc install` reads the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// ov's default: the image's registry.
    #[default]
    Registry,
    /// The engine's local storage.
    ContainersStorage,
    /// An OCI directory layout.
    Oci,
    /// An OCI tarball.
    OciArchive,
}

impl Transport {
    /// Every accepted spelling, for error messages.
    pub const NAMES: [&'static str; 4] = ["registry", "containers-storage", "oci", "oci-archive"];

    /// Parses a transport name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registry" => Some(Transport::Registry),
            "containers-storage" => Some(Transport::ContainersStorage),
            "oci" => Some(Transport::Oci),
            "oci-archive" => Some(Transport::OciArchive),
            _ => None,
        }
    }

    /// The name bootc uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Registry => "registry",
            Transport::ContainersStorage => "containers-storage",
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
        }
    }
}

/// Why a size did not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with a unit.
    #[error("`{0}` is not a size (a whole number with an optional unit: 536870912, 512M, 20G, \"10 GiB\", 1T)")]
    Malformed(String),
    /// Zero bytes.
    #[error("`{0}` is zero bytes")]
    Zero(String),
    /// More than fits in 64 bits.
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses a size as ov reads `disk_size` and `root_size`: a whole number
/// of bytes, or of K/M/G/T (also KiB…TiB, any case, spaces allowed), all
/// powers of 1024 as in ov's `parseSizeToBytes`. Hand-rolled because the
/// size crates read `G` as 10^9, which would make a different disk.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let bad = || SizeError::Malformed(text.to_string());
    if num.is_empty() {
        return Err(bad());
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return Err(bad()),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_string()))?;
    if n == 0 {
        return Err(SizeError::Zero(text.to_string()));
    }
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(text.to_string()))
}

/// A size for people: `20 GiB`, `512 MiB`, `1000 bytes`.
pub fn show_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift {
            let whole = bytes >> shift;
            let rest = bytes & ((1 << shift) - 1);
            return if rest == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{:.1} {unit}", bytes as f64 / (1u64 << shift) as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// True for kernel arguments that can go into a grub config's
/// double-quoted `GRUB_CMDLINE_LINUX_DEFAULT`, a `sed` replacement and a
/// single-quoted shell word unchanged: no quotes, `$`, backslashes, `|`,
/// `&` or control characters.
pub fn is_kernel_args(s: &str) -> bool {
    s.chars().all(|c| {
        c == ' '
            || (c.is_ascii_graphic()
                && !matches!(c, '"' | '\'' | '`' | '$' | '\\' | '|' | '&' | ';'))
    })
}

/// True for a user name that can stand unquoted in a shell line and in a
/// sudoers file name (the bootloader templates put `{{.SSHUser}}` there).
pub fn is_user_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase() || f == '_')
        && s.len() <= 32
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_ov_reads_them() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("10 GiB"), Ok(10 << 30));
        assert_eq!(parse_size("10240M"), Ok(10240 << 20));
        assert_eq!(parse_size("536870912"), Ok(536_870_912));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert_eq!(parse_size("4k"), Ok(4096));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for s in ["", "G", "20X", "-1G", "1.5G", "20 G B", "ten"] {
            assert!(matches!(parse_size(s), Err(SizeError::Malformed(_))), "{s}");
        }
        assert_eq!(parse_size("0G"), Err(SizeError::Zero("0G".into())));
        assert!(matches!(
            parse_size("99999999999T"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn sizes_show_in_binary_units() {
        assert_eq!(show_size(20 << 30), "20 GiB");
        assert_eq!(show_size(3 << 29), "1.5 GiB");
        assert_eq!(show_size(100), "100 bytes");
    }

    #[test]
    fn kernel_args_that_would_break_out_are_refused() {
        assert!(is_kernel_args("console=ttyS0,115200n8 quiet rd.break=1"));
        for bad in ["a\"b", "$(x)", "a`b`", "a'b", "a|b", "a\\b", "a\nb", "a;b"] {
            assert!(!is_kernel_args(bad), "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_plain() {
        assert!(is_user_name("debian"));
        assert!(is_user_name("_svc-1"));
        for bad in ["", "Root", "a b", "a;b", "-x", "$u"] {
            assert!(!is_user_name(bad), "{bad:?}");
        }
    }
}
