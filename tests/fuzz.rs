//! Arbitrary input in each kind of file of an otherwise valid project
//! (`tests/fixtures/mini`): the loader must never panic, and must either
//! load the project or say why in at least one error diagnostic.
//!
//! Most cases run the library in-process (`ov::workspace::load_valid`, then
//! `Workspace::open` when that succeeds, so planning and hashing are fuzzed
//! too); a few spawn the binary to check exit codes. 64 cases per file kind
//! and input style keeps the module to a few seconds in a debug build. Set
//! `PROPTEST_CASES` to fuzz longer, `PROPTEST_RNG_SEED` to replay a run.

use crate::util::{Ov, Project};
use ov::workspace::{load_valid, Dirs, Workspace};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const CASES: u32 = 64;

/// `cases` per test, unless `PROPTEST_CASES` asks for more (or fewer).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // The failing input is printed; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Writes `contents` to `file` in a fresh copy of the mini project and loads
/// it in-process.
fn load_in_process(file: &str, contents: &[u8]) -> Result<(), TestCaseError> {
    let project = Project::mini();
    project.write(file, contents);
    let cache = tempfile::TempDir::new().unwrap();
    let dirs = Dirs {
        cache: cache.path().join("cache"),
        repo_cache: cache.path().join("repos"),
        state: cache.path().join("state"),
    };
    match load_valid(project.path(), &dirs) {
        Ok(_) => {
            // Loads and validates: planning it must not panic either.
            if let Err(e) = Workspace::open(project.path(), &dirs) {
                prop_assert!(!e.to_string().is_empty(), "an error without a message");
            }
        }
        Err(invalid) => {
            prop_assert!(
                invalid.0.errors().next().is_some(),
                "rejected without an error diagnostic: {:?}",
                invalid.0.items()
            );
        }
    }
    Ok(())
}

/// Same, through the binary: exit 0 or 2 (never a panic's 101 or a
/// signal), and something on stderr when it is 2.
fn load_with_binary(file: &str, contents: &[u8]) -> Result<(), TestCaseError> {
    let project = Project::mini();
    project.write(file, contents);
    let ov = Ov::new(project.path());
    for args in [&["image", "validate"][..], &["build", "--dry-run"][..]] {
        let run = ov.run(args);
        prop_assert!(
            matches!(run.code, Some(0) | Some(2)),
            "`{}` exited {:?}\n{}",
            run.cmd,
            run.code,
            run.stderr
        );
        if run.code == Some(2) {
            prop_assert!(!run.stderr.trim().is_empty(), "exit 2 with empty stderr");
        }
    }
    Ok(())
}

// ------------------------------------------------------------ input styles

/// Tokens that YAML (and the ov loader) give meaning to, glued at random.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just(": ".to_string()),
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("---\n".to_string()),
        Just("...\n".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(", ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!str ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("|\n".to_string()),
        Just(">-\n".to_string()),
        Just("# c\n".to_string()),
        Just("? ".to_string()),
        Just("\t".to_string()),
        Just("\u{feff}".to_string()),
        word(),
        key(),
    ];
    prop::collection::vec(token, 0..64).prop_map(|t| t.concat())
}

/// A YAML value tree, emitted in block style.
#[derive(Clone, Debug)]
enum Y {
    S(String),
    Seq(Vec<Y>),
    Map(Vec<(String, Y)>),
}

/// Scalars an ov file might hold, and some it should not.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "app", "base-os", "greeting", "web", "app-vm", "missing",
            "quay.io/fedora/fedora:43", "builder:boot", "scratch",
            "@github.com/acme/shared/layers/x:v1", "@github.com/acme/shared/base.yml:v1",
            "@bad", "../outside", "/etc/passwd", "hello.txt", "layers",
            "fedora", "fedora:43", "ubuntu:24.04", "rpm", "deb", "cloud_image", "bootc",
            "bootstrap", "clone", "systemd", "supervisord", "true", "false", "yes",
            "0", "-1", "4", "4294967296", "0644", "1e400", ".nan", "2026.141.1600", "~", "",
            "10G", "linux/amd64", "x:y:z", "üñíçødé", "a b", "${USER}",
        ])
        .prop_map(String::from),
        // Starts with a letter so a random `discover:` root is never `/`.
        1 => "[a-z][a-z0-9:/._@-]{0,11}",
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => (1usize..400).prop_map(|n| "x".repeat(n)),
    ]
}

