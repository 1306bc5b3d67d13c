//! `ov build` and `ov image build`: run the graph, or say what a run would
//! do (`--dry-run`).

use super::{bad_input, diags_text, engine_endpoint, load_settings, open_predicted, print_diags};
use crate::cli::BuildArgs;
use crate::plan::memo;
use crate::plan::saved::{Restored, SavedPlan};
use crate::run::progress::PlanSource;
use crate::workspace::{Dirs, Workspace};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// `ov build --dry-run`: every node the targets need, in dependency order,
/// with what the next build would do with it.
pub fn dry_run(
    root: &Path,
    dirs: &Dirs,
    targets: &[String],
    refresh: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // The memo answers when the project's structure is unchanged: by stats
    // alone when nothing changed, else by re-keying what an edit of layer
    // files reaches. `--refresh` names must be checked against a plan, so
    // it plans.
    let memo = memo::Memo::new(root, dirs, targets);
    let replay = if refresh.is_empty() {
        let _t = crate::diag::phase("memo replay");
        memo.replay()
    } else {
        None
    };
    if let Some(replay) = replay {
        std::io::stderr().write_all(replay.stderr.as_bytes())?;
        out.write_all(replay.stdout.as_bytes())?;
        return Ok(());
    }
    let ws = open_predicted(root, dirs)?;
    let warnings = diags_text(&ws.warnings);
    std::io::stderr().write_all(warnings.as_bytes())?;
    let nodes = ws.plan.select(targets)?;
    let refresh = ws.plan.refresh_set(refresh)?;
    let mut buf = String::with_capacity(nodes.len() * 64);
    let mut would_run = 0;
    for &ix in &nodes {
        let n = &ws.plan.graph[ix];
        let (word, runs) = memo::status(
            refresh.contains(&ix),
            ws.cached.contains(&ix),
            ws.checked.contains(&ix),
        );
        would_run += usize::from(runs);
        memo::line(
            &mut buf,
            word,
            n.kind().as_str(),
            &ws.keys.keys[ix.index()],
            &n.id,
        );
    }
    memo::summary(&mut buf, would_run);
    out.write_all(buf.as_bytes())?;
    if refresh.is_empty() {
        let _t = crate::diag::phase("memo save");
        memo.save(&ws, &nodes, &warnings);
    }
    // Freeing a large plan costs more than printing it; the process is
    // about to exit anyway.
    std::mem::forget(ws);
    Ok(())
}

