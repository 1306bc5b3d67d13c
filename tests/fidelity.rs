//! What ov's generator writes for the shared fixtures, checked against
//! expectations taken from reading ov's Go sources (`../shared/reference`,
//! ov v2026.141.1600), not from our own output: each assertion names the
//! Go function it comes from. Covers `shell:` snippets, distro tag
//! sections, labels, and `tag: auto` staying out of the keys.

use crate::util::{shared_fixture, Project};
use ov::workspace::{Dirs, Workspace};
use ov_rules::rule::{steps_sent, EngineQuirks};
use ov_rules::Rendered;
use std::path::Path;
use tempfile::TempDir;

fn open(project: &Path) -> (Workspace, TempDir) {
    let tmp = TempDir::with_prefix("ov-test-fidelity-").expect("temp dir");
    let dirs = Dirs {
        cache: tmp.path().join("cache"),
        repo_cache: tmp.path().join("repos"),
        state: tmp.path().join("state"),
    };
    let ws = Workspace::open(project, &dirs).unwrap_or_else(|e| panic!("{e:#}"));
    (ws, tmp)
}

fn render(ws: &Workspace, id: &str) -> Rendered {
    let ix = ws.plan.by_id[id];
    let node = &ws.plan.graph[ix];
    steps_sent(node.spec.get().unwrap(), &EngineQuirks::for_build())
        .expect("a layer or image node")
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// LABEL steps as (key, value), values read back as the builder reads a
/// double-quoted LABEL value.
fn labels(r: &Rendered) -> Vec<(String, String)> {
    r.steps
        .iter()
        .filter_map(|s| s.strip_prefix("LABEL "))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap();
            let mut out = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap() } else { c });
            }
            (k.trim_matches('"').to_string(), out)
        })
        .collect()
}

fn label<'a>(all: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// base-stack's direnv layer: `shell: {init: 'eval "$(direnv hook
/// ${SHELL_NAME})"\n', fish: {init: "direnv hook fish | source\n"}}`.
#[test]
fn direnv_shell_snippets_are_ovs_drop_ins() {
    let (ws, _tmp) = open(&shared_fixture("base-stack"));
    let r = render(&ws, "layer:direnv@nvidia");
    // install_build.go compileShellSnippetSteps: shells in the order bash,
    // zsh, fish, sh; shellSnippetDestination (container target):
    // /etc/profile.d/ov-<layer>-<shell>.sh, /etc/fish/conf.d/ov-<layer>.fish.
    let copies: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.starts_with("COPY"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        copies,
        [
            "COPY --chmod=0644 .ov/shell/bash /etc/profile.d/ov-direnv-bash.sh",
            "COPY --chmod=0644 .ov/shell/zsh /etc/profile.d/ov-direnv-zsh.sh",
            "COPY --chmod=0644 .ov/shell/fish /etc/fish/conf.d/ov-direnv.fish",
            "COPY --chmod=0644 .ov/shell/sh /etc/profile.d/ov-direnv-sh.sh",
        ]
    );
    // resolveShellSpec: the generic init with ${SHELL_NAME} replaced; the
    // fish block taken as written. generate.go writeLayerSteps step 5
    // writes `cat > dest <<'MARKER'\n<snippet>\nMARKER`, so the file is the
    // snippet plus one newline.
    let file = |name: &str| {
        let (_, data) = r
            .context_files
            .iter()
            .find(|(p, _)| p == name)
            .unwrap_or_else(|| panic!("{name} not staged"));
        String::from_utf8(data.clone()).unwrap()
    };
    assert_eq!(file(".ov/shell/bash"), "eval \"$(direnv hook bash)\"\n\n");
    assert_eq!(file(".ov/shell/zsh"), "eval \"$(direnv hook zsh)\"\n\n");
    assert_eq!(file(".ov/shell/sh"), "eval \"$(direnv hook sh)\"\n\n");
    assert_eq!(file(".ov/shell/fish"), "direnv hook fish | source\n\n");
    // The snippets come after the layer's packages (step 1 before step 5).
    let run = r.steps.iter().position(|s| s.starts_with("RUN")).unwrap();
    let copy = r.steps.iter().position(|s| s.starts_with("COPY")).unwrap();
    assert!(run < copy, "{}", r.containerfile());

    // The image that installs direnv carries its shell manifest:
    // writeLabels → CollectShell → LabelShellSet{layer: [ShellEntry]},
    // ShellEntry{origin, id, generic, by_shell} (labels.go).
    let img = labels(&render(&ws, "image:nvidia"));
    assert_eq!(
        label(&img, "org.overthinkos.shell"),
        Some(
            r#"{"layer":[{"origin":"direnv","id":"direnv","generic":{"init":"eval \"$(direnv hook ${SHELL_NAME})\"\n"},"by_shell":{"fish":{"init":"direnv hook fish | source\n"}}}]}"#
                .replace("\n", "\\n")
                .as_str()
        )
    );
}

