//! The project model: what the ov files say, decoded and merged, before any
//! planning. Every name that another entity can refer to carries its
//! [`Loc`] so later checks can point at it.

use crate::diag::Loc;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// A value and where it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub loc: Loc,
}

impl<T> Spanned<T> {
    /// Wraps a value.
    pub fn new(value: T, loc: Loc) -> Self {
        Spanned { value, loc }
    }
}

/// A whole loaded project.
#[derive(Debug, Default)]
pub struct Project {
    /// The project directory (where `overthink.yml` is).
    pub root: PathBuf,
    /// The schema stamp.
    pub version: String,
    /// Fallbacks for every image entry.
    pub defaults: Image,
    /// Images by name, in the order first defined.
    pub images: IndexMap<String, Image>,
    /// Layers by key (a directory name, or `host/org/repo/path` for remote ones).
    pub layers: IndexMap<String, Layer>,
    /// VM entities by name.
    pub vms: IndexMap<String, Vm>,
    /// build.yml: distros, builders, init systems.
    pub build: BuildConfig,
    /// Every YAML file read, relative to `root` where possible.
    pub files: Vec<PathBuf>,
    /// `ov.lock`: external refs pinned to image ids.
    pub lock: std::collections::BTreeMap<String, String>,
    /// Every path the load depended on, for the dry run's memo.
    pub inputs: Inputs,
}

/// The paths a load read or listed (with `root` joined, as opened), so a
/// later run can tell nothing it depends on changed. Layer directories are
/// not here: hashing lists them (see [`SourceTree`](crate::plan::inputs::SourceTree)).
#[derive(Debug, Default)]
pub struct Inputs {
    /// Files read or looked for, through symlinks: every YAML file parsed,
    /// `ov.lock` (whether or not it exists).
    pub files: Vec<PathBuf>,
    /// Directories whose listing was read: discover roots (whether or not
    /// they exist) and every directory walked under them.
    pub dirs: Vec<PathBuf>,
    /// Each discover root's walk, kept for the next full plan (see
    /// [`crate::plan::kept_layers`]).
    pub walks: Vec<crate::plan::kept_layers::Walk>,
}

/// An image entry (`image: <name>: {...}`), or the `defaults` block.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// The entry name.
    pub name: String,
    /// Where the entry starts.
    pub loc: Option<Loc>,
    /// `enabled` (default true).
    pub enabled: Option<bool>,
    /// `base`: an image name or an external OCI ref.
    pub base: Option<Spanned<String>>,
    /// `from: builder:<name>`: start from a rootfs made by a bootstrap builder.
    pub from: Option<Spanned<String>>,
    /// The image the bootstrap builder runs in.
    pub bootstrap_builder_image: Option<Spanned<String>>,
    /// The layer list as written.
    pub layers: Vec<Spanned<String>>,
    /// `platform`.
    pub platform: Option<Vec<String>>,
    /// `tag`.
    pub tag: Option<String>,
    /// `registry`.
    pub registry: Option<String>,
    /// `distro`, e.g. `[fedora:43, fedora]`.
    pub distro: Option<Vec<String>>,
    /// `build`: package formats in install order.
    pub build: Option<Vec<String>>,
    /// `builder`: format → builder image.
    pub builder: Option<IndexMap<String, Spanned<String>>>,
    /// `produce`.
    pub produce: Option<Vec<String>>,
    /// `user`.
    pub user: Option<String>,
    /// `uid`.
    pub uid: Option<u32>,
    /// `gid`.
    pub gid: Option<u32>,
    /// `user_policy`.
    pub user_policy: Option<String>,
    /// `init`: force supervisord or systemd.
    pub init: Option<String>,
    /// `eval` checks.
    pub eval: Vec<Json>,
    /// The project has the image's skill page
    /// (`plugins/ov-images/skills/<name>/SKILL.md`), which ov links from a label.
    pub skill_doc: bool,
    /// Everything else ov knows (runtime declarations that end up in labels),
    /// as canonical JSON.
    pub meta: IndexMap<String, Json>,
}

