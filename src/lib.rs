//! `ov`: reads ov projects (overthink.yml, image.yml, layers/, vm.yml,
//! build.yml) and turns them into one content-addressed build graph.
//!
//! The source folders are the stages data flows through, one way:
//!
//! - [`load`]: files → the project [`model`](load::model), checked by
//!   [`validate`](load::validate) (every error at file:line:col);
//! - [`plan`]: per-image [`resolve`](plan::resolve) (base chain, install
//!   order), hashed layer trees ([`inputs`](plan::inputs)), the petgraph DAG
//!   and its [`keys`](plan::keys); [`predict`](plan::predict) says what a
//!   build would do without running it;
//! - [`run`]: the [`sched`](run::sched)uler starts each node when its
//!   dependencies are done; each is keyed from what they produced, looked up
//!   in the store and run through `ov-rules` only on a miss;
//!   [`progress`](run::progress) shows it;
//! - [`commands`]: one function per CLI command, over the pipeline that
//!   [`workspace`] runs; the `ov` binary is a thin match over them.
//!
//! How a node kind does its work lives in `ov-rules`; digests, caches and
//! the store live in `ov-cache`.
//!
//! ```no_run
//! use ov::workspace::{Dirs, Workspace};
//! let ws = Workspace::open("examples/hello".as_ref(), &Dirs::from_env(None)).unwrap();
//! for (name, img) in &ws.resolved {
//!     println!("{name}: {:?}", img.install);
//! }
//! ```
pub mod cli;
pub mod commands;
pub mod diag;
pub mod graph;
pub mod load;
pub mod plan;
pub mod run;
pub mod settings;
pub mod workspace;
