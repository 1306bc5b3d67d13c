//! Stage rendering against what ov's generator writes. The templates are
//! build.yml's `builder.npm|pixi|aur.stage_template`, verbatim (the shared
//! fixtures' copy of overthinkos/overthink at 7d9cc818, MIT). Expected
//! text is worked out from `Generator.buildStageContext` and
//! `templateFuncs` (`cacheMountsOwned` → `RenderCacheMounts` with a
//! trailing ` \`-newline; `CacheMount.String` → `id=ov-<dst>-uid<uid>`),
//! with ov's own values for `.BuilderRef` (the builder's full tag) and
//! `.CopySrc` (`layers/<name>`).

use super::*;
use serde_json::json;

const NPM: &str = r#"FROM {{.BuilderRef}} AS {{.StageName}}
USER {{.UID}}
WORKDIR {{.Home}}
# Override NPM_CONFIG_PREFIX from the builder image so npm writes to
# the TARGET image's HOME (not the builder's /home/user). Without this,
# uid=0 target images silently get empty copy_artifacts.
ENV NPM_CONFIG_PREFIX={{.Home}}/.npm-global
COPY --chown={{.UID}}:{{.GID}} {{.CopySrc}}/package.json package.json
RUN {{cacheMountsOwned .CacheMounts .UID .GID}}node -e 'var d=require("./package.json").dependencies||{};for(var[n,v]of Object.entries(d))console.log(v==="*"?n:n+"@"+v)' | xargs npm install -g && rm -f package.json
"#;

const PIXI: &str = r#"FROM {{.BuilderRef}} AS {{.StageName}}
USER {{.UID}}
WORKDIR {{.Home}}
{{- if .HasLockFile}}
COPY --chown={{.UID}}:{{.GID}} {{.CopySrc}}/pixi.lock pixi.lock
{{- end}}
COPY --chown={{.UID}}:{{.GID}} {{.CopySrc}}/{{.Manifest}} {{.Manifest}}
{{.ManylinuxFix}}
ENV PIXI_CACHE_DIR=/tmp/pixi-cache RATTLER_CACHE_DIR=/tmp/rattler-cache
{{- if .HasBuildScript}}
RUN --mount=type=bind,from={{.LayerStage}},source=/{{.BuildScript}},target=/tmp/{{.BuildScript}} \
    {{cacheMountsOwned .CacheMounts .UID .GID}}{{.InstallCmd}} && bash /tmp/{{.BuildScript}} && rm -f {{.Manifest}} pixi.lock
{{- else}}
RUN {{cacheMountsOwned .CacheMounts .UID .GID}}{{.InstallCmd}} && rm -f {{.Manifest}} pixi.lock
{{- end}}
"#;

const PIXI_MANYLINUX: &str = r#"RUN grep -q 'system-requirements' {{.Manifest}} || printf '\n[system-requirements]\nlibc = { family = "glibc", version = "2.39" }\n' >> {{.Manifest}}
"#;

const AUR: &str = r#"FROM {{.BuilderRef}} AS {{.StageName}}
USER root
RUN echo '{{.User}} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/builder
USER {{.UID}}
WORKDIR {{.Home}}
RUN {{cacheMounts .CacheMounts}} \
    mkdir -p /tmp/aur-build && \
    cp /etc/makepkg.conf /tmp/makepkg.conf && \
    sed -i '/^OPTIONS/s/ debug/ !debug/' /tmp/makepkg.conf && \
    yay -S --noconfirm --needed --builddir /tmp/aur-build --makepkgconf /tmp/makepkg.conf
{{- range .Options}} {{.}}{{end}}
{{- range .Packages}} \
      {{.}}{{end}} && \
    mkdir -p /tmp/aur-pkgs && \
    find /tmp/aur-build -name '*.pkg.tar.zst' -exec cp {} /tmp/aur-pkgs/ \;
"#;

const OV_PLACE: StagePlace = StagePlace {
    builder_ref: "ghcr.io/overthinkos/fedora-builder:latest",
    copy_src: "layers/hello",
};

fn context() -> Json {
    json!({"user": "user", "uid": 1000, "gid": 1000, "home": "/home/user"})
}

fn npm_spec() -> Json {
    json!({
        "builder": "npm", "layer": "hello", "builder_node": "image:builder",
        "context": context(),
        "def": {
            "detect_file": ["package.json"],
            "cache_mount": [{"dst": "/tmp/npm-cache"}],
            "stage_template": NPM,
            "copy_artifact": [{"src": "{{.Home}}", "dst": "{{.Home}}", "chown": true}],
        },
        "layer_files": ["package.json"],
    })
}

fn pixi_spec(files: &[&str]) -> Json {
    json!({
        "builder": "pixi", "layer": "hello", "builder_node": "image:builder",
        "context": context(),
        "def": {
            "detect_file": ["pixi.toml", "pyproject.toml", "environment.yml"],
            "cache_mount": [{"dst": "/tmp/pixi-cache"}, {"dst": "/tmp/rattler-cache"}],
            "stage_template": PIXI,
            "install_command": {
                "environment.yml": "pixi project import environment.yml && pixi install",
                "pixi.toml": "pixi install",
                "pixi.toml+lock": "pixi install --frozen",
                "pyproject.toml": "pixi install --manifest-path pyproject.toml",
            },
            "manylinux_fix": PIXI_MANYLINUX,
            "build_script": "build.sh",
        },
        "layer_files": files,
    })
}

