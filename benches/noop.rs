//! No-op build benchmark (cargo bench --bench noop, or bench/noop.sh).
//!
//! Generates a project of 200 layers (one tiny file each, copied in; ten
//! images of twenty layers on `localhost/bookworm-minbase:1`), builds it for
//! real once against the podman service, then times no-op `ov build`s and
//! reads the engine calls each made from its `--progress json` summary.
//!
//! Targets: a no-op build under 0.2 s (median) and never more than 3 engine
//! calls when nothing changed (every run, not the median). For context it
//! also times the engine's image list call alone, which a no-op waits for.
//!
//! Environment: `OV_BENCH_SCALE` (default 1.0; 0.05 → 10 layers) shrinks
//! the project for a smoke run; `OV_BENCH_RUNS` (default 15) sets the timed
//! runs; `OV_BENCH_KEEP=1` keeps the generated directory and the image
//! tags; `OV_BENCH_STRICT=1` exits 1 when a target is missed. `DOCKER_HOST`
//! picks the engine as it does for ov.

mod common;
use common::{env_num, have, median, ms, ov_binary, verdict};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Layers per image: podman's overlay driver stacks at most ~125 layers.
const PER_IMAGE: usize = 20;
const TARGET: Duration = Duration::from_millis(200);
const MAX_CALLS: u64 = 3;
const REGISTRY: &str = "localhost/ov-bench-noop";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes `layers` layers in images of [`PER_IMAGE`] into `root`; returns
/// the image names.
fn generate(root: &Path, layers: usize) -> Vec<String> {
    write(
        &root.join("overthink.yml"),
        &format!(
            "version: 2026.141.1600\n\
             include: [image.yml, build.yml]\n\
             discover:\n  layer:\n    - path: layers\n      recursive: true\n\
             defaults:\n  registry: {REGISTRY}\n  build: [deb]\n  distro: [debian:12, debian]\n  tag: bench\n"
        ),
    );
    write(
        &root.join("build.yml"),
        "version: 2026.141.1600\n\
         distro:\n  debian:\n    format:\n      deb:\n        install_template: \"RUN apt-get install -y{{range .Packages}} {{.}}{{end}}\"\n",
    );
    let mut images = String::from("version: 2026.141.1600\nimage:\n");
    let mut names = Vec::new();
    for i in 0..layers {
        let name = format!("l{i:04}");
        let dir = root.join("layers").join(&name);
        let require = if i % PER_IMAGE == 0 {
            String::new()
        } else {
            format!("  require: [l{:04}]\n", i - 1)
        };
        write(
            &dir.join("layer.yml"),
            &format!(
                "layer:\n{require}  task:\n    - copy: f.txt\n      to: /opt/bench/{name}.txt\n"
            ),
        );
        write(&dir.join("f.txt"), &format!("{name}\n"));
        if i % PER_IMAGE == PER_IMAGE - 1 || i == layers - 1 {
            let image = format!("i{:02}", i / PER_IMAGE);
            images.push_str(&format!(
                "  {image}:\n    base: localhost/bookworm-minbase:1\n    layer: [{name}]\n"
            ));
            names.push(image);
        }
    }
    write(&root.join("image.yml"), &images);
    names
}

/// One `ov build --progress json`: wall time, and the summary's figures.
fn build(ov: &Path, project: &Path, cache: &Path) -> (Duration, serde_json::Value) {
    build_with(ov, project, cache, None)
}

/// [`build`] with the `engine.image_check` settings in `config` (an
/// `OV_CONFIG_DIR`), or the user's settings when `None`.
fn build_with(
    ov: &Path,
    project: &Path,
    cache: &Path,
    config: Option<&Path>,
) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let mut cmd = Command::new(ov);
    if let Some(c) = config {
        cmd.env("OV_CONFIG_DIR", c);
    }
    let out = cmd
        .arg("-C")
        .arg(project)
        .arg("--cache-dir")
        .arg(cache)
        .args(["build", "--progress", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "ov build failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|e| e["event"] == "summary")
        .expect("no summary event");
    (took, summary)
}

/// Removes the images the bench built (every image list on the machine
/// pays for each image the engine holds): those whose node label is one of
/// the bench's node ids.
fn remove_images(images: &[String], layers: usize) {
    let mut ids: std::collections::HashSet<String> =
        images.iter().map(|i| format!("image:{i}")).collect();
    for i in 0..layers {
        ids.insert(format!("layer:l{i:04}@{}", images[i / PER_IMAGE]));
    }
    let Ok(out) = Command::new("podman")
        .args([
            "images",
            "--format",
            "{{.ID}} {{index .Labels \"org.overthinkos.ov.node\"}}",
        ])
        .output()
    else {
        return;
    };
    let mine: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, node)| ids.contains(*node))
        .map(|(id, _)| id.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let tags: Vec<String> = images
        .iter()
        .map(|i| format!("{REGISTRY}/{i}:bench"))
        .collect();
    let _ = Command::new("podman").arg("rmi").args(&tags).output();
    if !mine.is_empty() {
        let _ = Command::new("podman").arg("rmi").args(&mine).output();
    }
}

