//! `boot` nodes against the real hypervisors: the test guest that
//! `scripts/setup-vm.sh` builds (a Debian kernel and a busybox initramfs
//! on a disk that BIOS and UEFI both boot; `ready.img` prints a console
//! marker and powers off on the ACPI button, `silent.img` never does),
//! booted through libvirt and through qemu directly: ready on the marker,
//! a clean shutdown and the report; a guest that is never ready times
//! out, is destroyed and leaves nothing; libvirt not running is an error
//! naming the fix; a VM over the RAM budget is refused before anything
//! starts.

use ov_rules::rule::boot::host::{AccelChoice, HostChoice};
use ov_rules::rule::boot::hypervisor::{self, BackendKind, GuestState};
use ov_rules::rule::boot::spec::{BootSpec, Firmware, KeySource, Ready, SshAccess};
use ov_rules::rule::{BlobPlacer, EngineQuirks, ExecCtx, ExecError, NoEngine, NodeOutput};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The test guest's directory (scripts/setup-vm.sh, step 5).
fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("OV_SETUP_STATE_DIR")
        .map_or_else(|| PathBuf::from("/var/lib/ov-setup"), PathBuf::from)
        .join("guest");
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/setup-vm.sh` (scripts/setup.sh runs it)",
        p.display()
    );
    p
}

/// A store stand-in that places the guest disk for the `disk` dependency,
/// read-only as the store's hard links are.
struct Disk(PathBuf);

impl BlobPlacer for Disk {
    fn place(&self, _: &ov_cache::BlobDigest, dest: &Path, _: bool) -> std::io::Result<()> {
        std::fs::copy(&self.0, dest)?;
        let mut perm = std::fs::metadata(dest)?.permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(dest, perm)
    }
}

fn spec(vm: &str, firmware: Firmware, timeout_s: u64) -> BootSpec {
    BootSpec {
        vm: vm.into(),
        ram_mib: 256,
        cpus: 1,
        firmware,
        machine: None,
        disk_size: Some(64 << 20),
        nic_model: None,
        port_forwards: vec![],
        ssh: SshAccess {
            user: "root".into(),
            port: 2222,
            key: KeySource::None,
        },
        graphics: vec![],
        video: vec![],
        ready: Ready {
            console: Some("OV-GUEST-READY".into()),
            timeout_s,
        },
        checks: vec![],
        seed: false,
    }
}

fn boot(
    spec: &BootSpec,
    disk: &str,
    backend: BackendKind,
    vm_state: &Path,
) -> Result<(NodeOutput, String), ExecError> {
    let scratch = tempfile::tempdir().unwrap();
    let mut deps = HashMap::new();
    deps.insert(
        format!("disk:{}", spec.vm),
        NodeOutput {
            meta: json!({"format": "raw"}),
            stored: vec![("disk".into(), ov_cache::BlobDigest::from_bytes([3; 32]))],
            ..Default::default()
        },
    );
    let key = <ov_cache::NodeKey as ov_cache::Digest>::from_bytes([9; 32]);
    let cancel = CancellationToken::new();
    let lines = Mutex::new(String::new());
    let mut on_line = |l: &str| lines.lock().unwrap().push_str(l);
    let placer = Disk(guest(disk));
    let node_id = format!("boot:{}", spec.vm);
    let mut ctx = ExecCtx {
        engine: &NoEngine,
        node_id: &node_id,
        key: &key,
        deps: &deps,
        layer_dir: None,
        project_root: scratch.path(),
        scratch: scratch.path(),
        run_id: "1-1",
        cancel: &cancel,
        quirks: &EngineQuirks::default(),
        on_line: &mut on_line,
        blobs: &placer,
        vm_state,
        downloads: vm_state,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let choice = HostChoice {
        backend,
        accel: AccelChoice::Tcg,
    };
    let mut out = rt.block_on(ov_rules::rule::boot::execute_with(spec, &mut ctx, choice))?;
    // The files live in the scratch dir, gone with it: read them now.
    let report = std::fs::read_to_string(&out.files[0].1).unwrap();
    out.files.clear();
    Ok((out, report))
}

fn no_guest_left(backend: BackendKind, vm_state: &Path, domain: &str) {
    let hv = hypervisor::open(backend, vm_state).unwrap();
    assert_eq!(
        hv.state(domain).unwrap(),
        GuestState::Absent,
        "{domain} is left"
    );
    assert!(
        !vm_state.join(domain).join("owner").exists(),
        "the owner file of {domain} is left"
    );
}

#[test]
fn libvirt_boots_the_guest_under_uefi_until_its_marker_then_powers_it_off() {
    let state = tempfile::tempdir().unwrap();
    let s = spec("uefi-ready", Firmware::UefiInsecure, 120);
    let (out, report) = boot(&s, "ready.img", BackendKind::Libvirt, state.path()).unwrap();
    // The report, for the boot benchmark in BUILD.md (`--nocapture`).
    eprintln!("{report}");
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["backend"], "libvirt");
    assert_eq!(r["accel"], "tcg");
    assert_eq!(r["stopped"], "clean", "{report}");
    assert!(
        r["console_tail"]
            .as_str()
            .unwrap()
            .contains("OV-GUEST-READY"),
        "{report}"
    );
    assert!(r["ready_ms"].as_u64().unwrap() > 0);
    assert_eq!(out.meta["domain"], "ov-uefi-ready-build");
    // The instance's own NVRAM, copied from the template.
    assert!(state
        .path()
        .join("ov-uefi-ready-build/OVMF_VARS.fd")
        .is_file());
    no_guest_left(BackendKind::Libvirt, state.path(), "ov-uefi-ready-build");
}

#[test]
fn a_guest_that_is_never_ready_times_out_is_destroyed_and_shows_its_console() {
    let state = tempfile::tempdir().unwrap();
    let s = spec("silent", Firmware::Bios, 25);
    let e = boot(&s, "silent.img", BackendKind::Libvirt, state.path()).unwrap_err();
    let ExecError::Failed { message, output } = &e else {
        panic!("{e}")
    };
    assert!(message.contains("not ready within 25 s"), "{message}");
    assert!(message.contains("OV-GUEST-READY"), "{message}");
    // The console's tail: SYSLINUX's banner at least.
    assert!(output.contains("SYSLINUX"), "{output}");
    no_guest_left(BackendKind::Libvirt, state.path(), "ov-silent-build");
}

#[test]
fn the_qemu_backend_boots_bios_and_leaves_no_process() {
    let state = tempfile::tempdir().unwrap();
    let s = spec("direct", Firmware::Bios, 120);
    let (_, report) = boot(&s, "ready.img", BackendKind::Qemu, state.path()).unwrap();
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["backend"], "qemu");
    assert_eq!(r["stopped"], "clean", "{report}");
    no_guest_left(BackendKind::Qemu, state.path(), "ov-direct-build");
}

#[test]
fn libvirt_not_running_names_the_fix_and_the_qemu_backend() {
    // A URI whose socket does not exist: what a host without libvirtd sees.
    let e = ov_rules::rule::boot::libvirt::Libvirt::connect_to(
        "qemu:///system?socket=/nonexistent/libvirt-sock",
    )
    .err()
    .expect("no daemon there");
    let text = e.to_string();
    assert!(text.contains("libvirt is not running"), "{text}");
    assert!(text.contains("libvirtd -d"), "{text}");
    assert!(text.contains("OV_VM_BACKEND=qemu"), "{text}");
}

use crate::util::{Ov, Project};

#[test]
fn bad_boot_fields_are_refused_at_load_with_their_place_and_a_suggestion() {
    let p = Project::mini();
    p.write(
        "vm.yml",
        "vm:\n  app-vm:\n    source: {kind: bootc, image: app}\n    disk_size: 10G\n    \
         ram: 2 gigs\n    cpus: 2\n    firmware: uefi-insecur\n    machine: \"q35'/><x\"\n    \
         network:\n      port_forwards: [\"8080:80\", \"99999:1\"]\n    libvirt:\n      devices:\n        \
         graphics:\n          - {type: spice, listen: \"127.0.0.1'/>\"}\n",
    );
    let run = Ov::new(p.path()).bad(&["build", "app-vm"]);
    run.assert_code(2).stderr_has(&[
        "vm.yml:5:10: error: vm `app-vm`: ram: `2 gigs` is not a size",
        "vm.yml:7:15: error: vm `app-vm`: firmware: `uefi-insecur` is not one of bios, uefi-insecure, uefi-secure (did you mean `uefi-insecure`?)",
        "vm.yml:8:14: error: vm `app-vm`: machine: `q35'/><x` is not a plain name",
        "`99999:1` is not `HOST:GUEST`",
        "is not an IP address",
    ]);
}

