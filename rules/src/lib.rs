//! `ov-rules`: what each kind of node in an ov build graph is, and what goes
//! into its key.
//!
//! This crate knows nothing of YAML loading, scheduling or the CLI. For every
//! [`NodeKind`] it owns the rule version (bumped when the kind's output would
//! change for the same inputs, which invalidates every old key of that kind)
//! and the domain tag that starts its key. [`Ingredients`] turns a node's
//! resolved spec, source digests and dependency digests into a [`NodeKey`]
//! plus a human-readable [`Manifest`], the list `ov explain` prints.
//!
//! [`render_layer`] and [`render_image`] turn `layer` and `image` specs into
//! Containerfile steps plus the files to stage in the build context (see
//! [`containerfile`]); build.yml's Go templates go through [`template`].
//!
//! [`rule`] holds one module per node kind: its typed spec (what the
//! planner builds and the key hashes) and its [`Rule`] (resource class,
//! execution, how a cache hit is restored). [`NodeSpec`] wraps them. Rules
//! reach the engine through [`rule::ContainerEngine`], which [`engine`]'s
//! bollard client implements. Executors return their outputs and files;
//! they never write the store, so the caller alone decides when a result
//! is recorded.
//!
//! ```
//! use ov_rules::{Ingredients, NodeKind};
//! use ov_cache::{Digest, TreeDigest};
//! let mut ing = Ingredients::new(NodeKind::Layer, &serde_json::json!({"layer": "web"}));
//! ing.source("layers/web", TreeDigest::of_bytes(b"tree"));
//! let (key, manifest) = ing.finish();
//! assert_eq!(manifest.entries[0].name, "rule");
//! assert_eq!(key, Ingredients::new(NodeKind::Layer, &serde_json::json!({"layer": "web"}))
//!     .with_source("layers/web", TreeDigest::of_bytes(b"tree")).finish().0);
//! ```
#![deny(missing_docs)]

mod canonical;
pub mod containerfile;
pub mod context;
pub mod engine;
pub mod images;
mod ingredients;
mod kind;
mod libpod;
pub mod oci;
pub mod ping;
pub mod rule;
pub mod template;
pub mod vm;

pub use canonical::{canonical_json, canonical_of, read_own, CanonicalJson};
pub use containerfile::{
    render_image, render_layer, render_layer_with, render_preamble, render_stage, RenderError,
    RenderOpts, Rendered, StagePlace, StageRefs,
};
pub use ingredients::{Ingredient, Ingredients, Manifest};
pub use kind::NodeKind;
pub use ov_cache::NodeKey;
pub use rule::{NodeSpec, Rule};
