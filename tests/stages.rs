//! Builder stages built for real: `tests/fixtures/npm-stage` has a builder
//! image with Debian's npm and an image whose layer has a package.json, so
//! build.yml's npm stage (ov's own template) runs on the builder image
//! against the npm registry and the layer copies its output in; and ov's
//! inline cargo builder, which runs in the layer itself.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, podman_run, trust_host_local_cas, Project};

#[test]
fn an_npm_stage_runs_on_the_builder_image_and_its_output_lands_in_the_layer() {
    let p = Project::copy_of(&local_fixture("npm-stage"));
    let app = p.own_tag("app");
    trust_host_local_cas(&p.path().join("layers/npm-tool"));
    let ov = ov_for(p.path());
    let cold = built_ok(&ov);
    assert!(
        cold.nodes("built")
            .contains(&"stage:hello-npm-npm@app".to_string()),
        "{:?}",
        cold.nodes("built")
    );
    // The package npm installed is in the final image, in the image
    // user's home (the stage's NPM_CONFIG_PREFIX), owned by that user.
    let manifest = podman_run(
        &app,
        "cat /home/user/.npm-global/lib/node_modules/is-number/package.json && \
         stat -c %u:%g /home/user/.npm-global/lib/node_modules/is-number",
    );
    assert!(manifest.contains("\"version\": \"7.0.0\""), "{manifest}");
    assert!(manifest.trim_end().ends_with("1000:1000"), "{manifest}");
    // Nothing of the builder image came along: the app has no npm.
    assert_eq!(
        podman_run(&app, "command -v npm || echo none").trim(),
        "none"
    );

    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);

    // A new dependency reruns the stage and the layer, not the builder.
    p.edit(
        "layers/hello-npm/package.json",
        "\"is-number\": \"7.0.0\"",
        "\"is-number\": \"7.0.0\",\n    \"is-odd\": \"3.0.1\"",
    );
    let changed = built_ok(&ov);
    assert_eq!(
        changed.nodes("built"),
        vec![
            "image:app",
            "layer:hello-npm@app",
            "stage:hello-npm-npm@app"
        ]
    );
    let odd = podman_run(&app, "ls /home/user/.npm-global/lib/node_modules");
    assert!(odd.contains("is-odd"), "{odd}");
}

/// ov's inline cargo builder (`tests/fixtures/cargo-inline`): the crate is
/// installed in the layer's own steps, as the image user, from the layer's
/// files in the stage named after the layer. The crate has no dependencies,
/// so no registry is read.
#[test]
fn an_inline_cargo_builder_installs_the_layers_crate_as_the_image_user() {
    let p = Project::copy_of(&local_fixture("cargo-inline"));
    let app = p.own_tag("cargo-app");
    let ov = ov_for(p.path());
    built_ok(&ov);
    let out = podman_run(
        &app,
        "/home/user/.cargo/bin/hello-cargo && stat -c %u:%g /home/user/.cargo/bin/hello-cargo",
    );
    assert_eq!(out, "hello from cargo\n1000:1000\n");
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);
}

