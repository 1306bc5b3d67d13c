//! Engine images as OCI parts in the CAS: an image manifest, its config
//! and one blob per layer, each by sha256. A node that makes an engine
//! image records them as blobs of its result ([`BLOB_MANIFEST`],
//! [`BLOB_CONFIG`], [`layer_blob`]), so whatever moves a result's blobs
//! (a remote cache, a registry) moves the image; a child image shares its
//! parent's layer blobs, which the CAS stores once.
//!
//! A hit whose image left the engine is restored by loading a
//! docker-archive assembled from the parts, which gives the image its
//! recorded id back (the id is the config's sha256, and the config's diff
//! ids are the layers' sha256).

mod archive;
pub mod registry;

use crate::engine::EngineError;
use crate::rule::ContainerEngine;
use futures_util::StreamExt;
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};
use ov_cache::{BlobDigest, Store};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

pub use archive::diff_ids;

/// The result blob holding the OCI image manifest.
pub const BLOB_MANIFEST: &str = "oci/manifest.json";
/// The result blob holding the image config (its sha256 is the image id).
pub const BLOB_CONFIG: &str = "oci/config.json";

/// The result blob name of layer `i` (0 is the bottom one).
pub fn layer_blob(i: usize) -> String {
    format!("oci/layer/{i:04}.tar")
}

/// The media type of an uncompressed layer: layers are kept as the engine
/// exports them, whose sha256 is the diff id the config names.
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Why an image could not be split into parts or put back together.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The archive or a manifest is not what it should be.
    #[error("malformed image archive: {0}")]
    Format(String),
    /// Reading or writing the archive failed.
    #[error("image archive: {0}")]
    Io(#[from] std::io::Error),
    /// The local store failed.
    #[error("store: {0}")]
    Store(String),
    /// The engine loaded the parts but holds another image id than recorded.
    #[error("the engine loaded {got}, not the recorded {want}")]
    WrongId {
        /// The recorded id.
        want: String,
        /// What the engine made.
        got: String,
    },
}

impl OciError {
    fn archive(e: std::io::Error) -> Self {
        OciError::Io(e)
    }
}

/// One blob of an image: its digest and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// sha256 of its bytes.
    pub digest: BlobDigest,
    /// Its size.
    pub size: u64,
}

/// An image's parts, as stored in the CAS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    /// The OCI image manifest.
    pub manifest: Part,
    /// The config.
    pub config: Part,
    /// The layers, bottom first.
    pub layers: Vec<Part>,
}

impl Parts {
    /// Every part by the name it has in a result, manifest first.
    pub fn named(&self) -> Vec<(String, Part)> {
        let mut v = vec![
            (BLOB_MANIFEST.to_string(), self.manifest),
            (BLOB_CONFIG.to_string(), self.config),
        ];
        v.extend(
            self.layers
                .iter()
                .enumerate()
                .map(|(i, l)| (layer_blob(i), *l)),
        );
        v
    }

    /// The parts an OCI image manifest (`bytes`, stored as `manifest`) lists.
    pub fn from_manifest(bytes: &[u8], manifest: Part) -> Result<Parts, OciError> {
        let m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| OciError::Format(format!("image manifest: {e}")))?;
        let part = |d: &Descriptor| -> Result<Part, OciError> {
            let digest = d
                .digest()
                .digest()
                .parse::<BlobDigest>()
                .map_err(|e| OciError::Format(format!("image manifest: {e}")))?;
            Ok(Part {
                digest,
                size: d.size(),
            })
        };
        Ok(Parts {
            manifest,
            config: part(m.config())?,
            layers: m.layers().iter().map(part).collect::<Result<_, _>>()?,
        })
    }
}

