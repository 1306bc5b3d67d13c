//! One boot from start to stop, above the [`Hypervisor`] and
//! [`GuestShell`] traits: start, wait until ready (a console line, or ssh
//! accepting the key) within the time-out, run the checks, shut down
//! cleanly or pull the plug. Whatever happens (an error, Ctrl-C, the
//! future dropped), the guest does not outlive this function.

use super::hypervisor::{GuestState, Hypervisor, Lifetime};
use super::machine::Machine;
use super::ssh::GuestShell;
use crate::rule::eval::{self, NamedCheck, Verdict};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How readiness is decided.
pub enum ReadyBy<'a> {
    /// This line on the serial console.
    Console(&'a str),
    /// ssh accepting the key (`true` runs).
    Ssh,
}

/// What a boot needs besides the machine.
pub struct Plan<'a> {
    /// How readiness is decided.
    pub ready: ReadyBy<'a>,
    /// How long the guest gets to become ready.
    pub ready_timeout: Duration,
    /// How long it gets to power off once asked.
    pub shutdown_timeout: Duration,
    /// The checks to run over ssh once ready.
    pub checks: &'a [NamedCheck],
    /// The way in, when the guest has a key.
    pub shell: Option<&'a dyn GuestShell>,
    /// Fires on Ctrl-C.
    pub cancel: &'a CancellationToken,
}

/// How the guest stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// It powered off when asked.
    Clean,
    /// It did not, and was destroyed.
    Destroyed,
}

/// What a finished boot found.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Start to ready, in ms.
    pub ready_ms: u64,
    /// The checks' time, in ms.
    pub checks_ms: u64,
    /// Asking to stop to stopped, in ms.
    pub shutdown_ms: u64,
    /// The checks' verdicts.
    pub checks: Vec<Verdict>,
    /// How it stopped.
    pub stopped: Stopped,
}

/// Why a boot failed. The guest is gone in every case.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The hypervisor failed.
    #[error("{0}")]
    Hypervisor(#[from] super::hypervisor::HvError),
    /// Not ready in time, or stopped before it was.
    #[error("{message}")]
    NotReady {
        /// What happened.
        message: String,
        /// The console's last lines.
        console_tail: String,
    },
    /// The hypervisor halted the guest before it was ready (see
    /// [`GuestState::Halted`]): under KVM, most often a nested KVM that
    /// cannot run the firmware's code, where TCG would.
    #[error("{message}")]
    Halted {
        /// What happened.
        message: String,
        /// The console's last lines.
        console_tail: String,
    },
    /// Checks failed.
    #[error("{message}")]
    Checks {
        /// Which, and why.
        message: String,
        /// What they printed.
        output: String,
    },
    /// Ctrl-C.
    #[error("cancelled")]
    Cancelled,
}

/// Destroys the guest when dropped, unless disarmed: covers errors,
/// Ctrl-C and a dropped future alike.
struct Plug<'a> {
    hv: &'a dyn Hypervisor,
    domain: &'a str,
    armed: bool,
}

impl Drop for Plug<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.hv.destroy(self.domain);
        }
    }
}

const POLL: Duration = Duration::from_millis(250);

/// The last `n` lines of the console log, without terminal escapes.
pub fn console_tail(path: &Path, n: usize) -> String {
    let raw = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\n' || c == '\t' || !c.is_control() {
            clean.push(c);
        }
    }
    let lines: Vec<&str> = clean.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> Result<(), BootError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(BootError::Cancelled),
        _ = tokio::time::sleep(d) => Ok(()),
    }
}

