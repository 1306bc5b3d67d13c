//! The NoCloud seed ISO: the rendered files in an ISO 9660 image with
//! Rock Ridge and Joliet names and the volume id `cidata`, as ov's
//! `xorriso -as mkisofs -volid cidata -joliet -rock` writes it. Written in
//! process, so a build needs no ISO tool on the host.

use super::cloud_init::Rendered;
use hadris_iso::read::PathSeparator;
use hadris_iso::write::options::{CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{File as IsoFile, InputFiles, IsoImageWriter};
use std::path::Path;
use std::sync::Arc;

/// The volume id cloud-init's NoCloud source looks for.
pub const VOLUME_ID: &str = "cidata";

/// The files of a seed, by name, as they go on the ISO.
pub fn files(r: &Rendered) -> Vec<(&'static str, &str)> {
    let mut out = vec![("user-data", r.user_data.as_str())];
    out.push(("meta-data", r.meta_data.as_str()));
    if let Some(n) = &r.network_config {
        out.push(("network-config", n.as_str()));
    }
    out
}

/// Writes the seed ISO of `r` at `dest`.
pub fn write(dest: &Path, r: &Rendered) -> std::io::Result<()> {
    let input = InputFiles {
        path_separator: PathSeparator::ForwardSlash,
        files: files(r)
            .into_iter()
            .map(|(name, text)| IsoFile::File {
                name: Arc::new(name.to_string()),
                contents: text.as_bytes().to_vec(),
            })
            .collect(),
    };
    let opts = IsoFormatOptions {
        volume_name: VOLUME_ID.into(),
        system_id: None,
        volume_set_id: None,
        publisher_id: None,
        preparer_id: None,
        application_id: None,
        sector_size: 2048,
        features: CreationFeatures::extensions(),
        path_separator: PathSeparator::ForwardSlash,
        strict_charset: false,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dest)?;
    IsoImageWriter::create(file, input, opts).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

/// The files of an ISO's root by name, with their bytes.
pub type IsoFiles = Vec<(String, Vec<u8>)>;

/// The volume id and the files (Rock Ridge names) of an ISO: what a guest
/// mounting it sees. For checks and tests.
pub fn read(path: &Path) -> std::io::Result<(String, IsoFiles)> {
    use hadris_iso::read::IsoImage;
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let image = IsoImage::open(file).map_err(|e| std::io::Error::other(e.to_string()))?;
    let pvd = image
        .read_pvd()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let volume = pvd.volume_identifier.to_str().trim().to_string();
    let mut out = Vec::new();
    let root = image.root_dir();
    for entry in root.iter(&image).entries() {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        if !entry.is_file() {
            continue;
        }
        let name = entry.display_name().into_owned();
        let bytes = image
            .read_file(&entry)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        out.push((name, bytes));
    }
    Ok((volume, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_iso_reads_back_with_its_label_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("seed.iso");
        let r = Rendered {
            user_data: "#cloud-config\nusers:\n- default\n".into(),
            meta_data: "instance-id: x\n".into(),
            network_config: Some("version: 2\n".into()),
        };
        write(&iso, &r).unwrap();
        // The label sits in the primary volume descriptor (sector 16) at
        // byte 40, whatever reader is used.
        let raw = std::fs::read(&iso).unwrap();
        assert_eq!(&raw[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
        assert_eq!(&raw[16 * 2048 + 40..16 * 2048 + 46], b"cidata");
        let (label, files) = read(&iso).unwrap();
        assert_eq!(label, "cidata");
        let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["meta-data", "network-config", "user-data"]);
        let ud = files.iter().find(|(n, _)| n == "user-data").unwrap();
        assert_eq!(ud.1, r.user_data.as_bytes());
    }
}
