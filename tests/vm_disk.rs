//! VM disks: `examples/vm` (a bootstrap VM: debootstrap rootfs, GPT with an
//! ESP and an ext4 root, grub-efi) built from nothing into a qcow2 that is
//! checked without mounting it; what each edit reruns; bad disk fields;
//! a rootfs with no kernel or too big for its disk; Ctrl-C and `kill -9`
//! mid-disk leaving no loop device, mount or sparse file; the peak memory
//! of a 20 GiB disk build.
//!
//! The rootfs and disk are built once per test binary into one cache dir
//! ([`shared_vm`]); every test that needs them (the boot tests too) shares
//! it through `OV_CACHE_DIR`, so the cold cost is paid once.

use crate::build::{build, Built};
use crate::util::{Ov, Project};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a build of examples/vm may take (the cold one runs debootstrap
/// and a kernel's package install).
const VM_TIMEOUT: Duration = Duration::from_secs(1500);

fn example_vm() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/vm")).to_path_buf()
}

/// examples/vm built up to its disk, once per test binary.
pub struct SharedVm {
    /// The project (a copy of examples/vm).
    pub project: Project,
    /// The cache dir holding its built nodes.
    pub cache: PathBuf,
    /// The cold build's events.
    pub cold: Built,
    /// The remote cache (on the nginx server of
    /// `scripts/setup-cache-server.sh`) the cold build uploaded to.
    /// Static, so never dropped: the last test to use it deletes it.
    pub remote: crate::remote::NginxPrefix,
    /// `OV_STATE_DIR`: the VM's instance dir, with its generated SSH key,
    /// stays the same across the tests' runs, so the seed's key does too.
    pub state: PathBuf,
    /// Serialises the tests that build in this cache dir.
    lock: Mutex<()>,
}

impl SharedVm {
    /// `ov` on `project` with this cache dir.
    pub fn ov_on(&self, project: &Path) -> Ov {
        Ov::new(project)
            .without_cache_flag()
            .env("OV_CACHE_DIR", &self.cache)
            .env("OV_STATE_DIR", &self.state)
            .with_timeout(VM_TIMEOUT)
    }

    /// `ov` on the shared project.
    pub fn ov(&self) -> Ov {
        self.ov_on(self.project.path())
    }

    /// Exclusive use of the cache dir for a build.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk file the last build of `disk:vm` recorded, placed in `dir`.
    pub fn disk_file(&self, dir: &Path) -> (PathBuf, serde_json::Value) {
        let store = ov_cache::Store::open(&self.cache.join("store")).unwrap();
        let (_, result) = store.last("disk:vm").unwrap().expect("disk:vm recorded");
        let blob = result
            .blobs
            .iter()
            .find(|b| b.name == "disk")
            .expect("a blob named disk");
        let dest = dir.join("disk.qcow2");
        store.blob_to_file(&blob.digest, &dest).unwrap();
        (dest, result.meta)
    }
}

/// The shared examples/vm build (cold, from an empty cache dir).
pub fn shared_vm() -> &'static SharedVm {
    static VM: OnceLock<SharedVm> = OnceLock::new();
    VM.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-cache");
        // OV_TEST_VM_WARM=1 reuses the last run's cache dir (for working on
        // these tests); otherwise the build starts from nothing.
        if std::env::var_os("OV_TEST_VM_WARM").is_none() {
            let _ = std::fs::remove_dir_all(&cache);
        }
        std::fs::create_dir_all(&cache).unwrap();
        let project = Project::copy_of(&example_vm());
        // A warm cache dir uploads nothing new: it keeps one remote too.
        let remote = if std::env::var_os("OV_TEST_VM_WARM").is_some() {
            crate::remote::nginx_base("vm-warm", false)
        } else {
            crate::remote::nginx_base("vm", true)
        };
        let mut vm = SharedVm {
            project,
            state: cache.join("state"),
            cache,
            remote,
            cold: Built {
                code: None,
                events: Vec::new(),
                stderr: String::new(),
            },
            lock: Mutex::new(()),
        };
        vm.cold = build(&vm.ov(), &["disk:vm", "--remote-cache", &vm.remote]);
        assert_eq!(
            vm.cold.code,
            Some(0),
            "examples/vm disk build failed:\n{}",
            vm.cold.report()
        );
        vm
    })
}

