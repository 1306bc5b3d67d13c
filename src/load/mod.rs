//! Loading an ov project: `overthink.yml`, its includes (local and from the
//! repo cache), discovered layer directories and remote layer refs, merged
//! with "first definition wins" into a [`Project`].

pub mod image_ref;
pub mod model;
pub mod validate;
pub mod yaml;

mod build;
mod decode;
mod image;
mod layer;
mod literal;
pub(crate) mod parse_cache;
mod remote;
pub(crate) mod vm;
mod vm_boot;
mod vm_disk;
mod vm_seed;

pub use remote::RemoteRef;

use crate::diag::{Diagnostics, InvalidProject, Loc};
use crate::load::model::{DefOrigin, Image, Layer, Project, RemoteInclude};
use crate::load::yaml::{Node, Span};
use decode::{Cx, Keys};
use indexmap::IndexMap;
use parse_cache::{ParseCache, ReadError};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema stamp this ov reads.
pub const SCHEMA: &str = "2026.141.1600";

/// Includes may nest this deep.
const MAX_INCLUDE_DEPTH: usize = 8;

const ROOT_KEYS: &[&str] = &[
    "version", "include", "discover", "defaults", "distro", "builder", "init", "layer", "image",
    "pod", "vm", "k8s", "local", "deploy", "ai", "recipe", "score",
];
const ROOT_LEGACY: &[(&str, &str)] = &[
    ("images", "`image:`"),
    ("vms", "`vm:`"),
    ("includes", "`include:`"),
    ("distros", "`distro:`"),
    ("builders", "`builder:`"),
    ("inits", "`init:`"),
    ("deployment", "`deploy:`"),
    ("deployments", "`deploy:`"),
];

/// Where to look for things outside the project.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Checkouts of remote repositories: `<host>/<org>/<repo>@<version>/`.
    pub repo_cache: PathBuf,
    /// Where to keep the parse cache (decoded layers); `None` parses and
    /// decodes every file every time.
    pub parse_cache: Option<PathBuf>,
    /// Walks of discover roots that still hold (their listed directories
    /// are unchanged): taken instead of walking again.
    pub kept_walks: Vec<crate::plan::kept_layers::Walk>,
}

/// A loaded project and the warnings found on the way.
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// Warnings (no errors: a project with errors is not loaded).
    pub diags: Diagnostics,
    /// The parse cache, being written back while the caller goes on.
    pub saving: Saving,
}

/// A write of the parse cache on its own thread: it overlaps validation
/// and planning rather than delaying them. Dropping it waits for the
/// write, so the process does not exit in the middle of it.
pub struct Saving(Option<std::thread::JoinHandle<()>>);