/// Keys from every kind of entity (so they land in the wrong place too),
/// legacy and drifted spellings, and junk.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            // root
            "version", "include", "discover", "defaults", "distro", "builder", "init",
            "layer", "image", "vm", "pod", "deploy", "images", "vms", "includes",
            // image
            "enabled", "base", "from", "bootstrap_builder_image", "platform", "tag",
            "registry", "build", "produce", "port", "user", "uid", "gid", "user_policy",
            "env", "eval", "description", "platforms", "ports", "tests", "bootc", "pkg",
            // layer
            "name", "require", "package", "task", "var", "path_append", "service",
            "capabilities", "depends", "layers", "rpm", "copy", "to", "cmd", "write",
            "content", "mkdir", "link", "download", "setcap", "mode", "scope", "exec",
            "use_packaged", "autostart",
            // vm
            "source", "kind", "url", "checksum", "disk_size", "ram", "cpus", "cpu",
            "network", "port_forward", "ssh", "cloud_init", "libvirt", "device",
            // build.yml
            "inherits", "format", "install_template", "detect_file", "stage_template",
            "inline", "layer_field", "model", "path", "recursive",
        ])
        .prop_map(String::from),
        1 => "[a-z_]{1,10}",
    ]
}

fn value() -> impl Strategy<Value = Y> {
    word().prop_map(Y::S).prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Y::Seq),
            prop::collection::vec((key(), inner), 0..5).prop_map(Y::Map),
        ]
    })
}

/// A map whose keys come from `keys` (mostly) or anywhere.
fn entity(keys: &'static [&'static str]) -> impl Strategy<Value = Y> {
    let k = prop_oneof![4 => prop::sample::select(keys).prop_map(String::from), 1 => key()];
    prop::collection::vec((k, value()), 0..8).prop_map(Y::Map)
}

/// `{root: {name: entity}}`, the shape of image.yml, vm.yml and build.yml.
fn named(root: &'static [&'static str], keys: &'static [&'static str]) -> impl Strategy<Value = Y> {
    let names = prop::collection::vec((word(), entity(keys)), 0..4).prop_map(Y::Map);
    prop::collection::vec(
        (prop::sample::select(root).prop_map(String::from), names),
        1..3,
    )
    .prop_map(Y::Map)
}

const IMAGE_KEYS: &[&str] = &[
    "enabled",
    "base",
    "from",
    "bootstrap_builder_image",
    "layer",
    "platform",
    "tag",
    "registry",
    "distro",
    "build",
    "builder",
    "produce",
    "port",
    "user",
    "uid",
    "gid",
    "user_policy",
    "init",
    "eval",
    "merge",
    "description",
    "platforms",
    "bootc",
    "status",
];
const LAYER_KEYS: &[&str] = &[
    "name",
    "require",
    "layer",
    "package",
    "distro",
    "task",
    "var",
    "env",
    "path_append",
    "port",
    "service",
    "eval",
    "capabilities",
    "libvirt",
    "from",
    "depends",
    "tests",
    "rpm",
];
const VM_KEYS: &[&str] = &[
    "source",
    "disk_size",
    "ram",
    "cpus",
    "cpu",
    "firmware",
    "network",
    "ssh",
    "cloud_init",
    "libvirt",
    "eval",
    "backend",
    "packages",
];
const BUILD_KEYS: &[&str] = &[
    "inherits",
    "bootstrap",
    "format",
    "base_user",
    "kind",
    "detect_file",
    "stage_template",
    "inline",
    "install_template",
    "layer_field",
    "depends_layer",
    "model",
    "base_packages",
];
const ROOT_KEYS: &[&str] = &[
    "version", "include", "discover", "defaults", "image", "layer", "vm", "distro", "builder",
];

fn s(text: &str) -> Y {
    Y::S(text.to_string())
}

fn seq(items: &[&str]) -> Y {
    Y::Seq(items.iter().map(|i| s(i)).collect())
}

fn map(entries: Vec<(&str, Y)>) -> Y {
    Y::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// `base` (a map) with a few random entries added after its own, which may
/// repeat and so override its keys.
fn with_extras(base: Y, keys: &'static [&'static str]) -> impl Strategy<Value = Y> {
    let k = prop_oneof![4 => prop::sample::select(keys).prop_map(String::from), 1 => key()];
    let v = prop_oneof![2 => word().prop_map(Y::S), 1 => value()];
    prop::collection::vec((k, v), 0..3).prop_map(move |extra| match base.clone() {
        Y::Map(mut m) => {
            m.extend(extra);
            Y::Map(m)
        }
        other => other,
    })
}

/// `{root: {name: entity, …}}` where the named entities start from the mini
/// project's valid ones and get random entries, plus random named entities.
fn named_with_valid(
    root: &'static str,
    valid: Vec<(&'static str, Y)>,
    keys: &'static [&'static str],
) -> impl Strategy<Value = Y> {
    let bodies: Vec<BoxedStrategy<(String, Y)>> = valid
        .into_iter()
        .map(|(name, body)| {
            with_extras(body, keys)
                .prop_map(move |b| (name.to_string(), b))
                .boxed()
        })
        .collect();
    (bodies, prop::collection::vec((word(), entity(keys)), 0..2)).prop_map(
        move |(mut named, more)| {
            named.extend(more);
            Y::Map(vec![(root.to_string(), Y::Map(named))])
        },
    )
}