/// `cmd`'s stdout; the test fails when it fails.
fn sh(cmd: &str) -> String {
    let out = Command::new("bash").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Loop devices whose backing file a disk build set up (the kernel names
/// it by the container's path: `/disk.raw` in the bind-mounted scratch).
fn disk_loops() -> Vec<String> {
    sh("losetup -a")
        .lines()
        .filter(|l| l.contains("disk.raw"))
        .map(str::to_string)
        .collect()
}

/// Mounts on the host of a loop device or of anything under `dir`.
fn leftover_mounts(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("/dev/loop") || l.contains(&*dir.to_string_lossy()))
        .map(str::to_string)
        .collect()
}

/// Files named `disk.raw` under `dir`.
fn raw_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "disk.raw"))
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The error of the node that failed in `b`.
fn failure(b: &Built) -> String {
    assert_ne!(b.code, Some(0), "the build passed");
    b.events
        .iter()
        .find(|e| e["event"] == "fail")
        .map(|e| e["error"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no fail event; stderr:\n{}", b.stderr))
}

/// Asserts a disk build left nothing behind in `cache`.
fn assert_clean(cache: &Path, after: &str) {
    // The kernel finishes a lazy detach when the container's mounts go.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !disk_loops().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        disk_loops(),
        Vec::<String>::new(),
        "loop devices after {after}"
    );
    assert_eq!(
        leftover_mounts(cache),
        Vec::<String>::new(),
        "mounts after {after}"
    );
    assert_eq!(
        raw_files(cache),
        Vec::<PathBuf>::new(),
        "sparse files after {after}"
    );
}

/// Starts `ov build disk:vm` and returns once its disk script has its loop
/// device (the disk step is under way).
fn spawn_until_disk_attached(ov: &Ov) -> Child {
    let mut child = ov
        .command(&["build", "--progress", "json", "disk:vm"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while disk_loops().is_empty() {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("ov exited ({s}) before the disk step attached a loop device");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the disk step never attached a loop device"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Into the partitioning and unpacking.
    std::thread::sleep(Duration::from_secs(2));
    child
}

fn wait(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "ov did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bootstrap_vm_builds_a_uefi_disk_from_nothing_and_rebuilds_as_nothing() {
    let vm = shared_vm();
    let _g = vm.lock();
    let built = vm.cold.nodes("built");
    for n in ["image:vm-builder", "bootstrap:vm/vm", "disk:vm"] {
        assert!(built.contains(&n.to_string()), "{n} not built: {built:?}");
    }
    // The disk's output digest is its CAS digest: the file is hashed once.
    let store = ov_cache::Store::open(&vm.cache.join("store")).unwrap();
    let (_, result) = store.last("disk:vm").unwrap().expect("disk:vm recorded");
    let blob = result.blobs.iter().find(|b| b.name == "disk").unwrap();
    assert_eq!(result.output, format!("sha256:{}", blob.digest));
    let dir = tempfile::tempdir().unwrap();
    let (disk, meta) = vm.disk_file(dir.path());
    assert_eq!(meta["format"], "qcow2");
    assert_eq!(meta["virtual_size"], 4u64 << 30);
    let info: serde_json::Value = serde_json::from_str(&sh(&format!(
        "qemu-img info --output=json {}",
        disk.display()
    )))
    .unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 4u64 << 30);
    // The partition table and file systems, read from a raw copy: nothing
    // is mounted and no loop device is used.
    let raw = dir.path().join("disk.raw");
    sh(&format!(
        "qemu-img convert -O raw {} {}",
        disk.display(),
        raw.display()
    ));
    let table: serde_json::Value =
        serde_json::from_str(&sh(&format!("sfdisk -J {}", raw.display()))).unwrap();
    let pt = &table["partitiontable"];
    assert_eq!(pt["label"], "gpt");
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{pt}");
    let sector = pt["sectorsize"].as_u64().unwrap_or(512);
    // The ESP: EFI System type, 1 MiB to 512 MiB.
    assert_eq!(
        parts[0]["type"].as_str().unwrap().to_uppercase(),
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!(parts[0]["start"].as_u64().unwrap() * sector, 1 << 20);
    assert_eq!(parts[1]["start"].as_u64().unwrap() * sector, 512 << 20);
    let esp = parts[0]["start"].as_u64().unwrap() * sector;
    let root = parts[1]["start"].as_u64().unwrap() * sector;
    let efi = sh(&format!("mdir -b -i {}@@{esp} ::/EFI/BOOT", raw.display()));
    assert!(efi.to_uppercase().contains("BOOTX64.EFI"), "{efi}");
    let fs = format!("{}?offset={root}", raw.display());
    let boot = sh(&format!("debugfs -R 'ls -l /boot' '{fs}' 2>/dev/null"));
    assert!(boot.contains("vmlinuz-"), "no kernel in /boot:\n{boot}");
    assert!(
        boot.contains("initrd.img-"),
        "no initramfs in /boot:\n{boot}"
    );
    let grub = sh(&format!(
        "debugfs -R 'cat /boot/grub/grub.cfg' '{fs}' 2>/dev/null"
    ));
    assert!(
        grub.contains("root=UUID="),
        "grub.cfg boots by UUID:\n{grub}"
    );
    assert!(
        !grub.contains("/dev/loop"),
        "grub.cfg names the build's loop device"
    );
    assert!(grub.contains("console=ttyS0"), "kernel_args reach grub.cfg");
    let cat = |p: &str| sh(&format!("debugfs -R 'cat {p}' '{fs}' 2>/dev/null"));
    assert_eq!(cat("/etc/hostname").trim(), "vm");
    assert!(cat("/etc/fstab").contains("/boot/efi"));
    assert!(
        cat("/etc/motd").contains("ov example vm"),
        "the layer's motd"
    );
    // The second build runs nothing.
    let again = build(&vm.ov(), &["disk:vm"]);
    assert_eq!(again.code, Some(0), "{}", again.report());
    assert_eq!(again.nodes("built"), Vec::<String>::new());
    assert_clean(&vm.cache, "a good build");
}

/// The ids whose keys differ between two graphs.
fn changed(a: &crate::util::Graph, b: &crate::util::Graph) -> Vec<String> {
    let (ka, kb) = (a.keys(), b.keys());
    let mut out: Vec<String> = ka
        .iter()
        .filter(|(id, k)| kb.get(*id) != Some(k))
        .map(|(id, _)| id.clone())
        .collect();
    out.sort();
    out
}

#[test]
fn each_edit_reruns_only_what_reads_it() {
    let p = Project::copy_of(&example_vm());
    let ov = Ov::new(p.path());
    let before = ov.graph(&[]);
    assert!(before.has_edge("bootstrap:vm/vm", "disk:vm"));
    assert!(before.has_edge("image:vm-builder", "bootstrap:vm/vm"));
    assert!(before.has_edge("image:vm-builder", "disk:vm"));
    assert!(before.has_edge("disk:vm", "boot:vm"));

    // A file of the builder's layer: the builder image, the rootfs made in
    // it, the disk, the boot; not the seed.
    p.write("layers/vm-builder/guest-motd", "Edited.\n");
    let g = ov.graph(&[]);
    assert_eq!(
        changed(&before, &g),
        [
            "boot:vm",
            "bootstrap:vm/vm",
            "disk:vm",
            "eval:vm-builder",
            "image:vm-builder",
            "layer:vm-builder@vm-builder",
            "source:layers/vm-builder",
        ]
    );
    p.write(
        "layers/vm-builder/guest-motd",
        "Welcome to the ov example vm.\n",
    );
    assert_eq!(changed(&before, &ov.graph(&[])), Vec::<String>::new());

    // Only the disk's size: the disk and the boot.
    p.edit("vm.yml", "disk_size: 4G", "disk_size: 5G");
    assert_eq!(changed(&before, &ov.graph(&[])), ["boot:vm", "disk:vm"]);
    p.edit("vm.yml", "disk_size: 5G", "disk_size: 4G");

    // Only the RAM: the boot.
    p.edit("vm.yml", "ram: 2G", "ram: 3G");
    assert_eq!(changed(&before, &ov.graph(&[])), ["boot:vm"]);
    p.edit("vm.yml", "ram: 3G", "ram: 2G");

    // Only the kernel's arguments: the disk (they go into grub.cfg).
    p.edit(
        "vm.yml",
        "kernel_args: console=ttyS0",
        "kernel_args: console=ttyS0 quiet",
    );
    assert_eq!(changed(&before, &ov.graph(&[])), ["boot:vm", "disk:vm"]);
    p.edit(
        "vm.yml",
        "kernel_args: console=ttyS0 quiet",
        "kernel_args: console=ttyS0",
    );

    // A bootloader template the disk step runs: the disk, not the rootfs.
    p.edit("build.yml", "GRUB_TIMEOUT=0", "GRUB_TIMEOUT=1");
    assert_eq!(changed(&before, &ov.graph(&[])), ["boot:vm", "disk:vm"]);
    p.edit("build.yml", "GRUB_TIMEOUT=1", "GRUB_TIMEOUT=0");

    // The guest's packages: the rootfs and what follows it.
    p.edit(
        "vm.yml",
        "package: [cloud-init]",
        "package: [cloud-init, less]",
    );
    assert_eq!(
        changed(&before, &ov.graph(&[])),
        ["boot:vm", "bootstrap:vm/vm", "disk:vm"]
    );
}

#[test]
fn bad_disk_fields_are_load_errors_at_their_line() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "disk_size: 4G",
            "disk_size: 4Q",
            &["vm.yml:", "`disk_size`", "`4Q` is not a size"],
        ),
        (
            "disk_size: 4G",
            "disk_size: 0G",
            &["vm.yml:", "`disk_size`", "zero bytes"],
        ),
        (
            "rootfs: ext4",
            "rootfs: ext3",
            &[
                "vm.yml:",
                "`source.rootfs` `ext3` is not one of ext4, xfs, btrfs",
            ],
        ),
        (
            "kernel_args: console=ttyS0",
            "kernel_args: 'console=ttyS0 $(reboot)'",
            &["vm.yml:", "`source.kernel_args`"],
        ),
        (
            "rootfs: ext4",
            "rootfs: ext4\n            disk_format: vmdk",
            &[
                "vm.yml:",
                "`source.disk_format` `vmdk` is not one of qcow2, raw",
            ],
        ),
        (
            "user: debian",
            "user: 'Deb Ian'",
            &["vm.yml:", "`ssh.user`"],
        ),
    ];
    for (from, to, want) in cases {
        let p = Project::copy_of(&example_vm());
        p.edit("vm.yml", from, to);
        let ov = Ov::new(p.path());
        let r = ov.bad(&["graph"]);
        r.stderr_has(want);
        // file:line:col, not just the file.
        let line = r
            .stderr
            .lines()
            .find(|l| l.contains("vm.yml:"))
            .unwrap_or_default()
            .to_string();
        let after = line.split("vm.yml:").nth(1).unwrap_or_default();
        let mut nums = after.split(':');
        assert!(
            nums.next().is_some_and(|n| n.parse::<u32>().is_ok())
                && nums.next().is_some_and(|n| n.parse::<u32>().is_ok()),
            "no line:col in {line:?}"
        );
    }
}

#[test]
fn a_disk_smaller_than_the_rootfs_is_refused_before_it_runs() {
    let vm = shared_vm();
    let _g = vm.lock();
    let p = Project::copy_of(vm.project.path());
    p.edit("vm.yml", "disk_size: 4G", "disk_size: 600M");
    let b = build(&vm.ov_on(p.path()), &["disk:vm"]);
    let e = failure(&b);
    assert!(
        e.contains("vm `vm`: disk_size 600 MiB is smaller than the rootfs bootstrap:vm/vm made"),
        "{e}"
    );
    assert_eq!(
        b.nodes("built"),
        Vec::<String>::new(),
        "the rootfs was cached"
    );
    assert_clean(&vm.cache, "a refused disk");
}

#[test]
fn a_rootfs_image_gone_from_the_engine_is_imported_again_once_not_every_build() {
    let vm = shared_vm();
    let _g = vm.lock();
    let (key, _) = recorded(&vm.cache, "bootstrap:vm/vm", "rootfs");
    let tag = format!("localhost/ov-node:{key}");
    let store = ov_cache::Store::open(&vm.cache.join("store")).unwrap();
    let recorded_image = || match store.get_action(&key).unwrap() {
        ov_cache::Lookup::Hit(r) => {
            let id = r.meta["image"].as_str().unwrap();
            id.trim_start_matches("sha256:").to_string()
        }
        other => panic!("bootstrap:vm/vm is not a hit: {other:?}"),
    };
    // Gone: the image recorded and whatever holds the node tag.
    sh(&format!(
        "podman rmi -f {tag} {} 2>&1 || true",
        recorded_image()
    ));
    let image_of = || {
        crate::util::podman(&["image", "inspect", "--format", "{{.Id}}", &tag])
            .trim()
            .to_string()
    };
    let again = build(&vm.ov(), &["bootstrap:vm/vm"]);
    assert_eq!(again.code, Some(0), "{}", again.report());
    assert!(again
        .nodes("cached")
        .contains(&"bootstrap:vm/vm".to_string()));
    assert_eq!(again.count("engine_builds"), 1, "the rootfs is imported");
    let imported = image_of();
    // The import's new image id was recorded: the next build finds it,
    // where it used to import the gigabyte again (and leave the last
    // import untagged) on every build.
    let then = build(&vm.ov(), &["bootstrap:vm/vm"]);
    assert_eq!(then.count("engine_builds"), 0, "{:?}", then.events);
    assert_eq!(image_of(), imported);

    // Another cache dir imports the same rootfs: a new id under the node
    // tag, and the one recorded here gone. It is taken as it is, not
    // imported again (which would leave the other's untagged).
    assert_eq!(recorded_image(), imported);
    let (_, rootfs) = recorded(&vm.cache, "bootstrap:vm/vm", "rootfs");
    let blob = store.content_path(&rootfs);
    crate::util::podman(&["import", blob.to_str().unwrap(), &tag]);
    crate::util::podman(&["rmi", &imported]);
    let other = image_of();
    assert_ne!(other, imported);
    for _ in 0..2 {
        let b = build(&vm.ov(), &["bootstrap:vm/vm"]);
        assert_eq!(b.code, Some(0), "{}", b.report());
        assert_eq!(b.count("engine_builds"), 0, "{:?}", b.events);
        assert_eq!(image_of(), other);
        assert_eq!(recorded_image(), other);
    }
}

#[test]
fn a_rootfs_without_a_kernel_is_a_clear_error() {
    let vm = shared_vm();
    let _g = vm.lock();
    let p = Project::copy_of(vm.project.path());
    // A builder that makes a rootfs with no kernel in it.
    p.append(
        "build.yml",
        "    tiny:\n        kind: bootstrap\n        privileged: true\n        \
         output_artifact: /out/rootfs.tar\n        phase:\n            install:\n                \
         container: |\n                    mkdir -p /out /target/etc /target/boot\n                    \
         tar -C /target -cf /out/rootfs.tar .\n",
    );
    p.edit("vm.yml", "builder: debootstrap-vm", "builder: tiny");
    let b = build(&vm.ov_on(p.path()), &["disk:vm"]);
    let e = failure(&b);
    assert!(
        e.contains("vm `vm`: the rootfs bootstrap:vm/vm made has no kernel: no /boot/vmlinuz*"),
        "{e}"
    );
    assert_clean(&vm.cache, "a rootfs with no kernel");
}

/// Ctrl-C in the disk step, then `kill -9` in it and the next build: no
/// loop device, mount or sparse file is left either time; the next build
/// makes the 20 GiB disk with ov's peak RSS under 100 MB.
#[test]
fn interrupted_disk_builds_leave_nothing_and_a_20g_disk_builds_in_little_memory() {
    let vm = shared_vm();
    let _g = vm.lock();
    let p = Project::copy_of(vm.project.path());
    p.edit("vm.yml", "disk_size: 4G", "disk_size: 20G");
    let ov = vm.ov_on(p.path());

    let mut child = spawn_until_disk_attached(&ov);
    sh(&format!("kill -INT {}", child.id()));
    let status = wait(&mut child, 60);
    assert_eq!(status.code(), Some(130));
    assert_clean(&vm.cache, "Ctrl-C");

    let mut child = spawn_until_disk_attached(&ov);
    child.kill().unwrap();
    wait(&mut child, 10);
    // The dead run's container still runs the script; the next build
    // removes it and what it held. It names the cache dir relatively, as
    // `--cache-dir cache` does: what reaches the container must still be
    // an absolute path (a relative one was taken for a volume's name).
    let relative = vm
        .ov_on(p.path())
        .in_dir(vm.cache.parent().unwrap())
        .env("OV_CACHE_DIR", vm.cache.file_name().unwrap());
    let kib = relative.peak_rss_kib(&["build", "--progress", "json", "disk:vm"]);
    assert_clean(&vm.cache, "kill -9 and the next build");
    assert!(kib < 100 * 1024, "peak RSS {kib} KiB");
    let store = ov_cache::Store::open(&vm.cache.join("store")).unwrap();
    let (_, result) = store.last("disk:vm").unwrap().unwrap();
    assert_eq!(result.meta["virtual_size"], 20u64 << 30);
}

/// The blob `name` of the result `cache`'s store last recorded for `id`.
fn recorded(cache: &Path, id: &str, name: &str) -> (ov_cache::NodeKey, ov_cache::BlobDigest) {
    let store = ov_cache::Store::open(&cache.join("store")).unwrap();
    let (key, result) = store
        .last(id)
        .unwrap()
        .unwrap_or_else(|| panic!("{id} is not recorded in {}", cache.display()));
    let blob = result
        .blobs
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("{id} has no blob {name}"));
    (key, blob.digest)
}

