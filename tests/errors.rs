//! Bad input exits 2 and names `file:line:col`; suspicious input warns and
//! exits 0; and the loader's less common shapes (includes from the repo
//! cache, remote layer refs, multi-document files, kind-keyed entries,
//! `layer: {x: {from: dir}}`) load.
//!
//! Each test starts from a copy of `tests/fixtures/mini` (images `base-os`
//! and `app`; layers `greeting` and `web`, web requiring greeting; the bootc
//! VM `app-vm`) and changes one thing.

use crate::util::{backdate, Ov, Project, Run};
use std::time::Duration;

/// Runs `ov image validate` on a broken project and checks the rules every
/// bad input follows: exit 2, a diagnostic on stderr, nothing written
/// into the project, nothing in the cache dir but caches.
fn invalid(project: &Project) -> Run {
    invalid_with(project, &Ov::new(project.path()))
}

fn invalid_with(project: &Project, ov: &Ov) -> Run {
    let before = project.snapshot();
    let run = ov.bad(&["image", "validate"]);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    assert_eq!(project.snapshot(), before, "ov wrote into the project");
    ov.assert_only_caches();
    // Planning commands reject the same input the same way.
    let dry = ov.bad(&["build", "--dry-run"]);
    assert_eq!(dry.stderr, run.stderr);
    run
}

/// Runs `ov image validate` on a project that loads, returning the run.
fn valid(project: &Project) -> Run {
    let ov = Ov::new(project.path());
    let run = ov.ok(&["image", "validate"]);
    ov.ok(&["build", "--dry-run"]);
    run
}

/// The error lines of a run.
fn errors(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.contains(": error: ") || l.starts_with("error: "))
        .collect()
}

// ---------------------------------------------------------------- version

#[test]
fn older_version_says_migrate() {
    let p = Project::mini();
    p.edit(
        "overthink.yml",
        "version: 2026.141.1600",
        "version: 2025.001.0000",
    );
    invalid(&p).stderr_has(&[
        "overthink.yml:5:10: error: schema version `2025.001.0000` found; this ov reads 2026.141.1600",
        "run `ov migrate`",
    ]);
}

#[test]
fn newer_version_says_update() {
    let p = Project::mini();
    p.edit(
        "overthink.yml",
        "version: 2026.141.1600",
        "version: 2027.001.0000",
    );
    invalid(&p).stderr_has(&[
        "overthink.yml:5:10: error: schema version `2027.001.0000` found; this ov reads 2026.141.1600",
        "update ov",
    ]);
}

#[test]
fn integer_version_says_migrate() {
    let p = Project::mini();
    p.edit("overthink.yml", "version: 2026.141.1600", "version: 4");
    let run = invalid(&p);
    run.stderr_has(&[
        "overthink.yml:5:10: error: schema version `4` found",
        "2026.141.1600",
        "ov migrate",
    ]);
    assert!(!run.stderr.contains("update ov"), "{}", run.stderr);
}

#[test]
fn only_the_entry_files_version_counts() {
    // Included files carry the stamp by convention; the first one seen
    // (overthink.yml's) is the one checked.
    let p = Project::mini();
    p.write(
        "image.yml",
        format!("version: 1999.1.1\n{}", p.read("image.yml")),
    );
    valid(&p);
}

// ------------------------------------------------------- names that point nowhere

#[test]
fn unknown_layer_suggests_the_closest() {
    let p = Project::mini();
    p.edit("image.yml", "      - web\n", "      - webb\n");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:9:9: error: image `app`: unknown layer `webb` (did you mean `web`?)"]
    );
}

#[test]
fn unknown_required_layer_points_at_the_require() {
    let p = Project::mini();
    p.edit(
        "layers/web/layer.yml",
        "require: [greeting]",
        "require: [greting]",
    );
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["layers/web/layer.yml:2:13: error: layer `web` require: unknown layer `greting` (did you mean `greeting`?)"]
    );
}

#[test]
fn layer_require_cycle_prints_the_whole_cycle() {
    let p = Project::mini();
    // greeting → extra → web → greeting
    p.edit(
        "layers/greeting/layer.yml",
        "  name: greeting\n",
        "  name: greeting\n  require: [extra]\n",
    );
    p.write(
        "layers/extra/layer.yml",
        "layer:\n  require: [web]\n  package: [jq]\n",
    );
    let run = invalid(&p);
    let errs = errors(&run);
    assert_eq!(errs.len(), 1, "one cycle, reported once: {errs:?}");
    assert_eq!(
        errs[0],
        // Reported at the edge that closes the cycle: greeting's `require: [extra]`.
        "layers/greeting/layer.yml:3:13: error: layer cycle: extra → web → greeting → extra"
    );
}

