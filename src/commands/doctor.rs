//! `ov doctor`: is this machine ready to build? Each check says what it
//! found and, when it is wrong, the command or setting that fixes it.

use ov_rules::engine::Engine;
use std::path::Path;

/// One finding.
pub struct Finding {
    /// What was checked.
    pub what: String,
    /// Passed?
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it failed.
    pub fix: Option<String>,
}

fn finding(what: &str, ok: bool, detail: String, fix: Option<String>) -> Finding {
    Finding {
        what: what.to_string(),
        ok,
        detail,
        fix: if ok { None } else { fix },
    }
}

/// Free bytes on the file system holding `dir` (through `df`, which every
/// machine has, rather than a libc binding for one number).
fn free_bytes(dir: &Path) -> Option<u64> {
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    let out = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(&probe)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The `key = value` settings podman needs on hosts like ours, checked in
/// containers.conf because the service only reads them at start.
fn containers_conf(text: &str) -> Vec<(&'static str, bool)> {
    let has = |needle: &str| {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").replace(' ', ""))
            .any(|l| l == needle)
    };
    vec![
        ("runtime = \"runc\"", has("runtime=\"runc\"")),
        ("default_ulimits = []", has("default_ulimits=[]")),
        (
            "cgroup_manager = \"cgroupfs\"",
            has("cgroup_manager=\"cgroupfs\""),
        ),
    ]
}

/// Runs every check.
pub async fn run(endpoint: &str, kind: &str, cache_dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let setup = "run `bash scripts/setup.sh` (installs podman, writes containers.conf, starts the API service)";
    let engine = Engine::connect(endpoint).await;
    match &engine {
        Ok(e) => {
            let id = e.identity().await;
            out.push(finding(
                "engine socket",
                true,
                match id {
                    Ok(i) => format!("{} {} (API {}) at {endpoint}", i.kind, i.version, i.api_version),
                    Err(err) => format!("answers at {endpoint} but `version` failed: {err}"),
                },
                None,
            ));
            if let Ok((runtime, driver, _)) = e.runtime_info().await {
                let ok = kind != "podman" || runtime == "runc";
                out.push(finding(
                    "engine runtime",
                    ok,
                    format!("default runtime `{runtime}`, storage driver `{driver}`"),
                    Some("set `runtime = \"runc\"` under [engine] in /etc/containers/containers.conf (crun fails on hybrid cgroups), then restart the service".into()),
                ));
            }
        }
        Err(err) => out.push(finding(
            "engine socket",
            false,
            err.to_string().lines().next().unwrap_or_default().to_string(),
            Some(format!("{setup}; or point ov elsewhere: `ov settings set engine.socket unix:///path/to.sock`")),
        )),
    }
    if kind == "podman" {
        let path = "/etc/containers/containers.conf";
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (setting, ok) in containers_conf(&text) {
            out.push(finding(
                "containers.conf",
                ok,
                format!("{setting} {}", if ok { "is set" } else { "is missing" }),
                Some(format!(
                    "add `{setting}` to {path} and restart the API service, or {setup}"
                )),
            ));
        }
    }
    match free_bytes(cache_dir) {
        Some(free) => out.push(finding(
            "disk space",
            free >= 5 << 30,
            format!("{:.1} GiB free for {}", free as f64 / (1u64 << 30) as f64, cache_dir.display()),
            Some(
                "free space, or shrink the store: `ov cache gc --max-size 2G`, `podman image prune`; or use another --cache-dir".to_string(),
            ),
        )),
        None => out.push(finding(
            "disk space",
            false,
            format!("could not measure free space for {}", cache_dir.display()),
            Some("check that `df` is installed".into()),
        )),
    }
    vm_findings(&mut out);
    out
}

/// What VM boots and disk builds need: qemu, KVM (or TCG), libvirtd's
/// socket when libvirt is the backend, OVMF, loop devices and FUSE.
fn vm_findings(out: &mut Vec<Finding>) {
    use ov_rules::rule::boot::{host, hypervisor::BackendKind, libvirt, spec::Firmware};
    let setup = "run `bash scripts/setup-vm.sh`";
    let qemu = std::process::Command::new(ov_rules::rule::boot::qemu::QEMU)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        });
    out.push(finding(
        "qemu",
        qemu.is_some(),
        qemu.clone()
            .unwrap_or_else(|| "qemu-system-x86_64 not found".into()),
        Some(format!("{setup} (installs qemu-system-x86 and qemu-utils)")),
    ));
    if qemu.is_some() {
        // Either answer works: TCG is slower, not broken.
        let kvm = host::kvm_works();
        out.push(finding(
            "kvm",
            true,
            if kvm {
                "a KVM guest runs: boots use KVM".into()
            } else {
                "no usable KVM (absent, or guests fail under it): boots use TCG".into()
            },
            None,
        ));
    }
    let backend = host::choice().backend;
    let sock = std::path::Path::new(libvirt::SOCKET).exists();
    let helper = libvirt::helper_path().filter(|p| p.is_file());
    let mut said = if sock {
        format!("libvirtd socket at {}", libvirt::SOCKET)
    } else {
        format!(
            "no libvirtd socket at {} (backend: {})",
            libvirt::SOCKET,
            backend.name()
        )
    };
    match &helper {
        Some(h) => said.push_str(&format!("; helper {}", h.display())),
        None => said.push_str(&format!("; no `{}` beside ov", libvirt::HELPER)),
    }
    out.push(finding(
        "libvirt",
        (sock && helper.is_some()) || backend == BackendKind::Qemu,
        said,
        Some(format!(
            "{setup} (starts `libvirtd -d`) and install `{}` with ov, or boot without \
             libvirt: `ov settings set vm.backend qemu`",
            libvirt::HELPER
        )),
    ));
    let ovmf = host::ovmf(Firmware::UefiInsecure);
    out.push(finding(
        "ovmf",
        matches!(ovmf, Ok(Some(_))),
        match &ovmf {
            Ok(Some(o)) => format!("{} and {}", o.code.display(), o.vars.display()),
            Ok(None) => String::new(),
            Err(e) => e.clone(),
        },
        Some(format!("{setup} (installs ovmf)")),
    ));
    for (what, dev, why) in [
        (
            "loop devices",
            "/dev/loop-control",
            "disk builds partition a loop device",
        ),
        (
            "fuse",
            "/dev/fuse",
            "disk builds write the ESP through FUSE (no vfat in some kernels)",
        ),
    ] {
        let ok = std::path::Path::new(dev).exists();
        out.push(finding(
            what,
            ok,
            format!("{dev} {}", if ok { "present" } else { "missing" }),
            Some(format!("{why}: load the module (`modprobe loop` / `modprobe fuse`) or run on a host that has it")),
        ));
    }
}