/// A layer directory's `layer.yml`. Kept decoded between runs by the
/// parse cache ([`crate::load::parse_cache`]), as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Layer {
    /// The layer key.
    pub name: String,
    /// Where `layer.yml` is, for messages.
    pub loc: Option<Loc>,
    /// The layer directory (absolute); its whole tree is a build input.
    pub dir: PathBuf,
    /// The directory relative to the project root, for display and keys.
    pub display_dir: String,
    /// `require`: layers installed first.
    pub require: Vec<Spanned<String>>,
    /// `layer`: layers this metalayer expands to, in place.
    pub includes: Vec<Spanned<String>>,
    /// `package`: packages for every format.
    pub package: Vec<String>,
    /// `distro`: per-distro (or per-tag) package sections.
    pub distro: IndexMap<String, Json>,
    /// `task`: ordered install steps.
    pub tasks: Vec<Task>,
    /// The same steps as the layer spec holds them (`{verb, arg, spec}`),
    /// made once: every node applying the layer shares them.
    pub task_json: std::sync::Arc<[ov_rules::CanonicalJson]>,
    /// `var`.
    pub var: IndexMap<String, String>,
    /// `env`.
    pub env: IndexMap<String, String>,
    /// `path_append`.
    pub path_append: Vec<String>,
    /// `port`.
    pub port: Vec<String>,
    /// `service`.
    pub service: Vec<Json>,
    /// `eval` checks.
    pub eval: Vec<Json>,
    /// `capabilities`.
    pub capabilities: Option<Json>,
    /// Everything else (runtime metadata).
    pub meta: IndexMap<String, Json>,
}

impl Layer {
    /// A metalayer with no content of its own is expanded and not installed.
    pub fn has_own_content(&self) -> bool {
        !(self.package.is_empty()
            && self.distro.is_empty()
            && self.tasks.is_empty()
            && self.env.is_empty()
            && self.path_append.is_empty()
            && self.port.is_empty()
            && self.service.is_empty()
            && self.var.is_empty()
            && self.capabilities.is_none())
    }
}

/// One install step, as validation reads it; the whole step (to, mode,
/// user, content…) is in the layer's `task_json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// The verb: cmd, mkdir, copy, write, link, download, setcap, build.
    pub verb: String,
    /// The verb's argument (command, path, source…).
    pub arg: String,
    /// Where the step is.
    pub loc: Loc,
}

/// A VM entity.
#[derive(Clone, Debug)]
pub struct Vm {
    /// The name.
    pub name: String,
    /// Where the entry starts.
    pub loc: Loc,
    /// Which file it came from (`vm.yml` or `deploy.yml`'s `vm:` map).
    pub source_kind: VmSourceKind,
    /// For bootc VMs: the image; for bootstrap VMs: the builder image.
    pub image: Option<Spanned<String>>,
    /// `source` as JSON.
    pub source: Json,
    /// The boot fields, typed (`None` when they had errors).
    pub boot: Option<ov_rules::rule::BootSpec>,
    /// The rest of the entry (disk_size, ram, cpus, firmware, network, ssh,
    /// cloud_init, libvirt…) with drifted spellings normalised.
    pub spec: IndexMap<String, Json>,
    /// `cloud_init:`, typed and checked; `None` when the entry has none.
    pub cloud_init: Option<ov_rules::vm::cloud_init::CloudInit>,
    /// `ssh.key_source` (`auto` when unset) and where it was written.
    pub key_source: Spanned<ov_rules::vm::ssh_key::KeySource>,
    /// Whether cloud-init authorizes the key (`ssh.key_injection.cloud_init`).
    pub key_via_cloud_init: bool,
    /// `source.checksum`, typed.
    pub checksum: ov_rules::rule::cloud_image::Checksum,
    /// The public key the VM's default instance gets, resolved per
    /// `key_source` once the project is loaded (see `vm::resolve_keys`).
    pub ssh_public_key: Option<String>,
    /// The disk fields, typed.
    pub disk: VmDisk,
}

