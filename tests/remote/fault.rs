//! A small HTTP cache server that misbehaves on request: it keeps what is
//! PUT (in memory) and serves it back like nginx, until told to answer 500,
//! reset connections, cut bodies short, send wrong bytes or stall. Plain
//! std threads and sockets: every fault is a few lines, where a framework
//! would fight each one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Behaves.
    None,
    /// Every request: 500.
    Status500,
    /// Every request: the connection is reset once the request is read.
    Reset,
    /// Blob bodies (`GET /…/cas/…`) longer than `over` bytes end after half
    /// their length (with `over` above a record's size, the record of an
    /// entry still arrives and its large blob is cut).
    Truncate { over: usize },
    /// Blob bodies longer than `over` bytes have the right length, with
    /// their middle byte flipped.
    WrongBytes { over: usize },
    /// Every request: no answer for this long.
    Slow(Duration),
    /// Bodies both ways move at 64 KiB per 50 ms: slow, never stalled.
    Trickle,
}

/// A piece of a trickled body.
const TRICKLE: usize = 64 << 10;

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    files: HashMap<String, Vec<u8>>,
    authorizations: Vec<String>,
}

/// A running server; stops when dropped.
pub struct FaultServer {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl FaultServer {
    pub fn start() -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        FaultServer {
            url: format!("http://127.0.0.1:{port}/"),
            state,
            stop,
            port,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.state.lock().unwrap().fault = Some(fault);
    }

    /// The paths it holds.
    pub fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.lock().unwrap().files.keys().cloned().collect();
        v.sort();
        v
    }

    /// Every path it holds with its bytes.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let s = self.state.lock().unwrap();
        s.files
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The `Authorization` headers received.
    pub fn authorizations(&self) -> Vec<String> {
        self.state.lock().unwrap().authorizations.clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "authorization" => state.lock().unwrap().authorizations.push(value),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    let fault = state.lock().unwrap().fault.unwrap_or(Fault::None);
    match fault {
        Fault::Reset => {
            // Linger 0: close sends a RST, not a FIN.
            socket_reset(&out);
            return Ok(());
        }
        Fault::Slow(d) => std::thread::sleep(d),
        _ => {}
    }
    if method == "PUT" {
        if fault == Fault::Trickle {
            for piece in body.chunks_mut(TRICKLE) {
                std::thread::sleep(Duration::from_millis(50));
                reader.read_exact(piece)?;
            }
        } else {
            reader.read_exact(&mut body)?;
        }
    }
    if fault == Fault::Status500 {
        return respond(
            &mut out,
            "500 Internal Server Error",
            b"",
            &method,
            fault == Fault::Trickle,
        );
    }
    match method.as_str() {
        "PUT" => {
            let mut s = state.lock().unwrap();
            let existed = s.files.insert(path, body).is_some();
            drop(s);
            let status = if existed {
                "204 No Content"
            } else {
                "201 Created"
            };
            respond(&mut out, status, b"", "PUT", false)
        }
        "GET" | "HEAD" => {
            let found = state.lock().unwrap().files.get(&path).cloned();
            let Some(mut data) = found else {
                return respond(
                    &mut out,
                    "404 Not Found",
                    b"",
                    &method,
                    fault == Fault::Trickle,
                );
            };
            let over = match fault {
                Fault::Truncate { over } | Fault::WrongBytes { over } => over,
                _ => usize::MAX,
            };
            let blob = path.contains("/cas/") && method == "GET" && data.len() > over;
            if blob && matches!(fault, Fault::WrongBytes { .. }) {
                let middle = data.len() / 2;
                data[middle] ^= 0xff;
            }
            if blob && matches!(fault, Fault::Truncate { .. }) {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    data.len()
                )?;
                out.write_all(&data[..data.len() / 2])?;
                out.flush()?;
                socket_reset(&out);
                return Ok(());
            }
            respond(&mut out, "200 OK", &data, &method, fault == Fault::Trickle)
        }
        _ => respond(
            &mut out,
            "405 Method Not Allowed",
            b"",
            &method,
            fault == Fault::Trickle,
        ),
    }
}

fn socket_reset(s: &TcpStream) {
    // std has no linger setter on stable; shutting down both ways right
    // after the request was read is what a crashing server looks like.
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    body: &[u8],
    method: &str,
    trickle: bool,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        for piece in body.chunks(TRICKLE) {
            if trickle {
                out.flush()?;
                std::thread::sleep(Duration::from_millis(50));
            }
            out.write_all(piece)?;
        }
    }
    out.flush()
}