#[test]
fn metalayer_cycle_is_a_cycle_too() {
    let p = Project::mini();
    p.write("layers/meta/layer.yml", "layer:\n  layer: [web, meta2]\n");
    p.write("layers/meta2/layer.yml", "layer:\n  layer: [meta]\n");
    p.edit("image.yml", "      - web\n", "      - meta\n");
    let run = invalid(&p);
    run.stderr_has(&["error: layer cycle: meta → meta2 → meta"]);
}

#[test]
fn image_base_cycle() {
    let p = Project::mini();
    p.edit("image.yml", "base: quay.io/fedora/fedora:43", "base: app");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:6:11: error: base cycle: app → base-os → app"]
    );
}

#[test]
fn image_that_is_its_own_base() {
    let p = Project::mini();
    p.edit("image.yml", "base: base-os", "base: app");
    invalid(&p).stderr_has(&["image.yml:6:11: error: image `app` is its own base"]);
}

#[test]
fn base_naming_a_disabled_image() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "  base-os:\n",
        "  base-os:\n    enabled: false\n",
    );
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:7:11: error: image `app`: base `base-os` is a disabled image; enable it (ov would silently treat the name as a registry ref)"]
    );
}

#[test]
fn base_that_is_neither_an_image_nor_a_ref() {
    let p = Project::mini();
    p.edit("image.yml", "base: base-os", "base: base-so");
    invalid(&p).stderr_has(&["image.yml:6:11: error: image `app`: unknown image `base-so` as base (did you mean `base-os`?)"]);
}

#[test]
fn copy_task_whose_source_is_missing() {
    let p = Project::mini();
    p.remove("layers/greeting/hello.txt");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["layers/greeting/layer.yml:5:13: error: layer `greeting`: copy source `hello.txt` does not exist in layers/greeting"]
    );
}

#[test]
fn task_fields_the_renderer_needs_are_checked_where_written() {
    let p = Project::mini();
    p.edit(
        "layers/greeting/layer.yml",
        "      to: /etc/hello.txt\n",
        "      mode: \"9999\"\n    - mkdir: \"\"\n    - link: /usr/bin/hi\n    - write: /etc/motd\n      content: hi\n      mode: rw\n",
    );
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        [
            "layers/greeting/layer.yml:5:13: error: `copy` needs `to` (where to put it)",
            "layers/greeting/layer.yml:6:13: error: `mode` must be octal like \"0644\", found `9999`",
            "layers/greeting/layer.yml:7:14: error: `mkdir` is empty",
            "layers/greeting/layer.yml:8:13: error: `link` needs `target` (what the link points at)",
            "layers/greeting/layer.yml:11:13: error: `mode` must be octal like \"0644\", found `rw`",
        ]
    );
}

#[test]
fn copy_task_that_leaves_the_layer_dir() {
    let p = Project::mini();
    p.edit(
        "layers/greeting/layer.yml",
        "copy: hello.txt",
        "copy: ../web/layer.yml",
    );
    invalid(&p).stderr_has(&["layers/greeting/layer.yml:5:13: error: layer `greeting`: copy source `../web/layer.yml` leaves the layer directory"]);
}

#[test]
fn bootc_vm_naming_an_unknown_image() {
    let p = Project::mini();
    p.edit("vm.yml", "image: app}", "image: apq}");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["vm.yml:3:34: error: vm `app-vm`: bootc source names unknown image `apq` (did you mean `app`?)"]
    );
}

#[test]
fn vm_without_a_source_kind() {
    let p = Project::mini();
    p.edit("vm.yml", "{kind: bootc, image: app}", "{image: app}");
    invalid(&p).stderr_has(&["vm.yml:3:13: error: vm `app-vm`: `source.kind` is missing"]);
}

#[test]
fn every_error_is_reported_in_one_run() {
    let p = Project::mini();
    p.edit("image.yml", "      - web\n", "      - webb\n");
    p.edit("vm.yml", "image: app}", "image: apq}");
    p.remove("layers/greeting/hello.txt");
    assert_eq!(errors(&invalid(&p)).len(), 3);
}

// ---------------------------------------------------------------- legacy keys