/// `ov build` (not a dry run); `images_only` for `ov image build`, whose
/// targets are image names (all enabled images when none). Exits 1 when a
/// node failed, 130 when interrupted.
pub fn build(
    root: &Path,
    dirs: &Dirs,
    mut args: BuildArgs,
    images_only: bool,
) -> anyhow::Result<ExitCode> {
    if images_only && args.dry_run {
        return Err(bad_input(
            "use `ov build --dry-run` to see what would run".into(),
        ));
    }
    // While the project's structure is unchanged, the last build's plan
    // is this one's: read it back rather than plan again. `ov image
    // build` names images, which only a loaded project resolves.
    let saved = SavedPlan::new(root, dirs);
    let restored = if images_only { None } else { saved.load() };
    let (ws, keeping, plan) = match restored {
        Some(Restored {
            planned,
            warnings,
            rewrite,
        }) => {
            std::io::stderr().write_all(warnings.as_bytes())?;
            let keeping = rewrite.map(|r| std::thread::spawn(move || r.write()));
            (Arc::new(planned), keeping, PlanSource::Saved)
        }
        None => {
            // The run keys each node as its dependencies finish.
            let ws = Workspace::open_unkeyed(root, dirs)?;
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
            let warnings = diags_text(&ws.warnings);
            let (planned, project) = ws.into_planned();
            let ws = Arc::new(planned);
            // Kept while the build runs, off its path.
            let keep = ws.clone();
            let keeping = std::thread::spawn(move || saved.save(&project, &keep, &warnings));
            (ws, Some(keeping), PlanSource::Full)
        }
    };
    for t in &args.targets {
        if let Some((img, vm)) = ws.plan.shared_name(t) {
            eprintln!(
                "note: `{t}` names an image and a VM: building both ({} and {}); name a node id \
                 to build one",
                ws.plan.graph[img].id, ws.plan.graph[vm].id
            );
        }
    }
    if let Some(path) = &args.graph_out {
        // Said before a long build runs, not after it.
        graph_out_usable(path).map_err(bad_input)?;
    }
    let settings = load_settings()?;
    let jobs = match args.jobs {
        Some(j) => j,
        None => match settings.get("build.jobs")?.parse::<usize>().unwrap_or(0) {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            j => j,
        },
    };
    let opts = crate::run::BuildOptions {
        jobs,
        keep_going: args.keep_going,
        progress: args.progress,
        endpoint: engine_endpoint(&settings)?,
        refresh: args.refresh.clone(),
        image_check: settings
            .get("engine.image_check")?
            .parse()
            .map_err(bad_input)?,
        vm_ram_mib: super::configure_vm_host(&settings)?,
        image_cache: match &args.image_cache {
            Some(url) => Some(std::sync::Arc::new(
                crate::run::image_cache::ImageCache::new(url, args.image_cache_mode)
                    .map_err(|e| bad_input(format!("--image-cache: {e}")))?,
            )),
            None => None,
        },
        remote: remote_options(&args.remote, &settings)?,
        plan,
    };
    let outcome = crate::run::run(ws, dirs, &args.targets, &opts);
    if let Some(keeping) = keeping {
        let _ = keeping.join();
    }
    let outcome = outcome?;
    if let Some(path) = &args.graph_out {
        write_graph(&outcome, path)?;
    }
    let (interrupted, failed) = (outcome.interrupted, outcome.summary.failed);
    // Freeing a large plan costs more than the process has left to do.
    std::mem::forget(outcome);
    if interrupted {
        eprintln!(
            "interrupted: the containers this run started were removed; \
             everything finished before Ctrl-C is cached"
        );
        return Ok(ExitCode::from(130));
    }
    if failed > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `--graph-out PATH` can be written: not a directory, and its
/// folder exists or can be made.
fn graph_out_usable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("--graph-out {}: is a directory", path.display()));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| format!("--graph-out {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `--graph-out`: the page of what the build did.
fn write_graph(outcome: &crate::run::Outcome, path: &Path) -> anyhow::Result<()> {
    let sh = &outcome.shared;
    let keys = sh.run_keys.lock().map(|k| k.clone()).unwrap_or_default();
    let doc = crate::graph::doc::after_build(
        &sh.ws.plan,
        &crate::plan::keys::Keys::default(),
        &outcome.order,
        &outcome.record,
        &keys,
    );
    let page = crate::graph::render(&doc, crate::graph::Format::Html);
    super::write_named_output(path, page.as_bytes())?;
    Ok(())
}

/// The remote cache, from the flags (or their variables), else the
/// settings; credentials and the signing key from the environment.
pub(super) fn remote_options(
    args: &crate::cli::RemoteCacheArgs,
    settings: &crate::settings::Settings,
) -> anyhow::Result<Option<crate::run::remote::RemoteOptions>> {
    let (url, mode, ca) = (
        &args.remote_cache,
        &args.remote_cache_mode,
        &args.remote_cache_ca,
    );
    let url = match url {
        Some(u) => u.clone(),
        None => settings.get("cache.remote")?,
    };
    let mode = match mode {
        Some(m) => m.clone(),
        None => settings.get("cache.remote_mode")?,
    };
    let mode = mode
        .parse()
        .map_err(|e: String| bad_input(format!("remote cache mode: {e}")))?;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let opts = crate::run::remote::options(Some(&url), mode, ca.clone(), &var)
        .map_err(|e| bad_input(ov_cache::redact(&e)))?;
    // A CA file that is missing or not PEM is a setting to fix, said
    // before anything builds.
    if let Some(o) = &opts {
        ov_cache::remote::RemoteCache::new(o.config.clone())
            .map_err(|e| bad_input(ov_cache::redact(&e.to_string())))?;
    }
    Ok(opts)
}
