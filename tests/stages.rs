//! Builder stages built for real: `tests/fixtures/npm-stage` has a builder
//! image with Debian's npm and an image whose layer has a package.json, so
//! build.yml's npm stage (ov's own template) runs on the builder image
//! against the npm registry and the layer copies its output in; and ov's
//! inline cargo builder, which runs in the layer itself.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, Project};
use std::process::Command;

/// Certificates the host trusts locally go into the builder image, for
/// networks that intercept TLS (node then trusts them too).
fn trust_host_local_cas(p: &Project) {
    let Ok(dir) = std::fs::read_dir("/usr/local/share/ca-certificates") else {
        return;
    };
    for e in dir.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "crt") && path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            p.write(
                &format!("layers/npm-tool/local-ca/{name}"),
                std::fs::read(&path).unwrap(),
            );
        }
    }
}

fn run_in(image: &str, script: &str) -> String {
    let out = Command::new("podman")
        .args(["run", "--rm", image, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman run {image} `{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_npm_stage_runs_on_the_builder_image_and_its_output_lands_in_the_layer() {
    let p = Project::copy_of(&local_fixture("npm-stage"));
    trust_host_local_cas(&p);
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
    let manifest = run_in(
        "localhost/ov-test/app:test",
        "cat /home/user/.npm-global/lib/node_modules/is-number/package.json && \
         stat -c %u:%g /home/user/.npm-global/lib/node_modules/is-number",
    );
    assert!(manifest.contains("\"version\": \"7.0.0\""), "{manifest}");
    assert!(manifest.trim_end().ends_with("1000:1000"), "{manifest}");
    // Nothing of the builder image came along: the app has no npm.
    assert_eq!(
        run_in("localhost/ov-test/app:test", "command -v npm || echo none").trim(),
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
    let odd = run_in(
        "localhost/ov-test/app:test",
        "ls /home/user/.npm-global/lib/node_modules",
    );
    assert!(odd.contains("is-odd"), "{odd}");
}

/// ov's inline cargo builder (`tests/fixtures/cargo-inline`): the crate is
/// installed in the layer's own steps, as the image user, from the layer's
/// files in the stage named after the layer. The crate has no dependencies,
/// so no registry is read.
#[test]
fn an_inline_cargo_builder_installs_the_layers_crate_as_the_image_user() {
    let p = Project::copy_of(&local_fixture("cargo-inline"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let out = run_in(
        "localhost/ov-test/cargo-app:test",
        "/home/user/.cargo/bin/hello-cargo && stat -c %u:%g /home/user/.cargo/bin/hello-cargo",
    );
    assert_eq!(out, "hello from cargo\n1000:1000\n");
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);
}
