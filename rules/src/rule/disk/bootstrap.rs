//! A bootstrap VM's disk, the way ov builds one (`vm_disk_builder.go`,
//! `vm_bootstrap.go`): in a privileged container of the builder image with
//! the host's `/dev`, a sparse raw file goes on a loop device, gets a GPT
//! with a 512 MiB EFI system partition and a root partition in `rootfs`,
//! the rootfs tarball is unpacked onto it keeping xattrs and ACLs, and
//! build.yml's fstab, install (bootloader) and initramfs templates run
//! against it. The raw file then becomes the disk (see [`super::finish`]).
//!
//! Where this differs from ov's script, it is for this kind of host: no
//! `vfat` in the kernel (the ESP is mounted with `fusefat` when the kernel
//! cannot), the rootfs unpacked before the ESP is mounted (a FUSE mount
//! point refuses tar's chown), the guest's hostname set (otherwise the
//! builder container's leaks into `/etc/hostname`), and a check that the
//! rootfs has a kernel before any bootloader runs.

use super::super::{ExecCtx, ExecError, NodeOutput};
use super::{Bootloader, DiskFormat, DiskFrom, DiskSpec, ESP_MIB};
use crate::containerfile::quote::sh_sq;
use crate::rule::bootstrap::ROOTFS_BLOB;
use serde_json::json;
use std::path::Path;

/// Where the node's scratch dir appears in the container.
pub const WORK: &str = "/ov";
/// The root partition's mount point, the templates' `{{.Mnt}}`.
pub const MNT: &str = "/mnt";
/// With `OV_KEEP_DISK_SCRIPT=DIR`, a bootstrap disk's script and rootfs
/// tarball are kept in DIR (`disk-<vm>.sh`, `rootfs-<vm>.tar`), so the
/// benchmark can run the very same steps without ov.
pub const KEEP_SCRIPT_ENV: &str = "OV_KEEP_DISK_SCRIPT";
/// The exit code the script uses for a rootfs without a kernel.
const NO_KERNEL: i64 = 64;
/// The exit code the script uses for a rootfs that does not fit.
const NO_SPACE: i64 = 65;

/// The script's inputs besides the bootloader templates.
pub struct Plan<'a> {
    /// Bytes of the raw file.
    pub size: u64,
    /// The root partition's file system.
    pub rootfs: super::RootFs,
    /// `kernel_args`, checked at load ([`super::is_kernel_args`]).
    pub kernel_args: Option<&'a str>,
    /// `ssh.user`, checked at load ([`super::is_user_name`]).
    pub ssh_user: Option<&'a str>,
    /// The guest's hostname.
    pub hostname: &'a str,
}