/// A `fedora-43:` section replaces the generic packages on an image whose
/// distro is `[fedora:43, fedora]`.
#[test]
fn a_distro_tag_section_replaces_the_generic_packages() {
    let p = Project::copy_of(&shared_fixture("base-stack"));
    p.edit(
        "layers/nvidia/layer.yml",
        "  distro:\n",
        "  distro:\n    fedora-43:\n      package:\n        - akmod-nvidia\n",
    );
    let (ws, _tmp) = open(p.path());
    let r = render(&ws, "layer:nvidia@nvidia");
    let runs: Vec<&String> = r.steps.iter().filter(|s| s.starts_with("RUN")).collect();
    // generate.go writeLayerSteps phase 1: the first distro tag with a tag
    // section that lists packages wins and `break`s, so only that section
    // is installed, through the primary format's (img.Pkg = build[0],
    // config.go) install_template. layers.go derivePackageSectionsFromCalamares
    // maps `fedora-43` to tag `fedora:43` and gives it only its own
    // packages: no top-level `package:` (nvidia-container-toolkit), no
    // `fedora:` section (libva-nvidia-driver, its negativo17 repo).
    let install = runs
        .iter()
        .find(|s| s.contains("dnf install"))
        .expect("an rpm install");
    assert!(install.contains("akmod-nvidia"), "{install}");
    for absent in [
        "nvidia-container-toolkit",
        "libva-nvidia-driver",
        "negativo17",
    ] {
        assert!(!install.contains(absent), "{absent} in\n{install}");
    }

    // Without a tag section: phase 2, the `rpm` format section, whose
    // packages are the top-level ones first, then `fedora:`'s
    // (derivePackageSectionsFromCalamares: addPackages(top) then dp.Package).
    let (ws, _tmp) = open(&shared_fixture("base-stack"));
    let r = render(&ws, "layer:nvidia@nvidia");
    let text = r.containerfile();
    let top = text
        .find("nvidia-container-toolkit")
        .expect("top-level package");
    let own = text.find("libva-nvidia-driver").expect("fedora package");
    assert!(top < own, "{text}");
}

/// A tag section without packages does not win (phase 1 skips it).
#[test]
fn a_tag_section_without_packages_falls_back_to_the_format_section() {
    let p = Project::copy_of(&shared_fixture("base-stack"));
    p.edit(
        "layers/nvidia/layer.yml",
        "  distro:\n",
        "  distro:\n    fedora-43:\n      exclude: [x]\n",
    );
    let (ws, _tmp) = open(p.path());
    let text = render(&ws, "layer:nvidia@nvidia").containerfile();
    assert!(text.contains("libva-nvidia-driver"), "{text}");
}

