//! `cloud-image`: fetch a VM's cloud image and verify it, as ov's
//! `FetchQcow2` does: the checksum given, else the one a checksum file or
//! the `.SHA256`/`.sha256`/`.sha256sum` sidecar names. The download streams
//! to a partial file in the cache dir (never into memory), resumes with a
//! `Range` request after an interruption (this build's retry or the next
//! build's), and restarts when the server ignores ranges. A mismatch
//! removes the partial file and fails the node, so nothing is recorded.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::engine::EngineError;
use crate::NodeKind;
use ov_cache::redact;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a cloud image is verified (`source.checksum`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// This sha256, lowercase hex.
    Sha256(String),
    /// The sha256 a checksum file at this URL gives for the image.
    File(String),
    /// None given: the first sidecar (`<url>.SHA256`, `.sha256`,
    /// `.sha256sum`) that answers, else unverified, as ov does.
    Sidecar,
}

/// A cloud-image node's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudImageSpec {
    /// Where the image is downloaded from.
    pub url: String,
    /// How it is verified.
    pub checksum: Checksum,
}

/// Gives up on a server that does not answer within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Gives up on a body that stalls this long between two reads.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries per build; each after the first resumes where the last stopped.
const ATTEMPTS: usize = 3;
/// Checksum files are small: more than this is not one.
const SUM_FILE_MAX: usize = 64 * 1024;

/// The qcow2 magic (`QFI\xfb`).
const QCOW2_MAGIC: [u8; 4] = [b'Q', b'F', b'I', 0xfb];

fn failed(ctx: &ExecCtx<'_>, msg: String) -> ExecError {
    ExecError::Failed {
        message: format!("{}: {msg}", ctx.node_id),
        output: String::new(),
    }
}

fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
}

/// The file name a URL ends in (what a checksum file lists).
fn base_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

fn normalize(sum: &str) -> String {
    sum.trim()
        .trim_start_matches("sha256:")
        .to_ascii_lowercase()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The sha256 a `sha256sum`-style file gives for `file`: the line naming
/// it, else the first digest-only line, else the first line's digest (ov's
/// `extractBareSHA256`). BSD-style `SHA256 (name) = hex` lines count too.
pub fn sum_from_file(body: &str, file: &str) -> Option<String> {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if !file.is_empty() {
        for l in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 2 && f[1].trim_start_matches('*').ends_with(file) && is_sha256(f[0]) {
                return Some(normalize(f[0]));
            }
            if let Some(rest) = l.strip_prefix("SHA256 (") {
                if let Some((name, hex)) = rest.split_once(") = ") {
                    if name.ends_with(file) && is_sha256(hex.trim()) {
                        return Some(normalize(hex));
                    }
                }
            }
        }
    }
    lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .find(|f| is_sha256(f))
        .map(normalize)
}

/// GETs a small text file; `None` for anything but a 200.
async fn small_get(client: &reqwest::Client, url: &str) -> Option<String> {
    let resp = client.get(url).send().await.ok()?;
    if resp.status() != reqwest::StatusCode::OK {
        return None;
    }
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > SUM_FILE_MAX {
            return None;
        }
    }
    String::from_utf8(body).ok()
}

/// The partial download of `spec`, in the cache's download dir: named by
/// URL and checksum, so a different image never resumes another's bytes.
fn partial_path(dir: &Path, spec: &CloudImageSpec) -> PathBuf {
    let mut h = Sha256::new();
    h.update(spec.url.as_bytes());
    h.update([0]);
    h.update(serde_json::to_string(&spec.checksum).unwrap_or_default());
    dir.join(format!("{}.part", hex::encode(&h.finalize()[..16])))
}

/// The sha256 of what `path` holds so far (a resumed download's prefix).
fn hash_prefix(path: &Path) -> std::io::Result<(Sha256, u64)> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok((h, n));
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
}