/// The whole privileged script: partition, format, unpack, templates,
/// hostname, unmount. A template that does not render is an error naming
/// it.
pub fn script(plan: &Plan<'_>, templates: &Bootloader) -> Result<String, String> {
    let data = crate::template::from_json(&json!({
        "Mnt": MNT,
        "KernelArgs": plan.kernel_args.unwrap_or(""),
        "Rootfs": plan.rootfs.as_str(),
        "SSHUser": plan.ssh_user.unwrap_or(""),
    }));
    let mut body = String::new();
    if let Some(args) = plan.kernel_args.filter(|a| !a.trim().is_empty()) {
        // ov's lines: a grub.d drop-in, and the main file rewritten too
        // for distros whose grub does not read grub.d.
        let line = sh_sq(&format!("GRUB_CMDLINE_LINUX_DEFAULT=\"{args}\""));
        body.push_str(&format!(
            "mkdir -p {MNT}/etc/default/grub.d\n\
             printf '%s\\n' {line} > {MNT}/etc/default/grub.d/00-ov-kernel-args.cfg\n\
             sed -i {} {MNT}/etc/default/grub 2>/dev/null || true\n",
            sh_sq(&format!(
                "s|^GRUB_CMDLINE_LINUX_DEFAULT=.*|GRUB_CMDLINE_LINUX_DEFAULT=\"{args}\"|"
            ))
        ));
    }
    for (name, tpl) in [
        ("fstab_template", &templates.fstab),
        ("install_template", &templates.install),
        ("initramfs_template", &templates.initramfs),
    ] {
        let Some(tpl) = tpl else { continue };
        let rendered = crate::template::render(
            &format!("bootloader.{name}"),
            tpl,
            data.clone(),
            crate::template::Helpers::default(),
        )
        .map_err(|e| e.to_string())?;
        body.push_str(&format!("# --- build.yml bootloader.{name} ---\n"));
        body.push_str(&rendered);
        if !rendered.ends_with('\n') {
            body.push('\n');
        }
    }
    let host = sh_sq(plan.hostname);
    Ok(format!(
        r#"set -euo pipefail
RAW={WORK}/disk.raw
ROOTFS={WORK}/rootfs.tar
LOOP=
# On any exit: nothing stays mounted or attached, and a failed run leaves
# no sparse file.
cleanup() {{
  rc=$?
  set +e
  if [ -n "$LOOP" ]; then
    for m in $(grep -o " {MNT}[^ ]*" /proc/mounts | sort -r); do umount -l "$m"; done
    losetup -d "$LOOP"
  fi
  [ "$rc" -eq 0 ] || rm -f "$RAW"
  exit "$rc"
}}
trap cleanup EXIT
truncate -s {size} "$RAW"
LOOP=$(losetup --find --show --partscan "$RAW")
parted -s "$LOOP" \
  mklabel gpt \
  mkpart ESP fat32 1MiB {ESP_MIB}MiB \
  set 1 esp on \
  mkpart root {fs} {ESP_MIB}MiB 100%
partprobe "$LOOP" 2>/dev/null || true
for _ in $(seq 100); do [ -b "${{LOOP}}p2" ] && break; sleep 0.1; done
mkfs.fat -F32 -n ESP "${{LOOP}}p1" >/dev/null
{mkfs} "${{LOOP}}p2"
mkdir -p {MNT}
mount "${{LOOP}}p2" {MNT}
if ! tar -C {MNT} --xattrs --xattrs-include='*' --acls --numeric-owner -xf "$ROOTFS"; then
  if [ "$(df --output=avail -k {MNT} | tail -1)" -lt 4096 ]; then
    echo "ov: the rootfs does not fit the root partition ($(df -h --output=size {MNT} | tail -1 | tr -d ' '))" >&2
    exit {NO_SPACE}
  fi
  exit 1
fi
if ! ls {MNT}/boot/vmlinuz* >/dev/null 2>&1; then
  echo "ov: the rootfs has no kernel: no /boot/vmlinuz*" >&2
  exit {NO_KERNEL}
fi
mkdir -p {MNT}/boot/efi
# The ESP is FAT: the kernel's vfat when it has one, else FUSE (named after
# the device, so grub-install can find it).
mount -t vfat "${{LOOP}}p1" {MNT}/boot/efi 2>/dev/null \
  || fusefat -o rw+,fsname="${{LOOP}}p1" "${{LOOP}}p1" {MNT}/boot/efi
{body}printf '%s\n' {host} > {MNT}/etc/hostname
if ! grep -qw {host} {MNT}/etc/hosts 2>/dev/null; then
  printf '127.0.1.1\t%s\n' {host} >> {MNT}/etc/hosts
fi
sync
for m in $(grep -o " {MNT}[^ ]*" /proc/mounts | sort -r); do umount "$m"; done
losetup -d "$LOOP"
LOOP=
"#,
        size = plan.size,
        fs = plan.rootfs.as_str(),
        mkfs = plan.rootfs.mkfs(),
    ))
}

