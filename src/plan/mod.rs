//! The planner: a validated, resolved project becomes one petgraph DAG of
//! nodes (see [`NodeKind`]). Edges point from a dependency to what needs it.
//!
//! A layer node stands for one layer applied on one parent with one render
//! context, so images that share a base and a prefix of layers share those
//! nodes: ov's auto-intermediate images fall out of the graph.

#[cfg(test)]
mod fixture;
pub mod inputs;
pub mod kept_layers;
pub mod keys;
pub mod layer_files;
pub mod lock;
pub mod memo;
pub mod predict;
pub mod resolve;
pub mod saved;
mod select;
pub mod spec;
pub mod stage_check;
pub mod user;
pub(crate) mod watch;
pub mod why;

use crate::load::model::{Project, VmSourceKind};
use crate::plan::inputs::SourceTree;
use crate::plan::resolve::{BaseRef, ResolvedImage};
use indexmap::IndexMap;
use ov_rules::rule::{
    image, layer, BaseSpec, BootSpec, Bootloader, BootstrapSpec, CloudImageSpec, DiskFrom,
    DiskSpec, EvalSpec, ImageSpec, LayerSpec, SeedSpec, SourceSpec, StageSpec, StageUse,
};
use ov_rules::{NodeKind, NodeSpec};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Value as Json};
pub use spec::Spec;
use std::collections::HashMap;
use std::sync::Arc;

/// One node of the plan.
#[derive(Clone, Debug)]
pub struct PlanNode {
    /// Stable, human-readable id: `<kind>:<name>` (`layer:web-layer@web`).
    pub id: String,
    /// A short label for pictures.
    pub label: String,
    /// The resolved spec, which is also the node's rule; its canonical
    /// bytes go into the key.
    pub spec: Spec,
    /// The layer whose directory this node hashes or applies.
    pub layer: Option<String>,
}

impl PlanNode {
    /// What it does.
    pub fn kind(&self) -> NodeKind {
        self.spec.kind()
    }
}

/// A map of a spec shared by many nodes.
type Section = Arc<serde_json::Map<String, Json>>;

/// The build graph.
#[derive(Debug, Default)]
pub struct Plan {
    /// Nodes and dependency edges (dependency → dependent).
    pub graph: DiGraph<PlanNode, ()>,
    /// Node id → index.
    pub by_id: HashMap<String, NodeIndex>,
    /// Other names that reach a node: `layer@image` for every image whose
    /// chain applies the layer, bare image and VM names.
    pub aliases: HashMap<String, NodeIndex>,
    /// Image name → its `image` node.
    pub images: IndexMap<String, NodeIndex>,
    /// VM name → its last node (boot).
    pub vms: IndexMap<String, NodeIndex>,
    /// Layer applications by (parent, layer, context, builders) digest, so
    /// images that ask for the same application share one node. Internal:
    /// not a name a user can give.
    applications: HashMap<String, NodeIndex>,
    /// (builder image, layer node) edges, added once every image is planned
    /// so the edge does not depend on the order images are planned in.
    builder_edges: Vec<(String, NodeIndex)>,
    /// Image → the layer nodes its own install list applies.
    applied: HashMap<String, Vec<(String, NodeIndex)>>,
    /// `<short>@<image>` for remote layers (`supervisord@web` for
    /// `github.com/o/r/layers/supervisord`) → the full aliases it may mean;
    /// more than one is ambiguous.
    short: HashMap<String, Vec<(String, NodeIndex)>>,
    /// A layer's package sections by (image formats and distro tags, layer
    /// name): every application on images of the same distro shares them.
    packages: HashMap<(Arc<str>, String), Section>,
    /// A layer's label fields by layer name: every image that lists the
    /// layer in its labels shares them.
    label_fields: HashMap<String, Section>,
}

impl Plan {
    /// [`layer_packages`] of `layer` on `img`, made once per distro.
    fn packages_of(
        &mut self,
        layer: &crate::load::model::Layer,
        img: &ResolvedImage,
        image_key: &Arc<str>,
    ) -> Section {
        self.packages
            .entry((image_key.clone(), layer.name.clone()))
            .or_insert_with(|| Arc::new(layer_packages(layer, img)))
            .clone()
    }

    /// [`label_fields`] of `layer`, made once.
    fn label_fields_of(&mut self, layer: &crate::load::model::Layer) -> Section {
        if let Some(f) = self.label_fields.get(&layer.name) {
            return f.clone();
        }
        let f = Arc::new(label_fields(layer));
        self.label_fields.insert(layer.name.clone(), f.clone());
        f
    }

    fn add(&mut self, node: PlanNode) -> NodeIndex {
        if let Some(&ix) = self.by_id.get(&node.id) {
            return ix;
        }
        let id = node.id.clone();
        let ix = self.graph.add_node(node);
        self.by_id.insert(id, ix);
        ix
    }

    /// The node for an external image ref, shared by everything that starts from it.
    fn base(&mut self, r: &str, project: &Project) -> NodeIndex {
        self.add(PlanNode {
            id: format!("base:{r}"),
            label: r.to_string(),
            spec: BaseSpec {
                reference: r.to_string(),
                pinned: project.lock.get(r).cloned(),
            }
            .into(),
            layer: None,
        })
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex) {
        if self.graph.find_edge(from, to).is_none() {
            self.graph.add_edge(from, to, ());
        }
    }

    /// Finds a node by id, `layer@image`, image name or VM name, or a
    /// remote layer's `<short name>@image` when only one layer of that
    /// image has the short name.
    pub fn find(&self, name: &str) -> Option<NodeIndex> {
        self.resolve(name, "node").ok()
    }