impl Drop for Saving {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Loads the project whose `overthink.yml` is in `root`.
pub fn load(root: &Path, opts: &LoadOptions) -> Result<Loaded, InvalidProject> {
    let _t = crate::diag::phase("load");
    let cache = {
        let _t = crate::diag::phase("load: parse cache");
        ParseCache::load(opts.parse_cache.as_deref(), root)
    };
    let mut loader = Loader {
        root: root.to_path_buf(),
        opts,
        cache: &cache,
        diags: Diagnostics::default(),
        project: Project {
            root: root.to_path_buf(),
            ..Project::default()
        },
        version: None,
        stack: Vec::new(),
        seen: HashSet::new(),
        discover: Vec::new(),
        pending_from: Vec::new(),
        origin: None,
    };
    let entry = root.join("overthink.yml");
    if !entry.is_file() {
        loader.diags.error(
            Some(Loc::file(root)),
            format!(
                "no overthink.yml in {} (use -C DIR to pick the project)",
                root.display()
            ),
        );
        return Err(InvalidProject(loader.diags));
    }
    loader.file(&entry, None, 0);
    // An entry file that could not be read has said why; "no `version:`"
    // on top of that would send the user looking for the wrong thing.
    if !loader.project.files.is_empty() {
        loader.check_version();
    }
    build::resolve_inherits(&mut loader.diags, &mut loader.project.build);
    if !loader.diags.has_errors() {
        loader.discover_layers();
        loader.remote_layers();
    }
    let Loader {
        mut project,
        mut diags,
        ..
    } = loader;
    if diags.has_errors() {
        return Err(InvalidProject(diags));
    }
    // VMs from cloud images still build without any image.
    if project.images.is_empty() && project.vms.is_empty() {
        diags.warn(
            Some(Loc::file(Path::new("overthink.yml"))),
            "no image is defined in overthink.yml or its includes, so there is nothing to build",
        );
    }
    project.inputs.files = cache.read_paths();
    // A cache dir inside a layer is refused by validation: writing there
    // first would change the layer it is refused for.
    let in_a_layer = opts
        .parse_cache
        .as_deref()
        .is_some_and(|p| crate::plan::layer_files::layer_holding(&project, p).is_some());
    // The cache is only a speed-up: a thread that cannot be started loses
    // this run's additions, nothing else.
    let saving = Saving(
        (!in_a_layer)
            .then(|| {
                std::thread::Builder::new()
                    .name("parse-cache".into())
                    .spawn(move || cache.save())
                    .ok()
            })
            .flatten(),
    );
    project.files.sort();
    Ok(Loaded {
        project,
        diags,
        saving,
    })
}

/// Decodes one parsed `layer.yml` on its own: the layer, what was said
/// about it, and the file's name as messages show it.
fn decode_layer(
    root: &Path,
    name: &str,
    dir: &Path,
    file: &Path,
    docs: &[Node],
) -> (Layer, Diagnostics, Arc<PathBuf>) {
    let shown = shown_path(root, file);
    let mut diags = Diagnostics::default();
    let mut cx = Cx {
        file: shown.clone(),
        diags: &mut diags,
    };
    let mut layer = new_layer(name, dir, root, Loc::new(&shown, Span { line: 1, col: 1 }));
    let docs: Vec<&Node> = docs.iter().filter(|d| !d.is_null()).collect();
    match docs.as_slice() {
        [doc] => match (doc.as_map(), doc.get("layer")) {
            (Some([_]), Some(body)) if body.as_map().is_some() => layer::decode(&mut cx, &mut layer, body),
            (Some(_), _) => cx.error(
                doc,
                "layer.yml must keep everything under one `layer:` key (a flat layer.yml is the old shape)",
            ),
            _ => cx.error(doc, format!("layer.yml must be a map with one `layer:` key, found {}", doc.shape())),
        },
        [] => cx.error(&Node { value: crate::load::yaml::Value::Null, span: Span { line: 1, col: 1 } }, "layer.yml is empty; it needs a `layer:` key"),
        _ => cx.error(docs[1], "layer.yml must hold one document"),
    }
    (layer, diags, shown)
}

/// [`decode_layer`] of a discovered layer's `layer.yml`, read back from
/// `cache` when it kept the layer at the file's fingerprint. Only a layer
/// without errors is kept.
fn read_layer(
    cache: &ParseCache,
    root: &Path,
    name: &str,
    dir: &Path,
    file: &Path,
) -> Result<(Layer, Diagnostics, Arc<PathBuf>), ReadError> {
    let (layer, diags) = cache.layer(
        file,
        |docs| {
            let (layer, diags, _) = decode_layer(root, name, dir, file, docs);
            (layer, diags)
        },
        |(_, diags)| !diags.has_errors(),
    )?;
    Ok((layer, diags, shown_path(root, file)))
}

/// `path` as messages show it: relative to the project root when under it.
fn shown_path(root: &Path, path: &Path) -> Arc<PathBuf> {
    Arc::new(
        path.strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| path.to_path_buf()),
    )
}

struct Loader<'a> {
    root: PathBuf,
    opts: &'a LoadOptions,
    cache: &'a ParseCache,
    diags: Diagnostics,
    project: Project,
    version: Option<(String, Loc)>,
    stack: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    discover: Vec<(PathBuf, bool)>,
    /// `layer: {x: {from: dir}}` entries, read once the file is done.
    pending_from: Vec<(String, PathBuf, Loc)>,
    /// The remote include the file being read came from (its own local
    /// includes inherit it): build.yml definitions remember it.
    origin: Option<DefOrigin>,
}

