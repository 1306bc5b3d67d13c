//! The planner: a validated, resolved project becomes one petgraph DAG of
//! nodes (see [`NodeKind`]). Edges point from a dependency to what needs it.
//!
//! A layer node stands for one layer applied on one parent with one render
//! context, so images that share a base and a prefix of layers share those
//! nodes: ov's auto-intermediate images fall out of the graph.

use crate::inputs::SourceTree;
use crate::model::{Project, VmSourceKind};
use crate::resolve::{BaseRef, ResolvedImage};
use indexmap::IndexMap;
use ov_rules::NodeKind;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

/// One node of the plan.
#[derive(Clone, Debug)]
pub struct PlanNode {
    /// Stable, human-readable id: `<kind>:<name>` (`layer:web-layer@web`).
    pub id: String,
    /// What it does.
    pub kind: NodeKind,
    /// A short label for pictures.
    pub label: String,
    /// The resolved spec; its canonical bytes go into the key.
    pub spec: Json,
    /// The layer whose directory this node hashes or applies.
    pub layer: Option<String>,
}

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
}

impl Plan {
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
            kind: NodeKind::Base,
            label: r.to_string(),
            spec: json!({ "ref": r, "pinned": project.lock.get(r) }),
            layer: None,
        })
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex) {
        if self.graph.find_edge(from, to).is_none() {
            self.graph.add_edge(from, to, ());
        }
    }

    /// Finds a node by id, `layer@image`, image name or VM name.
    pub fn find(&self, name: &str) -> Option<NodeIndex> {
        self.by_id
            .get(name)
            .or_else(|| self.aliases.get(name))
            .copied()
    }

    /// All names a user may pass as a target, for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_id
            .keys()
            .chain(self.aliases.keys())
            .map(String::as_str)
    }
}

