//! A cloud-image VM's disk: the image the `cloud-image` node fetched, in
//! the disk's format and grown to `disk_size` (never shrunk: a file
//! system inside does not survive that).

use super::super::{ExecCtx, ExecError, NodeOutput};
use super::{tool, tool::Runner, DiskFormat, DiskFrom, DiskSpec, CLOUD_IMAGE_BLOB};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

pub(super) async fn run(spec: &DiskSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let DiskFrom::CloudImage { image_node } = &spec.from else {
        unreachable!("cloud::run is only called for cloud-image disks")
    };
    let vm = &spec.vm;
    let src_format = match ctx
        .deps
        .get(image_node)
        .and_then(|o| o.meta.get("format"))
        .and_then(Json::as_str)
    {
        None => DiskFormat::Qcow2,
        Some(f) => DiskFormat::parse(f).ok_or_else(|| {
            ExecError::Spec(format!(
                "vm `{vm}`: {image_node} is a `{f}` image; a disk is made from qcow2 or raw"
            ))
        })?,
    };
    let runner = Runner {
        node_id: ctx.node_id,
        cancel: ctx.cancel,
    };
    let base = ctx.scratch.join(format!("image.{src_format}"));
    ctx.dep_blob(image_node, CLOUD_IMAGE_BLOB, &base, false)?;
    let image_size = info_size(runner, &base, src_format).await?;
    let size = spec.size.unwrap_or(image_size);
    if size < image_size {
        return Err(ExecError::Spec(format!(
            "vm `{vm}`: disk_size {} is smaller than the cloud image {image_node} ({}); ov \
             never shrinks a disk: make `disk_size` at least that",
            super::show_size(size),
            super::show_size(image_size)
        )));
    }
    let disk = if src_format == spec.format {
        // A private copy (a reflink where the file system can) to grow.
        let out = ctx.scratch.join(format!("disk.{}", spec.format));
        ctx.dep_blob(image_node, CLOUD_IMAGE_BLOB, &out, true)?;
        out
    } else {
        convert(runner, &base, src_format, spec.format).await?
    };
    let _ = std::fs::remove_file(&base);
    if size > image_size {
        let size = size.to_string();
        tool::run(
            runner,
            "qemu-img",
            &[
                "resize",
                "-f",
                spec.format.as_str(),
                &disk.to_string_lossy(),
                &size,
            ],
        )
        .await?;
    }
    super::finish(&disk, spec.format, String::new(), image_node)
}

/// `path` (in `from`) as a `to` file next to it: itself when the formats
/// agree, else a sparse `qemu-img convert` whose source is then removed.
pub(super) async fn convert(
    ctx: Runner<'_>,
    path: &Path,
    from: DiskFormat,
    to: DiskFormat,
) -> Result<PathBuf, ExecError> {
    let out = path.with_file_name(format!("disk.{to}"));
    if from == to && out == path {
        return Ok(out);
    }
    if from == to {
        std::fs::rename(path, &out).map_err(super::super::at(path))?;
        return Ok(out);
    }
    tool::run(
        ctx,
        "qemu-img",
        &[
            "convert",
            "-f",
            from.as_str(),
            "-O",
            to.as_str(),
            &path.to_string_lossy(),
            &out.to_string_lossy(),
        ],
    )
    .await?;
    let _ = std::fs::remove_file(path);
    Ok(out)
}

/// The virtual size `qemu-img info` reports.
async fn info_size(ctx: Runner<'_>, path: &Path, format: DiskFormat) -> Result<u64, ExecError> {
    let text = tool::run(
        ctx,
        "qemu-img",
        &[
            "info",
            "--output=json",
            "-f",
            format.as_str(),
            &path.to_string_lossy(),
        ],
    )
    .await?;
    serde_json::from_str::<Json>(&text)
        .ok()
        .and_then(|j| j.get("virtual-size").and_then(Json::as_u64))
        .ok_or_else(|| ExecError::Failed {
            message: format!("{}: qemu-img info gave no virtual size", ctx.node_id),
            output: text,
        })
}

#[cfg(test)]
mod tests {
    use super::super::{DiskSpec, RootFs};
    use super::*;
    use crate::rule::{EngineQuirks, NoEngine, NodeOutput, Rule};
    use serde_json::json;
    use std::collections::HashMap;
    use tokio_util::sync::CancellationToken;