#[test]
fn legacy_images_root_key() {
    let p = Project::mini();
    p.edit("image.yml", "image:\n", "images:\n");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:1:1: error: this file: `images` is an old spelling; write `image:` (ov migrate rewrites it)"]
    );
}

#[test]
fn legacy_layer_depends() {
    let p = Project::mini();
    p.edit("layers/web/layer.yml", "require:", "depends:");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["layers/web/layer.yml:2:3: error: layer `web`: `depends` is an old spelling; write `require` (ov migrate rewrites it)"]
    );
}

#[test]
fn legacy_image_platforms() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "    distro: [fedora:43, fedora]\n",
        "    distro: [fedora:43, fedora]\n    platforms: [linux/amd64]\n",
    );
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:5:5: error: image `base-os`: `platforms` is an old spelling; write `platform` (ov migrate rewrites it)"]
    );
}

#[test]
fn flat_layer_yml_is_the_old_shape() {
    let p = Project::mini();
    p.write(
        "layers/web/layer.yml",
        "require: [greeting]\npackage: [nginx]\n",
    );
    invalid(&p).stderr_has(&[
        "layers/web/layer.yml:1:",
        "error: layer.yml must keep everything under one `layer:` key",
    ]);
}

// ---------------------------------------------------------------- warnings

#[test]
fn unknown_key_warns_and_suggests() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "    distro: [fedora:43, fedora]\n",
        "    distro: [fedora:43, fedora]\n    plaform: [linux/amd64]\n",
    );
    let run = valid(&p);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["image.yml:5:5: warning: image `base-os`: unknown key `plaform` ignored (did you mean `platform`?)"]
    );
}

#[test]
fn unknown_layer_key_warns() {
    let p = Project::mini();
    p.append("layers/web/layer.yml", "  colour: blue\n");
    valid(&p).stderr_has(&[
        "layers/web/layer.yml:6:3: warning: layer `web`: unknown key `colour` ignored",
    ]);
}

#[test]
fn drift_cpu_in_a_vm_warns() {
    let p = Project::mini();
    p.edit("vm.yml", "cpus: 2", "cpu: 2");
    let run = valid(&p);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["vm.yml:6:5: warning: vm `app-vm`: `cpu` is read as `cpus` (ov itself ignores `cpu`)"]
    );
    // …and is read as `cpus`: the boot node's key is the same either way.
    let drifted = Ov::new(p.path()).graph(&[]);
    let fine = Ov::new(Project::mini().path()).graph(&[]);
    assert_eq!(drifted.key("boot:app-vm"), fine.key("boot:app-vm"));
}

#[test]
fn drift_in_nested_vm_maps_warns() {
    let p = Project::mini();
    p.append(
        "vm.yml",
        "    network: {mode: user, port_forward: [{host: 2222, guest: 22}]}\n",
    );
    valid(&p).stderr_has(&[
        "vm.yml:7:",
        "warning: vm `app-vm`: `network.port_forward` is read as `network.port_forwards`",
    ]);
}

// ---------------------------------------------------------------- syntax

#[test]
fn yaml_syntax_error_has_a_position() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "distro: [fedora:43, fedora]",
        "distro: [fedora:43, fedora",
    );
    let run = invalid(&p);
    let errs = errors(&run);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("image.yml:"), "{}", errs[0]);
    assert!(errs[0].contains(": error: not valid YAML: "), "{}", errs[0]);
    let pos: Vec<&str> = errs[0].splitn(4, ':').collect();
    assert!(
        pos[1].parse::<u32>().unwrap() >= 4 && pos[2].parse::<u32>().unwrap() >= 1,
        "{}",
        errs[0]
    );
}

#[test]
fn include_of_a_missing_file() {
    let p = Project::mini();
    p.edit(
        "overthink.yml",
        "  - vm.yml\n",
        "  - vm.yml\n  - nowhere.yml\n",
    );
    invalid(&p).stderr_has(&["overthink.yml:9:5: error: cannot read nowhere.yml"]);
}

#[test]
fn include_cycle_is_an_error() {
    let p = Project::mini();
    p.write("a.yml", "include: [b.yml]\n");
    p.write("b.yml", "include: [a.yml]\n");
    p.edit("overthink.yml", "  - vm.yml\n", "  - vm.yml\n  - a.yml\n");
    invalid(&p)
        .stderr_has(&["b.yml:1:11: error: include cycle: overthink.yml → a.yml → b.yml → a.yml"]);
}

