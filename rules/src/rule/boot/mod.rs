//! `boot`: boot a VM from its built disk, wait until it is ready, run its
//! checks over ssh and shut it down; the boot report is the node's output,
//! so a second build boots nothing.
//!
//! Build-time boots run as the instance named [`BUILD_INSTANCE`] (domain
//! `ov-<vm>-build`), so they never touch a VM `ov vm create` made. Its
//! state dir holds the overlay on the disk, the NVRAM, the seed and the
//! console log, and while a boot runs an `owner` file with the pid of the
//! ov that started it: the next build destroys guests whose owner died
//! (see [`sweep_dead`]).

mod drive;
pub mod host;
pub mod hypervisor;
pub mod libvirt;
pub mod machine;
pub mod qemu;
pub mod spec;
pub mod ssh;

pub use drive::{console_tail, BootError, Outcome, Stopped};
pub use spec::BootSpec;

use super::{at, ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::engine::EngineError;
use crate::rule::eval::{self, EvalSpec};
use crate::vm::Instance;
use crate::NodeKind;
use hypervisor::Hypervisor;
use machine::{Accel, Machine, Uefi, DEFAULT_MACHINE};
use serde_json::json;
use spec::{KeySource, PortForward};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The instance name of build-time boots: `ov-<vm>-build`.
pub const BUILD_INSTANCE: &str = "build";

/// How long a guest gets to power off when asked.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

impl Rule for BootSpec {
    const KIND: NodeKind = NodeKind::Boot;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Vm {
            ram_mib: self.ram_mib,
        }
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        execute_with(self, ctx, host::choice()).await
    }
}

fn failed(message: String, output: String) -> ExecError {
    ExecError::Failed { message, output }
}

fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<String, ExecError> {
    let out = Command::new("qemu-img").args(args).output().map_err(|e| {
        failed(
            format!("cannot run qemu-img ({e}); install qemu-utils (scripts/setup-vm.sh does)"),
            String::new(),
        )
    })?;
    if !out.status.success() {
        return Err(failed(
            format!("qemu-img {} failed", args[0].to_string_lossy()),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Puts a qcow2 overlay on `base` at `overlay`, grown to `size` when the
/// base is smaller: the guest writes to the overlay, never to the store.
pub fn make_overlay(
    base: &Path,
    format: &str,
    overlay: &Path,
    size: Option<u64>,
) -> Result<(), ExecError> {
    let _ = std::fs::remove_file(overlay);
    qemu_img(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-F".as_ref(),
        format.as_ref(),
        "-b".as_ref(),
        base.as_os_str(),
        overlay.as_os_str(),
    ])?;
    if let Some(size) = size {
        let info = qemu_img(&[
            "info".as_ref(),
            "--output=json".as_ref(),
            overlay.as_os_str(),
        ])?;
        let virt = serde_json::from_str::<serde_json::Value>(&info)
            .ok()
            .and_then(|v| v.get("virtual-size")?.as_u64())
            .unwrap_or(0);
        if size > virt {
            qemu_img(&[
                "resize".as_ref(),
                "-q".as_ref(),
                overlay.as_os_str(),
                size.to_string().as_ref(),
            ])?;
        }
    }
    Ok(())
}

/// The private key a boot reaches its guest with: the instance's
/// generated key, the VM's default instance's (where the seed put it), or
/// the one next to `key_source: PATH`'s public key, or the user's own.
/// `ov vm ssh` logs in with the same key a build's boot does.
pub fn private_key(spec: &BootSpec, vm_state: &Path, inst: &Instance) -> Option<PathBuf> {
    let default = Instance::new(&spec.vm, None).ok()?;
    let generated = [inst.ssh_key(vm_state), default.ssh_key(vm_state)];
    match &spec.ssh.key {
        KeySource::None => None,
        KeySource::Generate => generated.into_iter().find(|p| p.is_file()),
        KeySource::Path(p) => {
            let p = expand_home(p);
            let private = p
                .to_str()
                .and_then(|s| s.strip_suffix(".pub"))
                .map(PathBuf::from)
                .unwrap_or(p);
            generated
                .into_iter()
                .chain(std::iter::once(private))
                .find(|p| p.is_file())
        }
        KeySource::Auto => {
            let home = std::env::var_os("HOME").map(PathBuf::from)?;
            let ssh = home.join(".ssh");
            generated.into_iter().find(|p| p.is_file()).or_else(|| {
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|n| ssh.join(n))
                    .find(|p| p.is_file() && p.with_extension("pub").is_file())
            })
        }
    }
}

fn expand_home(p: &Path) -> PathBuf {
    match (
        p.to_str().and_then(|s| s.strip_prefix("~/")),
        std::env::var_os("HOME"),
    ) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// The `owner` file of a running build boot: `<pid> <backend>`.
fn owner_file(dir: &Path) -> PathBuf {
    dir.join("owner")
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
        .flatten()
        .is_some_and(|st| !matches!(st, 'Z' | 'X'))
}

/// Destroys the build-boot guests under `vm_state` whose ov died (killed
/// mid-boot) and removes their owner files; returns the domains destroyed.
/// Guests of live builds are left alone.
pub fn sweep_dead(vm_state: &Path) -> Vec<String> {
    let mut gone = Vec::new();
    let Ok(entries) = std::fs::read_dir(vm_state) else {
        return gone;
    };
    for e in entries.flatten() {
        let owner = owner_file(&e.path());
        let Ok(text) = std::fs::read_to_string(&owner) else {
            continue;
        };
        let mut words = text.split_whitespace();
        let pid: u32 = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pid_alive(pid) {
            continue;
        }
        let kind = words
            .next()
            .and_then(hypervisor::BackendKind::parse)
            .unwrap_or_default();
        let domain = e.file_name().to_string_lossy().into_owned();
        if let Ok(hv) = hypervisor::open(kind, vm_state) {
            if hv.destroy(&domain).is_ok() {
                gone.push(domain);
                let _ = std::fs::remove_file(&owner);
            }
        }
    }
    gone
}

fn hv_error(e: hypervisor::HvError) -> ExecError {
    failed(e.to_string(), String::new())
}

/// Runs boot node `spec` with the host choices `choice` (a build passes
/// [`host::choice`]).
pub async fn execute_with(
    spec: &BootSpec,
    ctx: &mut ExecCtx<'_>,
    choice: host::HostChoice,
) -> Result<NodeOutput, ExecError> {
    let inst = Instance::new(&spec.vm, Some(BUILD_INSTANCE))
        .map_err(|e| ExecError::Spec(format!("{}: {e}", ctx.node_id)))?;
    let root = ctx.vm_state;
    let dir = inst.dir(root);
    std::fs::create_dir_all(&dir).map_err(at(&dir))?;
    let hv = hypervisor::open(choice.backend, root).map_err(hv_error)?;
    let domain = inst.domain();
    // A guest left by a build that died is ours to remove; one of a live
    // build is not.
    if let Ok(text) = std::fs::read_to_string(owner_file(&dir)) {
        let pid: u32 = text
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid != std::process::id() && pid_alive(pid) {
            return Err(failed(
                format!("{domain} is being booted by another ov (pid {pid})"),
                String::new(),
            ));
        }
    }
    hv.destroy(&domain).map_err(hv_error)?;
    std::fs::write(
        owner_file(&dir),
        format!("{} {}\n", std::process::id(), choice.backend.name()),
    )
    .map_err(at(&owner_file(&dir)))?;
    let mut result = boot_in(spec, ctx, hv.as_ref(), &inst, choice.accel.resolve()).await;
    // `auto` promised a guest that runs: when KVM halts it (a nested KVM
    // the probe passed), it boots again, from fresh files, under TCG.
    if choice.accel == host::AccelChoice::Auto {
        if let Err(Failure::Halted {
            accel: Accel::Kvm,
            error,
        }) = &result
        {
            host::kvm_halted_a_guest();
            (ctx.on_line)(&format!("{error}; booting again under TCG"));
            result = boot_in(spec, ctx, hv.as_ref(), &inst, Accel::Tcg).await;
        }
    }
    let result = result.map_err(Failure::into_exec);
    let _ = std::fs::remove_file(owner_file(&dir));
    // The overlay and the store's link are the boot's alone.
    let _ = std::fs::remove_file(inst.disk(root));
    let _ = std::fs::remove_file(dir.join("base.disk"));
    result
}

/// Why [`boot_in`] failed. A guest the hypervisor halted is told apart:
/// under `auto`, one KVM halted is booted again under TCG.
enum Failure {
    Halted { accel: Accel, error: ExecError },
    Other(ExecError),
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Self {
        Failure::Other(e)
    }
}

impl Failure {
    fn into_exec(self) -> ExecError {
        match self {
            Failure::Halted { error, .. } | Failure::Other(error) => error,
        }
    }
}

async fn boot_in(
    spec: &BootSpec,
    ctx: &mut ExecCtx<'_>,
    hv: &dyn Hypervisor,
    inst: &Instance,
    accel: Accel,
) -> Result<NodeOutput, Failure> {
    let root = ctx.vm_state;
    let dir = inst.dir(root);
    let disk_id = format!("disk:{}", spec.vm);
    let format = ctx
        .deps
        .get(&disk_id)
        .and_then(|o| o.meta.get("format")?.as_str())
        .unwrap_or("qcow2")
        .to_string();
    if !matches!(format.as_str(), "qcow2" | "raw") {
        return Err(ExecError::Spec(format!(
            "{}: `{disk_id}` made a `{format}` disk; boots read qcow2 or raw",
            ctx.node_id
        ))
        .into());
    }
    let base = dir.join("base.disk");
    let _ = std::fs::remove_file(&base);
    ctx.dep_blob(&disk_id, "disk", &base, false)?;
    make_overlay(&base, &format, &inst.disk(root), spec.disk_size)?;
    let uefi = match host::ovmf(spec.firmware).map_err(|e| failed(e, String::new()))? {
        Some(o) => {
            let nvram = inst.nvram(root);
            let _ = std::fs::remove_file(&nvram);
            std::fs::copy(&o.vars, &nvram).map_err(at(&nvram))?;
            Some(Uefi {
                code: o.code,
                vars_template: o.vars,
                nvram,
                secure: spec.firmware == spec::Firmware::UefiSecure,
            })
        }
        None => None,
    };
    let seed = if spec.seed {
        let path = inst.seed(root);
        let _ = std::fs::remove_file(&path);
        ctx.dep_blob(&format!("seed:{}", spec.vm), "seed", &path, false)?;
        Some(path)
    } else {
        None
    };
    let console = inst.console_log(root);
    std::fs::write(&console, b"").map_err(at(&console))?;
    let ssh_port = ssh::free_port().map_err(ExecError::Io)?;
    let m = Machine {
        domain: inst.domain(),
        ram_mib: spec.ram_mib,
        cpus: spec.cpus,
        accel,
        machine: spec
            .machine
            .clone()
            .unwrap_or_else(|| DEFAULT_MACHINE.into()),
        uefi,
        disk: inst.disk(root),
        disk_format: "qcow2".into(),
        seed,
        nic_model: spec.nic_model.clone().unwrap_or_else(|| "virtio".into()),
        forwards: vec![PortForward {
            host: ssh_port,
            guest: 22,
        }],
        console_log: console.clone(),
        graphics: Vec::new(),
        video: Vec::new(),
    };
    let key = private_key(spec, root, inst);
    let shell = key.as_ref().map(|k| ssh::Ssh {
        port: ssh_port,
        user: spec.ssh.user.clone(),
        key: k.clone(),
    });
    let ready = match (&spec.ready.console, &shell) {
        (Some(marker), _) => drive::ReadyBy::Console(marker),
        (None, Some(_)) => drive::ReadyBy::Ssh,
        (None, None) => {
            return Err(ExecError::Spec(format!(
                "{}: no private key for `ssh.key_source` to reach the guest with, and no \
                 `ready.console` line to wait for",
                ctx.node_id
            ))
            .into())
        }
    };
    let checks = eval::parse_checks(&EvalSpec {
        checks: spec.checks.clone(),
        distro: Vec::new(),
        build: Vec::new(),
        image_node: String::new(),
    })?;
    let plan = drive::Plan {
        ready,
        ready_timeout: Duration::from_secs(spec.ready.timeout_s),
        shutdown_timeout: SHUTDOWN_TIMEOUT,
        checks: &checks,
        shell: shell.as_ref().map(|s| s as &dyn ssh::GuestShell),
        cancel: ctx.cancel,
    };
    (ctx.on_line)(&format!(
        "booting {} ({}, {}, {} MiB)",
        m.domain,
        hv.name(),
        m.accel.name(),
        m.ram_mib
    ));
    let out = drive::boot(hv, &m, &plan).await.map_err(|e| match e {
        BootError::Cancelled => Failure::Other(ExecError::Engine(EngineError::Cancelled)),
        BootError::NotReady {
            message,
            console_tail,
        } => Failure::Other(failed(
            format!("{}: {message}", ctx.node_id),
            format!("last lines of the console:\n{console_tail}"),
        )),
        BootError::Halted {
            message,
            console_tail,
        } => Failure::Halted {
            accel: m.accel,
            error: failed(
                match m.accel {
                    Accel::Kvm => format!(
                        "{}: {message}; if KVM cannot run this guest here, set `vm.accel` \
                         (or OV_VM_ACCEL) to tcg",
                        ctx.node_id
                    ),
                    Accel::Tcg => format!("{}: {message}", ctx.node_id),
                },
                format!("last lines of the console:\n{console_tail}"),
            ),
        },
        BootError::Checks { message, output } => {
            Failure::Other(failed(format!("{}: {message}", ctx.node_id), output))
        }
        BootError::Hypervisor(e) => {
            Failure::Other(failed(format!("{}: {e}", ctx.node_id), String::new()))
        }
    })?;
    let report = json!({
        "vm": spec.vm,
        "domain": m.domain,
        "backend": hv.name(),
        "accel": m.accel.name(),
        "firmware": spec.firmware,
        "ready_by": if spec.ready.console.is_some() { "console" } else { "ssh" },
        "ready_ms": out.ready_ms,
        "checks_ms": out.checks_ms,
        "shutdown_ms": out.shutdown_ms,
        "stopped": out.stopped,
        "checks": out.checks,
        "console_tail": console_tail(&console, 40),
    });
    let bytes = serde_json::to_vec_pretty(&report).map_err(|e| ExecError::Spec(e.to_string()))?;
    let report_path = ctx.scratch.join("boot-report.json");
    std::fs::write(&report_path, &bytes).map_err(at(&report_path))?;
    let console_copy = ctx.scratch.join("console.log");
    std::fs::copy(&console, &console_copy).map_err(at(&console_copy))?;
    // Dependents (none today) key on what the checks found, not on timings.
    let verdicts = serde_json::to_vec(&out.checks).unwrap_or_default();
    Ok(NodeOutput {
        digest: format!("blake3:{}", blake3::hash(&verdicts).to_hex()),
        image: None,
        files: vec![
            ("report".into(), report_path),
            ("console".into(), console_copy),
        ],
        meta: json!({
            "domain": m.domain,
            "backend": hv.name(),
            "accel": m.accel.name(),
            "ready_ms": out.ready_ms,
            "checks": out.checks.len(),
            "stopped": out.stopped,
        }),
        log: format!(
            "{} ready after {} ms; {} checks passed; {}",
            m.domain,
            out.ready_ms,
            out.checks.len(),
            match out.stopped {
                Stopped::Clean => "powered off",
                Stopped::Destroyed => "destroyed (did not power off)",
            }
        ),
        ..Default::default()
    })
}
