//! Incremental planning: after any sequence of edits, what the dry run's
//! memo answers, and the plan a build reads back, equal a plan from
//! scratch, and an edit of layer files is answered without a full plan.

use ov::plan::memo::Memo;
use ov::plan::saved::SavedPlan;
use ov::workspace::{Dirs, Planned, Workspace};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const LAYERS: usize = 5;
const PACKAGES: &[&str] = &["curl", "nginx", "git", "jq", "vim"];

/// A generated project: layers `l0`…, each with a layer.yml and a few
/// files; images `base-os` and `i0`… on it or on each other.
struct Gen {
    tmp: tempfile::TempDir,
    /// The images' layer lists (index into `LAYERS`); image `i` may build
    /// on image `j < i`.
    images: Vec<(Option<usize>, Vec<usize>)>,
    packages: Vec<Vec<usize>>,
    lock: bool,
    /// Seconds into the past for the next backdated write; each write gets
    /// its own, so every edit moves a fingerprint and then settles.
    clock: u64,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl Gen {
    fn new() -> Gen {
        let g = Gen {
            tmp: tempfile::tempdir().unwrap(),
            images: vec![
                (None, vec![0, 1]),
                (Some(0), vec![2, 3]),
                (None, vec![4, 1]),
            ],
            packages: (0..LAYERS).map(|i| vec![i % PACKAGES.len()]).collect(),
            lock: false,
            clock: 100_000,
        };
        write(
            &g.root().join("overthink.yml"),
            "version: 2026.141.1600\ninclude: [image.yml, vm.yml, build.yml]\n\
             discover:\n  layer:\n    - path: layers\n      recursive: true\n\
             defaults:\n  registry: ghcr.io/acme\n  build: [rpm]\n",
        );
        write(
            &g.root().join("build.yml"),
            "distro:\n  fedora:\n    format:\n      rpm:\n        install_template: \
             \"RUN dnf install -y{{range .Packages}} {{.}}{{end}}\"\n",
        );
        write(&g.root().join("vm.yml"), "vm: {}\n");
        for l in 0..LAYERS {
            g.write_layer_yml(l);
            write(&g.layer(l).join("a.txt"), &format!("file a of layer {l}\n"));
            write(
                &g.layer(l).join("sub/b.txt"),
                &format!("file b of layer {l}\n"),
            );
        }
        g.write_images();
        g
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("project")
    }

    fn layer(&self, l: usize) -> PathBuf {
        self.root().join("layers").join(format!("l{l}"))
    }

    fn write_layer_yml(&self, l: usize) {
        let pkgs: Vec<&str> = self.packages[l].iter().map(|p| PACKAGES[*p]).collect();
        write(
            &self.layer(l).join("layer.yml"),
            &format!("layer:\n  package: [{}]\n", pkgs.join(", ")),
        );
    }

    fn write_images(&self) {
        let mut text = String::from(
            "image:\n  base-os:\n    base: quay.io/fedora/fedora:43\n    distro: [fedora:43, fedora]\n",
        );
        for (i, (on, layers)) in self.images.iter().enumerate() {
            let base = on.map_or("base-os".to_string(), |j| format!("i{j}"));
            let names: Vec<String> = layers.iter().map(|l| format!("l{l}")).collect();
            text += &format!(
                "  i{i}:\n    base: {base}\n    layer: [{}]\n",
                names.join(", ")
            );
        }
        write(&self.root().join("image.yml"), &text);
    }

    fn write_lock(&self) {
        let path = self.root().join("ov.lock");
        if self.lock {
            write(
                &path,
                &format!(
                    "{{\"version\": 1, \"base\": {{\"quay.io/fedora/fedora:43\": \"sha256:{}\"}}}}\n",
                    "ab".repeat(32)
                ),
            );
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Moves every file and directory written since the last call to a
    /// past mtime of its own, as if the edit had been made a while ago: the
    /// memo is then written after each run, and the next run starts from
    /// it. Each time is used once, so a settled path never gets back a
    /// fingerprint it had.
    fn settle(&mut self) {
        fn walk(p: &Path, clock: &mut u64) {
            if p.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), clock);
                }
            }
            let recent = SystemTime::now() - Duration::from_secs(1_000);
            if std::fs::metadata(p).unwrap().modified().unwrap() > recent {
                *clock -= 1;
                let t = SystemTime::now() - Duration::from_secs(*clock);
                std::fs::File::open(p).unwrap().set_modified(t).unwrap();
            }
        }
        let root = self.root();
        walk(&root, &mut self.clock);
    }
}

