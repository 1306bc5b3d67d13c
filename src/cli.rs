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
    /// Images: list, inspect, validate.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Draw the build graph.
    Graph(GraphArgs),
    /// Build targets (images, VMs or node ids); all when none are named.
    Build(BuildArgs),
    /// Show what goes into a node's key.
    Explain(ExplainArgs),
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
}

/// `ov graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Only these targets and what they need.
    pub targets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

/// `ov build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Targets: image names, VM names, `layer@image`, or node ids.
    pub targets: Vec<String>,
    /// Print every node that would run, in order, with its key; run nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// `ov explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A node id (`layer:web-layer@web`), `layer@image`, image or VM name.
    pub node: String,
}
