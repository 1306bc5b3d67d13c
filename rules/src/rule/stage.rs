//! `stage`: a build.yml builder's `stage_template` for one layer, run on the
//! builder image the image's `builder:` map names; the layer node copies
//! its outputs in. The layer's directory is the build context; the
//! Containerfile comes from [`render_stage`](crate::containerfile::render_stage).

use super::layer::{build_containerfile, LayerContext};
use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::{render_stage, RenderOpts, StagePlace};
use crate::engine::ContextTar;
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A stage node's spec. Images whose stage inputs are equal share it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    /// The build.yml builder (`npm`, `pixi`, `aur`, …).
    pub builder: String,
    /// The layer that triggers it (names ov's stages: `<layer>`,
    /// `<layer>-<builder>-build`).
    pub layer: String,
    /// The node whose image the stage runs on (an `image:` or `base:` node;
    /// one of its dependencies).
    pub builder_node: String,
    /// build.yml `builder.<name>`, as written: the template text and what
    /// fills it are part of the key.
    pub def: Map<String, Json>,
    /// The image user the stage runs as and installs for.
    pub context: LayerContext,
    /// The layer's root files the definition asks about (detect files,
    /// their `.lock`, `pixi.lock`, the build script).
    pub layer_files: Vec<String>,
    /// The layer's package section of the builder's `detect_config` format.
    pub section: Option<Json>,
}

impl Rule for StageSpec {
    const KIND: NodeKind = NodeKind::Stage;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Engine
    }

    fn restore(&self) -> super::Restore {
        // Stored as OCI parts: a hit whose image left the engine loads them.
        super::Restore::Oci
    }

    fn tags_node_image(&self) -> bool {
        true
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        let builder_img = ctx.dep_image(&self.builder_node)?.hex().to_string();
        let opts = RenderOpts {
            locked_cache_mounts: ctx.quirks.locked_cache_mounts,
        };
        let place = StagePlace {
            builder_ref: &builder_img,
            copy_src: ".",
        };
        let containerfile =
            render_stage(self, place, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
        let mut context = ContextTar::new();
        if let Some(dir) = ctx.layer_dir {
            context.add_dir(dir)?;
        }
        let what = format!("`{}` stage of layer `{}`", self.builder, self.layer);
        build_containerfile(ctx, &what, containerfile, context).await
    }
}
