//! The content-addressed object store: `objects/<aa>/<digest>/` plus `<digest>.json`.
//!
//! Commit protocol of `store`: hash the staged output, make its files read-only, write the
//! metadata file (atomically), then rename the directory into place. The rename is the commit
//! point: an object exists exactly when its directory does. A crash before it leaves the
//! staging dir (and possibly a metadata file with no directory, which `verify` reports as a
//! leftover and `gc` removes); never a partial directory under a digest.

use std::fs;
use std::path::PathBuf;

use crate::clock::now_rfc3339;
use crate::error::{IoContext, RegistryError, Result};
use crate::fsutil::{
    make_files_read_only, read_json, remove_file_if_exists, remove_tree, sync_dir, write_json,
};
use crate::layout::check_digest;
use crate::merkle::hash_dir;
use crate::meta::{ObjectMeta, ProducedBy, OBJECT_META_VERSION};
use crate::registry::{encode, Registry};
use crate::staging::Staging;

pub(crate) const META_HINT: &str =
    "the object metadata is damaged; run `binarylm verify` to see which objects are affected";

impl Registry {
    /// Move a stage's output into the store and return its digest. Identical content already
    /// in the store is kept (with its first producer) and the new copy discarded. The staging
    /// directory is removed in both cases.
    pub fn store(&self, staging: Staging, produced_by: ProducedBy) -> Result<String> {
        let out = staging.out_dir();
        if !out.is_dir() {
            return Err(RegistryError::MissingOutput { path: out });
        }
        let tree = hash_dir(&out)?;
        let digest = tree.digest.clone();
        let dest = self.layout.object_dir(&digest);
        let meta_path = self.layout.object_meta(&digest);

        let meta = if dest.is_dir() {
            self.existing_meta(&digest)?
        } else {
            None
        };
        let meta = match meta {
            Some(meta) => meta,
            None => {
                let meta = ObjectMeta {
                    version: OBJECT_META_VERSION,
                    total_size: tree.total_size(),
                    digest: digest.clone(),
                    files: tree.files,
                    created_at: now_rfc3339(),
                    produced_by,
                };
                // Read-only before the rename, so the object is never writable under its digest.
                make_files_read_only(&out)?;
                write_json(&meta_path, &meta, "object metadata")?;
                if !dest.is_dir() {
                    if let Err(e) = fs::rename(&out, &dest) {
                        // Another thread of this process may have stored the same content
                        // between the check and the rename; then there is nothing to do.
                        if !dest.is_dir() {
                            return Err(RegistryError::io("move the artifact into", &dest, e));
                        }
                    }
                    if let Some(parent) = dest.parent() {
                        sync_dir(parent);
                    }
                }
                meta
            }
        };

        self.artifacts
            .insert(digest.as_bytes(), encode(&meta, "object metadata")?)
            .map_err(RegistryError::index("recording an artifact"))?;
        self.flush()?;

        remove_tree(staging.path())?;
        remove_file_if_exists(&self.layout.staging_owner(staging.fingerprint()))?;
        Ok(digest)
    }

    /// The directory of an object (whether or not it exists).
    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.layout.object_dir(digest)
    }

    /// Whether the store holds an object with this digest.
    pub fn has_object(&self, digest: &str) -> bool {
        check_digest(digest).is_ok() && self.layout.object_dir(digest).is_dir()
    }

    /// Metadata of a stored object; None when the object is not in the store.
    pub fn object_meta(&self, digest: &str) -> Result<Option<ObjectMeta>> {
        check_digest(digest)?;
        if !self.layout.object_dir(digest).is_dir() {
            return Ok(None);
        }
        self.existing_meta(digest)
    }

    fn existing_meta(&self, digest: &str) -> Result<Option<ObjectMeta>> {
        read_json(
            &self.layout.object_meta(digest),
            "object metadata",
            META_HINT,
        )
    }

    /// All digests in the store (objects whose directory exists), sorted.
    pub fn object_digests(&self) -> Result<Vec<String>> {
        let objects = self.layout.objects();
        let mut digests = Vec::new();
        for shard in crate::fsutil::list_dir(&objects)? {
            let shard_dir = objects.join(&shard);
            if !shard_dir.is_dir() {
                continue;
            }
            for name in crate::fsutil::list_dir(&shard_dir)? {
                if shard_dir.join(&name).is_dir() && check_digest(&name).is_ok() {
                    digests.push(name);
                }
            }
        }
        Ok(digests)
    }

    /// Remove an object from the store (directory, then metadata). The directory is first
    /// renamed into `tmp/` so that no partially deleted tree ever sits under a digest.
    pub(crate) fn remove_object(&self, digest: &str) -> Result<()> {
        check_digest(digest)?;
        let dir = self.layout.object_dir(digest);
        if dir.exists() {
            let trash = self
                .layout
                .tmp()
                .join(format!(".trash-{digest}-{}", crate::clock::new_run_id()));
            fs::rename(&dir, &trash).at("move an object out of the store to", &trash)?;
            remove_tree(&trash)?;
        }
        remove_file_if_exists(&self.layout.object_meta(digest))?;
        self.artifacts
            .remove(digest.as_bytes())
            .map_err(RegistryError::index("removing an artifact"))?;
        Ok(())
    }
}