impl Loader<'_> {
    fn display(&self, path: &Path) -> Arc<PathBuf> {
        shown_path(&self.root, path)
    }

    fn read(&mut self, path: &Path, from: Option<&Loc>) -> Option<Arc<Vec<Node>>> {
        let shown = self.display(path);
        match self.cache.parse(path) {
            Ok(docs) => Some(docs),
            Err(e) => {
                for (loc, msg) in read_error(&shown, e, from) {
                    self.diags.error(Some(loc), msg);
                }
                None
            }
        }
    }

    /// Reads one file and then its includes, depth first.
    fn file(&mut self, path: &Path, from: Option<&Loc>, depth: usize) {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canon) {
            let mut chain: Vec<String> = self
                .stack
                .iter()
                .map(|p| self.display(p).display().to_string())
                .collect();
            chain.push(self.display(&canon).display().to_string());
            self.diags.error(
                from.cloned(),
                format!("include cycle: {}", chain.join(" → ")),
            );
            return;
        }
        if !self.seen.insert(canon.clone()) {
            // ov treats any revisit as a cycle; a diamond is harmless for a
            // first-wins merge, so it is only worth a hint.
            self.diags.warn(
                from.cloned(),
                format!(
                    "{} is included more than once; later includes are skipped",
                    self.display(&canon).display()
                ),
            );
            return;
        }
        if depth > MAX_INCLUDE_DEPTH {
            self.diags.error(
                from.cloned(),
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH}"),
            );
            return;
        }
        let Some(docs) = self.read(path, from) else {
            return;
        };
        self.project.files.push(self.display(path).to_path_buf());
        self.stack.push(canon);
        let shown = self.display(path);
        self.warn_if_empty(&shown, &docs);
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut includes = Vec::new();
        for doc in docs.iter() {
            self.document(&shown, &dir, doc, &mut includes);
        }
        for (name, ldir, loc) in std::mem::take(&mut self.pending_from) {
            if self.project.layers.contains_key(&name) {
                continue;
            }
            let file = ldir.join("layer.yml");
            if let Some(layer) = self.layer_file(&name, &ldir, &file, Some(&loc)) {
                self.project.layers.insert(name, layer);
            }
        }
        for (target, loc) in includes {
            let mut origin = self.origin.clone();
            let resolved = if target.starts_with('@') {
                match RemoteRef::parse(&target) {
                    Some(r) => {
                        let p = r.local_path(&self.opts.repo_cache);
                        if !p.is_file() {
                            let msg = format!(
                                "include `{target}`: {}",
                                r.how_to_fetch(&self.opts.repo_cache)
                            );
                            self.diags.error(Some(loc), msg);
                            continue;
                        }
                        origin = Some(DefOrigin {
                            root: r.checkout_dir(&self.opts.repo_cache),
                            include: RemoteInclude {
                                repo: r.repo_id(),
                                version: r.version.clone().unwrap_or_else(|| "HEAD".into()),
                                path: r.path.clone(),
                                loc: loc.clone(),
                            },
                        });
                        p
                    }
                    None => {
                        self.diags.error(Some(loc), format!("include `{target}` is not of the form @host/org/repo/path[:version]"));
                        continue;
                    }
                }
            } else {
                dir.join(&target)
            };
            let outer = std::mem::replace(&mut self.origin, origin);
            self.file(&resolved, Some(&loc), depth + 1);
            self.origin = outer;
        }
        self.stack.pop();
    }

    fn document(
        &mut self,
        shown: &Arc<PathBuf>,
        dir: &Path,
        doc: &Node,
        includes: &mut Vec<(String, Loc)>,
    ) {
        let mut cx = Cx {
            file: shown.clone(),
            diags: &mut self.diags,
        };
        if doc.is_null() {
            return;
        }
        let Some(entries) = doc.as_map() else {
            cx.error(
                doc,
                format!("a document must be a map, found {}", doc.shape()),
            );
            return;
        };
        // Kind-keyed shape: one entity key whose body names the entity.
        if let [(k, body)] = entries {
            if let (Some(kind @ ("layer" | "image" | "vm")), Some(name)) =
                (k.as_str(), body.get("name").and_then(Node::as_str))
            {
                let name = name.to_string();
                match kind {
                    "layer" => {
                        if !self.project.layers.contains_key(&name) {
                            let mut layer = inline_layer(&name, cx.loc(body));
                            layer::decode(&mut cx, &mut layer, body);
                            self.project.layers.insert(name, layer);
                        }
                    }
                    "image" => {
                        if let Some(n) = body.get("name") {
                            literal::image_name(&mut cx, n, &name);
                        }
                        let img = image::decode(&mut cx, &name, body, &format!("image `{name}`"));
                        self.project.images.entry(name).or_insert(img);
                    }
                    _ => {
                        if let Some(v) = vm::decode(&mut cx, &name, body) {
                            self.project.vms.entry(name).or_insert(v);
                        }
                    }
                }
                return;
            }
        }
        let keys = Keys {
            what: "this file",
            known: ROOT_KEYS,
            legacy: ROOT_LEGACY,
            drift: &[],
        };
        for (key, _, v) in decode::check_keys(&mut cx, doc, &keys) {
            match key.as_str() {
                "version" => {
                    let text = v.as_str().map(str::to_string);
                    if self.version.is_none() {
                        self.version = Some((text.unwrap_or_default(), cx.loc(v)));
                    }
                }
                "include" => {
                    for item in decode::spanned_list(&mut cx, "include", v, true) {
                        includes.push((item.value, item.loc));
                    }
                }
                "discover" => discover_block(&mut cx, dir, v, &mut self.discover),
                "defaults" => {
                    let d = image::decode(&mut cx, "defaults", v, "defaults");
                    merge_defaults(&mut self.project.defaults, d);
                }
                "image" => {
                    for (name_node, body) in v.as_map().unwrap_or_default() {
                        let Some(name) = name_node.as_str() else {
                            continue;
                        };
                        if self.project.images.contains_key(name) {
                            continue;
                        }
                        literal::image_name(&mut cx, name_node, name);
                        let img = image::decode(&mut cx, name, body, &format!("image `{name}`"));
                        self.project.images.insert(name.to_string(), img);
                    }
                    if !v.is_null() && v.as_map().is_none() {
                        cx.error(
                            v,
                            format!(
                                "`image` must be a map of name to entry, found {}",
                                v.shape()
                            ),
                        );
                    }
                }
                "layer" => {
                    if !v.is_null() && v.as_map().is_none() {
                        cx.error(
                            v,
                            format!(
                                "`layer` must be a map of name to entry, found {}",
                                v.shape()
                            ),
                        );
                    }
                    for (name_node, body) in v.as_map().unwrap_or_default() {
                        let Some(name) = name_node.as_str() else {
                            continue;
                        };
                        if self.project.layers.contains_key(name) {
                            continue;
                        }
                        if let Some(from) = body.get("from").and_then(Node::as_str) {
                            self.pending_from.push((
                                name.to_string(),
                                dir.join(from),
                                cx.loc(body),
                            ));
                        } else {
                            let mut layer = inline_layer(name, cx.loc(body));
                            layer::decode(&mut cx, &mut layer, body);
                            self.project.layers.insert(name.to_string(), layer);
                        }
                    }
                }
                "vm" => {
                    if !v.is_null() && v.as_map().is_none() {
                        cx.error(
                            v,
                            format!("`vm` must be a map of name to entry, found {}", v.shape()),
                        );
                    }
                    for (name_node, body) in v.as_map().unwrap_or_default() {
                        let Some(name) = name_node.as_str() else {
                            continue;
                        };
                        if self.project.vms.contains_key(name) {
                            continue;
                        }
                        if let Some(vm) = vm::decode(&mut cx, name, body) {
                            self.project.vms.insert(name.to_string(), vm);
                        }
                    }
                }
                "distro" | "builder" | "init" => {
                    let section = match key.as_str() {
                        "distro" => build::Section::Distro,
                        "builder" => build::Section::Builder,
                        _ => build::Section::Init,
                    };
                    let origin = self.origin.as_ref();
                    build::decode(&mut cx, &mut self.project.build, section, v, origin)
                }
                // pod, k8s, local, deploy, ai, recipe, score: entities this
                // engine does not build; accepted without comment.
                _ => {}
            }
        }
    }

    /// An empty file, or an `image.yml` without images, loads fine and
    /// plans nothing from it: worth a word, since it is easy to mistake for
    /// the file being ignored.
    fn warn_if_empty(&mut self, shown: &Arc<PathBuf>, docs: &[Node]) {
        let msg = if docs.iter().all(Node::is_null) {
            format!("{} is empty", shown.display())
        } else if shown.file_name().is_some_and(|n| n == "image.yml") && !defines_images(docs) {
            format!("{} defines no images", shown.display())
        } else {
            return;
        };
        self.diags.warn(Some(Loc::file(shown)), msg);
    }

    /// Reads and decodes one `layer.yml`.
    fn layer_file(
        &mut self,
        name: &str,
        dir: &Path,
        file: &Path,
        from: Option<&Loc>,
    ) -> Option<Layer> {
        let docs = self.read(file, from)?;
        Some(self.decode_layer_docs(name, dir, file, &docs))
    }

    fn decode_layer_docs(&mut self, name: &str, dir: &Path, file: &Path, docs: &[Node]) -> Layer {
        self.adopt(decode_layer(&self.root, name, dir, file, docs))
    }

    /// Takes in a layer decoded on its own: its diagnostics and its file.
    fn adopt(&mut self, (layer, diags, shown): (Layer, Diagnostics, Arc<PathBuf>)) -> Layer {
        self.diags.extend(diags);
        self.project.files.push(shown.to_path_buf());
        layer
    }

    fn check_version(&mut self) {
        let Some((found, loc)) = self.version.clone() else {
            self.diags.error(
                Some(Loc::file(&self.display(&self.root.join("overthink.yml")))),
                format!("overthink.yml has no `version:`; this ov reads schema {SCHEMA}"),
            );
            return;
        };
        if found == SCHEMA {
            self.project.version = found;
            return;
        }
        // Integer versions (1, 2, 4), quoted or not, predate CalVer stamps.
        let older = found.parse::<u64>().is_ok() || found.as_str() < SCHEMA;
        let advice = if older {
            "the project is older: run `ov migrate` with the ov release that reads it"
        } else {
            "the project is newer: update ov"
        };
        self.diags.error(
            Some(loc),
            format!("schema version `{found}` found; this ov reads {SCHEMA} ({advice})"),
        );
    }

    /// Walks every discover root for `layer.yml`; a layer's name is its
    /// directory's name, and the first definition of a name wins.
    fn discover_layers(&mut self) {
        let walking = crate::diag::phase("load: walk");
        let mut found: IndexMap<String, PathBuf> = IndexMap::new();
        for (root, recursive) in self.discover.clone() {
            // The root counts even when missing: creating it adds layers.
            self.project.inputs.dirs.push(root.clone());
            let kept = self
                .opts
                .kept_walks
                .iter()
                .find(|w| w.root == root && w.recursive == recursive);
            let done = match kept {
                Some(w) => w.clone(),
                None => {
                    let (mut files, mut listed) = (Vec::new(), Vec::new());
                    walk(&root, recursive, 0, &mut files, &mut listed);
                    files.sort();
                    crate::plan::kept_layers::Walk {
                        root: root.clone(),
                        recursive,
                        files,
                        listed,
                    }
                }
            };
            self.project.inputs.dirs.extend(done.listed.iter().cloned());
            for file in &done.files {
                let Some(dir) = file.parent() else { continue };
                let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if self.project.layers.contains_key(name) {
                    continue;
                }
                match found.get(name) {
                    Some(first) => {
                        let msg = format!(
                            "layer `{name}` is found twice; {} wins over {}",
                            self.display(first).display(),
                            self.display(dir).display()
                        );
                        self.diags.warn(Some(Loc::file(&self.display(file))), msg);
                    }
                    None => {
                        found.insert(name.to_string(), dir.to_path_buf());
                    }
                }
            }
            self.project.inputs.walks.push(done);
        }
        drop(walking);
        let _t = crate::diag::phase("load: layers");
        let found: Vec<(String, PathBuf)> = found.into_iter().collect();
        // Read back from the parse cache, or parsed and decoded, in parallel
        // (each layer on its own, with its own diagnostics), then merged in
        // discovery order, so messages come out as a sequential load would
        // give them.
        let root = &self.root;
        let cache = self.cache;
        let decoded: Vec<_> = found
            .par_iter()
            .map(|(name, dir)| {
                let file = dir.join("layer.yml");
                let layer = read_layer(cache, root, name, dir, &file);
                (name, layer, file)
            })
            .collect();
        for (name, layer, file) in decoded {
            match layer {
                Ok(decoded) => {
                    let layer = self.adopt(decoded);
                    self.project.layers.insert(name.to_string(), layer);
                }
                Err(e) => {
                    for (loc, msg) in read_error(&self.display(&file), e, None) {
                        self.diags.error(Some(loc), msg);
                    }
                }
            }
        }
    }

    /// Resolves `@host/org/repo/path:ver` layer refs in image layer lists and
    /// in layers' `require`/`layer`, loading each from the repo cache, and
    /// rewrites the refs to layer keys.
    fn remote_layers(&mut self) {
        let mut queue: Vec<(RemoteRef, Loc)> = Vec::new();
        let collect = |list: &mut Vec<crate::load::model::Spanned<String>>,
                       parent: Option<&RemoteRef>,
                       queue: &mut Vec<(RemoteRef, Loc)>,
                       diags: &mut Diagnostics| {
            for item in list.iter_mut() {
                let r = if item.value.starts_with('@') {
                    match RemoteRef::parse(&item.value) {
                        Some(r) => r,
                        None => {
                            diags.error(
                                Some(item.loc.clone()),
                                format!(
                                    "`{}` is not of the form @host/org/repo/path[:version]",
                                    item.value
                                ),
                            );
                            continue;
                        }
                    }
                } else if let Some(p) = parent {
                    p.sibling(&item.value)
                } else {
                    continue;
                };
                item.value = r.key();
                queue.push((r, item.loc.clone()));
            }
        };
        for img in self.project.images.values_mut() {
            collect(&mut img.layers, None, &mut queue, &mut self.diags);
        }
        for l in self.project.layers.values_mut() {
            collect(&mut l.require, None, &mut queue, &mut self.diags);
            collect(&mut l.includes, None, &mut queue, &mut self.diags);
        }
        let mut pinned: IndexMap<String, Option<String>> = IndexMap::new();
        while let Some((r, loc)) = queue.pop() {
            let key = r.key();
            match pinned.get(&key) {
                Some(v) if *v != r.version => {
                    self.diags.error(
                        Some(loc),
                        format!(
                            "layer {key} is referenced at two versions ({} and {})",
                            v.as_deref().unwrap_or("HEAD"),
                            r.version.as_deref().unwrap_or("HEAD")
                        ),
                    );
                    continue;
                }
                Some(_) => continue,
                None => {
                    pinned.insert(key.clone(), r.version.clone());
                }
            }
            if self.project.layers.contains_key(&key) {
                continue;
            }
            let dir = r.local_path(&self.opts.repo_cache);
            let file = dir.join("layer.yml");
            if !file.is_file() {
                let msg = format!(
                    "remote layer `{key}`: {}",
                    r.how_to_fetch(&self.opts.repo_cache)
                );
                self.diags.error(Some(loc), msg);
                continue;
            }
            let Some(mut layer) = self.layer_file(&key, &dir, &file, Some(&loc)) else {
                continue;
            };
            layer.display_dir = format!("@{key}:{}", r.version.as_deref().unwrap_or("HEAD"));
            collect(&mut layer.require, Some(&r), &mut queue, &mut self.diags);
            collect(&mut layer.includes, Some(&r), &mut queue, &mut self.diags);
            self.project.layers.insert(key, layer);
        }
    }
}

