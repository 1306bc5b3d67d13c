//! `ov cache stats|verify|gc`: the local store.

use super::{bad_input, engine_endpoint, load_settings};
use crate::cli::CacheCmd;
use crate::workspace::Dirs;
use std::io::Write;
use std::process::ExitCode;

/// Runs one cache subcommand; `verify` exits 1 when it found damage.
pub fn run(dirs: &Dirs, cmd: CacheCmd, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let store = ov_cache::Store::open(&dirs.cache.join("store"))?;
    match cmd {
        CacheCmd::Stats => {
            writeln!(out, "{}", store.stats()?)?;
            let endpoint = engine_endpoint(&load_settings()?)?;
            match crate::run::collect::usage_now(&endpoint, &store) {
                Ok(u) => writeln!(out, "{u}")?,
                Err(e) => writeln!(out, "engine images:        unknown ({e:#})")?,
            }
        }
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
            // The store is collected whatever the engine says; its images
            // are taken back by a later gc when it answers.
            let endpoint = engine_endpoint(&load_settings()?)?;
            match crate::run::collect::collect_now(&endpoint, &store, &dirs.cache) {
                Ok(r) => writeln!(out, "{r}")?,
                Err(e) => eprintln!("warning: engine images not collected: {e:#}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
