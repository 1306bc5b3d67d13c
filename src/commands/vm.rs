//! `ov vm build|create|start|stop|destroy|list|console|ssh`: long-lived
//! VMs from the cached disk, named as ov names them (`ov-<vm>[-<instance>]`),
//! each with its state dir (overlay, NVRAM, seed, keys, console log).
//!
//! `ov vm build` is the cached `disk:<vm>` node; `ov vm create` builds what
//! the VM needs (its disk and seed) like `ov build` and then defines and
//! starts a persistent guest on an overlay of the stored disk.

use super::{bad_input, configure_vm_host, load_settings};
use crate::cli::{BuildArgs, VmCmd, VmTarget};
use crate::workspace::{Dirs, Workspace};
use anyhow::Context as _;
use ov_cache::{Lookup, Store};
use ov_rules::rule::boot::hypervisor::{self, GuestState, Hypervisor, Lifetime};
use ov_rules::rule::boot::machine::{Machine, Uefi, DEFAULT_MACHINE};
use ov_rules::rule::boot::spec::{self, PortForward};
use ov_rules::rule::boot::{host, make_overlay, BootSpec, BUILD_INSTANCE};
use ov_rules::vm::Instance;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn instance(t: &VmTarget) -> anyhow::Result<Instance> {
    if t.instance.as_deref() == Some(BUILD_INSTANCE) {
        return Err(bad_input(format!(
            "`-i {BUILD_INSTANCE}` is the instance ov's builds boot; choose another name"
        )));
    }
    Instance::new(&t.name, t.instance.as_deref()).map_err(|e| bad_input(e.to_string()))
}

fn backend(dirs: &Dirs) -> anyhow::Result<Box<dyn Hypervisor>> {
    configure_vm_host(&load_settings()?)?;
    hypervisor::open(host::choice().backend, &dirs.state.join("vm")).map_err(|e| e.into())
}

/// The VM `name`'s boot fields, or a bad-input error naming the closest VM.
fn boot_spec(ws: &Workspace, name: &str) -> anyhow::Result<BootSpec> {
    match ws.project.vms.get(name) {
        Some(vm) => vm
            .boot
            .clone()
            .ok_or_else(|| bad_input(format!("vm `{name}` has errors in its boot fields"))),
        None => Err(bad_input(format!(
            "unknown VM `{name}`{}",
            crate::diag::did_you_mean(name, ws.project.vms.keys().map(String::as_str))
        ))),
    }
}