fn discover_block(cx: &mut Cx, dir: &Path, v: &Node, out: &mut Vec<(PathBuf, bool)>) {
    let keys = Keys {
        what: "discover",
        known: &["layer"],
        legacy: &[("layers", "`layer`")],
        drift: &[],
    };
    for (_, _, roots) in decode::check_keys(cx, v, &keys) {
        let items: Vec<&Node> = match &roots.value {
            crate::load::yaml::Value::Seq(items) => items.iter().collect(),
            _ => vec![roots],
        };
        for item in items {
            let (path, recursive) = match (item.as_str(), item.get("path")) {
                (Some(p), _) => (p.to_string(), true),
                (None, Some(p)) => {
                    let rec = item
                        .get("recursive")
                        .and_then(|r| decode::boolean(cx, "recursive", r))
                        .unwrap_or(true);
                    (decode::string(cx, "path", p).unwrap_or_default(), rec)
                }
                _ => {
                    cx.error(
                        item,
                        "a discover root is a path or `{path: DIR, recursive: BOOL}`",
                    );
                    continue;
                }
            };
            out.push((dir.join(path), recursive));
        }
    }
}

/// Whether any document defines an image, in an `image:` map or as a
/// kind-keyed `image: {name: ...}` entry.
fn defines_images(docs: &[Node]) -> bool {
    docs.iter()
        .filter_map(|d| d.get("image"))
        .any(|v| v.as_map().is_some_and(|m| !m.is_empty()))
}

