//! What the user typed, as clap fills it. No logic lives here.

use crate::graph::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// ov: a content-addressed build engine for OS images.
#[derive(Parser, Debug)]
#[command(name = "ov", version, about, propagate_version = true)]
pub struct Cli {
    /// The project directory (holds overthink.yml).
    #[arg(
        short = 'C',
        long = "dir",
        global = true,
        default_value = ".",
        env = "OV_PROJECT_DIR"
    )]
    pub dir: PathBuf,
    /// Where ov keeps caches [default: $OV_CACHE_DIR, else $XDG_CACHE_HOME/ov].
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Images: build, list, inspect, validate, generate.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Draw the build graph.
    Graph(GraphArgs),
    /// Build targets (images, VMs or node ids); all when none are named.
    Build(BuildArgs),
    /// Show what goes into a node's key and what changed since the last run.
    Explain(ExplainArgs),
    /// The local store: stats, verify, gc.
    #[command(subcommand)]
    Cache(CacheCmd),
    /// User settings (engine socket and kind, default jobs).
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Pin external base images to their digests in ov.lock.
    Lock(LockArgs),
    /// Check the engine, its runtime settings and disk space; print fixes.
    Doctor,
    /// VMs: build the disk, create, start, stop, destroy, list, console, ssh.
    #[command(subcommand)]
    Vm(VmCmd),
}

/// A VM and, optionally, one of its instances.
#[derive(Args, Debug)]
pub struct VmTarget {
    /// The VM's name in vm.yml.
    pub name: String,
    /// An instance of it (`ov-<vm>-<instance>`), beside the default one.
    #[arg(short = 'i', long = "instance")]
    pub instance: Option<String>,
}

/// `ov vm …`.
#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// Build the VM's disk (the cached `disk:<vm>` node).
    Build {
        /// The VM.
        name: String,
        /// Disk type (write it in vm.yml).
        #[arg(long = "type")]
        kind: Option<String>,
        /// Disk size (write it in vm.yml as `disk_size`).
        #[arg(long)]
        size: Option<String>,
        /// Root partition size (vm.yml `source.root_size`).
        #[arg(long)]
        root_size: Option<String>,
        /// bootc image transport (vm.yml `source.transport`).
        #[arg(long)]
        transport: Option<String>,
    },
    /// Build what the VM needs and start a long-lived VM from its disk.
    Create {
        #[command(flatten)]
        target: VmTarget,
        /// RAM, e.g. 4G (instead of vm.yml's `ram`).
        #[arg(long)]
        ram: Option<String>,
        /// Virtual CPUs (instead of vm.yml's `cpus`).
        #[arg(long)]
        cpus: Option<u32>,
        /// The private key `ov vm ssh` uses for this instance.
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// Start a stopped VM.
    Start {
        #[command(flatten)]
        target: VmTarget,
    },
    /// Stop a VM (ACPI power button; `--force` pulls the plug).
    Stop {
        #[command(flatten)]
        target: VmTarget,
        /// Stop at once.
        #[arg(long)]
        force: bool,
    },
    /// Stop and forget a VM (`--disk` also removes its state dir).
    Destroy {
        #[command(flatten)]
        target: VmTarget,
        /// Remove the overlay, NVRAM, seed and keys too.
        #[arg(long)]
        disk: bool,
    },
    /// The VMs ov made, with their state.
    List,
    /// Print a VM's serial console log.
    Console {
        #[command(flatten)]
        target: VmTarget,
    },
    /// ssh into a VM with its instance key.
    Ssh {
        #[command(flatten)]
        target: VmTarget,
        /// A command to run instead of a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

/// `ov cache …`.
#[derive(Subcommand, Debug)]
pub enum CacheCmd {
    /// Entries, blobs and bytes in the store.
    Stats,
    /// Re-hash every entry; report and remove corrupt ones.
    Verify,
    /// Shrink the store to a size, least recently used first.
    Gc {
        /// Largest size to keep, e.g. 10G, 500M.
        #[arg(long)]
        max_size: String,
    },
}

/// `ov settings …`.
#[derive(Subcommand, Debug)]
pub enum SettingsCmd {
    /// Print one setting.
    Get {
        /// The setting, e.g. engine.socket.
        key: String,
    },
    /// Change one setting.
    Set {
        /// The setting.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Every setting with its value.
    List,
}

/// `ov lock`.
#[derive(Args, Debug)]
pub struct LockArgs {
    /// Re-resolve pinned refs (all, or the refs named).
    #[arg(long)]
    pub update: bool,
    /// Refs to update (with --update).
    pub refs: Vec<String>,
}

/// `ov image …`.
#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Enabled images in build order, one per line.
    List {
        /// Also list disabled images.
        #[arg(long)]
        include_disabled: bool,
    },
    /// The resolved image as JSON.
    Inspect {
        /// The image.
        name: String,
    },
    /// Load and check the project; print warnings; exit 2 on errors.
    Validate,
    /// Build images (all enabled ones when none are named), as `ov build`.
    Build(BuildArgs),
    /// Print the Containerfile steps each of the image's nodes runs.
    Generate {
        /// The image.
        name: String,
    },
}

/// `ov graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Only these targets and what they need.
    pub targets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
    /// Write to FILE (whole, or not at all) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// A remote cache to ask which nodes it holds (they show as `remote`).
    #[command(flatten)]
    pub remote: RemoteCacheArgs,
}

/// `ov build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Targets: image names, VM names, `layer@image`, or node ids.
    pub targets: Vec<String>,
    /// Print every node that would run, in order, with its key; run nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Concurrent engine jobs [default: setting build.jobs, else the number of cores].
    #[arg(long, short = 'j', value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Keep building what does not depend on a failed node.
    #[arg(long, short = 'k')]
    pub keep_going: bool,
    /// After the build, write the graph page (`ov graph --format html`)
    /// with what the build did: built, cached, failed, skipped, times.
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub graph_out: Option<std::path::PathBuf>,
    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: crate::run::progress::Mode,
    /// Run these nodes even when cached (package repositories move).
    #[arg(long, value_name = "NODE")]
    pub refresh: Vec<String>,
    /// An OCI registry as an image cache: `oci://127.0.0.1:5000/NAMESPACE`.
    #[arg(long, value_name = "URL", env = "OV_IMAGE_CACHE")]
    pub image_cache: Option<String>,
    /// Whether this build pushes to the image cache (`read` for untrusted builds).
    #[arg(
        long,
        value_enum,
        default_value = "readwrite",
        env = "OV_IMAGE_CACHE_MODE"
    )]
    pub image_cache_mode: crate::run::image_cache::Mode,
    /// The remote cache.
    #[command(flatten)]
    pub remote: RemoteCacheArgs,
}