/// The shared `base-stack` fixture's own build.yml (ov's, verbatim) with an
/// image whose layer has a package.json and a locked pixi.toml with a build
/// script: `ov image generate` shows both stages as ov's
/// `buildStageContext` fills the templates (`.CopySrc` is `.`, the layer's
/// directory being the context), the layer's copies of their outputs and
/// pixi's runtime environment.
#[test]
fn the_fixture_build_yml_stages_render_as_ov_writes_them() {
    let p = Project::copy_of(&crate::util::shared_fixture("base-stack"));
    p.append(
        "image.yml",
        "    stage-demo:\n        base: fedora-nonfree\n        builder:\n            \
         npm: fedora\n            pixi: fedora\n        layer:\n            - hello\n",
    );
    p.write(
        "layers/hello/layer.yml",
        "layer:\n  env:\n    HELLO: \"1\"\n",
    );
    p.write(
        "layers/hello/package.json",
        "{\"dependencies\": {\"is-number\": \"*\"}}\n",
    );
    p.write("layers/hello/pixi.toml", "[project]\nname = \"hello\"\n");
    p.write("layers/hello/pixi.lock", "version: 6\n");
    p.write("layers/hello/build.sh", "true\n");
    let ov = crate::util::Ov::new(p.path());
    let out = ov.ok(&["image", "generate", "stage-demo"]).stdout;
    let npm = r#" AS hello-npm-build
USER 1000
WORKDIR /home/user
# Override NPM_CONFIG_PREFIX from the builder image so npm writes to
# the TARGET image's HOME (not the builder's /home/user). Without this,
# uid=0 target images silently get empty copy_artifacts.
ENV NPM_CONFIG_PREFIX=/home/user/.npm-global
COPY --chown=1000:1000 ./package.json package.json
RUN --mount=type=cache,id=ov-tmp-npm-cache-uid1000,dst=/tmp/npm-cache,uid=1000,gid=1000 \
    node -e 'var d=require("./package.json").dependencies||{};for(var[n,v]of Object.entries(d))console.log(v==="*"?n:n+"@"+v)' | xargs npm install -g && rm -f package.json
"#;
    let pixi = r#" AS hello-pixi-build
USER 1000
WORKDIR /home/user
COPY --chown=1000:1000 ./pixi.lock pixi.lock
COPY --chown=1000:1000 ./pixi.toml pixi.toml
RUN grep -q 'system-requirements' pixi.toml || printf '\n[system-requirements]\nlibc = { family = "glibc", version = "2.39" }\n' >> pixi.toml

ENV PIXI_CACHE_DIR=/tmp/pixi-cache RATTLER_CACHE_DIR=/tmp/rattler-cache
RUN --mount=type=bind,from=hello,source=/build.sh,target=/tmp/build.sh \
    --mount=type=cache,id=ov-tmp-pixi-cache-uid1000,dst=/tmp/pixi-cache,uid=1000,gid=1000 \
    --mount=type=cache,id=ov-tmp-rattler-cache-uid1000,dst=/tmp/rattler-cache,uid=1000,gid=1000 \
    pixi install --frozen && bash /tmp/build.sh && rm -f pixi.toml pixi.lock
"#;
    let layer = "# Layer: hello\nUSER root\n\
                 # Copy npm artifacts\n\
                 COPY --from=stage:hello-npm@stage-demo --chown=1000:1000 /home/user /home/user\n\
                 # Copy pixi artifacts\n\
                 COPY --from=stage:hello-pixi@stage-demo --chown=1000:1000 /home/user /home/user\n\
                 COPY --from=stage:hello-pixi@stage-demo /usr/local/bin/pixi /usr/local/bin/pixi\n\
                 ENV PIXI_CACHE_DIR=\"/home/user/.cache/pixi\"\n\
                 ENV RATTLER_CACHE_DIR=\"/home/user/.cache/rattler\"\n\
                 ENV PATH=\"/home/user/.pixi/bin:/home/user/.pixi/envs/default/bin:${PATH}\"\n";
    for want in [npm, pixi, layer] {
        assert!(out.contains(want), "missing:\n{want}\nin:\n{out}");
    }
    // Each stage builds on the builder image the map names, after a stage
    // holding the layer's files.
    assert!(
        out.contains("# node: stage:hello-npm@stage-demo\n# Builder stage: npm for layer hello\nFROM scratch AS hello\nCOPY ./ /\n\nFROM ghcr.io/overthinkos/fedora:"),
        "{out}"
    );
}

/// A stage's key follows its inputs: the template text, the layer's files
/// and the builder image; nothing else.
#[test]
fn a_stage_key_changes_with_its_template_its_files_and_its_builder_only() {
    let p = Project::copy_of(&local_fixture("npm-stage"));
    let ov = crate::util::Ov::new(p.path());
    let id = "stage:hello-npm-npm@app";
    let key = || ov.graph(&[]).key(id).to_string();
    let k0 = key();
    // Another image that uses neither the layer nor the builder.
    p.append(
        "image.yml",
        "    other:\n        base: localhost/bookworm-minbase:1\n        layer: [npm-tool]\n",
    );
    assert_eq!(key(), k0, "an unrelated image changed the stage key");
    p.edit(
        "build.yml",
        "WORKDIR {{.Home}}",
        "WORKDIR {{.Home}}\n            # edited",
    );
    let k1 = key();
    assert_ne!(k1, k0, "the template text is not in the key");
    p.edit("layers/hello-npm/package.json", "7.0.0", "7.0.1");
    let k2 = key();
    assert_ne!(k2, k1, "the package.json is not in the key");
    p.append("layers/npm-tool/layer.yml", "  path_append: [/opt/bin]\n");
    assert_ne!(key(), k2, "the builder image is not in the key");
}