fn ov_text(spec: &Json) -> String {
    render_stage_template(spec, OV_PLACE, &RenderOpts::default()).unwrap()
}

#[test]
fn npm_as_ov_writes_it() {
    let want = r#"FROM ghcr.io/overthinkos/fedora-builder:latest AS hello-npm-build
USER 1000
WORKDIR /home/user
# Override NPM_CONFIG_PREFIX from the builder image so npm writes to
# the TARGET image's HOME (not the builder's /home/user). Without this,
# uid=0 target images silently get empty copy_artifacts.
ENV NPM_CONFIG_PREFIX=/home/user/.npm-global
COPY --chown=1000:1000 layers/hello/package.json package.json
RUN --mount=type=cache,id=ov-tmp-npm-cache-uid1000,dst=/tmp/npm-cache,uid=1000,gid=1000 \
    node -e 'var d=require("./package.json").dependencies||{};for(var[n,v]of Object.entries(d))console.log(v==="*"?n:n+"@"+v)' | xargs npm install -g && rm -f package.json
"#;
    assert_eq!(ov_text(&npm_spec()), want);
}

#[test]
fn npm_node_containerfile_adds_the_layer_stage() {
    let place = StagePlace {
        builder_ref: "0123abcd",
        copy_src: ".",
    };
    let text = render_stage(&npm_spec(), place, &RenderOpts::default()).unwrap();
    let head = "# Builder stage: npm for layer hello\nFROM scratch AS hello\nCOPY ./ /\n\n\
                FROM 0123abcd AS hello-npm-build\n";
    assert!(text.starts_with(head), "{text}");
    assert!(text.contains("COPY --chown=1000:1000 ./package.json package.json\n"));
}

#[test]
fn pixi_with_lock_and_build_script() {
    let want = r#"FROM ghcr.io/overthinkos/fedora-builder:latest AS hello-pixi-build
USER 1000
WORKDIR /home/user
COPY --chown=1000:1000 layers/hello/pixi.lock pixi.lock
COPY --chown=1000:1000 layers/hello/pixi.toml pixi.toml
RUN grep -q 'system-requirements' pixi.toml || printf '\n[system-requirements]\nlibc = { family = "glibc", version = "2.39" }\n' >> pixi.toml

ENV PIXI_CACHE_DIR=/tmp/pixi-cache RATTLER_CACHE_DIR=/tmp/rattler-cache
RUN --mount=type=bind,from=hello,source=/build.sh,target=/tmp/build.sh \
    --mount=type=cache,id=ov-tmp-pixi-cache-uid1000,dst=/tmp/pixi-cache,uid=1000,gid=1000 \
    --mount=type=cache,id=ov-tmp-rattler-cache-uid1000,dst=/tmp/rattler-cache,uid=1000,gid=1000 \
    pixi install --frozen && bash /tmp/build.sh && rm -f pixi.toml pixi.lock
"#;
    assert_eq!(
        ov_text(&pixi_spec(&["pixi.toml", "pixi.lock", "build.sh"])),
        want
    );
}

#[test]
fn pixi_pyproject_without_lock_or_script() {
    let want = r#"FROM ghcr.io/overthinkos/fedora-builder:latest AS hello-pixi-build
USER 1000
WORKDIR /home/user
COPY --chown=1000:1000 layers/hello/pyproject.toml pyproject.toml
RUN grep -q 'system-requirements' pyproject.toml || printf '\n[system-requirements]\nlibc = { family = "glibc", version = "2.39" }\n' >> pyproject.toml

ENV PIXI_CACHE_DIR=/tmp/pixi-cache RATTLER_CACHE_DIR=/tmp/rattler-cache
RUN --mount=type=cache,id=ov-tmp-pixi-cache-uid1000,dst=/tmp/pixi-cache,uid=1000,gid=1000 \
    --mount=type=cache,id=ov-tmp-rattler-cache-uid1000,dst=/tmp/rattler-cache,uid=1000,gid=1000 \
    pixi install --manifest-path pyproject.toml && rm -f pyproject.toml pixi.lock
"#;
    assert_eq!(ov_text(&pixi_spec(&["pyproject.toml"])), want);
}

fn aur_spec(section: Json) -> Json {
    json!({
        "builder": "aur", "layer": "hello", "builder_node": "image:builder",
        "context": context(),
        "def": {
            "detect_config": "aur",
            "cache_mount": [{"dst": "/var/cache/pacman/pkg", "sharing": "locked"}],
            "stage_template": AUR,
            "copy_artifact": [{"src": "/tmp/aur-pkgs/", "dst": "/tmp/aur-pkgs/"}],
        },
        "section": section,
    })
}

