//! Rendering tests on hand-made specs shaped as the planner builds them.
//! The templates are build.yml's (the shared fixtures' copy of
//! overthinkos/overthink at 7d9cc818, MIT).

use super::*;
// The JSON-level renderers, on hand-made specs; the typed entry points
// only serialize the spec into this JSON.
use super::{image::render_image, layer::render_layer};
use serde_json::json;

/// build.yml `distro.debian.format.deb.install_template`, verbatim.
const DEB_TEMPLATE: &str = r#"RUN {{cacheMounts .CacheMounts}} \
{{- range .Repos}}
{{- if .key}}
    curl -fsSL {{quote .key}} | gpg --dearmor -o {{default .signed_by (printf "/etc/apt/keyrings/%s.gpg" .name)}} && \
{{- end}}
{{- if .url}}
    echo "deb [{{if or .key .signed_by}}signed-by={{default .signed_by (printf "/etc/apt/keyrings/%s.gpg" .name)}}{{end}}] {{.url}} {{default .suite "stable"}}{{if eq (default .suite "stable") "/"}}{{else}} {{default .components "main"}}{{end}}" > /etc/apt/sources.list.d/{{.name}}.list && \
{{- end}}
{{- if .ppa}}
    add-apt-repository -y ppa:{{.ppa}} && \
{{- end}}
{{- end}}
    apt-get update && apt-get install -y --no-install-recommends
{{- range .Options}} {{.}}{{end}}
{{- range .Packages}} \
      {{.}}{{end}}
"#;

/// build.yml `distro.fedora.format.rpm.install_template`, verbatim.
const RPM_TEMPLATE: &str = r#"RUN {{cacheMounts .CacheMounts}} \
{{- range .Repos}}{{if .rpm}}
    dnf install -y {{quote .rpm}} && \
{{- end}}{{end}}
{{- if or (anyRepoHasURL .Repos) .Copr}}
    dnf install -y dnf5-plugins && \
{{- end}}
{{- range .Repos}}{{if .url}}
{{- if hasSuffix (printf "%s" .url) ".repo"}}
    dnf5 config-manager addrepo --from-repofile={{quote .url}} 2>/dev/null || true && \
    dnf5 config-manager setopt {{quote (printf "%s.enabled=0" .name)}} && \
{{- else}}
    printf '%s\n' '[{{.name}}]' 'name={{.name}}' 'baseurl={{.url}}' 'enabled=0' 'gpgcheck={{if eq (default .gpgcheck "true") "false"}}0{{else}}1{{end}}'{{if .gpgkey}} 'gpgkey={{.gpgkey}}'{{end}} > /etc/yum.repos.d/{{.name}}.repo && \
{{- end}}
{{- if .gpgkey}}
    rpm --import {{.gpgkey}} || true && \
{{- end}}
{{- if eq (default .gpgcheck "true") "false"}}
{{- if hasSuffix (printf "%s" .url) ".repo"}}
    dnf5 config-manager setopt {{quote (printf "%s.gpgcheck=0" .name)}} && \
{{- end}}
{{- end}}{{end}}{{end}}
{{- range .Copr}}
    dnf5 copr enable -y {{.}} && \
{{- end}}
{{- range .Modules}}
    dnf module reset -y {{splitFirst . ":"}} && \
    dnf module enable -y {{.}} && \
{{- end}}
    dnf install -y{{range .Options}} {{.}}{{end}}
{{- range .Repos}}{{if .url}} --enable-repo={{quote .name}}{{end}}{{end}}
{{- range .Exclude}} --exclude='{{.}}'{{end}}
{{- range .Packages}} \
      {{.}}{{end}}
{{- range .Copr}} && \
    dnf5 config-manager setopt "copr:copr.fedorainfracloud.org:{{replace . "/" ":"}}.enabled=0"
{{- end}}
"#;

