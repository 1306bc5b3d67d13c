//! `ov cache stats|verify|gc`: the local store.

use super::bad_input;
use crate::cli::CacheCmd;
use crate::workspace::Dirs;
use std::io::Write;
use std::process::ExitCode;

/// Runs one cache subcommand; `verify` exits 1 when it found damage.
pub fn run(dirs: &Dirs, cmd: CacheCmd, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let store = ov_cache::Store::open(&dirs.cache.join("store"))?;
    match cmd {
        CacheCmd::Stats => writeln!(out, "{}", store.stats()?)?,
        CacheCmd::Verify => {
            let report = store.verify()?;
            writeln!(out, "{report}")?;
            if !report.is_clean() {
                return Ok(ExitCode::from(1));
            }
        }
        CacheCmd::Gc { max_size } => {
            let max = ov_cache::parse_size(&max_size)
                .map_err(|e| bad_input(format!("--max-size {max_size}: {e}")))?;
            writeln!(out, "{}", store.gc(max)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