/// bootc-demo's labels, as writeLabels (generate.go:1577-2053) writes them.
#[test]
fn bootc_demo_labels_are_ovs() {
    let (ws, _tmp) = open(&shared_fixture("bootc"));
    let all = labels(&render(&ws, "image:bootc-demo"));
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    // Order: the fixed scalars (1581-1586), registry (1589), bootc from
    // preserve_user (1596), capabilities.oci_label sorted (1603-1611),
    // platform.* (1622-1623), port_protos (1642), eval (1683), init, its
    // label_key, services (1715-1763), env_accepts (1842), status (1986).
    assert_eq!(
        keys,
        [
            "org.overthinkos.version",
            "org.overthinkos.image",
            "org.overthinkos.uid",
            "org.overthinkos.gid",
            "org.overthinkos.user",
            "org.overthinkos.home",
            "org.overthinkos.registry",
            "org.overthinkos.bootc",
            "dev.containers.bootc",
            "org.overthinkos.platform.distro",
            "org.overthinkos.platform.formats",
            "org.overthinkos.port_protos",
            "org.overthinkos.eval",
            "org.overthinkos.init",
            "org.overthinkos.services.systemd",
            "org.overthinkos.services",
            "org.overthinkos.env_accepts",
            "org.overthinkos.status",
        ]
    );
    let get = |k: &str| label(&all, k).unwrap_or_else(|| panic!("no {k}"));
    // LabelSchemaVersion (labels.go).
    assert_eq!(get("org.overthinkos.version"), "1");
    assert_eq!(get("org.overthinkos.uid"), "1000");
    assert_eq!(get("org.overthinkos.registry"), "ghcr.io/overthinkos");
    assert_eq!(
        get("org.overthinkos.platform.distro"),
        r#"["fedora:43","fedora"]"#
    );
    assert_eq!(get("org.overthinkos.platform.formats"), r#"["rpm"]"#);
    // sshd's `port: [tcp:2222]`: PortSpec{2222, "tcp"}, not http.
    assert_eq!(get("org.overthinkos.port_protos"), r#"{"2222":"tcp"}"#);
    // sshd's env_accept, EnvDependency{name, description} with Go's HTML
    // escaping of `<`, `>`.
    assert_eq!(
        get("org.overthinkos.env_accepts"),
        r#"[{"name":"SSH_AUTHORIZED_KEYS","description":"SSH public key(s) for authorized access (one per line). Set via: ov config \u003cimage\u003e --ssh-key auto"}]"#
    );
    // CapabilityService in its field order, with init and layer.
    let services = get("org.overthinkos.services");
    assert!(
        services.starts_with(
            r#"[{"name":"sshd","scope":"system","enable":true,"use_packaged":"sshd.service","init":"systemd","layer":"sshd"},{"name":"sshd","scope":"system","enable":true,"exec":"/usr/local/bin/sshd-wrapper","restart":"always","start_sec":1,"priority":3,"init":"systemd","layer":"sshd"}"#
        ),
        "{services}"
    );
    assert_eq!(get("org.overthinkos.status"), "testing");
    // ov writes no tag label: the calver tag is no part of the image.
    assert!(!keys.iter().any(|k| k.contains(".tag")), "{keys:?}");
}

/// `tag: auto` (the fixtures' default) stays the literal `auto` in the
/// image node's spec, so its key does not depend on when it is built; the
/// calver replaces it only when the tag is applied.
#[test]
fn tag_auto_is_no_part_of_the_key() {
    let (ws, _tmp) = open(&shared_fixture("pods"));
    let ix = ws.plan.images["web"];
    assert_eq!(
        match ws.plan.graph[ix].spec.get().unwrap() {
            ov_rules::NodeSpec::Image(image) => image.tag.as_str(),
            other => panic!("not an image: {other:?}"),
        },
        "ghcr.io/overthinkos/web:auto"
    );
    let r = render(&ws, "image:web");
    assert!(
        !r.containerfile().contains(":auto"),
        "{}",
        r.containerfile()
    );
    assert_eq!(
        ov::run::calver::resolve("ghcr.io/overthinkos/web:auto", "2026.141.1600"),
        "ghcr.io/overthinkos/web:2026.141.1600"
    );
}