/// build.yml `init.supervisord.service_schema.service_template`, verbatim.
const SUPERVISORD_TEMPLATE: &str = r#"{{- if eq .Kind "eventlistener" -}}
[eventlistener:{{.Name}}]
{{- else -}}
[program:{{.Name}}]
{{- end}}
command={{.Exec}}
{{- if eq .Kind "eventlistener" -}}
{{- if .Events}}
events={{.Events}}
{{- end -}}
{{- end}}
{{- if .AutoStart}}
autostart={{if derefBool .AutoStart}}true{{else}}false{{end}}
{{- else if not (eq .Kind "eventlistener")}}
autostart=true
{{- end}}
{{- if not (eq .Kind "eventlistener")}}
autorestart={{if eq .Restart "no"}}false{{else}}true{{end}}
{{- end}}
{{- if .StartRetries}}
startretries={{.StartRetries}}
{{- end}}
{{- if .StartSecs}}
startsecs={{.StartSecs}}
{{- end}}
{{- if .ExitCodes}}
exitcodes={{.ExitCodes}}
{{- end}}
{{- if .StopSignal}}
stopsignal={{.StopSignal}}
{{- end}}
{{- if .StopTimeout}}
stopwaitsecs={{.StopTimeout}}
{{- end}}
{{- if .Priority}}
priority={{.Priority}}
{{- end}}
{{- if .WorkingDirectory}}
directory={{.WorkingDirectory}}
{{- end}}
{{- if .User}}
user={{.User}}
{{- end}}
{{- if .EnvList}}
environment={{range $i, $kv := .EnvList}}{{if $i}},{{end}}{{$kv.Key}}="{{$kv.Value}}"{{end}}
{{- end}}
stdout_logfile=/dev/fd/1
stdout_logfile_maxbytes=0
{{- if not (eq .Kind "eventlistener")}}
redirect_stderr=true
{{- else}}
stderr_logfile=/dev/fd/2
stderr_logfile_maxbytes=0
{{- end}}
"#;

/// build.yml `init.systemd.system_enable_template`, verbatim.
const SYSTEMD_ENABLE: &str = "# Enable system-level services\nRUN{{range $i, $unit := .Units}}{{if $i}} && \\\n   {{else}} {{end}}systemctl enable {{$unit}}{{end}}\n";

fn task(verb: &str, arg: &str, mut spec: Json) -> Json {
    spec[verb] = json!(arg);
    json!({"verb": verb, "arg": arg, "spec": spec})
}

/// A Debian layer spec: the deb format with build.yml's template and its
/// two locked cache mounts.
fn deb_layer(tasks: Vec<Json>) -> Json {
    json!({
        "layer": "tools",
        "parent": "base:debian:13",
        "context": {
            "distro": ["debian:13", "debian"], "build": ["deb"], "user": "user",
            "uid": 1000, "gid": 1000, "user_policy": "auto", "build_distro": "debian"
        },
        "packages": {"deb": {
            "package": ["curl", "git"],
            "repo": [{"name": "nodesource", "url": "https://deb.nodesource.com/node_20.x",
                      "key": "https://deb.nodesource.com/gpgkey/nodesource.gpg.key",
                      "suite": "nodistro"}],
            "option": ["-o", "Dpkg::Options::=--force-confnew"]
        }},
        "formats": {"deb": {
            "cache_mount": [{"dst": "/var/cache/apt", "sharing": "locked"},
                            {"dst": "/var/lib/apt", "sharing": "locked"}],
            "section_field": {"option": "list", "package": "list", "repo": "list_of_maps"},
            "install_template": DEB_TEMPLATE
        }},
        "tasks": tasks,
        "var": {"VERSION": "1.2"},
        "env": {"TOOLS_HOME": "~/tools"},
        "path_append": ["~/.local/bin", "/opt/tools/bin"],
        "stages": {}
    })
}

