//! Loop devices a disk build may leave behind.
//!
//! A disk script attaches its raw file to a loop device inside a
//! privileged container, and loop devices belong to the host kernel: when
//! the container dies before its exit trap runs (Ctrl-C kills it, `kill -9`
//! of ov leaves it to the next build's cleanup), the device stays attached
//! and keeps the file's blocks. The kernel names the backing file by the
//! container's path, which means nothing outside it, so devices are
//! matched by the backing file's device and inode instead.

use serde::Deserialize;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    loopdevices: Vec<Device>,
}

#[derive(Deserialize)]
struct Device {
    name: String,
    #[serde(rename = "back-ino")]
    ino: Option<u64>,
    #[serde(rename = "back-maj:min")]
    dev: Option<String>,
}

/// `major:minor` of a `st_dev`, as losetup prints it (glibc's encoding).
fn maj_min(dev: u64) -> String {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    format!("{major}:{minor}")
}

/// The loop devices whose backing file is one of the regular files under
/// `dir`, by name (`/dev/loop3`).
pub fn attached_under(dir: &Path) -> Vec<String> {
    let files: HashSet<(String, u64)> = walkdir::WalkDir::new(dir)
        .max_depth(4)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| (maj_min(m.dev()), m.ino()))
        .collect();
    if files.is_empty() {
        return Vec::new();
    }
    let Ok(out) = Command::new("losetup")
        .args(["--list", "--json", "--output", "NAME,BACK-INO,BACK-MAJ:MIN"])
        .output()
    else {
        return Vec::new();
    };
    // No loop devices at all prints nothing, not an empty list.
    let listing: Listing = serde_json::from_slice(&out.stdout).unwrap_or(Listing {
        loopdevices: Vec::new(),
    });
    listing
        .loopdevices
        .into_iter()
        .filter(|d| match (&d.dev, d.ino) {
            (Some(dev), Some(ino)) => files.contains(&(dev.trim().to_string(), ino)),
            _ => false,
        })
        .map(|d| d.name)
        .collect()
}

/// Detaches every loop device backed by a file under `dir`; returns how
/// many. A device still mounted somewhere is detached by the kernel as
/// soon as that mount goes (losetup's detach marks it auto-clear).
pub fn release_under(dir: &Path) -> usize {
    attached_under(dir)
        .into_iter()
        .filter(|name| {
            Command::new("losetup")
                .args(["--detach", name])
                .status()
                .is_ok_and(|s| s.success())
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_print_as_losetup_prints_them() {
        // makedev(254, 0) and makedev(7, 1) as glibc encodes them.
        assert_eq!(maj_min(0xfe00), "254:0");
        assert_eq!(maj_min(0x0701), "7:1");
        assert_eq!(maj_min((259u64 << 8) | 3), "259:3");
    }

    #[test]
    fn a_dir_with_no_attached_files_releases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk.raw"), b"x").unwrap();
        assert!(attached_under(dir.path()).is_empty());
        assert_eq!(release_under(dir.path()), 0);
    }
}