// ------------------------------------------- duplicate keys, BOMs, empty files

/// One duplicate key per kind of ov file (an include, a discovered
/// `layer.yml`, the entry file), each named with both of its positions.
#[test]
fn duplicate_keys_name_both_positions() {
    let cases = [
        (
            "overthink.yml",
            "defaults:\n",
            "discover:\n  layer: [layers]\ndefaults:\n",
            "overthink.yml:14:1: error: duplicate key `discover` (first at overthink.yml:10:1)",
        ),
        (
            "image.yml",
            "  app:\n",
            "  app:\n    base: quay.io/fedora/fedora:43\n",
            "image.yml:7:5: error: duplicate key `base` (first at image.yml:6:5)",
        ),
        (
            "vm.yml",
            "    cpus: 2\n",
            "    cpus: 2\n    ram: 4G\n",
            "vm.yml:7:5: error: duplicate key `ram` (first at vm.yml:5:5)",
        ),
        (
            "build.yml",
            "init:\n",
            "distro: {}\ninit:\n",
            "build.yml:6:1: error: duplicate key `distro` (first at build.yml:1:1)",
        ),
        (
            "layers/web/layer.yml",
            "{id: nginx-binary,",
            "{id: nginx-binary, id: nginx,",
            "layers/web/layer.yml:5:26: error: duplicate key `id` (first at layers/web/layer.yml:5:8)",
        ),
    ];
    for (file, from, to, want) in cases {
        let p = Project::mini();
        p.edit(file, from, to);
        let run = invalid(&p);
        assert_eq!(errors(&run), [want], "{file}");
    }
}

#[test]
fn every_duplicate_key_of_a_file_is_reported() {
    let p = Project::mini();
    p.append("image.yml", "  base-os:\n    base: quay.io/x/y:1\n");
    p.edit(
        "image.yml",
        "    base: base-os\n",
        "    base: base-os\n    base: base-os\n",
    );
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        [
            "image.yml:7:5: error: duplicate key `base` (first at image.yml:6:5)",
            "image.yml:11:3: error: duplicate key `base-os` (first at image.yml:2:3)",
        ]
    );
}

#[test]
fn duplicate_keys_are_reported_again_with_a_warm_parse_cache() {
    let p = Project::mini();
    let ov = Ov::new(p.path());
    backdate(p.path());
    ov.ok(&["image", "validate"]);
    p.append("layers/web/layer.yml", "  package: [curl]\n");
    backdate(p.path());
    let want = "layers/web/layer.yml:6:3: error: duplicate key `package` (first at layers/web/layer.yml:3:3)";
    for _ in 0..2 {
        let run = invalid_with(&p, &ov);
        assert_eq!(errors(&run), [want]);
    }
}

#[test]
fn anchors_and_aliases_are_not_duplicates() {
    let p = Project::mini();
    p.write(
        "image.yml",
        "image:\n  base-os: &os\n    base: quay.io/fedora/fedora:43\n    distro: &d [fedora:43, fedora]\n  \
         other: *os\n  app:\n    base: base-os\n    distro: *d\n    layer: [greeting, web]\n",
    );
    let run = valid(&p);
    assert_eq!(run.stderr, "");
    assert!(run.stdout.contains("ok: 3 images"), "{}", run.stdout);
}

/// A UTF-8 byte-order mark (as some Windows editors write) is not part of
/// the first key, and columns on the first line do not count it.
#[test]
fn a_byte_order_mark_is_ignored() {
    let p = Project::mini();
    p.write(
        "layers/web/layer.yml",
        "layer: {require: [greeting], package: [nginx], pakage: [x]}\n",
    );
    let want = "layers/web/layer.yml:1:48: warning: layer `web`: unknown key `pakage` ignored (did you mean `package`?)";
    assert_eq!(valid(&p).stderr.lines().collect::<Vec<_>>(), [want]);
    for file in [
        "overthink.yml",
        "image.yml",
        "vm.yml",
        "build.yml",
        "layers/web/layer.yml",
        "layers/greeting/layer.yml",
    ] {
        p.write(file, format!("\u{feff}{}", p.read(file)));
    }
    let run = valid(&p);
    assert_eq!(run.stderr.lines().collect::<Vec<_>>(), [want]);
    assert!(
        run.stdout.contains("ok: 2 images, 2 layers, 1 vms"),
        "{}",
        run.stdout
    );
}