fn render(spec: &Json) -> Rendered {
    render_layer(spec, &RenderOpts::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn debian_layer() {
    let spec = deb_layer(vec![
        task("mkdir", "/opt/tools", json!({"mode": "0755"})),
        task("copy", "bin/tool", json!({"to": "/opt/tools/bin/tool"})),
        task(
            "write",
            "~/.config/tools/conf",
            json!({"content": "a = 1\n", "user": "${USER}", "mode": "0600"}),
        ),
        task("cmd", "tool --init", json!({})),
        task("cmd", "set -x\ntool --check\n", json!({"user": "${USER}"})),
    ]);
    let r = render(&spec);
    let conf = blake3::hash(b"a = 1\n").to_hex().to_string();
    let script = "set -x\ntool --check\n";
    let script_hash = blake3::hash(script.as_bytes()).to_hex().to_string();
    let cache = "--mount=type=cache,id=ov-var-cache-apt,dst=/var/cache/apt,sharing=locked \\\n    \
                 --mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt,sharing=locked";
    let want: Vec<String> = vec![
        "# Layer: tools".into(),
        "USER root".into(),
        "ENV VERSION=\"1.2\"".into(),
        "ENV TOOLS_HOME=\"/home/user/tools\"".into(),
        "ENV PATH=\"/home/user/.local/bin:/opt/tools/bin:${PATH}\"".into(),
        format!(
            "RUN {cache} \\\n    \
             curl -fsSL \"https://deb.nodesource.com/gpgkey/nodesource.gpg.key\" | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg && \\\n    \
             echo \"deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main\" > /etc/apt/sources.list.d/nodesource.list && \\\n    \
             apt-get update && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confnew \\\n      \
             curl \\\n      \
             git"
        ),
        "RUN mkdir -p /opt/tools && chmod 0755 /opt/tools".into(),
        "COPY --chmod=0755 bin/tool /opt/tools/bin/tool".into(),
        "USER 1000".into(),
        "RUN mkdir -p /home/user/.config/tools".into(),
        format!(
            "COPY --chmod=0600 --chown=1000:1000 .ov/write/{conf} /home/user/.config/tools/conf"
        ),
        "USER root".into(),
        format!("RUN --mount=type=bind,target=/ctx \\\n    {cache} \\\n    tool --init"),
        "USER 1000".into(),
        format!("RUN --mount=type=bind,target=/ctx \\\n    bash -e /ctx/.ov/cmd/{script_hash}.sh"),
        "USER root".into(),
    ];
    assert_eq!(r.steps, want, "\n{}", r.containerfile());
    assert_eq!(
        r.context_files,
        vec![
            (
                format!(".ov/cmd/{script_hash}.sh"),
                script.as_bytes().to_vec()
            ),
            (format!(".ov/write/{conf}"), b"a = 1\n".to_vec()),
        ]
    );
}

/// The rpm template's other branches: an `rpm:` repo package, a baseurl
/// repo without gpg checks, copr, modules, options.
#[test]
fn fedora_rpm_sections() {
    let spec = json!({
        "layer": "dev",
        "context": {"build": ["rpm"], "build_distro": "fedora"},
        "packages": {"rpm": {
            "package": ["nodejs", "gh"],
            "repo": [{"name": "rpmfusion", "rpm": "https://x/rpmfusion.rpm"},
                     {"name": "gh", "url": "https://cli.github.com/packages/rpm", "gpgcheck": "false"}],
            "copr": ["atim/starship"],
            "module": ["nodejs:20"],
            "option": ["--setopt=install_weak_deps=False"]
        }},
        "formats": {"rpm": {"cache_mount": [{"dst": "/var/cache/libdnf5", "sharing": "locked"}],
                            "install_template": RPM_TEMPLATE}}
    });
    let r = render(&spec);
    assert_eq!(
        r.steps[2],
        "RUN --mount=type=cache,id=ov-var-cache-libdnf5,dst=/var/cache/libdnf5,sharing=locked \\\n    \
         dnf install -y \"https://x/rpmfusion.rpm\" && \\\n    \
         dnf install -y dnf5-plugins && \\\n    \
         printf '%s\\n' '[gh]' 'name=gh' 'baseurl=https://cli.github.com/packages/rpm' 'enabled=0' 'gpgcheck=0' > /etc/yum.repos.d/gh.repo && \\\n    \
         dnf5 copr enable -y atim/starship && \\\n    \
         dnf module reset -y nodejs && \\\n    \
         dnf module enable -y nodejs:20 && \\\n    \
         dnf install -y --setopt=install_weak_deps=False --enable-repo=\"gh\" \\\n      \
         nodejs \\\n      \
         gh && \\\n    \
         dnf5 config-manager setopt \"copr:copr.fedorainfracloud.org:atim:starship.enabled=0\""
    );
}

#[test]
fn the_same_spec_renders_the_same_bytes() {
    let spec = deb_layer(vec![task("cmd", "true", json!({}))]);
    let a = render(&spec);
    assert_eq!(a, render(&spec));
    // Key order in maps does not matter (the spec may come back from
    // canonical JSON, keys sorted).
    let mut other = spec.clone();
    other["var"] = json!({"B": "2", "A": "1"});
    let mut sorted = spec.clone();
    sorted["var"] = json!({"A": "1", "B": "2"});
    assert_eq!(render(&other), render(&sorted));
    let canonical: Json = serde_json::from_slice(&crate::canonical_json(&spec)).unwrap();
    assert_eq!(render(&canonical), a);
}

#[test]
fn unlocked_cache_mounts_drop_sharing_locked() {
    let spec = deb_layer(vec![task("cmd", "true", json!({}))]);
    let r = render_layer(
        &spec,
        &RenderOpts {
            locked_cache_mounts: false,
        },
    )
    .unwrap();
    let text = r.containerfile();
    assert!(!text.contains("sharing=locked"), "{text}");
    assert!(
        text.contains("--mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt \\"),
        "{text}"
    );
}

#[test]
fn every_verb() {
    let spec = deb_layer(vec![
        task("mkdir", "/a", json!({})),
        task("mkdir", "/b c", json!({"mode": "0700"})),
        task(
            "link",
            "/usr/bin/t",
            json!({"target": "/opt/tools/bin/tool"}),
        ),
        task("link", "~/bin/t", json!({"target": "/opt/tools/bin/tool"})),
        task(
            "setcap",
            "/opt/tools/bin/tool",
            json!({"caps": "cap_net_bind_service=+ep"}),
        ),
        task("setcap", "/usr/bin/ping", json!({})),
        task(
            "download",
            "https://example.org/t-${BUILD_ARCH}.tar.gz",
            json!({"to": "/opt/t", "strip_components": 1, "include": ["t/bin"], "mode": "0755"}),
        ),
        task(
            "download",
            "https://example.org/t-${ARCH}",
            json!({"to": "~/bin/t", "mode": "0755", "user": "${USER}"}),
        ),
        task(
            "download",
            "https://example.org/install.sh",
            json!({"extract": "sh", "env": {"PREFIX": "/opt/x"}}),
        ),
        task(
            "download",
            "https://example.org/x.zip",
            json!({"extract": "zip", "to": "/opt/x"}),
        ),
        task("build", "all", json!({"comment": "builders run here"})),
    ]);
    let r = render(&spec);
    let text = r.containerfile();
    let has = |s: &str| assert!(text.contains(s), "missing {s:?} in\n{text}");
    // ${ARCH} in a task: the layer exports it from the target platform.
    has("ARG TARGETARCH\nENV ARCH=${TARGETARCH}\n");
    has("RUN mkdir -p /a \"/b c\" && chmod 0700 \"/b c\"\n");
    has("RUN ln -sf /opt/tools/bin/tool /usr/bin/t && ln -sf /opt/tools/bin/tool /home/user/bin/t\n");
    has("RUN setcap cap_net_bind_service=+ep /opt/tools/bin/tool && setcap -r /usr/bin/ping 2>/dev/null || true\n");
    has("RUN --mount=type=cache,id=ov-tmp-downloads,dst=/tmp/downloads,sharing=locked \\\n    \
         export BUILD_ARCH=\"$(uname -m)\" && \\\n    \
         f=/tmp/downloads/$(printf %s \"https://example.org/t-${BUILD_ARCH}.tar.gz\" | sha256sum | cut -c1-64) && \\\n    \
         { [ -s \"$f\" ] || { curl -fsSL \"https://example.org/t-${BUILD_ARCH}.tar.gz\" -o \"$f.part\" && mv -f \"$f.part\" \"$f\"; }; } && \\\n    \
         mkdir -p /opt/t && tar -xzf \"$f\" --strip-components=1 -C /opt/t t/bin && chmod -R 0755 /opt/t\n");
    // As the image user: a download cache that user owns.
    has("USER 1000\nRUN --mount=type=cache,id=ov-tmp-downloads-uid1000,dst=/tmp/downloads,uid=1000,gid=1000 \\\n");
    has("install -D -m 0755 \"$f\" /home/user/bin/t\nUSER root\n");
    has("export PREFIX='/opt/x' && \\\n");
    has("sh \"$f\"\n");
    has("mkdir -p /opt/x && unzip -o \"$f\" -d /opt/x\n");
    has("# builders run here\n# build: all (this layer triggers no builder)\n");
}

#[test]
fn unknown_verb_is_an_error_naming_layer_index_and_verb() {
    let spec = deb_layer(vec![
        task("mkdir", "/a", json!({})),
        json!({"verb": "frobnicate", "arg": "x", "spec": {"frobnicate": "x"}}),
    ]);
    let e = render_layer(&spec, &RenderOpts::default()).unwrap_err();
    assert_eq!(
        e,
        RenderError::UnknownVerb {
            layer: "tools".into(),
            index: 1,
            verb: "frobnicate".into()
        }
    );
    assert!(e
        .to_string()
        .starts_with("layer `tools`: task[1] has unknown verb `frobnicate`"));
}

#[test]
fn bad_tasks_are_errors_naming_layer_index_and_verb() {
    let cases = [
        (task("link", "/x", json!({})), "link", "needs `target`"),
        (
            task("copy", "../secret", json!({"to": "/x"})),
            "copy",
            "inside the layer directory",
        ),
        (task("copy", "file", json!({})), "copy", "needs `to`"),
        (task("write", "/x", json!({})), "write", "needs `content`"),
        (
            task("mkdir", "/x", json!({"mode": "rwx"})),
            "mkdir",
            "must be octal",
        ),
        (
            task("download", "https://x/y.bin", json!({})),
            "download",
            "needs `to`",
        ),
        (
            task(
                "download",
                "https://x/y",
                json!({"to": "/y", "extract": "rar"}),
            ),
            "download",
            "unknown `extract: rar`",
        ),
        (task("cmd", "", json!({})), "cmd", "is empty"),
    ];
    for (t, verb, msg) in cases {
        let e = render_layer(&deb_layer(vec![t]), &RenderOpts::default()).unwrap_err();
        let RenderError::Task {
            layer,
            index,
            verb: v,
            message,
        } = &e
        else {
            panic!("{verb}: {e:?}");
        };
        assert_eq!(
            (layer.as_str(), *index, v.as_str()),
            ("tools", 0, verb),
            "{e}"
        );
        assert!(message.contains(msg), "{verb}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("layer `tools`: task[0] (`{verb}`): ")),
            "{e}"
        );
    }
}

#[test]
fn template_errors_name_the_build_yml_key() {
    let mut spec = deb_layer(vec![]);
    spec["formats"]["deb"]["install_template"] = json!("RUN apt-get install {{.Pkgs}}");
    let e = render_layer(&spec, &RenderOpts::default()).unwrap_err();
    let RenderError::Template { node, source } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(node, "layer `tools`");
    assert_eq!(source.template, "distro.debian.format.deb.install_template");
    assert!(source.message.contains("Pkgs"), "{e}");
    assert!(
        e.to_string()
            .starts_with("layer `tools`: template `distro.debian.format.deb.install_template`: "),
        "{e}"
    );
    spec["formats"]["deb"]["install_template"] = json!("RUN {{if}}");
    assert!(matches!(
        render_layer(&spec, &RenderOpts::default()),
        Err(RenderError::Template { .. })
    ));
}

#[test]
fn spec_problems_are_errors() {
    let mut spec = deb_layer(vec![]);
    spec["formats"] = json!({});
    let e = render_layer(&spec, &RenderOpts::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("distro.debian.format.deb.install_template"),
        "{e}"
    );
    let e = render_layer(&json!({"tasks": []}), &RenderOpts::default()).unwrap_err();
    assert!(matches!(e, RenderError::Spec { .. }), "{e}");
}

#[test]
fn stage_outputs_are_copied_first_from_the_stage_image() {
    let mut spec = deb_layer(vec![]);
    spec["stages"] = json!({"npm": {
        "node": "stage:hello-npm@web",
        "copy_artifact": [{"src": "{{.Home}}", "dst": "{{.Home}}", "chown": true}],
    }});
    // Without the stage's image (as `ov image generate` renders): its node id.
    let steps = render(&spec).steps;
    assert_eq!(
        steps[..4],
        [
            "# Layer: tools",
            "USER root",
            "# Copy npm artifacts",
            "COPY --from=stage:hello-npm@web --chown=1000:1000 /home/user /home/user"
        ]
    );
    let refs = StageRefs::from([("npm".to_string(), "abc123".to_string())]);
    let r = super::layer::render_layer_with(&spec, &RenderOpts::default(), &refs).unwrap();
    assert_eq!(
        r.steps[3],
        "COPY --from=abc123 --chown=1000:1000 /home/user /home/user"
    );
}

#[test]
fn a_layer_without_packages_or_tasks() {
    let spec = json!({"layer": "empty", "context": {"build": ["rpm"]}});
    assert_eq!(render(&spec).steps, vec!["# Layer: empty", "USER root"]);
}

fn image(init: Option<(&str, Json)>, services: Json) -> Json {
    let (init, init_def) = match init {
        Some((i, d)) => (json!(i), d),
        None => (Json::Null, Json::Null),
    };
    json!({
        "name": "web",
        "tag": "ghcr.io/acme/web:1",
        "resolved": {"name": "web", "user": "user", "uid": 1000, "gid": 1000,
                     "registry": "ghcr.io/acme", "distro": ["fedora"], "build": ["rpm"]},
        "init": init,
        "init_def": init_def,
        "services": services,
        "meta": {"port": ["8080:8080"]},
        "env": [{"A": "1", "B": "x"}, {"A": "2"}],
        "port": ["8080", "tcp:2222", "udp:53", 8080],
        "init_header": "[supervisord]\nnodaemon=true\n",
        "eval": [{"id": "c", "command": "test \"$(id -u)\" = 1000"}],
        "image_eval": [{"id": "c", "command": "test \"$(id -u)\" = 1000"}],
        "label_layers": label_layers(&services)
    })
}

/// The image's own layers as the planner lists them for the labels: each
/// layer of `services` with its entries, web-layer with ports, sshd with
/// an `env_accept`.
fn label_layers(services: &Json) -> Json {
    let mut layers: Vec<Json> = Vec::new();
    for s in services.as_array().into_iter().flatten() {
        let layer = s["layer"].as_str().unwrap_or_default();
        let mut entry = s.clone();
        entry.as_object_mut().unwrap().remove("layer");
        match layers.iter_mut().find(|l| l["name"] == layer) {
            Some(l) => l["service"].as_array_mut().unwrap().push(entry),
            None => layers.push(json!({"name": layer, "own": true, "service": [entry]})),
        }
    }
    for l in &mut layers {
        if l["name"] == "web-layer" {
            l["port"] = json!(["8080", "tcp:2222"]);
        }
        if l["name"] == "sshd" {
            l["env_accept"] = json!([{"name": "SSH_AUTHORIZED_KEYS", "description": "key <x>"}]);
        }
    }
    Json::Array(layers)
}

/// The LABEL steps of a render as (key, value), values read back as the
/// builder reads a double-quoted LABEL value (a backslash escapes the next
/// character).
fn labels_of(r: &Rendered) -> Vec<(String, String)> {
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
            (k.to_string(), out)
        })
        .collect()
}

