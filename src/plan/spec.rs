//! A plan node's spec: made by the planner, or kept by the build's saved
//! plan (see [`super::saved`]) and read on first use.
//!
//! A build after an edit of layer files needs, of most of its thousands
//! of nodes, only what keys them and schedules them: the hashed head of
//! the key, the resource class, how it is cached, whether it tags a node
//! image. A saved plan keeps those beside each spec's text, so reading it
//! back parses only the specs of the nodes that run or whose hit must be
//! checked against the engine (an image's tag), not every one of them.

use crate::plan::watch::Tail;
use ov_rules::rule::{Caching, ResourceClass};
use ov_rules::{CanonicalJson, Ingredients, NodeKind, NodeSpec};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// The first two digests of a node's key (see [`Ingredients::head`]).
pub type Head = [[u8; 32]; 2];

/// A layer's steps, as its applications share them.
pub type Steps = Arc<[CanonicalJson]>;

/// A node's spec.
#[derive(Clone, Debug)]
pub struct Spec(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// Boxed, as the kept one is: a plan node stays small, whatever the
    /// largest spec (a plan of thousands of nodes is moved as it grows).
    Made(Box<(NodeSpec, OnceLock<Head>)>),
    Kept(Box<Kept>),
}

/// What a build asks of every node, without reading the rest of its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub kind: NodeKind,
    pub head: Head,
    pub resources: ResourceClass,
    pub caching: Caching,
    pub tags_node_image: bool,
}

/// A spec as a saved plan keeps it: where its text is, and its facts.
#[derive(Clone, Debug)]
pub struct Kept {
    facts: Facts,
    /// The JSON its `Serialize` wrote; a layer application's without its
    /// steps.
    text: Text,
    /// A layer application's steps, shared with the layer's other
    /// applications.
    steps: Option<Arc<KeptSteps>>,
    /// Boxed: most kept specs are never read, and a spec is large.
    parsed: OnceLock<Box<NodeSpec>>,
}

/// Where a kept text is: a slice of the saved plan's tail, which is not
/// read until a spec is.
#[derive(Clone, Debug)]
pub struct Text {
    pub(crate) tail: Arc<Tail>,
    pub(crate) at: u64,
    pub(crate) len: u64,
}

impl Text {
    fn read(&self) -> Result<Vec<u8>, Unreadable> {
        self.tail
            .read(self.at, self.len)
            .map_err(|e| Unreadable(e.to_string()))
    }
}

/// A layer's steps as a saved plan keeps them, read once for all the
/// layer's applications.
#[derive(Debug)]
pub struct KeptSteps {
    text: Text,
    parsed: OnceLock<Steps>,
}

impl KeptSteps {
    pub fn new(text: Text) -> KeptSteps {
        KeptSteps {
            text,
            parsed: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Steps, Unreadable> {
        if let Some(s) = self.parsed.get() {
            return Ok(s);
        }
        let text = self.text.read()?;
        let steps: Steps = ov_rules::read_own(|| serde_json::from_slice(&text))
            .map_err(|e| Unreadable(e.to_string()))?;
        Ok(self.parsed.get_or_init(|| steps))
    }
}

impl Kept {
    /// `facts` must be the spec's own: the saved plan computed them from
    /// the spec it wrote as `text`. A text that reads back as another
    /// spec (a damaged file) is caught by its head.
    pub fn new(facts: Facts, text: Text, steps: Option<Arc<KeptSteps>>) -> Kept {
        Kept {
            facts,
            text,
            steps,
            parsed: OnceLock::new(),
        }
    }

    fn read(&self) -> Result<NodeSpec, Unreadable> {
        let read = || -> Result<NodeSpec, Unreadable> {
            let bad = |e: serde_json::Error| Unreadable(e.to_string());
            let text = self.text.read()?;
            let mut spec =
                ov_rules::read_own(|| NodeSpec::from_json(self.facts.kind, &text)).map_err(bad)?;
            match (&mut spec, &self.steps) {
                (NodeSpec::Layer(l), Some(steps)) => l.tasks = steps.get()?.clone(),
                (_, None) => {}
                _ => {
                    return Err(Unreadable(
                        "steps kept for a node that is not a layer".into(),
                    ))
                }
            }
            if Ingredients::head(&spec) != self.facts.head {
                return Err(Unreadable("it is not the spec its key was made of".into()));
            }
            Ok(spec)
        };
        read().inspect_err(|_| self.text.tail.discard())
    }
}

/// A kept spec that does not read back: the saved plan is damaged, and
/// has been removed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the build's saved plan holds a spec that does not read back ({0}); it was removed, so the \
     next build plans in full"
)]
pub struct Unreadable(String);

impl Spec {
    /// A kept spec, read when first asked for.
    pub fn kept(kept: Kept) -> Spec {
        Spec(Repr::Kept(Box::new(kept)))
    }

    /// The spec. Only a kept one can fail, when its text does not read.
    pub fn get(&self) -> Result<&NodeSpec, Unreadable> {
        match &self.0 {
            Repr::Made(m) => Ok(&m.0),
            Repr::Kept(k) => {
                if let Some(s) = k.parsed.get() {
                    return Ok(s);
                }
                let spec = Box::new(k.read()?);
                Ok(k.parsed.get_or_init(|| spec))
            }
        }
    }

    /// The planner's spec: `None` for a kept one.
    pub fn made(&self) -> Option<&NodeSpec> {
        match &self.0 {
            Repr::Made(m) => Some(&m.0),
            Repr::Kept(_) => None,
        }
    }

    /// Its facts (for a made spec, the head is hashed on first use).
    pub fn facts(&self) -> Facts {
        match &self.0 {
            Repr::Made(m) => Facts {
                kind: m.0.kind(),
                head: *self.head(),
                resources: m.0.resources(),
                caching: m.0.caching(),
                tags_node_image: m.0.tags_node_image(),
            },
            Repr::Kept(k) => k.facts,
        }
    }

    pub fn kind(&self) -> NodeKind {
        match &self.0 {
            Repr::Made(m) => m.0.kind(),
            Repr::Kept(k) => k.facts.kind,
        }
    }

    /// Its rule tag and canonical text, hashed: how its key starts.
    pub fn head(&self) -> &Head {
        match &self.0 {
            Repr::Made(m) => m.1.get_or_init(|| Ingredients::head(&m.0)),
            Repr::Kept(k) => &k.facts.head,
        }
    }

    pub fn resources(&self) -> ResourceClass {
        match &self.0 {
            Repr::Made(m) => m.0.resources(),
            Repr::Kept(k) => k.facts.resources,
        }
    }

    pub fn caching(&self) -> Caching {
        match &self.0 {
            Repr::Made(m) => m.0.caching(),
            Repr::Kept(k) => k.facts.caching,
        }
    }

    /// Whether its output is an engine image tagged under its key (and so
    /// whether its key hashes the engine's platform).
    pub fn tags_node_image(&self) -> bool {
        match &self.0 {
            Repr::Made(m) => m.0.tags_node_image(),
            Repr::Kept(k) => k.facts.tags_node_image,
        }
    }
}

impl<T: Into<NodeSpec>> From<T> for Spec {
    fn from(spec: T) -> Spec {
        Spec(Repr::Made(Box::new((spec.into(), OnceLock::new()))))
    }
}