/// `ov doctor`: prints each finding and its fix; exits 1 when one needs
/// fixing.
pub fn print(
    dirs: &crate::workspace::Dirs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<std::process::ExitCode> {
    let settings = super::load_settings()?;
    let endpoint = super::engine_endpoint(&settings)?;
    let kind = settings.get("engine.kind")?;
    super::configure_vm_host(&settings)?;
    let rt = tokio::runtime::Runtime::new()?;
    let findings = rt.block_on(run(&endpoint, &kind, &dirs.cache));
    let mut bad = 0;
    for f in &findings {
        let line = format!(
            "{} {}: {}",
            if f.ok { "ok  " } else { "FAIL" },
            f.what,
            f.detail
        );
        writeln!(out, "{}", ov_cache::redact(&line))?;
        if let Some(fix) = &f.fix {
            bad += 1;
            writeln!(out, "     fix: {}", ov_cache::redact(fix))?;
        }
    }
    Ok(if bad > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_conf_settings_are_found_despite_spacing_and_comments() {
        let text = "[containers]\ndefault_ulimits = [ ]\n[engine]\n#runtime = \"crun\"\nruntime=\"runc\"\n";
        let found = containers_conf(text);
        assert!(found[0].1);
        assert!(found[1].1);
        assert!(!found[2].1);
    }

    #[test]
    fn free_space_is_measured_for_a_dir_that_does_not_exist_yet() {
        assert!(free_bytes(Path::new("/tmp/ov-doctor-missing/a/b")).is_some());
    }
}