/// libvirt's domains, running or not.
fn domains() -> String {
    sh("virsh -c qemu:///system list --all --name")
}

/// examples/vm end to end: its disk boots under TCG through libvirt until
/// SSH answers with the generated key, the deploy-scope checks pass over
/// SSH, and the VM powers off cleanly; the report is what is cached, so a
/// second build boots nothing. Then a second machine (a fresh cache dir,
/// the same SSH key, a read-only remote cache that the cold build and this
/// boot uploaded to) gets the disk and the boot report without building
/// or booting anything.
#[test]
fn the_example_vm_boots_to_ssh_passes_its_checks_once_and_another_machine_restores_it() {
    let vm = shared_vm();
    let _g = vm.lock();
    let ov = vm.ov();
    let booted = build(&ov, &["boot:vm", "--remote-cache", &vm.remote]);
    assert_eq!(booted.code, Some(0), "{}", booted.report());
    // The seed too, unless `ov vm create`'s test made it first.
    let built = booted.nodes("built");
    assert!(
        built == ["boot:vm", "seed:vm"] || built == ["boot:vm"],
        "{built:?}"
    );
    let store = ov_cache::Store::open(&vm.cache.join("store")).unwrap();
    let (_, report) = recorded(&vm.cache, "boot:vm", "report");
    let report: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&report).unwrap()).unwrap();
    assert_eq!(report["ready_by"], "ssh", "{report:#}");
    assert_eq!(report["stopped"], "clean", "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["motd", "sshd"]);
    assert!(checks.iter().all(|c| c["ok"] == true), "{report:#}");
    assert!(!domains().contains("ov-vm"), "a domain was left");

    let again = build(&ov, &["boot:vm"]);
    assert_eq!(again.code, Some(0), "{}", again.report());
    assert_eq!(again.nodes("built"), Vec::<String>::new());

    let b = Ov::new(vm.project.path())
        .env("OV_STATE_DIR", &vm.state)
        .with_timeout(VM_TIMEOUT);
    let restored = build(
        &b,
        &[
            "boot:vm",
            "--remote-cache",
            &vm.remote,
            "--remote-cache-mode",
            "read",
        ],
    );
    assert_eq!(restored.code, Some(0), "{}", restored.report());
    // Nothing is booted or built, but for the seed when `ov vm create`'s
    // test made it before this boot (create uploads nothing, and a local
    // hit is not uploaded): a seed is cheap and its bytes do not vary, so
    // B's seed has A's output and the boot above it still restores.
    let built = restored.nodes("built");
    assert!(built.is_empty() || built == ["seed:vm"], "{built:?}");
    assert_eq!(restored.count("engine_builds"), 0);
    assert!(
        restored.count("cached_remote") >= 2,
        "{:?}",
        restored.summary()
    );
    assert!(restored.warnings().is_empty(), "{:?}", restored.warnings());
    // B has A's disk and A's report: A's store holds B's keys with the
    // same digests. (A's last disk:vm may be another test's, such as the
    // 20 GiB one, so B's keys are looked up rather than A's last ones.)
    let a_store = ov_cache::Store::open(&vm.cache.join("store")).unwrap();
    for (id, blob) in [("disk:vm", "disk"), ("boot:vm", "report")] {
        let (key, digest) = recorded(b.cache_dir(), id, blob);
        let ov_cache::Lookup::Hit(a) = a_store.get_action(&key).unwrap() else {
            panic!("A's store has no {id} under B's key {key:?}");
        };
        let a_digest = a.blobs.iter().find(|x| x.name == blob).map(|x| x.digest);
        assert_eq!(a_digest, Some(digest), "{id}");
    }
    // The last test to use the remote (the tests run in name order): its
    // two gigabytes need not outlive it.
    drop(b);
    vm.remote.delete();
}

