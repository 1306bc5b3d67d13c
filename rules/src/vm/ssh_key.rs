//! A VM instance's SSH key per `ssh.key_source`, as ov resolves it:
//! `generate` keeps an ed25519 pair in the instance's state dir (made once,
//! reused after), a path names a public key file, `none` injects nothing,
//! and `auto` takes the user's own `~/.ssh` key. Only public halves go into
//! seeds (the boot rule's `private_key` finds the private half that logs in).

use super::Instance;
use serde::{Deserialize, Serialize};
use ssh_key::{rand_core::OsRng, Algorithm, LineEnding, PrivateKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `ssh.key_source`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The user's `~/.ssh/id_{ed25519,rsa,ecdsa}.pub`, else a generated pair.
    #[default]
    Auto,
    /// A pair generated into the instance's state dir.
    Generate,
    /// No key.
    None,
    /// This public key file (absolute once loaded).
    Path(PathBuf),
}

/// The keywords of `ssh.key_source`; anything else is a path.
pub const KEYWORDS: &[&str] = &["auto", "generate", "none"];

impl KeySource {
    /// Reads `ssh.key_source` as written (empty is `auto`).
    pub fn parse(v: &str) -> KeySource {
        match v {
            "" | "auto" => KeySource::Auto,
            "generate" => KeySource::Generate,
            "none" => KeySource::None,
            p => KeySource::Path(PathBuf::from(p)),
        }
    }
}

/// A public key line and the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// `ssh-ed25519 AAAA… [comment]`.
    pub line: String,
    /// Where it was read or written.
    pub file: PathBuf,
}

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an OpenSSH key.
    #[error("{}: not an OpenSSH {what} key: {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// `public` or `private`.
        what: &'static str,
        /// The parser's words.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The user's key files `auto` looks at, in ov's order.
pub fn user_keys(home: &Path) -> Vec<PathBuf> {
    ["id_ed25519.pub", "id_rsa.pub", "id_ecdsa.pub"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .collect()
}

/// `$HOME`, when set.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
}

/// Reads a public key file, checked to be one OpenSSH public key.
pub fn read_public(path: &Path) -> Result<PublicKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let line = text.trim().to_string();
    ssh_key::PublicKey::from_openssh(&line).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "public",
        why: e.to_string(),
    })?;
    Ok(PublicKey {
        line,
        file: path.to_path_buf(),
    })
}

/// The files `source` reads or may write for `instance`: what a plan that
/// resolved the key depends on.
pub fn inputs(source: &KeySource, instance: &Instance, root: &Path) -> Vec<PathBuf> {
    match source {
        KeySource::None => Vec::new(),
        KeySource::Generate => vec![instance.ssh_key(root), instance.ssh_pub_key(root)],
        KeySource::Path(p) => vec![p.clone()],
        KeySource::Auto => home()
            .map(|h| user_keys(&h))
            .unwrap_or_default()
            .into_iter()
            .chain([instance.ssh_key(root), instance.ssh_pub_key(root)])
            .collect(),
    }
}

/// The public key `source` puts into `instance`'s seed; `generate` (and
/// `auto` without a key of the user's) makes the pair if it is not there.
pub fn public_key(
    source: &KeySource,
    instance: &Instance,
    root: &Path,
) -> Result<Option<PublicKey>, KeyError> {
    match source {
        KeySource::None => Ok(None),
        KeySource::Path(p) => read_public(p).map(Some),
        KeySource::Generate => generate(instance, root).map(Some),
        KeySource::Auto => {
            if let Some(found) = home()
                .map(|h| user_keys(&h))
                .unwrap_or_default()
                .iter()
                .find(|p| p.is_file())
            {
                return read_public(found).map(Some);
            }
            generate(instance, root).map(Some)
        }
    }
}

