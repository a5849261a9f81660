//! The sled index: what makes lookups fast. Every entry is derived from the files of the
//! workspace ([`crate::files::FileStore`]) and can be rebuilt from them, so this module knows
//! nothing of paths; the file store knows nothing of sled. All of sled — tree names, key
//! encodings, JSON values, transactions — stays in here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use common::Digest;

use crate::error::{RegistryError, Result};
use crate::meta::ObjectMeta;
use crate::run_record::RunRecord;
use crate::stage_result::StageResult;

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

/// Value of the `lineage` tree: which result produced a digest, from which inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LineageEntry {
    pub fingerprint: String,
    pub stage: String,
    pub kind: String,
    /// Input name → digest.
    pub inputs: BTreeMap<String, Digest>,
}

/// One entry of a tree, decoded or with the reason it could not be (`verify` reports those;
/// everyone else stops at the first).
pub(crate) struct Entry<T> {
    pub key: String,
    pub value: Result<T>,
}

/// One entry of `stage_latest`.
pub(crate) struct Latest {
    /// (manifest, stage); None for a key that is not of the form the index writes.
    pub stage: Option<(String, String)>,
    /// The key as text, for messages about a malformed one.
    pub raw_key: String,
    pub fingerprint: String,
}

/// The six trees of the index.
#[derive(Clone)]
pub(crate) struct Index {
    db: sled::Db,
    /// fingerprint → StageResult JSON.
    results: sled::Tree,
    /// "manifest\0stage" → fingerprint.
    stage_latest: sled::Tree,
    /// digest → ObjectMeta JSON.
    artifacts: sled::Tree,
    /// digest → LineageEntry JSON (the result that produced it and its input digests).
    lineage: sled::Tree,
    /// "input digest\0consumer digest" → consumer's fingerprint.
    consumers: sled::Tree,
    /// run id → RunRecord JSON.
    runs: sled::Tree,
}

