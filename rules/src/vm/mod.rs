//! What VM nodes and `ov vm` share: how an instance is named and where it
//! keeps its state.

mod instance;

pub use instance::{Instance, InstanceError};