/// One edit a user makes between two dry runs.
#[derive(Clone, Debug)]
enum Edit {
    /// New contents for a layer file (may be the same size).
    Content {
        layer: usize,
        file: bool,
        text: String,
    },
    /// The same contents written again.
    Touch { layer: usize },
    /// The executable bit flipped.
    Chmod { layer: usize },
    /// A file added.
    Add { layer: usize, name: String },
    /// A file removed (it is written again by a later `Content`).
    Remove { layer: usize },
    /// A file renamed.
    Rename { layer: usize },
    /// A layer's package list in its layer.yml.
    Packages { layer: usize, packages: Vec<usize> },
    /// An image's layer list in image.yml.
    ImageLayers { image: usize, layers: Vec<usize> },
    /// ov.lock written or removed.
    Lock,
    /// A layer no image uses added under the discover root, or removed.
    ExtraLayer,
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let layer = 0..LAYERS;
    prop_oneof![
        4 => (layer.clone(), any::<bool>(), "[a-z]{0,12}")
            .prop_map(|(layer, file, text)| Edit::Content { layer, file, text }),
        1 => layer.clone().prop_map(|layer| Edit::Touch { layer }),
        1 => layer.clone().prop_map(|layer| Edit::Chmod { layer }),
        1 => (layer.clone(), "[a-z]{1,6}")
            .prop_map(|(layer, name)| Edit::Add { layer, name: format!("new-{name}.txt") }),
        1 => layer.clone().prop_map(|layer| Edit::Remove { layer }),
        1 => layer.clone().prop_map(|layer| Edit::Rename { layer }),
        1 => (layer.clone(), proptest::collection::vec(0..PACKAGES.len(), 1..3))
            .prop_map(|(layer, packages)| Edit::Packages { layer, packages }),
        1 => (0..3usize, proptest::collection::vec(0..LAYERS, 1..4))
            .prop_map(|(image, layers)| Edit::ImageLayers { image, layers }),
        1 => Just(Edit::Lock),
        1 => Just(Edit::ExtraLayer),
    ]
}

impl Gen {
    /// Applies `e`; whether it changed only the contents (or mode) of
    /// files that exist: then the memo must answer without a full plan.
    fn apply(&mut self, e: &Edit) -> bool {
        let content_only = match e {
            Edit::Content { layer, file, .. } => self
                .layer(*layer)
                .join(if *file { "a.txt" } else { "sub/b.txt" })
                .exists(),
            Edit::Touch { .. } | Edit::Chmod { .. } => true,
            _ => false,
        };
        match e {
            Edit::Content { layer, file, text } => {
                let f = if *file { "a.txt" } else { "sub/b.txt" };
                write(&self.layer(*layer).join(f), text);
            }
            Edit::Touch { layer } => {
                let p = self.layer(*layer).join("a.txt");
                if let Ok(t) = std::fs::read(&p) {
                    std::fs::write(&p, t).unwrap();
                }
            }
            Edit::Chmod { layer } => {
                use std::os::unix::fs::PermissionsExt;
                let p = self.layer(*layer).join("sub/b.txt");
                if let Ok(m) = std::fs::metadata(&p) {
                    let mode = m.permissions().mode() ^ 0o111;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                }
            }
            Edit::Add { layer, name } => write(&self.layer(*layer).join(name), "added\n"),
            Edit::Remove { layer } => {
                let _ = std::fs::remove_file(self.layer(*layer).join("a.txt"));
            }
            Edit::Rename { layer } => {
                let d = self.layer(*layer);
                if d.join("sub/b.txt").exists() {
                    std::fs::rename(d.join("sub/b.txt"), d.join("sub/c.txt")).unwrap();
                } else if d.join("sub/c.txt").exists() {
                    std::fs::rename(d.join("sub/c.txt"), d.join("sub/b.txt")).unwrap();
                }
            }
            Edit::Packages { layer, packages } => {
                self.packages[*layer] = packages.clone();
                self.write_layer_yml(*layer);
            }
            Edit::ImageLayers { image, layers } => {
                self.images[*image].1 = layers.clone();
                self.write_images();
            }
            Edit::Lock => {
                self.lock = !self.lock;
                self.write_lock();
            }
            Edit::ExtraLayer => {
                let dir = self.root().join("layers/extra");
                if dir.exists() {
                    std::fs::remove_dir_all(dir).unwrap();
                } else {
                    write(&dir.join("layer.yml"), "layer:\n  package: [jq]\n");
                    write(&dir.join("sub/x.txt"), "extra\n");
                }
            }
        }
        content_only
    }
}

