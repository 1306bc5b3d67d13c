//! `ov settings get|set|list`: the user's settings file.

use super::{bad_input, load_settings};
use crate::cli::SettingsCmd;
use std::io::Write;

/// Runs one settings subcommand. Values are printed with secrets masked.
pub fn run(cmd: SettingsCmd, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut settings = load_settings()?;
    let r = match cmd {
        SettingsCmd::Get { key } => settings.get(&key).map(|v| {
            let _ = writeln!(out, "{}", ov_cache::redact(&v));
        }),
        SettingsCmd::Set { key, value } => settings.set(&key, &value),
        SettingsCmd::List => {
            for (s, value, set) in settings.list() {
                writeln!(
                    out,
                    "{} = {}{}\t# {}",
                    s.key,
                    ov_cache::redact(&value),
                    if set { "" } else { " (default)" },
                    s.help
                )?;
            }
            Ok(())
        }
    };
    r.map_err(|e| bad_input(e.to_string()))
}
