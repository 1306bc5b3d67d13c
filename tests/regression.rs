//! One test per bug found in `src/`, named after what goes wrong. A test is
//! `` while its bug is open; remove the attribute with
//! the fix.

use crate::util::{shared_fixture, Ov, Project};
use std::collections::BTreeSet;

/// A bootstrap builder for the mini project's build.yml.
const BOOT_BUILDER: &str = "builder:\n  boot:\n    kind: bootstrap\n";

/// An npm stage builder that fires on `package.json`.
const NPM_BUILDER: &str =
    "builder:\n  npm:\n    detect_file: [package.json]\n    stage_template: \"FROM {{.BuilderRef}} AS {{.StageName}}\"\n";

/// The mini project with a `web` layer that triggers the npm builder.
fn npm_project(images: &str) -> Project {
    let p = Project::mini();
    p.append("build.yml", NPM_BUILDER);
    p.write("layers/web/package.json", "{}\n");
    p.write("image.yml", images);
    p.write("vm.yml", "vm: {}\n");
    p
}

#[test]

fn deep_alias_nesting_does_not_overflow_the_stack() {
    // Each anchor nests the previous one 200 deep: 99 of them make a tree
    // ~20,000 deep from a 40 KB file, well inside the alias node budget.
    let mut text = String::from("image:\n  app:\n    layer: [web]\n");
    for i in 0..99 {
        let inner = if i == 0 {
            "z".to_string()
        } else {
            format!("*a{}", i - 1)
        };
        text.push_str(&format!(
            "k{i}: &a{i} {}{inner}{}\n",
            "[".repeat(200),
            "]".repeat(200)
        ));
    }
    let p = Project::mini();
    p.write("image.yml", &text);
    // Refusing the file (a depth limit, exit 2) and reading it (the `k…`
    // keys are only unknown-key warnings, exit 0) are both fine; crashing is not.
    let run = Ov::new(p.path()).run(&["image", "validate"]);
    assert!(
        matches!(run.code, Some(0) | Some(2)),
        "exit {:?}\n{}",
        run.code,
        run.stderr
    );
    run.stderr_has(&["image.yml:"]);
}

#[test]

fn base_cycle_through_a_bootstrap_builder_image() {
    let p = Project::mini();
    p.append("build.yml", BOOT_BUILDER);
    p.write("vm.yml", "vm: {}\n");
    // a-img → z-img (base), z-img → a-img (its rootfs is built in a-img).
    p.write(
        "image.yml",
        "image:\n  a-img:\n    base: z-img\n  z-img:\n    base: quay.io/fedora/fedora:43\n    from: \"builder:boot\"\n    bootstrap_builder_image: a-img\n",
    );
    let ov = Ov::new(p.path());
    ov.bad(&["image", "validate"]).stderr_has(&["base cycle"]);
    ov.bad(&["build", "--dry-run"]).stderr_has(&["base cycle"]);
}

#[test]

fn own_bootstrap_builder_image_is_an_error() {
    let p = Project::mini();
    p.append("build.yml", BOOT_BUILDER);
    p.write("vm.yml", "vm: {}\n");
    p.write(
        "image.yml",
        "image:\n  z-img:\n    from: \"builder:boot\"\n    bootstrap_builder_image: z-img\n",
    );
    Ov::new(p.path())
        .bad(&["image", "validate"])
        .stderr_has(&["image.yml:", "error:", "z-img"]);
}

#[test]

fn builder_edge_does_not_depend_on_image_names() {
    for builder in ["aa-builder", "zz-builder"] {
        let p = npm_project(&format!(
            "image:\n  app:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n    builder: {{npm: {builder}}}\n    layer: [web]\n  {builder}:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n"
        ));
        let g = Ov::new(p.path()).graph(&[]);
        // The builder image feeds the layer through its npm stage node.
        assert!(
            g.has_edge(&format!("image:{builder}"), "stage:web-npm@app")
                && g.has_edge("stage:web-npm@app", "layer:web@app"),
            "{builder}: no builder edge; deps of layer:web@app: {:?}",
            g.deps("layer:web@app")
        );
    }
}

#[test]

