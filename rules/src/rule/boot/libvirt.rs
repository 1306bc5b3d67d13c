//! The libvirt backend, through the `virt` crate on `qemu:///system`.

use super::hypervisor::{GuestState, HvError, Hypervisor, Lifetime};
use super::machine::{domain_xml, Machine};
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

/// The URI ov talks to (`OV_LIBVIRT_URI` overrides it). As root,
/// `qemu:///session` reaches the same daemon anyway.
pub const DEFAULT_URI: &str = "qemu:///system";

/// The daemon's socket, for `ov doctor` and error messages.
pub const SOCKET: &str = "/run/libvirt/libvirt-sock";

/// A libvirt connection.
pub struct Libvirt {
    conn: Connect,
}

// SAFETY: a virConnectPtr may be used from any thread (libvirt's own
// guarantee for connections); the crate only leaves the marker off.
unsafe impl Sync for Libvirt {}
unsafe impl Send for Libvirt {}

fn failed(what: &str, e: virt::error::Error) -> HvError {
    HvError::Failed(format!("libvirt: {what}: {}", e.message()))
}

fn uri() -> String {
    std::env::var("OV_LIBVIRT_URI").unwrap_or_else(|_| DEFAULT_URI.to_string())
}

impl Libvirt {
    /// Connects, or says how to get a daemon (or how to do without).
    pub fn connect() -> Result<Libvirt, HvError> {
        Libvirt::connect_to(&uri())
    }

    /// Connects to `uri`.
    pub fn connect_to(uri: &str) -> Result<Libvirt, HvError> {
        // libvirt prints every error to stderr unless told not to; ours
        // are reported through HvError.
        virt::error::clear_error_callback();
        Connect::open(Some(uri))
            .map(|conn| Libvirt { conn })
            .map_err(|e| {
                HvError::Unavailable(format!(
                    "libvirt is not running at {uri} ({}): start it with \
                     `scripts/setup-vm.sh` (or `libvirtd -d` as root), or boot with qemu \
                     directly: `ov settings set vm.backend qemu` or OV_VM_BACKEND=qemu",
                    e.message()
                ))
            })
    }

    fn lookup(&self, domain: &str) -> Result<Option<Domain>, HvError> {
        match self.conn.lookup_domain_by_name(domain) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code() == Enum::Known(ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(failed(&format!("looking up {domain}"), e)),
        }
    }
}

fn state_of(d: &Domain) -> GuestState {
    match d.state().map(|(s, _)| s) {
        Ok(Enum::Known(DomainState::Shutoff | DomainState::Crashed)) => GuestState::Off,
        Ok(_) => GuestState::Running,
        // Gone between the lookup and the question.
        Err(_) => GuestState::Absent,
    }
}

impl Hypervisor for Libvirt {
    fn name(&self) -> &'static str {
        "libvirt"
    }

    fn start(&self, m: &Machine, life: Lifetime) -> Result<(), HvError> {
        let xml = domain_xml(m);
        match life {
            Lifetime::Transient => self
                .conn
                .create_domain_xml(&xml, 0)
                .map(drop)
                .map_err(|e| failed(&format!("starting {}", m.domain), e)),
            Lifetime::Persistent => {
                let d = self
                    .conn
                    .define_domain_xml(&xml)
                    .map_err(|e| failed(&format!("defining {}", m.domain), e))?;
                d.create()
                    .map(drop)
                    .map_err(|e| failed(&format!("starting {}", m.domain), e))
            }
        }
    }

    fn start_defined(&self, domain: &str) -> Result<(), HvError> {
        let d = self
            .lookup(domain)?
            .ok_or_else(|| HvError::Failed(format!("no VM `{domain}` is defined")))?;
        d.create()
            .map(drop)
            .map_err(|e| failed(&format!("starting {domain}"), e))
    }

    fn state(&self, domain: &str) -> Result<GuestState, HvError> {
        Ok(self
            .lookup(domain)?
            .map_or(GuestState::Absent, |d| state_of(&d)))
    }

    fn shutdown(&self, domain: &str) -> Result<(), HvError> {
        match self.lookup(domain)? {
            Some(d) => d
                .shutdown()
                .map_err(|e| failed(&format!("shutting {domain} down"), e)),
            None => Ok(()),
        }
    }

    fn destroy(&self, domain: &str) -> Result<(), HvError> {
        match self.lookup(domain)? {
            Some(d) if state_of(&d) == GuestState::Running => match d.destroy() {
                Ok(()) => Ok(()),
                // It stopped on its own meanwhile.
                Err(_) if state_of(&d) != GuestState::Running => Ok(()),
                Err(e) => Err(failed(&format!("destroying {domain}"), e)),
            },
            _ => Ok(()),
        }
    }

    fn undefine(&self, domain: &str) -> Result<(), HvError> {
        match self.lookup(domain)? {
            Some(d) => d
                .undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM)
                .map_err(|e| failed(&format!("undefining {domain}"), e)),
            None => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<(String, GuestState)>, HvError> {
        let all = self
            .conn
            .list_all_domains(0)
            .map_err(|e| failed("listing domains", e))?;
        let mut out: Vec<(String, GuestState)> = all
            .iter()
            .filter_map(|d| {
                let name = d.name().ok()?;
                name.starts_with("ov-").then(|| (name, state_of(d)))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