/// A layer directory that lost (or never had) its `layer.yml` is not a
/// layer; the error says why the name is unknown.
#[test]
fn unknown_layer_with_a_directory_but_no_layer_yml_says_so() {
    let p = Project::mini();
    p.remove("layers/web/layer.yml");
    p.write("layers/web/nginx.conf", "server {}\n");
    let run = invalid(&p);
    assert_eq!(
        errors(&run),
        ["image.yml:9:9: error: image `app`: unknown layer `web` (layers/web/ exists but has no layer.yml)"]
    );
}

/// A copy of `mini` whose images are also defined in an included
/// `more.yml`, so `image.yml` can be emptied without losing them.
fn mini_with_images_in_more_yml() -> Project {
    let p = Project::mini();
    p.write("more.yml", p.read("image.yml"));
    p.edit(
        "overthink.yml",
        "  - vm.yml\n",
        "  - vm.yml\n  - more.yml\n",
    );
    p
}

#[test]
fn an_empty_image_yml_warns() {
    let p = mini_with_images_in_more_yml();
    p.write("image.yml", "");
    let run = valid(&p);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["image.yml: warning: image.yml is empty"]
    );
    assert!(run.stdout.contains("ok: 2 images"), "{}", run.stdout);
}

#[test]
fn an_image_yml_without_images_warns() {
    let p = mini_with_images_in_more_yml();
    p.write("image.yml", "image: {}\n");
    valid(&p).stderr_has(&["image.yml: warning: image.yml defines no images"]);
}

#[test]
fn a_project_without_images_warns_that_nothing_is_planned() {
    let p = Project::mini();
    p.write("image.yml", "# nothing yet\n");
    p.write("vm.yml", "vm: {}\n");
    let ov = Ov::new(p.path());
    let run = ov.ok(&["image", "validate"]);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "image.yml: warning: image.yml is empty",
            "overthink.yml: warning: no image is defined in overthink.yml or its includes, so there is nothing to build",
        ]
    );
    let dry = ov.ok(&["build", "--dry-run"]);
    assert_eq!(dry.stderr, run.stderr);
    assert_eq!(dry.stdout, "0 nodes would run\n");
}

// ---------------------------------------------------------------- remote refs

const REMOTE_INCLUDE: &str = "  - \"@github.com/acme/shared/base.yml:v1\"\n";

fn with_remote_include() -> Project {
    let p = Project::mini();
    p.edit(
        "overthink.yml",
        "  - vm.yml\n",
        &format!("  - vm.yml\n{REMOTE_INCLUDE}"),
    );
    p
}

#[test]
fn remote_include_missing_from_the_repo_cache() {
    let p = with_remote_include();
    let ov = Ov::new(p.path());
    let run = invalid_with(&p, &ov);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    let errs = errors(&run);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let checkout = ov.repo_cache().join("github.com/acme/shared@v1");
    for part in [
        "overthink.yml:9:5: error: include `@github.com/acme/shared/base.yml:v1`",
        "repository github.com/acme/shared at v1 is not in the repo cache",
        &checkout.display().to_string(),
        "git clone --depth 1 --branch v1 https://github.com/acme/shared",
    ] {
        assert!(errs[0].contains(part), "{part:?} not in {}", errs[0]);
    }
    // Nothing was fetched or created in the repo cache.
    assert!(crate::util::dir_names(ov.repo_cache()).is_empty());
}

#[test]
fn remote_include_present_in_the_repo_cache_loads() {
    let p = with_remote_include();
    let ov = Ov::new(p.path());
    let checkout = ov.repo_cache().join("github.com/acme/shared@v1");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(
        checkout.join("base.yml"),
        "version: 2026.141.1600\nimage:\n  shared-base:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora]\n  app:\n    base: quay.io/elsewhere/app:1\n",
    )
    .unwrap();
    ov.ok(&["image", "validate"]);
    assert_eq!(
        ov.ok(&["image", "list"]).lines(),
        ["base-os", "shared-base", "app"]
    );
    // First definition wins: the project's own `app` beats the included one.
    assert_eq!(ov.inspect("app")["base"]["ref"], "base-os");
    assert!(ov.graph(&[]).ids().contains("image:shared-base"));
}

fn remote_layers(ov: &Ov) {
    let repo = ov.repo_cache().join("github.com/acme/shared@v1/layers");
    std::fs::create_dir_all(repo.join("x")).unwrap();
    std::fs::create_dir_all(repo.join("y")).unwrap();
    std::fs::write(
        repo.join("x/layer.yml"),
        "layer:\n  require: [y]\n  package: [xpkg]\n",
    )
    .unwrap();
    std::fs::write(repo.join("y/layer.yml"), "layer:\n  package: [ypkg]\n").unwrap();
}

