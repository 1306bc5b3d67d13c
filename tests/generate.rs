//! `ov::commands::generate::generate` over the shared fixtures (Fedora, rpm): every
//! image's rendered Containerfile steps, node by node, against a golden
//! file in `tests/golden/generate/<fixture>-<image>.Containerfile`.
//!
//! After an intended change to the rendering, rewrite the goldens with
//! `OV_BLESS=1 cargo test --test integration generate` and read the diff:
//! it is the review.

use crate::util::shared_fixture;
use ov::commands::generate::generate;
use ov::workspace::{Dirs, Workspace};
use ov_rules::rule::EngineQuirks;
use ov_rules::RenderOpts;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn open(fixture: &str) -> (Workspace, TempDir) {
    let tmp = TempDir::with_prefix("ov-test-generate-").expect("temp dir");
    let dirs = Dirs {
        cache: tmp.path().join("cache"),
        repo_cache: tmp.path().join("repos"),
        state: tmp.path().join("state"),
    };
    let ws = Workspace::open(&shared_fixture(fixture), &dirs)
        .unwrap_or_else(|e| panic!("{fixture}: {e:#}"));
    (ws, tmp)
}

fn golden_path(fixture: &str, image: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/generate"
    ))
    .join(format!("{fixture}-{image}.Containerfile"))
}