/// The OCI image manifest of a config and its layers.
fn manifest_json(config: &Part, layers: &[Part]) -> Result<Vec<u8>, OciError> {
    let desc = |t: MediaType, p: &Part| -> Result<Descriptor, OciError> {
        let d: oci_spec::image::Digest = format!("sha256:{}", p.digest)
            .parse()
            .map_err(|e| OciError::Format(format!("{e}")))?;
        Ok(Descriptor::new(t, p.size, d))
    };
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(desc(MediaType::ImageConfig, config)?)
        .layers(
            layers
                .iter()
                .map(|l| desc(MediaType::Other(LAYER_TAR.into()), l))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .build()
        .map_err(|e| OciError::Format(e.to_string()))?;
    serde_json::to_vec(&m).map_err(|e| OciError::Format(e.to_string()))
}

/// How much of an archive is in flight between the engine and the store.
const PIPE: usize = 1 << 20;

/// Exports image `reference` from the engine into `store` as parts,
/// streaming: no archive is written to disk, and a layer the store holds
/// already (a parent's) is read past, not stored again.
pub async fn export(
    engine: &dyn ContainerEngine,
    reference: &str,
    store: Arc<Store>,
) -> Result<Parts, OciError> {
    let (mut w, r) = tokio::io::duplex(PIPE);
    let split = tokio::task::spawn_blocking(move || {
        archive::split(tokio_util::io::SyncIoBridge::new(r), &store)
    });
    let mut s = engine.export_image(reference);
    let mut fed = Ok(());
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(c) => {
                // A closed pipe means the splitter stopped: its error says why.
                if w.write_all(&c).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                fed = Err(e);
                break;
            }
        }
    }
    drop(s);
    let _ = w.shutdown().await;
    drop(w);
    let parts = split
        .await
        .map_err(|e| OciError::Io(std::io::Error::other(e)))?;
    fed?;
    parts
}

/// The parts a result recorded under `blobs` (name → digest and size), if
/// it recorded an image manifest.
pub fn recorded(
    blobs: &[(String, BlobDigest, u64)],
    store: &Store,
) -> Option<Result<Parts, OciError>> {
    let (_, d, size) = blobs.iter().find(|(n, _, _)| n == BLOB_MANIFEST)?;
    let manifest = Part {
        digest: *d,
        size: *size,
    };
    Some(
        store
            .read_blob(d)
            .map_err(|e| OciError::Store(e.to_string()))
            .and_then(|bytes| Parts::from_manifest(&bytes, manifest)),
    )
}

/// Loads `parts` from `store` into the engine as `tag` and checks the
/// engine holds it under `want` (the recorded image id). Blobs are placed
/// (verified, hard-linked) in `scratch` and streamed to the engine as one
/// archive that is never written whole.
pub async fn load(
    engine: &dyn ContainerEngine,
    parts: &Parts,
    tag: &str,
    want: &crate::engine::ImageId,
    store: Arc<Store>,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<(), OciError> {
    std::fs::create_dir_all(scratch)?;
    let (r, w) = tokio::io::duplex(PIPE);
    let (p, t, dir) = (parts.clone(), tag.to_string(), scratch.to_path_buf());
    let write = tokio::task::spawn_blocking(move || {
        let place = dir.join("blob");
        archive::assemble(
            &p,
            &t,
            |d| {
                store
                    .blob_to_file(d, &place)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let f = std::fs::File::open(&place);
                let _ = std::fs::remove_file(&place);
                f
            },
            tokio_util::io::SyncIoBridge::new(w),
        )
    });
    let body = tokio_util::io::ReaderStream::new(r).boxed();
    let loaded = engine.load_image(body, cancel).await;
    let written = write
        .await
        .map_err(|e| OciError::Io(std::io::Error::other(e)))?;
    // A cut archive is the cause of whatever the engine said.
    written?;
    loaded?;
    let got = engine.image_id(tag).await?;
    match got {
        Some(id) if id.hex() == want.hex() => Ok(()),
        other => Err(OciError::WrongId {
            want: want.to_string(),
            got: other.map_or_else(|| "nothing".to_string(), |i| i.to_string()),
        }),
    }
}
