//! The direct-qemu backend, for hosts without libvirt: one
//! `qemu-system-x86_64` process per guest, found again through its pidfile
//! in the instance's state dir and driven through its monitor socket there.

use super::hypervisor::{GuestState, HvError, Hypervisor, Lifetime};
use super::machine::{qemu_argv, Machine, QemuPaths};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The qemu binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// The direct-qemu backend.
pub struct Qemu {
    root: PathBuf,
    /// Guests this process started, so their exit is reaped (PID 1 may
    /// not reap, and an unreaped qemu looks alive).
    children: Mutex<HashMap<String, Child>>,
}

/// Where the guest `domain` keeps its handles.
pub fn paths(root: &Path, domain: &str) -> QemuPaths {
    let dir = root.join(domain);
    QemuPaths {
        monitor: dir.join("monitor.sock"),
        pidfile: dir.join("qemu.pid"),
    }
}

/// The pid of a live process, not a zombie, whose command line names
/// `domain`: a stale pidfile whose pid was reused is not our guest.
pub fn live_qemu(pidfile: &Path, domain: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let want = format!("{domain},process={domain}");
    cmdline
        .split(|b| *b == 0)
        .any(|a| a == want.as_bytes())
        .then_some(pid)
}

impl Qemu {
    /// The backend over instance dirs under `root`.
    pub fn new(root: &Path) -> Qemu {
        Qemu {
            root: root.to_path_buf(),
            children: Mutex::new(HashMap::new()),
        }
    }

    fn reap(&self, domain: &str) {
        let mut c = self.children.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = c.get_mut(domain) {
            if matches!(child.try_wait(), Ok(Some(_))) {
                c.remove(domain);
            }
        }
    }

    /// Runs `command` on the guest's human monitor and returns what the
    /// monitor printed up to its next prompt.
    fn monitor(&self, domain: &str, command: &str) -> Result<String, HvError> {
        let p = paths(&self.root, domain);
        let mut s = UnixStream::connect(&p.monitor)
            .map_err(|e| HvError::Failed(format!("qemu monitor {}: {e}", p.monitor.display())))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        // The banner first, then the command.
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        s.write_all(format!("{command}\n").as_bytes())
            .map_err(|e| HvError::Failed(format!("qemu monitor: {e}")))?;
        // The monitor echoes the line a character at a time and runs it
        // on the newline; closing before its next prompt can drop it.
        let mut seen = Vec::new();
        while !seen.windows(8).any(|w| w == b"\n(qemu) ") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        Ok(String::from_utf8_lossy(&seen).into_owned())
    }
}

/// The run states in which qemu has stopped a guest on its own.
const HALTED: &[&str] = &["(internal-error)", "(io-error)", "(guest-panicked)"];

impl Hypervisor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn start(&self, m: &Machine, life: Lifetime) -> Result<(), HvError> {
        let p = paths(&self.root, &m.domain);
        let _ = std::fs::remove_file(&p.pidfile);
        let _ = std::fs::remove_file(&p.monitor);
        let log_path = self.root.join(&m.domain).join("qemu.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| HvError::Failed(format!("{}: {e}", log_path.display())))?;
        let err = log
            .try_clone()
            .map_err(|e| HvError::Failed(format!("{}: {e}", log_path.display())))?;
        let mut cmd = Command::new(QEMU);
        cmd.args(qemu_argv(m, &p))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        match life {
            // A build's guest dies with the build, even on kill -9.
            Lifetime::Transient => unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            },
            // `ov vm create`'s guest outlives ov: its own session.
            Lifetime::Persistent => unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            },
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| HvError::Unavailable(format!("cannot run {QEMU}: {e}")))?;
        // qemu writes its pidfile once the machine is set up; an early
        // exit (a bad drive, a missing firmware file) is reported now.
        for _ in 0..100 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(HvError::Failed(format!(
                    "{QEMU} for {} exited at start ({status}): {}",
                    m.domain,
                    log.trim()
                )));
            }
            if p.pidfile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(m.domain.clone(), child);
        Ok(())
    }

    fn start_defined(&self, domain: &str) -> Result<(), HvError> {
        Err(HvError::Failed(format!(
            "the qemu backend keeps no stopped VMs: create `{domain}` again with `ov vm create`"
        )))
    }

    fn state(&self, domain: &str) -> Result<GuestState, HvError> {
        self.reap(domain);
        let p = paths(&self.root, domain);
        Ok(match live_qemu(&p.pidfile, domain) {
            // qemu stopped the guest itself: "VM status: paused
            // (internal-error)" after an emulation failure.
            Some(_) => match self.monitor(domain, "info status") {
                Ok(status) if HALTED.iter().any(|h| status.contains(h)) => GuestState::Halted,
                _ => GuestState::Running,
            },
            None => GuestState::Absent,
        })
    }

    fn shutdown(&self, domain: &str) -> Result<(), HvError> {
        if self.state(domain)? == GuestState::Running {
            self.monitor(domain, "system_powerdown")?;
        }
        Ok(())
    }

    fn destroy(&self, domain: &str) -> Result<(), HvError> {
        let p = paths(&self.root, domain);
        if let Some(pid) = live_qemu(&p.pidfile, domain) {
            // SAFETY: kill(2) on a pid whose command line we just checked.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            for _ in 0..100 {
                self.reap(domain);
                if live_qemu(&p.pidfile, domain).is_none() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.reap(domain);
        let _ = std::fs::remove_file(&p.pidfile);
        let _ = std::fs::remove_file(&p.monitor);
        Ok(())
    }

    fn undefine(&self, domain: &str) -> Result<(), HvError> {
        self.destroy(domain)
    }

    fn list(&self) -> Result<Vec<(String, GuestState)>, HvError> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("ov-") && e.path().join("qemu.pid").exists() {
                let st = self.state(&name)?;
                if st != GuestState::Absent {
                    out.push((name, st));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