/// A dry run through the CLI's own function: what it prints.
fn dry_run(root: &Path, dirs: &Dirs) -> String {
    let mut out = Vec::new();
    ov::commands::build::dry_run(root, dirs, &[], &[], &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn dirs(base: &Path, name: &str) -> Dirs {
    Dirs {
        cache: base.join(name),
        repo_cache: base.join("repos"),
        state: base.join("state"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_memo_answers_what_a_plan_from_scratch_answers(
        edits in proptest::collection::vec(edit_strategy(), 1..10)
    ) {
        let mut g = Gen::new();
        g.settle();
        let root = g.root();
        let kept = dirs(g.tmp.path(), "cache");
        // The first dry run plans in full and writes the memo.
        let first = dry_run(&root, &kept);
        prop_assert!(kept.cache.join(ov::plan::memo::FILE).exists(), "no memo was written");
        prop_assert_eq!(&first, &dry_run(&root, &dirs(g.tmp.path(), "scratch-0")));
        for (step, e) in edits.iter().enumerate() {
            let content_only = g.apply(e);
            g.settle();
            let answered = Memo::new(&root, &kept, &[]).replay();
            if content_only {
                prop_assert!(answered.is_some(), "step {}: {:?} needed a full plan", step, e);
            }
            // The CLI's path: the memo's answer, else a full plan that
            // writes the next memo.
            let incremental = dry_run(&root, &kept);
            if let Some(r) = answered {
                prop_assert_eq!(&r.stdout, &incremental, "step {}: {:?}", step, e);
            }
            let scratch = dry_run(&root, &dirs(g.tmp.path(), &format!("scratch-{}", step + 1)));
            prop_assert_eq!(&incremental, &scratch, "step {}: {:?}", step, e);
        }
    }
}

/// What the build's saved plan gives back, else a full plan that saves
/// the next one, as `ov build` does; and whether it was read back.
fn build_plan(root: &Path, dirs: &Dirs) -> (Planned, bool) {
    let saved = SavedPlan::new(root, dirs);
    if let Some(r) = saved.load() {
        if let Some(w) = r.rewrite {
            w.write();
        }
        return (r.planned, true);
    }
    let (planned, project) = Workspace::open_unkeyed(root, dirs).unwrap().into_planned();
    saved.save(&project, &planned, "");
    (planned, false)
}

/// Where two plans differ (nodes, specs, edges, names, trees, keys), if
/// anywhere.
fn difference(a: &Planned, b: &Planned) -> Option<String> {
    let (ga, gb) = (&a.plan.graph, &b.plan.graph);
    if ga.node_count() != gb.node_count() {
        return Some(format!(
            "{} nodes, not {}",
            ga.node_count(),
            gb.node_count()
        ));
    }
    for (x, y) in ga.raw_nodes().iter().zip(gb.raw_nodes()) {
        let (x, y) = (&x.weight, &y.weight);
        if x.id != y.id
            || x.label != y.label
            || x.layer != y.layer
            || x.spec.get().unwrap() != y.spec.get().unwrap()
            || x.spec.facts() != y.spec.facts()
        {
            return Some(format!("node {} is not {}", x.id, y.id));
        }
    }
    let edges = |g: &petgraph::graph::DiGraph<ov::plan::PlanNode, ()>| -> Vec<(usize, usize)> {
        g.raw_edges()
            .iter()
            .map(|e| (e.source().index(), e.target().index()))
            .collect()
    };
    if edges(ga) != edges(gb) {
        return Some("the edges differ".into());
    }
    if a.plan.by_id != b.plan.by_id
        || a.plan.aliases != b.plan.aliases
        || a.plan.images != b.plan.images
        || a.plan.vms != b.plan.vms
    {
        return Some("the names differ".into());
    }
    let mut na: Vec<&str> = a.plan.names().collect();
    let mut nb: Vec<&str> = b.plan.names().collect();
    na.sort_unstable();
    nb.sort_unstable();
    if na != nb {
        return Some("the names a user may give differ".into());
    }
    if a.trees != b.trees || a.root != b.root || a.layer_dirs != b.layer_dirs {
        return Some("the trees or directories differ".into());
    }
    let keys = |p: &Planned| {
        ov::plan::keys::compute(
            &p.plan,
            &p.trees,
            &ov_rules::engine::EnginePlatform::unknown(),
            |_, _| None,
        )
        .keys
    };
    (keys(a) != keys(b)).then(|| "the keys differ".into())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_saved_plan_is_what_a_plan_from_scratch_makes(
        edits in proptest::collection::vec(edit_strategy(), 1..10)
    ) {
        let mut g = Gen::new();
        g.settle();
        let root = g.root();
        let kept = dirs(g.tmp.path(), "cache");
        let (_, read_back) = build_plan(&root, &kept);
        prop_assert!(!read_back && kept.cache.join(ov::plan::saved::FILE).exists());
        // Whether the plan kept is the project's: a full plan made right
        // after a structural edit cannot keep its plan.
        let mut kept_is_current = true;
        for (step, e) in edits.iter().enumerate() {
            let content_only = g.apply(e) && kept_is_current;
            // Half the time the build runs right after the edit, before
            // it has settled.
            if step % 2 == 0 {
                g.settle();
            }
            let (planned, read_back) = build_plan(&root, &kept);
            if content_only {
                prop_assert!(read_back, "step {}: {:?} needed a full plan", step, e);
            }
            let scratch = dirs(g.tmp.path(), &format!("scratch-{step}"));
            let (fresh, _) = build_plan(&root, &scratch);
            if let Some(d) = difference(&planned, &fresh) {
                prop_assert!(false, "step {}: {:?}: {}", step, e, d);
            }
            g.settle();
            kept_is_current = SavedPlan::new(&root, &kept).load().is_some();
        }
    }
}