/// A VM's disk fields, checked and typed at load.
#[derive(Clone, Debug, Default)]
pub struct VmDisk {
    /// `disk_size` in bytes.
    pub size: Option<u64>,
    /// `source.rootfs` (ext4 unless set).
    pub rootfs: ov_rules::rule::RootFs,
    /// `source.root_size` in bytes.
    pub root_size: Option<u64>,
    /// `source.kernel_args`.
    pub kernel_args: Option<String>,
    /// `source.disk_format` (qcow2 unless set).
    pub format: ov_rules::rule::DiskFormat,
    /// `source.transport` (bootc).
    pub transport: ov_rules::rule::Transport,
    /// `ssh.user`, which bootloader templates see.
    pub ssh_user: Option<String>,
}

/// `source.kind` of a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmSourceKind {
    /// A downloaded cloud image.
    CloudImage,
    /// An ov image installed to disk by `bootc install`.
    Bootc,
    /// A rootfs from a bootstrap builder, partitioned and made bootable.
    Bootstrap,
    /// A copy of another VM (lifecycle, not a build).
    Clone,
    /// An existing libvirt domain (lifecycle, not a build).
    Imported,
}

/// build.yml, with `inherits` already resolved.
#[derive(Clone, Debug, Default)]
pub struct BuildConfig {
    /// `distro.<name>`.
    pub distros: IndexMap<String, Json>,
    /// `builder.<name>`.
    pub builders: IndexMap<String, Json>,
    /// `init.<name>`.
    pub inits: IndexMap<String, Json>,
    /// Where each `distro.x` / `builder.x` / `init.x` was defined.
    pub locs: IndexMap<String, Loc>,
    /// Which file tree each definition came from (same keys as `locs`);
    /// absent means the project's own.
    pub origins: IndexMap<String, DefOrigin>,
}

impl BuildConfig {
    /// The file that definition `def` (`init.supervisord`) names by the
    /// relative path `rel` (a `header_file`): ov reads it from the tree the
    /// definition came from, so a remote build.yml's templates come from
    /// that repository's checkout, not from the project.
    pub fn asset(&self, project_root: &Path, def: &str, rel: &str) -> PathBuf {
        match self.origins.get(def) {
            Some(o) => o.root.join(rel),
            None => project_root.join(rel),
        }
    }
}

/// Where a build.yml definition was read from.
#[derive(Clone, Debug)]
pub struct DefOrigin {
    /// The folder its relative file names are resolved in: the checkout of
    /// the repository (ov resolves them from the repository's root).
    pub root: PathBuf,
    /// The include that brought it in.
    pub include: RemoteInclude,
}

/// A remote include as the project wrote it, for messages.
#[derive(Clone, Debug)]
pub struct RemoteInclude {
    /// `host/org/repo`.
    pub repo: String,
    /// The tag or branch (`HEAD` for the default branch).
    pub version: String,
    /// The included file's path inside the repository.
    pub path: String,
    /// Where the project (or an included file) wrote the include.
    pub loc: Loc,
}

impl std::fmt::Display for RemoteInclude {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the include of {} from {} at {} ({})",
            self.path, self.repo, self.version, self.loc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::yaml::Span;
    use std::sync::Arc;

    #[test]
    fn assets_are_read_from_the_tree_their_definition_came_from() {
        let mut b = BuildConfig::default();
        let loc = Loc::new(
            &Arc::new(PathBuf::from("overthink.yml")),
            Span { line: 4, col: 5 },
        );
        b.origins.insert(
            "init.supervisord".into(),
            DefOrigin {
                root: PathBuf::from("/repos/github.com/a/b@v1"),
                include: RemoteInclude {
                    repo: "github.com/a/b".into(),
                    version: "v1".into(),
                    path: "build.yml".into(),
                    loc,
                },
            },
        );
        let root = Path::new("/project");
        assert_eq!(
            b.asset(root, "init.supervisord", "templates/h.conf"),
            Path::new("/repos/github.com/a/b@v1/templates/h.conf")
        );
        assert_eq!(
            b.asset(root, "init.systemd", "templates/h.conf"),
            Path::new("/project/templates/h.conf")
        );
        assert_eq!(
            b.origins["init.supervisord"].include.to_string(),
            "the include of build.yml from github.com/a/b at v1 (overthink.yml:4:5)"
        );
    }
}
