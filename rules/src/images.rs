//! What images the engine held when a build started, from one list call.
//!
//! A cache hit is only right if the image it names is still in the engine
//! and the user's tag still points at it. Asking the engine once per node
//! costs hundreds of round trips on a large project, so a build lists the
//! engine's images once and answers those questions from the list; only
//! what the list does not show is asked for one by one.

use crate::engine::ImageId;
use std::collections::HashMap;

/// The label every image ov builds carries; its value is the node id.
pub const NODE_LABEL: &str = "org.overthinkos.ov.node";

/// One listed image.
#[derive(Clone, Debug)]
pub struct ListedImage {
    /// Its id.
    pub id: ImageId,
    /// Every `repo:tag` pointing at it.
    pub tags: Vec<String>,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// The engine's images at one moment.
#[derive(Clone, Debug, Default)]
pub struct ImageSnapshot {
    by_id: HashMap<ImageId, ListedImage>,
    by_tag: HashMap<String, ImageId>,
}

impl ImageSnapshot {
    /// A snapshot of `images`.
    pub fn new(images: impl IntoIterator<Item = ListedImage>) -> Self {
        let mut s = ImageSnapshot::default();
        for img in images {
            for t in &img.tags {
                s.by_tag.insert(t.clone(), img.id.clone());
            }
            s.by_id.insert(img.id.clone(), img);
        }
        s
    }

    /// The image with id `id`, if listed.
    pub fn get(&self, id: &ImageId) -> Option<&ListedImage> {
        self.by_id.get(id)
    }

    /// True when the image `id` is listed.
    pub fn has(&self, id: &ImageId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The image `reference` (`repo:tag`) points at. A name without a
    /// registry is also looked up the way engines store it: podman under
    /// `localhost/`, Docker under `docker.io/library/`.
    pub fn tagged(&self, reference: &str) -> Option<&ImageId> {
        let (repo, tag) = crate::engine::split_tag(reference);
        let full = format!("{repo}:{tag}");
        let first = repo.split('/').next().unwrap_or(repo);
        let has_registry = repo.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let mut candidates = vec![full.clone()];
        if !has_registry {
            candidates.push(format!("localhost/{full}"));
            candidates.push(format!("docker.io/{full}"));
            candidates.push(format!("docker.io/library/{full}"));
        }
        candidates.iter().find_map(|c| self.by_tag.get(c))
    }

    /// The value of label `key` on image `id`.
    pub fn label(&self, id: &ImageId, key: &str) -> Option<&str> {
        self.by_id.get(id)?.labels.get(key).map(String::as_str)
    }

    /// How many images are listed.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, tags: &[&str]) -> ListedImage {
        ListedImage {
            id: ImageId::new(id),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            labels: HashMap::from([(NODE_LABEL.to_string(), "image:app".to_string())]),
        }
    }

    #[test]
    fn tags_resolve_as_engines_store_them() {
        let s = ImageSnapshot::new([
            img("aa", &["localhost/app:1", "localhost/ov-node:k"]),
            img("bb", &["docker.io/library/fedora:43"]),
            img("cc", &["quay.io/x/y:2"]),
        ]);
        assert_eq!(s.tagged("app:1"), Some(&ImageId::new("aa")));
        assert_eq!(s.tagged("localhost/app:1"), Some(&ImageId::new("aa")));
        assert_eq!(s.tagged("fedora:43"), Some(&ImageId::new("bb")));
        assert_eq!(s.tagged("quay.io/x/y:2"), Some(&ImageId::new("cc")));
        assert_eq!(s.tagged("quay.io/x/y:3"), None);
        assert_eq!(s.tagged("app"), None, "untagged means :latest");
        assert!(s.has(&ImageId::new("sha256:bb")));
        assert!(!s.has(&ImageId::new("dd")));
        assert_eq!(s.label(&ImageId::new("aa"), NODE_LABEL), Some("image:app"));
    }
}