fn read_error(shown: &Arc<PathBuf>, e: ReadError, from: Option<&Loc>) -> Vec<(Loc, String)> {
    match e {
        ReadError::Io(io) => vec![(
            from.cloned().unwrap_or_else(|| Loc::file(shown)),
            format!("cannot read {}: {io}", shown.display()),
        )],
        ReadError::NotText => vec![(Loc::file(shown), "not UTF-8 text".to_string())],
        ReadError::NotAFile => vec![(
            from.cloned().unwrap_or_else(|| Loc::file(shown)),
            format!(
                "{} is not a regular file (a fifo, device or directory); a project file must be one",
                shown.display()
            ),
        )],
        ReadError::TooLarge(len) => vec![(
            from.cloned().unwrap_or_else(|| Loc::file(shown)),
            format!(
                "{} is {len} bytes, larger than the {} MiB a project file may be",
                shown.display(),
                parse_cache::MAX_FILE >> 20
            ),
        )],
        ReadError::Syntax(s) => vec![(
            Loc::new(shown, s.span),
            format!("not valid YAML: {}", s.message),
        )],
        ReadError::Duplicates(dups) => dups
            .into_iter()
            .map(|d| {
                let msg = format!(
                    "duplicate key `{}` (first at {})",
                    d.key,
                    Loc::new(shown, d.first)
                );
                (Loc::new(shown, d.again), msg)
            })
            .collect(),
    }
}

