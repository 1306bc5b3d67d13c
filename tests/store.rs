//! The store under damage and strain: a cache dir that is no directory,
//! damaged index lines, concurrent builds sharing work, a read-only cache
//! dir and a full disk. Builds run against the real podman service, on the
//! `tests/fixtures/deb-tasks` project.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, Ov, Project};
use std::path::{Path, PathBuf};

#[test]
fn a_cache_dir_under_a_file_names_the_os_message_once() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let file = p.path().join("image.yml");
    let ov = Ov::new(p.path()).env("OV_CACHE_DIR", file.join("cache"));
    let ov = ov.without_cache_flag();
    for args in [&["cache", "stats"][..], &["cache", "verify"], &["build"]] {
        let r = ov.run(args);
        r.assert_code(1);
        assert_eq!(
            r.stderr.matches("Not a directory").count(),
            1,
            "`{}`:\n{}",
            r.cmd,
            r.stderr
        );
        r.stderr_has(&[&file.join("cache").display().to_string()]);
    }
}

/// The index buckets of a cache dir's store.
fn buckets(cache: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&cache.join("store/index-v5"), &mut out);
    out
}

/// Puts a damaged copy of each bucket's first entry before it, as bit rot
/// in an older entry of the key would leave it: a byte that is no UTF-8.
fn damage_every_bucket(cache: &Path) -> usize {
    let all = buckets(cache);
    for bucket in &all {
        let text = std::fs::read(bucket).unwrap();
        let first: Vec<u8> = text
            .split(|&b| b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap()
            .to_vec();
        let mut damaged = first.clone();
        damaged[5] = 0xff;
        let mut out = b"\n".to_vec();
        out.extend_from_slice(&damaged);
        out.extend_from_slice(&text);
        std::fs::write(bucket, out).unwrap();
    }
    all.len()
}

#[test]
fn a_damaged_index_line_neither_hides_entries_nor_passes_verify() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    built_ok(&ov);
    let damaged = damage_every_bucket(ov.cache_dir());
    assert!(damaged >= 3, "only {damaged} buckets");

    // Every lookup gets past the damage.
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(again.count("engine_builds"), 0);

    // verify finds the damage, says what it dropped, and repairs it.
    damage_every_bucket(ov.cache_dir());
    let verify = ov.run(&["cache", "verify"]);
    verify.assert_code(1);
    let repaired = verify
        .stdout
        .lines()
        .filter(|l| l.contains("index bucket") && l.contains("1 damaged line dropped"))
        .count();
    assert_eq!(repaired, damaged, "{}", verify.stdout);
    ov.ok(&["cache", "verify"]).stdout_has(&["all sound"]);
    let third = built_ok(&ov);
    assert_eq!(third.count("built"), 0, "{:?}", third.events);
}
