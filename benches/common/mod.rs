//! Helpers both benchmarks use: finding a peer tool, reading knobs from the
//! environment, and reporting.

pub mod project;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// True when `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// An environment knob (`OV_BENCH_SCALE`, `OV_BENCH_RUNS`), when set and valid.
#[allow(dead_code)]
pub fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// The median of timed runs.
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// PASS or FAIL for a target.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The `ov` binary cargo built with this bench, in the bench's own profile:
/// `cargo bench` gives the release binary, and `cargo bench --profile dev`
/// (CI's smoke run, which shares the test build) the debug one. Run by
/// hand outside cargo, it falls back to building the release binary.
#[allow(dead_code)]
pub fn ov_binary() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_ov") {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--bin", "ov"])
        .current_dir(manifest)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not build the release ov binary");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    target.join("release").join("ov")
}

#[allow(dead_code)]
/// Peak RSS in KiB of one run of `cmd`, via `/usr/bin/time -f %M`.
pub fn peak_rss_kib(cmd: &[&std::ffi::OsStr]) -> Option<u64> {
    if !Path::new("/usr/bin/time").is_file() {
        return None;
    }
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("RSS=%M")
        .args(cmd)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .rev()
        .find_map(|l| l.strip_prefix("RSS="))
        .and_then(|v| v.trim().parse().ok())
}
