//! What a build shows while it runs: one line per running node with its
//! elapsed time and an estimate from history (indicatif, on a terminal),
//! plain lines otherwise, or one JSON object per line (`--progress json`)
//! for machines. Human output goes to stderr; JSON to stdout. Every line
//! and every JSON string passes [`ov_cache::redact`] on its way out.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// How to show progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A live display on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines.
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

/// The closing figures of a build.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Nodes that ran.
    pub built: usize,
    /// Nodes found in the local cache.
    pub cached_local: usize,
    /// Nodes found in a remote cache.
    pub cached_remote: usize,
    /// Nodes that failed.
    pub failed: usize,
    /// Nodes not run because a dependency failed or the build stopped.
    pub skipped: usize,
    /// Engine builds (Containerfile builds and imports) this run started.
    pub engine_builds: usize,
    /// Images of cache hits put back into the engine from their OCI parts
    /// in the cache (not builds: nothing ran).
    pub images_restored: usize,
    /// Container engine API calls this run made for itself (the connect
    /// included).
    pub engine_calls: usize,
    /// Engine calls spent removing what earlier runs whose process is gone
    /// left behind.
    pub cleanup_calls: usize,
    /// What the cached nodes took when they were built.
    pub time_saved_ms: u64,
    /// Wall time of the build.
    pub elapsed_ms: u64,
    /// The remote cache's figures, when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::run::remote::RemoteCounts>,
    /// Where the build's plan came from.
    pub plan: PlanSource,
}

/// Where a build's plan came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanSource {
    /// The project was loaded, validated and planned.
    #[default]
    Full,
    /// The last build's plan, read back: the project's structure was
    /// unchanged (see `plan::saved`).
    Saved,
}

/// The display.
pub struct Progress {
    mode: Mode,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    lock: Mutex<()>,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Progress {
    /// A display in `mode`.
    pub fn new(mode: Mode) -> Self {
        let tty = mode == Mode::Auto && std::io::stderr().is_terminal();
        Progress {
            mode,
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
            lock: Mutex::new(()),
        }
    }

    fn json(&self, mut v: serde_json::Value) {
        ov_cache::redact_json(&mut v);
        let _g = self.lock.lock();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    fn plain(&self, line: &str) {
        let line = &ov_cache::redact(line);
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let _g = self.lock.lock();
                eprintln!("{line}");
            }
        }
    }

    /// A node started.
    pub fn started(&self, id: &str, kind: &str, estimate: Option<Duration>) {
        match self.mode {
            Mode::Json => self.json(json!({"event": "start", "node": id, "kind": kind,
                "estimate_ms": estimate.map(|d| d.as_millis() as u64)})),
            _ => match &self.multi {
                Some(m) => {
                    let style = ProgressStyle::with_template("{spinner} {prefix} [{elapsed}{msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    let bar = m.add(ProgressBar::new_spinner().with_style(style));
                    bar.set_prefix(id.to_string());
                    bar.set_message(match estimate {
                        Some(e) => format!(" of ~{}]", secs(e)),
                        None => "]".into(),
                    });
                    bar.enable_steady_tick(Duration::from_millis(200));
                    if let Ok(mut b) = self.bars.lock() {
                        b.insert(id.to_string(), bar);
                    }
                }
                None => self.plain(&format!(
                    "start   {id}{}",
                    estimate.map_or(String::new(), |e| format!(" (~{})", secs(e)))
                )),
            },
        }
    }

    /// A line of a node's output (shown on a terminal only).
    pub fn line(&self, id: &str, line: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(id).cloned()) {
            let short: String = ov_cache::redact(line.trim()).chars().take(60).collect();
            bar.set_message(format!("] {short}"));
        }
    }

    fn finish_bar(&self, id: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(id)) {
            bar.finish_and_clear();
        }
    }

    /// A node finished; `outcome` is built, cached or checked.
    pub fn finished(&self, id: &str, outcome: &str, took: Duration) {
        self.finish_bar(id);
        match self.mode {
            Mode::Json => self.json(json!({"event": "finish", "node": id, "outcome": outcome,
                "duration_ms": took.as_millis() as u64})),
            _ => self.plain(&format!("{outcome:<8}{id} ({})", secs(took))),
        }
    }

    /// A node failed.
    pub fn failed(&self, id: &str, error: &str, output: &str) {
        self.finish_bar(id);
        match self.mode {
            Mode::Json => {
                self.json(json!({"event": "fail", "node": id, "error": error, "output": output}))
            }
            _ => {
                let mut text = format!("FAILED {id}: {error}");
                if !output.trim().is_empty() {
                    let tail: Vec<&str> = output.lines().rev().take(40).collect();
                    text.push_str("\n  output (last lines):");
                    for l in tail.into_iter().rev() {
                        text.push_str("\n  | ");
                        text.push_str(l);
                    }
                }
                self.plain(&text)
            }
        }
    }

    /// A node did not run.
    pub fn skipped(&self, id: &str, why: &str) {
        match self.mode {
            Mode::Json => self.json(json!({"event": "skip", "node": id, "reason": why})),
            _ => self.plain(&format!("skip    {id}: {why}")),
        }
    }

    /// Something the user should know that does not stop the build.
    pub fn warn(&self, message: &str) {
        match self.mode {
            Mode::Json => self.json(json!({"event": "warning", "message": message})),
            _ => self.plain(&format!("warning: {message}")),
        }
    }

    /// The closing summary.
    pub fn summary(&self, s: &Summary) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        match self.mode {
            Mode::Json => {
                let mut v = serde_json::Map::new();
                v.insert("event".into(), json!("summary"));
                if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(s) {
                    v.extend(o);
                }
                self.json(serde_json::Value::Object(v))
            }
            _ => self.plain(&format!(
                "{} built, {} cached ({} local, {} remote), {} failed, {} skipped in {}; \
                 {} saved by the cache{}",
                s.built,
                s.cached_local + s.cached_remote,
                s.cached_local,
                s.cached_remote,
                s.failed,
                s.skipped,
                secs(Duration::from_millis(s.elapsed_ms)),
                secs(Duration::from_millis(s.time_saved_ms)),
                s.remote.as_ref().map_or(String::new(), |r| format!(
                    "; remote cache: {} hits, {} misses, {} errors, {} uploads, {} down, {} up",
                    r.hits,
                    r.misses,
                    r.errors,
                    r.uploads,
                    ov_cache::format_size(r.bytes_down),
                    ov_cache::format_size(r.bytes_up),
                )),
            )),
        }
    }
}
