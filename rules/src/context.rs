//! Build contexts: a layer directory plus generated files, as the tar the
//! engine reads.
//!
//! A context is only a list of what to send until it is written, so a
//! large layer never sits in memory: [`ContextTar::into_stream`] writes the
//! tar on a blocking thread into a small bounded channel that the HTTP body
//! drains. Entries are plain (a sparse file is sent as its full length of
//! bytes: engines refuse GNU sparse entries), in name order, with fixed
//! owners and times, so the same inputs give the same tar.

use bytes::Bytes;
use futures_util::Stream;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Bytes per chunk handed to the HTTP body.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: with [`CHUNK`], at most a few MiB of context is in
/// memory whatever the size of the layer.
const IN_FLIGHT: usize = 8;

#[derive(Clone)]
enum Part {
    /// A directory's entries, at the context's root.
    Dir(PathBuf),
    /// A generated file.
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
}

/// A build context: directories and generated files, written as a tar
/// only when sent (or when [`finish`](Self::finish) asks for the bytes).
#[derive(Clone, Default)]
pub struct ContextTar {
    parts: Vec<Part>,
}

/// What kind of special file `ft` is (`None` for a file, directory or
/// symbolic link), in words for messages. Such entries have no place in a
/// build context: an engine cannot take a socket, and a device node or a
/// fifo in a layer is almost always litter, not an input.
pub fn special_kind(ft: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_socket() {
            return Some("a unix socket");
        }
        if ft.is_fifo() {
            return Some("a fifo (named pipe)");
        }
        if ft.is_char_device() {
            return Some("a character device node");
        }
        if ft.is_block_device() {
            return Some("a block device node");
        }
    }
    if ft.is_file() || ft.is_dir() || ft.is_symlink() {
        None
    } else {
        Some("not a regular file, directory or symbolic link")
    }
}

/// `e` with the path it happened on in front.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl ContextTar {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every entry of `dir` at the context's root (nothing when `dir`
    /// is not a directory). The directory is read when the context is sent.
    pub fn add_dir(&mut self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            self.parts.push(Part::Dir(dir.to_path_buf()));
        }
        Ok(())
    }

    /// Adds one generated file.
    pub fn add_file(&mut self, path: &str, data: &[u8], mode: u32) -> io::Result<()> {
        self.parts.push(Part::File {
            path: path.to_string(),
            data: data.to_vec(),
            mode,
        });
        Ok(())
    }

    /// Writes the whole tar to `out` and returns it. Any error names the
    /// file it happened on.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<W> {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        b.follow_symlinks(false);
        b.sparse(false);
        for part in &self.parts {
            match part {
                Part::Dir(dir) => append_tree(&mut b, dir)?,
                Part::File { path, data, mode } => {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(*mode);
                    h.set_mtime(0);
                    h.set_cksum();
                    b.append_data(&mut h, path, &data[..])?;
                }
            }
        }
        b.into_inner()
    }

    /// The finished tar, in memory: for small contexts and tests.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        self.write_to(Vec::new())
    }

    /// Streams the tar: a blocking thread writes it into a bounded channel
    /// drained by the returned stream. A read error (a file that vanished
    /// or shrank while being sent) ends the stream with that error, so the
    /// engine sees a broken request rather than a short context, and the
    /// handle returns it, naming the file. Dropping the stream stops the
    /// writer at its next chunk; the handle then returns `Ok`, as whatever
    /// dropped the stream is the story to tell.
    pub fn into_stream(
        self,
    ) -> (
        impl Stream<Item = io::Result<Bytes>> + Send + 'static,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
        let producer = tokio::task::spawn_blocking(move || {
            let sender = ChunkSender { tx: tx.clone() };
            let written = self
                .write_to(io::BufWriter::with_capacity(CHUNK, sender))
                .and_then(|mut w| w.flush());
            match written {
                Err(_) if tx.is_closed() => Ok(()),
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                    Err(e)
                }
                Ok(()) => Ok(()),
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (stream, producer)
    }
}

/// Appends the entries under `dir` (not `dir` itself), sorted by name.
fn append_tree<W: Write>(b: &mut tar::Builder<W>, dir: &Path) -> io::Result<()> {
    let walk = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| {
            let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
            io::Error::new(kind, e.to_string())
        })?;
        let path = entry.path();
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let ft = entry.file_type();
        if let Some(kind) = special_kind(&ft) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: is {kind}, which cannot go into a build context",
                    path.display()
                ),
            ));
        }
        let mut h = tar::Header::new_gnu();
        if ft.is_file() {
            // The header comes from the open file, so size and contents
            // belong to the same file even if the path is replaced meanwhile.
            let file = std::fs::File::open(path).map_err(|e| at(path, e))?;
            let meta = file.metadata().map_err(|e| at(path, e))?;
            h.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
            let size = meta.len();
            let data = Exact {
                inner: file.take(size),
                left: size,
                path,
            };
            b.append_data(&mut h, rel, data)?;
        } else {
            let meta = entry.metadata().map_err(|e| {
                let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
                io::Error::new(kind, e.to_string())
            })?;
            h.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
            h.set_size(0);
            if ft.is_symlink() {
                let target = std::fs::read_link(path).map_err(|e| at(path, e))?;
                b.append_link(&mut h, rel, target)?;
            } else {
                b.append_data(&mut h, rel, io::empty())?;
            }
        }
    }
    Ok(())
}

