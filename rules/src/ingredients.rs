//! Building a node key from named ingredients.

use crate::{canonical_json, NodeKind};
use ov_cache::{Digest, FileDigest, NodeKey, TreeDigest};
use serde::Serialize;

/// One named input of a key and its digest (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ingredient {
    /// What it is: `rule`, `spec`, `file layers/web/nginx.conf`, `dep image:fedora`…
    pub name: String,
    /// Its digest, 64 hex characters.
    pub digest: String,
}

/// The ingredients of one key, in the order they were hashed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The ingredients.
    pub entries: Vec<Ingredient>,
}

/// Collects a node's ingredients and hashes them into its key.
///
/// Each ingredient is framed (name length, name, digest) before hashing, so
/// no two different ingredient lists can produce the same byte stream.
pub struct Ingredients {
    hasher: blake3::Hasher,
    manifest: Manifest,
    /// Whether the manifest is kept: a plan keys thousands of nodes and
    /// needs the listing of a few at most, so it keys them without one and
    /// lists a node again when asked ([`Ingredients::unlisted`]).
    listed: bool,
}

impl Ingredients {
    /// Starts a key of `kind` whose resolved spec is `spec`.
    pub fn new(kind: NodeKind, spec: &serde_json::Value) -> Self {
        let mut ing = Ingredients {
            hasher: blake3::Hasher::new(),
            manifest: Manifest::default(),
            listed: true,
        };
        let tag = kind.domain_tag();
        ing.push("rule", blake3::hash(tag.as_bytes()).as_bytes());
        ing.push("spec", blake3::hash(&canonical_json(spec)).as_bytes());
        ing
    }

    /// Starts the key of the node whose spec is `spec`.
    pub fn for_spec(spec: &crate::NodeSpec) -> Self {
        Self::from_head(&Self::head(spec))
    }

    /// The first two ingredients of `spec`'s key (its rule tag and its
    /// canonical spec, hashed), which [`for_spec`](Self::for_spec) starts
    /// with: computed ahead, on many threads, they start the same key
    /// through [`from_head`](Self::from_head).
    pub fn head(spec: &crate::NodeSpec) -> [[u8; 32]; 2] {
        [
            *blake3::hash(spec.kind().domain_tag().as_bytes()).as_bytes(),
            *blake3::hash(&spec.canonical()).as_bytes(),
        ]
    }

    /// Starts a key from [`head`](Self::head)'s digests.
    pub fn from_head(head: &[[u8; 32]; 2]) -> Self {
        Self::replay([("rule", &head[0]), ("spec", &head[1])])
    }

