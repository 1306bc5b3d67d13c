//! A VM instance: one VM entry of vm.yml, optionally under an instance name
//! (`ov vm create NAME -i staging`), with one state directory.
//!
//! Names follow ov: the domain is `ov-<vm>` or `ov-<vm>-<instance>`, and the
//! state directory is named for the domain, so `ov vm` and the build's boot
//! nodes find the same keys, NVRAM and overlay.

use std::path::{Path, PathBuf};

/// A VM instance's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Instance {
    vm: String,
    instance: Option<String>,
}

/// A VM or instance name that cannot name a domain or a directory.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid VM or instance name (letters, digits, `-`, `_` and `.`, not starting with `.` or `-`)")]
pub struct InstanceError(String);

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Instance {
    /// The instance `instance` (or the default one) of VM `vm`. Both names
    /// reach a domain name, a directory name and domain XML, so anything
    /// but a plain name is refused.
    pub fn new(vm: &str, instance: Option<&str>) -> Result<Self, InstanceError> {
        for n in std::iter::once(vm).chain(instance) {
            if !valid(n) {
                return Err(InstanceError(n.to_string()));
            }
        }
        Ok(Instance {
            vm: vm.to_string(),
            instance: instance.map(str::to_string),
        })
    }

    /// The VM's name in vm.yml.
    pub fn vm(&self) -> &str {
        &self.vm
    }

    /// The instance name, if not the default instance.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The hypervisor's name for it: `ov-<vm>[-<instance>]`, as ov names it.
    pub fn domain(&self) -> String {
        match &self.instance {
            Some(i) => format!("ov-{}-{i}", self.vm),
            None => format!("ov-{}", self.vm),
        }
    }

    /// Its state directory under `root` (the VM state root): keys, NVRAM,
    /// seed, disk overlay, console log.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(self.domain())
    }

    /// The private half of a generated SSH key (`key_source: generate`).
    pub fn ssh_key(&self, root: &Path) -> PathBuf {
        self.dir(root).join("id_ed25519")
    }

    /// The public half of a generated SSH key.
    pub fn ssh_pub_key(&self, root: &Path) -> PathBuf {
        self.dir(root).join("id_ed25519.pub")
    }

    /// The UEFI variable store (per instance, so each keeps its boot entries).
    pub fn nvram(&self, root: &Path) -> PathBuf {
        self.dir(root).join("OVMF_VARS.fd")
    }

    /// The cloud-init seed ISO.
    pub fn seed(&self, root: &Path) -> PathBuf {
        self.dir(root).join("seed.iso")
    }

    /// The disk the instance boots: a qcow2 overlay on the built disk.
    pub fn disk(&self, root: &Path) -> PathBuf {
        self.dir(root).join("disk.qcow2")
    }

    /// The serial console log.
    pub fn console_log(&self, root: &Path) -> PathBuf {
        self.dir(root).join("console.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_named_as_ov_names_them() {
        let root = Path::new("/state");
        let a = Instance::new("web", None).unwrap();
        assert_eq!(a.domain(), "ov-web");
        assert_eq!(a.dir(root), Path::new("/state/ov-web"));
        let b = Instance::new("web", Some("staging")).unwrap();
        assert_eq!(b.domain(), "ov-web-staging");
        assert_eq!(
            b.ssh_pub_key(root),
            Path::new("/state/ov-web-staging/id_ed25519.pub")
        );
    }

    #[test]
    fn names_that_could_escape_a_path_or_xml_are_refused() {
        for bad in ["", "../x", "a/b", "a b", "<x>", ".hidden", "-flag", "a'b"] {
            assert!(Instance::new(bad, None).is_err(), "{bad:?}");
            assert!(Instance::new("ok", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
