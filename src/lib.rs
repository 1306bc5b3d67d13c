//! `ov`: reads ov projects (overthink.yml, image.yml, layers/, vm.yml,
//! build.yml) and turns them into one content-addressed build graph.
//!
//! Data flows one way: files → [`load`] (the [`model`]) → [`validate`] →
//! [`resolve`] (per-image base chain and install order) → [`inputs`]
//! (hashed layer trees) → [`plan`] (the petgraph DAG) → [`keys`]. The
//! [`workspace`] module runs that pipeline; the `ov` binary is a thin CLI
//! over it. [`build`] runs the plan: the [`sched`]uler starts each node when
//! its dependencies are done, and each node is keyed from what they
//! produced, looked up in the store and run through `ov-rules` only on a
//! miss; [`progress`] shows it. [`predict`] says what a build would do
//! without running it (`--dry-run`, [`explain`]). How a node kind does its
//! work lives in `ov-rules`; digests, caches and the store live in `ov-cache`.
//!
//! ```no_run
//! use ov::workspace::{Dirs, Workspace};
//! let ws = Workspace::open("examples/hello".as_ref(), &Dirs::from_env(None)).unwrap();
//! for (name, img) in &ws.resolved {
//!     println!("{name}: {:?}", img.install);
//! }
//! ```
pub mod build;
pub mod calver;
pub mod cli;
pub mod diag;
pub mod doctor;
pub mod explain;
pub mod generate;
pub mod graph;
pub mod image_ref;
pub mod inputs;
pub mod keys;
pub mod layer_files;
pub mod load;
pub mod lock;
pub mod lockcmd;
pub mod memo;
pub mod model;
pub mod plan;
pub mod predict;
pub mod progress;
pub mod resolve;
pub mod sched;
pub mod settings;
pub mod validate;
pub mod workspace;
pub mod yaml;