/// Where the remote cache is and how to use it (`ov build`, `ov graph`).
#[derive(Args, Debug, Default)]
pub struct RemoteCacheArgs {
    /// A remote cache speaking Bazel's HTTP cache protocol (bazel-remote,
    /// nginx WebDAV, …) [default: $OV_REMOTE_CACHE, else setting cache.remote].
    #[arg(
        long,
        value_name = "URL",
        env = "OV_REMOTE_CACHE",
        hide_env_values = true
    )]
    pub remote_cache: Option<String>,
    /// read: look results up only (untrusted builds); readwrite: also upload
    /// what this build ran [default: setting cache.remote_mode, else readwrite].
    #[arg(long, value_name = "MODE", env = "OV_REMOTE_CACHE_MODE", value_parser = ["read", "readwrite"])]
    pub remote_cache_mode: Option<String>,
    /// Extra CA certificates (PEM) for an https remote cache
    /// [default: $OV_REMOTE_CACHE_CA].
    #[arg(long, value_name = "FILE", env = "OV_REMOTE_CACHE_CA")]
    pub remote_cache_ca: Option<PathBuf>,
}

impl BuildArgs {
    /// A plain build of `targets`.
    pub fn targets(targets: Vec<String>) -> BuildArgs {
        BuildArgs {
            targets,
            dry_run: false,
            jobs: None,
            keep_going: false,
            graph_out: None,
            progress: crate::run::progress::Mode::Auto,
            refresh: Vec::new(),
            image_cache: None,
            image_cache_mode: crate::run::image_cache::Mode::Readwrite,
            remote: RemoteCacheArgs::default(),
        }
    }
}

/// `ov explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A node id (`layer:web-layer@web`), `layer@image`, image or VM name.
    pub node: String,
}
