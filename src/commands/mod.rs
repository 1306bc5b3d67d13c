//! The commands the `ov` binary runs, each over the pipeline in
//! [`crate::workspace`]: what a user asks for, as functions main calls.

pub mod doctor;
pub mod explain;
pub mod generate;
pub mod graph;
pub mod lock;
