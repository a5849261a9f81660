//! Stage results: `records/<fp[0..2]>/<fingerprint>.json` plus their indexes (results,
//! stage_latest, lineage, consumers), kept in step by one sled transaction per commit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::error::{RegistryError, Result};
use crate::fsutil::{read_json, write_json};
use crate::layout::{check_digest, check_fingerprint};
use crate::registry::{consumer_key, encode, get_json, stage_key, tree, Registry};
use crate::stage_result::StageResult;

pub(crate) const RECORD_HINT: &str =
    "the stage record is damaged; delete it to forget that result (the stage will run again)";

/// Value of the `lineage` index: which result produced a digest, from which inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LineageEntry {
    pub fingerprint: String,
    pub stage: String,
    pub kind: String,
    /// Input name → digest.
    pub inputs: BTreeMap<String, String>,
}

impl Registry {
    /// The committed result for `fingerprint`, if its object is still in the store. A result
    /// whose object is gone (collected, or deleted by hand) is a cache miss.
    pub fn lookup(&self, fingerprint: &str) -> Result<Option<StageResult>> {
        check_fingerprint(fingerprint)?;
        let result = match get_json::<StageResult>(&self.results, tree::RESULTS, fingerprint)? {
            Some(r) => Some(r),
            // The record file is the truth; the index may lag it if a commit was interrupted
            // between the file write and the index transaction.
            None => read_json(
                &self.layout.record(fingerprint),
                "stage record",
                RECORD_HINT,
            )?,
        };
        Ok(result.filter(|r| self.has_object(&r.digest)))
    }

    /// Record a finished stage: its record file (atomically), then one index transaction,
    /// then a flush. Its output must already be in the store.
    pub fn commit(&self, result: &StageResult) -> Result<()> {
        check_fingerprint(&result.fingerprint)?;
        check_digest(&result.digest)?;
        for digest in result.inputs.values() {
            check_digest(digest)?;
        }
        if !self.has_object(&result.digest) {
            return Err(RegistryError::ObjectMissing {
                stage: result.stage.clone(),
                fingerprint: result.fingerprint.clone(),
                digest: result.digest.clone(),
                path: self.layout.object_dir(&result.digest),
            });
        }
        write_json(
            &self.layout.record(&result.fingerprint),
            result,
            "stage record",
        )?;
        self.index_result(result, true)?;
        self.flush()
    }

    /// Note that a stage of `manifest` reused the cached result `fingerprint` (committed
    /// earlier, perhaps by another manifest), so that `latest_for_stage` reports it.
    pub fn mark_reused(&self, manifest: &str, stage: &str, fingerprint: &str) -> Result<()> {
        check_fingerprint(fingerprint)?;
        self.stage_latest
            .insert(
                stage_key(manifest, stage).as_bytes(),
                fingerprint.as_bytes(),
            )
            .map_err(RegistryError::index(
                "recording the latest result of a stage",
            ))?;
        self.flush()
    }

    /// The most recent result of `stage` in `manifest` whose object is still stored.
    pub fn latest_for_stage(&self, manifest: &str, stage: &str) -> Result<Option<StageResult>> {
        let Some(fp) = self
            .stage_latest
            .get(stage_key(manifest, stage).as_bytes())
            .map_err(RegistryError::index("reading the latest result of a stage"))?
        else {
            return Ok(None);
        };
        match std::str::from_utf8(&fp) {
            Ok(fp) => self.lookup(fp),
            Err(_) => Ok(None),
        }
    }

    /// Every committed result in the index, by fingerprint (including those whose object is
    /// gone; check `has_object`).
    pub fn results(&self) -> Result<Vec<StageResult>> {
        let mut out = Vec::new();
        for item in self.results.iter() {
            let (key, value) = item.map_err(RegistryError::index("listing results"))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            out.push(crate::registry::decode(tree::RESULTS, &key, &value)?);
        }
        Ok(out)
    }

    /// Update every index for `result` atomically (all trees or none).
    pub(crate) fn index_result(&self, result: &StageResult, set_latest: bool) -> Result<()> {
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
}