#[test]
fn remote_layer_ref_resolves_from_the_repo_cache() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "      - web\n",
        "      - web\n      - \"@github.com/acme/shared/layers/x:v1\"\n",
    );
    let ov = Ov::new(p.path());
    remote_layers(&ov);
    ov.ok(&["image", "validate"]);
    let app = ov.inspect("app");
    // x's bare `require: [y]` means y of the same repository and version.
    assert_eq!(
        app["install"],
        serde_json::json!([
            "greeting",
            "web",
            "github.com/acme/shared/layers/y",
            "github.com/acme/shared/layers/x"
        ])
    );
    let graph = ov.graph(&[]);
    assert!(
        graph
            .ids()
            .contains("source:@github.com/acme/shared/layers/x:v1"),
        "{:?}",
        graph.ids()
    );
    assert!(graph
        .ids()
        .contains("layer:github.com/acme/shared/layers/y@app"));
}

#[test]
fn remote_layer_missing_from_the_repo_cache() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "      - web\n",
        "      - web\n      - \"@github.com/acme/shared/layers/x:v1\"\n",
    );
    let ov = Ov::new(p.path());
    let run = invalid_with(&p, &ov);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    run.stderr_has(&[
        "image.yml:10:9: error: remote layer `github.com/acme/shared/layers/x`",
        "repository github.com/acme/shared at v1 is not in the repo cache",
    ]);
}

#[test]
fn remote_layer_at_two_versions() {
    let p = Project::mini();
    p.edit(
        "image.yml",
        "      - web\n",
        "      - web\n      - \"@github.com/acme/shared/layers/y:v1\"\n      - \"@github.com/acme/shared/layers/y:v2\"\n",
    );
    let ov = Ov::new(p.path());
    remote_layers(&ov);
    invalid_with(&p, &ov)
        .stderr_has(&["layer github.com/acme/shared/layers/y is referenced at two versions"]);
}

// ---------------------------------------------------------------- shapes

#[test]
fn multi_document_files() {
    let p = Project::mini();
    p.write(
        "more.yml",
        "---\nimage:\n  extra1:\n    base: quay.io/x/y:1\n---\nimage:\n  extra2:\n    base: extra1\n    layer: [web]\n...\n---\n",
    );
    p.edit(
        "overthink.yml",
        "  - vm.yml\n",
        "  - vm.yml\n  - more.yml\n",
    );
    let run = valid(&p);
    assert_eq!(run.stdout.trim(), "ok: 4 images, 2 layers, 1 vms");
    let ov = Ov::new(p.path());
    assert_eq!(
        ov.ok(&["image", "list"]).lines(),
        ["base-os", "extra1", "app", "extra2"]
    );
    assert_eq!(
        ov.inspect("extra2")["base_chain"],
        serde_json::json!(["extra1"])
    );
}

#[test]
fn kind_keyed_entries() {
    let p = Project::mini();
    p.write(
        "kinds.yml",
        "image:\n  name: foo\n  base: app\n  layer: [inline]\n---\nlayer:\n  name: inline\n  package: [zsh]\n---\nvm:\n  name: foo-vm\n  source: {kind: bootc, image: foo}\n",
    );
    p.edit(
        "overthink.yml",
        "  - vm.yml\n",
        "  - vm.yml\n  - kinds.yml\n",
    );
    let run = valid(&p);
    assert_eq!(run.stdout.trim(), "ok: 3 images, 3 layers, 2 vms");
    let ov = Ov::new(p.path());
    let foo = ov.inspect("foo");
    assert_eq!(foo["install"], serde_json::json!(["inline"]));
    assert_eq!(foo["base_chain"], serde_json::json!(["app", "base-os"]));
    assert!(ov.graph(&[]).has_edge("image:foo", "disk:foo-vm"));
}

#[test]
fn layer_entry_from_a_directory() {
    let p = Project::mini();
    p.write("vendor/zed/layer.yml", "layer:\n  package: [zed]\n");
    p.append("image.yml", "layer:\n  zed:\n    from: vendor/zed\n");
    p.edit("image.yml", "      - web\n", "      - web\n      - zed\n");
    valid(&p);
    let ov = Ov::new(p.path());
    assert_eq!(
        ov.inspect("app")["install"],
        serde_json::json!(["greeting", "web", "zed"])
    );
    assert!(ov.graph(&[]).ids().contains("source:vendor/zed"));
}