pub(super) async fn run(spec: &DiskSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let DiskFrom::Bootstrap {
        rootfs_node,
        builder_node,
        bootloader,
        ssh_user,
    } = &spec.from
    else {
        unreachable!("bootstrap::run is only called for bootstrap disks")
    };
    let vm = &spec.vm;
    let size = spec
        .size
        .ok_or_else(|| ExecError::Spec(format!("vm `{vm}`: a bootstrap disk needs `disk_size`")))?;
    let image = ctx.dep_image(builder_node)?.clone();
    let tarball = ctx.scratch.join("rootfs.tar");
    // Reading the gigabyte rootfs back against its digest runs beside the
    // container, whose partitioning and mkfs come before it reads the
    // tarball; no disk made from it is kept unless the check passed.
    let check = ctx.dep_blob_unchecked(rootfs_node, ROOTFS_BLOB, &tarball)?;
    let check = tokio::task::spawn_blocking(check);
    check_fits(vm, rootfs_node, &tarball, size)?;
    let script = script(
        &Plan {
            size,
            rootfs: spec.rootfs,
            kernel_args: spec.kernel_args.as_deref(),
            ssh_user: ssh_user.as_deref(),
            hostname: vm,
        },
        bootloader,
    )
    .map_err(|e| ExecError::Spec(format!("vm `{vm}`: {e}")))?;
    if let Some(dir) = std::env::var_os(KEEP_SCRIPT_ENV) {
        keep(Path::new(&dir), vm, &script, &tarball)?;
    }
    let run = super::privileged_run(ctx, &image, &script, binds(ctx.scratch)).await;
    match check.await {
        Ok(checked) => checked.map_err(super::super::at(&tarball))?,
        Err(e) => {
            return Err(ExecError::Spec(format!(
                "checking {rootfs_node}'s rootfs: {e}"
            )))
        }
    }
    let run = run?;
    (ctx.on_line)(&format!("disk script exited {}", run.exit_code));
    match run.exit_code {
        0 => {}
        NO_KERNEL => {
            return Err(ExecError::Failed {
                message: format!(
                    "vm `{vm}`: the rootfs {rootfs_node} made has no kernel: no /boot/vmlinuz* \
                     (add the distro's kernel package, such as linux-image-amd64, to \
                     `source.package` or the distro's `base_package`)"
                ),
                output: run.output,
            })
        }
        NO_SPACE => {
            return Err(ExecError::Failed {
                message: format!(
                    "vm `{vm}`: the rootfs {rootfs_node} made does not fit a {} disk \
                     (`disk_size`, less the {ESP_MIB} MiB ESP); make `disk_size` larger",
                    super::show_size(size)
                ),
                output: run.output,
            })
        }
        code => {
            return Err(ExecError::Failed {
                message: format!("vm `{vm}`: the disk script exited {code}"),
                output: run.output,
            })
        }
    }
    let raw = ctx.scratch.join("disk.raw");
    let _ = std::fs::remove_file(&tarball);
    let disk = super::cloud::convert(
        super::tool::Runner {
            node_id: ctx.node_id,
            cancel: ctx.cancel,
        },
        &raw,
        DiskFormat::Raw,
        spec.format,
    )
    .await?;
    super::finish(&disk, spec.format, run.output, rootfs_node)
}

/// Keeps the script and the tarball in `dir` (see [`KEEP_SCRIPT_ENV`]).
fn keep(dir: &Path, vm: &str, script: &str, tarball: &Path) -> Result<(), ExecError> {
    std::fs::create_dir_all(dir).map_err(super::super::at(dir))?;
    let sh = dir.join(format!("disk-{vm}.sh"));
    std::fs::write(&sh, script).map_err(super::super::at(&sh))?;
    let tar = dir.join(format!("rootfs-{vm}.tar"));
    let _ = std::fs::remove_file(&tar);
    std::fs::hard_link(tarball, &tar)
        .or_else(|_| std::fs::copy(tarball, &tar).map(|_| ()))
        .map_err(super::super::at(&tar))
}

/// The container's mounts: the host's `/dev` (loop devices and their
/// partitions appear there) and the node's scratch dir.
pub fn binds(scratch: &Path) -> Vec<String> {
    vec!["/dev:/dev".into(), format!("{}:{WORK}", scratch.display())]
}

