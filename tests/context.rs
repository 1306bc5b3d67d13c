//! What a layer directory may hold, as the build context the engine gets:
//! sparse files are sent as plain data, while sockets, fifos, device nodes,
//! links that leave the layer directory and a cache dir inside a layer are bad
//! input (exit 2, naming the file) before anything is built or stored.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, Ov, Project};
use std::path::Path;
use std::process::Command;

/// Copies layer `a`'s file `name` into the image and checks it there with
/// `check` (an eval command that must exit 0).
fn copy_into_image(p: &Project, name: &str, check: &str) {
    p.append(
        "layers/a/layer.yml",
        &format!("    - copy: {name}\n      to: /opt/a/{name}\n      mode: \"0644\"\n"),
    );
    p.edit(
        "image.yml",
        "            - {id: b-env,",
        &format!(
            "            - {{id: copied, command: '{check}', exit_status: 0}}\n            - {{id: b-env,"
        ),
    );
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_sparse_file_in_a_layer_dir_is_built_into_the_image_whole() {
    // 4 MiB with a hole at the start, data in the middle and a hole at the
    // end: the tar writer must send every byte, holes as zeros.
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let path = p.path().join("layers/a/sparse.bin");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&path).unwrap();
        f.seek(SeekFrom::Start(2 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        f.set_len(4 << 20).unwrap();
    }
    let sum = sha256(&path);
    copy_into_image(
        &p,
        "sparse.bin",
        &format!(
            "test \"$(stat -c %s /opt/a/sparse.bin)\" = {} && echo \"{sum}  /opt/a/sparse.bin\" | sha256sum -c",
            4 << 20
        ),
    );
    let b = built_ok(&ov_for(p.path()));
    // The preamble, two layers, the image and its checks.
    assert_eq!(b.nodes("built").len(), 5, "{:?}", b.events);
}

/// Asserts `ov image validate` and `ov build` both refuse the project with
/// exit 2, naming `shown` and saying `why`, and store nothing.
fn refused(ov: &Ov, shown: &str, why: &str) {
    for args in [&["image", "validate"][..], &["build"][..]] {
        let r = ov.bad(args);
        r.stderr_has(&[shown, why]);
        assert_eq!(
            r.stderr.lines().filter(|l| l.contains(shown)).count(),
            1,
            "one line per bad file:\n{}",
            r.stderr
        );
    }
    ov.assert_only_caches();
}

#[test]
fn a_fifo_in_a_layer_dir_is_bad_input() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let st = Command::new("mkfifo")
        .arg(p.path().join("layers/a/pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    refused(&ov_for(p.path()), "layers/a/pipe", "fifo");
}

#[test]
fn a_socket_in_a_layer_dir_is_bad_input() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    // A hidden one: hidden files are sent to the engine too.
    std::fs::create_dir_all(p.path().join("layers/b/.run")).unwrap();
    drop(
        std::os::unix::net::UnixListener::bind(p.path().join("layers/b/.run/agent.sock")).unwrap(),
    );
    refused(&ov_for(p.path()), "layers/b/.run/agent.sock", "socket");
}

#[test]
fn a_device_node_in_a_layer_dir_is_bad_input() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let st = Command::new("mknod")
        .arg(p.path().join("layers/a/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success(), "mknod needs root, as the podman service does");
    refused(&ov_for(p.path()), "layers/a/null", "device");
}

#[test]
fn a_symlink_out_of_the_layer_dir_is_bad_input_and_links_inside_are_kept() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    copy_into_image(&p, "inside", "test \"$(cat /opt/a/inside)\" = alpha");
    std::os::unix::fs::symlink("a.txt", p.path().join("layers/a/inside")).unwrap();
    std::fs::create_dir(p.path().join("layers/a/sub")).unwrap();
    std::os::unix::fs::symlink("../a.txt", p.path().join("layers/a/sub/up")).unwrap();
    // An absolute target names a path in the image, not on this machine.
    std::os::unix::fs::symlink("/usr/bin/env", p.path().join("layers/a/abs")).unwrap();
    let ov = ov_for(p.path());
    // Out of the project, and into another layer: the engine gets only the
    // layer's directory and answers an empty 500 for either.
    std::os::unix::fs::symlink("../../../outside", p.path().join("layers/b/escape")).unwrap();
    refused(&ov, "layers/b/escape", "outside the layer directory");
    std::fs::remove_file(p.path().join("layers/b/escape")).unwrap();
    std::os::unix::fs::symlink("../b/b.conf", p.path().join("layers/a/sibling")).unwrap();
    refused(&ov, "layers/a/sibling", "outside the layer directory");
    std::fs::remove_file(p.path().join("layers/a/sibling")).unwrap();
    built_ok(&ov);
}

#[test]
fn a_cache_dir_inside_a_layer_dir_is_refused() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let cache = p.path().join("layers/a/.ov-cache");
    let ov = ov_for(p.path())
        .without_cache_flag()
        .env("OV_CACHE_DIR", &cache);
    for args in [&["image", "validate"][..], &["build"][..]] {
        ov.bad(args)
            .stderr_has(&["layers/a/.ov-cache", "cache dir", "layer `a`"]);
    }
    assert!(!cache.exists(), "ov wrote into the layer directory");
    // Also when named through a link.
    std::os::unix::fs::symlink("layers/a", p.path().join("a-link")).unwrap();
    let ov = ov_for(p.path())
        .without_cache_flag()
        .env("OV_CACHE_DIR", p.path().join("a-link/c"));
    ov.bad(&["image", "validate"])
        .stderr_has(&["layers/a/c", "cache dir", "layer `a`"]);
    assert!(!p.path().join("layers/a/c").exists());
    // Beside the layers it is fine.
    let ov = ov_for(p.path())
        .without_cache_flag()
        .env("OV_CACHE_DIR", p.path().join(".ov-cache"));
    ov.ok(&["build", "--dry-run"]);
}

#[test]
fn a_large_layer_file_is_sent_in_bounded_memory() {
    // 64 MiB of bytes that are neither zero nor a hole: held whole in
    // memory, as the context tar once was, it alone would pass the bound.
    // The bound is relative to the same build with a 1 KiB file: ov's own
    // peak (threads, allocator arenas) moves by several MiB from run to
    // run, and an absolute bound near it fails by chance.
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let big = p.path().join("layers/a/big.bin");
    let ov = ov_for(p.path());
    std::fs::write(&big, b"first").unwrap();
    ov.ok(&["build"]);
    // Both measured builds rebuild the same nodes: layer `a` and what needs it.
    std::fs::write(&big, noisy_bytes(1 << 10)).unwrap();
    let small_kib = ov.peak_rss_kib(&["build", "--progress", "plain"]);
    std::fs::write(&big, noisy_bytes(64 << 20)).unwrap();
    let big_kib = ov.peak_rss_kib(&["build", "--progress", "plain"]);
    assert!(
        big_kib < small_kib + 24 * 1024,
        "a 64 MiB layer file raised ov's peak RSS from {} to {} MiB",
        small_kib / 1024,
        big_kib / 1024
    );
}

fn noisy_bytes(len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .collect()
}