/// YAML for `file`: mostly the mini project's valid document with random
/// entries mixed in (so later stages see input), sometimes anything shaped
/// like that kind of file.
fn structured(file: &str) -> BoxedStrategy<String> {
    let (near_valid, anything): (BoxedStrategy<Y>, BoxedStrategy<Y>) = match file {
        "overthink.yml" => (
            with_extras(
                map(vec![
                    ("version", s("2026.141.1600")),
                    ("include", seq(&["image.yml", "vm.yml", "build.yml"])),
                    ("discover", map(vec![("layer", seq(&["layers"]))])),
                    ("defaults", map(vec![("build", seq(&["rpm"]))])),
                ]),
                ROOT_KEYS,
            )
            .boxed(),
            entity(ROOT_KEYS).boxed(),
        ),
        "image.yml" => (
            named_with_valid(
                "image",
                vec![
                    (
                        "base-os",
                        map(vec![
                            ("base", s("quay.io/fedora/fedora:43")),
                            ("distro", seq(&["fedora:43", "fedora"])),
                        ]),
                    ),
                    (
                        "app",
                        map(vec![
                            ("base", s("base-os")),
                            ("layer", seq(&["greeting", "web"])),
                        ]),
                    ),
                ],
                IMAGE_KEYS,
            )
            .boxed(),
            named(&["image", "image", "images", "layer"], IMAGE_KEYS).boxed(),
        ),
        "vm.yml" => (
            named_with_valid(
                "vm",
                vec![(
                    "app-vm",
                    map(vec![
                        (
                            "source",
                            map(vec![("kind", s("bootc")), ("image", s("app"))]),
                        ),
                        ("disk_size", s("10G")),
                    ]),
                )],
                VM_KEYS,
            )
            .boxed(),
            named(&["vm", "vm", "vms", "image"], VM_KEYS).boxed(),
        ),
        "build.yml" => (
            named_with_valid(
                "distro",
                vec![(
                    "fedora",
                    map(vec![(
                        "format",
                        map(vec![(
                            "rpm",
                            map(vec![("install_template", s("RUN dnf install"))]),
                        )]),
                    )]),
                )],
                BUILD_KEYS,
            )
            .boxed(),
            named(&["distro", "builder", "init"], BUILD_KEYS).boxed(),
        ),
        _ => (
            with_extras(
                map(vec![
                    ("require", seq(&["greeting"])),
                    ("package", seq(&["nginx"])),
                ]),
                LAYER_KEYS,
            )
            .prop_map(|body| Y::Map(vec![("layer".into(), body)]))
            .boxed(),
            entity(LAYER_KEYS)
                .prop_map(|body| Y::Map(vec![("layer".into(), body)]))
                .boxed(),
        ),
    };
    prop_oneof![3 => near_valid, 1 => anything]
        .prop_map(|y| emit(&y))
        .boxed()
}

fn emit(y: &Y) -> String {
    let mut out = String::new();
    emit_into(y, 0, &mut out);
    out
}

fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:-".contains(c))
        && !s.ends_with(':');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn emit_into(y: &Y, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Y::S(s) => {
            out.push_str(&pad);
            out.push_str(&scalar(s));
            out.push('\n');
        }
        Y::Seq(items) if items.is_empty() => out.push_str(&format!("{pad}[]\n")),
        Y::Map(entries) if entries.is_empty() => out.push_str(&format!("{pad}{{}}\n")),
        Y::Seq(items) => {
            for item in items {
                match item {
                    Y::S(s) => out.push_str(&format!("{pad}- {}\n", scalar(s))),
                    other => {
                        out.push_str(&format!("{pad}-\n"));
                        emit_into(other, indent + 2, out);
                    }
                }
            }
        }
        Y::Map(entries) => {
            for (k, v) in entries {
                match v {
                    Y::S(s) => out.push_str(&format!("{pad}{}: {}\n", scalar(k), scalar(s))),
                    Y::Seq(i) if i.is_empty() => out.push_str(&format!("{pad}{}: []\n", scalar(k))),
                    Y::Map(m) if m.is_empty() => {
                        out.push_str(&format!("{pad}{}: {{}}\n", scalar(k)))
                    }
                    other => {
                        out.push_str(&format!("{pad}{}:\n", scalar(k)));
                        emit_into(other, indent + 2, out);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------ the tests

macro_rules! fuzz_file {
    ($module:ident, $file:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(config(CASES))]

                #[test]
                fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                    load_in_process($file, &bytes)?;
                }

                #[test]
                fn yamlish_text(text in yamlish()) {
                    load_in_process($file, text.as_bytes())?;
                }

                #[test]
                fn structured_yaml(text in structured($file)) {
                    load_in_process($file, text.as_bytes())?;
                }
            }
        }
    };
}

fuzz_file!(overthink_yml, "overthink.yml");
fuzz_file!(image_yml, "image.yml");
fuzz_file!(layer_yml, "layers/web/layer.yml");
fuzz_file!(vm_yml, "vm.yml");
fuzz_file!(build_yml, "build.yml");

const FILES: &[&str] = &[
    "overthink.yml",
    "image.yml",
    "layers/web/layer.yml",
    "vm.yml",
    "build.yml",
];

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn binary_exits_0_or_2_on_structured_yaml(
        (file, text) in prop::sample::select(FILES).prop_flat_map(|f| (Just(f), structured(f)))
    ) {
        load_with_binary(file, text.as_bytes())?;
    }

    #[test]
    fn binary_exits_0_or_2_on_arbitrary_bytes(
        file in prop::sample::select(FILES),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        load_with_binary(file, &bytes)?;
    }
}