#[test]
fn layer_entry_from_a_missing_directory() {
    let p = Project::mini();
    p.append("image.yml", "layer:\n  zed:\n    from: vendor/zed\n");
    invalid(&p).stderr_has(&["image.yml:12:", "error: cannot read vendor/zed/layer.yml"]);
}

#[test]
fn explicit_layer_entry_wins_over_a_discovered_dir() {
    let p = Project::mini();
    p.edit("image.yml", "      - greeting\n", "");
    let ov = Ov::new(p.path());
    // The discovered layers/web requires greeting…
    assert_eq!(
        ov.inspect("app")["install"],
        serde_json::json!(["greeting", "web"])
    );
    // …the inline `web` does not, and it wins.
    p.append("image.yml", "layer:\n  web:\n    package: [caddy]\n");
    ov.ok(&["image", "validate"]);
    assert_eq!(ov.inspect("app")["install"], serde_json::json!(["web"]));
}

/// `shell:` keys are ov's (`ShellConfig.UnmarshalYAML`): a misspelt shell
/// is an error at its key, and a destination must be a file path.
#[test]
fn shell_blocks_are_checked_where_written() {
    let p = Project::mini();
    p.append(
        "layers/greeting/layer.yml",
        "  shell:\n    init: echo hi\n    bsh:\n      init: x\n    fish:\n      path: etc/x.fish\n      priority: 1\n",
    );
    let run = invalid(&p);
    run.stderr_has(&[
        "layers/greeting/layer.yml:9:5: error: layer `greeting`: `shell` has unknown key `bsh`",
        "(did you mean `bash`?)",
        "layers/greeting/layer.yml:12:13: error: layer `greeting`: `shell.fish.path` \"etc/x.fish\" is not absolute",
        "layers/greeting/layer.yml:13:7: error: layer `greeting`: `shell.fish` has unknown key `priority`",
    ]);
}

/// A layer field that goes into a label with the wrong shape is refused
/// where it is written, not when the image node builds.
#[test]
fn label_fields_of_the_wrong_shape_are_refused_at_load() {
    let p = Project::mini();
    p.append(
        "layers/greeting/layer.yml",
        "  port_relay: [web]\n  env_accept:\n    - name: [K]\n",
    );
    invalid(&p).stderr_has(&[
        "layers/greeting/layer.yml:7:15: error: layer `greeting`: `port_relay` cannot go into ov's labels",
        "layers/greeting/layer.yml:9:5: error: layer `greeting`: `env_accept` cannot go into ov's labels",
    ]);
}

// ---------------------------------------------------------------- builder stages

const NPM_BUILDER: &str = r#"builder:
  npm:
    detect_file: [package.json]
    stage_template: |
      FROM {{.BuilderRef}} AS {{.StageName}}
      RUN npm --version
    copy_artifact:
      - {src: '{{.Home}}', dst: '{{.Home}}', chown: true}
  cargo:
    detect_file: [Cargo.toml]
    inline: true
    install_template: |
      RUN --mount=type=bind,from={{.LayerStage}},source=/,target=/ctx cargo install --path /ctx
"#;

#[test]
fn an_inline_builder_renders_in_the_layer_and_one_that_does_not_parse_is_refused() {
    let p = Project::mini();
    p.append("build.yml", NPM_BUILDER);
    p.write("layers/web/Cargo.toml", "[package]\nname = \"web\"\n");
    valid(&p);
    let generated = Ov::new(p.path()).ok(&["image", "generate", "app"]);
    generated.stdout_has(&[
        "# node: layer:web@app\nFROM scratch AS web\nCOPY ./ /\n\nFROM layer:greeting@app\n",
        "USER 1000\nRUN --mount=type=bind,from=web,source=/,target=/ctx cargo install --path /ctx\nUSER root\n",
    ]);
    p.edit("build.yml", "--path /ctx", "--path {{.Ctx");
    invalid(&p).stderr_has(&["build.yml:", "builder.cargo.install_template"]);
}

