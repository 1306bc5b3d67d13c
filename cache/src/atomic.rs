//! Crash-safe file replacement.

use crate::Error;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers the temp files of this process, so two threads writing the same
/// path at once each get their own temp file instead of sharing (and
/// interleaving into) one.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `path` through a temp file in the same folder and a
/// rename, so readers (and a crash) see the old contents or the new ones,
/// never a mix. Creates the folder when missing. Concurrent writers of one
/// path (threads or processes) never see each other's half-written data;
/// the last rename wins.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), Error> {
    atomic_write_with(path, |f| f.write_all(data))
}

/// [`atomic_write`] for contents made while they are written: `fill` gets
/// the temp file (it may seek, e.g. to put a checksum of what follows in
/// front of it), so a large file never has to be whole in memory first.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), Error> {
    replace(path, fill, true)
}

/// [`atomic_write_with`] without waiting for the data to reach the disk:
/// readers still see the old contents or the new ones, but after a power
/// loss the file may be empty or cut. Only for a file that carries its own
/// checksum and is a speed-up (the dry run's memo, ~4 MB on a large
/// project, whose `fsync` was half of what writing it cost): a cut one is
/// refused by its checksum and costs the time it saved, nothing else.
pub fn checksummed_write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), Error> {
    replace(path, fill, false)
}

fn replace(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    durable: bool,
) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    remove_dead_temps(dir, name);
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        fill(&mut f)?;
        if durable {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Removes the temp files of writes to `name` whose process is gone: a
/// process killed mid-write (kill -9, a power cut) leaves its temp file,
/// which for a saved plan is megabytes, once per kill.
fn remove_dead_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::process_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_writers_temp_file_is_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // No process has a pid this high.
        let dead = dir.path().join(".f.tmp.4294967295.0");
        let live = dir
            .path()
            .join(format!(".f.tmp.{}.999", std::process::id()));
        let other = dir.path().join(".g.tmp.4294967295.0");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"left").unwrap();
        }
        checksummed_write_with(&path, |f| std::io::Write::write_all(f, b"new")).unwrap();
        assert!(!dead.exists(), "a dead writer's temp file was left");
        assert!(live.exists(), "a live writer's temp file was removed");
        assert!(other.exists(), "another file's temp file was removed");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn threads_writing_one_path_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 256 * 1024]).collect();
        std::thread::scope(|s| {
            for p in &payloads {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..5 {
                        atomic_write(path, p).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&path).unwrap();
        assert!(payloads.contains(&got), "file is a mix of writers");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temp files left behind");
    }

    #[test]
    fn a_writer_that_fails_midway_leaves_the_old_file_and_no_temp() {
        // Synced or not, a failed write replaces nothing.
        type Write = fn(&Path, fn(&mut std::fs::File) -> std::io::Result<()>) -> Result<(), Error>;
        let writers: [Write; 2] = [
            |p, f| atomic_write_with(p, f),
            |p, f| checksummed_write_with(p, f),
        ];
        for write in writers {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            atomic_write(&path, b"old").unwrap();
            let err = write(&path, |f| {
                f.write_all(b"half of the new")?;
                Err(std::io::Error::other("serializer gave up"))
            });
            assert!(err.is_err());
            assert_eq!(std::fs::read(&path).unwrap(), b"old");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
            write(&path, |f| f.write_all(b"new")).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }
}
