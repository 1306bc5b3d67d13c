//! One pass from files to keys: load, validate, resolve, hash, plan, key.
//! Every command that needs the graph goes through [`Workspace::open`].

use crate::diag::{did_you_mean, Diagnostics, InvalidProject, Loc};
use crate::load::model::Project;
use crate::load::{self, LoadOptions};
use crate::plan::inputs::{hash_layer_dirs, SourceTree};
use crate::plan::kept_layers::{self, Reuse};
use crate::plan::keys::{self, Keys};
use crate::plan::resolve::{self, ResolvedImage};
use crate::plan::{self, Plan};
use indexmap::IndexMap;
use ov_cache::StatCache;
use ov_rules::engine::EnginePlatform;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where ov keeps what it learns between runs.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// The cache directory (stat cache, parse cache; the store from the executor on).
    pub cache: PathBuf,
    /// Checkouts of remote repositories.
    pub repo_cache: PathBuf,
    /// State that is not a cache (VM instances: keys, NVRAM, disks):
    /// `OV_STATE_DIR`, else `$XDG_DATA_HOME/ov`, else `~/.local/share/ov`.
    pub state: PathBuf,
}

impl Dirs {
    /// `--cache-dir`, else `OV_CACHE_DIR`, else `$XDG_CACHE_HOME/ov`, else
    /// `~/.cache/ov`; repos in `OV_REPO_CACHE`, else `~/.cache/ov/repos`.
    pub fn from_env(cache_dir: Option<PathBuf>) -> Self {
        let home_cache = || {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
        };
        let cache = cache_dir
            .or_else(|| std::env::var_os("OV_CACHE_DIR").map(PathBuf::from))
            .unwrap_or_else(|| home_cache().join("ov"));
        let repo_cache = std::env::var_os("OV_REPO_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home_cache().join("ov").join("repos"));
        let state = std::env::var_os("OV_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|p| p.join("ov"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/ov")))
            .unwrap_or_else(|| PathBuf::from(".local/share/ov"));
        // Absolute, because these paths leave the process: a relative
        // `--cache-dir cache` bound into a disk build's container was read
        // by the engine as the name of a volume.
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        Dirs {
            cache: absolute(cache),
            repo_cache: absolute(repo_cache),
            state: absolute(state),
        }
    }
}

/// A loaded, validated and planned project.
pub struct Workspace {
    /// The project.
    pub project: Project,
    /// Every image, resolved, in build order.
    pub resolved: IndexMap<String, ResolvedImage>,
    /// Hashed layer directories by layer key.
    pub trees: HashMap<String, SourceTree>,
    /// The graph.
    pub plan: Plan,
    /// Keys of every plan node.
    pub keys: Keys,
    /// Warnings found while loading.
    pub warnings: Diagnostics,
}

/// What a build runs: the graph, the layer trees its keys read and the
/// directories its layer nodes send. A full plan makes it
/// ([`Workspace::into_planned`]); so does the last build's saved plan,
/// when the project's structure is unchanged ([`crate::plan::saved`]).
pub struct Planned {
    /// The graph.
    pub plan: Plan,
    /// Hashed layer directories by layer key.
    pub trees: HashMap<String, SourceTree>,
    /// The project directory.
    pub root: PathBuf,
    /// Layer key → its directory (empty for an inline layer).
    pub layer_dirs: HashMap<String, PathBuf>,
}

/// Loads and validates only (no hashing, no plan): for commands that only read the model.
pub fn load_valid(root: &Path, dirs: &Dirs) -> Result<(Project, Diagnostics), InvalidProject> {
    load_resolved(root, dirs).map(|(project, _, diags)| (project, diags))
}

/// [`load_valid`], with every image resolved (validation needs them
/// resolved, so they are resolved once, here).
pub fn load_resolved(
    root: &Path,
    dirs: &Dirs,
) -> Result<(Project, IndexMap<String, ResolvedImage>, Diagnostics), InvalidProject> {
    load_reusing(root, dirs, &Reuse::default())
}

/// [`load_resolved`], taking from `reuse` the walks and layer-file checks
/// a past full plan kept that still hold.
fn load_reusing(
    root: &Path,
    dirs: &Dirs,
    reuse: &Reuse,
) -> Result<(Project, IndexMap<String, ResolvedImage>, Diagnostics), InvalidProject> {
    let opts = LoadOptions {
        repo_cache: dirs.repo_cache.clone(),
        parse_cache: Some(dirs.cache.join("parse-cache.v1")),
        kept_walks: reuse.walks.clone(),
    };
    let loaded = load::load(root, &opts)?;
    let mut diags = loaded.diags;
    let mut project = loaded.project;
    // Waited for on return.
    let _saving = loaded.saving;
    project
        .inputs
        .files
        .push(root.join(crate::plan::lock::FILE));
    // ov links an image's skill page from a label when the project has one;
    // looked for whether or not it exists, so adding one re-plans.
    for (name, image) in project.images.iter_mut() {
        let page = root
            .join(crate::plan::SKILL_DOCS)
            .join(name)
            .join("SKILL.md");
        image.skill_doc = page.is_file();
        project.inputs.files.push(page);
    }
    match crate::plan::lock::Lock::load(root) {
        Ok(l) => project.lock = l.base,
        Err(e) => diags.error(
            Some(Loc::new(
                &std::sync::Arc::new(PathBuf::from(crate::plan::lock::FILE)),
                crate::load::yaml::Span {
                    line: e.line as u32,
                    col: e.column as u32,
                },
            )),
            e.message,
        ),
    }
    let t = crate::diag::phase("validate");
    crate::load::validate::validate(&project, &mut diags);
    drop(t);
    let t = crate::diag::phase("resolve");
    // Resolving needs sound bases (no cycles, no unknown names).
    let resolved = if diags.has_errors() {
        IndexMap::new()
    } else {
        let resolved = resolve::resolve_all(&project);
        crate::load::validate::adopted_users(&project, &resolved, &mut diags);
        resolved
    };
    drop(t);
    let t = crate::diag::phase("vm keys");
    crate::load::vm::resolve_keys(&mut project, &dirs.state.join("vm"), &mut diags);
    drop(t);
    let t = crate::diag::phase("layer files");
    crate::plan::layer_files::check(&project, &dirs.cache, |d| reuse.has_tree(d), &mut diags);
    drop(t);
    let _t = crate::diag::phase("stage check");
    if !diags.has_errors() {
        // Needs the resolved builder maps, so only on an otherwise valid project.
        crate::plan::stage_check::check(&project, &resolved, &mut diags);
    }
    if diags.has_errors() {
        return Err(InvalidProject(diags));
    }
    Ok((project, resolved, diags))
}

