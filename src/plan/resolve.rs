//! Per-image resolution: the base chain, inherited fields and the install
//! order, computed for each image from its own closure only, so editing one
//! image never reorders another (unlike ov's global popularity order).

use crate::load::model::{Image, Project};
use indexmap::{IndexMap, IndexSet};
use serde::Serialize;

/// Where an image starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "snake_case")]
pub enum BaseRef {
    /// Another (enabled) image of the project.
    Internal(String),
    /// An OCI reference outside the project.
    External(String),
    /// A rootfs made by a build.yml bootstrap builder, run in an image.
    Bootstrap {
        /// The bootstrap builder (`from: builder:<name>`).
        builder: String,
        /// The image the builder runs in.
        builder_image: String,
    },
}

/// The fallback base when neither the image nor `defaults` names one.
pub const DEFAULT_BASE: &str = "quay.io/fedora/fedora:43";
/// The fallback platforms.
pub const DEFAULT_PLATFORM: &[&str] = &["linux/amd64", "linux/arm64"];

/// An image with every default and inherited value filled in.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedImage {
    /// The name.
    pub name: String,
    /// Whether it is built by default.
    pub enabled: bool,
    /// Its direct base.
    pub base: BaseRef,
    /// Internal ancestors, nearest first.
    pub base_chain: Vec<String>,
    /// The external ref at the root of the chain, if any.
    pub root_ref: Option<String>,
    /// `distro` after the base-chain walk.
    pub distro: Vec<String>,
    /// Package formats in install order.
    pub build: Vec<String>,
    /// Format → builder image (defaults ← direct base ← own).
    pub builder: IndexMap<String, String>,
    /// Every layer of the image after metalayer expansion and `require`,
    /// in install order (metalayers without content of their own left out).
    pub closure: Vec<String>,
    /// What this image installs itself: `closure` minus what the base chain provides.
    pub install: Vec<String>,
    /// `platform`.
    pub platform: Vec<String>,
    /// `registry`.
    pub registry: Option<String>,
    /// `tag`.
    pub tag: String,
    /// `user`, `uid`, `gid`, `user_policy`.
    pub user: String,
    /// Numeric user id.
    pub uid: u32,
    /// Numeric group id.
    pub gid: u32,
    /// `auto`, `adopt` or `create`.
    pub user_policy: String,
}

impl ResolvedImage {
    /// The full tag, `<registry>/<name>:<tag>`.
    pub fn full_tag(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}:{}", self.name, self.tag),
            None => format!("{}:{}", self.name, self.tag),
        }
    }
}

/// Whether `base` names an enabled image of the project.
pub fn internal_base<'p>(project: &'p Project, base: &str) -> Option<&'p Image> {
    project
        .images
        .get(base)
        .filter(|img| img.enabled.or(project.defaults.enabled).unwrap_or(true))
}

/// The direct base of `img`.
pub fn base_of(project: &Project, img: &Image) -> BaseRef {
    if let (Some(from), Some(bi)) = (&img.from, &img.bootstrap_builder_image) {
        if let Some(builder) = from.value.strip_prefix("builder:") {
            return BaseRef::Bootstrap {
                builder: builder.to_string(),
                builder_image: bi.value.clone(),
            };
        }
    }
    let base = img
        .base
        .as_ref()
        .or(project.defaults.base.as_ref())
        .map(|b| b.value.clone())
        .unwrap_or_else(|| DEFAULT_BASE.to_string());
    if internal_base(project, &base).is_some() && base != img.name {
        BaseRef::Internal(base)
    } else {
        BaseRef::External(base)
    }
}

/// Resolves every image (validation must have passed: no cycles, no
/// unknown names). Images come out in build order.
pub fn resolve_all(project: &Project) -> IndexMap<String, ResolvedImage> {
    let mut out: IndexMap<String, ResolvedImage> = IndexMap::new();
    for name in build_order(project, true) {
        let r = resolve_one(project, &name, &out);
        out.insert(name, r);
    }
    out
}

