//! `preamble`: an external base image made ready for layers, as ov's
//! bootstrap preamble does: the distro's bootstrap packages, the image user
//! and group, `WORKDIR` the home. The steps come from
//! [`render_preamble`](crate::containerfile::render_preamble); it needs no
//! files, so its build context is empty.

use super::layer::build_steps;
use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::{render_preamble, RenderOpts};
use crate::engine::ContextTar;
use crate::NodeKind;
use serde::{Deserialize, Serialize};

/// A `preamble` node's spec: everything its output depends on besides its
/// parent image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreambleSpec {
    /// The node it is built on (`base:<ref>`).
    pub parent: String,
    /// The distro's `bootstrap` (and `workaround`), when build.yml
    /// defines a distro for the image.
    pub bootstrap: Option<Bootstrap>,
    /// The image user.
    pub user: PreambleUser,
}

/// build.yml `distro.<d>.bootstrap` and `distro.<d>.workaround`, with ov's
/// inheritance already applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// The distro it comes from, for messages.
    pub distro: String,
    /// `install_cmd`: the command the packages are appended to.
    pub install_cmd: String,
    /// `package`.
    pub package: Vec<String>,
    /// `cache_mount`.
    pub cache_mount: Vec<CacheMount>,
    /// `workaround`: shell commands run after the install.
    pub workaround: Vec<String>,
}

impl Bootstrap {
    /// `bootstrap` and `workaround` of build.yml's `distro.<name>`
    /// definition `def`; fields of the wrong shape count as absent.
    pub fn from_distro(name: &str, def: &serde_json::Value) -> Bootstrap {
        use serde_json::Value as Json;
        let b = def.get("bootstrap");
        let strings = |v: Option<&Json>| -> Vec<String> {
            v.and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let cache_mount = b
            .and_then(|b| b.get("cache_mount"))
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        Some(CacheMount {
                            dst: m.get("dst")?.as_str()?.to_string(),
                            sharing: m.get("sharing").and_then(Json::as_str).map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Bootstrap {
            distro: name.to_string(),
            install_cmd: b
                .and_then(|b| b.get("install_cmd"))
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            package: strings(b.and_then(|b| b.get("package"))),
            cache_mount,
            workaround: strings(def.get("workaround")),
        }
    }
}

/// One build.yml `cache_mount` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMount {
    /// `dst`.
    pub dst: String,
    /// `sharing` (ov's default is `locked`).
    pub sharing: Option<String>,
}

/// The image user the preamble makes sure of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreambleUser {
    /// Login name (also the group's name when the group is created).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// The base image ships the account (build.yml `base_user`): not created.
    pub adopted: bool,
}

impl Rule for PreambleSpec {
    const KIND: NodeKind = NodeKind::Preamble;

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
        let opts = RenderOpts {
            locked_cache_mounts: ctx.quirks.locked_cache_mounts,
        };
        let rendered = render_preamble(self, &opts).map_err(|e| ExecError::Spec(e.to_string()))?;
        let what = format!("preamble `{}`", ctx.node_id);
        build_steps(ctx, &what, &self.parent, rendered, ContextTar::new()).await
    }
}
