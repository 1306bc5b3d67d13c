//! Property tests: random strings (line breaks, quotes, backslashes, `$`,
//! `${}`, `$(…)`, NUL, any Unicode) through every spec field that reaches
//! a Containerfile. Each render is either refused or has exactly the
//! instructions the same spec has with a harmless value; ENV values and
//! shell words also arrive as the very string given.
//!
//! Non-UTF-8 cannot get here: specs are JSON strings, and the loader
//! refuses a file that is not UTF-8 before any YAML is read.

use super::*;
// The JSON-level renderers, on hand-made specs; the typed entry points
// only serialize the spec into this JSON.
use super::{image::render_image, layer::render_layer};
use proptest::prelude::*;
use serde_json::json;

/// The instructions of a Containerfile as the builder reads them, by
/// keyword: a line ending in `\` continues the instruction, comment and
/// blank lines inside a continuation do not end it, comment lines outside
/// one are not instructions.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut continuing = false;
    for line in text.split('\n') {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if !continuing {
            let word = t.split_whitespace().next().unwrap_or_default();
            out.push(word.to_ascii_uppercase());
        }
        continuing = line.trim_end_matches([' ', '\t']).ends_with('\\');
    }
    out
}

/// Interesting characters, weighted towards the ones that break contexts.
fn nasty() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => prop::sample::select(vec![
            '\n', '\r', '\0', '\t', ' ', '\'', '"', '\\', '$', '{', '}', '(', ')', '`', ';',
            '&', '|', '<', '>', '#', '~', '/', '=', ':', '*', ',', '\u{1b}', '\u{2028}',
        ]),
        2 => prop::char::range('a', 'z'),
        1 => any::<char>(),
    ];
    prop_oneof![
        prop::collection::vec(c, 0..16).prop_map(|v| v.into_iter().collect()),
        // Whole attack strings, with random text around them.
        (
            "[a-z/]{0,4}",
            prop::sample::select(vec![
                "\nRUN touch /pwned\n",
                "X=1\nRUN echo INJECTED > /pwned\nENV Y",
                "$(touch /pwned)",
                "`touch /pwned`",
                "'; touch /pwned; '",
                "\"; touch /pwned; \"",
                "\\\nRUN touch /pwned",
                "${X:-$(touch /pwned)}",
                "a\r\nRUN touch /pwned",
            ]),
            "[a-z]{0,4}"
        )
            .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
    ]
}