/// Why one try of the download stopped.
enum Stop {
    /// The connection broke after some bytes: worth resuming.
    Broken(String),
    /// Worth nothing more this build.
    Fatal(String),
    /// Ctrl-C.
    Cancelled,
}

/// One GET of `url` into `part`, resuming from its length when it has
/// bytes. Returns the whole file's sha256.
async fn fetch_once(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    ctx: &mut ExecCtx<'_>,
) -> Result<String, Stop> {
    let shown = redact(url);
    let io = |e: std::io::Error| Stop::Fatal(format!("{}: {e}", part.display()));
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = tokio::select! {
        r = req.send() => r.map_err(|e| Stop::Broken(format!("GET {shown}: {}", redact(&e.to_string()))))?,
        _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
    };
    let status = resp.status();
    let resumed = have > 0
        && status == reqwest::StatusCode::PARTIAL_CONTENT
        && resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        // What is kept is no prefix of what the server has now.
        std::fs::remove_file(part).map_err(io)?;
        return Err(Stop::Broken(format!(
            "GET {shown}: the partial file was stale"
        )));
    }
    if !(status == reqwest::StatusCode::OK || resumed) {
        return Err(Stop::Fatal(format!("GET {shown}: HTTP {status}")));
    }
    let (mut hasher, mut written) = if resumed {
        (ctx.on_line)(&format!("resuming {shown} at {have} bytes"));
        hash_prefix(part).map_err(io)?
    } else {
        (Sha256::new(), 0)
    };
    let expected_total = resp.content_length().map(|n| n + written);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(io)?;
    let mut resp = resp;
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c,
            _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
        };
        match chunk {
            Ok(Some(bytes)) => {
                file.write_all(&bytes).map_err(io)?;
                hasher.update(&bytes);
                written += bytes.len() as u64;
            }
            Ok(None) => break,
            Err(e) => {
                file.flush().map_err(io)?;
                return Err(Stop::Broken(format!(
                    "GET {shown}: {} after {written} bytes",
                    redact(&e.to_string())
                )));
            }
        }
    }
    file.sync_all().map_err(io)?;
    if let Some(total) = expected_total.filter(|&t| t != written) {
        return Err(Stop::Broken(format!(
            "GET {shown}: {written} of {total} bytes"
        )));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Whether the file starts with the qcow2 magic.
fn format_of(path: &Path) -> std::io::Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut magic)?;
    Ok(if n == 4 && magic == QCOW2_MAGIC {
        "qcow2"
    } else {
        "raw"
    })
}

impl CloudImageSpec {
    /// The sha256 the image must have, if any is known.
    async fn expected(
        &self,
        client: &reqwest::Client,
        ctx: &mut ExecCtx<'_>,
    ) -> Result<Option<String>, ExecError> {
        match &self.checksum {
            Checksum::Sha256(h) => Ok(Some(normalize(h))),
            Checksum::File(u) => {
                let body = small_get(client, u).await.ok_or_else(|| {
                    failed(
                        ctx,
                        format!("checksum file {} could not be read", redact(u)),
                    )
                })?;
                sum_from_file(&body, base_name(&self.url))
                    .map(Some)
                    .ok_or_else(|| {
                        failed(
                            ctx,
                            format!(
                                "checksum file {} has no sha256 for {}",
                                redact(u),
                                base_name(&self.url)
                            ),
                        )
                    })
            }
            Checksum::Sidecar => {
                for suffix in [".SHA256", ".sha256", ".sha256sum"] {
                    let u = format!("{}{suffix}", self.url);
                    if let Some(sum) = small_get(client, &u)
                        .await
                        .and_then(|b| sum_from_file(&b, base_name(&self.url)))
                    {
                        (ctx.on_line)(&format!("checksum from {}", redact(&u)));
                        return Ok(Some(sum));
                    }
                }
                (ctx.on_line)(&format!(
                    "warning: no checksum for {} (no sidecar file): not verified",
                    redact(&self.url)
                ));
                Ok(None)
            }
        }
    }
}

