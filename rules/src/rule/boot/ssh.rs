//! Reaching a booted guest over ssh with the instance key, through the
//! system's OpenSSH client (`ssh`): the one every host has, with its own
//! handling of keys, ciphers and time-outs.

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// What a script run in the guest printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// Its exit status (255: ssh itself failed).
    pub rc: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// A way into a guest. The boot's logic runs against this trait, so it is
/// tested without a guest; [`Ssh`] is the real one.
pub trait GuestShell: Send + Sync {
    /// Runs `script` with `sh -s` in the guest.
    fn run<'a>(&'a self, script: &'a str, timeout: Duration) -> BoxFuture<'a, Ran>;
}

/// ssh to `user@127.0.0.1:port` with one key and nothing else.
#[derive(Clone, Debug)]
pub struct Ssh {
    /// The forwarded port on the host.
    pub port: u16,
    /// The guest user.
    pub user: String,
    /// The private key.
    pub key: PathBuf,
}

impl Ssh {
    /// The client's arguments before the command: only this key, no
    /// prompts, no known_hosts (each boot has fresh host keys).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            "-p",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(self.port.to_string());
        a.push("-i".into());
        a.push(self.key.to_string_lossy().into_owned());
        a.push(format!("{}@127.0.0.1", self.user));
        a
    }
}

impl GuestShell for Ssh {
    fn run<'a>(&'a self, script: &'a str, timeout: Duration) -> BoxFuture<'a, Ran> {
        Box::pin(async move {
            let failed = |e: String| Ran {
                rc: 255,
                stdout: String::new(),
                stderr: e,
            };
            let child = tokio::process::Command::new("ssh")
                .args(self.args())
                .args(["sh", "-s"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => return failed(format!("cannot run ssh: {e}")),
            };
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(script.as_bytes()).await;
            }
            match tokio::time::timeout(timeout, child.wait_with_output()).await {
                Ok(Ok(out)) => Ran {
                    rc: out.status.code().unwrap_or(255),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                },
                Ok(Err(e)) => failed(e.to_string()),
                Err(_) => failed(format!("ssh did not finish within {timeout:?}")),
            }
        })
    }
}

/// A free TCP port on 127.0.0.1 for the guest's ssh forward.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
