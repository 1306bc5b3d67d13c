//! The `ov` binary: parses arguments, calls the library, maps errors to
//! exit codes (0 ok, 1 build failed, 2 bad input) in one place.

use clap::Parser;
use ov::cli::{
    BuildArgs, CacheCmd, Cli, Command, ExplainArgs, GraphArgs, ImageCmd, LockArgs, SettingsCmd,
};
use ov::diag::{Diagnostics, InvalidProject};
use ov::graph::{self, View};
use ov::workspace::{load_valid, unknown_image, Dirs, Workspace};
use ov_cache::Digest;
use std::fmt::Write as _;
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
            eprintln!("error: {}", ov_cache::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn print_diags(d: &Diagnostics) {
    let _ = std::io::stderr().write_all(diags_text(d).as_bytes());
}

/// What [`print_diags`] prints: one line per item, secrets masked.
fn diags_text(d: &Diagnostics) -> String {
    let mut text = String::new();
    for item in d.items() {
        let _ = writeln!(text, "{item}");
    }
    ov_cache::redact(&text)
}

fn bad_input(msg: String) -> anyhow::Error {
    let mut d = Diagnostics::default();
    d.error(None, msg);
    InvalidProject(d).into()
}

/// A cache dir that is a file, or lies under one, would fail deep in the
/// store with a bare "Not a directory"; it is a setting to fix, so the
/// message names the setting.
fn cache_dir_usable(dirs: &Dirs) -> anyhow::Result<()> {
    let not_dir = match std::fs::metadata(&dirs.cache) {
        Ok(meta) => !meta.is_dir(),
        Err(e) => e.kind() == std::io::ErrorKind::NotADirectory,
    };
    if not_dir {
        return Err(bad_input(format!(
            "the cache dir {} is not a directory (or lies under a file); point --cache-dir \
             (or OV_CACHE_DIR) at a folder",
            dirs.cache.display()
        )));
    }
    Ok(())
}

/// The user's settings; a file that is not JSON is bad input (exit 2).
fn load_settings() -> anyhow::Result<ov::settings::Settings> {
    ov::settings::Settings::load().map_err(|e| match e {
        ov::settings::SettingsError::Syntax { .. }
        | ov::settings::SettingsError::BadFileValue { .. } => bad_input(e.to_string()),
        e => e.into(),
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env(cli.cache_dir.clone());
    let root = &cli.dir;
    if matches!(
        cli.command,
        Command::Build(_) | Command::Image(ImageCmd::Build(_)) | Command::Cache(_)
    ) {
        cache_dir_usable(&dirs)?;
    }
    // Not locked for the whole command: progress writes to stdout from
    // worker threads during a build.
    let mut out = std::io::stdout();
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
        Command::Build(BuildArgs {
            targets,
            dry_run: true,
            refresh,
            ..
        }) => {
            // A no-op dry run replays the last one's output once it has
            // checked, by stats alone, that none of its inputs changed.
            // `--refresh` names must be checked against a plan, so it plans.
            let memo = ov::memo::Memo::new(root, &dirs, &targets);
            let replay = if refresh.is_empty() {
                memo.replay()
            } else {
                None
            };
            if let Some(replay) = replay {
                std::io::stderr().write_all(replay.stderr.as_bytes())?;
                out.write_all(replay.stdout.as_bytes())?;
                return Ok(ExitCode::SUCCESS);
            }
            let ws = open_predicted(root, &dirs)?;
            let warnings = diags_text(&ws.warnings);
            std::io::stderr().write_all(warnings.as_bytes())?;
            let nodes = ws.select(&targets)?;
            let refresh = ws.refresh_set(&refresh)?;
            let mut buf = String::with_capacity(nodes.len() * 64);
            let mut would_run = 0;
            for &ix in &nodes {
                let n = &ws.plan.graph[ix];
                let status = if refresh.contains(&ix) {
                    would_run += 1;
                    "run"
                } else if ws.cached.contains(&ix) {
                    "cached"
                } else if ws.checked.contains(&ix) {
                    "check"
                } else {
                    would_run += 1;
                    "run"
                };
                let _ = writeln!(
                    buf,
                    "{:<6} {:<12} {} {}",
                    status,
                    n.kind.as_str(),
                    ws.keys.keys[ix.index()].short(12),
                    n.id
                );
            }
            let _ = writeln!(buf, "{would_run} nodes would run");
            out.write_all(buf.as_bytes())?;
            if refresh.is_empty() {
                memo.save(&ws, &buf, &warnings);
            }
            std::mem::forget(ws);
        }
        Command::Build(args) => return build(root, &dirs, args, false),
        Command::Image(ImageCmd::Build(args)) => {
            // ov's own verb: the named images (all when none), through the
            // same graph as `ov build`.
            if args.dry_run {
                return Err(bad_input(
                    "use `ov build --dry-run` to see what would run".into(),
                ));
            }
            return build(root, &dirs, args, true);
        }
        Command::Cache(cmd) => {
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
        }
        Command::Settings(cmd) => {
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
            r.map_err(|e| bad_input(e.to_string()))?;
        }
        Command::Lock(LockArgs { update, refs }) => {
            let (project, warnings) = load_valid(root, &dirs)?;
            print_diags(&warnings);
            let settings = load_settings()?;
            let endpoint = engine_endpoint(&settings)?;
            let rt = tokio::runtime::Runtime::new()?;
            let lock = rt.block_on(ov::lockcmd::lock(&project, &endpoint, update, &refs))?;
            for (r, id) in &lock.base {
                writeln!(out, "{r} {id}")?;
            }
        }
        Command::Doctor => {
            let settings = load_settings()?;
            let endpoint = engine_endpoint(&settings)?;
            let kind = settings.get("engine.kind")?;
            let rt = tokio::runtime::Runtime::new()?;
            let findings = rt.block_on(ov::doctor::run(&endpoint, &kind, &dirs.cache));
            let mut bad = 0;
            for f in &findings {
                let line = format!(
                    "{} {}: {}",
                    if f.ok { "ok  " } else { "FAIL" },
                    f.what,
                    f.detail
                );
                writeln!(out, "{}", ov_cache::redact(&line))?;
                if let Some(fix) = &f.fix {
                    bad += 1;
                    writeln!(out, "     fix: {}", ov_cache::redact(fix))?;
                }
            }
            if bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Image(ImageCmd::Generate { name }) => {
            let ws = Workspace::open(root, &dirs)?;
            print_diags(&ws.warnings);
            ws.image(&name)?;
            // The build's own quirks: generate prints what a build sends.
            let opts = ov_rules::exec::EngineQuirks::for_build().render_opts();
            let text = ov::generate::generate(&ws, &name, &opts)?;
            out.write_all(text.as_bytes())?;
        }
        Command::Explain(ExplainArgs { node }) => {
            let ws = open_predicted(root, &dirs)?;
            print_diags(&ws.warnings);
            let Some(ix) = ws.plan.find(&node) else {
                return Err(bad_input(format!(
                    "unknown node `{node}`{}",
                    ov::diag::did_you_mean(&node, ws.plan.names())
                )));
            };
            let n = &ws.plan.graph[ix];
            let key = &ws.keys.keys[ix.index()];
            let manifest = &ws.keys.manifests[ix.index()];
            writeln!(out, "{} ({})", n.id, n.kind)?;
            writeln!(out, "key {key}")?;
            writeln!(out, "ingredients:")?;
            for ing in &manifest.entries {
                writeln!(out, "  {}  {}", &ing.digest[..16], ing.name)?;
            }
            let label = format!("{} {}", n.kind, n.label);
            match ws.last(ix) {
                _ if ws.cached.contains(&ix) => {
                    writeln!(out, "{label}: cached (this key was built before)")?
                }
                None => writeln!(out, "{label}: will run (never built with this cache)")?,
                Some((old_key, old)) => {
                    let changes =
                        ov::explain::diff(&old.manifest, manifest, old.meta.get("spec"), &n.spec);
                    // One line per change, as `ninja -d explain` does.
                    writeln!(
                        out,
                        "{label}: will run (last run had key {})",
                        old_key.short(12)
                    )?;
                    if changes.is_empty() {
                        writeln!(
                            out,
                            "{label}: nothing it names changed, but its result is no longer in the cache"
                        )?;
                    }
                    for c in changes {
                        writeln!(out, "{label}: {c}")?;
                    }
                }
            }
            if n.kind == ov_rules::NodeKind::Layer {
                writeln!(
                    out,
                    "impure: package repositories and `download:` URLs are read at build time and are not part of the key (use `ov build --refresh {}`)",
                    n.id
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ov build` (not a dry run); `images_only` for `ov image build`, whose
/// targets are image names (all enabled images when none).
fn build(
    root: &std::path::Path,
    dirs: &Dirs,
    mut args: BuildArgs,
    images_only: bool,
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(root, dirs)?;
    print_diags(&ws.warnings);
    if images_only {
        for t in &args.targets {
            ws.image(t)?;
        }
        if args.targets.is_empty() {
            args.targets = ws
                .resolved
                .values()
                .filter(|r| r.enabled)
                .map(|r| r.name.clone())
                .collect();
        }
    }
    let settings = load_settings()?;
    let jobs = match args.jobs {
        Some(j) => j,
        None => match settings.get("build.jobs")?.parse::<usize>().unwrap_or(0) {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            j => j,
        },
    };
    let opts = ov::build::BuildOptions {
        jobs,
        keep_going: args.keep_going,
        progress: args.progress,
        endpoint: engine_endpoint(&settings)?,
        refresh: args.refresh,
        image_check: settings
            .get("engine.image_check")?
            .parse()
            .map_err(bad_input)?,
    };
    let outcome = ov::build::run(ws, dirs, &args.targets, &opts)?;
    if outcome.interrupted {
        eprintln!(
            "interrupted: the containers this run started were removed; \
             everything finished before Ctrl-C is cached"
        );
        return Ok(ExitCode::from(130));
    }
    if outcome.summary.failed > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine endpoint: `DOCKER_HOST`, else the `engine.socket` setting.
fn engine_endpoint(settings: &ov::settings::Settings) -> anyhow::Result<String> {
    let socket = settings.get("engine.socket")?;
    Ok(ov_rules::engine::Engine::endpoint(Some(&socket)))
}

/// The workspace with keys predicted from the store: what the next build
/// would find cached.
fn open_predicted(root: &std::path::Path, dirs: &Dirs) -> anyhow::Result<ov::predict::Predicted> {
    let ws = Workspace::open(root, dirs)?;
    ov::predict::predict(ws, dirs)
}
