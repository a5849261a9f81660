//! The workspace as the UI sees it: a read-only registry snapshot, the manifests its runs came
//! from, and each manifest's plan — rebuilt only when something on disk changed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use pipelines::Manifest;
use registry::{Registry, RegistryError, RunRecord};
use runtime::plan::Plan;

/// One pipeline the workspace knows: the manifest given on the command line, or one that a
/// recorded run or result names.
pub struct Pipeline {
    /// Its position in [`Snapshot::pipelines`], the id pages use (never a path).
    pub id: usize,
    pub path: PathBuf,
    /// The manifest, or why it does not load now (edited into an error, or moved away).
    pub manifest: Result<Manifest, String>,
    /// What `binarylm plan` says for it now, when the manifest loads.
    pub plan: Result<Plan, String>,
}

pub struct Snapshot {
    pub registry: Registry,
    pub pipelines: Vec<Pipeline>,
    /// Every recorded run, newest first.
    pub runs: Vec<RunRecord>,
    /// Files the rebuild could not read, with why.
    pub skipped: Vec<String>,
    stamp: Stamp,
}

impl Snapshot {
    pub fn pipeline(&self, id: usize) -> Option<&Pipeline> {
        self.pipelines.get(id)
    }

    /// The pipeline whose manifest is at `path` (as a run or result records it).
    pub fn pipeline_of(&self, manifest: &str) -> Option<&Pipeline> {
        self.pipelines
            .iter()
            .find(|p| p.path.as_os_str() == manifest)
    }
}

/// Sizes and modification times of what a change to the workspace or a manifest touches: the
/// run files, the shard directories of records and objects (a commit renames a file into one),
/// the log directories, the manifests and the local files their stages read.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

pub struct Workspace {
    root: PathBuf,
    given: Option<PathBuf>,
    kinds: runtime::Kinds,
    current: Mutex<Option<Arc<Snapshot>>>,
}

impl Workspace {
    pub fn new(root: PathBuf, given: Option<PathBuf>, kinds: runtime::Kinds) -> Workspace {
        Workspace {
            root,
            given,
            kinds,
            current: Mutex::new(None),
        }
    }

    /// The current snapshot, rebuilt first when the files changed since the last one.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, RegistryError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(snap) = current.as_ref() {
            if stamp(&self.root, &snap.pipelines) == snap.stamp {
                return Ok(Arc::clone(snap));
            }
        }
        let snap = Arc::new(self.build()?);
        *current = Some(Arc::clone(&snap));
        Ok(snap)
    }

    /// Each file's stamp is taken before it is read: a file that changes while the snapshot is
    /// being built (a run starting during a slow rebuild) then leaves the stamp older than the
    /// file, so the next request rebuilds. Stamped after the build, the new file's stamp would
    /// match and the snapshot would miss it until something else changed.
    fn build(&self) -> Result<Snapshot, RegistryError> {
        let mut stamp = workspace_stamp(&self.root);
        let (registry, report) = Registry::open_snapshot(&self.root)?;
        let runs = registry.runs()?;
        let mut paths: Vec<PathBuf> = runs.iter().map(|r| PathBuf::from(&r.manifest)).collect();
        paths.extend(
            registry
                .results()?
                .into_iter()
                .map(|r| PathBuf::from(r.manifest)),
        );
        paths.sort();
        paths.dedup();
        if let Some(given) = &self.given {
            paths.retain(|p| p != given);
            paths.insert(0, given.clone());
        }
        let mut pipelines = Vec::with_capacity(paths.len());
        for (id, path) in paths.into_iter().enumerate() {
            stamp.push(file_stamp(&path));
            let manifest = pipelines::load(&path).map_err(|e| e.to_string());
            let plan = match &manifest {
                Ok(m) => {
                    stamp.extend(deps_stamp(m));
                    runtime::plan(m, &registry, &self.kinds, &[]).map_err(|e| e.to_string())
                }
                Err(_) => Err("the manifest does not load".to_string()),
            };
            pipelines.push(Pipeline {
                id,
                path,
                manifest,
                plan,
            });
        }
        Ok(Snapshot {
            registry,
            pipelines,
            runs,
            skipped: report.skipped,
            stamp,
        })
    }
}

/// The stamp of the files a snapshot with these pipelines was built from, in the order
/// [`Workspace::build`] stamps them.
fn stamp(root: &Path, pipelines: &[Pipeline]) -> Stamp {
    let mut out = workspace_stamp(root);
    for p in pipelines {
        out.push(file_stamp(&p.path));
        if let Ok(m) = &p.manifest {
            out.extend(deps_stamp(m));
        }
    }
    out
}

/// The run files, the shard directories of records and objects (a commit renames a file into
/// one) and the log directories.
fn workspace_stamp(root: &Path) -> Stamp {
    let mut out = Stamp::new();
    for dir in ["runs", "logs", "records", "objects"] {
        out.push(file_stamp(&root.join(dir)));
        out.extend(entries(&root.join(dir)).iter().map(|e| file_stamp(e)));
    }
    out
}

/// The local files a manifest's stages read.
fn deps_stamp(m: &Manifest) -> Stamp {
    let mut out = Stamp::new();
    for stage in &m.stages {
        for dep in runtime::fingerprints::declared_deps(m, stage).unwrap_or_default() {
            out.push(file_stamp(&m.dir.join(dep)));
        }
    }
    out
}

fn file_stamp(path: &Path) -> (PathBuf, u64, Option<SystemTime>) {
    let meta = std::fs::metadata(path).ok();
    let len = meta.as_ref().map_or(0, |m| m.len());
    let modified = meta.and_then(|m| m.modified().ok());
    (path.to_path_buf(), len, modified)
}

/// The entries of a directory, sorted; none when it cannot be read.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}
