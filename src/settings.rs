//! User settings (`ov settings get|set|list`), kept as JSON in the user's
//! config dir: `$OV_CONFIG_DIR`, else `$XDG_CONFIG_HOME/ov`, else
//! `~/.config/ov`. Only known keys are accepted, each with its own check,
//! so a typo is an error naming the closest key rather than a setting that
//! silently does nothing.

use crate::diag::did_you_mean;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A known setting.
pub struct Setting {
    /// Its dotted name.
    pub key: &'static str,
    /// What it does.
    pub help: &'static str,
    /// The value used when unset.
    pub default: &'static str,
    /// Allowed values, when the set is closed.
    pub choices: &'static [&'static str],
}

/// Every setting ov knows.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "engine.socket",
        help: "the container engine's API endpoint (DOCKER_HOST wins when set)",
        default: ov_rules::engine::PODMAN_SOCKET,
        choices: &[],
    },
    Setting {
        key: "engine.kind",
        help: "which engine answers at the socket",
        default: "podman",
        choices: &["podman", "docker"],
    },
    Setting {
        key: "engine.image_check",
        help: "how cached images are checked in the engine: one list (list), one inspect per node (each), or list except on podman before 5, whose list is slow (auto)",
        default: "auto",
        choices: &["auto", "list", "each"],
    },
    Setting {
        key: "vm.backend",
        help: "how VMs boot: through libvirtd, or qemu-system-x86_64 run directly (OV_VM_BACKEND wins when set)",
        default: "libvirt",
        choices: &["libvirt", "qemu"],
    },
    Setting {
        key: "vm.accel",
        help: "KVM or TCG for VM boots: auto tries a short KVM guest first (OV_VM_ACCEL wins when set)",
        default: "auto",
        choices: &["auto", "kvm", "tcg"],
    },
    Setting {
        key: "vm.ram_budget",
        help: "RAM that a build's VM boots may use at once; a VM asking more is refused (OV_VM_RAM_BUDGET wins when set)",
        default: "4G",
        choices: &[],
    },
    Setting {
        key: "cache.remote",
        help: "a remote cache URL (Bazel HTTP cache protocol; --remote-cache and OV_REMOTE_CACHE win); credentials belong in OV_REMOTE_CACHE_TOKEN, OV_REMOTE_CACHE_USER/PASSWORD or ~/.netrc",
        default: "",
        choices: &[],
    },
    Setting {
        key: "cache.remote_mode",
        help: "read: only look results up; readwrite: also upload what a build ran (--remote-cache-mode and OV_REMOTE_CACHE_MODE win)",
        default: "readwrite",
        choices: &["read", "readwrite"],
    },
    Setting {
        key: "build.jobs",
        help: "default for -j/--jobs (0 = number of cores)",
        default: "0",
        choices: &[],
    },
];

/// Settings as stored.
#[derive(Debug, Default)]
pub struct Settings {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

/// What went wrong with a setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Not a known key.
    #[error("unknown setting `{key}`{hint}; known settings: {known}")]
    UnknownKey {
        /// The key given.
        key: String,
        /// " (did you mean …?)".
        hint: String,
        /// All keys.
        known: String,
    },
    /// A value the key does not take.
    #[error("`{key}` must be {expected}, not `{value}`")]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What it takes.
        expected: String,
    },
    /// The file is not a JSON object of strings: bad input.
    /// A value in the settings file that `settings set` would refuse.
    #[error(
        "{path}: `{key}` must be {expected}, not `{value}` (fix it with `ov settings set {key} …`)"
    )]
    BadFileValue {
        /// The settings file.
        path: String,
        /// The setting.
        key: String,
        /// Its value in the file.
        value: String,
        /// What it may be.
        expected: String,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Syntax {
        /// The settings file.
        path: String,
        /// Where the JSON went wrong (1-based).
        line: usize,
        /// Column on that line (1-based).
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The settings file.
        path: String,
        /// What failed.
        message: String,
    },
}

