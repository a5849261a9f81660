//! Bringing in an object and its stage record from outside the workspace (the remote cache).
//!
//! Nothing from outside is trusted: the directory handed to `import_object` is hashed here,
//! and only content whose digest is the one asked for enters the store. The commit protocol is
//! the store's: read-only files, metadata file, then the rename of the directory (the commit
//! point), so an interrupted import leaves at most a temp dir, never a partial object.

use std::fs;
use std::path::Path;

use crate::error::{RegistryError, Result};
use crate::layout::{check_digest, check_fingerprint};
use crate::meta::ObjectMeta;
use crate::registry::Registry;
use crate::stage_result::StageResult;

impl Registry {
    /// A fresh directory under the workspace's `tmp/` for assembling an incoming object. It is
    /// on the store's file system, so the final rename cannot cross devices. `key` names it
    /// (an interrupted transfer of the same object finds its finished files again); it holds
    /// no owner marker, so `gc` removes it once no transfer is running (the workspace lock
    /// keeps `gc` out while one is).
    pub fn incoming_dir(&self, key: &str) -> Result<std::path::PathBuf> {
        check_digest(key)?;
        let dir = self.files.tmp().join(format!("incoming-{key}"));
        fs::create_dir_all(&dir).map_err(|e| RegistryError::io("create directory", &dir, e))?;
        Ok(dir)
    }

    /// Move the directory `dir` into the store as object `meta.digest`, after checking that its
    /// content hashes to that digest and matches the listing in `meta`. On a mismatch nothing
    /// is stored and `dir` is removed. An object already in the store is kept as it is.
    pub fn import_object(&self, dir: &Path, meta: &ObjectMeta) -> Result<()> {
        if let Some(meta) = self.files.import_object(dir, meta)? {
            self.index.put_artifact(&meta)?;
            self.index.flush()?;
        }
        Ok(())
    }

    /// Record a stage result produced elsewhere (its object must already be in the store) as
    /// the result of `stage` of `manifest` (this workspace's manifest path), which it becomes
    /// the latest of, so `status` and `show` find it. The names are this workspace's: the
    /// fingerprint does not include a stage's name, so the producer may have called it
    /// otherwise. A result already recorded for the same fingerprint is kept as it is (only
    /// marked latest).
    pub fn import_result(
        &self,
        result: &StageResult,
        manifest: &str,
        stage: &str,
    ) -> Result<StageResult> {
        check_fingerprint(&result.fingerprint)?;
        if let Some(existing) = self.lookup(&result.fingerprint)? {
            self.mark_reused(manifest, stage, &result.fingerprint)?;
            return Ok(existing);
        }
        let mut local = result.clone();
        local.manifest = manifest.to_string();
        local.stage = stage.to_string();
        self.commit(&local)?;
        Ok(local)
    }

    /// A committed stage result, whether or not its object is still stored (`lookup` only
    /// returns results whose object is there).
    pub fn result_record(&self, fingerprint: &str) -> Result<Option<StageResult>> {
        check_fingerprint(fingerprint)?;
        match self.index.result(fingerprint)? {
            Some(r) => Ok(Some(r)),
            None => self.files.record(fingerprint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::hash_dir;
    use crate::meta::{ProducedBy, OBJECT_META_VERSION};

    fn meta_for(dir: &Path) -> ObjectMeta {
        let tree = hash_dir(dir).expect("hash");
        ObjectMeta {
            version: OBJECT_META_VERSION,
            total_size: tree.total_size(),
            digest: tree.digest,
            files: tree.files,
            created_at: "2026-01-01T00:00:00Z".into(),
            produced_by: ProducedBy {
                stage: "s".into(),
                fingerprint: "ab".repeat(32),
                pipeline: "p".into(),
            },
        }
    }

    #[test]
    fn imports_verified_content_and_refuses_a_mismatch() {
        let ws = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(ws.path()).expect("open");
        let good = reg.incoming_dir(&"cd".repeat(32)).expect("incoming");
        fs::write(good.join("a.txt"), "alpha").expect("write");
        let meta = meta_for(&good);

        // Same listing claimed, different bytes: refused, nothing stored, temp gone.
        let bad = reg.incoming_dir(&"ef".repeat(32)).expect("incoming");
        fs::write(bad.join("a.txt"), "alphA").expect("write");
        let err = reg.import_object(&bad, &meta).expect_err("tampered");
        assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
        assert!(!reg.has_object(&meta.digest));
        assert!(!bad.exists());

        reg.import_object(&good, &meta).expect("import");
        assert!(reg.has_object(&meta.digest));
        assert_eq!(
            reg.object_meta(&meta.digest).expect("meta"),
            Some(meta.clone())
        );
        assert!(reg.verify().expect("verify").is_clean());
    }
}
