//! Test support: a settled copy of the mini fixture project, for the
//! tests of what is kept between runs (the memo, the saved plan).

use crate::workspace::Dirs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Sets the mtime of everything under `dir` (and `dir`) a minute back,
/// so every input has settled.
pub fn backdate(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            backdate(&path);
        } else {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(old).unwrap();
        }
    }
    std::fs::File::open(dir).unwrap().set_modified(old).unwrap();
}

fn copy(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// A project in a temporary folder, with its own cache, repo and state dirs.
pub struct Setup {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub dirs: Dirs,
}

/// A fresh copy of `tests/fixtures/mini` (not yet settled).
pub fn fixture() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("project");
    copy(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mini")),
        &root,
    );
    let dirs = Dirs {
        cache: tmp.path().join("cache"),
        repo_cache: tmp.path().join("repos"),
        state: tmp.path().join("state"),
    };
    Setup {
        _tmp: tmp,
        root,
        dirs,
    }
}

/// `good` cut at 64 lengths, with its last byte flipped, and garbage: a
/// kill -9 can leave no torn file (writes are atomic), but a file cut
/// anywhere must still be refused, not misread.
pub fn damaged(good: &[u8]) -> Vec<Vec<u8>> {
    let mut flipped = good.to_vec();
    if let Some(last) = flipped.last_mut() {
        *last ^= 1;
    }
    let mut bad: Vec<Vec<u8>> = (0..good.len())
        .step_by(good.len() / 64 + 1)
        .map(|n| good[..n].to_vec())
        .collect();
    bad.extend([flipped, b"garbage".to_vec()]);
    bad
}

/// [`fixture`] changed by `prepare`, then planned once (which makes the
/// VM's key pair, an input of the plan) and settled: every input older
/// than the settling time.
pub fn settled_fixture(prepare: fn(&Path)) -> Setup {
    let s = fixture();
    prepare(&s.root);
    crate::workspace::Workspace::open(&s.root, &s.dirs).unwrap();
    backdate(&s.root);
    backdate(&s.dirs.state);
    s
}

/// Makes a fifo at `path` (which hashing skips and validation refuses).
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}
