//! `seed`: a VM's cloud-init NoCloud seed ISO (volume id `cidata`) with
//! `user-data`, `meta-data` and, when configured, `network-config`,
//! rendered from `cloud_init:` as ov renders them.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::vm::cloud_init::{self, CloudInit, Rendered};
use crate::vm::{iso, Instance};
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A seed node's spec: everything the rendered files depend on, the SSH
/// key already resolved (its public half only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSpec {
    /// The VM's name (its instance's identity).
    pub vm: String,
    /// `cloud_init:` as declared.
    pub cloud_init: CloudInit,
    /// The SSH user the key goes to (ssh.user, else source.base_user,
    /// else `root` for bootc VMs).
    pub ssh_user: Option<String>,
    /// `source.base_user`: an account the image already has.
    pub base_user: Option<String>,
    /// `source.distro`: names the ssh package and unit.
    pub distro: Option<String>,
    /// The public key cloud-init authorizes, per `ssh.key_source` and
    /// `ssh.key_injection.cloud_init`.
    pub authorized_key: Option<String>,
}

impl SeedSpec {
    /// The files for `instance` of this VM: its instance id comes from
    /// the instance's name and this spec.
    pub fn render(&self, instance: &Instance) -> Result<Rendered, cloud_init::RenderError> {
        let canonical = crate::canonical_json(&serde_json::to_value(self).unwrap_or_default());
        let id = cloud_init::instance_id(&instance.domain(), &canonical);
        cloud_init::render(
            &self.cloud_init,
            &cloud_init::Context {
                ssh_user: self.ssh_user.as_deref(),
                base_user: self.base_user.as_deref(),
                distro: self.distro.as_deref(),
                authorized_key: self.authorized_key.as_deref(),
                instance_id: &id,
            },
        )
    }

    /// Renders for `instance` and writes the ISO at `dest` (what `ov vm`
    /// does for a named instance).
    pub fn write_iso(
        &self,
        instance: &Instance,
        dest: &std::path::Path,
    ) -> Result<Rendered, String> {
        let r = self.render(instance).map_err(|e| e.to_string())?;
        iso::write(dest, &r).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok(r)
    }
}

/// The digest dependents key on: the files' names and bytes (the ISO's
/// own bytes carry its write time).
fn files_digest(r: &Rendered) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in iso::files(r) {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl Rule for SeedSpec {
    const KIND: NodeKind = NodeKind::Seed;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Cpu
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        let instance = Instance::new(&self.vm, None)
            .map_err(|e| ExecError::Spec(format!("{}: {e}", ctx.node_id)))?;
        let dest = ctx.scratch.join("seed.iso");
        let r = self
            .write_iso(&instance, &dest)
            .map_err(|e| ExecError::Spec(format!("{}: {e}", ctx.node_id)))?;
        let instance_id = yaml_rust2::YamlLoader::load_from_str(&r.meta_data)
            .ok()
            .and_then(|d| d.first()?["instance-id"].as_str().map(str::to_string))
            .unwrap_or_default();
        let names: Vec<&str> = iso::files(&r).into_iter().map(|(n, _)| n).collect();
        (ctx.on_line)(&format!(
            "seed ISO `{}`: {}",
            iso::VOLUME_ID,
            names.join(", ")
        ));
        Ok(NodeOutput {
            digest: files_digest(&r),
            files: vec![("seed".into(), dest)],
            meta: json!({
                "volume_id": iso::VOLUME_ID,
                "files": names,
                "instance_id": instance_id,
            }),
            ..Default::default()
        })
    }
}