#[test]
fn the_generator_can_produce_the_valid_files() {
    // The emitter writes YAML the loader reads back as meant.
    let y = Y::Map(vec![(
        "layer".into(),
        Y::Map(vec![
            ("require".into(), Y::Seq(vec![Y::S("greeting".into())])),
            (
                "package".into(),
                Y::Seq(vec![Y::S("nginx".into()), Y::S("@x".into())]),
            ),
            (
                "env".into(),
                Y::Map(vec![("A".into(), Y::S("it's".into()))]),
            ),
            (
                "eval".into(),
                Y::Seq(vec![Y::Map(vec![("id".into(), Y::S("x".into()))])]),
            ),
        ]),
    )]);
    let text = emit(&y);
    let docs = ov::load::yaml::parse(&text).unwrap();
    assert_eq!(
        docs[0].to_json(),
        serde_json::json!({"layer": {"require": ["greeting"], "package": ["nginx", "@x"], "env": {"A": "it's"}, "eval": [{"id": "x"}]}}),
        "{text}"
    );
    load_in_process("layers/web/layer.yml", text.as_bytes()).unwrap();
}

// ------------------------------------------------------------ hostile files

/// Hand-made nasty inputs, through the binary.
fn hostile(file: &str, contents: &[u8]) {
    let project = Project::mini();
    project.write(file, contents);
    let ov = Ov::new(project.path());
    let run = ov.run(&["image", "validate"]);
    assert!(
        matches!(run.code, Some(0) | Some(2)),
        "{file}: exit {:?}\n{}",
        run.code,
        run.stderr
    );
    if run.code == Some(2) {
        assert!(!run.stderr.trim().is_empty());
    }
    assert!(run.elapsed.as_secs() < 10, "{file}: took {:?}", run.elapsed);
}

#[test]
fn hostile_nul_bytes_and_bad_utf8() {
    hostile("image.yml", b"image:\n  app:\0\n");
    hostile("image.yml", b"image:\n  app: {base: \xff\xfe}\n");
    hostile(
        "layers/web/layer.yml",
        b"\xef\xbb\xbflayer:\n  package: [nginx]\n",
    );
}

#[test]
fn hostile_alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("image:\n  app:\n    layer: [web]\n");
    let project = Project::mini();
    project.write("image.yml", &text);
    Ov::new(project.path())
        .bad(&["image", "validate"])
        .stderr_has(&["image.yml:", "aliases expand to too many nodes"]);
}

#[test]
fn hostile_deep_nesting_is_refused() {
    let n = 100_000;
    let text = format!("image:\n  app: {}{}\n", "[".repeat(n), "]".repeat(n));
    let project = Project::mini();
    project.write("image.yml", &text);
    Ov::new(project.path())
        .bad(&["image", "validate"])
        .stderr_has(&["image.yml:2:", "not valid YAML"]);
}

#[test]
fn hostile_long_lines_and_many_entries() {
    hostile(
        "image.yml",
        format!("image:\n  app:\n    base: {}\n", "q".repeat(1 << 20)).as_bytes(),
    );
    let many: String = (0..5000)
        .map(|i| format!("  img{i}:\n    base: app\n"))
        .collect();
    hostile(
        "image.yml",
        format!("image:\n  app:\n    base: quay.io/x/y:1\n{many}").as_bytes(),
    );
}

#[test]
fn hostile_directory_where_a_file_belongs() {
    let project = Project::mini();
    project.remove("image.yml");
    std::fs::create_dir(project.path().join("image.yml")).unwrap();
    Ov::new(project.path())
        .bad(&["image", "validate"])
        .stderr_has(&["image.yml"]);
}

#[test]
fn hostile_empty_files() {
    for f in FILES {
        hostile(f, b"");
    }
}