    /// [`find`](Self::find), or why not: the closest name, or the layers
    /// an ambiguous short name could mean. `what` names what the user
    /// gave (`target`, `node`) in the message.
    pub fn resolve(&self, name: &str, what: &str) -> Result<NodeIndex, String> {
        if let Some(&ix) = self.by_id.get(name).or_else(|| self.aliases.get(name)) {
            return Ok(ix);
        }
        let short = name.strip_prefix("layer:").unwrap_or(name);
        match self.short.get(short).map(Vec::as_slice) {
            Some([(_, ix)]) => Ok(*ix),
            Some(many) if !many.is_empty() => {
                let mut full: Vec<&str> = many.iter().map(|(f, _)| f.as_str()).collect();
                full.sort_unstable();
                Err(format!(
                    "`{name}` is ambiguous: it may be {}; give the full name",
                    full.iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ))
            }
            _ => Err(format!(
                "unknown {what} `{name}`{}",
                crate::diag::did_you_mean(name, self.names())
            )),
        }
    }

    /// All names a user may pass as a target, for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_id
            .keys()
            .chain(self.aliases.keys())
            .chain(self.short.keys())
            .map(String::as_str)
    }

    /// Makes layer node `ix` reachable as `<layer>@<image>`, and a remote
    /// layer also by its short name.
    fn alias_layer(&mut self, layer: &str, image: &str, ix: NodeIndex) {
        let full = format!("{layer}@{image}");
        if self.aliases.contains_key(&full) {
            return;
        }
        self.aliases.insert(full.clone(), ix);
        if let Some((_, short)) = layer.rsplit_once('/') {
            let entry = self.short.entry(format!("{short}@{image}")).or_default();
            if !entry.iter().any(|(_, i)| *i == ix) {
                entry.push((full, ix));
            }
        }
    }
}

/// The build.yml distro an image uses (see [`crate::plan::resolve::distro_for`]).
pub fn pick_distro<'a>(project: &'a Project, img: &ResolvedImage) -> Option<(&'a str, &'a Json)> {
    crate::plan::resolve::distro_for(project, &img.distro)
}

/// Which distro sections of a layer feed a package format.
fn format_distros(fmt: &str) -> &'static [&'static str] {
    match fmt {
        "rpm" => &["fedora"],
        "deb" => &["debian", "ubuntu"],
        "pac" | "aur" => &["arch", "cachyos"],
        _ => &[],
    }
}

/// The distro names whose `<name>-<version>` sections are tag sections
/// (ov's `derivePackageSectionsFromCalamares` knows these).
const TAG_DISTROS: &[&str] = &["fedora", "debian", "ubuntu", "arch"];

