//! One boot, resolved: every path, port and choice a hypervisor needs,
//! and how each backend spells it (libvirt domain XML, a qemu argv).
//! Both renderings are pure functions of a [`Machine`], so what a build
//! sends can be tested without booting anything.

use super::spec::{Graphics, PortForward, Video};
use quick_xml::escape::escape;
use std::fmt::Write as _;
use std::path::PathBuf;

/// How guest code runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (`/dev/kvm` works).
    Kvm,
    /// qemu's emulator: slower, works everywhere.
    Tcg,
}

impl Accel {
    /// Its name in settings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The firmware files of a UEFI boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uefi {
    /// OVMF_CODE (read-only, shared).
    pub code: PathBuf,
    /// The OVMF_VARS template the NVRAM was copied from.
    pub vars_template: PathBuf,
    /// This instance's own NVRAM.
    pub nvram: PathBuf,
    /// Secure boot.
    pub secure: bool,
}

/// A boot, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The domain name (`ov-<vm>[-<instance>]`).
    pub domain: String,
    /// RAM in MiB.
    pub ram_mib: u64,
    /// Virtual CPUs.
    pub cpus: u32,
    /// KVM or TCG.
    pub accel: Accel,
    /// The machine type (`q35`, `pc`).
    pub machine: String,
    /// `None` for BIOS.
    pub uefi: Option<Uefi>,
    /// The disk the guest boots (the instance overlay).
    pub disk: PathBuf,
    /// Its format (`qcow2`).
    pub disk_format: String,
    /// The cloud-init seed, as a cdrom.
    pub seed: Option<PathBuf>,
    /// The NIC model (`virtio`).
    pub nic_model: String,
    /// Host → guest TCP forwards on 127.0.0.1, the ssh one first.
    pub forwards: Vec<PortForward>,
    /// Where the serial console goes.
    pub console_log: PathBuf,
    /// Graphics devices (none: headless).
    pub graphics: Vec<Graphics>,
    /// Video devices.
    pub video: Vec<Video>,
}

/// The machine type when vm.yml names none.
pub const DEFAULT_MACHINE: &str = "q35";

impl Machine {
    /// qemu's `-nic` model name for libvirt's model name.
    fn qemu_nic_model(&self) -> &str {
        match self.nic_model.as_str() {
            "virtio" => "virtio-net-pci",
            m => m,
        }
    }

    /// The user-networking NIC with its forwards, as qemu's `-nic` value.
    /// Forwards bind 127.0.0.1 only: a build's guest is nobody else's.
    pub fn nic_arg(&self) -> String {
        let mut s = format!("user,model={}", self.qemu_nic_model());
        for f in &self.forwards {
            let _ = write!(s, ",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest);
        }
        s
    }

    /// The user-networking backend with its forwards, as `-netdev`.
    pub fn netdev_arg(&self) -> String {
        let mut s = String::from("user,id=ovnet");
        for f in &self.forwards {
            let _ = write!(s, ",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest);
        }
        s
    }

    /// The machine argument (SMM on for secure boot, which needs it).
    fn machine_arg(&self) -> String {
        match &self.uefi {
            Some(u) if u.secure => format!("{},smm=on", self.machine),
            _ => self.machine.clone(),
        }
    }

    /// The cdrom's bus: q35 has no IDE.
    fn cdrom_bus(&self) -> &'static str {
        if self.machine.starts_with("pc") && !self.machine.contains("q35") {
            "ide"
        } else {
            "sata"
        }
    }
}

fn x(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s)
}

fn xp(p: &std::path::Path) -> String {
    escape(p.to_string_lossy().as_ref()).into_owned()
}