impl Index {
    /// Open (or create) the index at `path`. A lock held by another process is `IndexBusy`;
    /// anything else that stops sled from opening it is `IndexOpen` (corrupt, usually).
    pub fn open(path: &Path) -> Result<Index> {
        let db = sled::Config::new()
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
            })?;
        Index::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Index> {
        let open = |name: &'static str| {
            db.open_tree(name)
                .map_err(RegistryError::index("opening an index tree"))
        };
        Ok(Index {
            results: open(tree::RESULTS)?,
            stage_latest: open(tree::STAGE_LATEST)?,
            artifacts: open(tree::ARTIFACTS)?,
            lineage: open(tree::LINEAGE)?,
            consumers: open(tree::CONSUMERS)?,
            runs: open(tree::RUNS)?,
            db,
        })
    }

    /// An index in a temporary database that sled deletes when it is dropped: for a reader
    /// that rebuilds a workspace's index without touching the workspace (`open_snapshot`).
    pub fn temporary() -> Result<Index> {
        // The indexes of a workspace are small: a modest page cache.
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(RegistryError::index("opening a temporary index"))?;
        Index::from_db(db)
    }

    /// True when nothing was ever indexed (or the index was deleted and recreated).
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.artifacts.is_empty() && self.runs.is_empty()
    }

    pub fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map_err(RegistryError::index("flushing to disk"))?;
        Ok(())
    }

    /// Drop every entry of every tree (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        for t in [
            &self.results,
            &self.stage_latest,
            &self.artifacts,
            &self.lineage,
            &self.consumers,
            &self.runs,
        ] {
            t.clear()
                .map_err(RegistryError::index("clearing the index"))?;
        }
        Ok(())
    }

    // --- stage results ---

    pub fn result(&self, fingerprint: &str) -> Result<Option<StageResult>> {
        get_json(&self.results, tree::RESULTS, fingerprint)
    }

    /// Every indexed result, in fingerprint order.
    pub fn results(&self) -> Result<Vec<Entry<StageResult>>> {
        entries(self.results.iter(), tree::RESULTS, "listing results")
    }

    /// Index `result` in every tree it belongs to, atomically (all trees or none); with
    /// `set_latest` it also becomes the latest result of its stage.
    pub fn put_result(&self, result: &StageResult, set_latest: bool) -> Result<()> {
        let value = encode(result, "stage result")?;
        let lineage = encode(
            &LineageEntry {
                fingerprint: result.fingerprint.clone(),
                stage: result.stage.clone(),
                kind: result.kind.clone(),
                inputs: result.inputs.clone(),
            },
            "lineage entry",
        )?;
        let latest_key = stage_key(&result.manifest, &result.stage);
        let fp = result.fingerprint.as_bytes();
        let digest = result.digest.as_bytes();
        let outcome: Result<(), TransactionError<sled::Error>> = (
            &self.results,
            &self.stage_latest,
            &self.lineage,
            &self.consumers,
        )
            .transaction(|(results, latest, lineage_tree, consumers)| {
                results.insert(fp, value.as_slice())?;
                if set_latest {
                    latest.insert(latest_key.as_bytes(), fp)?;
                }
                lineage_tree.insert(digest, lineage.as_slice())?;
                for input in result.inputs.values() {
                    consumers.insert(consumer_key(input, &result.digest).as_bytes(), fp)?;
                }
                Ok::<(), ConflictableTransactionError<sled::Error>>(())
            });
        outcome.map_err(|e| {
            let source = match e {
                TransactionError::Abort(e) | TransactionError::Storage(e) => e,
            };
            RegistryError::Index {
                action: "committing a stage result",
                source,
            }
        })
    }

    /// Forget a result; its stage's latest pointer goes too when it pointed at this result.
    pub fn remove_result(&self, r: &StageResult) -> Result<()> {
        self.results
            .remove(r.fingerprint.as_bytes())
            .map_err(RegistryError::index("removing a result"))?;
        let key = stage_key(&r.manifest, &r.stage);
        let latest = self
            .stage_latest
            .get(key.as_bytes())
            .map_err(RegistryError::index("reading the latest result of a stage"))?;
        if latest.as_deref() == Some(r.fingerprint.as_bytes()) {
            self.stage_latest
                .remove(key.as_bytes())
                .map_err(RegistryError::index(
                    "removing the latest result of a stage",
                ))?;
        }
        Ok(())
    }

    // --- the latest result of each stage ---

    pub fn set_latest(&self, manifest: &str, stage: &str, fingerprint: &str) -> Result<()> {
        self.stage_latest
            .insert(
                stage_key(manifest, stage).as_bytes(),
                fingerprint.as_bytes(),
            )
            .map_err(RegistryError::index(
                "recording the latest result of a stage",
            ))?;
        Ok(())
    }

    /// The fingerprint of the latest result of `stage` in `manifest`.
    pub fn latest(&self, manifest: &str, stage: &str) -> Result<Option<String>> {
        let fp = self
            .stage_latest
            .get(stage_key(manifest, stage).as_bytes())
            .map_err(RegistryError::index("reading the latest result of a stage"))?;
        Ok(fp.and_then(|fp| String::from_utf8(fp.to_vec()).ok()))
    }

    /// Every (manifest, stage) → fingerprint pointer.
    pub fn latest_all(&self) -> Result<Vec<Latest>> {
        let mut out = Vec::new();
        for item in self.stage_latest.iter() {
            let (key, fp) = item.map_err(RegistryError::index("listing stages"))?;
            out.push(Latest {
                stage: split_stage_key(&key),
                raw_key: String::from_utf8_lossy(&key).into_owned(),
                fingerprint: String::from_utf8_lossy(&fp).into_owned(),
            });
        }
        Ok(out)
    }

    // --- artifacts ---

    pub fn put_artifact(&self, meta: &ObjectMeta) -> Result<()> {
        self.artifacts
            .insert(meta.digest.as_bytes(), encode(meta, "object metadata")?)
            .map_err(RegistryError::index("recording an artifact"))?;
        Ok(())
    }

    pub fn remove_artifact(&self, digest: &str) -> Result<()> {
        self.artifacts
            .remove(digest.as_bytes())
            .map_err(RegistryError::index("removing an artifact"))?;
        Ok(())
    }

    pub fn artifacts(&self) -> Result<Vec<Entry<ObjectMeta>>> {
        entries(self.artifacts.iter(), tree::ARTIFACTS, "listing artifacts")
    }

    // --- lineage ---

    /// Which result produced `digest`, from which inputs.
    pub fn lineage(&self, digest: &str) -> Result<Option<LineageEntry>> {
        get_json(&self.lineage, tree::LINEAGE, digest)
    }

    pub fn lineage_entries(&self) -> Result<Vec<Entry<LineageEntry>>> {
        entries(self.lineage.iter(), tree::LINEAGE, "listing lineage")
    }

    /// (consumer digest, consumer fingerprint) of every artifact built from `digest`, sorted
    /// by consumer digest.
    pub fn consumers(&self, digest: &str) -> Result<Vec<(Digest, String)>> {
        let prefix = format!("{digest}\0");
        let mut out = Vec::new();
        for item in self.consumers.scan_prefix(prefix.as_bytes()) {
            let (key, fp) = item.map_err(RegistryError::index("listing consumers"))?;
            let key = String::from_utf8_lossy(&key);
            // Keys are written from digests; one that does not parse is damage `verify` and
            // `rebuild` deal with, not a consumer.
            if let Ok(consumer) = Digest::parse(&key[prefix.len()..]) {
                out.push((consumer, String::from_utf8_lossy(&fp).into_owned()));
            }
        }
        Ok(out)
    }

    /// Remove the lineage entry of an object being collected, and its consumer edges both
    /// ways (as a consumer of its inputs, and as the input of others).
    pub fn forget_lineage(&self, digest: &str) -> Result<()> {
        if let Some(entry) = self.lineage(digest)? {
            for input in entry.inputs.values() {
                self.consumers
                    .remove(consumer_key(input, digest).as_bytes())
                    .map_err(RegistryError::index("removing a consumer edge"))?;
            }
        }
        self.lineage
            .remove(digest.as_bytes())
            .map_err(RegistryError::index("removing a lineage entry"))?;
        let prefix = format!("{digest}\0");
        for item in self.consumers.scan_prefix(prefix.as_bytes()) {
            let (key, _) = item.map_err(RegistryError::index("listing consumers"))?;
            self.consumers
                .remove(key)
                .map_err(RegistryError::index("removing a consumer edge"))?;
        }
        Ok(())
    }

    // --- runs ---

    pub fn put_run(&self, run: &RunRecord) -> Result<()> {
        self.runs
            .insert(run.id.as_bytes(), encode(run, "run record")?)
            .map_err(RegistryError::index("recording a run"))?;
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        get_json(&self.runs, tree::RUNS, id)
    }

    /// Every run, newest first: run ids start with their UTC start time, so key order is
    /// start order.
    pub fn runs(&self) -> Result<Vec<Entry<RunRecord>>> {
        entries(self.runs.iter().rev(), tree::RUNS, "listing runs")
    }
}

