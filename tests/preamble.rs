//! ov's bootstrap preamble and layer environment on a Debian project
//! (`tests/fixtures/deb-user`): the rendered text against what ov's
//! `writeBootstrap` and `writeLayerEnv` write (read from its generator,
//! not from our output), which images share a preamble, the checks on the
//! fields it reads, and the built image run for real.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, podman_run, Ov, Project};

fn project() -> Project {
    Project::copy_of(&local_fixture("deb-user"))
}

/// `ov image generate NAME`'s section for node `id` (its `FROM` line and
/// steps, up to the blank line before the next node).
fn section(text: &str, id: &str) -> String {
    let start = text
        .find(&format!("# node: {id}\n"))
        .unwrap_or_else(|| panic!("no node {id} in:\n{text}"));
    let rest = &text[start..];
    rest.split("\n\n").next().unwrap_or(rest).to_string() + "\n"
}

/// The account check the preamble ends with (ours; ov reads the base's
/// passwd from its registry instead).
fn check_line(name: &str, uid: u32, gid: u32, home: &str) -> String {
    format!(
        "RUN test \"$(getent passwd {uid} | cut -d: -f1,4,6)\" = '{name}:{gid}:{home}' || {{ echo \
         'ov: the account at uid {uid} is not {name} (gid {gid}, home {home}) as planned; when the \
         base image has its own account there, set the image user, uid and gid to it, or declare \
         it as base_user of the distro in build.yml' >&2; getent passwd {uid} >&2; exit 1; }}\n"
    )
}

#[test]
fn debian_preamble_is_ovs_write_bootstrap() {
    let p = project();
    let text = Ov::new(p.path()).ok(&["image", "generate", "app"]).stdout;
    let want = String::from(
        "# node: preamble:app\n\
         FROM localhost/bookworm-minbase:1\n\
         # Bootstrap\n\
         RUN --mount=type=cache,id=ov-var-cache-apt,dst=/var/cache/apt \\\n    \
         --mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt \\\n    \
         apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gnupg && \\\n    \
         { [ -L /usr/local ] && mkdir -p \"$(readlink /usr/local)\"; mkdir -p /usr/local/bin; }\n\
         RUN if ! getent passwd 1500 >/dev/null 2>&1; then \\\n      \
         (getent group 1600 >/dev/null 2>&1 || groupadd -g 1600 dev) && \\\n      \
         useradd -m -u 1500 -g 1600 -s /bin/bash dev; \\\n    \
         fi\n",
    ) + &check_line("dev", 1500, 1600, "/home/dev")
        + "WORKDIR /home/dev\n";
    // `ov image generate` renders for the engine it talks to; on podman 4.3
    // cache mounts are not locked (see BUILD.md), elsewhere they are.
    let got = section(&text, "preamble:app").replace(",sharing=locked", "");
    assert_eq!(got, want);
    // The layer goes on top of it, the image on the layer.
    assert!(
        text.contains("# node: layer:tools@app\nFROM preamble:app\n"),
        "{text}"
    );
}

#[test]
fn env_and_path_append_name_the_image_home_in_layer_and_image_nodes() {
    let p = project();
    let text = Ov::new(p.path()).ok(&["image", "generate", "app"]).stdout;
    // ov's writeLayerEnv: keys sorted, `~`/`$HOME` expanded, other `$`
    // escaped, path_append in front of ${PATH}.
    let env = [
        "ENV CARGO_HOME=\"/home/dev/.cargo\"",
        "ENV DB_URL=\"postgres://app:\\${DB_PASS}@db/app\"",
        "ENV NPM_CONFIG_PREFIX=\"/home/dev/.npm-global\"",
    ];
    let path = "ENV PATH=\"/home/dev/.npm-global/bin:/home/dev/.cargo/bin:${PATH}\"";
    let layer = section(&text, "layer:tools@app");
    let image = section(&text, "image:app");
    for line in env {
        assert!(layer.contains(&format!("{line}\n")), "{line} in\n{layer}");
        assert!(image.contains(&format!("{line}\n")), "{line} in\n{image}");
    }
    assert!(layer.contains(&format!("{path}\n")), "{layer}");
    assert!(!text.contains('~') || !text.contains("ENV NPM_CONFIG_PREFIX=\"~"));
    assert!(
        image.contains("LABEL org.overthinkos.home=\"/home/dev\""),
        "{image}"
    );
}

#[test]
fn ubuntu_adopts_its_base_user_and_inherits_debians_bootstrap() {
    let p = project();
    p.append(
        "image.yml",
        "    ub:\n        base: docker.io/library/ubuntu:24.04\n        distro: [ubuntu:24.04, ubuntu]\n",
    );
    let text = Ov::new(p.path()).ok(&["image", "generate", "ub"]).stdout;
    let got = section(&text, "preamble:ub").replace(",sharing=locked", "");
    let want = String::from(
        "# node: preamble:ub\n\
         FROM docker.io/library/ubuntu:24.04\n\
         # Bootstrap\n\
         RUN --mount=type=cache,id=ov-var-cache-apt,dst=/var/cache/apt \\\n    \
         --mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt \\\n    \
         apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gnupg && \\\n    \
         { [ -L /usr/local ] && mkdir -p \"$(readlink /usr/local)\"; mkdir -p /usr/local/bin; }\n\
         # User ubuntu (uid=1000) adopted from base image (declared in build.yml distro.base_user) \
         — no useradd needed\n",
    ) + &check_line("ubuntu", 1000, 1000, "/home/ubuntu")
        + "WORKDIR /home/ubuntu\n";
    assert_eq!(got, want);
    // An image that names its user keeps it under `auto`, and is created.
    p.edit(
        "image.yml",
        "distro: [ubuntu:24.04, ubuntu]\n",
        "distro: [ubuntu:24.04, ubuntu]\n        user: me\n",
    );
    let text = Ov::new(p.path()).ok(&["image", "generate", "ub"]).stdout;
    assert!(
        text.contains("useradd -m -u 1000 -g 1000 -s /bin/bash me;"),
        "{text}"
    );
    assert!(text.contains("WORKDIR /home/me\n"), "{text}");
}

