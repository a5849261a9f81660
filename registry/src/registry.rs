//! The registry handle: the workspace layout plus the sled indexes. The files under the
//! workspace are the truth; sled only indexes them and can be rebuilt (`rebuild`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{IoContext, RegistryError, Result};
use crate::fsutil::list_dir;
use crate::layout::Layout;
use crate::rebuild::RebuildReport;

/// Names of the sled trees. Changing one orphans the old tree, so they are fixed.
pub(crate) mod tree {
    pub const RESULTS: &str = "results";
    pub const STAGE_LATEST: &str = "stage_latest";
    pub const ARTIFACTS: &str = "artifacts";
    pub const LINEAGE: &str = "lineage";
    pub const CONSUMERS: &str = "consumers";
    pub const RUNS: &str = "runs";
}

/// sled keeps hot pages in memory; the indexes are small, so a modest cache is plenty.
const INDEX_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A workspace's store and registry. Cheap to clone and safe to share between threads; open it
/// once per process (sled refuses a second open) while holding the `WorkspaceLock`.
#[derive(Clone)]
pub struct Registry {
    pub(crate) layout: Layout,
    pub(crate) db: sled::Db,
    /// fingerprint → StageResult JSON.
    pub(crate) results: sled::Tree,
    /// "manifest\0stage" → fingerprint.
    pub(crate) stage_latest: sled::Tree,
    /// digest → ObjectMeta JSON.
    pub(crate) artifacts: sled::Tree,
    /// digest → LineageEntry JSON (the result that produced it and its input digests).
    pub(crate) lineage: sled::Tree,
    /// "input digest\0consumer digest" → consumer's fingerprint.
    pub(crate) consumers: sled::Tree,
    /// run id → RunRecord JSON.
    pub(crate) runs: sled::Tree,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("root", &self.layout.root)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Open the registry of `workspace_dir`, creating its layout. The caller holds the
    /// `WorkspaceLock`. An index that is missing (deleted, or never built) while the store has
    /// files is rebuilt from them; an index that cannot be opened is an error that says how to
    /// recover (`open_rebuilding`).
    pub fn open(workspace_dir: &Path) -> Result<Registry> {
        let layout = Layout {
            root: workspace_dir.to_path_buf(),
        };
        create_layout(&layout)?;
        let db = open_index(&layout.index())?;
        let registry = Registry::from_db(layout, db)?;
        if registry.index_is_empty() && registry.store_has_files()? {
            registry.rebuild()?;
        }
        Ok(registry)
    }

    /// Open the registry and rebuild every index from the files. An index that cannot be
    /// opened (corrupt) is first moved aside to `registry.sled.corrupt-<time>` for inspection.
    pub fn open_rebuilding(workspace_dir: &Path) -> Result<(Registry, RebuildReport)> {
        let layout = Layout {
            root: workspace_dir.to_path_buf(),
        };
        create_layout(&layout)?;
        let index = layout.index();
        let db = match open_index(&index) {
            Ok(db) => db,
            // A busy index is not corrupt; moving it aside would pull it from under its user.
            Err(e @ RegistryError::IndexBusy { .. }) => return Err(e),
            Err(_) => {
                let stamp = crate::clock::new_run_id();
                let aside = index.with_file_name(format!("registry.sled.corrupt-{stamp}"));
                fs::rename(&index, &aside).at("move the corrupt index aside to", &aside)?;
                open_index(&index)?
            }
        };
        let registry = Registry::from_db(layout, db)?;
        let report = registry.rebuild()?;
        Ok((registry, report))
    }

    pub(crate) fn from_db(layout: Layout, db: sled::Db) -> Result<Registry> {
        let open = |name: &'static str| {
            db.open_tree(name)
                .map_err(RegistryError::index("opening an index tree"))
        };
        Ok(Registry {
            results: open(tree::RESULTS)?,
            stage_latest: open(tree::STAGE_LATEST)?,
            artifacts: open(tree::ARTIFACTS)?,
            lineage: open(tree::LINEAGE)?,
            consumers: open(tree::CONSUMERS)?,
            runs: open(tree::RUNS)?,
            layout,
            db,
        })
    }

    /// The workspace directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// The workspace's shared cache directory (downloads by pin): stages get it through their
    /// context rather than walking the workspace's layout themselves.
    pub fn cache_dir(&self) -> PathBuf {
        self.layout.root.join(crate::layout::CACHE)
    }

    /// Where the runtime writes the per-stage logs of a run: `logs/<run_id>/`.
    pub fn log_dir(&self, run_id: &str) -> PathBuf {
        self.layout.logs().join(run_id)
    }

    fn index_is_empty(&self) -> bool {
        self.results.is_empty() && self.artifacts.is_empty() && self.runs.is_empty()
    }

    fn store_has_files(&self) -> Result<bool> {
        for dir in [
            self.layout.objects(),
            self.layout.records(),
            self.layout.runs(),
        ] {
            if !list_dir(&dir)?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map_err(RegistryError::index("flushing to disk"))?;
        Ok(())
    }
}

fn create_layout(layout: &Layout) -> Result<()> {
    for dir in [
        layout.objects(),
        layout.records(),
        layout.runs(),
        layout.tmp(),
        layout.logs(),
    ] {
        fs::create_dir_all(&dir).at("create directory", &dir)?;
    }
    Ok(())
}

fn open_index(path: &Path) -> Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(INDEX_CACHE_BYTES)
        .open()
        .map_err(|source| match &source {
            // sled reports its own file lock being taken only through the message text.
            sled::Error::Io(e) if e.to_string().contains("could not acquire lock") => {
                RegistryError::IndexBusy {
                    path: path.to_path_buf(),
                }
            }
            _ => RegistryError::IndexOpen {
                path: path.to_path_buf(),
                source,
            },
        })
}

/// Read and decode a JSON value from an index tree.
pub(crate) fn get_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &str,
) -> Result<Option<T>> {
    let Some(bytes) = tree
        .get(key.as_bytes())
        .map_err(RegistryError::index("reading"))?
    else {
        return Ok(None);
    };
    decode(name, key, &bytes).map(Some)
}

pub(crate) fn decode<T: DeserializeOwned>(
    name: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| RegistryError::CorruptIndexEntry {
        tree: name,
        key: key.to_string(),
        source,
    })
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| RegistryError::Encode { what, source })
}

/// Key of `stage_latest`: NUL cannot occur in a path or a stage name.
pub(crate) fn stage_key(manifest: &str, stage: &str) -> String {
    format!("{manifest}\0{stage}")
}

pub(crate) fn split_stage_key(key: &[u8]) -> Option<(String, String)> {
    let key = std::str::from_utf8(key).ok()?;
    let (manifest, stage) = key.split_once('\0')?;
    Some((manifest.to_string(), stage.to_string()))
}

/// Key of `consumers`.
pub(crate) fn consumer_key(input: &str, consumer: &str) -> String {
    format!("{input}\0{consumer}")
}
