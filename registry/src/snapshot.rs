//! Reading a workspace without writing to it, for tools that only look (`binarylm ui`): a
//! registry whose indexes live in a temporary database, and the read-only questions such a
//! tool asks about runs in progress.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, RegistryError, Result};
use crate::files::FileStore;
use crate::index::Index;
use crate::layout::{check_fingerprint, check_run_id};
use crate::owner::owner_alive;
use crate::rebuild::RebuildReport;
use crate::registry::Registry;

impl Registry {
    /// A read-only view of `workspace_dir`: its indexes are rebuilt from the workspace's files
    /// into a temporary database outside the workspace (sled has no read-only mode, and allows
    /// one process at a time), so nothing under the workspace is written — no layout created,
    /// no lock taken, its own `registry.sled` never opened — and a `binarylm run` holding the
    /// workspace is not disturbed. It shows the files as they were when it was opened; use only
    /// its reading methods (`runs`, `lookup`, `resolve_in`, `lineage`, `object_meta`, …).
    pub fn open_snapshot(workspace_dir: &Path) -> Result<(Registry, RebuildReport)> {
        let meta = fs::metadata(workspace_dir).at("read the workspace", workspace_dir)?;
        if !meta.is_dir() {
            return Err(RegistryError::io(
                "read the workspace",
                workspace_dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        let registry = Registry {
            files: FileStore::existing(workspace_dir),
            index: Index::temporary()?,
        };
        let report = registry.rebuild()?;
        Ok((registry, report))
    }

    /// Whether the process executing run `id` is alive (its owner marker names a live
    /// process). Only reads: a `running` record whose process died stays as it is.
    pub fn run_is_live(&self, id: &str) -> bool {
        check_run_id(id).is_ok() && owner_alive(&self.files.run_owner(id))
    }

    /// Where the staging directory of `fingerprint` is (whether or not it exists), for tools
    /// that watch a running stage's work files; unlike `staging` it creates nothing.
    pub fn staging_path(&self, fingerprint: &str) -> Result<PathBuf> {
        check_fingerprint(fingerprint)?;
        Ok(self.files.layout.staging(fingerprint))
    }
}
