//! Commands and flags: `graph` formats, `build --dry-run` and target
//! selection, `explain`, how keys react to edits and to repeated runs, and
//! which cache dir is used.

use crate::util::{backdate, dir_names, shared_fixture, Graph, Ov, Project};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

const FIXTURES: [&str; 4] = ["eval-beds", "pods", "base-stack", "bootc"];

#[test]
fn dot_output_renders_with_graphviz() {
    // Graphviz is a test dependency: a missing `dot` must fail, not skip.
    let probe = Command::new("dot").arg("-V").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "graphviz `dot` is not installed; run the project's setup script \
         (.ci/run, which installs graphviz) or `apt-get install graphviz`"
    );
    for f in FIXTURES {
        let ov = Ov::new(&shared_fixture(f));
        let dot = ov.ok(&["graph", "--format", "dot"]).stdout;
        assert!(dot.starts_with("digraph"), "{f}: {dot}");
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{f}: dot -Tsvg failed: {stderr}\n{dot}"
        );
        let svg = String::from_utf8_lossy(&out.stdout);
        assert!(svg.contains("<svg"), "{f}: no svg");
        // Every node of the plan is drawn.
        let graph = ov.graph(&[]);
        assert_eq!(
            svg.matches("class=\"node\"").count(),
            graph.nodes.len(),
            "{f}"
        );
        assert_eq!(
            svg.matches("class=\"edge\"").count(),
            graph.edges.len(),
            "{f}"
        );
    }
}

#[test]
fn dot_is_the_default_format() {
    let ov = Ov::new(&shared_fixture("pods"));
    assert_eq!(
        ov.ok(&["graph"]).stdout,
        ov.ok(&["graph", "--format", "dot"]).stdout
    );
}

/// `-o` names where the output goes, not a file ov may replace: a link
/// keeps pointing where it did (its target gets the graph), and a device
/// or pipe is written through (`-o /dev/stdout`), never renamed over.
#[test]
fn graph_output_goes_through_links_and_devices_without_replacing_them() {
    use std::os::unix::fs::FileTypeExt;
    let ov = Ov::new(&shared_fixture("pods"));
    let dot = ov.ok(&["graph", "--format", "dot"]).stdout;
    let dir = tempfile::tempdir().unwrap();

    let target = dir.path().join("graph.dot");
    let link = dir.path().join("latest.dot");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ov.ok(&["graph", "--format", "dot", "-o", link.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), dot);

    // A device of our own (/dev/null's numbers), so a regression replaces
    // a node in a temp dir, not the machine's /dev/null.
    let null = dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod (tests run as root)");
    ov.ok(&["graph", "--format", "dot", "-o", null.to_str().unwrap()]);
    let ft = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(ft.is_char_device(), "the device was replaced: {ft:?}");
    // The way people write to standard output: through /proc's links to a
    // pipe.
    let piped = ov.ok(&["graph", "--format", "dot", "-o", "/dev/stdout"]);
    assert_eq!(piped.stdout, dot);
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(strays.is_empty(), "temp files left: {strays:?}");
}

#[test]
fn mermaid_output_is_a_flowchart() {
    for f in FIXTURES {
        let ov = Ov::new(&shared_fixture(f));
        let m = ov.ok(&["graph", "--format", "mermaid"]).stdout;
        assert!(m.starts_with("flowchart"), "{f}: {m}");
        let graph = ov.graph(&[]);
        assert_eq!(m.matches(" --> ").count(), graph.edges.len(), "{f}");
    }
}

#[test]
fn graph_targets_select_a_subgraph() {
    let ov = Ov::new(&shared_fixture("pods"));
    let all = ov.graph(&[]);
    let os = ov.graph(&["os"]);
    assert_eq!(os.ids(), all.ancestors("image:os"));
}