#[test]
fn aur_with_packages_and_options() {
    let spec = aur_spec(
        json!({"package": ["paru-bin", "visual-studio-code-bin"], "option": ["--nocheck"]}),
    );
    let want = r#"FROM ghcr.io/overthinkos/fedora-builder:latest AS hello-aur-build
USER root
RUN echo 'user ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/builder
USER 1000
WORKDIR /home/user
RUN --mount=type=cache,id=ov-var-cache-pacman-pkg,dst=/var/cache/pacman/pkg,sharing=locked \
    mkdir -p /tmp/aur-build && \
    cp /etc/makepkg.conf /tmp/makepkg.conf && \
    sed -i '/^OPTIONS/s/ debug/ !debug/' /tmp/makepkg.conf && \
    yay -S --noconfirm --needed --builddir /tmp/aur-build --makepkgconf /tmp/makepkg.conf --nocheck \
      paru-bin \
      visual-studio-code-bin && \
    mkdir -p /tmp/aur-pkgs && \
    find /tmp/aur-build -name '*.pkg.tar.zst' -exec cp {} /tmp/aur-pkgs/ \;
"#;
    assert_eq!(ov_text(&spec), want);
}

#[test]
fn aur_package_that_would_break_the_shell_is_refused() {
    let spec = aur_spec(json!({"package": ["ok", "x; rm -rf /"]}));
    let e = render_stage_template(&spec, OV_PLACE, &RenderOpts::default()).unwrap_err();
    assert!(e.to_string().contains("not a package name"), "{e}");
}

#[test]
fn template_typo_names_the_builder_key() {
    let mut spec = npm_spec();
    spec["def"]["stage_template"] = json!("FROM {{.BuilderRf}}\n");
    let e = render_stage_template(&spec, OV_PLACE, &RenderOpts::default()).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("builder.npm.stage_template") && m.contains("BuilderRf"),
        "{m}"
    );
}

#[test]
fn artifact_copies_as_ov_writes_them() {
    let spec = json!({"stages": {}});
    let view = SpecView {
        node: "layer `hello`".into(),
        v: &spec,
    };
    let user = User {
        name: "user".into(),
        uid: 1000,
        gid: 1000,
        home: "/home/user".into(),
    };
    let npm = npm_spec();
    let entry = npm["def"].as_object().unwrap();
    assert_eq!(
        artifact_copies(&view, "npm", entry, "hello-npm-build", &user).unwrap(),
        ["COPY --from=hello-npm-build --chown=1000:1000 /home/user /home/user"]
    );
    let pixi = json!({
        "copy_artifact": [{"src": "{{.Home}}", "dst": "{{.Home}}", "chown": true}],
        "copy_binary": {"src": "/usr/local/bin/pixi", "dst": "/usr/local/bin/pixi"},
    });
    assert_eq!(
        artifact_copies(&view, "pixi", pixi.as_object().unwrap(), "s", &user).unwrap(),
        [
            "COPY --from=s --chown=1000:1000 /home/user /home/user",
            "COPY --from=s /usr/local/bin/pixi /usr/local/bin/pixi"
        ]
    );
    let aur = json!({"copy_artifact": [{"src": "/tmp/aur-pkgs/", "dst": "/tmp/aur-pkgs/"}]});
    assert_eq!(
        artifact_copies(&view, "aur", aur.as_object().unwrap(), "s", &user).unwrap(),
        ["COPY --from=s /tmp/aur-pkgs/ /tmp/aur-pkgs/"]
    );
}

/// build.yml `builder.cargo.install_template`, verbatim.
const CARGO: &str = r#"RUN --mount=type=bind,from={{.LayerStage}},source=/,target=/ctx \
    {{cacheMountsOwned .CacheMounts .UID .GID}}cargo install --path /ctx
"#;

#[test]
fn cargo_inline_as_ov_writes_it_in_the_layer() {
    let spec = json!({
        "layer": "hello",
        "context": {"build": ["deb"], "user": "user", "uid": 1000, "gid": 1000},
        "inline": [{"builder": "cargo", "def": {
            "detect_file": ["Cargo.toml"], "inline": true, "requires_src_dir": true,
            "cache_mount": [{"dst": "/tmp/cargo-cache"}],
            "install_template": CARGO,
        }}],
    });
    let r = super::super::layer::render_layer(&spec, &RenderOpts::default()).unwrap();
    // writeLayerSteps step 4: `USER <uid>` then the template; the layer
    // ends as root again.
    let want = "# Layer: hello\nUSER root\nUSER 1000\n\
                RUN --mount=type=bind,from=hello,source=/,target=/ctx \\\n    \
                --mount=type=cache,id=ov-tmp-cargo-cache-uid1000,dst=/tmp/cargo-cache,uid=1000,gid=1000 \\\n    \
                cargo install --path /ctx\nUSER root\n";
    assert_eq!(r.containerfile(), want);
    // `.LayerStage` names a stage holding the layer's files.
    assert_eq!(r.context_stage.as_deref(), Some("hello"));
    assert_eq!(
        r.context_stage_text(),
        "FROM scratch AS hello\nCOPY ./ /\n\n"
    );
}
