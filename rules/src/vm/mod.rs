//! What VM nodes and `ov vm` share: how an instance is named and where it
//! keeps its state, its SSH keys, and its cloud-init seed.

pub mod cloud_init;
mod instance;
pub mod iso;
pub mod ssh_key;

pub use instance::{Instance, InstanceError};
