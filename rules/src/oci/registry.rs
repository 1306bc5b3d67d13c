//! An OCI registry as an image cache (see the module above).