impl Workspace {
    /// Loads the project in `root`, plans it and keys every node as if
    /// nothing were built (no store, unknown engine platform).
    pub fn open(root: &Path, dirs: &Dirs) -> anyhow::Result<Self> {
        let mut ws = Self::open_unkeyed(root, dirs)?;
        ws.keys = keys::compute(&ws.plan, &ws.trees, &EnginePlatform::unknown(), |_, _| None);
        Ok(ws)
    }

    /// Loads and plans, leaving `keys` empty: for callers that key the plan
    /// themselves (a prediction against the store, a build keying each node
    /// as its dependencies finish), which would throw these keys away. At
    /// the bench project's size that is a tenth of a second.
    pub fn open_unkeyed(root: &Path, dirs: &Dirs) -> anyhow::Result<Self> {
        let started_ns = crate::plan::watch::now_ns();
        let reuse = Reuse::load(root, dirs);
        let (project, resolved, warnings) = load_reusing(root, dirs, &reuse)?;
        // Only the layers of images that will be planned are worth hashing.
        let needed = plan::needed_images(&project, &resolved);
        let mut used: Vec<&str> = resolved
            .values()
            .filter(|r| needed.contains(r.name.as_str()))
            .flat_map(|r| r.install.iter().map(String::as_str))
            .collect();
        used.sort_unstable();
        used.dedup();
        let t = crate::diag::phase("stat cache");
        // A tree kept unchanged is taken as it is; only the others are
        // listed and hashed, through the stat cache.
        let mut trees = HashMap::with_capacity(used.len());
        let mut rest = Vec::new();
        for name in used {
            let kept = project
                .layers
                .get(name)
                .and_then(|l| reuse.trees.get(&l.dir));
            match kept {
                Some(tree) => {
                    trees.insert(name.to_string(), tree.clone());
                }
                None => rest.push(name),
            }
        }
        if !rest.is_empty() {
            let mut stat = StatCache::load(&dirs.cache.join("stat-cache.v1"));
            trees.extend(hash_layer_dirs(&project, &rest, &mut stat)?);
            // The stat cache is only a speed-up; a read-only cache dir must
            // not stop planning. A read-only cache dir is said once, by the
            // build that would record into it.
            match stat.save() {
                Err(e) if !e.io_error().is_some_and(crate::run::read_only) => {
                    eprintln!("warning: could not save the stat cache: {e}")
                }
                _ => {}
            }
        }
        drop(t);
        kept_layers::save(root, dirs, &project, &trees, &reuse, started_ns);
        let _t = crate::diag::phase("plan");
        let plan = plan::plan(&project, &resolved, &trees);
        Ok(Workspace {
            project,
            resolved,
            trees,
            plan,
            keys: Keys::default(),
            warnings,
        })
    }

    /// What a build of this plan needs, and the project it came from.
    pub fn into_planned(self) -> (Planned, Project) {
        let planned = Planned {
            plan: self.plan,
            trees: self.trees,
            root: self.project.root.clone(),
            layer_dirs: self
                .project
                .layers
                .iter()
                .map(|(k, l)| (k.clone(), l.dir.clone()))
                .collect(),
        };
        (planned, self.project)
    }

    /// The image named `name`, resolved, or an error naming the closest image.
    pub fn image(&self, name: &str) -> Result<&ResolvedImage, InvalidProject> {
        self.resolved
            .get(name)
            .ok_or_else(|| unknown_image(&self.project, name))
    }
}

/// "unknown image `x` (did you mean `y`?)".
pub fn unknown_image(project: &Project, name: &str) -> InvalidProject {
    let mut d = Diagnostics::default();
    d.error(
        None::<Loc>,
        format!(
            "unknown image `{name}`{}",
            did_you_mean(name, project.images.keys().map(String::as_str))
        ),
    );
    InvalidProject(d)
}

#[cfg(test)]
mod tests {
    use super::Dirs;
    use std::path::PathBuf;

    #[test]
    fn a_relative_cache_dir_is_made_absolute() {
        let dirs = Dirs::from_env(Some(PathBuf::from("cache")));
        assert!(dirs.cache.is_absolute(), "{}", dirs.cache.display());
        assert!(dirs.cache.ends_with("cache"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(dirs.cache, cwd.join("cache"));
        assert!(dirs.repo_cache.is_absolute() && dirs.state.is_absolute());
    }
}
