//! `disk`: turn a bootstrapped rootfs, a cloud image or a bootc image into
//! a VM disk file, one submodule per source:
//!
//! - [`bootstrap`]: ov's bootstrap-VM path: a privileged run in the builder
//!   image partitions a sparse raw file on a loop device, unpacks the
//!   rootfs and runs build.yml's bootloader templates;
//! - [`cloud`]: the fetched cloud image, converted and grown to `disk_size`;
//! - [`bootc`]: `bootc install to-disk` in a privileged container of the
//!   image.
//!
//! Every kind ends the same way ([`finish`]): the raw or qcow2 file is the
//! node's one output file, named [`DISK_BLOB`], which the build driver
//! streams into the store. Nothing here reads a disk into memory.

pub mod bootc;
pub mod bootstrap;
pub mod cloud;
pub mod loops;
mod tool;
mod types;

pub use types::{
    is_kernel_args, is_user_name, parse_size, show_size, DiskFormat, RootFs, SizeError, Transport,
};

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Read;
use std::path::Path;

/// The name of the disk file among a disk result's blobs: what a boot
/// reads with `dep_blob("disk:<vm>", DISK_BLOB, …)`.
pub const DISK_BLOB: &str = "disk";

/// The name of the image file among a cloud-image result's blobs.
pub const CLOUD_IMAGE_BLOB: &str = "image";

/// The ESP every bootstrap disk starts with, in MiB (ov's `EspSizeMib`).
pub const ESP_MIB: u64 = 512;

/// A disk node's spec: the VM's disk fields, typed at load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The VM's name (the guest's hostname, and error messages).
    pub vm: String,
    /// What the disk is made from, and the nodes that make it.
    pub from: DiskFrom,
    /// `disk_size` in bytes (a cloud image keeps its own size without it).
    pub size: Option<u64>,
    /// `source.rootfs`.
    pub rootfs: RootFs,
    /// `source.root_size` in bytes (bootc).
    pub root_size: Option<u64>,
    /// `source.kernel_args`.
    pub kernel_args: Option<String>,
    /// The file's format (`source.disk_format`, qcow2 unless set).
    pub format: DiskFormat,
}

/// What a disk is made from: the VM sources that build one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiskFrom {
    /// A rootfs tarball from a bootstrap builder.
    Bootstrap {
        /// The `bootstrap:vm/<name>` node that stored the tarball.
        rootfs_node: String,
        /// The node whose image the disk is built in (the builder image).
        builder_node: String,
        /// build.yml's `distro.<d>.bootloader` templates.
        bootloader: Bootloader,
        /// `ssh.user`, which the templates see as `{{.SSHUser}}`.
        ssh_user: Option<String>,
    },
    /// A downloaded cloud image.
    CloudImage {
        /// The `cloud-image:<name>` node.
        image_node: String,
    },
    /// An ov image installed by `bootc install`.
    Bootc {
        /// The image's node (`image:<name>` or `base:<ref>`).
        image_node: String,
        /// `source.transport`.
        transport: Transport,
    },
}

/// build.yml's `bootloader:` templates of a distro, run in this order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bootloader {
    /// `fstab_template`.
    pub fstab: Option<String>,
    /// `install_template`.
    pub install: Option<String>,
    /// `initramfs_template`.
    pub initramfs: Option<String>,
}

impl Rule for DiskSpec {
    const KIND: NodeKind = NodeKind::Disk;

    fn resources(&self) -> ResourceClass {
        match self.from {
            // qemu-img on the host; no device, no container.
            DiskFrom::CloudImage { .. } => ResourceClass::Cpu,
            DiskFrom::Bootstrap { .. } | DiskFrom::Bootc { .. } => ResourceClass::Privileged,
        }
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        let made = match &self.from {
            DiskFrom::Bootstrap { .. } => bootstrap::run(self, ctx).await,
            DiskFrom::CloudImage { .. } => cloud::run(self, ctx).await,
            DiskFrom::Bootc { .. } => bootc::run(self, ctx).await,
        };
        // Whatever happened (a failure, a time-out, a cancel that killed
        // the container mid-script), no loop device keeps a file of this
        // node's scratch dir open once it returns.
        loops::release_under(ctx.scratch);
        made
    }
}

