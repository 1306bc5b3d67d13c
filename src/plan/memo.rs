//! The dry run's memo: `ov build --dry-run` keeps its finished output in
//! `<cache-dir>/dry-run.v1` together with a [`Witness`] of every input it
//! depended on. The next dry run with the same ov, project, targets and
//! repo cache only stats those inputs (in parallel) and, when none changed,
//! prints the remembered output without loading anything.
//!
//! What the witness covers, and why that is every input of the output:
//!
//! - every YAML file the load parsed and `ov.lock` (present or not): the
//!   model;
//! - every discover root (present or not) and every directory walked under
//!   it: which layers exist;
//! - the copy sources validation looks for and the init header files the
//!   planner reads;
//! - every hashed layer tree: its root, each subdirectory and each file
//!   and link (the fingerprint it was hashed at). A directory's mtime moves
//!   when an entry is added, removed or renamed, so a new file is seen too.
//!
//! - the store's generation file (`<cache-dir>/store/generation`), which
//!   the store replaces whenever its answers change, since "cached" lines
//!   depend on them.
//!
//! A memo is only written when every fingerprint in it had settled (see
//! [`ov_cache::Fingerprint::settled`]) before the run began, so no change
//! made while the run read its inputs can hide behind an equal fingerprint.
//! The file is written atomically and carries a format tag and a checksum;
//! one that is missing, damaged, of another format or for another context
//! is ignored (and replaced by the next full run).

use crate::workspace::{Dirs, Workspace};
use ov_cache::{atomic_write, Fingerprint, Witness, WitnessBuilder};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The memo's file name in the cache dir.
pub const FILE: &str = "dry-run.v1";

/// The file's first bytes; a memo of another format is not read.
const MAGIC: &[u8; 16] = b"ov-dry-run-v1\n\0\0";

#[derive(Serialize, Deserialize)]
struct Stored {
    context: [u8; 32],
    witness: Witness,
    stdout: String,
    stderr: String,
}

/// One dry run's view of its memo.
pub struct Memo {
    path: PathBuf,
    store: PathBuf,
    /// What the output depends on besides files; `None` disables the memo.
    context: Option<[u8; 32]>,
    /// When this run began, ns since the epoch.
    started_ns: i128,
}

/// Output remembered from an earlier identical dry run.
pub struct Replay {
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr (warnings).
    pub stderr: String,
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(i128::MAX)
}

/// A hash of everything the output depends on that is not a file of the
/// project: this ov binary (its version and its own fingerprint, so a
/// rebuilt ov never replays an older one's output), where it runs and on
/// what, and which targets were asked for.
fn context(root: &Path, dirs: &Dirs, targets: &[String]) -> Option<[u8; 32]> {
    let exe = std::env::current_exe().ok()?;
    let exe_fp = Fingerprint::of(&std::fs::metadata(&exe).ok()?);
    let cwd = std::env::current_dir().ok()?;
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(MAGIC);
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(exe.as_os_str().as_encoded_bytes());
    field(&postcard::to_allocvec(&exe_fp).ok()?);
    field(cwd.as_os_str().as_encoded_bytes());
    field(root.as_os_str().as_encoded_bytes());
    field(dirs.repo_cache.as_os_str().as_encoded_bytes());
    field(&(targets.len() as u64).to_le_bytes());
    for t in targets {
        field(t.as_bytes());
    }
    Some(*h.finalize().as_bytes())
}

impl Memo {
    /// The memo of a dry run of `targets` in `root`. Call before anything
    /// is read: the time it is made is when the run began.
    pub fn new(root: &Path, dirs: &Dirs, targets: &[String]) -> Memo {
        Memo {
            path: dirs.cache.join(FILE),
            store: dirs.cache.join("store"),
            context: context(root, dirs, targets),
            started_ns: now_ns(),
        }
    }

    /// The remembered output, if the memo is for this context and no input
    /// changed since it was written.
    pub fn replay(&self) -> Option<Replay> {
        let context = self.context?;
        let bytes = std::fs::read(&self.path).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (sum, payload) = rest.split_at_checked(32)?;
        if blake3::hash(payload).as_bytes() != sum {
            return None;
        }
        let stored: Stored = postcard::from_bytes(payload).ok()?;
        if stored.context != context || !stored.witness.unchanged() {
            return None;
        }
        Some(Replay {
            stdout: stored.stdout,
            stderr: stored.stderr,
        })
    }

    /// Remembers the output of a full dry run over `ws`, when that is safe
    /// (see the module docs). The memo is only a speed-up: failing to
    /// write it is not an error.
    pub fn save(&self, ws: &Workspace, stdout: &str, stderr: &str) {
        let Some(context) = self.context else { return };
        let Some(witness) = witness(ws, &self.store) else {
            return;
        };
        if !witness.settled(self.started_ns) {
            return;
        }
        let stored = Stored {
            context,
            witness,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        };
        let Ok(payload) = postcard::to_allocvec(&stored) else {
            return;
        };
        let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let _ = atomic_write(&self.path, &bytes);
    }
}