/// The build.yml distro an image uses: the first of its `distro` tags that
/// build.yml defines.
pub fn pick_distro<'a>(project: &'a Project, img: &ResolvedImage) -> Option<(&'a str, &'a Json)> {
    img.distro.iter().find_map(|d| {
        project
            .build
            .distros
            .get_key_value(d.as_str())
            .map(|(k, v)| (k.as_str(), v))
    })
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
fn tag_section(layer: &crate::model::Layer, tag: &str) -> Option<serde_json::Map<String, Json>> {
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
pub fn layer_packages(layer: &crate::model::Layer, img: &ResolvedImage) -> Json {
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
                return Json::Object(out);
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
    Json::Object(out)
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

fn plan_image(
    project: &Project,
    img: &ResolvedImage,
    trees: &HashMap<String, SourceTree>,
    p: &mut Plan,
) {
    let name = &img.name;
    let mut parent = match &img.base {
        BaseRef::External(r) => p.base(r, project),
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
                kind: NodeKind::Bootstrap,
                label: format!("{builder} for {name}"),
                spec: json!({
                    "builder": builder,
                    "builder_node": builder_node,
                    "builder_def": project.build.builders.get(builder),
                    "distro": distro.map(|(d, _)| d),
                    "distro_def": distro.map(|(_, v)| v),
                }),
                layer: None,
            });
            p.edge(dep, ix);
            ix
        }
    };
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
    let context = json!({
        "distro": img.distro, "build": img.build, "user": img.user, "uid": img.uid,
        "gid": img.gid, "user_policy": img.user_policy, "build_distro": distro.map(|(d, _)| d),
    });
    for layer_name in &img.install {
        let layer = &project.layers[layer_name];
        let tree = trees.get(layer_name);
        let src = p.add(PlanNode {
            id: format!("source:{}", layer.display_dir),
            kind: NodeKind::Source,
            label: layer.display_dir.clone(),
            spec: json!({ "path": layer.display_dir }),
            layer: Some(layer_name.clone()),
        });
        // Builder stages this layer triggers, by detect file or config.
        let mut builders = serde_json::Map::new();
        for (bname, def) in &project.build.builders {
            if def.get("inline").and_then(Json::as_bool) == Some(true)
                || def.get("kind").and_then(Json::as_str) == Some("bootstrap")
            {
                continue;
            }
            let by_file = def
                .get("detect_file")
                .and_then(Json::as_array)
                .is_some_and(|files| {
                    files
                        .iter()
                        .filter_map(Json::as_str)
                        .any(|f| tree.is_some_and(|t| t.has_root_file(f)))
                });
            let by_config = def
                .get("detect_config")
                .and_then(Json::as_str)
                .is_some_and(|field| {
                    layer
                        .distro
                        .values()
                        .any(|s| s.get(field).is_some_and(|v| !v.is_null()))
                });
            if by_file || by_config {
                builders.insert(bname.clone(), json!(img.builder.get(bname)));
            }
        }
        let key = format!("{layer_name}@{name}");
        let parent_id = p.graph[parent].id.clone();
        let mut spec = json!({
            "layer": layer_name,
            "parent": parent_id,
            "context": context,
            "packages": layer_packages(layer, img),
            "formats": formats,
            "tasks": layer.tasks,
            "var": layer.var, "env": layer.env, "path_append": layer.path_append,
            "builders": builders,
        });
        // Only layers that have one carry it, so other layers keep their keys.
        if let Some(sh) = layer.meta.get("shell") {
            spec["shell"] = sh.clone();
        }
        // Same parent + layer + context + builders ⇒ the same node,
        // whichever image asks.
        let dedupe = blake3::hash(&ov_rules::canonical_json(&json!([
            parent_id, layer_name, context, builders
        ])))
        .to_hex()
        .to_string();
        let ix = match p.applications.get(&dedupe) {
            Some(&ix) => ix,
            None => {
                let ix = p.add(PlanNode {
                    id: format!("layer:{key}"),
                    kind: NodeKind::Layer,
                    label: key.clone(),
                    spec,
                    layer: Some(layer_name.clone()),
                });
                p.applications.insert(dedupe, ix);
                ix
            }
        };
        p.aliases.insert(key.clone(), ix);
        p.applied
            .entry(name.clone())
            .or_default()
            .push((layer_name.clone(), ix));
        p.edge(parent, ix);
        p.edge(src, ix);
        for b in builders.values().filter_map(Json::as_str) {
            p.builder_edges.push((b.to_string(), ix));
        }
        parent = ix;
    }
    // Layers the base chain applies are reachable as layer@image too.
    for anc in &img.base_chain {
        let inherited: Vec<(String, NodeIndex)> = p.applied.get(anc).cloned().unwrap_or_default();
        for (layer, ix) in inherited {
            p.aliases.entry(format!("{layer}@{name}")).or_insert(ix);
        }
    }
    let image_layers: Vec<&crate::model::Layer> = img
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
    let init_header = init_def
        .and_then(|d| d.get("header_file")?.as_str())
        .filter(|f| !f.is_empty())
        .map(|f| std::fs::read_to_string(project.root.join(f)).ok());
    let mut preserve_user = false;
    let mut oci_label = serde_json::Map::new();
    for caps in image_layers.iter().filter_map(|l| l.capabilities.as_ref()) {
        preserve_user |= caps.get("preserve_user").and_then(Json::as_bool) == Some(true);
        if let Some(m) = caps.get("oci_label").and_then(Json::as_object) {
            oci_label.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let own_checks: Vec<Json> = project.images[name]
        .eval
        .iter()
        .chain(image_layers.iter().flat_map(|l| &l.eval))
        .cloned()
        .collect();
    let own = &project.images[name];
    let parent_id = p.graph[parent].id.clone();
    let ix = p.add(PlanNode {
        id: format!("image:{name}"),
        kind: NodeKind::Image,
        label: name.clone(),
        spec: json!({
            "name": name,
            "parent": parent_id,
            "tag": img.full_tag(),
            "resolved": img,
            "init": init,
            "init_def": init_def,
            "init_header": init_header,
            "capabilities": { "preserve_user": preserve_user, "oci_label": oci_label },
            "eval": own_checks,
            "services": services,
            "meta": label_meta(project, own),
            "produce": own.produce,
            "image_eval": own.eval,
            "label_layers": image_layers.iter().map(|l| label_layer(l, img.install.contains(&l.name))).collect::<Vec<_>>(),
            "env": image_layers.iter().map(|l| &l.env).collect::<Vec<_>>(),
            "port": image_layers.iter().flat_map(|l| &l.port).collect::<Vec<_>>(),
        }),
        layer: None,
    });
    p.edge(parent, ix);
    p.images.insert(name.clone(), ix);
    p.aliases.insert(name.clone(), ix);
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
            kind: NodeKind::Eval,
            label: format!("eval {name}"),
            spec: json!({ "checks": checks, "distro": img.distro, "build": img.build, "image_node": format!("image:{name}") }),
            layer: None,
        });
        p.edge(ix, e);
    }
}

/// Every init header file the planner may read (see `init_header` in the
/// image spec), for the dry run's memo.
pub fn header_files(project: &Project) -> Vec<std::path::PathBuf> {
    project
        .build
        .inits
        .values()
        .filter_map(|d| d.get("header_file")?.as_str())
        .filter(|f| !f.is_empty())
        .map(|f| project.root.join(f))
        .collect()
}