/// The instance's ed25519 pair, made on first use. The private key is the
/// truth: when it exists, its public half is derived from it (and the
/// `.pub` file rewritten if missing), so two builds racing to make the
/// pair end up with one matching pair.
pub fn generate(instance: &Instance, root: &Path) -> Result<PublicKey, KeyError> {
    let private = instance.ssh_key(root);
    let public = instance.ssh_pub_key(root);
    let dir = instance.dir(root);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for _ in 0..2 {
        if private.exists() {
            let text = std::fs::read_to_string(&private).map_err(io(&private))?;
            let key = PrivateKey::from_openssh(&text).map_err(|e| KeyError::Format {
                path: private.clone(),
                what: "private",
                why: e.to_string(),
            })?;
            let line = key
                .public_key()
                .to_openssh()
                .map_err(|e| KeyError::Format {
                    path: private.clone(),
                    what: "private",
                    why: e.to_string(),
                })?;
            let on_disk = std::fs::read_to_string(&public).unwrap_or_default();
            if on_disk.trim() != line {
                write_atomic(&public, format!("{line}\n").as_bytes(), 0o644)?;
            }
            return Ok(PublicKey { line, file: public });
        }
        let key =
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(|e| KeyError::Format {
                path: private.clone(),
                what: "private",
                why: e.to_string(),
            })?;
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| KeyError::Format {
                path: private.clone(),
                what: "private",
                why: e.to_string(),
            })?;
        // Written aside at 0600 and linked into place: a key that exists
        // (another build's) is never replaced.
        let tmp = tempfile::Builder::new()
            .prefix(".id_ed25519.")
            .tempfile_in(&dir)
            .map_err(io(&dir))?;
        set_mode(tmp.path(), 0o600)?;
        tmp.as_file()
            .write_all(pem.as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(io(tmp.path()))?;
        match std::fs::hard_link(tmp.path(), &private) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&private)(e)),
        }
    }
    Err(io(&private)(std::io::Error::other(
        "the key pair could not be made",
    )))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".key.")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.as_file().write_all(bytes).map_err(io(tmp.path()))?;
    set_mode(tmp.path(), mode)?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The boot spec hashes this type: its JSON is part of boot keys.
    #[test]
    fn key_sources_are_written_as_before_in_specs() {
        let json = |k: KeySource| serde_json::to_string(&k).unwrap();
        assert_eq!(json(KeySource::Auto), r#""auto""#);
        assert_eq!(json(KeySource::None), r#""none""#);
        assert_eq!(
            json(KeySource::parse("~/.ssh/k.pub")),
            r#"{"path":"~/.ssh/k.pub"}"#
        );
    }

    #[test]
    fn generate_makes_an_openssh_pair_once() {
        let root = tempfile::tempdir().unwrap();
        let inst = Instance::new("web", None).unwrap();
        let a = generate(&inst, root.path()).unwrap();
        assert!(a.line.starts_with("ssh-ed25519 "), "{}", a.line);
        let private = inst.ssh_key(root.path());
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pem = std::fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert_eq!(
            std::fs::read_to_string(inst.ssh_pub_key(root.path()))
                .unwrap()
                .trim(),
            a.line
        );
        // Idempotent: the same pair comes back, and a lost .pub is redone
        // from the private key.
        assert_eq!(generate(&inst, root.path()).unwrap().line, a.line);
        std::fs::remove_file(inst.ssh_pub_key(root.path())).unwrap();
        assert_eq!(generate(&inst, root.path()).unwrap().line, a.line);
        // Another instance has its own pair.
        let b = Instance::new("web", Some("two")).unwrap();
        assert_ne!(generate(&b, root.path()).unwrap().line, a.line);
    }

    #[test]
    fn a_path_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let inst = Instance::new("web", None).unwrap();
        let made = generate(&inst, dir.path()).unwrap();
        let src = KeySource::Path(made.file.clone());
        assert_eq!(
            public_key(&src, &inst, dir.path()).unwrap().unwrap().line,
            made.line
        );
        let junk = dir.path().join("junk.pub");
        std::fs::write(&junk, "not a key\n").unwrap();
        let err = public_key(&KeySource::Path(junk), &inst, dir.path()).unwrap_err();
        assert!(err.to_string().contains("junk.pub"), "{err}");
        assert!(public_key(&KeySource::None, &inst, dir.path())
            .unwrap()
            .is_none());
    }

    #[test]
    fn keywords_parse_and_the_rest_is_a_path() {
        assert_eq!(KeySource::parse(""), KeySource::Auto);
        assert_eq!(KeySource::parse("generate"), KeySource::Generate);
        assert_eq!(KeySource::parse("none"), KeySource::None);
        assert_eq!(KeySource::parse("/k.pub"), KeySource::Path("/k.pub".into()));
    }
}
