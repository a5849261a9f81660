//! Stage results: a record file per result (the truth) and its index entries (results,
//! stage_latest, lineage, consumers), written in that order.

use crate::error::{RegistryError, Result};
use crate::layout::{check_digest, check_fingerprint};
use crate::registry::Registry;
use crate::stage_result::StageResult;

impl Registry {
    /// The committed result for `fingerprint`, if its object is still in the store. A result
    /// whose object is gone (collected, or deleted by hand) is a cache miss.
    pub fn lookup(&self, fingerprint: &str) -> Result<Option<StageResult>> {
        check_fingerprint(fingerprint)?;
        let result = match self.index.result(fingerprint)? {
            Some(r) => Some(r),
            // The record file is the truth; the index may lag it if a commit was interrupted
            // between the file write and the index transaction.
            None => self.files.record(fingerprint)?,
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
                digest: result.digest.to_string(),
                path: self.files.object_dir(&result.digest),
            });
        }
        self.files.write_record(result)?;
        self.index.put_result(result, true)?;
        self.index.flush()
    }

    /// Note that a stage of `manifest` reused the cached result `fingerprint` (committed
    /// earlier, perhaps by another manifest), so that `latest_for_stage` reports it.
    pub fn mark_reused(&self, manifest: &str, stage: &str, fingerprint: &str) -> Result<()> {
        check_fingerprint(fingerprint)?;
        self.index.set_latest(manifest, stage, fingerprint)?;
        self.index.flush()
    }

    /// The most recent result of `stage` in `manifest` whose object is still stored.
    pub fn latest_for_stage(&self, manifest: &str, stage: &str) -> Result<Option<StageResult>> {
        match self.index.latest(manifest, stage)? {
            Some(fp) => self.lookup(&fp),
            None => Ok(None),
        }
    }

    /// Every committed result in the index, by fingerprint (including those whose object is
    /// gone; check `has_object`).
    pub fn results(&self) -> Result<Vec<StageResult>> {
        self.index
            .results()?
            .into_iter()
            .map(|entry| entry.value)
            .collect()
    }
}
