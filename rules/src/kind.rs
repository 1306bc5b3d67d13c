//! The node kinds of the build graph and their rule versions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a node does. See the table in DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// Hash a file tree (a layer directory, a template).
    Source,
    /// Resolve an external image ref to a digest and make it present.
    Base,
    /// Run a build.yml bootstrap builder into a rootfs.
    Bootstrap,
    /// Prepare an external base image: bootstrap packages, the image user
    /// and its home (ov's bootstrap preamble).
    Preamble,
    /// Run a build.yml builder's stage for one layer on a builder image.
    Stage,
    /// Apply one layer on a parent image.
    Layer,
    /// Finish an image: ENV, EXPOSE, init assembly, USER, labels, tag.
    Image,
    /// Run an image's build-scope `eval:` checks.
    Eval,
    /// Turn an image or cloud image into a VM disk.
    Disk,
    /// Fetch a cloud image and verify its checksum.
    CloudImage,
    /// Render a cloud-init NoCloud seed ISO.
    Seed,
    /// Boot a VM, wait for it, run deploy-scope checks, shut it down.
    Boot,
}

impl NodeKind {
    /// Every kind, in pipeline order.
    pub const ALL: [NodeKind; 12] = [
        NodeKind::Source,
        NodeKind::Base,
        NodeKind::Bootstrap,
        NodeKind::Preamble,
        NodeKind::Stage,
        NodeKind::Layer,
        NodeKind::Image,
        NodeKind::Eval,
        NodeKind::CloudImage,
        NodeKind::Disk,
        NodeKind::Seed,
        NodeKind::Boot,
    ];

    /// The name used in node ids, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Base => "base",
            NodeKind::Bootstrap => "bootstrap",
            NodeKind::Preamble => "preamble",
            NodeKind::Stage => "stage",
            NodeKind::Layer => "layer",
            NodeKind::Image => "image",
            NodeKind::Eval => "eval",
            NodeKind::Disk => "disk",
            NodeKind::CloudImage => "cloud-image",
            NodeKind::Seed => "seed",
            NodeKind::Boot => "boot",
        }
    }

    /// Parses [`as_str`](Self::as_str) back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The rule version. Bump a kind's number when its executor would make
    /// a different output from the same inputs: every old key of that kind
    /// then misses, and nothing else does.
    pub fn version(self) -> u32 {
        match self {
            NodeKind::Source => 1,
            NodeKind::Base => 1,
            // Keys of kinds that make engine images hash the engine's
            // platform from bootstrap v2, preamble v2, stage v3, layer v3
            // and image v5 on (and those kinds store OCI parts; image v4
            // added the skills and info labels).
            NodeKind::Bootstrap => 2,
            NodeKind::Preamble => 2,
            NodeKind::Stage => 3,
            NodeKind::Layer => 3,
            NodeKind::Image => 5,
            NodeKind::Eval => 1,
            NodeKind::Disk => 2,
            NodeKind::CloudImage => 2,
            NodeKind::Seed => 2,
            NodeKind::Boot => 1,
        }
    }

    /// The domain tag that starts every key of this kind: `ov/<kind>/v<n>`.
    pub fn domain_tag(self) -> String {
        format!("ov/{}/v{}", self.as_str(), self.version())
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in NodeKind::ALL {
            assert_eq!(NodeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NodeKind::CloudImage.domain_tag(), "ov/cloud-image/v2");
    }
}