#[test]
fn a_vm_over_the_ram_budget_is_refused_before_anything_starts() {
    let p = Project::mini();
    p.edit("vm.yml", "ram: 2G", "ram: 16G");
    let ov = Ov::new(p.path()).env("OV_VM_RAM_BUDGET", "4G");
    let run = ov.bad(&["build", "app-vm"]);
    run.assert_code(2).stderr_has(&[
        "boot:app-vm: the VM asks for 16384 MiB of RAM, more than the 4096 MiB VM budget",
        "vm.ram_budget",
    ]);
    // Nothing ran: no image of the project was built on the way.
    ov.assert_only_caches();
}

#[test]
fn the_next_build_destroys_the_guest_of_a_killed_one() {
    use ov_rules::rule::boot::hypervisor::Lifetime;
    use ov_rules::rule::boot::machine::{Accel, Machine};
    let state = tempfile::tempdir().unwrap();
    let domain = "ov-orphan-build";
    let dir = state.path().join(domain);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(guest("silent.img"))
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let m = Machine {
        domain: domain.into(),
        ram_mib: 128,
        cpus: 1,
        accel: Accel::Tcg,
        machine: "pc".into(),
        uefi: None,
        disk,
        disk_format: "qcow2".into(),
        seed: None,
        nic_model: "virtio".into(),
        forwards: vec![],
        console_log: dir.join("console.log"),
        graphics: vec![],
        video: vec![],
    };
    let hv = hypervisor::open(BackendKind::Libvirt, state.path()).unwrap();
    hv.start(&m, Lifetime::Transient).unwrap();
    // The ov that started it was killed: its pid names no process.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    std::fs::write(dir.join("owner"), format!("{dead} libvirt\n")).unwrap();
    // A guest whose ov lives is left alone.
    let live_dir = state.path().join("ov-live-build");
    std::fs::create_dir_all(&live_dir).unwrap();
    std::fs::write(
        live_dir.join("owner"),
        format!("{} libvirt\n", std::process::id()),
    )
    .unwrap();
    assert_eq!(hv.state(domain).unwrap(), GuestState::Running);
    let swept = ov_rules::rule::boot::sweep_dead(state.path());
    assert_eq!(swept, [domain]);
    assert_eq!(hv.state(domain).unwrap(), GuestState::Absent);
    assert!(live_dir.join("owner").exists());
    no_guest_left(BackendKind::Libvirt, state.path(), domain);
}

