//! A bootc VM's disk: `bootc install to-disk` run by the image itself in a
//! privileged container, with ov's flags (`vm_bootc_install.go`): the root
//! file system, an optional root size and kernel arguments, and no
//! signature check of the target image. bootc attaches the sparse raw file
//! to a loop device itself (`--via-loopback`), where ov's script calls
//! losetup first; the disk is the same. The host converts it afterwards.

use super::super::{ExecCtx, ExecError, NodeOutput};
use super::{DiskFormat, DiskFrom, DiskSpec, RootFs, Transport};
use crate::containerfile::quote::sh_sq;
use std::path::Path;

/// Where the node's scratch dir appears in the container.
pub const WORK: &str = "/ov";

/// The install's inputs.
pub struct Install<'a> {
    /// Bytes of the raw file.
    pub size: u64,
    /// `--filesystem`.
    pub rootfs: RootFs,
    /// `--root-size`, in bytes (bootc reads whole MiB).
    pub root_size: Option<u64>,
    /// `--karg`, checked at load; one argument as ov passes it.
    pub kernel_args: Option<&'a str>,
    /// `--target-transport`, left out for the default (`registry`).
    pub transport: Transport,
}

/// The script the image runs.
pub fn script(i: &Install<'_>) -> String {
    let mut flags = format!("--filesystem {}", i.rootfs);
    if let Some(root) = i.root_size {
        flags.push_str(&format!(" --root-size {}M", root >> 20));
    }
    if let Some(k) = i.kernel_args.filter(|k| !k.trim().is_empty()) {
        flags.push_str(&format!(" --karg {}", sh_sq(k)));
    }
    flags.push_str(" --target-no-signature-verification");
    if i.transport != Transport::Registry {
        flags.push_str(&format!(" --target-transport {}", i.transport.as_str()));
    }
    format!(
        r#"set -euo pipefail
RAW={WORK}/disk.raw
trap 'rc=$?; [ "$rc" -eq 0 ] || rm -f "$RAW"; exit "$rc"' EXIT
truncate -s {size} "$RAW"
bootc install to-disk --via-loopback {flags} "$RAW"
sync
"#,
        size = i.size
    )
}

/// The container's mounts: the host's `/dev` for the loop device, the
/// engine's image store (bootc reads the image from it), the scratch dir.
pub fn binds(scratch: &Path) -> Vec<String> {
    vec![
        "/dev:/dev".into(),
        "/var/lib/containers:/var/lib/containers".into(),
        format!("{}:{WORK}", scratch.display()),
    ]
}

pub(super) async fn run(spec: &DiskSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let DiskFrom::Bootc {
        image_node,
        transport,
    } = &spec.from
    else {
        unreachable!("bootc::run is only called for bootc disks")
    };
    let vm = &spec.vm;
    let size = spec
        .size
        .ok_or_else(|| ExecError::Spec(format!("vm `{vm}`: a bootc disk needs `disk_size`")))?;
    let image = ctx.dep_image(image_node)?.clone();
    let script = script(&Install {
        size,
        rootfs: spec.rootfs,
        root_size: spec.root_size,
        kernel_args: spec.kernel_args.as_deref(),
        transport: *transport,
    });
    let run = super::privileged_run(ctx, &image, &script, binds(ctx.scratch)).await?;
    if run.exit_code != 0 {
        return Err(ExecError::Failed {
            message: format!(
                "vm `{vm}`: `bootc install to-disk` in {image_node} exited {}",
                run.exit_code
            ),
            output: run.output,
        });
    }
    let raw = ctx.scratch.join("disk.raw");
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
    super::finish(&disk, spec.format, run.output, image_node)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command vm_bootc_install.go builds for a spec with every flag.
    #[test]
    fn the_install_has_ovs_flags() {
        let s = script(&Install {
            size: 20 << 30,
            rootfs: RootFs::Xfs,
            root_size: Some(10 << 30),
            kernel_args: Some("console=ttyS0 quiet"),
            transport: Transport::ContainersStorage,
        });
        assert!(s.contains("truncate -s 21474836480 \"$RAW\""), "{s}");
        assert!(
            s.contains(
                "bootc install to-disk --via-loopback --filesystem xfs --root-size 10240M \
                 --karg 'console=ttyS0 quiet' --target-no-signature-verification \
                 --target-transport containers-storage \"$RAW\""
            ),
            "{s}"
        );
        assert!(s.contains("trap "));
    }

    #[test]
    fn defaults_leave_optional_flags_out() {
        let s = script(&Install {
            size: 10 << 30,
            rootfs: RootFs::Ext4,
            root_size: None,
            kernel_args: None,
            transport: Transport::Registry,
        });
        assert!(s.contains(
            "bootc install to-disk --via-loopback --filesystem ext4 \
             --target-no-signature-verification \"$RAW\""
        ));
        for absent in ["--root-size", "--karg", "--target-transport"] {
            assert!(!s.contains(absent), "{absent} in {s}");
        }
    }

    #[test]
    fn the_container_gets_ovs_mounts() {
        let b = binds(Path::new("/s"));
        assert_eq!(
            b,
            [
                "/dev:/dev",
                "/var/lib/containers:/var/lib/containers",
                "/s:/ov"
            ]
        );
    }
}
