//! The projects under `examples/` build for real, from nothing but the
//! base `scripts/setup.sh` imports, and the images they make work.

use crate::build::{built_ok, ov_for};
use crate::util::{podman, supervised_nginx};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).join(name)
}

#[test]
fn hello_bootstraps_its_base_with_debootstrap_and_builds() {
    let ov = ov_for(&example("hello"));
    let cold = built_ok(&ov);
    assert_eq!(cold.count("failed"), 0);
    let built = cold.nodes("built");
    for node in [
        "bootstrap:bookworm",
        "layer:motd@hello",
        "image:hello",
        "eval:hello",
    ] {
        assert!(
            built.contains(&node.to_string()),
            "{node} not built: {built:?}"
        );
    }
    let motd = podman(&[
        "run",
        "--rm",
        "localhost/ov-examples/hello:dev",
        "cat",
        "/etc/motd",
    ]);
    assert!(
        motd.contains("Built by ov") && motd.contains("hello from ov"),
        "{motd}"
    );
    // The rootfs came from debootstrap, not from the setup script's base.
    let os = podman(&[
        "run",
        "--rm",
        "localhost/ov-examples/hello:dev",
        "cat",
        "/etc/os-release",
    ]);
    assert!(os.contains("bookworm"), "{os}");
    let noop = built_ok(&ov);
    assert_eq!(noop.count("built"), 0, "{:?}", noop.events);
    assert_eq!(noop.count("engine_builds"), 0);
}

#[test]
fn web_serves_nginx_under_supervisord() {
    let ov = ov_for(&example("web"));
    let cold = built_ok(&ov);
    assert!(cold.nodes("built").contains(&"eval:web".to_string()));
    let (status, page) = supervised_nginx("localhost/ov-examples/web:dev");
    assert!(status.contains("RUNNING"), "nginx is not running: {status}");
    assert!(page.contains("ov-example-web-page"), "{page}");
    // The web layer's `shell:` block, as ov's generator writes it
    // (install_build.go shellSnippetDestination; the heredoc adds a newline).
    let snippet = podman(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "localhost/ov-examples/web:dev",
        "/etc/profile.d/ov-web-bash.sh",
    ]);
    assert_eq!(snippet, "export OV_WEB_ROOT=/srv/www\n\n");
    // The labels the engine stored are ov's (generate.go writeLabels).
    let labels: std::collections::BTreeMap<String, String> = serde_json::from_str(&podman(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "localhost/ov-examples/web:dev",
    ]))
    .unwrap();
    let get = |k: &str| labels.get(k).map(String::as_str);
    assert_eq!(get("org.overthinkos.version"), Some("1"));
    assert_eq!(get("org.overthinkos.image"), Some("web"));
    assert_eq!(get("org.overthinkos.uid"), Some("0"));
    assert_eq!(
        get("org.overthinkos.registry"),
        Some("localhost/ov-examples")
    );
    assert_eq!(
        get("org.overthinkos.platform.distro"),
        Some(r#"["debian:12","debian"]"#)
    );
    assert_eq!(get("org.overthinkos.platform.formats"), Some(r#"["deb"]"#));
    assert_eq!(get("org.overthinkos.ports"), Some(r#"["8080:80"]"#));
    assert_eq!(get("org.overthinkos.init"), Some("supervisord"));
    assert_eq!(
        get("org.overthinkos.services.supervisord"),
        Some(r#"["web"]"#)
    );
    assert_eq!(
        get("org.overthinkos.services"),
        Some(
            r#"[{"name":"nginx","scope":"system","enable":true,"exec":"/usr/sbin/nginx -g 'daemon off;'","restart":"always","priority":50,"init":"supervisord","layer":"web"}]"#
        )
    );
    assert_eq!(
        get("org.overthinkos.shell"),
        Some(
            r#"{"layer":[{"origin":"web","id":"web","generic":{"init":"export OV_WEB_ROOT=/srv/www\n"}}]}"#
        )
    );
    assert_eq!(get("org.overthinkos.status"), Some("testing"));
    assert_eq!(get("org.overthinkos.tag"), None);
    let noop = built_ok(&ov);
    assert_eq!(noop.count("built"), 0);
    assert_eq!(noop.count("engine_builds"), 0);
}