#[test]
fn a_name_shared_by_an_image_and_a_vm_builds_both() {
    let p = Project::mini();
    // The VM takes its image's name, as real projects name them.
    p.edit("vm.yml", "app-vm:", "app:");
    let ov = Ov::new(p.path());
    let run = ov.ok(&["build", "--dry-run", "app"]);
    run.stdout_has(&["image:app", "boot:app"]);
    // `ov build` says so before it runs anything.
    let run = ov.env("OV_VM_RAM_BUDGET", "1M").bad(&["build", "app"]);
    run.stderr_has(&["`app` names an image and a VM: building both (image:app and boot:app)"]);
}

#[test]
fn ov_vm_lists_its_guests_and_refuses_what_it_cannot_honour() {
    let p = Project::mini();
    let state = tempfile::tempdir().unwrap();
    let ov = Ov::new(p.path()).env("OV_STATE_DIR", state.path());
    // Only ov's own domains are listed (none of a fresh state dir's
    // build boots run now).
    let run = ov.ok(&["vm", "list"]);
    assert!(
        run.stdout.lines().all(|l| l.starts_with("ov-")),
        "{}",
        run.stdout
    );
    ov.bad(&["vm", "create", "app-vm", "-i", "build"])
        .assert_code(2)
        .stderr_has(&["`-i build` is the instance ov's builds boot"]);
    ov.bad(&["vm", "create", "app-vm", "-i", "../x"])
        .assert_code(2)
        .stderr_has(&["`../x` is not a valid VM or instance name"]);
    ov.bad(&["vm", "build", "app-vm", "--size", "5G"])
        .assert_code(2)
        .stderr_has(&["--size: write it in vm.yml"]);
    ov.bad(&["vm", "ssh", "no-such-vm"])
        .assert_code(2)
        .stderr_has(&["unknown VM `no-such-vm`"]);
}

#[test]
fn doctor_reports_what_boots_need() {
    let p = Project::mini();
    let run = Ov::new(p.path()).run(&["doctor"]);
    run.stdout_has(&[
        "ok   qemu: QEMU emulator version",
        "kvm: ",
        "ok   libvirt: libvirtd socket at /run/libvirt/libvirt-sock; helper ",
        "ok   ovmf: /usr/share/OVMF/OVMF_CODE_4M.fd",
        "loop devices: /dev/loop-control",
        "fuse: /dev/fuse",
    ]);
}