/// Runs `ov vm …`.
pub fn run(root: &Path, dirs: &Dirs, cmd: VmCmd, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let vm_state = dirs.state.join("vm");
    match cmd {
        VmCmd::Build {
            name,
            kind,
            size,
            root_size,
            transport,
        } => {
            if let Some(flag) = [
                ("--type", kind),
                ("--size", size),
                ("--root-size", root_size),
                ("--transport", transport),
            ]
            .into_iter()
            .find_map(|(f, v)| v.map(|_| f))
            {
                return Err(bad_input(format!(
                    "{flag}: write it in vm.yml (`disk_size`, `source.root_size`, \
                     `source.transport`): a built disk is cached by what vm.yml says"
                )));
            }
            super::build::build(
                root,
                dirs,
                BuildArgs::targets(vec![format!("disk:{name}")]),
                false,
            )
        }
        VmCmd::Create {
            target,
            ram,
            cpus,
            ssh_key,
        } => create(root, dirs, &target, ram, cpus, ssh_key, out),
        VmCmd::Start { target } => {
            let inst = instance(&target)?;
            backend(dirs)?.start_defined(&inst.domain())?;
            writeln!(out, "started {}", inst.domain())?;
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::Stop { target, force } => {
            let inst = instance(&target)?;
            let hv = backend(dirs)?;
            if force {
                hv.destroy(&inst.domain())?;
            } else {
                hv.shutdown(&inst.domain())?;
            }
            writeln!(out, "stopping {}", inst.domain())?;
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::Destroy { target, disk } => {
            let inst = instance(&target)?;
            let hv = backend(dirs)?;
            hv.destroy(&inst.domain())?;
            hv.undefine(&inst.domain())?;
            if disk {
                let dir = inst.dir(&vm_state);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("removing {}", dir.display()))?;
                }
            }
            writeln!(out, "destroyed {}", inst.domain())?;
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::List => {
            for (name, state) in backend(dirs)?.list()? {
                let state = match state {
                    GuestState::Running => "running",
                    GuestState::Halted => "halted by the hypervisor (destroy it)",
                    GuestState::Off => "shut off",
                    GuestState::Absent => continue,
                };
                writeln!(out, "{name}\t{state}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::Console { target } => {
            let inst = instance(&target)?;
            let log = inst.console_log(&vm_state);
            let text = std::fs::read(&log).with_context(|| {
                format!("{} has no console log at {}", inst.domain(), log.display())
            })?;
            out.write_all(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::Ssh { target, command } => {
            let inst = instance(&target)?;
            let ws = Workspace::open(root, dirs)?;
            let spec = boot_spec(&ws, &target.name)?;
            let key = saved_key(&inst, &vm_state)
                .or_else(|| ov_rules::rule::boot::private_key(&spec, &vm_state, &inst))
                .ok_or_else(|| bad_input(format!("no ssh key for {}", inst.domain())))?;
            let ssh = ov_rules::rule::boot::ssh::Ssh {
                port: spec.ssh.port,
                user: spec.ssh.user.clone(),
                key,
            };
            let status = std::process::Command::new("ssh")
                .args(ssh.args())
                .args(&command)
                .status()
                .context("running ssh")?;
            Ok(ExitCode::from(status.code().unwrap_or(255) as u8))
        }
    }
}

/// The key `ov vm create --ssh-key` recorded for the instance.
fn saved_key(inst: &Instance, vm_state: &Path) -> Option<PathBuf> {
    let p = std::fs::read_to_string(inst.dir(vm_state).join("ssh_key_path")).ok()?;
    Some(PathBuf::from(p.trim()))
}

/// Places the file `name` of node `id`'s stored result at `dest`.
fn place_output(
    ws: &Workspace,
    store: &Store,
    id: &str,
    name: &str,
    dest: &Path,
) -> anyhow::Result<serde_json::Value> {
    let ix = ws.plan.resolve(id, "node").map_err(bad_input)?;
    let key = ws.keys.keys[ix.index()];
    let Ok(Lookup::Hit(r)) = store.get_action(&key) else {
        anyhow::bail!("{id} is not built: run `ov vm build`");
    };
    let blob = r
        .blobs
        .iter()
        .find(|b| b.name == name)
        .with_context(|| format!("{id} stored no `{name}`"))?;
    let _ = std::fs::remove_file(dest);
    store
        .blob_to_file(&blob.digest, dest)
        .with_context(|| format!("placing {id}'s {name} at {}", dest.display()))?;
    Ok(r.meta.clone())
}

fn create(
    root: &Path,
    dirs: &Dirs,
    target: &VmTarget,
    ram: Option<String>,
    cpus: Option<u32>,
    ssh_key: Option<PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let inst = instance(target)?;
    let ws = Workspace::open(root, dirs)?;
    let mut spec = boot_spec(&ws, &target.name)?;
    if let Some(r) = &ram {
        spec.ram_mib = spec::parse_size(r)
            .map(|b| b >> 20)
            .ok_or_else(|| bad_input(format!("--ram: `{r}` is not a size such as 4G")))?;
    }
    if let Some(c) = cpus {
        spec.cpus = c.max(1);
    }
    let seed_id = format!("seed:{}", target.name);
    let has_seed = ws.plan.by_id.contains_key(&seed_id);
    let mut targets = vec![format!("disk:{}", target.name)];
    if has_seed {
        targets.push(seed_id.clone());
    }
    drop(ws);
    let built = super::build::build(root, dirs, BuildArgs::targets(targets), false)?;
    if built != ExitCode::SUCCESS {
        return Ok(built);
    }
    let pred = super::open_predicted(root, dirs)?;
    let ws: &Workspace = &pred;
    let store = Store::open(&dirs.cache.join("store"))?;
    let vm_state = dirs.state.join("vm");
    let dir = inst.dir(&vm_state);
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base.disk");
    let meta = place_output(ws, &store, &format!("disk:{}", target.name), "disk", &base)?;
    let format = meta
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("qcow2")
        .to_string();
    make_overlay(&base, &format, &inst.disk(&vm_state), spec.disk_size)?;
    let seed = if has_seed {
        let p = inst.seed(&vm_state);
        place_output(ws, &store, &seed_id, "seed", &p)?;
        Some(p)
    } else {
        None
    };
    let uefi = match host::ovmf(spec.firmware).map_err(anyhow::Error::msg)? {
        Some(o) => {
            let nvram = inst.nvram(&vm_state);
            if !nvram.exists() {
                std::fs::copy(&o.vars, &nvram)?;
            }
            Some(Uefi {
                code: o.code,
                vars_template: o.vars,
                nvram,
                secure: spec.firmware == spec::Firmware::UefiSecure,
            })
        }
        None => None,
    };
    if let Some(k) = &ssh_key {
        std::fs::write(dir.join("ssh_key_path"), k.to_string_lossy().as_bytes())?;
    }
    let mut forwards = vec![PortForward {
        host: spec.ssh.port,
        guest: 22,
    }];
    forwards.extend(spec.port_forwards.iter().copied());
    let m = Machine {
        domain: inst.domain(),
        ram_mib: spec.ram_mib,
        cpus: spec.cpus,
        accel: host::choice().accel.resolve(),
        machine: spec
            .machine
            .clone()
            .unwrap_or_else(|| DEFAULT_MACHINE.into()),
        uefi,
        disk: inst.disk(&vm_state),
        disk_format: "qcow2".into(),
        seed,
        nic_model: spec.nic_model.clone().unwrap_or_else(|| "virtio".into()),
        forwards,
        console_log: inst.console_log(&vm_state),
        graphics: spec.graphics.clone(),
        video: spec.video.clone(),
    };
    let hv = backend(dirs)?;
    if hv.state(&m.domain)? != GuestState::Absent {
        return Err(bad_input(format!(
            "{} exists already: `ov vm start` it, or `ov vm destroy` it first",
            m.domain
        )));
    }
    hv.start(&m, Lifetime::Persistent)?;
    writeln!(
        out,
        "created {} (ssh -p {} {}@127.0.0.1)",
        m.domain, spec.ssh.port, spec.ssh.user
    )?;
    Ok(ExitCode::SUCCESS)
}
