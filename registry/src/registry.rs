//! The registry handle: a file store (the truth) composed with a sled index (fast lookups,
//! rebuilt from the files by `rebuild`). Each public operation writes the files first, then
//! the index, so an interruption between the two leaves an index that lags — which lookups
//! tolerate and `rebuild` repairs — never files that lag the index.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, RegistryError, Result};
use crate::files::FileStore;
use crate::index::{index_path, Index};
use crate::rebuild::RebuildReport;

/// A workspace's store and registry. Cheap to clone and safe to share between threads; open it
/// once per process (sled refuses a second open) while holding the `WorkspaceLock`.
#[derive(Clone)]
pub struct Registry {
    pub(crate) files: FileStore,
    pub(crate) index: Index,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("root", &self.files.root())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Open the registry of `workspace_dir`, creating its layout. The caller holds the
    /// `WorkspaceLock`. An index that is missing (deleted, or never built) while the store has
    /// files is rebuilt from them; an index that cannot be opened is an error that says how to
    /// recover (`open_rebuilding`).
    pub fn open(workspace_dir: &Path) -> Result<Registry> {
        let files = FileStore::open(workspace_dir)?;
        let index = Index::open(&index_path(workspace_dir))?;
        let registry = Registry { files, index };
        if registry.index.is_empty() && registry.files.has_files()? {
            registry.rebuild()?;
        }
        Ok(registry)
    }

    /// Open the registry and rebuild every index from the files. An index that cannot be
    /// opened (corrupt) is first moved aside to `registry.sled.corrupt-<time>` for inspection.
    pub fn open_rebuilding(workspace_dir: &Path) -> Result<(Registry, RebuildReport)> {
        let files = FileStore::open(workspace_dir)?;
        let path = index_path(workspace_dir);
        let index = match Index::open(&path) {
            Ok(index) => index,
            // A busy index is not corrupt; moving it aside would pull it from under its user.
            Err(e @ RegistryError::IndexBusy { .. }) => return Err(e),
            Err(_) => {
                let stamp = crate::clock::new_run_id();
                let aside = path.with_file_name(format!("registry.sled.corrupt-{stamp}"));
                fs::rename(&path, &aside).at("move the corrupt index aside to", &aside)?;
                Index::open(&path)?
            }
        };
        let registry = Registry { files, index };
        let report = registry.rebuild()?;
        Ok((registry, report))
    }

    /// The workspace directory.
    pub fn root(&self) -> &Path {
        self.files.root()
    }

    /// The workspace's shared cache directory (downloads by pin): stages get it through their
    /// context rather than walking the workspace's layout themselves.
    pub fn cache_dir(&self) -> PathBuf {
        self.files.cache_dir()
    }

    /// Where the runtime writes the per-stage logs of a run: `logs/<run_id>/`.
    pub fn log_dir(&self, run_id: &str) -> PathBuf {
        self.files.log_dir(run_id)
    }
}