fn supervisord(template: bool) -> Json {
    let mut def = json!({
        "layer_field": ["service"],
        "model": "fragment_assembly",
        "header_file": "templates/supervisord.header.conf",
        "fragment_dir": "supervisor",
        "entrypoint": ["supervisord", "-n", "-c", "/etc/supervisord.conf"],
        "label_key": "org.overthinkos.services.supervisord"
    });
    if template {
        def["service_schema"] =
            json!({"supports_packaged": false, "service_template": SUPERVISORD_TEMPLATE});
    }
    def
}

#[test]
fn supervisord_image() {
    let services = json!([
        {"name": "web", "exec": "/usr/sbin/nginx", "restart": "always", "priority": 50,
         "env": {"B": "2", "A": "1"}, "layer": "web-layer"},
        {"name": "chrome", "exec": "/usr/bin/chrome", "auto_start": false, "layer": "web-layer"},
        {"name": "sshd", "use_packaged": "sshd.service", "layer": "sshd"},
        {"name": "sshd", "exec": "/usr/sbin/sshd -D", "restart": "no", "layer": "sshd"}
    ]);
    let r = render_image(
        &image(Some(("supervisord", supervisord(true))), services),
        &RenderOpts::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let conf = "[supervisord]\nnodaemon=true\n\
        [program:web]\ncommand=/usr/sbin/nginx\nautostart=true\nautorestart=true\npriority=50\n\
        environment=A=\"1\",B=\"2\"\nstdout_logfile=/dev/fd/1\nstdout_logfile_maxbytes=0\nredirect_stderr=true\n\n\
        [program:chrome]\ncommand=/usr/bin/chrome\nautostart=false\nautorestart=true\n\
        stdout_logfile=/dev/fd/1\nstdout_logfile_maxbytes=0\nredirect_stderr=true\n\
        [program:sshd]\ncommand=/usr/sbin/sshd -D\nautostart=true\nautorestart=false\n\
        stdout_logfile=/dev/fd/1\nstdout_logfile_maxbytes=0\nredirect_stderr=true\n";
    assert_eq!(
        r.context_files,
        vec![(
            ".ov/init/supervisord.conf".to_string(),
            conf.as_bytes().to_vec()
        )]
    );
    let want = [
        "# Image: web",
        "ENV A=\"2\"",
        "ENV B=\"x\"",
        "EXPOSE 2222",
        "EXPOSE 53/udp",
        "EXPOSE 8080",
        "USER root",
        "# supervisord: 2 service fragment(s)",
        "COPY --chmod=0644 .ov/init/supervisord.conf /etc/supervisord.conf",
        "ENTRYPOINT [\"supervisord\",\"-n\",\"-c\",\"/etc/supervisord.conf\"]",
        "USER 1000",
    ];
    assert_eq!(&r.steps[..want.len()], want, "\n{}", r.containerfile());
    // ov's writeLabels (generate.go:1577-2053), in its order: the fixed
    // scalars (1581-1586), registry (1589), platform.* (1622-1623), ports
    // = the image's `port` (1630), port_protos from own layers' non-http
    // PortSpecs (1633-1642, layers.go PortSpec: `tcp:2222` is tcp), the
    // eval set (1681-1684, labelset.go LabelEvalSet: sections layer/image/
    // deploy), init + its label_key list + CapabilityService entries
    // (1711-1765, labels.go field order; scope defaults to system), env
    // accepts by name (1833-1843, EnvDependency: description always
    // written), status testing when nothing says otherwise (1972-1986).
    // Go's json.Marshal writes `<` `>` as \u003c \u003e.
    let want_labels: Vec<(&str, &str)> = vec![
        ("org.overthinkos.version", "1"),
        ("org.overthinkos.image", "web"),
        ("org.overthinkos.uid", "1000"),
        ("org.overthinkos.gid", "1000"),
        ("org.overthinkos.user", "user"),
        ("org.overthinkos.home", "/home/user"),
        ("org.overthinkos.registry", "ghcr.io/acme"),
        ("org.overthinkos.platform.distro", r#"["fedora"]"#),
        ("org.overthinkos.platform.formats", r#"["rpm"]"#),
        ("org.overthinkos.ports", r#"["8080:8080"]"#),
        ("org.overthinkos.port_protos", r#"{"2222":"tcp"}"#),
        (
            "org.overthinkos.eval",
            r#"{"image":[{"command":"test \"$(id -u)\" = 1000","id":"c"}]}"#,
        ),
        ("org.overthinkos.init", "supervisord"),
        (
            "org.overthinkos.services.supervisord",
            r#"["web-layer","sshd"]"#,
        ),
        (
            "org.overthinkos.services",
            concat!(
                r#"[{"name":"web","scope":"system","exec":"/usr/sbin/nginx","env":{"A":"1","B":"2"},"#,
                r#""restart":"always","priority":50,"init":"supervisord","layer":"web-layer"},"#,
                r#"{"name":"chrome","scope":"system","exec":"/usr/bin/chrome","auto_start":false,"#,
                r#""init":"supervisord","layer":"web-layer"},"#,
                r#"{"name":"sshd","scope":"system","use_packaged":"sshd.service","init":"supervisord","layer":"sshd"},"#,
                r#"{"name":"sshd","scope":"system","exec":"/usr/sbin/sshd -D","restart":"no","init":"supervisord","layer":"sshd"}]"#
            ),
        ),
        (
            "org.overthinkos.env_accepts",
            r#"[{"name":"SSH_AUTHORIZED_KEYS","description":"key \u003cx\u003e"}]"#,
        ),
        ("org.overthinkos.status", "testing"),
    ];
    let got = labels_of(&r);
    let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, want_labels);
    let text = r.containerfile();
    // `$` in a label is escaped so the builder does not expand it.
    assert!(
        text.contains("test \\\\\\\"\\$(id -u)\\\\\\\" = 1000"),
        "{text}"
    );
}

#[test]
fn supervisord_without_a_service_template() {
    let services = json!([{"name": "web", "exec": "/usr/sbin/nginx"}]);
    let r = render_image(
        &image(Some(("supervisord", supervisord(false))), services),
        &RenderOpts::default(),
    )
    .unwrap();
    assert_eq!(
        r.context_files[0].1,
        b"[supervisord]\nnodaemon=true\n[program:web]\ncommand=/usr/sbin/nginx\nautostart=true\nautorestart=true\n"
    );
}

#[test]
fn supervisord_needs_its_header() {
    let mut spec = image(
        Some(("supervisord", supervisord(false))),
        json!([{"name": "web", "exec": "x"}]),
    );
    spec.as_object_mut().unwrap().remove("init_header");
    let e = render_image(&spec, &RenderOpts::default()).unwrap_err();
    assert!(e.to_string().contains("`init_header`"), "{e}");
}

#[test]
fn service_template_errors_name_the_key() {
    let mut def = supervisord(true);
    def["service_schema"]["service_template"] = json!("[program:{{.Nam}}]");
    let e = render_image(
        &image(
            Some(("supervisord", def)),
            json!([{"name": "web", "exec": "x"}]),
        ),
        &RenderOpts::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "image `web`: template `init.supervisord.service_schema.service_template`: "
        ),
        "{e}"
    );
}

#[test]
fn systemd_bootc_image() {
    let def = json!({
        "model": "file_copy",
        "system_enable_template": SYSTEMD_ENABLE,
        "post_assembly_template": "RUN bootc container lint\n",
        "label_key": "org.overthinkos.services.systemd"
    });
    let mut spec = image(
        Some(("systemd", def)),
        json!([
            {"name": "sshd", "use_packaged": "sshd.service"},
            {"name": "sshd", "exec": "/usr/local/bin/sshd-wrapper"},
            {"name": "agent", "use_packaged": "agent.service", "scope": "user"},
            {"name": "qga", "use_packaged": "qemu-guest-agent.service", "scope": "system"}
        ]),
    );
    spec["capabilities"] =
        json!({"preserve_user": true, "oci_label": {"dev.containers.bootc": "true"}});
    let r = render_image(&spec, &RenderOpts::default()).unwrap();
    let text = r.containerfile();
    assert!(
        text.contains(
            "USER root\n# Enable system-level services\nRUN systemctl enable sshd.service && \\\n   \
             systemctl enable qemu-guest-agent.service\nRUN bootc container lint\nLABEL "
        ),
        "{text}"
    );
    assert!(
        !text.contains("USER 1000"),
        "preserve_user keeps root:\n{text}"
    );
    assert!(text
        .contains("LABEL org.overthinkos.bootc=\"true\"\nLABEL dev.containers.bootc=\"true\"\n"));
    assert!(r.context_files.is_empty());
}

#[test]
fn image_without_init() {
    let r = render_image(&image(None, json!([])), &RenderOpts::default()).unwrap();
    assert!(!r.containerfile().contains("USER root"));
    assert_eq!(
        r,
        render_image(&image(None, json!([])), &RenderOpts::default()).unwrap()
    );
}

#[test]
fn splitting_follows_continuations_and_comments() {
    let text = "# head\nRUN a \\\n    # inner comment\n\n    b && \\\n    c\nCOPY x y\n\n";
    assert_eq!(
        split_instructions(text),
        vec![
            "# head".to_string(),
            "RUN a \\\n    # inner comment\n\n    b && \\\n    c".to_string(),
            "COPY x y".to_string(),
        ]
    );
}