impl Rule for CloudImageSpec {
    const KIND: NodeKind = NodeKind::CloudImage;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Io
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        let shown = redact(&self.url);
        let client = client().map_err(|e| failed(ctx, format!("HTTP client: {e}")))?;
        let expected = self.expected(&client, ctx).await?;
        std::fs::create_dir_all(ctx.downloads).map_err(super::at(ctx.downloads))?;
        let part = partial_path(ctx.downloads, self);
        let mut last = String::new();
        let mut actual = None;
        for _ in 0..ATTEMPTS {
            match fetch_once(&client, &self.url, &part, ctx).await {
                Ok(sum) => {
                    actual = Some(sum);
                    break;
                }
                Err(Stop::Cancelled) => return Err(ExecError::Engine(EngineError::Cancelled)),
                Err(Stop::Fatal(m)) => return Err(failed(ctx, m)),
                Err(Stop::Broken(m)) => {
                    (ctx.on_line)(&m);
                    last = m;
                }
            }
        }
        let Some(actual) = actual else {
            return Err(failed(
                ctx,
                format!("{last} (the partial download is kept; the next build resumes it)"),
            ));
        };
        if let Some(want) = expected.as_ref().filter(|w| **w != actual) {
            let _ = std::fs::remove_file(&part);
            return Err(failed(
                ctx,
                format!(
                    "checksum mismatch for {shown}: expected sha256:{want}, got sha256:{actual}"
                ),
            ));
        }
        let dest = ctx.scratch.join("image");
        if std::fs::rename(&part, &dest).is_err() {
            // Another file system: copy, streamed.
            std::fs::copy(&part, &dest).map_err(super::at(&dest))?;
            let _ = std::fs::remove_file(&part);
        }
        let format = format_of(&dest).map_err(super::at(&dest))?;
        (ctx.on_line)(&format!("{shown}: {format}, sha256:{actual}"));
        Ok(NodeOutput {
            digest: format!("sha256:{actual}"),
            files: vec![("image".into(), dest)],
            meta: json!({ "format": format, "url": shown, "sha256": actual }),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "6205ae0c524b4d1816dbd3573ce29b5c44ed26c9fbc874fbe48c41c89dd0bac2";
    const B: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn checksum_files_are_read_as_ov_reads_them() {
        // sha256sum output: the line naming the file wins.
        let body = format!("{B}  other.qcow2\n{A}  disk.qcow2\n");
        assert_eq!(sum_from_file(&body, "disk.qcow2").as_deref(), Some(A));
        // A bare digest.
        assert_eq!(sum_from_file(&format!("{A}\n"), "x").as_deref(), Some(A));
        // BSD style (Fedora's CHECKSUM files), with comments.
        let bsd = format!("# comment\nSHA256 (other) = {B}\nSHA256 (disk.qcow2) = {A}\n");
        assert_eq!(sum_from_file(&bsd, "disk.qcow2").as_deref(), Some(A));
        // Upper case is normalised.
        assert_eq!(
            sum_from_file(&format!("{}\n", A.to_uppercase()), "").as_deref(),
            Some(A)
        );
        assert_eq!(sum_from_file("no digest here\n", "disk.qcow2"), None);
    }

    #[test]
    fn base_names_ignore_queries() {
        assert_eq!(base_name("https://h/p/disk.qcow2?x=1#f"), "disk.qcow2");
    }

    #[test]
    fn partial_files_differ_by_url_and_checksum() {
        let d = Path::new("/c");
        let a = CloudImageSpec {
            url: "https://h/a".into(),
            checksum: Checksum::Sidecar,
        };
        let mut b = a.clone();
        b.checksum = Checksum::Sha256(A.into());
        assert_ne!(partial_path(d, &a), partial_path(d, &b));
        assert_eq!(partial_path(d, &a), partial_path(d, &a.clone()));
    }
}
