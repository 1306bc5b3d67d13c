//! The hypervisor as boots and `ov vm` use it: start a [`Machine`], ask
//! whether it runs, press its power button, pull its plug. The boot
//! executor's logic (ready, checks, shutdown, destroy on every failure)
//! runs against this trait, so it is tested with a fake; [`super::libvirt`]
//! and [`super::qemu`] are the real ones.

use super::machine::Machine;

/// What became of a guest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum GuestState {
    /// Running (or paused, or shutting down).
    Running,
    /// Stopped by the hypervisor, not by anyone's request: an emulation
    /// failure (KVM that cannot run the guest's code), an I/O error, a
    /// guest panic. It will not go on by itself; only destroying it helps.
    Halted,
    /// Defined but stopped (persistent libvirt domains only).
    Off,
    /// No such guest.
    Absent,
}

/// Why a hypervisor call failed.
#[derive(Debug, thiserror::Error)]
pub enum HvError {
    /// The hypervisor cannot be reached at all; the message names the fix.
    #[error("{0}")]
    Unavailable(String),
    /// A call failed.
    #[error("{0}")]
    Failed(String),
}

/// How long a guest lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// A build's guest: gone once it stops, and with the build if the
    /// build is killed (qemu) or at the next build (libvirt).
    Transient,
    /// `ov vm create`: outlives ov, can be stopped and started again.
    Persistent,
}

/// A hypervisor.
pub trait Hypervisor: Send + Sync {
    /// `libvirt` or `qemu`, for reports.
    fn name(&self) -> &'static str;
    /// Starts `m`.
    fn start(&self, m: &Machine, life: Lifetime) -> Result<(), HvError>;
    /// Starts the persistent guest `domain` defined earlier.
    fn start_defined(&self, domain: &str) -> Result<(), HvError>;
    /// The state of guest `domain`.
    fn state(&self, domain: &str) -> Result<GuestState, HvError>;
    /// Presses the ACPI power button of `domain`.
    fn shutdown(&self, domain: &str) -> Result<(), HvError>;
    /// Stops `domain` at once; a guest that is not running is no error.
    fn destroy(&self, domain: &str) -> Result<(), HvError>;
    /// Forgets a stopped persistent guest (and its NVRAM).
    fn undefine(&self, domain: &str) -> Result<(), HvError>;
    /// Every guest ov made (`ov-*`), with its state.
    fn list(&self) -> Result<Vec<(String, GuestState)>, HvError>;
}

/// Which hypervisor backend a build or `ov vm` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// libvirtd on `qemu:///system`.
    #[default]
    Libvirt,
    /// qemu-system-x86_64 run directly.
    Qemu,
}

impl BackendKind {
    /// Reads `vm.backend` / `OV_VM_BACKEND`.
    pub fn parse(s: &str) -> Option<BackendKind> {
        match s {
            "libvirt" => Some(BackendKind::Libvirt),
            "qemu" => Some(BackendKind::Qemu),
            _ => None,
        }
    }

    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Libvirt => "libvirt",
            BackendKind::Qemu => "qemu",
        }
    }
}

/// Opens the backend `kind`; `vm_state` is where instance dirs live (the
/// qemu backend keeps its pidfile and monitor there).
pub fn open(kind: BackendKind, vm_state: &std::path::Path) -> Result<Box<dyn Hypervisor>, HvError> {
    match kind {
        BackendKind::Libvirt => Ok(Box::new(super::libvirt::Libvirt::connect()?)),
        BackendKind::Qemu => Ok(Box::new(super::qemu::Qemu::new(vm_state))),
    }
}