/// The layer's tag section for an image distro tag (`debian:13` is written
/// `debian-13:` under `distro:`): every versioned key of a known distro
/// whose `<name>:<version>` is `tag`, packages concatenated, and `repo`,
/// `copr`, `option(s)`, `exclude`, `module` from the last key that has them
/// (ov's `derivePackageSectionsFromCalamares`, the versioned branch).
/// Top-level `package:` is not part of it.
fn tag_section(
    layer: &crate::load::model::Layer,
    tag: &str,
) -> Option<serde_json::Map<String, Json>> {
    let mut section = serde_json::Map::new();
    let mut packages: Vec<Json> = Vec::new();
    let mut found = false;
    for (key, v) in &layer.distro {
        let Some((bare, version)) = key.split_once('-') else {
            continue;
        };
        if !TAG_DISTROS.contains(&bare) || format!("{bare}:{version}") != tag {
            continue;
        }
        found = true;
        let Some(obj) = v.as_object() else { continue };
        for (k, v) in obj {
            match k.as_str() {
                "package" => packages.extend(v.as_array().cloned().unwrap_or_default()),
                "repo" | "copr" | "option" | "options" | "exclude" | "module" => {
                    section.insert(k.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
    if !found {
        return None;
    }
    section.insert("package".into(), Json::Array(packages));
    Some(section)
}

/// The package sections a layer installs on an image, per format, chosen as
/// ov's generator chooses them (`writeLayerSteps` in its `generate.go`):
///
/// 1. The image's `distro` tags, in order: the first with a tag section
///    that lists packages wins, and is installed alone, with the image's
///    first format's install template (`img.Pkg`).
/// 2. Otherwise one section per format of `build`, in order: top-level
///    `package` first, then each distro section that feeds the format
///    (`debian` and `ubuntu` both feed `deb`), duplicates dropped; the
///    other fields from the first section that has them. `aur` takes only
///    `arch.aur`. Without any distro section, top-level packages feed rpm,
///    deb and pac.
pub fn layer_packages(
    layer: &crate::load::model::Layer,
    img: &ResolvedImage,
) -> serde_json::Map<String, Json> {
    let mut out = serde_json::Map::new();
    if let Some(primary) = img.build.first() {
        for tag in &img.distro {
            let Some(section) = tag_section(layer, tag) else {
                continue;
            };
            if section
                .get("package")
                .and_then(Json::as_array)
                .is_some_and(|p| !p.is_empty())
            {
                out.insert(primary.clone(), Json::Object(section));
                return out;
            }
        }
    }
    let has_distro = !layer.distro.is_empty();
    for fmt in &img.build {
        let mut section = serde_json::Map::new();
        let mut packages: Vec<Json> = Vec::new();
        let feeding: Vec<&serde_json::Map<String, Json>> = format_distros(fmt)
            .iter()
            .filter_map(|d| layer.distro.get(*d)?.as_object())
            .collect();
        if fmt == "aur" {
            for obj in &feeding {
                let Some(aur) = obj.get("aur").and_then(Json::as_object) else {
                    continue;
                };
                for (k, v) in aur {
                    if k == "package" {
                        packages.extend(v.as_array().cloned().unwrap_or_default());
                    } else {
                        section.entry(k.clone()).or_insert(v.clone());
                    }
                }
            }
        } else {
            let top_feeds = !feeding.is_empty()
                || (!has_distro && ["rpm", "deb", "pac"].contains(&fmt.as_str()));
            if top_feeds {
                packages.extend(layer.package.iter().map(|p| json!(p)));
            }
            for obj in &feeding {
                for (k, v) in obj.iter() {
                    match k.as_str() {
                        "aur" => {}
                        "package" => packages.extend(v.as_array().cloned().unwrap_or_default()),
                        _ => {
                            section.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        packages.retain(|p| seen.insert(p.to_string()));
        if !packages.is_empty() {
            section.insert("package".into(), Json::Array(packages));
        }
        if !section.is_empty() {
            out.insert(fmt.clone(), Json::Object(section));
        }
    }
    out
}

/// The image spec's view of a resolved image: the fields rendering reads,
/// typed, and every other field as resolution serializes it.
fn resolved_spec(img: &ResolvedImage) -> image::Resolved {
    let mut rest = match json!(img) {
        Json::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for typed in [
        "user",
        "uid",
        "gid",
        "home",
        "user_adopted",
        "registry",
        "distro",
        "build",
    ] {
        rest.remove(typed);
    }
    image::Resolved {
        user: img.user.clone(),
        uid: img.uid,
        gid: img.gid,
        home: img.home.clone(),
        user_adopted: img.user_adopted,
        registry: img.registry.clone(),
        distro: img.distro.clone(),
        build: img.build.clone(),
        rest,
    }
}

/// Builds the plan for every image and VM of the project.
pub fn plan(
    project: &Project,
    resolved: &IndexMap<String, ResolvedImage>,
    trees: &HashMap<String, SourceTree>,
) -> Plan {
    let mut p = Plan::default();
    let needed = needed_images(project, resolved);
    for (name, img) in resolved {
        if !needed.contains(name.as_str()) {
            continue;
        }
        plan_image(project, img, trees, &mut p);
    }
    for (b, ix) in std::mem::take(&mut p.builder_edges) {
        if let Some(&bix) = p.images.get(&b) {
            p.edge(bix, ix);
        }
    }
    for (name, vm) in &project.vms {
        plan_vm(project, name, vm, &mut p);
    }
    p
}

/// The images the plan builds: every enabled image, the images VMs name,
/// and what those stand on (bases, bootstrap and builder images). Disabled
/// images are planned only when something needs them.
pub fn needed_images<'a>(
    project: &'a Project,
    resolved: &'a IndexMap<String, ResolvedImage>,
) -> std::collections::HashSet<&'a str> {
    let mut want: Vec<&str> = resolved
        .values()
        .filter(|r| r.enabled)
        .map(|r| r.name.as_str())
        .collect();
    for vm in project.vms.values() {
        if let Some(i) = &vm.image {
            if resolved.contains_key(&i.value) {
                want.push(i.value.as_str());
            }
        }
    }
    let mut out = std::collections::HashSet::new();
    while let Some(n) = want.pop() {
        if !out.insert(n) {
            continue;
        }
        let Some(r) = resolved.get(n) else { continue };
        match &r.base {
            BaseRef::Internal(b) => want.push(b),
            BaseRef::Bootstrap { builder_image, .. } => want.push(builder_image),
            _ => {}
        }
        for b in r.builder.values() {
            if resolved.contains_key(b) {
                want.push(b);
            }
        }
    }
    out
}

/// A builder stage a layer triggers: its node and what the layer copies.
struct PlannedStage {
    ix: NodeIndex,
    /// The layer spec's `stages.<builder>`: the node and the outputs.
    used: StageUse,
}

/// Which files and config make a layer need a builder, as ov's
/// `Generator.layerNeedsBuilder`: a `detect_file` at the layer's root, or
/// packages in the layer's section of the `detect_config` format when the
/// image builds that format.
pub fn layer_needs_builder(
    def: &Json,
    has_root_file: impl Fn(&str) -> bool,
    packages: &serde_json::Map<String, Json>,
    img: &ResolvedImage,
) -> bool {
    let by_file = def
        .get("detect_file")
        .and_then(Json::as_array)
        .is_some_and(|files| files.iter().filter_map(Json::as_str).any(&has_root_file));
    let by_config = def
        .get("detect_config")
        .and_then(Json::as_str)
        .is_some_and(|fmt| {
            img.build.iter().any(|b| b == fmt)
                && packages
                    .get(fmt)
                    .and_then(|s| s.get("package"))
                    .and_then(Json::as_array)
                    .is_some_and(|p| !p.is_empty())
        });
    by_file || by_config
}

/// The inline builders (ov's `cargo`) a layer triggers on `img`, by sorted
/// name: the layer renders their `install_template` in its own steps.
fn inline_builders(
    project: &Project,
    img: &ResolvedImage,
    layer_name: &str,
    packages: &serde_json::Map<String, Json>,
    trees: &HashMap<String, SourceTree>,
) -> Vec<Json> {
    let tree = trees.get(layer_name);
    let mut builders: Vec<(&String, &Json)> = project.build.builders.iter().collect();
    builders.sort_by_key(|(n, _)| *n);
    builders
        .into_iter()
        .filter(|(_, def)| {
            def.get("inline").and_then(Json::as_bool) == Some(true)
                && def
                    .get("install_template")
                    .and_then(Json::as_str)
                    .is_some_and(|t| !t.is_empty())
                && layer_needs_builder(
                    def,
                    |f| tree.is_some_and(|t| t.has_root_file(f)),
                    packages,
                    img,
                )
        })
        .map(|(b, def)| json!({ "builder": b, "def": def }))
        .collect()
}

/// The builders (non-bootstrap, non-inline)
/// a layer triggers on `img`, each planned as a stage node on the builder
/// image the image's `builder:` map names. Stages with equal inputs are one
/// node, whichever image or layer application asks.
fn plan_stages(
    project: &Project,
    img: &ResolvedImage,
    layer_name: &str,
    cx: &ImageContext,
    src: NodeIndex,
    p: &mut Plan,
    trees: &HashMap<String, SourceTree>,
) -> IndexMap<String, PlannedStage> {
    let context = &cx.context;
    let packages = &*p.packages_of(&project.layers[layer_name], img, &cx.packages_of);
    let tree = trees.get(layer_name);
    let mut out = IndexMap::new();
    // ov walks builders by sorted name (`BuilderConfig.BuilderNames`).
    let mut builders: Vec<(&String, &Json)> = project.build.builders.iter().collect();
    builders.sort_by_key(|(n, _)| *n);
    for (bname, def) in builders {
        if def.get("kind").and_then(Json::as_str) == Some("bootstrap")
            || def.get("stage_template").and_then(Json::as_str).is_none()
            || !layer_needs_builder(
                def,
                |f| tree.is_some_and(|t| t.has_root_file(f)),
                packages,
                img,
            )
        {
            continue;
        }
        let Some(builder_image) = img.builder.get(bname) else {
            continue;
        };
        let builder_node = if project.images.contains_key(builder_image) {
            // Planned later or already; the edge is added once all are.
            format!("image:{builder_image}")
        } else {
            let ix = p.base(builder_image, project);
            p.graph[ix].id.clone()
        };
        // The root files the definition asks about, so an unrelated file
        // does not change how the template renders.
        let mut asked: Vec<String> = def
            .get("detect_file")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .flat_map(|f| [f.to_string(), format!("{f}.lock")])
            .collect();
        asked.push("pixi.lock".into());
        if let Some(b) = def.get("build_script").and_then(Json::as_str) {
            asked.push(b.to_string());
        }
        let layer_files: Vec<&String> = asked
            .iter()
            .filter(|f| tree.is_some_and(|t| t.has_root_file(f)))
            .collect();
        let section = def
            .get("detect_config")
            .and_then(Json::as_str)
            .and_then(|f| packages.get(f));
        let spec = StageSpec {
            builder: bname.clone(),
            layer: layer_name.to_string(),
            builder_node: builder_node.clone(),
            def: def.as_object().cloned().unwrap_or_default(),
            context: context.clone(),
            layer_files: layer_files.into_iter().cloned().collect(),
            section: section.cloned(),
        };
        let dedupe = blake3::hash(&NodeSpec::from(spec.clone()).canonical())
            .to_hex()
            .to_string();
        let ix = match p.applications.get(&dedupe) {
            Some(&ix) => ix,
            None => {
                let label = format!("{layer_name}-{bname}@{}", img.name);
                let ix = p.add(PlanNode {
                    id: format!("stage:{label}"),
                    label,
                    spec: spec.into(),
                    layer: Some(layer_name.to_string()),
                });
                p.applications.insert(dedupe, ix);
                ix
            }
        };
        p.edge(src, ix);
        match p.by_id.get(&builder_node) {
            Some(&bix) if p.graph[bix].kind() == NodeKind::Base => p.edge(bix, ix),
            _ => p.builder_edges.push((builder_image.clone(), ix)),
        }
        let used = StageUse {
            node: p.graph[ix].id.clone(),
            copy_artifact: def.get("copy_artifact").cloned(),
            copy_binary: def.get("copy_binary").cloned(),
            runtime_env: def.get("runtime_env").cloned(),
            path_contribution: def.get("path_contribution").cloned(),
        };
        out.insert(bname.clone(), PlannedStage { ix, used });
    }
    out
}

fn plan_image(
    project: &Project,
    img: &ResolvedImage,
    trees: &HashMap<String, SourceTree>,
    p: &mut Plan,
) {
    let mut parent = plan_base(project, img, p);
    let cx = layer_context(project, img);
    for layer_name in &img.install {
        parent = plan_layer(project, img, layer_name, &cx, parent, trees, p);
    }
    let name = &img.name;
    // Layers the base chain applies are reachable as layer@image too.
    for anc in &img.base_chain {
        let inherited: Vec<(String, NodeIndex)> = p.applied.get(anc).cloned().unwrap_or_default();
        for (layer, ix) in inherited {
            p.alias_layer(&layer, name, ix);
        }
    }
    let ix = plan_image_node(project, img, parent, p);
    plan_eval(project, img, ix, p);
}

/// The node an image's first layer applies on: its external base (behind
/// the bootstrap preamble), its internal base image, or the rootfs its
/// bootstrap builder makes.
fn plan_base(project: &Project, img: &ResolvedImage, p: &mut Plan) -> NodeIndex {
    let name = &img.name;
    match &img.base {
        BaseRef::External(r) => {
            let base = p.base(r, project);
            preamble(project, img, base, p)
        }
        BaseRef::Internal(b) => p.images[b],
        BaseRef::Bootstrap {
            builder,
            builder_image,
        } => {
            let distro = pick_distro(project, img);
            let dep = match p.images.get(builder_image) {
                Some(&ix) => ix,
                None => p.base(builder_image, project),
            };
            let builder_node = p.graph[dep].id.clone();
            let ix = p.add(PlanNode {
                id: format!("bootstrap:{name}"),
                label: format!("{builder} for {name}"),
                spec: BootstrapSpec {
                    builder: builder.clone(),
                    builder_node,
                    builder_def: project.build.builders.get(builder).cloned(),
                    distro: distro.map(|(d, _)| d.to_string()),
                    distro_def: distro.map(|(_, v)| v.clone()),
                    source: None,
                }
                .into(),
                layer: None,
            });
            p.edge(dep, ix);
            ix
        }
    }
}

/// What every layer node of an image renders against.
struct ImageContext {
    /// Distro, formats, user.
    context: layer::LayerContext,
    /// The install templates of its formats.
    formats: Arc<serde_json::Map<String, Json>>,
    /// `context`'s canonical digest: layer applications are shared by
    /// comparing it, not the whole context, once per layer.
    digest: String,
    /// What [`layer_packages`] reads of the image (formats, distro tags).
    packages_of: Arc<str>,
}

/// What every layer node of the image renders against (distro, formats,
/// user), and the install templates of its formats.
fn layer_context(project: &Project, img: &ResolvedImage) -> ImageContext {
    let distro = pick_distro(project, img);
    let formats: serde_json::Map<String, Json> = img
        .build
        .iter()
        .filter_map(|f| {
            distro
                .and_then(|(_, d)| d.get("format")?.get(f).cloned())
                .map(|s| (f.clone(), s))
        })
        .collect();
    let context = layer::LayerContext {
        distro: img.distro.clone(),
        build: img.build.clone(),
        user: img.user.clone(),
        uid: img.uid,
        gid: img.gid,
        home: img.home.clone(),
        user_policy: img.user_policy.clone(),
        build_distro: distro.map(|(d, _)| d.to_string()),
    };
    let digest = blake3::hash(&ov_rules::canonical_of(&context))
        .to_hex()
        .to_string();
    let packages_of = format!("{:?}{:?}", img.build, img.distro).into();
    ImageContext {
        context,
        formats: Arc::new(formats),
        digest,
        packages_of,
    }
}

/// The layer node applying `layer_name` on `parent` for `img`, shared with
/// every other image that applies the same layer on the same parent with
/// the same context and stages; returns it.
fn plan_layer(
    project: &Project,
    img: &ResolvedImage,
    layer_name: &String,
    cx: &ImageContext,
    parent: NodeIndex,
    trees: &HashMap<String, SourceTree>,
    p: &mut Plan,
) -> NodeIndex {
    let name = &img.name;
    let layer = &project.layers[layer_name];
    let src = p.add(PlanNode {
        id: format!("source:{}", layer.display_dir),
        label: layer.display_dir.clone(),
        spec: SourceSpec {
            path: layer.display_dir.clone(),
        }
        .into(),
        layer: Some(layer_name.clone()),
    });
    let stages = plan_stages(project, img, layer_name, cx, src, p, trees);
    let packages = p.packages_of(layer, img, &cx.packages_of);
    let key = format!("{layer_name}@{name}");
    let parent_id = p.graph[parent].id.clone();
    // Same parent + layer + context + stages ⇒ the same node,
    // whichever image asks.
    let stage_ids: Vec<&str> = stages.values().map(|s| p.graph[s.ix].id.as_str()).collect();
    let dedupe = blake3::hash(&ov_rules::canonical_json(&json!([
        parent_id, layer_name, cx.digest, stage_ids
    ])))
    .to_hex()
    .to_string();
    let ix = match p.applications.get(&dedupe) {
        Some(&ix) => ix,
        None => {
            let spec = LayerSpec {
                layer: layer_name.clone(),
                parent: parent_id,
                context: cx.context.clone(),
                packages: packages.clone(),
                formats: cx.formats.clone(),
                tasks: layer.task_json.clone(),
                var: layer.var.clone(),
                env: layer.env.clone(),
                path_append: layer.path_append.clone(),
                stages: stages
                    .iter()
                    .map(|(b, s)| (b.clone(), s.used.clone()))
                    .collect(),
                inline: inline_builders(project, img, layer_name, &packages, trees),
                shell: layer.meta.get("shell").cloned(),
            };
            let ix = p.add(PlanNode {
                id: format!("layer:{key}"),
                label: key.clone(),
                spec: spec.into(),
                layer: Some(layer_name.clone()),
            });
            p.applications.insert(dedupe, ix);
            ix
        }
    };
    p.alias_layer(layer_name, name, ix);
    p.applied
        .entry(name.clone())
        .or_default()
        .push((layer_name.clone(), ix));
    p.edge(parent, ix);
    p.edge(src, ix);
    for s in stages.values() {
        p.edge(s.ix, ix);
    }
    ix
}

/// The image node: ENV, ports, init assembly, labels and the tag, on the
/// image's last layer.
fn plan_image_node(
    project: &Project,
    img: &ResolvedImage,
    parent: NodeIndex,
    p: &mut Plan,
) -> NodeIndex {
    let name = &img.name;
    let image_layers: Vec<&crate::load::model::Layer> = img
        .closure
        .iter()
        .filter_map(|l| project.layers.get(l))
        .collect();
    // Every service of the image's closure, each tagged with its layer
    // (the init's label and `.Layer` template field name it).
    let services: Vec<Json> = image_layers
        .iter()
        .flat_map(|l| {
            l.service.iter().map(|s| {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.insert("layer".into(), json!(l.name));
                }
                s
            })
        })
        .collect();
    let init = init_system(project, img, &image_layers);
    let init_def = init.and_then(|i| project.build.inits.get(i));
    // The header's text, not its name, goes into the key.
    // Read from the tree the init's build.yml came from (validation has
    // made sure it is there).
    let init_header = init.zip(init_def).and_then(|(i, d)| {
        let f = d.get("header_file")?.as_str().filter(|f| !f.is_empty())?;
        let path = project.build.asset(&project.root, &format!("init.{i}"), f);
        std::fs::read_to_string(path).ok()
    });
    let mut preserve_user = false;
    let mut oci_label = serde_json::Map::new();
    for caps in image_layers.iter().filter_map(|l| l.capabilities.as_ref()) {
        preserve_user |= caps.get("preserve_user").and_then(Json::as_bool) == Some(true);
        if let Some(m) = caps.get("oci_label").and_then(Json::as_object) {
            oci_label.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let capabilities = image::Capabilities {
        preserve_user,
        oci_label,
    };
    let own_checks: Vec<Json> = project.images[name]
        .eval
        .iter()
        .chain(image_layers.iter().flat_map(|l| &l.eval))
        .cloned()
        .collect();
    let own = &project.images[name];
    let parent_id = p.graph[parent].id.clone();
    let label_layers = image_layers
        .iter()
        .map(|l| image::LabelLayer {
            name: l.name.clone(),
            own: img.install.contains(&l.name),
            fields: p.label_fields_of(l),
        })
        .collect();
    let ix = p.add(PlanNode {
        id: format!("image:{name}"),
        label: name.clone(),
        spec: ImageSpec {
            name: name.clone(),
            parent: parent_id,
            tag: img.full_tag(),
            resolved: resolved_spec(img),
            init: init.map(str::to_string),
            init_def: init_def.cloned(),
            init_header,
            capabilities,
            eval: own_checks,
            services,
            meta: label_meta(project, own),
            skills: own
                .skill_doc
                .then(|| format!("{SKILLS_URL}/{name}/SKILL.md")),
            produce: own.produce.clone().unwrap_or_default(),
            image_eval: own.eval.clone(),
            label_layers,
            // ov writes the env of the layers an image installs itself; its
            // base image already holds the rest, expanded for its own user.
            env: img
                .install
                .iter()
                .filter_map(|l| project.layers.get(l))
                .map(|l| l.env.clone())
                .collect(),
            port: image_layers
                .iter()
                .flat_map(|l| l.port.iter().cloned())
                .collect(),
        }
        .into(),
        layer: None,
    });
    p.edge(parent, ix);
    p.images.insert(name.clone(), ix);
    p.aliases.insert(name.clone(), ix);
    ix
}

/// The image's build-scope checks (its own and those of the layers it
/// installs), as one eval node after the image, if it has any.
fn plan_eval(project: &Project, img: &ResolvedImage, ix: NodeIndex, p: &mut Plan) {
    let name = &img.name;
    let own = &project.images[name];
    // Build-scope checks: the image's own and those of the layers it installs.
    let checks: Vec<Json> = own
        .eval
        .iter()
        .chain(
            img.install
                .iter()
                .filter_map(|l| project.layers.get(l))
                .flat_map(|l| &l.eval),
        )
        .filter(|c| c.get("scope").and_then(Json::as_str).unwrap_or("build") == "build")
        .cloned()
        .collect();
    if !checks.is_empty() {
        let e = p.add(PlanNode {
            id: format!("eval:{name}"),
            label: format!("eval {name}"),
            spec: EvalSpec {
                checks,
                distro: img.distro.clone(),
                build: img.build.clone(),
                image_node: format!("image:{name}"),
            }
            .into(),
            layer: None,
        });
        p.edge(ix, e);
    }
}

/// The preamble node on an external base (ov's bootstrap preamble): one per
/// (base, distro bootstrap, user), shared by every image that asks for the
/// same, named after the first; `preamble@<image>` reaches it from each.
fn preamble(project: &Project, img: &ResolvedImage, base: NodeIndex, p: &mut Plan) -> NodeIndex {
    use ov_rules::rule::preamble::{Bootstrap, PreambleSpec, PreambleUser};
    let spec = PreambleSpec {
        parent: p.graph[base].id.clone(),
        bootstrap: pick_distro(project, img).map(|(d, def)| Bootstrap::from_distro(d, def)),
        user: PreambleUser {
            name: img.user.clone(),
            uid: img.uid,
            gid: img.gid,
            home: img.home.clone(),
            adopted: img.user_adopted,
        },
    };
    let spec = NodeSpec::from(spec);
    let dedupe = blake3::hash(&ov_rules::canonical_json(&json!([
        "preamble",
        spec.to_json()
    ])))
    .to_hex()
    .to_string();
    let ix = match p.applications.get(&dedupe) {
        Some(&ix) => ix,
        None => {
            let ix = p.add(PlanNode {
                id: format!("preamble:{}", img.name),
                label: format!("preamble {}", img.name),
                spec: spec.into(),
                layer: None,
            });
            p.applications.insert(dedupe, ix);
            ix
        }
    };
    p.aliases.insert(format!("preamble@{}", img.name), ix);
    p.edge(base, ix);
    ix
}

/// Every init header file the planner may read (see `init_header` in the
/// image spec), for the dry run's memo.
pub fn header_files(project: &Project) -> Vec<std::path::PathBuf> {
    project
        .build
        .inits
        .iter()
        .filter_map(|(name, d)| {
            let f = d.get("header_file")?.as_str().filter(|f| !f.is_empty())?;
            Some(
                project
                    .build
                    .asset(&project.root, &format!("init.{name}"), f),
            )
        })
        .collect()
}

/// supervisord or systemd: forced by the image, hinted by a layer's
/// capabilities, else supervisord when any layer has services.
fn init_system<'a>(
    project: &'a Project,
    img: &ResolvedImage,
    layers: &[&crate::load::model::Layer],
) -> Option<&'a str> {
    let forced = project.images[&img.name].init.as_deref();
    let hinted = layers
        .iter()
        .filter_map(|l| l.capabilities.as_ref()?.get("init_system_hint")?.as_str())
        .next_back();
    let wanted = forced.or(hinted).or_else(|| {
        layers
            .iter()
            .any(|l| !l.service.is_empty())
            .then_some("supervisord")
    })?;
    project
        .build
        .inits
        .get_key_value(wanted)
        .map(|(k, _)| k.as_str())
}

/// Where a project keeps its images' skill pages, and where ov's labels
/// point for them (ov's generator hard-codes both).
pub const SKILL_DOCS: &str = "plugins/ov-images/skills";
const SKILLS_URL: &str =
    "https://github.com/overthinkos/overthink-plugins/blob/main/ov-images/skills";

fn plan_vm(project: &Project, name: &str, vm: &crate::load::model::Vm, p: &mut Plan) {
    let src = &vm.source;
    let (disk_dep, from) = match vm.source_kind {
        VmSourceKind::CloudImage => {
            let ix = p.add(PlanNode {
                id: format!("cloud-image:{name}"),
                label: src
                    .get("url")
                    .and_then(Json::as_str)
                    .unwrap_or(name)
                    .rsplit('/')
                    .next()
                    .unwrap_or(name)
                    .to_string(),
                spec: CloudImageSpec {
                    url: src
                        .get("url")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    checksum: vm.checksum.clone(),
                }
                .into(),
                layer: None,
            });
            let image_node = p.graph[ix].id.clone();
            (ix, DiskFrom::CloudImage { image_node })
        }
        VmSourceKind::Bootc => {
            let Some(image) = &vm.image else { return };
            let ix = match p.images.get(&image.value) {
                Some(&ix) => ix,
                None => p.base(&image.value, project),
            };
            let image_node = p.graph[ix].id.clone();
            (
                ix,
                DiskFrom::Bootc {
                    image_node,
                    transport: vm.disk.transport,
                },
            )
        }
        VmSourceKind::Bootstrap => {
            // The builder runs in `builder_image` (the loader requires it),
            // as an image's bootstrap runs in its builder image; the disk
            // is built in the same image.
            let Some(image) = &vm.image else { return };
            let builder_ix = match p.images.get(&image.value) {
                Some(&ix) => ix,
                None => p.base(&image.value, project),
            };
            let builder_node = p.graph[builder_ix].id.clone();
            let rootfs = plan_vm_rootfs(project, name, src, &builder_node, p);
            p.edge(builder_ix, rootfs);
            let bootloader = src
                .get("distro")
                .and_then(Json::as_str)
                .and_then(|d| project.build.distros.get(d))
                .and_then(|d| d.get("bootloader"));
            let template = |k: &str| {
                bootloader
                    .and_then(|b| b.get(k))
                    .and_then(Json::as_str)
                    .map(str::to_string)
            };
            let from = DiskFrom::Bootstrap {
                rootfs_node: p.graph[rootfs].id.clone(),
                builder_node,
                bootloader: Bootloader {
                    fstab: template("fstab_template"),
                    install: template("install_template"),
                    initramfs: template("initramfs_template"),
                },
                ssh_user: vm.disk.ssh_user.clone(),
            };
            let disk = plan_disk(name, vm, from, rootfs, p);
            // The disk script runs in the builder image too.
            p.edge(builder_ix, disk);
            plan_boot(name, vm, disk, p);
            return;
        }
        // Lifecycle kinds copy or adopt an existing VM: nothing to build.
        VmSourceKind::Clone | VmSourceKind::Imported => return,
    };
    let disk = plan_disk(name, vm, from, disk_dep, p);
    plan_boot(name, vm, disk, p);
}

/// A bootstrap VM's rootfs node: build.yml's builder run with the VM's
/// distro and packages. It keys on what the builder reads only (the
/// distro's bootloader templates and the VM's disk fields are the disk's),
/// so a change to those reruns the disk and not the rootfs.
fn plan_vm_rootfs(
    project: &Project,
    name: &str,
    src: &Json,
    builder_node: &str,
    p: &mut Plan,
) -> NodeIndex {
    let builder = src.get("builder").and_then(Json::as_str).unwrap_or("");
    let distro = src.get("distro").and_then(Json::as_str);
    let distro_def = distro.and_then(|d| project.build.distros.get(d)).map(|d| {
        let mut d = d.clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("bootloader");
        }
        d
    });
    const ROOTFS_FIELDS: [&str; 6] = [
        "builder",
        "builder_image",
        "distro",
        "package",
        "bootstrap_arch",
        "bootstrap_variant",
    ];
    let source: serde_json::Map<String, Json> = src
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| ROOTFS_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    p.add(PlanNode {
        id: format!("bootstrap:vm/{name}"),
        label: format!("{builder} for vm {name}"),
        spec: BootstrapSpec {
            builder: builder.to_string(),
            builder_node: builder_node.to_string(),
            builder_def: project.build.builders.get(builder).cloned(),
            distro: distro.map(str::to_string),
            distro_def,
            source: Some(Json::Object(source)),
        }
        .into(),
        layer: None,
    })
}

/// A VM's disk node, made from `from` after node `dep`.
fn plan_disk(
    name: &str,
    vm: &crate::load::model::Vm,
    from: DiskFrom,
    dep: NodeIndex,
    p: &mut Plan,
) -> NodeIndex {
    let d = &vm.disk;
    let disk = p.add(PlanNode {
        id: format!("disk:{name}"),
        label: format!("disk {name}"),
        spec: DiskSpec {
            vm: name.to_string(),
            from,
            size: d.size,
            rootfs: d.rootfs,
            root_size: d.root_size,
            kernel_args: d.kernel_args.clone(),
            format: d.format,
        }
        .into(),
        layer: None,
    });
    p.edge(dep, disk);
    disk
}

/// A VM's seed (when it has cloud-init) and boot nodes, after its disk.
fn plan_boot(name: &str, vm: &crate::load::model::Vm, disk: NodeIndex, p: &mut Plan) {
    let spec = &vm.spec;
    let src = &vm.source;
    let seed = crate::load::vm::wants_seed(vm).then(|| {
        let text = |v: Option<&Json>| {
            v.and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let base_user = text(src.get("base_user"));
        // ov's SSH user: ssh.user, else the image's own base_user, else
        // root for bootc VMs.
        let ssh_user = text(spec.get("ssh").and_then(|s| s.get("user")))
            .or_else(|| base_user.clone())
            .or_else(|| (vm.source_kind == VmSourceKind::Bootc).then(|| "root".to_string()));
        p.add(PlanNode {
            id: format!("seed:{name}"),
            label: format!("seed {name}"),
            spec: SeedSpec {
                vm: name.to_string(),
                cloud_init: vm.cloud_init.clone().unwrap_or_default(),
                ssh_user,
                base_user,
                distro: text(src.get("distro")),
                authorized_key: vm.ssh_public_key.clone().filter(|_| vm.key_via_cloud_init),
            }
            .into(),
            layer: None,
        })
    });
    // The loader typed the boot fields; with errors there it stopped.
    let Some(boot_spec) = &vm.boot else { return };
    let boot = p.add(PlanNode {
        id: format!("boot:{name}"),
        label: format!("boot {name}"),
        spec: BootSpec {
            seed: seed.is_some(),
            ..boot_spec.clone()
        }
        .into(),
        layer: None,
    });
    p.edge(disk, boot);
    if let Some(s) = seed {
        p.edge(s, boot);
    }
    p.vms.insert(name.to_string(), boot);
    p.aliases.entry(name.to_string()).or_insert(boot);
}

/// The image config the labels read: the image's own runtime declarations,
/// with `port` and `network` falling back to `defaults` as ov resolves them.
fn label_meta(project: &Project, own: &crate::load::model::Image) -> IndexMap<String, Json> {
    let mut meta = own.meta.clone();
    for k in ["port", "network"] {
        if let (false, Some(v)) = (meta.contains_key(k), project.defaults.meta.get(k)) {
            meta.insert(k.to_string(), v.clone());
        }
    }
    meta
}

/// What the image's labels need of one layer (see `label_layers` in the
/// rules' labels module): its layer.yml fields under their own names, only
/// those it has, and whether the image installs it itself.
/// The layer.yml fields an image's labels carry for `layer`.
fn label_fields(layer: &crate::load::model::Layer) -> serde_json::Map<String, Json> {
    let fields = ov_rules::containerfile::LABEL_FIELDS
        .iter()
        .chain(&["shell"]);
    let mut out = serde_json::Map::new();
    for f in fields {
        if let Some(v) = layer.meta.get(*f).filter(|v| !v.is_null()) {
            out.insert((*f).into(), v.clone());
        }
    }
    let mut put = |k: &str, v: Json, empty: bool| {
        if !empty {
            out.insert(k.into(), v);
        }
    };
    put("port", json!(layer.port), layer.port.is_empty());
    put("env", json!(layer.env), layer.env.is_empty());
    put(
        "path_append",
        json!(layer.path_append),
        layer.path_append.is_empty(),
    );
    put("service", json!(layer.service), layer.service.is_empty());
    put("eval", json!(layer.eval), layer.eval.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use crate::workspace::{Dirs, Workspace};
    use ov_rules::NodeSpec;
    use std::path::Path;

    /// The mini test project with `extra` appended to its vm.yml, opened.
    fn mini_with_vm(extra: &str) -> anyhow::Result<Workspace> {
        let tmp = tempfile::tempdir()?;
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mini");
        for e in walkdir::WalkDir::new(&src) {
            let e = e?;
            let to = tmp.path().join(e.path().strip_prefix(&src)?);
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to)?;
            } else {
                std::fs::copy(e.path(), &to)?;
            }
        }
        let vm = tmp.path().join("vm.yml");
        let text = std::fs::read_to_string(&vm)? + extra;
        std::fs::write(&vm, text)?;
        let dirs = Dirs {
            cache: tmp.path().join(".cache"),
            repo_cache: tmp.path().join(".repos"),
            state: tmp.path().join("state"),
        };
        Workspace::open(tmp.path(), &dirs)
    }

    #[test]
    fn a_vm_bootstrap_runs_in_its_builder_image_node() {
        let ws = mini_with_vm(
            "  boot-vm:\n    source: {kind: bootstrap, builder: pacstrap, builder_image: app}\n    disk_size: 10G\n",
        )
        .unwrap();
        let ix = ws.plan.find("bootstrap:vm/boot-vm").unwrap();
        let NodeSpec::Bootstrap(spec) = ws.plan.graph[ix].spec.get().unwrap() else {
            panic!("not a bootstrap node: {:?}", ws.plan.graph[ix].spec);
        };
        assert_eq!(spec.builder_node, "image:app");
        assert_eq!(spec.builder, "pacstrap");
        // The executor reads the builder's image from its dependencies.
        let builder = ws.plan.find("image:app").unwrap();
        assert!(ws.plan.graph.find_edge(builder, ix).is_some());
    }

    #[test]
    fn a_vm_bootstrap_on_an_external_builder_image_depends_on_its_base() {
        let ws = mini_with_vm(
            "  boot-vm:\n    source: {kind: bootstrap, builder: pacstrap, builder_image: quay.io/x/builder:1}\n    disk_size: 10G\n",
        )
        .unwrap();
        let ix = ws.plan.find("bootstrap:vm/boot-vm").unwrap();
        let NodeSpec::Bootstrap(spec) = ws.plan.graph[ix].spec.get().unwrap() else {
            panic!("not a bootstrap node");
        };
        assert_eq!(spec.builder_node, "base:quay.io/x/builder:1");
        let base = ws.plan.find(&spec.builder_node).unwrap();
        assert!(ws.plan.graph.find_edge(base, ix).is_some());
    }

    #[test]
    fn a_vm_bootstrap_without_a_builder_image_is_a_load_error() {
        let e = mini_with_vm("  boot-vm:\n    source: {kind: bootstrap, builder: pacstrap}\n")
            .err()
            .unwrap();
        let text = format!("{e:#}");
        assert!(
            text.contains("vm.yml:") && text.contains("needs `builder_image`"),
            "{text}"
        );
    }
}