/// Refuses before anything runs a plain tarball whose files alone are
/// larger than the root partition can be. A compressed one is left to the
/// script, which says so when tar runs out of room.
fn check_fits(vm: &str, node: &str, tarball: &Path, size: u64) -> Result<(), ExecError> {
    let mut head = [0u8; 262];
    let plain = std::fs::File::open(tarball)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head[257..262] == b"ustar";
    if !plain {
        return Ok(());
    }
    let tar = std::fs::metadata(tarball)
        .map_err(super::super::at(tarball))?
        .len();
    let root = size.saturating_sub(ESP_MIB << 20);
    if tar > root {
        return Err(ExecError::Spec(format!(
            "vm `{vm}`: disk_size {} is smaller than the rootfs {node} made ({} of files, \
             and the ESP takes {ESP_MIB} MiB); make `disk_size` larger",
            super::show_size(size),
            super::show_size(tar),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::disk::RootFs;

    fn plan() -> Plan<'static> {
        Plan {
            size: 20 << 30,
            rootfs: RootFs::Ext4,
            kernel_args: Some("console=ttyS0"),
            ssh_user: Some("debian"),
            hostname: "vm",
        }
    }

    #[test]
    fn the_script_partitions_unpacks_and_runs_the_templates_in_ovs_order() {
        let s = script(
            &plan(),
            &Bootloader {
                fstab: Some("echo fstab {{.Rootfs}} {{.Mnt}}".into()),
                install: Some("echo install {{.SSHUser}}".into()),
                initramfs: Some("echo initramfs".into()),
            },
        )
        .unwrap();
        let at = |needle: &str| {
            s.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} not in\n{s}"))
        };
        assert!(s.contains("truncate -s 21474836480 \"$RAW\""));
        assert!(at("mklabel gpt") < at("mkfs.fat -F32"));
        assert!(s.contains("mkpart ESP fat32 1MiB 512MiB"));
        assert!(s.contains("mkpart root ext4 512MiB 100%"));
        assert!(s.contains("--xattrs --xattrs-include='*'"));
        assert!(at("GRUB_CMDLINE_LINUX_DEFAULT") < at("echo fstab ext4 /mnt"));
        assert!(at("echo fstab ext4 /mnt") < at("echo install debian"));
        assert!(at("echo install debian") < at("echo initramfs"));
        assert!(at("/boot/vmlinuz") < at("echo fstab"));
        assert!(at("echo initramfs") < at("/etc/hostname"));
        assert!(s.contains("fusefat -o rw+,fsname="));
        assert!(s.starts_with("set -euo pipefail"));
        assert!(s.contains("trap cleanup EXIT"));
    }

    #[test]
    fn missing_templates_are_skipped_and_bad_ones_name_themselves() {
        let s = script(&plan(), &Bootloader::default()).unwrap();
        assert!(!s.contains("# --- build.yml"));
        let e = script(
            &plan(),
            &Bootloader {
                install: Some("{{.Nope".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("install_template"), "{e}");
    }

    #[test]
    fn the_hostname_is_quoted() {
        let mut p = plan();
        p.hostname = "a'b";
        let s = script(&p, &Bootloader::default()).unwrap();
        assert!(
            s.contains(r#"printf '%s\n' 'a'\''b' > /mnt/etc/hostname"#),
            "{s}"
        );
    }

    #[test]
    fn a_plain_tarball_larger_than_the_disk_is_refused_before_running() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("rootfs.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
        let data = vec![7u8; 2 << 20];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "big", &data[..]).unwrap();
        b.into_inner().unwrap();
        // Tar headers from the tar crate say "ustar " (GNU); the check
        // reads the magic at 257.
        let e = check_fits("vm", "bootstrap:vm/vm", &tar, (ESP_MIB + 1) << 20).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("disk_size 513 MiB is smaller than the rootfs"),
            "{text}"
        );
        check_fits("vm", "bootstrap:vm/vm", &tar, 20 << 30).unwrap();
    }
}