#[test]
fn dry_run_prints_every_node_once_in_order() {
    for f in FIXTURES {
        let ov = Ov::new(&shared_fixture(f));
        let graph = ov.graph(&[]);
        let run = ov.ok(&["build", "--dry-run"]);
        let lines = run.lines();
        assert_eq!(lines.len(), graph.nodes.len() + 1, "{f}:\n{}", run.stdout);
        assert_eq!(
            *lines.last().unwrap(),
            format!("{} nodes would run", graph.nodes.len()),
            "{f}"
        );
        let ids = dry_run_ids(&run.stdout);
        assert_eq!(
            ids.iter().cloned().collect::<BTreeSet<_>>(),
            graph.ids(),
            "{f}"
        );
        assert_topological(&graph, &ids);
        // `-n` is the short spelling.
        assert_eq!(ov.ok(&["build", "-n"]).stdout, run.stdout, "{f}");
    }
}

/// The node ids of `ov build --dry-run` output, in order. Each line is
/// `run <kind> <short key> <id>`.
fn dry_run_ids(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let (summary, nodes) = lines.split_last().expect("a summary line");
    assert!(summary.ends_with("nodes would run"), "{summary}");
    nodes
        .iter()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(parts.len(), 4, "{l}");
            assert_eq!(parts[0], "run", "{l}");
            assert!(parts[3].starts_with(&format!("{}:", parts[1])), "{l}");
            assert!(
                parts[2].len() == 12 && parts[2].chars().all(|c| c.is_ascii_hexdigit()),
                "{l}"
            );
            parts[3].to_string()
        })
        .collect()
}

fn assert_topological(graph: &Graph, order: &[String]) {
    let pos = |id: &str| order.iter().position(|o| o == id);
    for (a, b) in &graph.edges {
        if let (Some(pa), Some(pb)) = (pos(a), pos(b)) {
            assert!(pa < pb, "{a} must come before {b}: {order:?}");
        }
    }
}

#[test]
fn dry_run_of_one_image_runs_only_its_ancestors() {
    let ov = Ov::new(&shared_fixture("pods"));
    let graph = ov.graph(&[]);
    let run = ov.ok(&["build", "--dry-run", "image:os"]);
    let ids = dry_run_ids(&run.stdout);
    let want = graph.ancestors("image:os");
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(
        want,
        [
            "base:quay.io/fedora/fedora:43",
            "preamble:fedora",
            "image:fedora",
            "source:layers/supervisord",
            "source:layers/os-layer",
            "layer:supervisord@os",
            "layer:os-layer@os",
            "image:os",
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>()
    );
    assert!(
        run.stdout.ends_with("8 nodes would run\n"),
        "{}",
        run.stdout
    );
    assert_topological(&graph, &ids);
    // The bare image name is an alias of its node.
    assert_eq!(ov.ok(&["build", "--dry-run", "os"]).stdout, run.stdout);
}

#[test]
fn dry_run_of_a_vm_builds_its_image_first() {
    let ov = Ov::new(&shared_fixture("bootc"));
    let ids = dry_run_ids(&ov.ok(&["build", "-n", "bootc-demo-vm"]).stdout);
    assert_eq!(ids.last().unwrap(), "boot:bootc-demo-vm");
    assert!(ids.contains(&"image:bootc-demo".to_string()));
    assert!(!ids.contains(&"eval:bootc-demo".to_string()), "{ids:?}");
}

#[test]
fn unknown_target_suggests_the_closest() {
    let ov = Ov::new(&shared_fixture("pods"));
    ov.bad(&["build", "--dry-run", "imag:os"])
        .stderr_has(&["unknown target `imag:os`", "did you mean `image:os`?"]);
    ov.bad(&["graph", "webb"])
        .stderr_has(&["unknown target `webb`", "did you mean `web`?"]);
    ov.bad(&["explain", "layer:web-layr@web"])
        .stderr_has(&["did you mean `layer:web-layer@web`?"]);
    ov.assert_only_caches();
}

#[test]
fn refresh_of_an_unknown_node_is_bad_input() {
    let ov = Ov::new(&shared_fixture("pods"));
    // Rejected before anything is built, so no engine is needed.
    ov.bad(&["build", "--refresh", "imag:os", "image:os"])
        .stderr_has(&[
            "--refresh: unknown node `imag:os`",
            "did you mean `image:os`?",
        ]);
    ov.bad(&["image", "build", "--refresh", "nope", "os"])
        .stderr_has(&["--refresh: unknown node `nope`"]);
    // A dry run checks the names too (even when its memo could replay),
    // and says that a refreshed node would run.
    ov.ok(&["build", "--dry-run", "image:os"]);
    ov.bad(&["build", "--dry-run", "--refresh", "imag:os", "image:os"])
        .stderr_has(&["--refresh: unknown node `imag:os`"]);
    let run = ov.ok(&["build", "--dry-run", "--refresh", "image:os", "image:os"]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("run ") && l.ends_with(" image:os")),
        "{}",
        run.stdout
    );
}

