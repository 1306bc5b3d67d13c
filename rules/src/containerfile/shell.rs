//! A layer's `shell:` block: shell-init snippets written as system drop-in
//! files, the way ov's generator does for a container build.
//!
//! ov (`compileShellSnippetSteps`, `resolveShellSpec`,
//! `shellSnippetDestination` and `appendShellPathLines` in its
//! `install_build.go`; emitted by `writeLayerSteps` in `generate.go`, step
//! 5, after the layer's tasks): for each shell in the fixed order bash,
//! zsh, fish, sh, a per-shell block (`shell.fish:`) wins over the generic
//! body; the generic `init` has `${SHELL_NAME}` replaced by the shell's
//! name, a per-shell `init` is taken as written. `path_append` entries
//! (with `~/` and `$HOME` expanded against the image's home) are appended
//! as `export PATH="$PATH:<dir>"` lines, or `fish_add_path -gP '<dir>'` for
//! fish. The file is `/etc/profile.d/ov-<layer>-<shell>.sh` for bash, zsh
//! and sh, `/etc/fish/conf.d/ov-<layer>.fish` for fish, or the block's
//! `path` (expanded) when it gives one. ov writes it with a quoted
//! heredoc, so the file holds the snippet and one more newline; here the
//! same bytes are staged in the build context and copied, which no
//! snippet text can escape from.

use super::labels::expand_path;
use super::quote::copy_args;
use super::{RenderError, Steps};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shells a `shell:` block may name, in ov's emission order.
pub const SHELLS: &[&str] = &["bash", "zsh", "fish", "sh"];

/// The fields of a per-shell block (ov's `ShellSpec`), and its JSON form in
/// the `org.overthinkos.shell` label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellSpec {
    /// Shell code, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub init: String,
    /// Directories appended to `PATH`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path_append: Vec<String>,
    /// Where the snippet goes instead of the system drop-in.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl ShellSpec {
    pub(super) fn is_empty(&self) -> bool {
        self.init.is_empty() && self.path_append.is_empty() && self.path.is_empty()
    }
}

/// A layer's `shell:` block (ov's `ShellConfig`): a generic body plus
/// per-shell blocks. Any other key is an error, as in ov.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellConfig {
    /// Generic shell code; `${SHELL_NAME}` is each shell's name.
    pub init: String,
    /// Generic directories appended to `PATH`.
    pub path_append: Vec<String>,
    /// Generic destination override.
    pub path: String,
    /// Load-order hint (carried in the label only).
    pub priority: i64,
    /// Per-shell blocks, by shell name.
    pub by_shell: BTreeMap<String, ShellSpec>,
}

impl<'de> Deserialize<'de> for ShellConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut cfg = ShellConfig::default();
        for (k, v) in map {
            fn field<T: serde::de::DeserializeOwned, E: serde::de::Error>(
                k: &str,
                v: serde_json::Value,
            ) -> Result<T, E> {
                serde_json::from_value(v).map_err(|e| E::custom(format!("shell.{k}: {e}")))
            }
            match k.as_str() {
                "init" => cfg.init = field::<_, D::Error>(&k, v)?,
                "path_append" => cfg.path_append = field::<_, D::Error>(&k, v)?,
                "path" => cfg.path = field::<_, D::Error>(&k, v)?,
                "priority" => cfg.priority = field::<_, D::Error>(&k, v)?,
                s if SHELLS.contains(&s) => {
                    let spec: ShellSpec = field::<_, D::Error>(&k, v)?;
                    cfg.by_shell.insert(k, spec);
                }
                other => {
                    return Err(D::Error::custom(format!(
                        "shell: unknown key `{other}` (expected init, path_append, path, \
                         priority or one of bash, zsh, fish, sh)"
                    )))
                }
            }
        }
        Ok(cfg)
    }
}

impl ShellConfig {
    /// The generic body as a [`ShellSpec`] (the label's `generic`).
    pub(super) fn generic(&self) -> ShellSpec {
        ShellSpec {
            init: self.init.clone(),
            path_append: self.path_append.clone(),
            path: self.path.clone(),
        }
    }
}

/// One drop-in file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// bash, zsh, fish or sh.
    pub shell: &'static str,
    /// Absolute path in the image.
    pub dest: String,
    /// The file's bytes.
    pub content: String,
}

/// The files a layer's `shell:` block writes in a container image.
pub fn snippets(layer: &str, cfg: &ShellConfig, home: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    for &shell in SHELLS {
        let (body, paths, path) = match cfg.by_shell.get(shell) {
            // A per-shell block replaces the generic one, even when it
            // contributes nothing.
            Some(spec) => {
                if spec.init.is_empty() && spec.path_append.is_empty() {
                    continue;
                }
                (spec.init.clone(), &spec.path_append, &spec.path)
            }
            None => {
                if cfg.init.is_empty() && cfg.path_append.is_empty() {
                    continue;
                }
                (
                    cfg.init.replace("${SHELL_NAME}", shell),
                    &cfg.path_append,
                    &cfg.path,
                )
            }
        };
        let dest = if !path.is_empty() {
            expand_path(path, home)
        } else if shell == "fish" {
            format!("/etc/fish/conf.d/ov-{layer}.fish")
        } else {
            format!("/etc/profile.d/ov-{layer}-{shell}.sh")
        };
        let mut body = body;
        if !paths.is_empty() && !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        for p in paths {
            let dir = expand_path(p, home);
            if shell == "fish" {
                body.push_str(&format!(
                    "fish_add_path -gP {}\n",
                    super::quote::sh_sq(&dir)
                ));
            } else {
                body.push_str(&format!("export PATH=\"$PATH:{dir}\"\n"));
            }
        }
        if body.is_empty() {
            continue;
        }
        // The heredoc's closing marker sits on the line after the snippet.
        body.push('\n');
        out.push(Snippet {
            shell,
            dest,
            content: body,
        });
    }
    out
}

/// Stages each snippet and copies it to its place, as root, mode 0644.
pub(super) fn render(
    node: &str,
    layer: &str,
    cfg: &ShellConfig,
    home: &str,
    out: &mut Steps,
) -> Result<(), RenderError> {
    for s in snippets(layer, cfg, home) {
        if !s.dest.starts_with('/') || s.dest.contains('$') || super::accept::has_control(&s.dest) {
            return Err(RenderError::Spec {
                node: node.to_string(),
                message: format!(
                    "`shell` path {:?} is not an absolute path without `$` (after `~/` and `$HOME`)",
                    s.dest
                ),
            });
        }
        let staged = format!(".ov/shell/{}", s.shell);
        out.step(copy_args(&["--chmod=0644".to_string()], &staged, &s.dest));
        out.file(staged, s.content.into_bytes());
    }
    Ok(())
}