/// Destroys an `ov vm create`d instance however its test ends.
struct Created<'a>(&'a Ov, &'a str);

impl Drop for Created<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["vm", "destroy", "vm", "-i", self.1, "--disk"]);
    }
}

/// `ov vm create` starts a long-lived VM on an overlay of the cached disk
/// (nothing is built again); it comes up with its cloud-init seed (the
/// runcmd's file is there) and answers `ov vm ssh` with the generated
/// key; `ov vm list` shows it, `stop --force` turns it off and `destroy
/// --disk` removes the domain and its state dir.
#[test]
fn ov_vm_create_runs_the_example_vm_until_it_is_stopped_and_destroyed() {
    let vm = shared_vm();
    let _g = vm.lock();
    let ov = vm.ov();
    let created = ov.ok(&["vm", "create", "vm", "-i", "t1", "--ram", "1536M"]);
    let _guard = Created(&ov, "t1");
    created.stdout_has(&["created ov-vm-t1"]);
    // The disk is the cached one (the seed is made if no build made it).
    assert!(
        created.stderr.contains("cached  disk:vm") && !created.stderr.contains("built   disk:vm"),
        "create rebuilt the disk:\n{}",
        created.stderr
    );
    let instance = vm.state.join("vm/ov-vm-t1");
    for f in ["disk.qcow2", "seed.iso", "OVMF_VARS.fd"] {
        assert!(
            instance.join(f).is_file(),
            "{f} is not in {}",
            instance.display()
        );
    }

    // Under TCG the guest takes a minute or two to answer ssh.
    let started = Instant::now();
    let marker = loop {
        let r = ov.run(&[
            "vm",
            "ssh",
            "vm",
            "-i",
            "t1",
            "--",
            "cat",
            "/run/ov-example-vm",
        ]);
        if r.code == Some(0) {
            break r.stdout;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "ov vm ssh never answered: {}\nconsole:\n{}",
            r.stderr,
            ov.run(&["vm", "console", "vm", "-i", "t1"]).stdout
        );
        std::thread::sleep(Duration::from_secs(5));
    };
    assert_eq!(marker.trim(), "ov-example-vm", "cloud-init's runcmd ran");
    ov.ok(&["vm", "list"]).stdout_has(&["ov-vm-t1\trunning"]);
    ov.ok(&["vm", "console", "vm", "-i", "t1"])
        .stdout_has(&["Linux version"]);

    ov.ok(&["vm", "stop", "vm", "-i", "t1", "--force"]);
    ov.ok(&["vm", "list"]).stdout_has(&["ov-vm-t1\tshut off"]);
    ov.ok(&["vm", "destroy", "vm", "-i", "t1", "--disk"])
        .stdout_has(&["destroyed ov-vm-t1"]);
    assert!(!ov.ok(&["vm", "list"]).stdout.contains("ov-vm-t1"));
    assert!(!instance.exists(), "{} is left", instance.display());
    assert!(!domains().contains("ov-vm-t1"));
}