fn layer(mut extra: Json) -> Json {
    let mut spec = json!({
        "layer": "l",
        "context": {"build": ["deb"], "user": "user", "uid": 1000, "gid": 1000},
        "formats": {"deb": {
            "cache_mount": [{"dst": "/var/cache/apt", "sharing": "locked"}],
            "install_template": "RUN {{cacheMounts .CacheMounts}} \\\n{{- range .Repos}}\n    echo \"deb {{.url}}\" > /etc/apt/sources.list.d/{{.name}}.list && \\\n{{- end}}\n    apt-get install -y{{range .Options}} {{.}}{{end}}{{range .Packages}} {{.}}{{end}}\n"
        }},
        "packages": {"deb": {"package": ["curl"]}}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object_mut()) {
        s.append(e);
    }
    spec
}

fn task(verb: &str, arg: &str, mut spec: Json) -> Json {
    spec[verb] = json!(arg);
    json!({"verb": verb, "arg": arg, "spec": spec})
}

fn tasks(t: Json) -> Json {
    layer(json!({"tasks": [t]}))
}

fn image(mut extra: Json) -> Json {
    let mut spec = json!({
        "name": "web",
        "tag": "1",
        "resolved": {"user": "user", "uid": 1000, "gid": 1000, "registry": "ghcr.io/acme"},
        "env": [{"A": "1"}],
        "port": ["8080"],
        "eval": [{"id": "c", "command": "true"}]
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object_mut()) {
        s.append(e);
    }
    spec
}

/// A preamble spec (Debian's bootstrap, user `u`) with `extra` merged in,
/// one level down for `user` and `bootstrap`.
fn preamble(extra: Json) -> Json {
    let mut spec = json!({
        "parent": "base:x",
        "bootstrap": {
            "distro": "debian",
            "install_cmd": "apt-get install -y",
            "package": ["curl"],
            "cache_mount": [{"dst": "/var/cache/apt", "sharing": "locked"}],
            "workaround": ["true"],
        },
        "user": {"name": "u", "uid": 1000, "gid": 1000, "home": "/home/u", "adopted": false},
    });
    for part in ["user", "bootstrap"] {
        if let (Some(s), Some(e)) = (
            spec.get_mut(part).and_then(Json::as_object_mut),
            extra.get(part).and_then(Json::as_object),
        ) {
            s.extend(e.clone());
        }
    }
    spec
}

/// An image spec's `label_layers` with one layer of the image's own,
/// having `fields`.
fn label_layer(mut fields: Json) -> Json {
    fields["name"] = json!("l");
    fields["own"] = json!(true);
    json!({ "label_layers": [fields] })
}

type Field = (&'static str, fn(&str) -> Json, &'static str);

/// Every field of a layer or image spec that reaches the Containerfile,
/// with the harmless value that gives the expected instructions.
fn fields() -> Vec<Field> {
    vec![
        (
            "preamble user",
            |s| preamble(json!({"user": {"name": s}})),
            "u",
        ),
        (
            "preamble home",
            |s| preamble(json!({"user": {"home": s}})),
            "/home/u",
        ),
        (
            "bootstrap package",
            |s| preamble(json!({"bootstrap": {"package": [s]}})),
            "curl",
        ),
        (
            "bootstrap install_cmd",
            |s| preamble(json!({"bootstrap": {"install_cmd": s}})),
            "apt-get install -y",
        ),
        (
            "workaround",
            |s| preamble(json!({"bootstrap": {"workaround": [s]}})),
            "true",
        ),
        (
            "bootstrap cache mount",
            |s| preamble(json!({"bootstrap": {"cache_mount": [{"dst": s}]}})),
            "/var/cache/apt",
        ),
        ("env key", |s| layer(json!({"env": {s: "v"}})), "K"),
        ("env value", |s| layer(json!({"env": {"K": s}})), "v"),
        ("var key", |s| layer(json!({"var": {s: "v"}})), "K"),
        ("var value", |s| layer(json!({"var": {"K": s}})), "v"),
        ("path_append", |s| layer(json!({"path_append": [s]})), "/x"),
        (
            "package",
            |s| layer(json!({"packages": {"deb": {"package": [s]}}})),
            "curl",
        ),
        (
            "option",
            |s| layer(json!({"packages": {"deb": {"package": ["a"], "option": [s]}}})),
            "-q",
        ),
        (
            "repo url",
            |s| {
                layer(
                    json!({"packages": {"deb": {"package": ["a"], "repo": [{"name": "r", "url": s}]}}}),
                )
            },
            "https://x/y",
        ),
        ("mkdir", |s| tasks(task("mkdir", s, json!({}))), "/x"),
        (
            "mkdir mode",
            |s| tasks(task("mkdir", "/x", json!({"mode": s}))),
            "0755",
        ),
        (
            "copy src",
            |s| tasks(task("copy", s, json!({"to": "/x"}))),
            "f",
        ),
        (
            "copy to",
            |s| tasks(task("copy", "f", json!({"to": s}))),
            "/x",
        ),
        (
            "write path",
            |s| tasks(task("write", s, json!({"content": "c"}))),
            "/x",
        ),
        (
            "write content",
            |s| tasks(task("write", "/x", json!({"content": s}))),
            "c",
        ),
        (
            "link",
            |s| tasks(task("link", s, json!({"target": "/t"}))),
            "/x",
        ),
        (
            "link target",
            |s| tasks(task("link", "/x", json!({"target": s}))),
            "/t",
        ),
        (
            "setcap",
            |s| tasks(task("setcap", s, json!({"caps": "cap_x+ep"}))),
            "/x",
        ),
        (
            "setcap caps",
            |s| tasks(task("setcap", "/x", json!({"caps": s}))),
            "cap_x+ep",
        ),
        (
            "download url",
            |s| tasks(task("download", s, json!({"to": "/x"}))),
            "https://x/y",
        ),
        (
            "download to",
            |s| tasks(task("download", "https://x/y", json!({"to": s}))),
            "/x",
        ),
        (
            "download include",
            |s| {
                tasks(task(
                    "download",
                    "https://x/y.tgz",
                    json!({"to": "/x", "include": [s]}),
                ))
            },
            "a",
        ),
        (
            "download env",
            |s| {
                tasks(task(
                    "download",
                    "https://x/y",
                    json!({"to": "/x", "env": {"K": s}}),
                ))
            },
            "v",
        ),
        ("cmd", |s| tasks(task("cmd", s, json!({}))), "true"),
        (
            "cmd env key",
            |s| tasks(task("cmd", "true", json!({"env": {s: "v"}}))),
            "K",
        ),
        (
            "cmd env value",
            |s| tasks(task("cmd", "true", json!({"env": {"K": s}}))),
            "v",
        ),
        (
            "comment",
            |s| tasks(task("mkdir", "/x", json!({"comment": s}))),
            "c",
        ),
        (
            "task user",
            |s| tasks(task("mkdir", "/x", json!({"user": s}))),
            "nobody",
        ),
        ("build", |s| tasks(task("build", s, json!({}))), "all"),
        ("layer name", |s| json!({"layer": s}), "l"),
        ("image name", |s| image(json!({"name": s})), "web"),
        ("image tag", |s| image(json!({"tag": s})), "1"),
        ("image env key", |s| image(json!({"env": [{s: "v"}]})), "K"),
        (
            "image env value",
            |s| image(json!({"env": [{"K": s}]})),
            "v",
        ),
        ("port", |s| image(json!({"port": [s]})), "80"),
        (
            "registry",
            |s| image(json!({"resolved": {"registry": s}})),
            "r",
        ),
        (
            "user name",
            |s| image(json!({"resolved": {"user": s}})),
            "u",
        ),
        ("home", |s| image(json!({"resolved": {"home": s}})), "/h"),
        (
            "eval",
            |s| image(json!({"eval": [{"id": "c", "command": s}]})),
            "true",
        ),
        (
            "use_packaged",
            |s| {
                image(json!({
                    "init": "systemd",
                    "init_def": {"system_enable_template":
                        "RUN{{range .Units}} systemctl enable {{.}};{{end}} true\n"},
                    "services": [{"name": "s", "use_packaged": s}]
                }))
            },
            "nginx.service",
        ),
        (
            "shell init",
            |s| layer(json!({"shell": {"init": format!("x{s}")}})),
            "",
        ),
        (
            "shell per-shell init",
            |s| layer(json!({"shell": {"fish": {"init": format!("x{s}")}}})),
            "",
        ),
        (
            "shell path_append",
            |s| layer(json!({"shell": {"init": "x", "path_append": [s]}})),
            "/opt/bin",
        ),
        (
            "shell path",
            |s| layer(json!({"shell": {"init": "x", "path": format!("/etc/{s}")}})),
            "x.sh",
        ),
        // Label fields of the image's own layers: each stays one LABEL
        // (prefixed so that an empty value, which ov leaves out, is not one).
        (
            "env_accept description",
            |s| {
                image(label_layer(
                    json!({"env_accept": [{"name": "K", "description": s}]}),
                ))
            },
            "d",
        ),
        (
            "env_require name",
            |s| {
                image(label_layer(
                    json!({"env_require": [{"name": format!("K{s}"), "description": ""}]}),
                ))
            },
            "",
        ),
        (
            "volume path",
            |s| {
                image(label_layer(
                    json!({"volume": [{"name": "v", "path": format!("~/{s}")}]}),
                ))
            },
            "data",
        ),
        (
            "mcp_provide url",
            |s| {
                image(label_layer(
                    json!({"mcp_provide": [{"name": "m", "url": format!("u{s}")}]}),
                ))
            },
            "",
        ),
        (
            "secret name",
            |s| image(label_layer(json!({"secret": [{"name": format!("s{s}")}]}))),
            "",
        ),
        (
            "security cap_add",
            |s| image(label_layer(json!({"security": {"cap_add": [s]}}))),
            "NET_ADMIN",
        ),
        (
            "service exec",
            |s| image(label_layer(json!({"service": [{"name": "w", "exec": s}]}))),
            "/bin/w",
        ),
        (
            "shell label",
            |s| image(label_layer(json!({"shell": {"init": format!("x{s}")}}))),
            "",
        ),
        (
            "layer version",
            |s| image(label_layer(json!({"version": format!("v{s}")}))),
            "",
        ),
        (
            "route host",
            |s| image(label_layer(json!({"route": {"host": s, "port": 80}}))),
            "h",
        ),
        (
            "data dest",
            |s| image(label_layer(json!({"data": [{"volume": "v", "dest": s}]}))),
            "d",
        ),
        (
            "network",
            |s| image(json!({"meta": {"network": format!("n{s}")}})),
            "",
        ),
        (
            "oci label key",
            |s| image(json!({"capabilities": {"oci_label": {s: "v"}}})),
            "k",
        ),
        (
            "oci label value",
            |s| image(json!({"capabilities": {"oci_label": {"k": s}}})),
            "v",
        ),
    ]
}

fn render_any(spec: &Json) -> Result<Rendered, RenderError> {
    if spec.get("bootstrap").is_some() {
        serde_json::from_value::<crate::rule::PreambleSpec>(spec.clone())
            .map_err(|e| RenderError::Spec {
                node: "preamble".into(),
                message: e.to_string(),
            })
            .and_then(|p| render_preamble(&p, &RenderOpts::default()))
    } else if spec.get("layer").is_some() {
        render_layer(spec, &RenderOpts::default())
    } else {
        render_image(spec, &RenderOpts::default())
    }
}

/// What `sh` makes of `word` (no variables set).
fn sh_value(word: &str) -> String {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf %s {word}"))
        .env_clear()
        .output()
        .expect("run /bin/sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `s` has no `$VAR`/`${VAR}` the shell would expand on purpose, nor a
/// `~` or `${HOME}`-style name the renderer substitutes.
fn literal_only(s: &str) -> bool {
    !s.starts_with('~')
        && !s
            .char_indices()
            .any(|(i, c)| c == '$' && super::quote::plain_expansion(&s[i + 1..]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_field_adds_or_drops_an_instruction(s in nasty()) {
        for (name, make, benign) in fields() {
            let expected = render_any(&make(benign))
                .unwrap_or_else(|e| panic!("{name}: the harmless spec fails: {e}"));
            // An empty `use_packaged` means no packaged unit: nothing to enable.
            if name == "use_packaged" && s.is_empty() {
                continue;
            }
            // ov writes no registry label for an empty registry.
            if name == "registry" && s.is_empty() {
                continue;
            }
            let Ok(r) = render_any(&make(&s)) else { continue };
            let text = r.containerfile();
            prop_assert!(
                !text.contains(|c: char| c.is_control() && c != '\n' && c != '\t'),
                "{name}: {s:?} left a control character in\n{text}"
            );
            // Who a task runs as decides whether USER steps surround it;
            // everything else must stay, and every USER names a user.
            let keep = |v: Vec<String>| -> Vec<String> {
                v.into_iter().filter(|k| name != "task user" || k != "USER").collect()
            };
            prop_assert_eq!(
                keep(instructions(&text)),
                keep(instructions(&expected.containerfile())),
                "{}: {:?} changed the instructions:\n{}", name, s, text
            );
            for line in text.lines().filter(|l| l.starts_with("USER ")) {
                prop_assert!(super::accept::is_user_spec(&line[5..]), "{name}: {line:?}");
            }
            for (path, _) in &r.context_files {
                prop_assert!(!path.contains(|c: char| c.is_control()), "{name}: staged {path:?}");
            }
        }
    }

    #[test]
    fn env_values_arrive_as_written(s in nasty()) {
        let Ok(r) = render_layer(&layer(json!({"var": {"K": s.clone()}})), &RenderOpts::default())
        else { return Ok(()) };
        let line = r.steps.iter().find(|l| l.starts_with("ENV K=")).expect("ENV K");
        let quoted = &line["ENV K=".len()..];
        prop_assert!(quoted.starts_with('"') && quoted.ends_with('"') && quoted.len() >= 2);
        let mut value = String::new();
        let mut chars = quoted[1..quoted.len() - 1].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => prop_assert!(false, "unescaped quote in {line}"),
                c => value.push(c),
            }
        }
        prop_assert_eq!(value, s);
    }

    #[test]
    fn shell_words_arrive_as_written(s in nasty()) {
        prop_assume!(literal_only(&s) && !s.is_empty());
        let spec = tasks(task("mkdir", &s, json!({})));
        let Ok(r) = render_layer(&spec, &RenderOpts::default()) else { return Ok(()) };
        let line = r.steps.iter().find(|l| l.starts_with("RUN mkdir -p ")).expect("RUN mkdir");
        let word = &line["RUN mkdir -p ".len()..];
        prop_assert_eq!(sh_value(word), s);
    }
}

#[test]
fn the_issue_case_is_refused() {
    let spec = layer(json!({"env": {"X=1\nRUN echo INJECTED > /pwned\nENV Y": "2"}}));
    let e = render_layer(&spec, &RenderOpts::default()).unwrap_err();
    assert!(e.to_string().contains("not a variable name"), "{e}");
}

#[test]
fn the_tokenizer_sees_what_the_builder_sees() {
    assert_eq!(
        instructions("# c\nRUN a \\\n# inside\n\n  b\nENV X=1\nLABEL a=b \\\n  c=d\n"),
        ["RUN", "ENV", "LABEL"]
    );
    assert_eq!(instructions("RUN a\nRUN touch /pwned\n"), ["RUN", "RUN"]);
}
