//! The libvirt backend: `qemu:///system` through the `virt` crate, in a
//! helper process, [`HELPER`], built and installed beside `ov`.
//!
//! Why a process of its own: libvirt's client library brings some fifty
//! shared libraries (gnutls, krb5, ldap, curl, glib, icu, ...) into any
//! program that links it. Linked into `ov`, every command paid for loading
//! them (about 15 ms and 12 MB of memory, more than a no-op dry run's own
//! work), and `ov` could not start at all on a host without libvirt, the
//! host the qemu backend is for. Only boots and `ov vm` need libvirt, so
//! only they start the helper: one per connection, one JSON line per call
//! each way ([`Call`], [`Answer`]). The helper sits in its own process
//! group, so the Ctrl-C that interrupts a build leaves it alive for the
//! clean-up that follows; it exits when `ov` closes its stdin, or dies.

use super::hypervisor::{GuestState, HvError, Hypervisor, Lifetime};
use super::machine::{domain_xml, Machine};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// The URI ov talks to (`OV_LIBVIRT_URI` overrides it). As root,
/// `qemu:///session` reaches the same daemon anyway.
pub const DEFAULT_URI: &str = "qemu:///system";

/// The daemon's socket, for `ov doctor` and error messages.
pub const SOCKET: &str = "/run/libvirt/libvirt-sock";

/// The helper's file name; `OV_LIBVIRT_HELPER` names another path.
pub const HELPER: &str = "ov-libvirt";

/// A request to the helper: one [`Hypervisor`] method.
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    /// Start a domain.
    Start {
        /// Its domain XML.
        xml: String,
        /// Define it first, so that it outlives its run.
        persistent: bool,
    },
    /// Start a defined domain.
    StartDefined(String),
    /// A domain's state.
    State(String),
    /// Press a domain's power button.
    Shutdown(String),
    /// Stop a domain at once.
    Destroy(String),
    /// Forget a defined domain and its NVRAM.
    Undefine(String),
    /// Every `ov-*` domain.
    List,
}

/// The helper's answer: the first one says whether it connected.
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    /// Connected, or the call succeeded.
    Done,
    /// [`Call::State`]'s answer.
    State(GuestState),
    /// [`Call::List`]'s answer, sorted.
    List(Vec<(String, GuestState)>),
    /// The daemon cannot be reached: libvirt's message.
    Unavailable(String),
    /// The call failed: what was done and libvirt's message.
    Failed(String),
}

/// A connection to libvirt, held by a helper process.
pub struct Libvirt {
    uri: String,
    helper: Mutex<Helper>,
}

struct Helper {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

fn uri() -> String {
    std::env::var("OV_LIBVIRT_URI").unwrap_or_else(|_| DEFAULT_URI.to_string())
}

/// Where the helper is: `OV_LIBVIRT_HELPER`, else beside the running
/// program, else one folder up (cargo keeps test programs in `deps/`
/// below the binaries), else on `PATH`.
pub fn helper_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OV_LIBVIRT_HELPER") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.as_deref().and_then(|e| e.parent());
    let dirs = [beside, beside.and_then(|d| d.parent())];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = dirs
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(HELPER))
        .find(|p| p.is_file());
    found
}

fn unavailable(uri: &str, why: &str) -> HvError {
    HvError::Unavailable(format!(
        "libvirt is not running at {uri} ({why}): start it with \
         `scripts/setup-vm.sh` (or `libvirtd -d` as root), or boot with qemu \
         directly: `ov settings set vm.backend qemu` or OV_VM_BACKEND=qemu"
    ))
}

/// The helper cannot be run: how to get it, or do without.
fn no_helper(why: &str) -> HvError {
    HvError::Unavailable(format!(
        "libvirt's helper is missing ({why}): install it with ov \
         (`cargo install --path .` installs both), or boot with qemu directly: \
         `ov settings set vm.backend qemu` or OV_VM_BACKEND=qemu"
    ))
}

impl Libvirt {
    /// Connects, or says how to get a daemon (or how to do without).
    pub fn connect() -> Result<Libvirt, HvError> {
        Libvirt::connect_to(&uri())
    }