    /// Starts a key from ingredients hashed earlier, in their order: the
    /// (name, digest) pairs a [`Manifest`] lists for them. With the same
    /// pairs and the same later ingredients, the key is the one
    /// [`new`](Self::new) gave.
    pub fn replay<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8; 32])>) -> Self {
        let mut ing = Ingredients {
            hasher: blake3::Hasher::new(),
            manifest: Manifest::default(),
            listed: true,
        };
        for (name, digest) in entries {
            ing.push(name, digest);
        }
        ing
    }

    /// The same key without its manifest: [`finish`](Self::finish) gives
    /// an empty one. The key does not change.
    pub fn unlisted(mut self) -> Self {
        self.listed = false;
        self.manifest.entries.clear();
        self
    }

    /// Whether the manifest is kept (see [`unlisted`](Self::unlisted)).
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    fn push(&mut self, name: &str, digest: &[u8; 32]) {
        self.push_named("", name, digest);
    }

    /// Pushes the ingredient named `prefix` followed by `name`: hashed as
    /// one name, without putting the two together unless it is listed.
    fn push_named(&mut self, prefix: &str, name: &str, digest: &[u8; 32]) {
        let len = prefix.len() + name.len();
        self.hasher.update(&(len as u64).to_le_bytes());
        self.hasher.update(prefix.as_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update(digest);
        if !self.listed {
            return;
        }
        self.manifest.entries.push(Ingredient {
            name: format!("{prefix}{name}"),
            digest: TreeDigest::from_bytes(*digest).to_string(),
        });
    }

    /// Adds a hashed source tree.
    pub fn source(&mut self, name: &str, tree: TreeDigest) {
        self.push_named("source ", name, tree.as_bytes());
    }

    /// Builder-style [`source`](Self::source).
    pub fn with_source(mut self, name: &str, tree: TreeDigest) -> Self {
        self.source(name, tree);
        self
    }

    /// Adds one file of a source tree. Files are listed for `explain`; the
    /// tree digest already covers them, so they are not hashed again.
    pub fn file(&mut self, path: &str, digest: FileDigest) {
        if !self.listed {
            return;
        }
        self.manifest.entries.push(Ingredient {
            name: format!("file {path}"),
            digest: digest.to_string(),
        });
    }

    /// Adds a dependency by the digest that stands for its output.
    pub fn dep(&mut self, id: &str, digest: &[u8; 32]) {
        self.push_named("dep ", id, digest);
    }

    /// Adds the engine that builds the node's image: its kind, major
    /// version and platform change the image a Containerfile gives.
    pub fn engine(&mut self, platform: &crate::engine::EnginePlatform) {
        self.engine_digest(&Self::digest_of_engine(platform));
    }

    /// What [`engine`](Self::engine) hashes for `platform`: the same for
    /// every node of a plan, so a planner computes it once.
    pub fn digest_of_engine(platform: &crate::engine::EnginePlatform) -> [u8; 32] {
        *blake3::hash(&crate::canonical_of(platform)).as_bytes()
    }

    /// [`engine`](Self::engine) with its digest computed ahead.
    pub fn engine_digest(&mut self, digest: &[u8; 32]) {
        self.push("engine", digest);
    }

    /// The key and its manifest.
    pub fn finish(self) -> (NodeKey, Manifest) {
        (
            NodeKey::from_bytes(*self.hasher.finalize().as_bytes()),
            self.manifest,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(f: impl FnOnce(&mut Ingredients)) -> NodeKey {
        let mut i = Ingredients::new(NodeKind::Layer, &json!({"a": 1}));
        f(&mut i);
        i.finish().0
    }

    #[test]
    fn a_head_computed_ahead_starts_the_same_key() {
        let spec = crate::NodeSpec::Source(crate::rule::source::SourceSpec {
            path: "layers/web".into(),
        });
        let mut a = Ingredients::for_spec(&spec);
        let mut b = Ingredients::from_head(&Ingredients::head(&spec));
        a.dep("x", &[1; 32]);
        b.dep("x", &[1; 32]);
        let (a, b) = (a.finish(), b.finish());
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.entries.len(), b.1.entries.len());
    }

    /// What the dry run's memo keeps of a key (its head and the engine's
    /// digest) gives the key back, listed or not.
    #[test]
    fn a_replayed_head_gives_the_same_key() {
        let spec = crate::NodeSpec::Source(crate::rule::source::SourceSpec {
            path: "layers/web".into(),
        });
        let platform = crate::engine::EnginePlatform::unknown();
        let key = |dep: u8, listed: bool| {
            let mut j = Ingredients::for_spec(&spec);
            if !listed {
                j = j.unlisted();
            }
            j.engine(&platform);
            j.dep("image:x", &[dep; 32]);
            j.finish()
        };
        let (whole, manifest) = key(7, true);
        assert_eq!(manifest.entries.len(), 4, "rule, spec, engine and dep");
        let (unlisted, empty) = key(7, false);
        assert_eq!(unlisted, whole);
        assert!(empty.entries.is_empty());
        let [rule, spec_digest] = Ingredients::head(&spec);
        let engine = Ingredients::digest_of_engine(&platform);
        let mut r =
            Ingredients::replay([("rule", &rule), ("spec", &spec_digest), ("engine", &engine)]);
        r.dep("image:x", &[7; 32]);
        assert_eq!(r.finish().0, whole);
        assert_ne!(key(8, true).0, whole);
    }

    #[test]
    fn every_ingredient_moves_the_key() {
        let base = key(|_| {});
        assert_ne!(base, key(|i| i.dep("image:x", &[1; 32])));
        assert_ne!(
            key(|i| i.dep("image:x", &[1; 32])),
            key(|i| i.dep("image:x", &[2; 32]))
        );
        assert_ne!(
            key(|i| i.dep("image:x", &[1; 32])),
            key(|i| i.dep("image:y", &[1; 32]))
        );
        let other_kind = Ingredients::new(NodeKind::Image, &json!({"a": 1}))
            .finish()
            .0;
        assert_ne!(base, other_kind);
    }

    #[test]
    fn pins_the_key_bytes() {
        // A golden value: if this changes, every cached key changes with it,
        // so it must only change together with a rule-version bump.
        let (k, m) = Ingredients::new(NodeKind::Source, &json!({"path": "layers/x"})).finish();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(k.to_string().len(), 64);
        assert_eq!(
            k,
            Ingredients::new(NodeKind::Source, &json!({"path": "layers/x"}))
                .finish()
                .0
        );
    }
}
