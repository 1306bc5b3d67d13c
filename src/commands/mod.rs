//! The commands of the `ov` binary, one function each, over the pipeline
//! that [`crate::workspace`] runs. `main` parses arguments and calls one of
//! these; they print to the writer they are given and return the exit code.
//! Bad input (exit 2) is an [`InvalidProject`] error, which `main` prints.

pub mod build;
pub mod cache;
pub mod doctor;
pub mod explain;
pub mod generate;
pub mod graph;
pub mod image;
pub mod lock;
pub mod settings;
pub mod vm;

use crate::diag::{Diagnostics, InvalidProject};
use crate::settings::{Settings, SettingsError};
use crate::workspace::{Dirs, Workspace};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// Prints warnings (or errors) to stderr, secrets masked.
pub fn print_diags(d: &Diagnostics) {
    let _ = std::io::stderr().write_all(diags_text(d).as_bytes());
}

/// What [`print_diags`] prints: one line per item, secrets masked.
pub fn diags_text(d: &Diagnostics) -> String {
    let mut text = String::new();
    for item in d.items() {
        let _ = writeln!(text, "{item}");
    }
    ov_cache::redact(&text)
}

/// An error that exits 2: a bad argument or setting, not a failed build.
pub fn bad_input(msg: String) -> anyhow::Error {
    let mut d = Diagnostics::default();
    d.error(None, msg);
    InvalidProject(d).into()
}

/// A cache dir that is a file, or lies under one, would fail deep in the
/// store with a bare "Not a directory"; it is a setting to fix, so the
/// message names the setting.
pub fn cache_dir_usable(dirs: &Dirs) -> anyhow::Result<()> {
    let not_dir = match std::fs::metadata(&dirs.cache) {
        Ok(meta) => !meta.is_dir(),
        Err(e) => e.kind() == std::io::ErrorKind::NotADirectory,
    };
    if not_dir {
        return Err(bad_input(format!(
            "the cache dir {} is not a directory (or lies under a file); point --cache-dir \
             (or OV_CACHE_DIR) at a folder",
            dirs.cache.display()
        )));
    }
    Ok(())
}

/// The user's settings; a file that is not JSON is bad input (exit 2).
pub fn load_settings() -> anyhow::Result<Settings> {
    Settings::load().map_err(|e| match e {
        SettingsError::Syntax { .. } | SettingsError::BadFileValue { .. } => {
            bad_input(e.to_string())
        }
        e => e.into(),
    })
}

/// The VM host choices in force (environment over settings), handed to the
/// boot rule for this process; returns the VM RAM budget in MiB.
pub fn configure_vm_host(settings: &Settings) -> anyhow::Result<u64> {
    use ov_rules::rule::boot::{host, hypervisor::BackendKind};
    let pick = |env: &str, key: &str| -> anyhow::Result<String> {
        Ok(match std::env::var(env) {
            Ok(v) if !v.is_empty() => v,
            _ => settings.get(key)?,
        })
    };
    let backend = pick("OV_VM_BACKEND", "vm.backend")?;
    let accel = pick("OV_VM_ACCEL", "vm.accel")?;
    let budget = pick("OV_VM_RAM_BUDGET", "vm.ram_budget")?;
    let choice = host::HostChoice {
        backend: BackendKind::parse(&backend).ok_or_else(|| {
            bad_input(format!(
                "OV_VM_BACKEND / vm.backend: `{backend}` is not libvirt or qemu"
            ))
        })?,
        accel: host::AccelChoice::parse(&accel).ok_or_else(|| {
            bad_input(format!(
                "OV_VM_ACCEL / vm.accel: `{accel}` is not auto, kvm or tcg"
            ))
        })?,
    };
    host::configure(choice);
    ov_rules::rule::boot::spec::parse_size(&budget)
        .map(|b| b >> 20)
        .ok_or_else(|| {
            bad_input(format!(
                "OV_VM_RAM_BUDGET / vm.ram_budget: `{budget}` is not a size such as 4G"
            ))
        })
}

/// The engine endpoint: `DOCKER_HOST`, else the `engine.socket` setting.
pub fn engine_endpoint(settings: &Settings) -> anyhow::Result<String> {
    let socket = settings.get("engine.socket")?;
    Ok(ov_rules::engine::Engine::endpoint(Some(&socket)))
}

/// The workspace with keys predicted from the store: what the next build
/// would find cached.
pub fn open_predicted(root: &Path, dirs: &Dirs) -> anyhow::Result<crate::plan::predict::Predicted> {
    let ws = Workspace::open_unkeyed(root, dirs)?;
    let _t = crate::diag::phase("predict");
    crate::plan::predict::predict(ws, dirs)
}

/// Writes a file the user named (`-o`, `--graph-out`) whole or not at all,
/// without replacing what the name stands for: a symbolic link keeps
/// pointing where it did and its target gets the text; a device or pipe
/// (`-o /dev/stdout`) is written through. Renaming a temp file over either
/// would swap the user's link, or the system's device node, for a file.
pub fn write_named_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Opened by its own name: the kernel follows the links, /proc's
    // (`/dev/stdout` → `/proc/self/fd/1` → a pipe) included.
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            f.write_all(bytes)?;
            f.flush()?;
        }
        _ => ov_cache::atomic_write(&link_target(path), bytes)?,
    }
    Ok(())
}

/// Where `path` leads through any symbolic links, existing or not (a link
/// may name a file yet to be written). Gives up after as many hops as the
/// kernel allows.
fn link_target(path: &Path) -> std::path::PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        let Some(next) = is_link.then(|| std::fs::read_link(&p).ok()).flatten() else {
            break;
        };
        p = match p.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    p
}