/// The disk file at `path` (in `format`) as the node's output: the file
/// for the store, whose CAS digest is the node's, and its format and
/// virtual size.
fn finish(
    path: &Path,
    format: DiskFormat,
    log: String,
    source: &str,
) -> Result<NodeOutput, ExecError> {
    let virtual_size = virtual_size(path, format)?;
    Ok(NodeOutput {
        digest_of: Some(DISK_BLOB.into()),
        image: None,
        files: vec![(DISK_BLOB.into(), path.to_path_buf())],
        meta: json!({
            "format": format.as_str(),
            "virtual_size": virtual_size,
            "source": source,
        }),
        log,
        ..Default::default()
    })
}

/// The size the guest sees: a raw file's length, or the size in a qcow2
/// header (big-endian u64 at byte 24, after the magic, version and backing
/// file fields).
pub fn virtual_size(path: &Path, format: DiskFormat) -> Result<u64, ExecError> {
    match format {
        DiskFormat::Raw => Ok(std::fs::metadata(path).map_err(super::at(path))?.len()),
        DiskFormat::Qcow2 => {
            let mut head = [0u8; 32];
            std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut head))
                .map_err(super::at(path))?;
            if &head[..4] != b"QFI\xfb" {
                return Err(ExecError::Spec(format!(
                    "{} is not a qcow2 file",
                    path.display()
                )));
            }
            let mut size = [0u8; 8];
            size.copy_from_slice(&head[24..32]);
            Ok(u64::from_be_bytes(size))
        }
    }
}

/// Runs a disk `script` with bash as root in a privileged container of
/// `image` (loop devices and mounts need it), with `binds`, for at most an
/// hour: what the bootstrap and bootc disk steps share.
async fn privileged_run(
    ctx: &mut ExecCtx<'_>,
    image: &crate::engine::ImageId,
    script: &str,
    binds: Vec<String>,
) -> Result<crate::engine::RunOutput, ExecError> {
    let spec = crate::engine::RunSpec {
        image: image.hex().to_string(),
        script: format!(
            "/bin/bash -c {}",
            crate::containerfile::quote::sh_sq(script)
        ),
        privileged: true,
        user: Some("0".into()),
        binds,
        run_id: ctx.run_id.to_string(),
        timeout: Some(std::time::Duration::from_secs(3600)),
    };
    Ok(ctx.engine.run(&spec, ctx.cancel).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qcow2_header_gives_the_virtual_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.qcow2");
        let mut head = b"QFI\xfb\0\0\0\x03".to_vec();
        head.extend_from_slice(&[0; 16]);
        head.extend_from_slice(&(20u64 << 30).to_be_bytes());
        std::fs::write(&p, &head).unwrap();
        assert_eq!(virtual_size(&p, DiskFormat::Qcow2).unwrap(), 20 << 30);
        std::fs::write(&p, b"not a qcow2 file at all, but long enough").unwrap();
        assert!(virtual_size(&p, DiskFormat::Qcow2).is_err());
    }

    #[test]
    fn the_spec_keys_on_typed_fields() {
        let spec = DiskSpec {
            vm: "vm".into(),
            from: DiskFrom::CloudImage {
                image_node: "cloud-image:vm".into(),
            },
            size: Some(10 << 30),
            rootfs: RootFs::Ext4,
            root_size: None,
            kernel_args: None,
            format: DiskFormat::Qcow2,
        };
        let j = serde_json::to_value(&spec).unwrap();
        assert_eq!(j["from"]["kind"], "cloud_image");
        assert_eq!(j["size"], 10u64 << 30);
        assert_eq!(j["format"], "qcow2");
    }
}