async fn wait_ready(
    hv: &dyn Hypervisor,
    m: &Machine,
    plan: &Plan<'_>,
    started: Instant,
) -> Result<(), BootError> {
    let deadline = started + plan.ready_timeout;
    loop {
        let ready = match plan.ready {
            ReadyBy::Console(marker) => std::fs::read(&m.console_log)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(marker)),
            ReadyBy::Ssh => match plan.shell {
                Some(sh) => sh.run("true", Duration::from_secs(15)).await.rc == 0,
                None => false,
            },
        };
        if ready {
            return Ok(());
        }
        match hv.state(&m.domain)? {
            GuestState::Running => {}
            GuestState::Halted => {
                return Err(BootError::Halted {
                    message: format!(
                        "{} was halted by the hypervisor ({}) before it was ready: an \
                         emulation failure, an I/O error or a guest panic",
                        m.domain,
                        m.accel.name()
                    ),
                    console_tail: console_tail(&m.console_log, 30),
                })
            }
            GuestState::Off | GuestState::Absent => {
                return Err(BootError::NotReady {
                    message: format!("{} stopped before it was ready", m.domain),
                    console_tail: console_tail(&m.console_log, 30),
                })
            }
        }
        if Instant::now() >= deadline {
            let what = match plan.ready {
                ReadyBy::Console(marker) => format!("its console never printed {marker:?}"),
                ReadyBy::Ssh => format!(
                    "ssh on 127.0.0.1:{} never accepted the instance key",
                    m.forwards.first().map_or(0, |f| f.host)
                ),
            };
            return Err(BootError::NotReady {
                message: format!(
                    "{} was not ready within {} s: {what}; the guest was destroyed",
                    m.domain,
                    plan.ready_timeout.as_secs()
                ),
                console_tail: console_tail(&m.console_log, 30),
            });
        }
        sleep_or_cancel(plan.cancel, POLL).await?;
    }
}

async fn run_checks(plan: &Plan<'_>) -> Result<Vec<Verdict>, BootError> {
    if plan.checks.is_empty() {
        return Ok(Vec::new());
    }
    let Some(sh) = plan.shell else {
        return Err(BootError::Checks {
            message: "the VM has checks but no ssh key to run them with".into(),
            output: String::new(),
        });
    };
    let script = eval::script(plan.checks);
    let ran = tokio::select! {
        _ = plan.cancel.cancelled() => return Err(BootError::Cancelled),
        r = sh.run(&script, Duration::from_secs(600)) => r,
    };
    let verdicts = eval::verdicts(plan.checks, &ran.stdout);
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.ok).collect();
    if failed.is_empty() {
        return Ok(verdicts);
    }
    let mut message = format!(
        "{} of {} checks failed in the booted VM:",
        failed.len(),
        verdicts.len()
    );
    for v in &failed {
        message.push_str(&format!("\n  {}: {}", v.id, v.reason));
    }
    Err(BootError::Checks {
        message,
        output: format!("{}{}", ran.stdout, ran.stderr),
    })
}

async fn stop(hv: &dyn Hypervisor, m: &Machine, plan: &Plan<'_>) -> Result<Stopped, BootError> {
    // Over ssh when the guest has a key (the guest's own poweroff), and
    // the ACPI power button in any case.
    if let (ReadyBy::Ssh, Some(sh)) = (&plan.ready, plan.shell) {
        let _ = sh
            .run(
                "sudo -n poweroff 2>/dev/null || poweroff",
                Duration::from_secs(10),
            )
            .await;
    }
    hv.shutdown(&m.domain)?;
    let deadline = Instant::now() + plan.shutdown_timeout;
    loop {
        match hv.state(&m.domain)? {
            GuestState::Running => {}
            GuestState::Halted => {
                hv.destroy(&m.domain)?;
                return Ok(Stopped::Destroyed);
            }
            GuestState::Off | GuestState::Absent => return Ok(Stopped::Clean),
        }
        if Instant::now() >= deadline {
            hv.destroy(&m.domain)?;
            return Ok(Stopped::Destroyed);
        }
        sleep_or_cancel(plan.cancel, POLL).await?;
    }
}