    /// Connects to `uri`.
    pub fn connect_to(uri: &str) -> Result<Libvirt, HvError> {
        let exe = helper_path()
            .ok_or_else(|| no_helper(&format!("`{HELPER}` is not beside ov nor on PATH")))?;
        let mut cmd = Command::new(&exe);
        cmd.arg(uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(|e| no_helper(&format!("cannot run {}: {e}", exe.display())))?;
        let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HvError::Failed("libvirt helper: no pipes".into()));
        };
        let lv = Libvirt {
            uri: uri.to_string(),
            helper: Mutex::new(Helper {
                child,
                to: Some(to),
                from: BufReader::new(from),
            }),
        };
        match lv.exchange(None)? {
            Answer::Done => Ok(lv),
            other => Err(lv.error(other)),
        }
    }

    /// Sends `call` (none: only reads, for the greeting) and reads the answer.
    fn exchange(&self, call: Option<&Call>) -> Result<Answer, HvError> {
        let mut h = self
            .helper
            .lock()
            .map_err(|_| HvError::Failed("libvirt helper: a call panicked".into()))?;
        let gone = |e: &dyn std::fmt::Display| {
            HvError::Failed(format!("the libvirt helper stopped answering: {e}"))
        };
        if let Some(call) = call {
            let mut line = serde_json::to_vec(call).map_err(|e| gone(&e))?;
            line.push(b'\n');
            let to = h.to.as_mut().ok_or_else(|| gone(&"closed"))?;
            to.write_all(&line)
                .and_then(|()| to.flush())
                .map_err(|e| gone(&e))?;
        }
        let mut line = String::new();
        match h.from.read_line(&mut line) {
            Ok(0) => Err(gone(&"it exited")),
            Ok(_) => serde_json::from_str(&line).map_err(|e| gone(&e)),
            Err(e) => Err(gone(&e)),
        }
    }

    fn error(&self, a: Answer) -> HvError {
        match a {
            Answer::Unavailable(why) => unavailable(&self.uri, &why),
            Answer::Failed(m) => HvError::Failed(m),
            other => HvError::Failed(format!("libvirt helper: unexpected answer {other:?}")),
        }
    }

    fn done(&self, call: Call) -> Result<(), HvError> {
        match self.exchange(Some(&call))? {
            Answer::Done => Ok(()),
            other => Err(self.error(other)),
        }
    }
}

impl Drop for Libvirt {
    fn drop(&mut self) {
        if let Ok(h) = self.helper.get_mut() {
            // Closing its stdin is the helper's signal to close the
            // connection and exit.
            h.to = None;
            let _ = h.child.wait();
        }
    }
}

impl Hypervisor for Libvirt {
    fn name(&self) -> &'static str {
        "libvirt"
    }

    fn start(&self, m: &Machine, life: Lifetime) -> Result<(), HvError> {
        self.done(Call::Start {
            xml: domain_xml(m),
            persistent: life == Lifetime::Persistent,
        })
    }

    fn start_defined(&self, domain: &str) -> Result<(), HvError> {
        self.done(Call::StartDefined(domain.into()))
    }

    fn state(&self, domain: &str) -> Result<GuestState, HvError> {
        match self.exchange(Some(&Call::State(domain.into())))? {
            Answer::State(s) => Ok(s),
            other => Err(self.error(other)),
        }
    }

    fn shutdown(&self, domain: &str) -> Result<(), HvError> {
        self.done(Call::Shutdown(domain.into()))
    }

    fn destroy(&self, domain: &str) -> Result<(), HvError> {
        self.done(Call::Destroy(domain.into()))
    }

    fn undefine(&self, domain: &str) -> Result<(), HvError> {
        self.done(Call::Undefine(domain.into()))
    }

    fn list(&self) -> Result<Vec<(String, GuestState)>, HvError> {
        match self.exchange(Some(&Call::List))? {
            Answer::List(l) => Ok(l),
            other => Err(self.error(other)),
        }
    }
}