/// Where the index of a workspace lives, beside the files it indexes.
pub(crate) fn index_path(root: &Path) -> PathBuf {
    root.join(crate::layout::INDEX)
}

fn entries<T: DeserializeOwned>(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    name: &'static str,
    action: &'static str,
) -> Result<Vec<Entry<T>>> {
    let mut out = Vec::new();
    for item in iter {
        let (key, value) = item.map_err(RegistryError::index(action))?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let value = decode(name, &key, &value);
        out.push(Entry { key, value });
    }
    Ok(out)
}

/// Read and decode a JSON value from an index tree.
fn get_json<T: DeserializeOwned>(
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

fn decode<T: DeserializeOwned>(name: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| RegistryError::CorruptIndexEntry {
        tree: name,
        key: key.to_string(),
        source,
    })
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| RegistryError::Encode { what, source })
}

/// Key of `stage_latest`: NUL cannot occur in a path or a stage name.
fn stage_key(manifest: &str, stage: &str) -> String {
    format!("{manifest}\0{stage}")
}

fn split_stage_key(key: &[u8]) -> Option<(String, String)> {
    let key = std::str::from_utf8(key).ok()?;
    let (manifest, stage) = key.split_once('\0')?;
    Some((manifest.to_string(), stage.to_string()))
}

/// Key of `consumers`.
fn consumer_key(input: &str, consumer: &str) -> String {
    format!("{input}\0{consumer}")
}

#[cfg(test)]
impl Index {
    /// Tests damage the index to check that verify and rebuild notice.
    pub fn clear_results(&self) {
        self.results.clear().expect("clear results");
    }
}