/// The libvirt domain XML of `m`, as ov renders domains: `<domain
/// type='qemu'>` under TCG (`kvm` only when KVM works), no host CPU
/// passthrough under TCG, ACPI (without it a guest's poweroff halts
/// instead of ending the domain), per-instance NVRAM, serial console to a
/// file, and user networking. libvirt's own `<portForward>` needs the
/// passt backend, so the user NIC and its forwards go to qemu as its own
/// `-nic` through `<qemu:commandline>`, exactly as the qemu backend
/// passes them. Every value from vm.yml is escaped.
pub fn domain_xml(m: &Machine) -> String {
    let mut s = String::new();
    let dtype = match m.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "qemu",
    };
    let _ = writeln!(
        s,
        "<domain type='{dtype}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
    );
    let _ = writeln!(s, "  <name>{}</name>", x(&m.domain));
    let _ = writeln!(s, "  <memory unit='MiB'>{}</memory>", m.ram_mib);
    let _ = writeln!(s, "  <vcpu>{}</vcpu>", m.cpus);
    s.push_str("  <os>\n");
    let _ = writeln!(
        s,
        "    <type arch='x86_64' machine='{}'>hvm</type>",
        x(&m.machine)
    );
    if let Some(u) = &m.uefi {
        let _ = writeln!(
            s,
            "    <loader readonly='yes' secure='{}' type='pflash'>{}</loader>",
            if u.secure { "yes" } else { "no" },
            xp(&u.code)
        );
        let _ = writeln!(
            s,
            "    <nvram template='{}'>{}</nvram>",
            xp(&u.vars_template),
            xp(&u.nvram)
        );
    }
    s.push_str("    <boot dev='hd'/>\n  </os>\n");
    s.push_str("  <features>\n    <acpi/>\n    <apic/>\n");
    if m.uefi.as_ref().is_some_and(|u| u.secure) {
        s.push_str("    <smm state='on'/>\n");
    }
    s.push_str("  </features>\n");
    if m.accel == Accel::Kvm {
        s.push_str("  <cpu mode='host-passthrough'/>\n");
    }
    s.push_str(
        "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  \
         <on_crash>destroy</on_crash>\n",
    );
    s.push_str("  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n");
    let _ = write!(
        s,
        "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}'/>\n      \
         <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
        x(&m.disk_format),
        xp(&m.disk)
    );
    if let Some(seed) = &m.seed {
        let _ = write!(
            s,
            "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      \
             <source file='{}'/>\n      <target dev='sdc' bus='{}'/>\n      <readonly/>\n    \
             </disk>\n",
            xp(seed),
            m.cdrom_bus()
        );
    }
    let _ = write!(
        s,
        "    <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    \
         </serial>\n    <console type='file'>\n      <source path='{}'/>\n      \
         <target type='serial' port='0'/>\n    </console>\n",
        xp(&m.console_log),
        xp(&m.console_log)
    );
    for g in &m.graphics {
        match &g.listen {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "    <graphics type='{}' autoport='yes' listen='{}'/>",
                    x(&g.kind),
                    x(l)
                );
            }
            None => {
                let _ = writeln!(s, "    <graphics type='{}' autoport='yes'/>", x(&g.kind));
            }
        }
    }
    for v in &m.video {
        let heads = v.heads.map(|h| format!(" heads='{h}'")).unwrap_or_default();
        let _ = writeln!(
            s,
            "    <video>\n      <model type='{}'{heads}/>\n    </video>",
            x(&v.model)
        );
    }
    s.push_str("    <memballoon model='none'/>\n  </devices>\n");
    // libvirt places its own devices from PCI slot 1 on; the NIC it does
    // not know about gets a fixed slot out of their way.
    let bus = if m.cdrom_bus() == "ide" {
        "pci.0"
    } else {
        "pcie.0"
    };
    let _ = write!(
        s,
        "  <qemu:commandline>\n    <qemu:arg value='-netdev'/>\n    <qemu:arg value='{}'/>\n    \
         <qemu:arg value='-device'/>\n    <qemu:arg value='{},netdev=ovnet,bus={bus},addr=0x10'/>\n  \
         </qemu:commandline>\n",
        x(&m.netdev_arg()),
        x(m.qemu_nic_model())
    );
    s.push_str("</domain>\n");
    s
}

/// Where the qemu backend keeps a running guest's handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuPaths {
    /// The human monitor's unix socket (`system_powerdown`, `quit`).
    pub monitor: PathBuf,
    /// qemu's pidfile.
    pub pidfile: PathBuf,
}

/// The `qemu-system-x86_64` arguments for `m`, as ov's qemu backend
/// renders them: the same machine, firmware, disks, NIC and console as the
/// domain XML, headless.
pub fn qemu_argv(m: &Machine, paths: &QemuPaths) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    push(&["-name", &format!("{},process={}", m.domain, m.domain)]);
    push(&["-machine", &m.machine_arg()]);
    push(&["-accel", m.accel.name()]);
    if m.accel == Accel::Kvm {
        push(&["-cpu", "host"]);
    }
    push(&["-m", &m.ram_mib.to_string(), "-smp", &m.cpus.to_string()]);
    if let Some(u) = &m.uefi {
        let secure = if u.secure { ",secure=on" } else { "" };
        push(&[
            "-drive",
            &format!(
                "if=pflash,format=raw,readonly=on,file={}{secure}",
                qemu_opt(&u.code)
            ),
            "-drive",
            &format!("if=pflash,format=raw,file={}", qemu_opt(&u.nvram)),
        ]);
    }
    push(&[
        "-drive",
        &format!(
            "file={},format={},if=virtio",
            qemu_opt(&m.disk),
            m.disk_format
        ),
    ]);
    if let Some(seed) = &m.seed {
        push(&[
            "-drive",
            &format!("file={},media=cdrom,readonly=on", qemu_opt(seed)),
        ]);
    }
    push(&["-nic", &m.nic_arg()]);
    push(&[
        "-serial",
        &format!("file:{}", m.console_log.to_string_lossy()),
    ]);
    push(&[
        "-monitor",
        &format!(
            "unix:{},server=on,wait=off",
            paths.monitor.to_string_lossy()
        ),
    ]);
    push(&["-pidfile", &paths.pidfile.to_string_lossy()]);
    push(&["-display", "none", "-no-user-config", "-nodefaults"]);
    for v in &m.video {
        if v.model != "none" {
            push(&["-vga", if v.model == "virtio" { "virtio" } else { "std" }]);
        }
    }
    a
}