/// Reads exactly `left` bytes from `inner` or fails naming `path`: the tar
/// header already promised that many, so a file that shrank must not
/// leave a short entry that shifts every entry after it.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf).map_err(|e| at(self.path, e))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: shrank while being sent ({} bytes missing)",
                    self.path.display(),
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The writing end of the channel: each write becomes one chunk.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, data)
            })
            .collect()
    }

    #[test]
    fn generated_files_and_trees_in_name_order_with_plain_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/z"), "z").unwrap();
        std::fs::write(dir.path().join("b"), "b").unwrap();
        // Sparse on disk: the tar must hold plain bytes, holes as zeros.
        let sparse = std::fs::File::create(dir.path().join("a")).unwrap();
        sparse.set_len(100_000).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("b", dir.path().join("c")).unwrap();
        let mut t = ContextTar::new();
        t.add_dir(dir.path()).unwrap();
        t.add_file("g/h.txt", b"hi", 0o644).unwrap();
        let got = entries(&t.clone().finish().unwrap());
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        #[cfg(unix)]
        assert_eq!(names, ["a", "b", "c", "sub", "sub/z", "g/h.txt"]);
        assert_eq!(got[0].1, tar::EntryType::Regular);
        assert_eq!(got[0].2, vec![0; 100_000]);
        assert_eq!(got[1].2, b"b");
        // The same inputs give the same bytes.
        assert_eq!(t.clone().finish().unwrap(), t.finish().unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_special_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let mut t = ContextTar::new();
        t.add_dir(dir.path()).unwrap();
        let e = t.finish().unwrap_err().to_string();
        assert!(e.contains("s.sock") && e.contains("unix socket"), "{e}");
    }

    #[test]
    fn a_file_that_shrank_is_an_error_naming_it() {
        let mut r = Exact {
            inner: &b"abc"[..],
            left: 5,
            path: Path::new("layers/x/f"),
        };
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err().to_string();
        assert!(
            e.contains("layers/x/f") && e.contains("2 bytes missing"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_stream_is_the_tar_and_a_vanished_file_ends_it_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &big).unwrap();
        let mut t = ContextTar::new();
        t.add_dir(dir.path()).unwrap();
        let (stream, producer) = t.clone().into_stream();
        let chunks: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        producer.await.unwrap().unwrap();
        assert!(chunks.len() > 1, "sent in one piece");
        assert_eq!(chunks.concat(), t.clone().finish().unwrap());

        // The directory is read when sent: one gone by then fails the
        // stream and the producer with its path.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut gone = ContextTar::new();
        gone.add_dir(&dir.path().join("sub")).unwrap();
        std::fs::remove_dir(dir.path().join("sub")).unwrap();
        let (stream, producer) = gone.into_stream();
        let items: Vec<io::Result<Bytes>> = stream.collect().await;
        assert!(items.last().is_some_and(|r| r.is_err()));
        let e = producer.await.unwrap().unwrap_err().to_string();
        assert!(e.contains("sub"), "{e}");
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![7u8; 4 * CHUNK * IN_FLIGHT]).unwrap();
        let mut t = ContextTar::new();
        t.add_dir(dir.path()).unwrap();
        let (stream, producer) = t.into_stream();
        let mut stream = Box::pin(stream);
        assert!(stream.next().await.is_some());
        drop(stream);
        let done = tokio::time::timeout(std::time::Duration::from_secs(10), producer).await;
        assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
    }
}