/// supervisord or systemd: forced by the image, hinted by a layer's
/// capabilities, else supervisord when any layer has services.
fn init_system<'a>(
    project: &'a Project,
    img: &ResolvedImage,
    layers: &[&crate::model::Layer],
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

fn plan_vm(project: &Project, name: &str, vm: &crate::model::Vm, p: &mut Plan) {
    let spec = &vm.spec;
    let get = |k: &str| spec.get(k).cloned().unwrap_or(Json::Null);
    let src = &vm.source;
    let disk_dep = match vm.source_kind {
        VmSourceKind::CloudImage => {
            let ix = p.add(PlanNode {
                id: format!("cloud-image:{name}"),
                kind: NodeKind::CloudImage,
                label: src
                    .get("url")
                    .and_then(Json::as_str)
                    .unwrap_or(name)
                    .rsplit('/')
                    .next()
                    .unwrap_or(name)
                    .to_string(),
                spec: json!({ "url": src.get("url"), "checksum": src.get("checksum") }),
                layer: None,
            });
            Some(ix)
        }
        VmSourceKind::Bootc => vm
            .image
            .as_ref()
            .and_then(|i| p.images.get(&i.value).copied())
            .or_else(|| Some(p.base(&vm.image.as_ref()?.value, project))),
        VmSourceKind::Bootstrap => {
            let builder = src.get("builder").and_then(Json::as_str).unwrap_or("");
            let ix = p.add(PlanNode {
                id: format!("bootstrap:vm/{name}"),
                kind: NodeKind::Bootstrap,
                label: format!("{builder} for vm {name}"),
                spec: json!({
                    "builder": builder,
                    "builder_def": project.build.builders.get(builder),
                    "source": src,
                }),
                layer: None,
            });
            if let Some(&bix) = vm.image.as_ref().and_then(|i| p.images.get(&i.value)) {
                p.edge(bix, ix);
            }
            Some(ix)
        }
        // Lifecycle kinds copy or adopt an existing VM: nothing to build.
        VmSourceKind::Clone | VmSourceKind::Imported => None,
    };
    let Some(disk_dep) = disk_dep else { return };
    let disk = p.add(PlanNode {
        id: format!("disk:{name}"),
        kind: NodeKind::Disk,
        label: format!("disk {name}"),
        spec: json!({
            "source_kind": vm.source_kind,
            "disk_size": get("disk_size"),
            "rootfs": src.get("rootfs"),
            "root_size": src.get("root_size"),
            "kernel_args": src.get("kernel_args"),
            "format": "qcow2",
        }),
        layer: None,
    });
    p.edge(disk_dep, disk);
    let wants_seed = vm.source_kind == VmSourceKind::CloudImage || spec.contains_key("cloud_init");
    let seed = wants_seed.then(|| {
        p.add(PlanNode {
            id: format!("seed:{name}"),
            kind: NodeKind::Seed,
            label: format!("seed {name}"),
            spec: json!({ "hostname": name, "cloud_init": get("cloud_init"), "ssh": get("ssh"), "base_user": src.get("base_user") }),
            layer: None,
        })
    });
    let boot = p.add(PlanNode {
        id: format!("boot:{name}"),
        kind: NodeKind::Boot,
        label: format!("boot {name}"),
        spec: json!({
            "ram": get("ram"), "cpus": get("cpus"), "firmware": get("firmware"), "machine": get("machine"),
            "network": get("network"), "libvirt": get("libvirt"), "ssh": get("ssh"),
            "eval": get("eval"), "deploy_eval": get("deploy_eval"),
        }),
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
fn label_meta(project: &Project, own: &crate::model::Image) -> Json {
    let mut meta = own.meta.clone();
    for k in ["port", "network"] {
        if let (false, Some(v)) = (meta.contains_key(k), project.defaults.meta.get(k)) {
            meta.insert(k.to_string(), v.clone());
        }
    }
    json!(meta)
}

/// What the image's labels need of one layer (see `label_layers` in the
/// rules' labels module): its layer.yml fields under their own names, only
/// those it has, and whether the image installs it itself.
fn label_layer(layer: &crate::model::Layer, own: bool) -> Json {
    let fields = ov_rules::containerfile::LABEL_FIELDS
        .iter()
        .chain(&["shell"]);
    let mut out = serde_json::Map::new();
    out.insert("name".into(), json!(layer.name));
    out.insert("own".into(), json!(own));
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
    Json::Object(out)
}
