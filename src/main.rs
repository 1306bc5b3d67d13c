//! The `ov` binary: parses arguments, calls one command of
//! [`ov::commands`], and maps errors to exit codes (0 ok, 1 build failed,
//! 2 bad input) in one place.

use clap::Parser;
use ov::cli::{BuildArgs, Cli, Command, ExplainArgs, ImageCmd, LockArgs};
use ov::commands::{self, print_diags};
use ov::diag::InvalidProject;
use ov::workspace::Dirs;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(invalid) = e.downcast_ref::<InvalidProject>() {
                print_diags(&invalid.0);
                return ExitCode::from(2);
            }
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", ov_cache::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env(cli.cache_dir.clone());
    let root = &cli.dir;
    if matches!(
        cli.command,
        Command::Build(_) | Command::Image(ImageCmd::Build(_)) | Command::Cache(_)
    ) {
        commands::cache_dir_usable(&dirs)?;
    }
    // Not locked for the whole command: progress writes to stdout from
    // worker threads during a build.
    let out = &mut std::io::stdout();
    let ok = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Image(ImageCmd::Validate) => commands::image::validate(root, &dirs, out).map(ok),
        Command::Image(ImageCmd::List { include_disabled }) => {
            commands::image::list(root, &dirs, include_disabled, out).map(ok)
        }
        Command::Image(ImageCmd::Inspect { name }) => {
            commands::image::inspect(root, &dirs, &name, out).map(ok)
        }
        Command::Image(ImageCmd::Generate { name }) => {
            commands::image::generate(root, &dirs, &name, out).map(ok)
        }
        Command::Image(ImageCmd::Build(args)) => commands::build::build(root, &dirs, args, true),
        Command::Graph(args) => commands::graph::run(root, &dirs, args, out).map(ok),
        Command::Build(BuildArgs {
            targets,
            dry_run: true,
            refresh,
            ..
        }) => commands::build::dry_run(root, &dirs, &targets, &refresh, out).map(ok),
        Command::Build(args) => commands::build::build(root, &dirs, args, false),
        Command::Explain(ExplainArgs { node }) => {
            commands::explain::run(root, &dirs, &node, out).map(ok)
        }
        Command::Cache(cmd) => commands::cache::run(&dirs, cmd, out),
        Command::Settings(cmd) => commands::settings::run(cmd, out).map(ok),
        Command::Lock(LockArgs { update, refs }) => {
            commands::lock::run(root, &dirs, update, &refs, out).map(ok)
        }
        Command::Doctor => commands::doctor::print(&dirs, out),
        Command::Vm(cmd) => commands::vm::run(root, &dirs, cmd, out),
    }
}