/// Every input of `ws`'s plan and keys (see the module docs); `None` when
/// one cannot be recorded.
fn witness(ws: &Workspace, store: &Path) -> Option<Witness> {
    let project = &ws.project;
    let mut b = WitnessBuilder::default();
    // "cached" lines come from the store: its generation file is replaced
    // whenever its answers change (and appears with the first build).
    b.path_now(&ov_cache::Store::generation_path(store));
    // Trees first: their fingerprints were taken as they were hashed, and
    // paths they hold need no second stat below.
    for (name, tree) in &ws.trees {
        let dir = &project.layers.get(name)?.dir;
        if dir.as_os_str().is_empty() {
            continue;
        }
        b.dir(dir, tree.root);
        for (rel, fp) in &tree.dirs {
            b.entry(dir, rel, Some(*fp));
        }
        for f in &tree.files {
            b.entry(dir, &f.rel, Some(f.fingerprint));
        }
    }
    for f in &project.inputs.files {
        b.path_now(f);
    }
    for d in &project.inputs.dirs {
        b.dir_now(d);
    }
    for path in crate::load::validate::copy_source_paths(project) {
        b.path_now(&path);
    }
    for path in crate::plan::header_files(project) {
        b.path_now(&path);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// Sets the mtime of everything under `dir` (and `dir`) a minute back,
    /// so every input has settled.
    fn backdate(dir: &Path) {
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

    struct Setup {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        dirs: Dirs,
    }

    /// A settled copy of the mini fixture whose memo holds `out`/`err`.
    fn remembered() -> Setup {
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
        // The first plan makes the VM's key pair (an input of the plan);
        // all inputs are then older than the settling time.
        Workspace::open(&root, &dirs).unwrap();
        backdate(&root);
        backdate(&dirs.state);
        let memo = Memo::new(&root, &dirs, &[]);
        assert!(memo.replay().is_none(), "nothing is remembered yet");
        let ws = Workspace::open(&root, &dirs).unwrap();
        memo.save(&ws, "out\n", "err\n");
        Setup {
            _tmp: tmp,
            root,
            dirs,
        }
    }

    fn replays(s: &Setup, targets: &[String]) -> bool {
        Memo::new(&s.root, &s.dirs, targets).replay().is_some()
    }

    #[test]
    fn replays_what_was_saved() {
        let s = remembered();
        let r = Memo::new(&s.root, &s.dirs, &[]).replay().unwrap();
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
        // Other targets are another output.
        assert!(!replays(&s, &["app".to_string()]));
    }

    #[test]
    fn any_change_to_an_input_is_seen() {
        type Change = fn(&Path);
        let changes: &[(&str, Change)] = &[
            ("layer file edited", |r| {
                std::fs::write(r.join("layers/greeting/hello.txt"), "changed").unwrap()
            }),
            ("layer.yml edited", |r| {
                let p = r.join("layers/web/layer.yml");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, text + "# edited\n").unwrap()
            }),
            ("file added to a layer", |r| {
                std::fs::write(r.join("layers/greeting/new.txt"), "x").unwrap()
            }),
            ("file added in a new subdirectory", |r| {
                std::fs::create_dir(r.join("layers/greeting/sub")).unwrap();
                std::fs::write(r.join("layers/greeting/sub/x"), "x").unwrap()
            }),
            ("file removed from a layer", |r| {
                std::fs::remove_file(r.join("layers/greeting/hello.txt")).unwrap()
            }),
            ("root YAML edited", |r| {
                let p = r.join("image.yml");
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, text + "# edited\n").unwrap()
            }),
            ("ov.lock created", |r| {
                std::fs::write(r.join("ov.lock"), "{}").unwrap()
            }),
            ("layer directory added", |r| {
                std::fs::create_dir(r.join("layers/extra")).unwrap()
            }),
        ];
        for (what, change) in changes {
            let s = remembered();
            assert!(replays(&s, &[]), "{what}: not remembered to begin with");
            change(&s.root);
            assert!(!replays(&s, &[]), "{what} went unseen");
        }
    }

    #[test]
    fn a_change_in_the_store_voids_it() {
        let s = remembered();
        // An empty store answers nothing new.
        let store = s.dirs.cache.join("store");
        std::fs::create_dir_all(&store).unwrap();
        assert!(replays(&s, &[]));
        std::fs::write(ov_cache::Store::generation_path(&store), "1\n").unwrap();
        assert!(!replays(&s, &[]));
    }

    #[test]
    fn a_damaged_memo_is_ignored() {
        let s = remembered();
        let path = s.dirs.cache.join(FILE);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for bad in [
            flipped,
            good[..good.len() / 2].to_vec(),
            b"garbage".to_vec(),
            Vec::new(),
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(!replays(&s, &[]));
        }
    }

    #[test]
    fn inputs_that_have_not_settled_are_not_remembered() {
        let s = remembered();
        std::fs::remove_file(s.dirs.cache.join(FILE)).unwrap();
        // Just written: a change in the same timestamp tick could hide.
        std::fs::write(s.root.join("layers/greeting/hello.txt"), "fresh").unwrap();
        let memo = Memo::new(&s.root, &s.dirs, &[]);
        let ws = Workspace::open(&s.root, &s.dirs).unwrap();
        memo.save(&ws, "out\n", "");
        assert!(!s.dirs.cache.join(FILE).exists());
    }
}