#[test]
fn a_stage_without_a_builder_image_is_refused_at_the_image() {
    let p = Project::mini();
    p.append("build.yml", NPM_BUILDER);
    p.write("layers/web/package.json", "{}\n");
    invalid(&p).stderr_has(&[
        "image.yml:6:9: error: image `app`",
        "error: image `app`: layer `web` needs builder `npm` (it has `package.json`) but no \
         `builder: {npm: <image>}` names the image it runs on",
    ]);
    // Naming one makes the project valid, and the plan runs the stage on it.
    p.edit(
        "image.yml",
        "    base: base-os\n",
        "    base: base-os\n    builder: {npm: base-os}\n",
    );
    valid(&p);
    let graph = Ov::new(p.path()).graph(&[]);
    assert!(
        graph.ids_of("stage").contains("stage:web-npm@app"),
        "{:?}",
        graph.ids()
    );
}

#[test]
fn a_stage_template_that_does_not_parse_is_refused_at_its_builder() {
    let p = Project::mini();
    p.append(
        "build.yml",
        &NPM_BUILDER.replace("RUN npm --version", "RUN {{.Oops"),
    );
    invalid(&p).stderr_has(&["build.yml:", "builder.npm.stage_template"]);
}

#[test]
fn one_stage_node_serves_every_image_whose_stage_inputs_are_equal() {
    let p = Project::mini();
    p.append("build.yml", NPM_BUILDER);
    p.write("layers/greeting/package.json", "{}\n");
    // app2 applies greeting on another parent: its layer node differs, the
    // stage (same builder image, files, template and user) does not.
    p.write(
        "image.yml",
        "image:\n  base-os:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora:43, fedora]\n  \
         app:\n    base: base-os\n    builder: {npm: base-os}\n    layer: [greeting, web]\n  \
         app2:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora:43, fedora]\n    \
         builder: {npm: base-os}\n    layer: [greeting]\n",
    );
    valid(&p);
    let ov = Ov::new(p.path());
    let graph = ov.graph(&[]);
    let stages = graph.ids_of("stage");
    assert_eq!(stages.len(), 1, "{stages:?}");
    let layers = graph.ids_of("layer");
    assert!(
        layers.contains("layer:greeting@app") && layers.contains("layer:greeting@app2"),
        "{layers:?}"
    );
    let explain = ov.ok(&["explain", stages.iter().next().unwrap()]);
    assert!(
        explain
            .stdout
            .contains("impure: the builder's package registry"),
        "{}",
        explain.stdout
    );
}

#[test]
fn a_layer_whose_name_cannot_name_a_stage_is_refused_at_the_layer() {
    let p = Project::mini();
    p.append("build.yml", NPM_BUILDER);
    p.write("layers/Shout/layer.yml", "layer:\n  env: {LOUD: \"1\"}\n");
    p.write("layers/Shout/package.json", "{}\n");
    p.edit(
        "image.yml",
        "      - web\n",
        "      - web\n      - Shout\n    builder: {npm: base-os}\n",
    );
    let run = invalid(&p);
    run.stderr_has(&[
        "layers/Shout/layer.yml:",
        "error: layer `Shout` triggers builder `npm` (it has `package.json`)",
        "is not a stage name",
    ]);
    assert_eq!(errors(&run).len(), 1, "{}", run.stderr);
}

/// A `shell.path_append` directory becomes `export PATH="$PATH:<dir>"` in a
/// profile file every login shell sources, as ov writes it: a quote,
/// backtick, backslash or `$` (other than a leading `$HOME`) would run code
/// at login, so it is refused where it is written.
#[test]
fn shell_path_append_that_would_run_code_at_login_is_refused() {
    let p = Project::mini();
    p.append(
        "layers/greeting/layer.yml",
        "  shell:\n    path_append:\n      - \"/opt/a\\\"; touch /pwned; \\\"\"\n      - \"$HOME/bin\"\n      - \"~/x`id`\"\n      - \"/opt/$(id)\"\n",
    );
    let run = invalid(&p);
    run.stderr_has(&[
        "layers/greeting/layer.yml:9:9: error: layer `greeting`: `shell.path_append` entry \"/opt/a\\\"; touch /pwned; \\\"\" cannot go into a shell line (no `\"`, `` ` ``, `\\` or `$` but a leading `$HOME`)",
        "layers/greeting/layer.yml:11:9: error: layer `greeting`: `shell.path_append` entry \"~/x`id`\"",
        "layers/greeting/layer.yml:12:9: error: layer `greeting`: `shell.path_append` entry \"/opt/$(id)\"",
    ]);
    assert!(!run.stderr.contains("$HOME/bin"), "{}", run.stderr);
}