fn layer_nodes_with_different_builders_are_not_shared() {
    let p = npm_project(
        "image:\n  b1:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n  b2:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n    layer: [greeting]\n  x1:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n    builder: {npm: b1}\n    layer: [web]\n  x2:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n    builder: {npm: b2}\n    layer: [web]\n",
    );
    let g = Ov::new(p.path()).graph(&[]);
    let web = |img: &str| -> String { g.deps(&format!("image:{img}")).into_iter().next().unwrap() };
    assert_ne!(
        web("x1"),
        web("x2"),
        "x1 and x2 build web with different npm builders"
    );
    for (img, builder) in [("x1", "image:b1"), ("x2", "image:b2")] {
        // The builder reaches the layer through the layer's stage node.
        let builders: BTreeSet<_> = g
            .deps(&web(img))
            .iter()
            .filter(|d| d.starts_with("stage:"))
            .flat_map(|s| g.deps(s))
            .filter(|d| d.starts_with("image:"))
            .collect();
        assert_eq!(builders, BTreeSet::from([builder.to_string()]), "{img}");
    }
}

#[test]

fn symlinks_in_a_layer_dir_are_inputs_not_errors() {
    let p = Project::mini();
    // (A link out of the layer directory is bad input: `context` tests it.)
    std::os::unix::fs::symlink("layer.yml", p.path().join("layers/greeting/yml-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", p.path().join("layers/greeting/dangling")).unwrap();
    let ov = Ov::new(p.path());
    let before = ov.graph(&[]);
    // A link is part of the tree: changing where it points is a change.
    std::fs::remove_file(p.path().join("layers/greeting/dangling")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", p.path().join("layers/greeting/dangling")).unwrap();
    assert_ne!(
        before.key("source:layers/greeting"),
        ov.graph(&[]).key("source:layers/greeting")
    );
}

#[test]
fn missing_version_names_overthink_yml_like_other_errors() {
    let p = Project::mini();
    p.edit("overthink.yml", "version: 2026.141.1600\n", "");
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    assert!(
        run.stderr
            .starts_with("overthink.yml: error: overthink.yml has no `version:`"),
        "{}",
        run.stderr
    );
}

#[test]

fn drift_service_autostart_warns() {
    let p = Project::mini();
    p.append(
        "layers/web/layer.yml",
        "  service:\n    - {name: nginx, exec: /usr/sbin/nginx, autostart: true}\n",
    );
    let run = Ov::new(p.path()).ok(&["image", "validate"]);
    run.stderr_has(&[
        "layers/web/layer.yml:7:",
        "warning:",
        "`autostart`",
        "auto_start",
    ]);
    // The shared fixture has two such services.
    let run = Ov::new(&shared_fixture("eval-beds")).ok(&["image", "validate"]);
    assert_eq!(run.stderr.matches("autostart").count(), 2, "{}", run.stderr);
}

#[test]

fn inline_layer_does_not_hash_the_whole_project() {
    let p = Project::mini();
    p.append("image.yml", "layer:\n  web:\n    package: [caddy]\n");
    let ov = Ov::new(p.path());
    let before = ov.graph(&[]);
    // Files that are no input of `web`: another file at the root, VM sizes.
    p.write("notes.txt", "unrelated\n");
    p.edit("vm.yml", "ram: 2G", "ram: 4G");
    let after = ov.graph(&[]);
    assert_eq!(before.key("layer:web@app"), after.key("layer:web@app"));
    assert_eq!(before.key("image:app"), after.key("image:app"));
}

#[test]
fn internal_dedupe_keys_are_not_targets() {
    let ov = Ov::new(&shared_fixture("pods"));
    let run = ov.bad(&["explain", "layer-app:0"]);
    assert!(
        !run.stderr.contains("did you mean `layer-app:"),
        "{}",
        run.stderr
    );
}

/// A copy source is checked as a literal file name when the project loads,
/// so the builder must not expand `$tag` in it: `price$tag.txt` became
/// `price.txt` and the build failed after validate said ok.
#[test]
fn copy_source_names_with_a_dollar_are_literal() {
    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    p.write("layers/a/price$tag.txt", "dollar\n");
    p.write("layers/a/price${tag}x", "braces\n");
    p.append(
        "layers/a/layer.yml",
        concat!(
            "    - copy: price$tag.txt\n",
            "      to: /opt/a/price\n",
            "    - copy: price${tag}x\n",
            "      to: /opt/a/braces\n",
        ),
    );
    p.append(
        "image.yml",
        concat!(
            "            - {id: price, file: /opt/a/price, contains: [dollar]}\n",
            "            - {id: braces, file: /opt/a/braces, contains: [braces]}\n",
        ),
    );
    Ov::new(p.path()).ok(&["image", "validate"]);
    let ov = crate::build::ov_for(p.path());
    crate::build::built_ok(&ov);
}

/// The builder globs COPY sources even when escaped: `data[1].txt` copied
/// `data1.txt`, and `star*.txt` failed the build. Such names are refused
/// where they are written.
#[test]
fn copy_source_names_with_glob_characters_are_refused() {
    for (i, name) in ["data[1].txt", "star*.txt", "what?.txt", "back\\slash"]
        .iter()
        .enumerate()
    {
        let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
        p.write(&format!("layers/a/{name}"), "x\n");
        p.write("layers/a/data1.txt", "decoy\n");
        let quoted = serde_json::to_string(name).unwrap_or_default();
        p.append(
            "layers/a/layer.yml",
            &format!("    - copy: {quoted}\n      to: /opt/a/f{i}\n"),
        );
        let ov = Ov::new(p.path());
        let run = ov.bad(&["image", "validate"]);
        run.stderr_has(&["layers/a/layer.yml:7:13:", "copy source", "rename the file"]);
        ov.bad(&["build"]);
        ov.assert_only_caches();
    }
}

/// Discovery does not follow symlinks, so a layer directory that is one
/// was reported as an unknown layer with no reason given; a `layer.yml`
/// that is a directory was reported as missing.
#[test]
fn a_layer_dir_that_is_a_symlink_is_named_as_the_reason() {
    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    let real = p.path().join("elsewhere");
    std::fs::rename(p.path().join("layers/a"), &real).unwrap();
    std::os::unix::fs::symlink(&real, p.path().join("layers/a")).unwrap();
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    run.stderr_has(&["unknown layer `a`", "layers/a is a symlink"]);

    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    p.remove("layers/a/layer.yml");
    std::fs::create_dir(p.path().join("layers/a/layer.yml")).unwrap();
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    run.stderr_has(&["unknown layer `a`", "layers/a/layer.yml is not a file"]);
}

/// `OV_CACHE_DIR` naming a file (or a path under one) is a setting to fix,
/// not a failed build: it ended in exit 1 with a bare "Not a directory"
/// from deep in the store and a warning about the stat cache.
#[test]
fn a_cache_dir_that_is_a_file_is_bad_input_naming_the_setting() {
    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    let file = p.path().join("not-a-dir");
    std::fs::write(&file, "keep\n").unwrap();
    for cache in [file.clone(), file.join("below")] {
        let ov = Ov::new(p.path())
            .without_cache_flag()
            .env("OV_CACHE_DIR", &cache);
        for args in [
            &["build"][..],
            &["cache", "stats"],
            &["cache", "gc", "--max-size", "1G"],
        ] {
            let run = ov.bad(args);
            run.stderr_has(&["is not a directory", "OV_CACHE_DIR"]);
            assert!(!run.stderr.contains("stat cache"), "{}", run.stderr);
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep\n");
}

/// A base that no engine can parse (a URL, capitals in the name, a bad
/// digest) passed validation and failed the build with an engine status
/// code; it is bad input at its position, with any password masked.
#[test]
fn a_base_that_is_not_an_image_reference_is_rejected_where_written() {
    for base in [
        "https://bob:hunter2@reg.example/x:1",
        "quay.io/Fedora/fedora:43",
        "reg.example/x@sha256:short",
        "reg.example/x:bad:tag",
    ] {
        let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
        p.edit(
            "image.yml",
            "base: localhost/bookworm-minbase:1",
            &format!("base: \"{base}\""),
        );
        let ov = Ov::new(p.path());
        let run = ov.bad(&["image", "validate"]);
        run.stderr_has(&["image.yml:4:15:", "is not an image reference"]);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
        ov.bad(&["build"]);
        ov.assert_only_caches();
    }
}

/// A project file that is a fifo or a device hung `ov` for ever (a fifo
/// blocks, /dev/zero never ends and fills memory); one too large to be a
/// project file was read whole. Both are bad input naming the file.
#[test]
fn project_files_that_are_not_regular_files_or_too_large_are_refused() {
    let fifo = |p: &Project, rel: &str| {
        let path = p.path().join(rel);
        std::fs::remove_file(&path).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    fifo(&p, "layers/a/layer.yml");
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    run.stderr_has(&["layers/a/layer.yml", "not a regular file"]);

    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    p.remove("build.yml");
    std::os::unix::fs::symlink("/dev/zero", p.path().join("build.yml")).unwrap();
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    run.stderr_has(&["build.yml", "not a regular file"]);

    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    let mut big = p.read("image.yml");
    big.push_str(&format!("# {}\n", "x".repeat(17 << 20)));
    p.write("image.yml", big);
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    run.stderr_has(&["image.yml", "larger than"]);
}

/// A hand-edited settings file that is not JSON failed with exit 1 and a
/// message without its position; it is bad input at file:line:col.
#[test]
fn a_settings_file_that_is_not_json_is_bad_input_at_its_position() {
    let p = Project::copy_of(&crate::util::local_fixture("deb-tasks"));
    let config = tempfile::TempDir::new().unwrap();
    std::fs::write(
        config.path().join("settings.json"),
        "{\"build.jobs\": \"2\", }\n",
    )
    .unwrap();
    let ov = Ov::new(p.path()).env("OV_CONFIG_DIR", config.path());
    for args in [&["settings", "list"][..], &["build"], &["doctor"]] {
        let run = ov.bad(args);
        run.stderr_has(&["settings.json:1:21:", "not a settings file"]);
    }
}

/// Runs `script` in bash with `scripts/proc.sh` sourced; its exit status.
fn with_proc_sh(script: &str) -> std::process::Output {
    let proc_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/proc.sh");
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; source {proc_sh}; {script}"))
        .output()
        .expect("bash runs")
}

#[test]
fn setup_says_a_daemon_it_just_started_exited_before_the_daemon_execs() {
    // The setup scripts start a daemon with `&` and then wait for it,
    // checking each turn that it is still alive. Until the child execs, its
    // command line is the script's own, so a check that matched the daemon's
    // command line failed the set-up ("the registry exited") while the
    // registry was starting fine. The child here waits before it execs.
    let out = with_proc_sh(
        // The pattern is spelt so that this script's own text (the child's
        // command line before it execs) does not contain it.
        "s=sle; (sleep 0.5; exec ${s}ep 5) & p=$!; \
         pid_running $p || { echo 'not running before exec'; exit 1; }; \
         if pid_is $p \"${s}ep 5\"; then echo 'matched before exec'; exit 1; fi; \
         sleep 1; pid_is $p \"${s}ep 5\" || { echo 'no match after exec'; exit 1; }; \
         kill $p",
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn setup_takes_a_zombie_or_a_reused_pid_for_a_dead_daemon() {
    // PID 1 here may not reap, so a dead daemon can stay a zombie: `kill -0`
    // succeeds on it. A pid file may also name a pid some other program got.
    let out = with_proc_sh(
        "bash -c 'sleep 0.1 & echo $! >&2; exec sleep 3' 2>/tmp/ov-proc-zombie.$$ & parent=$!; \
         sleep 1; z=$(cat /tmp/ov-proc-zombie.$$); rm -f /tmp/ov-proc-zombie.$$; \
         if pid_running $z; then echo 'zombie counted as running'; exit 1; fi; \
         pid_running $parent || { echo 'parent not running'; exit 1; }; \
         if pid_is $parent 'docker-registry serve'; then echo 'other program matched'; exit 1; fi; \
         pid_is $parent 'sleep 3' || { echo 'own program not matched'; exit 1; }; \
         if pid_running not-a-pid; then echo 'garbage pid running'; exit 1; fi; \
         kill $parent",
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
