//! `ov-libvirt URI`: the one program of ov that links libvirt. `ov` starts
//! it for boots and `ov vm` commands and speaks to it one JSON line per
//! call on stdin and stdout (`ov_rules::rule::boot::libvirt`, which says
//! why it is a process of its own). Its first line says whether it
//! connected; it exits when its stdin closes.

use ov_rules::rule::boot::hypervisor::GuestState;
use ov_rules::rule::boot::libvirt::{Answer, Call};
use std::io::{BufRead, Write};
use virt::connect::Connect;
use virt::domain::{Domain, DomainPausedReason, DomainState, DomainStateReason};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;

fn main() -> std::process::ExitCode {
    let Some(uri) = std::env::args().nth(1) else {
        eprintln!("usage: ov-libvirt URI (started by ov, not by hand)");
        return std::process::ExitCode::from(2);
    };
    // libvirt prints every error to stderr unless told not to; ours go
    // back to ov in the answers.
    virt::error::clear_error_callback();
    let mut out = std::io::stdout().lock();
    let conn = match Connect::open(Some(&uri)) {
        Ok(c) => c,
        Err(e) => {
            let _ = send(&mut out, &Answer::Unavailable(e.message().to_string()));
            return std::process::ExitCode::SUCCESS;
        }
    };
    if send(&mut out, &Answer::Done).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Call>(&line) {
            Ok(call) => answer(&conn, call),
            Err(e) => Answer::Failed(format!("libvirt helper: a call it cannot read: {e}")),
        };
        if send(&mut out, &answer).is_err() {
            break;
        }
    }
    drop(conn);
    std::process::ExitCode::SUCCESS
}

fn send(out: &mut impl Write, a: &Answer) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(a).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

fn failed(what: &str, e: virt::error::Error) -> Answer {
    Answer::Failed(format!("libvirt: {what}: {}", e.message()))
}

fn done(what: &str, r: Result<(), virt::error::Error>) -> Answer {
    r.map_or_else(|e| failed(what, e), |()| Answer::Done)
}

fn lookup(conn: &Connect, domain: &str) -> Result<Option<Domain>, Answer> {
    match conn.lookup_domain_by_name(domain) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.code() == Enum::Known(ErrorNumber::NoDomain) => Ok(None),
        Err(e) => Err(failed(&format!("looking up {domain}"), e)),
    }
}

fn state_of(d: &Domain) -> GuestState {
    match d.state() {
        Ok((Enum::Known(DomainState::Shutoff | DomainState::Crashed), _)) => GuestState::Off,
        // Paused by qemu itself: an emulation failure reads as "unknown".
        Ok((
            _,
            Enum::Known(DomainStateReason::Paused(Enum::Known(
                DomainPausedReason::Unknown
                | DomainPausedReason::IOError
                | DomainPausedReason::Crashed
                | DomainPausedReason::Watchdog
                | DomainPausedReason::PostCopyFailed
                | DomainPausedReason::APIError,
            ))),
        )) => GuestState::Halted,
        Ok(_) => GuestState::Running,
        // Gone between the lookup and the question.
        Err(_) => GuestState::Absent,
    }
}

/// Whether a qemu process still holds the guest (a halted one too).
fn is_up(s: GuestState) -> bool {
    matches!(s, GuestState::Running | GuestState::Halted)
}

fn answer(conn: &Connect, call: Call) -> Answer {
    match call {
        Call::Start { xml, persistent } => {
            let what = "starting the domain";
            if persistent {
                match conn.define_domain_xml(&xml) {
                    Ok(d) => done(what, d.create().map(drop)),
                    Err(e) => failed("defining the domain", e),
                }
            } else {
                done(what, conn.create_domain_xml(&xml, 0).map(drop))
            }
        }
        Call::StartDefined(domain) => match lookup(conn, &domain) {
            Ok(Some(d)) => done(&format!("starting {domain}"), d.create().map(drop)),
            Ok(None) => Answer::Failed(format!("no VM `{domain}` is defined")),
            Err(a) => a,
        },
        Call::State(domain) => match lookup(conn, &domain) {
            Ok(d) => Answer::State(d.map_or(GuestState::Absent, |d| state_of(&d))),
            Err(a) => a,
        },
        Call::Shutdown(domain) => match lookup(conn, &domain) {
            Ok(Some(d)) => done(&format!("shutting {domain} down"), d.shutdown()),
            Ok(None) => Answer::Done,
            Err(a) => a,
        },
        Call::Destroy(domain) => match lookup(conn, &domain) {
            Ok(Some(d)) if is_up(state_of(&d)) => match d.destroy() {
                Ok(()) => Answer::Done,
                // It stopped on its own meanwhile.
                Err(_) if !is_up(state_of(&d)) => Answer::Done,
                Err(e) => failed(&format!("destroying {domain}"), e),
            },
            Ok(_) => Answer::Done,
            Err(a) => a,
        },
        Call::Undefine(domain) => match lookup(conn, &domain) {
            Ok(Some(d)) => done(
                &format!("undefining {domain}"),
                d.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM),
            ),
            Ok(None) => Answer::Done,
            Err(a) => a,
        },
        Call::List => match conn.list_all_domains(0) {
            Ok(all) => {
                let mut l: Vec<(String, GuestState)> = all
                    .iter()
                    .filter_map(|d| {
                        let name = d.name().ok()?;
                        name.starts_with("ov-").then(|| (name, state_of(d)))
                    })
                    .collect();
                l.sort();
                Answer::List(l)
            }
            Err(e) => failed("listing domains", e),
        },
    }
}