/// Renders every image of `fixture` and compares (or, with `OV_BLESS=1`,
/// rewrites) its golden file.
fn check(fixture: &str, images: &[&str]) {
    let (ws, _tmp) = open(fixture);
    // Every planned image, in the planner's order.
    let planned: Vec<&str> = ws.plan.images.keys().map(String::as_str).collect();
    assert_eq!(planned, images, "{fixture}: planned images");
    let bless = std::env::var_os("OV_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    // What a build sends: the goldens show the build's own quirks.
    let opts = EngineQuirks::for_build().render_opts();
    for image in images {
        let text =
            generate(&ws, image, &opts).unwrap_or_else(|e| panic!("{fixture}/{image}: {e:#}"));
        // Same inputs, same bytes: the rendered text is hashed.
        assert_eq!(
            generate(&ws, image, &opts).unwrap(),
            text,
            "{fixture}/{image}: rendering is not deterministic"
        );
        let path = golden_path(fixture, image);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with OV_BLESS=1 to write it", path.display()));
        if want != text {
            stale.push(format!(
                "--- {} (golden)\n{want}\n--- rendered\n{text}",
                path.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{} golden file(s) differ (OV_BLESS=1 rewrites them):\n{}",
        stale.len(),
        stale.join("\n")
    );
}

#[test]
fn eval_beds() {
    check(
        "eval-beds",
        &["eval-deploy", "eval-image", "eval-layer", "eval-pod"],
    );
}

#[test]
fn pods() {
    check(
        "pods",
        &["fedora", "os", "redis-client", "redis-server", "web"],
    );
}

#[test]
fn base_stack() {
    check("base-stack", &["fedora", "fedora-nonfree", "nvidia"]);
}

#[test]
fn bootc() {
    check("bootc", &["bootc-demo"]);
}

/// podman 4.3's buildah hangs on two locked cache mounts in one RUN: with
/// `locked_cache_mounts: false` no mount is locked.
#[test]
fn unlocked_cache_mounts() {
    let (ws, _tmp) = open("base-stack");
    let opts = RenderOpts {
        locked_cache_mounts: false,
    };
    let text = generate(&ws, "nvidia", &opts).unwrap();
    assert!(text.contains("--mount=type=cache,id=ov-var-cache-libdnf5,dst=/var/cache/libdnf5"));
    assert!(!text.contains("sharing=locked"), "{text}");
}

/// Every Go template in build.yml (install, builder stage, init, bootloader
/// templates, for every distro) parses with gtmpl and ov's helpers, so no
/// template ov ships needs syntax gtmpl lacks.
#[test]
fn every_build_yml_template_parses() {
    fn walk(key: &str, v: &serde_json::Value, found: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::String(s) if s.contains("{{") => {
                found.push((key.to_string(), s.clone()))
            }
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(&format!("{key}.{k}"), v, found);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{key}[{i}]"), v, found);
                }
            }
            _ => {}
        }
    }
    let (ws, _tmp) = open("pods");
    let b = &ws.project.build;
    let mut found = Vec::new();
    for (section, map) in [
        ("distro", &b.distros),
        ("builder", &b.builders),
        ("init", &b.inits),
    ] {
        for (name, v) in map {
            walk(&format!("{section}.{name}"), v, &mut found);
        }
    }
    assert!(found.len() > 20, "only {} templates found", found.len());
    let broken: Vec<String> = found
        .iter()
        .filter_map(|(k, t)| ov_rules::template::check(k, t).err().map(|e| e.to_string()))
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn unknown_image() {
    let (ws, _tmp) = open("pods");
    let e = generate(&ws, "webb", &RenderOpts::default()).unwrap_err();
    assert!(format!("{e:#}").contains("unknown image `webb`"), "{e:#}");
}

/// `ov image generate` prints, for every layer and image node, exactly the
/// steps the node's executor sends after its `FROM` (the same function,
/// with the build's quirks): on podman 4.3 no cache mount is
/// `sharing=locked` in either.
#[test]
fn generate_prints_what_the_build_sends() {
    let fixture = shared_fixture("base-stack");
    let printed = crate::util::Ov::new(&fixture)
        .ok(&["image", "generate", "nvidia"])
        .stdout;
    assert!(!printed.contains("sharing=locked"), "{printed}");
    let (ws, _tmp) = open("base-stack");
    let mut sections = printed.split("# node: ").skip(1);
    let mut compared = 0;
    for node in ws.plan.graph.node_weights() {
        let Some(sent) =
            ov_rules::rule::steps_sent(node.spec.get().unwrap(), &EngineQuirks::for_build())
        else {
            continue;
        };
        let Some(section) = printed
            .split("# node: ")
            .find(|s| s.starts_with(&format!("{}\n", node.id)))
        else {
            continue;
        };
        let sent = sent.unwrap();
        // The section: its id line, `FROM <parent>`, then the steps.
        let body: String = section
            .splitn(3, '\n')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        assert!(
            body.starts_with(&sent.containerfile()),
            "{}: generate printed\n{body}\nthe build sends\n{}",
            node.id,
            sent.containerfile()
        );
        compared += 1;
    }
    assert_eq!(
        compared,
        sections.by_ref().count(),
        "every printed node was compared"
    );
    assert!(compared >= 7, "only {compared} nodes compared");
}

/// ov links an image's skill page from `org.overthinkos.skills` when the
/// project has `plugins/ov-images/skills/<image>/SKILL.md`; adding the page
/// changes the image's key (the label is part of its output).
#[test]
fn a_skill_page_in_the_project_becomes_the_skills_label() {
    let tmp = TempDir::with_prefix("ov-test-generate-").expect("temp dir");
    let project = crate::util::Project::copy_of(&shared_fixture("pods"));
    let root = project.path().to_path_buf();
    let dirs = Dirs {
        cache: tmp.path().join("cache"),
        repo_cache: tmp.path().join("repos"),
        state: tmp.path().join("state"),
    };
    let opts = EngineQuirks::for_build().render_opts();
    let ws = Workspace::open(&root, &dirs).unwrap();
    let before = ws.keys.keys[ws.plan.images["web"].index()];
    assert!(!generate(&ws, "web", &opts)
        .unwrap()
        .contains("overthinkos.skills"));
    let page = root.join("plugins/ov-images/skills/web/SKILL.md");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    std::fs::write(&page, "# web\n").unwrap();
    let ws = Workspace::open(&root, &dirs).unwrap();
    let text = generate(&ws, "web", &opts).unwrap();
    assert!(
        text.contains(
            "LABEL org.overthinkos.skills=\"https://github.com/overthinkos/overthink-plugins/blob/main/ov-images/skills/web/SKILL.md\"\n"
        ),
        "{text}"
    );
    // Written before the image node's status (the last one in the text:
    // its parents are printed first), as ov writes it.
    let at = |l: &str| text.rfind(l).unwrap_or_else(|| panic!("{l} in {text}"));
    assert!(at("overthinkos.skills") < at("overthinkos.status"));
    assert_ne!(ws.keys.keys[ws.plan.images["web"].index()], before);
    // Other images have no page: no label.
    assert!(!generate(&ws, "os", &opts)
        .unwrap()
        .contains("overthinkos.skills"));
}
