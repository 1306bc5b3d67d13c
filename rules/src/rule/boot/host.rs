//! What the host offers a boot: which backend, KVM or TCG, and where the
//! OVMF firmware lives.

use super::hypervisor::BackendKind;
use super::machine::Accel;
use super::spec::Firmware;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The accelerator a user asks for (`vm.accel`, `OV_VM_ACCEL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when [`kvm_works`] says so, else TCG.
    #[default]
    Auto,
    /// KVM, whatever the probe says.
    Kvm,
    /// TCG.
    Tcg,
}

impl AccelChoice {
    /// Reads `auto`, `kvm` or `tcg`.
    pub fn parse(s: &str) -> Option<AccelChoice> {
        match s {
            "auto" => Some(AccelChoice::Auto),
            "kvm" => Some(AccelChoice::Kvm),
            "tcg" => Some(AccelChoice::Tcg),
            _ => None,
        }
    }

    /// The accelerator this choice comes to on this host.
    pub fn resolve(self) -> Accel {
        match self {
            AccelChoice::Kvm => Accel::Kvm,
            AccelChoice::Tcg => Accel::Tcg,
            AccelChoice::Auto => {
                static PROBED: OnceLock<bool> = OnceLock::new();
                if !KVM_HALTED.load(Ordering::Relaxed) && *PROBED.get_or_init(kvm_works) {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                }
            }
        }
    }
}

/// Set once KVM halted a guest that `auto` gave it: the probe cannot
/// tell every guest it fails (nested KVM may run SeaBIOS and stop on
/// OVMF's first FPU instruction), so what a real guest found wins.
static KVM_HALTED: AtomicBool = AtomicBool::new(false);

/// Makes `auto` choose TCG from now on, in this process.
pub fn kvm_halted_a_guest() {
    KVM_HALTED.store(true, Ordering::Relaxed);
}

/// The host choices a build boots with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostChoice {
    /// The hypervisor backend.
    pub backend: BackendKind,
    /// KVM or TCG.
    pub accel: AccelChoice,
}

static HOST: OnceLock<HostChoice> = OnceLock::new();

/// Sets the choices for this process (ov does it once, from its settings
/// and the environment, before a build).
pub fn configure(choice: HostChoice) {
    let _ = HOST.set(choice);
}

/// The choices in force: what [`configure`] set, else the environment
/// (`OV_VM_BACKEND`, `OV_VM_ACCEL`), else libvirt and auto.
pub fn choice() -> HostChoice {
    *HOST.get_or_init(|| HostChoice {
        backend: std::env::var("OV_VM_BACKEND")
            .ok()
            .and_then(|s| BackendKind::parse(&s))
            .unwrap_or_default(),
        accel: std::env::var("OV_VM_ACCEL")
            .ok()
            .and_then(|s| AccelChoice::parse(&s))
            .unwrap_or_default(),
    })
}

/// What SeaBIOS prints on its debug port once POST is over and it finds
/// nothing to boot.
const POST_DONE: &str = "No bootable device";

/// True when a KVM guest actually runs here. `/dev/kvm` can exist while
/// guests fail or crawl (nested virtualisation: real-mode code runs,
/// protected mode hits emulation failures and hangs, or every exit is
/// emulated): so SeaBIOS is booted with no disk, under TCG and then
/// under KVM, and KVM must finish its POST within three times TCG's time
/// (half a second at least). A sound KVM is the faster of the two; one
/// seen here took 3.5 s where TCG took 0.1 s, and then halted OVMF on its
/// first FPU instruction. Timing both in turn keeps the verdict the same
/// on a loaded machine, where an absolute limit flipped between runs.
pub fn kvm_works() -> bool {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let Some(tcg) = post_time("tcg", Duration::from_secs(10)) else {
        // No yardstick: the old absolute limit.
        return post_time("kvm", Duration::from_secs(3)).is_some();
    };
    post_time("kvm", (tcg * 3).max(Duration::from_millis(500))).is_some()
}

/// How long SeaBIOS takes to finish its POST under `accel`, if it does
/// within `limit`.
fn post_time(accel: &str, limit: Duration) -> Option<Duration> {
    let dir = tempfile::tempdir().ok()?;
    let log = dir.path().join("post.log");
    let started = Instant::now();
    let mut child = Command::new(super::qemu::QEMU)
        .args([
            "-accel",
            accel,
            "-machine",
            "pc",
            "-nodefaults",
            "-display",
            "none",
        ])
        .arg("-chardev")
        .arg(format!(
            "file,id=post,path={}",
            log.to_string_lossy().replace(',', ",,")
        ))
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=post"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = started + limit;
    let took = loop {
        if std::fs::read_to_string(&log).is_ok_and(|l| l.contains(POST_DONE)) {
            break Some(started.elapsed());
        }
        if Instant::now() >= deadline || matches!(child.try_wait(), Ok(Some(_))) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    took
}

/// OVMF's code and variable-store template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ovmf {
    /// OVMF_CODE.
    pub code: PathBuf,
    /// The OVMF_VARS template.
    pub vars: PathBuf,
}

/// Where distributions put OVMF, as ov looks for it (Debian's 4M builds,
/// Fedora's, Arch's), secure-boot builds for `uefi-secure`.
fn ovmf_candidates(secure: bool) -> &'static [(&'static str, &'static str)] {
    if secure {
        &[
            (
                "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
            ),
            (
                "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
            ),
            (
                "/usr/share/OVMF/OVMF_CODE.secboot.fd",
                "/usr/share/OVMF/OVMF_VARS.secboot.fd",
            ),
            (
                "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd",
                "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd",
            ),
            (
                "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd",
                "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
            ),
        ]
    } else {
        &[
            (
                "/usr/share/OVMF/OVMF_CODE_4M.fd",
                "/usr/share/OVMF/OVMF_VARS_4M.fd",
            ),
            (
                "/usr/share/OVMF/OVMF_CODE.fd",
                "/usr/share/OVMF/OVMF_VARS.fd",
            ),
            (
                "/usr/share/edk2/ovmf/OVMF_CODE.fd",
                "/usr/share/edk2/ovmf/OVMF_VARS.fd",
            ),
            (
                "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
                "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
            ),
        ]
    }
}

/// The OVMF files for `firmware` (`None` for BIOS), or an error naming
/// the package and the paths looked at.
pub fn ovmf(firmware: Firmware) -> Result<Option<Ovmf>, String> {
    if !firmware.is_uefi() {
        return Ok(None);
    }
    let secure = firmware == Firmware::UefiSecure;
    let cands = ovmf_candidates(secure);
    cands
        .iter()
        .find(|(c, v)| Path::new(c).is_file() && Path::new(v).is_file())
        .map(|(c, v)| {
            Some(Ovmf {
                code: c.into(),
                vars: v.into(),
            })
        })
        .ok_or_else(|| {
            format!(
                "no OVMF firmware for `firmware: {}` (looked for {}); install the `ovmf` package \
                 (scripts/setup-vm.sh does)",
                if secure {
                    "uefi-secure"
                } else {
                    "uefi-insecure"
                },
                cands.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!(AccelChoice::parse("tcg"), Some(AccelChoice::Tcg));
        assert_eq!(AccelChoice::parse("hvf"), None);
        assert_eq!(BackendKind::parse("qemu"), Some(BackendKind::Qemu));
        assert_eq!(ovmf(Firmware::Bios), Ok(None));
    }
}
