//! One module per node kind: its typed spec and its [`Rule`].
//!
//! The planner builds one spec struct per node and wraps it in a
//! [`NodeSpec`]; the spec's canonical JSON goes into the node's key, and
//! the spec is the rule that runs the node. Everything the build driver
//! asks of a node (its resource class, how a cache hit is restored, whether
//! it tags a node image, running it) is a [`Rule`] method reached through
//! an exhaustive match on [`NodeSpec`], so a new kind cannot be forgotten
//! anywhere: it fails to compile until every match has its arm.
//!
//! Adding a kind: a module here with its spec struct and `impl Rule`, a
//! variant in [`NodeKind`] (name, rule version) and in [`NodeSpec`], and the
//! place in the planner that builds it.

mod backend;
pub mod base;
pub mod boot;
pub mod bootstrap;
pub mod cloud_image;
mod ctx;
pub mod disk;
pub mod eval;
pub mod image;
pub mod layer;
pub mod preamble;
pub mod seed;
pub mod source;
pub mod stage;

pub use backend::{BlobPlacer, ContainerEngine, NoEngine, PendingCheck};
pub use base::BaseSpec;
pub use boot::BootSpec;
pub use bootstrap::BootstrapSpec;
pub use cloud_image::CloudImageSpec;
pub(crate) use ctx::at;
pub use ctx::{EngineQuirks, ExecCtx, ExecError, NodeOutput};
pub use disk::{Bootloader, DiskFormat, DiskFrom, DiskSpec, RootFs, Transport};
pub use eval::EvalSpec;
pub use image::{ImageSpec, LabelLayer};
pub use layer::{LayerSpec, StageUse};
pub use preamble::PreambleSpec;
pub use seed::SeedSpec;
pub use source::SourceSpec;
pub use stage::StageSpec;

use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::future::Future;

/// What a node holds while it runs, for the scheduler's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceClass {
    /// Local work (hashing, rendering).
    Cpu,
    /// A container-engine build or run.
    Engine,
    /// Downloads and registry checks.
    Io,
    /// Root-only devices (loop devices, mounts).
    Privileged,
    /// A booted VM with this much RAM.
    Vm {
        /// MiB of RAM.
        ram_mib: u64,
    },
}

/// How a node's result is kept between builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caching {
    /// Its output is known before anything runs (a hashed source tree).
    Hashed,
    /// Run on every build (it reads something mutable, like an image ref);
    /// what it found is remembered only to predict dependents' keys.
    EveryBuild,
    /// Cached by key.
    ByKey,
}

/// What a cache hit whose engine image is gone does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restore {
    /// The node runs again.
    Rerun,
    /// The image is re-imported from the recorded blob of this name.
    Import {
        /// The blob's name in the result.
        blob: &'static str,
    },
    /// The image is stored as OCI parts (see [`crate::oci`]) when the node
    /// runs, and a hit loads them back with the recorded image id.
    Oci,
}

/// A node kind's rule: its spec is `Self`.
pub trait Rule: Serialize {
    /// The kind.
    const KIND: NodeKind;

    /// The scheduler's resource class while it runs.
    fn resources(&self) -> ResourceClass;

    /// How its result is kept between builds.
    fn caching(&self) -> Caching {
        Caching::ByKey
    }

    /// What a hit does when the image it recorded left the engine.
    fn restore(&self) -> Restore {
        Restore::Rerun
    }

    /// True when running it tags an engine image `localhost/ov-node:<key>`
    /// (a build or an import), which the run journals and counts.
    fn tags_node_image(&self) -> bool {
        false
    }

    /// Runs the node. What it records is the [`NodeOutput`]: its digest,
    /// image, files for the CAS and `meta` for `ov explain`.
    fn execute(
        &self,
        ctx: &mut ExecCtx<'_>,
    ) -> impl Future<Output = Result<NodeOutput, ExecError>> + Send;
}

/// A node's spec, one variant per [`NodeKind`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NodeSpec {
    /// See [`SourceSpec`].
    Source(SourceSpec),
    /// See [`BaseSpec`].
    Base(BaseSpec),
    /// See [`BootstrapSpec`].
    Bootstrap(BootstrapSpec),
    /// See [`PreambleSpec`].
    Preamble(PreambleSpec),
    /// See [`StageSpec`].
    Stage(StageSpec),
    /// See [`LayerSpec`].
    Layer(LayerSpec),
    /// See [`ImageSpec`].
    Image(ImageSpec),
    /// See [`EvalSpec`].
    Eval(EvalSpec),
    /// See [`CloudImageSpec`].
    CloudImage(CloudImageSpec),
    /// See [`DiskSpec`].
    Disk(DiskSpec),
    /// See [`SeedSpec`].
    Seed(SeedSpec),
    /// See [`BootSpec`].
    Boot(BootSpec),
}