fn resolve_one(
    project: &Project,
    name: &str,
    done: &IndexMap<String, ResolvedImage>,
) -> ResolvedImage {
    let img = &project.images[name];
    let d = &project.defaults;
    let base = base_of(project, img);
    let parent = match &base {
        BaseRef::Internal(b) => done.get(b),
        _ => None,
    };
    let (base_chain, root_ref) = match (&base, parent) {
        (BaseRef::Internal(b), Some(p)) => {
            let mut chain = vec![b.clone()];
            chain.extend(p.base_chain.iter().cloned());
            (chain, p.root_ref.clone())
        }
        (BaseRef::External(r), _) => (Vec::new(), Some(r.clone())),
        _ => (Vec::new(), None),
    };
    // distro and build: own, then nearest base in the chain, then defaults.
    let distro = img
        .distro
        .clone()
        .or_else(|| parent.map(|p| p.distro.clone()).filter(|v| !v.is_empty()))
        .or_else(|| d.distro.clone())
        .unwrap_or_default();
    let build = img
        .build
        .clone()
        .or_else(|| parent.map(|p| p.build.clone()).filter(|v| !v.is_empty()))
        .or_else(|| d.build.clone())
        .unwrap_or_default();
    // builder: defaults ← direct base's own map ← own; self-references dropped.
    let mut builder: IndexMap<String, String> = IndexMap::new();
    let maps = [
        d.builder.as_ref(),
        match &base {
            BaseRef::Internal(b) => project.images[b].builder.as_ref(),
            _ => None,
        },
        img.builder.as_ref(),
    ];
    for m in maps.into_iter().flatten() {
        for (fmt, b) in m {
            builder.insert(fmt.clone(), b.value.clone());
        }
    }
    builder.retain(|_, b| b != name);
    let closure = closure(project, img.layers.iter().map(|s| s.value.as_str()));
    let provided: IndexSet<&str> = parent
        .map(|p| {
            let mut set: IndexSet<&str> = p.closure.iter().map(String::as_str).collect();
            for anc in &p.base_chain {
                if let Some(a) = done.get(anc) {
                    set.extend(a.closure.iter().map(String::as_str));
                }
            }
            set
        })
        .unwrap_or_default();
    let install = closure
        .iter()
        .filter(|l| !provided.contains(l.as_str()))
        .cloned()
        .collect();
    ResolvedImage {
        name: name.to_string(),
        enabled: img.enabled.or(d.enabled).unwrap_or(true),
        base,
        base_chain,
        root_ref,
        distro,
        build,
        builder,
        closure,
        install,
        platform: img
            .platform
            .clone()
            .or_else(|| d.platform.clone())
            .unwrap_or_else(|| DEFAULT_PLATFORM.iter().map(|s| s.to_string()).collect()),
        registry: img.registry.clone().or_else(|| d.registry.clone()),
        tag: img
            .tag
            .clone()
            .or_else(|| d.tag.clone())
            .unwrap_or_else(|| "auto".into()),
        user: img
            .user
            .clone()
            .or_else(|| d.user.clone())
            .unwrap_or_else(|| "user".into()),
        uid: img.uid.or(d.uid).unwrap_or(1000),
        gid: img.gid.or(d.gid).unwrap_or(1000),
        user_policy: img
            .user_policy
            .clone()
            .or_else(|| d.user_policy.clone())
            .unwrap_or_else(|| "auto".into()),
    }
}

/// The install order of a list of written layers: each layer's `require`s
/// first, a metalayer's members in its place, then the layer itself (unless
/// it is a metalayer with no content of its own). This depth-first order is
/// topological, and among layers free to go in either order it keeps the
/// order written in the image. Unknown names and cycles are validation
/// errors, so they are simply skipped here.
pub fn closure<'a>(project: &Project, written: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    fn visit(project: &Project, name: &str, seen: &mut IndexSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        let Some(layer) = project.layers.get(name) else {
            return;
        };
        for r in &layer.require {
            visit(project, &r.value, seen, out);
        }
        for c in &layer.includes {
            visit(project, &c.value, seen, out);
        }
        if layer.includes.is_empty() || layer.has_own_content() {
            out.push(name.to_string());
        }
    }
    let mut seen = IndexSet::new();
    let mut out = Vec::new();
    for name in written {
        visit(project, name, &mut seen, &mut out);
    }
    out
}

/// Images in build order: Kahn levels over internal base and bootstrap
/// builder-image edges, each level sorted by name. With `all`, disabled
/// images are included too.
pub fn build_order(project: &Project, all: bool) -> Vec<String> {
    let chosen: Vec<&String> = project
        .images
        .iter()
        .filter(|(_, img)| all || img.enabled.or(project.defaults.enabled).unwrap_or(true))
        .map(|(n, _)| n)
        .collect();
    let deps = |name: &str| -> Vec<String> {
        let img = &project.images[name];
        match base_of(project, img) {
            BaseRef::Internal(b) => vec![b],
            BaseRef::Bootstrap { builder_image, .. }
                if project.images.contains_key(&builder_image) =>
            {
                vec![builder_image]
            }
            _ => Vec::new(),
        }
    };
    let mut placed: IndexSet<String> = IndexSet::new();
    let mut remaining: Vec<&String> = chosen.clone();
    while !remaining.is_empty() {
        let mut level: Vec<String> = remaining
            .iter()
            .filter(|n| {
                deps(n)
                    .iter()
                    .all(|d| placed.contains(d) || !chosen.iter().any(|c| c.as_str() == d.as_str()))
            })
            .map(|n| n.to_string())
            .collect();
        if level.is_empty() {
            // A cycle: validation reports it; put the rest in written order.
            level = remaining.iter().map(|n| n.to_string()).collect();
        }
        level.sort();
        remaining.retain(|n| !level.contains(n));
        placed.extend(level);
    }
    placed.into_iter().collect()
}
