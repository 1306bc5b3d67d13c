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
        .ok_or_else(|| {
            ExecError::Failed {
                message: format!("{}: qemu-img info gave no virtual size", ctx.node_id),
                output: text,
            }
        })
}