#[test]
fn zero_jobs_is_bad_input() {
    let ov = Ov::new(&shared_fixture("pods"));
    for flag in [&["-j", "0"][..], &["--jobs=0"][..]] {
        let mut args = vec!["build", "--dry-run"];
        args.extend_from_slice(flag);
        let run = ov.bad(&args);
        run.stderr_has(&["0"]);
        assert!(
            run.stderr.contains("--jobs") || run.stderr.contains("-j"),
            "{}",
            run.stderr
        );
    }
    ov.ok(&["build", "--dry-run", "-j", "1"]);
}

#[test]
fn explain_lists_the_ingredients_of_a_layer_node() {
    let ov = Ov::new(&shared_fixture("pods"));
    let by_id = ov.ok(&["explain", "layer:web-layer@web"]);
    let by_alias = ov.ok(&["explain", "web-layer@web"]);
    assert_eq!(by_id.stdout, by_alias.stdout);
    let graph = ov.graph(&[]);
    let key = graph.key("layer:web-layer@web");
    by_id.stdout_has(&[
        "layer:web-layer@web (layer)",
        &format!("key {key}"),
        "ingredients:",
        "  rule",
        "  spec",
        "dep source:layers/web-layer",
        // The parent is the shared supervisord application, whatever it is named.
        "dep layer:supervisord@",
        "file layers/web-layer/layer.yml",
        "impure:",
    ]);
    // A layer applied by the base chain answers to `layer@image` of every
    // image on it.
    let sup = ov.ok(&["explain", "supervisord@web"]);
    assert_eq!(
        sup.stdout,
        ov.ok(&["explain", "supervisord@redis-client"]).stdout
    );
    sup.stdout_has(&["file layers/supervisord/layer.yml"]);
}

#[test]
fn explain_of_a_bootstrap_node_says_it_reads_a_package_mirror() {
    let ov = Ov::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/hello"
    )));
    let run = ov.ok(&["explain", "bootstrap:bookworm"]);
    run.stdout_has(&[
        "bootstrap:bookworm (bootstrap)",
        "impure: the package mirror the bootstrap installs from is read at build time",
        "ov build --refresh bootstrap:bookworm",
    ]);
}