/// The Containerfile steps a layer or image node's executor sends to the
/// engine after its `FROM` (the other kinds send none): one function, so
/// `ov image generate` prints what a build sends. Builder stages are named
/// by node id here; the executor puts in the images they made.
pub fn steps_sent(
    spec: &NodeSpec,
    quirks: &EngineQuirks,
) -> Option<Result<crate::containerfile::Rendered, crate::containerfile::RenderError>> {
    let opts = quirks.render_opts();
    match spec {
        NodeSpec::Preamble(s) => Some(crate::containerfile::render_preamble(s, &opts)),
        NodeSpec::Layer(s) => Some(crate::containerfile::render_layer(s, &opts)),
        NodeSpec::Image(s) => Some(crate::containerfile::render_image(s, &opts)),
        NodeSpec::Source(_)
        | NodeSpec::Base(_)
        | NodeSpec::Bootstrap(_)
        | NodeSpec::Stage(_)
        | NodeSpec::Eval(_)
        | NodeSpec::CloudImage(_)
        | NodeSpec::Disk(_)
        | NodeSpec::Seed(_)
        | NodeSpec::Boot(_) => None,
    }
}

/// `$e` with `$s` bound to the spec inside whatever variant `$self` is.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            NodeSpec::Source($s) => $e,
            NodeSpec::Base($s) => $e,
            NodeSpec::Bootstrap($s) => $e,
            NodeSpec::Preamble($s) => $e,
            NodeSpec::Stage($s) => $e,
            NodeSpec::Layer($s) => $e,
            NodeSpec::Image($s) => $e,
            NodeSpec::Eval($s) => $e,
            NodeSpec::CloudImage($s) => $e,
            NodeSpec::Disk($s) => $e,
            NodeSpec::Seed($s) => $e,
            NodeSpec::Boot($s) => $e,
        }
    };
}

/// The [`Rule::KIND`] of a spec value's type.
fn kind_of<R: Rule>(_: &R) -> NodeKind {
    R::KIND
}

impl NodeSpec {
    /// The node's kind.
    pub fn kind(&self) -> NodeKind {
        each!(self, s => kind_of(s))
    }

    /// The spec of a node of `kind`, from the JSON its `Serialize` wrote:
    /// how a saved plan is read back. `NodeSpec` is untagged, so the kind
    /// picks the variant rather than the first one whose fields fit.
    pub fn from_json(kind: NodeKind, text: &[u8]) -> serde_json::Result<NodeSpec> {
        use serde_json::from_slice as de;
        Ok(match kind {
            NodeKind::Source => NodeSpec::Source(de(text)?),
            NodeKind::Base => NodeSpec::Base(de(text)?),
            NodeKind::Bootstrap => NodeSpec::Bootstrap(de(text)?),
            NodeKind::Preamble => NodeSpec::Preamble(de(text)?),
            NodeKind::Stage => NodeSpec::Stage(de(text)?),
            NodeKind::Layer => NodeSpec::Layer(de(text)?),
            NodeKind::Image => NodeSpec::Image(de(text)?),
            NodeKind::Eval => NodeSpec::Eval(de(text)?),
            NodeKind::CloudImage => NodeSpec::CloudImage(de(text)?),
            NodeKind::Disk => NodeSpec::Disk(de(text)?),
            NodeKind::Seed => NodeSpec::Seed(de(text)?),
            NodeKind::Boot => NodeSpec::Boot(de(text)?),
        })
    }

    /// See [`Rule::resources`].
    pub fn resources(&self) -> ResourceClass {
        each!(self, s => s.resources())
    }

    /// See [`Rule::caching`].
    pub fn caching(&self) -> Caching {
        each!(self, s => s.caching())
    }

    /// See [`Rule::restore`].
    pub fn restore(&self) -> Restore {
        each!(self, s => s.restore())
    }

    /// See [`Rule::tags_node_image`].
    pub fn tags_node_image(&self) -> bool {
        each!(self, s => s.tags_node_image())
    }

    /// Runs the node (see [`Rule::execute`]).
    pub async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        each!(self, s => s.execute(ctx).await)
    }

    /// The spec as JSON: what `ov explain` diffs and results keep.
    pub fn to_json(&self) -> Json {
        // Specs are plain data (strings, numbers, maps with string keys):
        // serializing them cannot fail.
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The canonical bytes that go into the key.
    pub fn canonical(&self) -> Vec<u8> {
        crate::canonical_of(self)
    }
}

macro_rules! from_spec {
    ($($v:ident($t:ty)),*) => {$(
        impl From<$t> for NodeSpec {
            fn from(s: $t) -> Self {
                NodeSpec::$v(s)
            }
        }
    )*};
}
from_spec!(
    Source(SourceSpec),
    Base(BaseSpec),
    Bootstrap(BootstrapSpec),
    Preamble(PreambleSpec),
    Stage(StageSpec),
    Layer(LayerSpec),
    Image(ImageSpec),
    Eval(EvalSpec),
    CloudImage(CloudImageSpec),
    Disk(DiskSpec),
    Seed(SeedSpec),
    Boot(BootSpec)
);