/// A private sshd on 127.0.0.1 that trusts one key: the ssh client and the
/// checks' probe protocol against a real server, as a guest runs them.
#[test]
fn checks_run_over_ssh_with_the_instance_key_and_the_wrong_key_is_refused() {
    use ov_rules::rule::boot::ssh::{free_port, GuestShell, Ssh};
    use ov_rules::rule::eval;
    let d = tempfile::tempdir().unwrap();
    let keygen = |name: &str| {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.path().join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    keygen("host");
    keygen("id_ed25519");
    keygen("other");
    std::fs::copy(d.path().join("id_ed25519.pub"), d.path().join("authorized")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port().unwrap();
    let cfg = d.path().join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {h}\nAuthorizedKeysFile {a}\n\
             PidFile {p}\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n",
            h = d.path().join("host").display(),
            a = d.path().join("authorized").display(),
            p = d.path().join("sshd.pid").display(),
        ),
    )
    .unwrap();
    let mut sshd = std::process::Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sshd (openssh-server, installed by scripts/setup-vm.sh)");
    let checks = eval::parse_checks(&eval::EvalSpec {
        checks: vec![
            json!({"id": "os", "file": "/etc/os-release", "contains": "ID="}),
            json!({"id": "echo", "command": "echo from-the-guest", "stdout": "from-the-guest"}),
            json!({"id": "absent", "file": "/no/such/file"}),
        ],
        distro: vec![],
        build: vec![],
        image_node: String::new(),
    })
    .unwrap();
    let ssh = |key: &str| Ssh {
        port,
        user: "root".into(),
        key: d.path().join(key),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ready, wrong, ran) = rt.block_on(async {
        let t = std::time::Duration::from_secs(20);
        // sshd takes a moment to listen.
        let mut ready = 255;
        for _ in 0..50 {
            ready = ssh("id_ed25519").run("true", t).await.rc;
            if ready == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let wrong = ssh("other").run("true", t).await;
        let ran = ssh("id_ed25519").run(&eval::script(&checks), t).await;
        (ready, wrong, ran)
    });
    let _ = sshd.kill();
    let _ = sshd.wait();
    assert_eq!(ready, 0, "the instance key is accepted");
    assert_eq!(wrong.rc, 255, "another key is refused: {wrong:?}");
    let v = eval::verdicts(&checks, &ran.stdout);
    assert!(v[0].ok && v[1].ok, "{v:?}");
    assert!(!v[2].ok && v[2].reason.contains("/no/such/file does not exist"));
}

#[test]
fn ov_itself_does_not_link_libvirt_and_says_how_to_get_its_helper() {
    // libvirt's client library brings ~50 shared libraries: only the
    // helper may link it, so `ov` starts (and runs the qemu backend) on
    // a host without libvirt.
    let needed = |bin: &str| {
        let out = std::process::Command::new("readelf")
            .args(["-d", bin])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let ov = needed(env!("CARGO_BIN_EXE_ov"));
    assert!(ov.contains("(NEEDED)"), "{ov}");
    assert!(!ov.contains("libvirt"), "ov links libvirt:\n{ov}");
    assert!(needed(env!("CARGO_BIN_EXE_ov-libvirt")).contains("libvirt.so"));

    let p = Project::mini();
    let run = Ov::new(p.path())
        .env("OV_LIBVIRT_HELPER", "/nonexistent/ov-libvirt")
        .run(&["vm", "list"]);
    run.assert_code(1).stderr_has(&[
        "libvirt's helper is missing (cannot run /nonexistent/ov-libvirt",
        "cargo install --path .",
        "OV_VM_BACKEND=qemu",
    ]);
    let doctor = Ov::new(p.path())
        .env("OV_LIBVIRT_HELPER", "/nonexistent/ov-libvirt")
        .run(&["doctor"]);
    doctor.stdout_has(&[
        "FAIL libvirt: libvirtd socket at /run/libvirt/libvirt-sock; no `ov-libvirt` beside ov",
    ]);
    // The helper found beside ov answers.
    Ov::new(p.path()).ok(&["vm", "list"]);
}

/// The helpers this process started and that still run: (pid, process group).
fn libvirt_helpers() -> Vec<(u32, u32)> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let Some((pid, comm)) = head.split_once(" (") else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        if comm == "ov-libvirt" && f[0] != "Z" && f[1] == me {
            out.push((pid.parse().unwrap(), f[2].parse().unwrap()));
        }
    }
    out
}

#[test]
fn the_libvirt_helper_outlives_a_ctrl_c_and_goes_with_its_connection() {
    use ov_rules::rule::boot::hypervisor::Hypervisor;
    let before = libvirt_helpers();
    let hv = ov_rules::rule::boot::libvirt::Libvirt::connect().unwrap();
    let started: Vec<(u32, u32)> = libvirt_helpers()
        .into_iter()
        .filter(|h| !before.contains(h))
        .collect();
    // Other tests may start helpers meanwhile; each is in its own group.
    assert!(!started.is_empty(), "no helper started");
    // Ctrl-C reaches a terminal's whole process group; the helper must
    // stay for the clean-up that follows it, so it has a group of its own.
    for (pid, group) in &started {
        assert_eq!(pid, group, "helper {pid} shares a process group");
    }
    assert_eq!(hv.state("ov-no-such-domain").unwrap(), GuestState::Absent);
    drop(hv);
    // Dropped, the connection's helper has exited and been reaped.
    let after = libvirt_helpers();
    assert!(
        started.iter().any(|h| !after.contains(h)),
        "the helper outlived its connection: {after:?}"
    );
}
