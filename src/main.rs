//! The `ov` binary: parses arguments, calls the library, maps errors to
//! exit codes (0 ok, 1 build failed, 2 bad input) in one place.

use clap::Parser;
use ov::cli::{BuildArgs, Cli, Command, ExplainArgs, GraphArgs, ImageCmd};
use ov::diag::{Diagnostics, InvalidProject};
use ov::graph::{self, View};
use ov::workspace::{load_valid, unknown_image, Dirs, Workspace};
use ov_cache::Digest;
use std::io::Write;
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
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn print_diags(d: &Diagnostics) {
    let mut err = std::io::stderr().lock();
    for item in d.items() {
        let _ = writeln!(err, "{item}");
    }
}

fn bad_input(msg: String) -> anyhow::Error {
    let mut d = Diagnostics::default();
    d.error(None, msg);
    InvalidProject(d).into()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env(cli.cache_dir.clone());
    let root = &cli.dir;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Image(ImageCmd::Validate) => {
            let (project, warnings) = load_valid(root, &dirs)?;
            print_diags(&warnings);
            writeln!(
                out,
                "ok: {} images, {} layers, {} vms",
                project.images.len(),
                project.layers.len(),
                project.vms.len()
            )?;
        }
        Command::Image(ImageCmd::List { include_disabled }) => {
            let (project, warnings) = load_valid(root, &dirs)?;
            print_diags(&warnings);
            for name in ov::resolve::build_order(&project, include_disabled) {
                writeln!(out, "{name}")?;
            }
        }
        Command::Image(ImageCmd::Inspect { name }) => {
            let (project, warnings) = load_valid(root, &dirs)?;
            print_diags(&warnings);
            if !project.images.contains_key(&name) {
                return Err(unknown_image(&project, &name).into());
            }
            let resolved = ov::resolve::resolve_all(&project);
            let img = &resolved[&name];
            serde_json::to_writer_pretty(&mut out, img)?;
            writeln!(out)?;
        }
        Command::Graph(GraphArgs { targets, format }) => {
            let ws = Workspace::open(root, &dirs)?;
            print_diags(&ws.warnings);
            let nodes = ws.select(&targets)?;
            let view = View {
                plan: &ws.plan,
                keys: &ws.keys,
                nodes,
            };
            out.write_all(graph::render(&view, format).as_bytes())?;
            // Freeing a large plan costs more than building its output; the
            // process is about to exit anyway.
            std::mem::forget(ws);
        }
        Command::Build(BuildArgs { targets, dry_run }) => {
            if !dry_run {
                return Err(bad_input(
                    "this ov plans builds but does not run them yet; use `ov build --dry-run` to see what would run".into(),
                ));
            }
            let ws = Workspace::open(root, &dirs)?;
            print_diags(&ws.warnings);
            let nodes = ws.select(&targets)?;
            let mut buf = String::with_capacity(nodes.len() * 64);
            for &ix in &nodes {
                let n = &ws.plan.graph[ix];
                buf.push_str(&format!(
                    "run {:<12} {} {}\n",
                    n.kind.as_str(),
                    ws.keys.keys[ix.index()].short(12),
                    n.id
                ));
            }
            buf.push_str(&format!("{} nodes would run\n", nodes.len()));
            out.write_all(buf.as_bytes())?;
            std::mem::forget(ws);
        }
        Command::Explain(ExplainArgs { node }) => {
            let ws = Workspace::open(root, &dirs)?;
            print_diags(&ws.warnings);
            let Some(ix) = ws.plan.find(&node) else {
                return Err(bad_input(format!(
                    "unknown node `{node}`{}",
                    ov::diag::did_you_mean(&node, ws.plan.names())
                )));
            };
            let n = &ws.plan.graph[ix];
            writeln!(out, "{} ({})", n.id, n.kind)?;
            writeln!(out, "key {}", ws.keys.keys[ix.index()])?;
            writeln!(out, "ingredients:")?;
            for ing in &ws.keys.manifests[ix.index()].entries {
                writeln!(out, "  {}  {}", &ing.digest[..16], ing.name)?;
            }
            if n.kind == ov_rules::NodeKind::Layer {
                writeln!(
                    out,
                    "impure: package repositories and `download:` URLs are read at build time and are not part of the key"
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