/// Boots `m` as a transient guest and takes it through ready, checks and
/// shutdown.
pub async fn boot(hv: &dyn Hypervisor, m: &Machine, plan: &Plan<'_>) -> Result<Outcome, BootError> {
    let started = Instant::now();
    hv.start(m, Lifetime::Transient)?;
    let mut plug = Plug {
        hv,
        domain: &m.domain,
        armed: true,
    };
    wait_ready(hv, m, plan, started).await?;
    let ready_ms = started.elapsed().as_millis() as u64;
    let t = Instant::now();
    let checks = run_checks(plan).await?;
    let checks_ms = t.elapsed().as_millis() as u64;
    let t = Instant::now();
    let stopped = stop(hv, m, plan).await?;
    plug.armed = false;
    Ok(Outcome {
        ready_ms,
        checks_ms,
        shutdown_ms: t.elapsed().as_millis() as u64,
        checks,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::super::hypervisor::HvError;
    use super::super::machine::{Accel, Machine};
    use super::super::spec::PortForward;
    use super::super::ssh::Ran;
    use super::*;
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;

    /// A hypervisor whose guest writes `console` at start and stops when
    /// asked only if `obeys`.
    struct Fake {
        running: Mutex<bool>,
        obeys: bool,
        /// Its guest is halted by the hypervisor once started.
        halts: bool,
        console: &'static str,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn new(obeys: bool, console: &'static str) -> Fake {
            Fake {
                running: Mutex::new(false),
                obeys,
                halts: false,
                console,
                calls: Mutex::new(Vec::new()),
            }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Hypervisor for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn start(&self, m: &Machine, _: Lifetime) -> Result<(), HvError> {
            std::fs::write(&m.console_log, self.console).unwrap();
            *self.running.lock().unwrap() = true;
            self.calls.lock().unwrap().push("start".into());
            Ok(())
        }
        fn start_defined(&self, _: &str) -> Result<(), HvError> {
            unreachable!()
        }
        fn state(&self, _: &str) -> Result<GuestState, HvError> {
            Ok(if *self.running.lock().unwrap() {
                if self.halts {
                    GuestState::Halted
                } else {
                    GuestState::Running
                }
            } else {
                GuestState::Absent
            })
        }
        fn shutdown(&self, _: &str) -> Result<(), HvError> {
            self.calls.lock().unwrap().push("shutdown".into());
            if self.obeys {
                *self.running.lock().unwrap() = false;
            }
            Ok(())
        }
        fn destroy(&self, _: &str) -> Result<(), HvError> {
            self.calls.lock().unwrap().push("destroy".into());
            *self.running.lock().unwrap() = false;
            Ok(())
        }
        fn undefine(&self, _: &str) -> Result<(), HvError> {
            Ok(())
        }
        fn list(&self) -> Result<Vec<(String, GuestState)>, HvError> {
            Ok(vec![])
        }
    }

    /// A shell that answers from the checks' marker protocol.
    struct Shell {
        up: bool,
        output: String,
        scripts: Mutex<Vec<String>>,
    }

    impl GuestShell for Shell {
        fn run<'a>(&'a self, script: &'a str, _: Duration) -> BoxFuture<'a, Ran> {
            self.scripts.lock().unwrap().push(script.to_string());
            let rc = if self.up { 0 } else { 255 };
            let stdout = if script == "true" {
                String::new()
            } else {
                self.output.clone()
            };
            Box::pin(async move {
                Ran {
                    rc,
                    stdout,
                    stderr: String::new(),
                }
            })
        }
    }

    fn machine(dir: &Path) -> Machine {
        Machine {
            domain: "ov-t-build".into(),
            ram_mib: 256,
            cpus: 1,
            accel: Accel::Tcg,
            machine: "q35".into(),
            uefi: None,
            disk: dir.join("disk.qcow2"),
            disk_format: "qcow2".into(),
            seed: None,
            nic_model: "virtio".into(),
            forwards: vec![PortForward {
                host: 40000,
                guest: 22,
            }],
            console_log: dir.join("console.log"),
            graphics: vec![],
            video: vec![],
        }
    }

    fn plan<'a>(
        ready: ReadyBy<'a>,
        checks: &'a [NamedCheck],
        shell: Option<&'a dyn GuestShell>,
        cancel: &'a CancellationToken,
    ) -> Plan<'a> {
        Plan {
            ready,
            ready_timeout: Duration::from_millis(600),
            shutdown_timeout: Duration::from_millis(600),
            checks,
            shell,
            cancel,
        }
    }

    #[tokio::test]
    async fn a_guest_that_never_becomes_ready_is_destroyed_with_its_console_in_the_error() {
        let d = tempfile::tempdir().unwrap();
        let hv = Fake::new(true, "\u{1b}[2Jbooting\nkernel panic: no init\n");
        let c = CancellationToken::new();
        let e = boot(
            &hv,
            &machine(d.path()),
            &plan(ReadyBy::Console("READY"), &[], None, &c),
        )
        .await
        .unwrap_err();
        let BootError::NotReady {
            message,
            console_tail,
        } = e
        else {
            panic!("{e}")
        };
        assert!(message.contains("not ready within"), "{message}");
        assert!(
            console_tail.ends_with("kernel panic: no init"),
            "{console_tail:?}"
        );
        assert!(!console_tail.contains('\u{1b}'));
        assert_eq!(hv.calls(), ["start", "destroy"]);
        assert_eq!(hv.state("x").unwrap(), GuestState::Absent);
    }

    #[tokio::test]
    async fn a_guest_the_hypervisor_halted_fails_at_once_and_is_destroyed() {
        // As nested KVM does on OVMF's first FPU instruction: the guest
        // sits paused, and waiting out the time-out would only cost time.
        let d = tempfile::tempdir().unwrap();
        let mut hv = Fake::new(true, "");
        hv.halts = true;
        let c = CancellationToken::new();
        let mut m = machine(d.path());
        m.accel = Accel::Kvm;
        let mut p = plan(ReadyBy::Console("READY"), &[], None, &c);
        p.ready_timeout = Duration::from_secs(2);
        let e = boot(&hv, &m, &p).await.unwrap_err();
        let BootError::Halted { message, .. } = e else {
            panic!("{e}")
        };
        assert!(
            message.contains("halted by the hypervisor (kvm)"),
            "{message}"
        );
        assert_eq!(hv.calls(), ["start", "destroy"]);
    }

    #[tokio::test]
    async fn ssh_readiness_runs_the_checks_then_powers_off() {
        let d = tempfile::tempdir().unwrap();
        let hv = Fake::new(true, "");
        let checks = eval::parse_checks(&eval::EvalSpec {
            checks: vec![serde_json::json!({"id": "hi", "command": "echo hi", "stdout": "hi"})],
            distro: vec![],
            build: vec![],
            image_node: String::new(),
        })
        .unwrap();
        let shell = Shell {
            up: true,
            output: "@@ov-check 0 rc 0\nhi\n\n@@ov-check 0 stderr\n\n@@ov-check 0 end\n".into(),
            scripts: Mutex::new(vec![]),
        };
        let c = CancellationToken::new();
        let out = boot(
            &hv,
            &machine(d.path()),
            &plan(ReadyBy::Ssh, &checks, Some(&shell), &c),
        )
        .await
        .unwrap();
        assert_eq!(out.stopped, Stopped::Clean);
        assert!(out.checks[0].ok);
        let scripts = shell.scripts.lock().unwrap().clone();
        assert_eq!(scripts[0], "true");
        assert!(scripts[1].contains("echo hi"));
        assert!(scripts[2].contains("poweroff"));
        assert_eq!(hv.calls(), ["start", "shutdown"]);
    }

    #[tokio::test]
    async fn failed_checks_and_deaf_guests_end_in_destroy() {
        let d = tempfile::tempdir().unwrap();
        let checks = eval::parse_checks(&eval::EvalSpec {
            checks: vec![serde_json::json!({"id": "f", "file": "/etc/ov"})],
            distro: vec![],
            build: vec![],
            image_node: String::new(),
        })
        .unwrap();
        let shell = Shell {
            up: true,
            output: "@@ov-check 0 rc 1\n\n@@ov-check 0 stderr\n\n@@ov-check 0 end\n".into(),
            scripts: Mutex::new(vec![]),
        };
        let hv = Fake::new(true, "");
        let c = CancellationToken::new();
        let e = boot(
            &hv,
            &machine(d.path()),
            &plan(ReadyBy::Ssh, &checks, Some(&shell), &c),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("f: /etc/ov does not exist"), "{e}");
        assert_eq!(hv.calls(), ["start", "destroy"]);

        // Ready, but deaf to the power button: destroyed, reported so.
        let hv = Fake::new(false, "READY\n");
        let out = boot(
            &hv,
            &machine(d.path()),
            &plan(ReadyBy::Console("READY"), &[], None, &c),
        )
        .await
        .unwrap();
        assert_eq!(out.stopped, Stopped::Destroyed);
        assert_eq!(hv.calls(), ["start", "shutdown", "destroy"]);
    }

    #[tokio::test]
    async fn ctrl_c_destroys_the_guest() {
        let d = tempfile::tempdir().unwrap();
        let hv = Fake::new(true, "");
        let c = CancellationToken::new();
        c.cancel();
        let mut p = plan(ReadyBy::Console("READY"), &[], None, &c);
        p.ready_timeout = Duration::from_secs(60);
        let e = boot(&hv, &machine(d.path()), &p).await.unwrap_err();
        assert!(matches!(e, BootError::Cancelled));
        assert_eq!(hv.calls(), ["start", "destroy"]);
    }
}