    fn qemu_img(args: &[&str]) -> String {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img (scripts/setup-disk.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Builds the disk of a VM whose cloud image is a fresh `size`-byte
    /// image in `src` format, asking for `disk_size` in `format`.
    fn disk_from(
        src: DiskFormat,
        image_size: &str,
        disk_size: Option<u64>,
        format: DiskFormat,
    ) -> (tempfile::TempDir, Result<NodeOutput, ExecError>) {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            src.as_str(),
            &img.to_string_lossy(),
            image_size,
        ]);
        let store = ov_cache::Store::open(&dir.path().join("store")).unwrap();
        let (digest, _) = store.put_blob_file(&img).unwrap();
        let mut deps = HashMap::new();
        deps.insert(
            "cloud-image:vm".to_string(),
            NodeOutput {
                meta: json!({"format": src.as_str()}),
                stored: vec![(CLOUD_IMAGE_BLOB.into(), digest)],
                ..Default::default()
            },
        );
        let spec = DiskSpec {
            vm: "vm".into(),
            from: DiskFrom::CloudImage {
                image_node: "cloud-image:vm".into(),
            },
            size: disk_size,
            rootfs: RootFs::Ext4,
            root_size: None,
            kernel_args: None,
            format,
        };
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let key = <ov_cache::NodeKey as ov_cache::Digest>::from_bytes([1; 32]);
        let cancel = CancellationToken::new();
        let mut on_line = |_: &str| {};
        let mut ctx = ExecCtx {
            engine: &NoEngine,
            node_id: "disk:vm",
            key: &key,
            deps: &deps,
            layer_dir: None,
            project_root: dir.path(),
            scratch: &scratch,
            run_id: "1-1",
            cancel: &cancel,
            quirks: &EngineQuirks::default(),
            on_line: &mut on_line,
            blobs: &store,
            vm_state: dir.path(),
            downloads: dir.path(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(spec.execute(&mut ctx));
        (dir, out)
    }

    fn info(path: &Path) -> Json {
        serde_json::from_str(&qemu_img(&[
            "info",
            "--output=json",
            &path.to_string_lossy(),
        ]))
        .unwrap()
    }

    #[test]
    fn a_qcow2_cloud_image_grows_to_disk_size() {
        let (_dir, out) = disk_from(DiskFormat::Qcow2, "1G", Some(2 << 30), DiskFormat::Qcow2);
        let out = out.unwrap();
        assert_eq!(out.files.len(), 1);
        let (name, path) = &out.files[0];
        assert_eq!(name, "disk");
        assert_eq!(out.meta["format"], "qcow2");
        assert_eq!(out.meta["virtual_size"], 2u64 << 30);
        let i = info(path);
        assert_eq!(i["format"], "qcow2");
        assert_eq!(i["virtual-size"], 2u64 << 30);
        // Its digest is the disk's, which the driver takes as it stores it.
        assert_eq!(out.digest_of.as_deref(), Some("disk"));
        assert_eq!(out.digest, "");
    }

    #[test]
    fn a_raw_cloud_image_becomes_qcow2_and_keeps_its_size_without_disk_size() {
        let (_dir, out) = disk_from(DiskFormat::Raw, "64M", None, DiskFormat::Qcow2);
        let out = out.unwrap();
        let i = info(&out.files[0].1);
        assert_eq!(i["format"], "qcow2");
        assert_eq!(i["virtual-size"], 64u64 << 20);
    }

    #[test]
    fn a_raw_disk_is_asked_for() {
        let (_dir, out) = disk_from(DiskFormat::Qcow2, "64M", Some(128 << 20), DiskFormat::Raw);
        let out = out.unwrap();
        assert_eq!(out.meta["format"], "raw");
        let i = info(&out.files[0].1);
        assert_eq!(i["format"], "raw");
        assert_eq!(i["virtual-size"], 128u64 << 20);
    }

    #[test]
    fn a_disk_size_smaller_than_the_image_is_refused() {
        let (_dir, out) = disk_from(DiskFormat::Qcow2, "1G", Some(512 << 20), DiskFormat::Qcow2);
        let e = out.unwrap_err().to_string();
        assert!(
            e.contains(
                "vm `vm`: disk_size 512 MiB is smaller than the cloud image cloud-image:vm (1 GiB)"
            ),
            "{e}"
        );
    }
}