/// A path inside a qemu `-drive` option list, where `,` separates options
/// and `,,` is a literal comma.
fn qemu_opt(p: &std::path::Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            domain: "ov-web-build".into(),
            ram_mib: 2048,
            cpus: 2,
            accel: Accel::Tcg,
            machine: "q35".into(),
            uefi: Some(Uefi {
                code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
                vars_template: "/usr/share/OVMF/OVMF_VARS_4M.fd".into(),
                nvram: "/s/ov-web-build/OVMF_VARS.fd".into(),
                secure: false,
            }),
            disk: "/s/ov-web-build/disk.qcow2".into(),
            disk_format: "qcow2".into(),
            seed: Some("/s/ov-web-build/seed.iso".into()),
            nic_model: "virtio".into(),
            forwards: vec![PortForward {
                host: 40022,
                guest: 22,
            }],
            console_log: "/s/ov-web-build/console.log".into(),
            graphics: vec![],
            video: vec![],
        }
    }

    #[test]
    fn tcg_domains_are_qemu_type_with_acpi_and_no_host_cpu() {
        let xml = domain_xml(&machine());
        assert!(xml.starts_with("<domain type='qemu'"), "{xml}");
        assert!(xml.contains("<acpi/>"));
        assert!(!xml.contains("host-passthrough"));
        assert!(xml.contains("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/s/ov-web-build/OVMF_VARS.fd</nvram>"));
        assert!(xml
            .contains("<serial type='file'>\n      <source path='/s/ov-web-build/console.log'/>"));
        assert!(xml.contains("hostfwd=tcp:127.0.0.1:40022-:22"));
        assert!(
            xml.contains("<target dev='sdc' bus='sata'/>"),
            "q35 has no IDE"
        );
        let kvm = domain_xml(&Machine {
            accel: Accel::Kvm,
            ..machine()
        });
        assert!(kvm.starts_with("<domain type='kvm'") && kvm.contains("host-passthrough"));
    }

    #[test]
    fn secure_boot_turns_smm_on_in_both_backends() {
        let mut m = machine();
        if let Some(u) = m.uefi.as_mut() {
            u.secure = true;
        }
        assert!(domain_xml(&m).contains("<smm state='on'/>"));
        assert!(domain_xml(&m).contains("secure='yes'"));
        let paths = QemuPaths {
            monitor: "/s/m.sock".into(),
            pidfile: "/s/q.pid".into(),
        };
        let argv = qemu_argv(&m, &paths);
        assert!(argv.windows(2).any(|w| w == ["-machine", "q35,smm=on"]));
        assert!(argv
            .iter()
            .any(|a| a.ends_with("OVMF_CODE_4M.fd,secure=on")));
    }

    #[test]
    fn every_string_is_escaped_in_xml_and_commas_doubled_for_qemu() {
        let mut m = machine();
        m.disk = "/s/it's <here> & there,now/disk.qcow2".into();
        m.graphics = vec![Graphics {
            kind: "vnc".into(),
            listen: Some("127.0.0.1'/><evil/>".into()),
        }];
        let xml = domain_xml(&m);
        assert!(!xml.contains("<evil/>"), "{xml}");
        assert!(xml.contains("it&apos;s &lt;here&gt; &amp; there"), "{xml}");
        let argv = qemu_argv(
            &m,
            &QemuPaths {
                monitor: "/m".into(),
                pidfile: "/p".into(),
            },
        );
        assert!(argv
            .iter()
            .any(|a| a.contains("there,,now/disk.qcow2,format=qcow2")));
    }

    #[test]
    fn qemu_argv_matches_the_domain() {
        let argv = qemu_argv(
            &machine(),
            &QemuPaths {
                monitor: "/s/m.sock".into(),
                pidfile: "/s/q.pid".into(),
            },
        );
        let has = |a: &str, b: &str| argv.windows(2).any(|w| w[0] == a && w[1] == b);
        assert!(has("-accel", "tcg"));
        assert!(!argv.iter().any(|a| a == "-cpu"));
        assert!(has("-m", "2048") && has("-smp", "2"));
        assert!(has(
            "-nic",
            "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:40022-:22"
        ));
        assert!(has("-serial", "file:/s/ov-web-build/console.log"));
        assert!(has(
            "-drive",
            "if=pflash,format=raw,file=/s/ov-web-build/OVMF_VARS.fd"
        ));
    }
}