#[test]
fn images_share_a_preamble_only_when_base_and_user_agree() {
    let p = project();
    p.append(
        "image.yml",
        "    twin:\n        base: localhost/bookworm-minbase:1\n        user: dev\n        uid: 1500\n        gid: 1600\n        layer: [tools]\n\
         \x20   ops:\n        base: localhost/bookworm-minbase:1\n        user: ops\n        layer: [tools]\n\
         \x20   child:\n        base: app\n",
    );
    let ov = Ov::new(p.path());
    let g = ov.graph(&[]);
    let preambles: Vec<String> = g.ids_of("preamble").into_iter().collect();
    assert_eq!(preambles, ["preamble:app", "preamble:ops"]);
    // twin is app again: one node for both; ops's user differs, so does
    // its layer node (its env names another home).
    assert_eq!(g.ids_of("layer").len(), 2, "{:?}", g.ids());
    assert_eq!(
        ov.ok(&["explain", "preamble@twin"]).stdout,
        ov.ok(&["explain", "preamble:app"]).stdout
    );
    // An internal base passes its user on; the child gets no preamble.
    let child = ov.inspect("child");
    assert_eq!(child["user"], "dev");
    assert_eq!(child["uid"], 1500);
    assert_eq!(child["gid"], 1600);
    assert_eq!(child["home"], "/home/dev");
    let text = ov.ok(&["image", "generate", "child"]).stdout;
    assert!(!text.contains("# node: preamble:child"), "{text}");
    assert!(
        text.contains("LABEL org.overthinkos.home=\"/home/dev\""),
        "{text}"
    );
}

#[test]
fn fields_the_preamble_reads_are_checked_where_written() {
    let bad = |file: &str, from: &str, to: &str, want: &[&str]| {
        let p = project();
        p.edit(file, from, to);
        Ov::new(p.path())
            .bad(&["image", "validate"])
            .stderr_has(want);
    };
    bad(
        "image.yml",
        "        user: dev\n",
        "        user: dev\n        user_policy: borrow\n",
        &["image.yml:6:", "unknown `user_policy` \"borrow\""],
    );
    bad(
        "image.yml",
        "        user: dev\n",
        "        user: dev\n        user_policy: adopt\n",
        &[
            "image.yml:",
            "image `app`",
            "needs `base_user`",
            "distro `debian`",
        ],
    );
    bad(
        "image.yml",
        "user: dev",
        "user: \"d$(id)\"",
        &["image.yml:5:", "`user`"],
    );
    bad(
        "build.yml",
        "home: /home/ubuntu",
        "home: home/ubuntu",
        &[
            "build.yml:",
            "distro.ubuntu.base_user.home",
            "absolute path",
        ],
    );
    bad(
        "build.yml",
        "                - gnupg\n",
        "                - gnupg\n                - \"x;y\"\n",
        &["build.yml:", "distro.debian.bootstrap.package"],
    );
}

/// Built for real on the bookworm base: the user exists with its ids, its
/// home is there and its own, the image starts in it, and the env holds
/// the expanded values from the final image.
#[test]
fn the_built_image_runs_as_its_user_in_its_home() {
    let p = project();
    let img = &p.own_tag("app");
    let ov = ov_for(p.path());
    let cold = built_ok(&ov);
    assert_eq!(
        cold.nodes("built"),
        vec!["image:app", "layer:tools@app", "preamble:app"]
    );
    assert_eq!(
        podman_run(img, "id"),
        "uid=1500(dev) gid=1600(dev) groups=1600(dev)\n"
    );
    assert_eq!(podman_run(img, "pwd"), "/home/dev\n");
    assert_eq!(
        podman_run(img, "stat -c %U:%G /home/dev /home/dev/.npm-global/bin"),
        "dev:dev\ndev:dev\n"
    );
    assert_eq!(
        podman_run(img, "printenv NPM_CONFIG_PREFIX CARGO_HOME DB_URL"),
        "/home/dev/.npm-global\n/home/dev/.cargo\npostgres://app:${DB_PASS}@db/app\n"
    );
    let path = podman_run(img, "printenv PATH");
    assert!(
        path.starts_with("/home/dev/.npm-global/bin:/home/dev/.cargo/bin:/usr/local/sbin:"),
        "{path}"
    );
    // The layer's own step saw its env (ov sets it before any step).
    assert_eq!(
        podman_run(img, "ls -A /home/dev/.npm-global"),
        ".env-seen\nbin\n"
    );
    // The bootstrap packages are in.
    assert_eq!(
        podman_run(img, "for c in curl gpg; do command -v $c; done"),
        "/usr/bin/curl\n/usr/bin/gpg\n"
    );
    // A no-op rebuild runs nothing.
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
}