#[test]
fn editing_a_layer_changes_only_what_depends_on_it() {
    let project = Project::copy_of(&shared_fixture("pods"));
    let ov = Ov::new(project.path());
    let before = ov.graph(&[]);
    project.append("layers/web-layer/layer.yml", "# edited\n");
    let after = ov.graph(&[]);
    assert_eq!(before.ids(), after.ids());
    let changed: BTreeSet<String> = before
        .nodes
        .iter()
        .filter(|n| after.key(&n.id) != n.key)
        .map(|n| n.id.clone())
        .collect();
    let want: BTreeSet<String> = [
        "source:layers/web-layer",
        "layer:web-layer@web",
        "image:web",
        "eval:web",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(changed, want);
    for unrelated in [
        "image:os",
        "image:redis-server",
        "image:redis-client",
        "image:fedora",
    ] {
        assert_eq!(before.key(unrelated), after.key(unrelated), "{unrelated}");
    }

    // A file that is not layer.yml is an input too, and a new file counts.
    project.write("layers/os-layer/motd", "hello\n");
    let third = ov.graph(&[]);
    assert_ne!(after.key("image:os"), third.key("image:os"));
    assert_eq!(after.key("image:web"), third.key("image:web"));
    // Hidden files are inputs too: they are sent to the engine, and ov
    // copies a layer's whole directory, dotfiles included.
    project.write("layers/os-layer/.profile", "x");
    let fourth = ov.graph(&[]);
    assert_ne!(third.key("image:os"), fourth.key("image:os"));
    project.write("layers/os-layer/.config/app.conf", "y");
    assert_ne!(fourth.key("image:os"), ov.graph(&[]).key("image:os"));
    assert_eq!(third.key("image:web"), fourth.key("image:web"));
}

#[test]
fn editing_a_shared_layer_changes_every_image_on_it() {
    let project = Project::copy_of(&shared_fixture("pods"));
    let ov = Ov::new(project.path());
    let before = ov.graph(&[]);
    project.append("layers/supervisord/layer.yml", "# edited\n");
    let after = ov.graph(&[]);
    for img in ["os", "web", "redis-server", "redis-client"] {
        let id = format!("image:{img}");
        assert_ne!(before.key(&id), after.key(&id), "{id}");
    }
    assert_eq!(before.key("image:fedora"), after.key("image:fedora"));
}

#[test]
fn keys_are_stable_across_runs_and_cache_dirs() {
    for f in FIXTURES {
        // A VM's generated SSH key is state, not cache: both runs see the
        // same one, as two builds on one machine do.
        let state = tempfile::tempdir().unwrap();
        let ov = Ov::new(&shared_fixture(f)).env("OV_STATE_DIR", state.path());
        let cold = ov.graph(&[]).keys();
        // Warm: the stat and parse caches are used now.
        assert!(ov.cache_dir().join("stat-cache.v1").is_file(), "{f}");
        assert!(ov.cache_dir().join("parse-cache.v1").is_file(), "{f}");
        let warm = ov.graph(&[]).keys();
        assert_eq!(cold, warm, "{f}: second run with the same cache dir");
        // Keys never depend on what a cache dir holds.
        let other = Ov::new(&shared_fixture(f))
            .env("OV_STATE_DIR", state.path())
            .graph(&[])
            .keys();
        assert_eq!(cold, other, "{f}: a fresh cache dir");
    }
}

#[test]
fn a_no_op_dry_run_replays_its_output_until_an_input_changes() {
    let project = Project::copy_of(&shared_fixture("pods"));
    backdate(project.path());
    let ov = Ov::new(project.path());
    let first = ov.ok(&["build", "--dry-run"]).stdout;
    assert!(ov.cache_dir().join("dry-run.v2").is_file());
    assert_eq!(ov.ok(&["build", "--dry-run"]).stdout, first);
    // Another target list is another output.
    let web = ov.ok(&["build", "--dry-run", "web"]).stdout;
    assert_ne!(web, first);
    assert_eq!(ov.ok(&["build", "--dry-run", "web"]).stdout, web);
    // An edit, and a new file, each show up as a run without a memo sees them.
    project.append("layers/web-layer/layer.yml", "# edited\n");
    let edited = ov.ok(&["build", "--dry-run"]).stdout;
    assert_ne!(edited, first);
    let fresh = || Ov::new(project.path()).ok(&["build", "--dry-run"]).stdout;
    assert_eq!(edited, fresh());
    backdate(project.path());
    ov.ok(&["build", "--dry-run"]);
    project.write("layers/os-layer/motd", "hello\n");
    let added = ov.ok(&["build", "--dry-run"]).stdout;
    assert_ne!(added, edited);
    assert_eq!(added, fresh());
}

#[test]
fn a_copied_project_has_the_same_keys() {
    // Keys hang on contents and project-relative paths, not on where the
    // project sits on disk.
    let project = Project::copy_of(&shared_fixture("bootc"));
    assert_eq!(
        Ov::new(&shared_fixture("bootc")).graph(&[]).keys(),
        Ov::new(project.path()).graph(&[]).keys()
    );
}

/// What a dry run leaves in its cache dir: the parse and stat caches, the
/// kept layer walks and trees, and the dry run's memo (the fixtures were
/// last edited long ago, so their inputs have settled and the memo is
/// written).
fn dry_run_caches() -> BTreeSet<String> {
    ["dry-run.v2", "layers.v1", "parse-cache.v1", "stat-cache.v1"]
        .into_iter()
        .map(String::from)
        .collect()
}

#[test]
fn cache_dir_flag_is_honoured() {
    let ov = Ov::new(&shared_fixture("pods"));
    ov.ok(&["build", "--dry-run"]);
    assert_eq!(dir_names(ov.cache_dir()), dry_run_caches());
}

#[test]
fn ov_cache_dir_env_is_honoured() {
    let env_cache = tempfile::TempDir::new().unwrap();
    let ov = Ov::new(&shared_fixture("pods"))
        .without_cache_flag()
        .env("OV_CACHE_DIR", env_cache.path());
    ov.ok(&["build", "--dry-run"]);
    assert_eq!(dir_names(env_cache.path()), dry_run_caches());
    assert!(dir_names(ov.cache_dir()).is_empty());
}

#[test]
fn cache_dir_flag_beats_the_env() {
    let env_cache = tempfile::TempDir::new().unwrap();
    let ov = Ov::new(&shared_fixture("pods")).env("OV_CACHE_DIR", env_cache.path());
    ov.ok(&["build", "--dry-run"]);
    assert!(dir_names(env_cache.path()).is_empty());
    assert!(ov.cache_dir().join("stat-cache.v1").is_file());
}

#[test]
fn inspect_of_an_unknown_image_suggests_one() {
    let ov = Ov::new(&shared_fixture("pods"));
    ov.bad(&["image", "inspect", "redis-srever"]).stderr_has(&[
        "unknown image `redis-srever`",
        "did you mean `redis-server`?",
    ]);
}

#[test]
fn a_directory_without_overthink_yml_is_bad_input() {
    let empty = tempfile::TempDir::new().unwrap();
    Ov::new(empty.path())
        .bad(&["image", "validate"])
        .stderr_has(&["no overthink.yml", "-C DIR"]);
}

#[test]
fn settings_are_kept_checked_and_listed() {
    let p = Project::mini();
    let config = tempfile::TempDir::new().unwrap();
    let ov = Ov::new(p.path()).env("OV_CONFIG_DIR", config.path());
    assert_eq!(
        ov.ok(&["settings", "get", "engine.kind"]).stdout,
        "podman\n"
    );
    ov.ok(&["settings", "set", "engine.kind", "docker"]);
    assert_eq!(
        ov.ok(&["settings", "get", "engine.kind"]).stdout,
        "docker\n"
    );
    assert!(config.path().join("settings.json").is_file());
    let list = ov.ok(&["settings", "list"]).stdout;
    assert!(list.contains("engine.kind = docker\t"), "{list}");
    assert!(
        list.contains("engine.socket = unix:///run/podman/podman.sock (default)"),
        "{list}"
    );
    let bad = ov.bad(&["settings", "set", "engine.kind", "lxc"]);
    assert!(
        bad.stderr.contains("one of podman, docker"),
        "{}",
        bad.stderr
    );
    let typo = ov.bad(&["settings", "get", "engine.sockt"]);
    assert!(
        typo.stderr.contains("did you mean `engine.socket`"),
        "{}",
        typo.stderr
    );
    ov.bad(&["settings", "set", "build.jobs", "many"]);
    // No setting holds a line break (it would reach messages and requests).
    ov.bad(&[
        "settings",
        "set",
        "engine.socket",
        "unix:///x.sock\nINJECTED",
    ])
    .stderr_has(&["engine.socket"]);
    // A hand-edited file is checked like `settings set`: bad input naming
    // the file and the key, not a silent default.
    std::fs::write(
        config.path().join("settings.json"),
        r#"{"build.jobs": "many"}"#,
    )
    .unwrap();
    ov.bad(&["build"])
        .stderr_has(&["settings.json", "build.jobs", "many"]);
    ov.bad(&["settings", "get", "build.jobs"])
        .stderr_has(&["settings.json", "build.jobs"]);
}

#[test]
fn image_build_takes_image_names_only() {
    let p = Project::mini();
    let ov = Ov::new(p.path());
    let bad = ov.bad(&["image", "build", "bse-os"]);
    assert!(
        bad.stderr.contains("did you mean `base-os`"),
        "{}",
        bad.stderr
    );
    let dry = ov.bad(&["image", "build", "--dry-run"]);
    assert!(dry.stderr.contains("ov build --dry-run"), "{}", dry.stderr);
}