/// The engine's socket, as ov picks it (`DOCKER_HOST`, else podman's).
fn socket() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///run/podman/podman.sock".into())
        .trim_start_matches("unix://")
        .to_string()
}

/// The wall time of one bare image list call (`curl`), for context: the
/// floor under a no-op build that checks its images with that call.
fn list_call() -> Option<Duration> {
    let t = Instant::now();
    let ok = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--unix-socket", &socket()])
        .arg("http://d/v1.41/images/json")
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| t.elapsed())
}

fn main() {
    let scale: f64 = env_num("OV_BENCH_SCALE").unwrap_or(1.0);
    let runs: usize = env_num("OV_BENCH_RUNS").unwrap_or(15).max(1);
    let layers = ((200.0 * scale).round() as usize).max(1);
    let ov = ov_binary();
    let root = tempfile::TempDir::with_prefix("ov-bench-noop-").unwrap();
    let (project, cache) = (root.path().join("project"), root.path().join("cache"));
    let images = generate(&project, layers);

    let (cold, summary) = build(&ov, &project, &cache);
    println!(
        "cold build of {layers} layers in {} images: {:.1} s, {} nodes built, {} engine calls",
        images.len(),
        cold.as_secs_f64(),
        summary["built"],
        summary["engine_calls"]
    );
    // Both ways of checking the engine, interleaved: one image list
    // (`list`), and one inspect per cached node (`each`, what `auto` picks
    // on podman before 5).
    let config = |how: &str| {
        let dir = root.path().join(format!("config-{how}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("settings.json"),
            format!("{{\"engine.image_check\": \"{how}\"}}"),
        )
        .unwrap();
        dir
    };
    let (list_cfg, each_cfg) = (config("list"), config("each"));
    let mut times = Vec::new();
    let mut each_times = Vec::new();
    let mut lists = Vec::new();
    let mut worst_calls = 0;
    let mut each_calls = 0;
    for _ in 0..runs {
        lists.extend(list_call());
        let (t, s) = build_with(&ov, &project, &cache, Some(&list_cfg));
        assert_eq!(s["built"], 0, "a no-op build built something: {s}");
        worst_calls = worst_calls.max(s["engine_calls"].as_u64().unwrap_or(u64::MAX));
        times.push(t);
        let (t, s) = build_with(&ov, &project, &cache, Some(&each_cfg));
        assert_eq!(s["built"], 0, "a no-op build built something: {s}");
        each_calls = each_calls.max(s["engine_calls"].as_u64().unwrap_or(0));
        each_times.push(t);
    }
    let each_med = median(&mut each_times);
    let med = median(&mut times);
    println!(
        "no-op build checking each node (engine.image_check=each), median of {runs}: {:.1} ms, \
         {each_calls} engine calls; one list (=list) takes {:.2}× its time",
        ms(each_med),
        med.as_secs_f64() / each_med.as_secs_f64().max(1e-9)
    );
    let time_ok = med < TARGET;
    let calls_ok = worst_calls <= MAX_CALLS;
    println!(
        "no-op build with one image list (engine.image_check=list), median of {runs}: {:.1} ms (target < {} ms) {}",
        ms(med),
        TARGET.as_millis(),
        verdict(time_ok)
    );
    if !lists.is_empty() {
        println!(
            "the engine's image list call alone (curl), median of {}: {:.1} ms",
            lists.len(),
            ms(median(&mut lists))
        );
    }
    println!(
        "engine calls per no-op build, most seen: {worst_calls} (target ≤ {MAX_CALLS}) {}",
        verdict(calls_ok)
    );

    if std::env::var_os("OV_BENCH_KEEP").is_some() {
        println!("kept {}", root.keep().display());
    } else if have("podman") {
        remove_images(&images, layers);
    }
    if !(time_ok && calls_ok) && std::env::var_os("OV_BENCH_STRICT").is_some() {
        std::process::exit(1);
    }
}
