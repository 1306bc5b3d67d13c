//! Remote references: `@host/org/repo/path:version`, resolved from a local
//! repo cache directory and never fetched here, so loading never waits on
//! the network.

use std::path::{Path, PathBuf};

/// A parsed `@host/org/repo/sub/path:version` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// `github.com`.
    pub host: String,
    /// `org`.
    pub org: String,
    /// `repo`.
    pub repo: String,
    /// The path inside the repository.
    pub path: String,
    /// The tag or branch; `None` means the default branch.
    pub version: Option<String>,
}

impl RemoteRef {
    /// Parses a reference; `None` when it is not of the remote form.
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix('@')?;
        let (locator, version) = match body.rsplit_once(':') {
            Some((l, v)) if !v.contains('/') && !v.is_empty() => (l, Some(v.to_string())),
            _ => (body, None),
        };
        let mut parts = locator.splitn(4, '/');
        let host = parts.next().filter(|s| !s.is_empty())?.to_string();
        let org = parts.next().filter(|s| !s.is_empty())?.to_string();
        let repo = parts.next().filter(|s| !s.is_empty())?.to_string();
        let path = parts.next().unwrap_or("").trim_matches('/').to_string();
        if path.split('/').any(|c| c == "..") {
            return None;
        }
        Some(RemoteRef {
            host,
            org,
            repo,
            path,
            version,
        })
    }

    /// `host/org/repo`.
    pub fn repo_id(&self) -> String {
        format!("{}/{}/{}", self.host, self.org, self.repo)
    }

    /// The layer key ov gives a remote layer: `host/org/repo/path`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.repo_id(), self.path)
    }

    /// `<cache>/<host>/<org>/<repo>@<version>`; the default branch is kept
    /// under `@HEAD`.
    pub fn checkout_dir(&self, repo_cache: &Path) -> PathBuf {
        repo_cache.join(&self.host).join(&self.org).join(format!(
            "{}@{}",
            self.repo,
            self.version.as_deref().unwrap_or("HEAD")
        ))
    }

    /// Where the referenced file or directory lives in the repo cache.
    pub fn local_path(&self, repo_cache: &Path) -> PathBuf {
        self.checkout_dir(repo_cache).join(&self.path)
    }

    /// A sibling in the same repository and version (used to re-qualify a
    /// remote layer's bare `require`/`layer` names).
    pub fn sibling(&self, name: &str) -> RemoteRef {
        let parent = self.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let path = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        RemoteRef {
            path,
            ..self.clone()
        }
    }

    /// A sentence telling the user how to make the reference resolvable.
    pub fn how_to_fetch(&self, repo_cache: &Path) -> String {
        let dir = self.checkout_dir(repo_cache);
        if dir.is_dir() {
            return format!(
                "the checkout of {} at {} in {} has no {}",
                self.repo_id(),
                self.version.as_deref().unwrap_or("its default branch"),
                dir.display(),
                self.path
            );
        }
        let branch = self
            .version
            .as_ref()
            .map(|v| format!(" --branch {v}"))
            .unwrap_or_default();
        format!(
            "repository {} at {} is not in the repo cache; place a checkout at {} (for example: git clone --depth 1{branch} https://{} {}), or set OV_REPO_CACHE",
            self.repo_id(),
            self.version.as_deref().unwrap_or("its default branch"),
            dir.display(),
            self.repo_id(),
            dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layer_refs() {
        let r = RemoteRef::parse("@github.com/overthinkos/overthink/layers/pixi:v2026.141.1600")
            .unwrap();
        assert_eq!(r.key(), "github.com/overthinkos/overthink/layers/pixi");
        assert_eq!(r.version.as_deref(), Some("v2026.141.1600"));
        assert_eq!(
            r.sibling("nodejs").key(),
            "github.com/overthinkos/overthink/layers/nodejs"
        );
        let dir = r.local_path(Path::new("/c"));
        assert_eq!(
            dir,
            Path::new("/c/github.com/overthinkos/overthink@v2026.141.1600/layers/pixi")
        );
    }

    #[test]
    fn rejects_non_refs_and_escapes() {
        assert!(RemoteRef::parse("pixi").is_none());
        assert!(RemoteRef::parse("@github.com/x").is_none());
        assert!(RemoteRef::parse("@github.com/a/b/../../etc:v1").is_none());
        let r = RemoteRef::parse("@github.com/a/b/base.yml").unwrap();
        assert_eq!(r.version, None);
    }
}