fn lookup(key: &str) -> Result<&'static Setting, SettingsError> {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .ok_or_else(|| SettingsError::UnknownKey {
            key: key.to_string(),
            hint: did_you_mean(key, SETTINGS.iter().map(|s| s.key)),
            known: SETTINGS
                .iter()
                .map(|s| s.key)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Settings {
    /// Where settings live.
    pub fn path() -> PathBuf {
        std::env::var_os("OV_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::config_dir().map(|d| d.join("ov")))
            .unwrap_or_else(|| PathBuf::from(".config/ov"))
            .join("settings.json")
    }

    /// Loads the settings file (empty when there is none).
    pub fn load() -> Result<Settings, SettingsError> {
        let path = Self::path();
        let values = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                // serde_json ends its message with the position; the
                // position goes first, as in every other input error.
                let text = e.to_string();
                let what = text.split(" at line ").next().unwrap_or(&text);
                SettingsError::Syntax {
                    path: path.display().to_string(),
                    line: e.line(),
                    col: e.column(),
                    message: format!("not a settings file: {what}"),
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(SettingsError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
        };
        Settings { path, values }.checked()
    }

    /// The value of `key` (its default when unset).
    pub fn get(&self, key: &str) -> Result<String, SettingsError> {
        let s = lookup(key)?;
        Ok(self
            .values
            .get(key)
            .cloned()
            .unwrap_or_else(|| s.default.to_string()))
    }

    /// Checks every known value of a hand-edited file as `set` would, so a
    /// bad one is an error naming the file, not a silent default.
    fn checked(self) -> Result<Settings, SettingsError> {
        for (key, value) in &self.values {
            if let Ok(s) = lookup(key) {
                check(s, value).map_err(|expected| SettingsError::BadFileValue {
                    path: self.path.display().to_string(),
                    key: key.clone(),
                    value: value.clone(),
                    expected,
                })?;
            }
        }
        Ok(self)
    }

    /// Sets and saves `key`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingsError> {
        let s = lookup(key)?;
        let bad = |expected: String| SettingsError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            expected,
        };
        check(s, value).map_err(bad)?;
        self.values.insert(key.to_string(), value.to_string());
        let text = serde_json::to_vec_pretty(&self.values).unwrap_or_default();
        ov_cache::atomic_write(&self.path, &text).map_err(|e| SettingsError::File {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Every setting with its value and whether it was set.
    pub fn list(&self) -> Vec<(&'static Setting, String, bool)> {
        SETTINGS
            .iter()
            .map(|s| {
                let set = self.values.get(s.key);
                (
                    s,
                    set.cloned().unwrap_or_else(|| s.default.to_string()),
                    set.is_some(),
                )
            })
            .collect()
    }
}

/// What `value` must be for setting `s`, when it is not that.
fn check(s: &Setting, value: &str) -> Result<(), String> {
    // A line break would reach messages, and an endpoint, as written.
    if value.chars().any(char::is_control) {
        return Err("one line without control characters".into());
    }
    if !s.choices.is_empty() && !s.choices.contains(&value) {
        return Err(format!("one of {}", s.choices.join(", ")));
    }
    if s.key == "build.jobs" && value.parse::<usize>().is_err() {
        return Err("a whole number".into());
    }
    if s.key == "vm.ram_budget" && ov_rules::rule::boot::spec::parse_size(value).is_none() {
        return Err("a size such as 4G or 8192M".into());
    }
    if s.key == "cache.remote" && !value.is_empty() {
        let mode = ov_cache::remote::Mode::Read;
        let url = ov_cache::remote::Config::new(value, mode, None, None, None)
            .map_err(|e| format!("an http:// or https:// URL ({e})"))?;
        // The settings file is plain text that `settings list` prints.
        if url.auth.is_some() {
            return Err(
                "a URL without credentials (put them in OV_REMOTE_CACHE_TOKEN, \
                 OV_REMOTE_CACHE_USER and OV_REMOTE_CACHE_PASSWORD, or ~/.netrc)"
                    .into(),
            );
        }
    }
    Ok(())
}