/// A layer defined inside another YAML file has no directory of its own:
/// its inputs are its definition, not the folder the file sits in (which
/// may be the whole project).
fn inline_layer(name: &str, loc: Loc) -> Layer {
    Layer {
        name: name.to_string(),
        loc: Some(loc),
        display_dir: format!("inline/{name}"),
        ..Layer::default()
    }
}

fn new_layer(name: &str, dir: &Path, root: &Path, loc: Loc) -> Layer {
    Layer {
        name: name.to_string(),
        loc: Some(loc),
        dir: dir.to_path_buf(),
        display_dir: dir
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| dir.display().to_string()),
        ..Layer::default()
    }
}

/// Collects `layer.yml` files under `dir`. Hidden directories are skipped.
/// Every directory below `dir` that could hold a layer.yml is added to
/// `listed` (its entries are watched), whether listed or only looked in.
fn walk(
    dir: &Path,
    recursive: bool,
    depth: usize,
    out: &mut Vec<PathBuf>,
    listed: &mut Vec<PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if ft.is_dir() {
            if recursive || depth == 0 {
                subdirs.push(entry.path());
            }
        } else if depth > 0 && name == "layer.yml" {
            out.push(entry.path());
        }
    }
    // Subdirectories are looked at on every core; what they add comes out
    // in the order a walk on one core would give.
    let found: Vec<(Vec<PathBuf>, Vec<PathBuf>)> = subdirs
        .par_iter()
        .map(|d| {
            let (mut out, mut listed) = (Vec::new(), Vec::new());
            if recursive {
                walk(d, recursive, depth + 1, &mut out, &mut listed);
            } else {
                // All a layer directory under a root that is not recursive
                // can add is its own layer.yml: one stat answers that,
                // where listing it cost a readdir per layer.
                let file = d.join("layer.yml");
                if std::fs::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                    out.push(file);
                }
            }
            (out, listed)
        })
        .collect();
    for (d, (o, l)) in subdirs.into_iter().zip(found) {
        listed.push(d);
        listed.extend(l);
        out.extend(o);
    }
}

/// First definition wins, field by field.
fn merge_defaults(into: &mut Image, from: Image) {
    macro_rules! first {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f = from.$f; } )* };
    }
    first!(
        enabled,
        base,
        from,
        bootstrap_builder_image,
        platform,
        tag,
        registry,
        distro,
        build,
        builder,
        produce,
        user,
        uid,
        gid,
        user_policy,
        init
    );
    if into.layers.is_empty() {
        into.layers = from.layers;
    }
    if into.eval.is_empty() {
        into.eval = from.eval;
    }
    for (k, v) in from.meta {
        into.meta.entry(k).or_insert(v);
    }
}
