//! The content-addressed object store: `objects/<aa>/<digest>/` plus `<digest>.json`.
//!
//! Commit protocol of `store`: hash the staged output, make its files read-only, write the
//! metadata file (atomically), then rename the directory into place. The rename is the commit
//! point: an object exists exactly when its directory does. A crash before it leaves the
//! staging dir (and possibly a metadata file with no directory, which `verify` reports as a
//! leftover and `gc` removes); never a partial directory under a digest. Only then is the
//! object indexed.

use std::fs;
use std::path::{Path, PathBuf};

use common::Digest;

use crate::clock::now_rfc3339;
use crate::error::{IoContext, RegistryError, Result};
use crate::files::{json_files_in_shards, FileStore};
use crate::fsutil::{
    make_files_read_only, read_json, remove_file_if_exists, remove_tree, sync_dir, write_json,
};
use crate::layout::check_digest;
use crate::merkle::hash_dir;
use crate::meta::{ObjectMeta, ProducedBy, OBJECT_META_VERSION};
use crate::registry::Registry;
use crate::staging::Staging;

pub(crate) const META_HINT: &str =
    "the object metadata is damaged; run `binarylm verify` to see which objects are affected";

impl FileStore {
    /// Commit the directory `out` as an object (the protocol above) and return its metadata.
    /// Identical content already in the store is kept, with its first producer.
    pub fn put_object(&self, out: &Path, produced_by: ProducedBy) -> Result<ObjectMeta> {
        let tree = hash_dir(out)?;
        let digest = tree.digest.clone();
        if self.object_dir(&digest).is_dir() {
            if let Some(meta) = self.object_meta(&digest)? {
                return Ok(meta);
            }
        }
        let meta = ObjectMeta {
            version: OBJECT_META_VERSION,
            total_size: tree.total_size(),
            digest,
            files: tree.files,
            created_at: now_rfc3339(),
            produced_by,
        };
        self.commit_dir(out, &meta)?;
        Ok(meta)
    }

    /// Commit the directory `dir` as object `meta.digest` after checking that its content
    /// hashes to that digest and matches the listing in `meta`; on a mismatch nothing is stored
    /// and `dir` is removed. Returns None when the object was already in the store.
    pub fn import_object(&self, dir: &Path, meta: &ObjectMeta) -> Result<Option<ObjectMeta>> {
        let digest = meta.digest.as_str();
        check_digest(digest)?;
        if self.has_object(digest) {
            remove_tree(dir)?;
            return Ok(None);
        }
        let tree = hash_dir(dir)?;
        if tree.digest != digest || tree.files != meta.files {
            remove_tree(dir)?;
            return Err(RegistryError::DigestMismatch {
                digest: digest.to_string(),
                found: tree.digest.to_string(),
            });
        }
        let mut meta = meta.clone();
        meta.total_size = tree.total_size();
        self.commit_dir(dir, &meta)?;
        Ok(Some(meta))
    }

    /// Read-only files, metadata, then the rename (the commit point). A rename that fails
    /// because another thread of this process committed the same content meanwhile is success.
    fn commit_dir(&self, dir: &Path, meta: &ObjectMeta) -> Result<()> {
        // Read-only before the rename, so the object is never writable under its digest.
        make_files_read_only(dir)?;
        write_json(
            &self.layout.object_meta(&meta.digest),
            meta,
            "object metadata",
        )?;
        let dest = self.object_dir(&meta.digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).at("create directory", parent)?;
        }
        if let Err(e) = fs::rename(dir, &dest) {
            if !dest.is_dir() {
                return Err(RegistryError::io("move the artifact into", &dest, e));
            }
            remove_tree(dir)?;
        }
        if let Some(parent) = dest.parent() {
            sync_dir(parent);
        }
        Ok(())
    }

    /// The directory of an object (whether or not it exists).
    pub fn object_dir(&self, digest: &str) -> PathBuf {
        self.layout.object_dir(digest)
    }

    /// The metadata file of an object (whether or not it exists).
    pub fn object_meta_path(&self, digest: &str) -> PathBuf {
        self.layout.object_meta(digest)
    }

    pub fn has_object(&self, digest: &str) -> bool {
        check_digest(digest).is_ok() && self.object_dir(digest).is_dir()
    }

    /// The metadata file of an object, read (None when there is no such file).
    pub fn object_meta(&self, digest: &str) -> Result<Option<ObjectMeta>> {
        read_json(&self.object_meta_path(digest), "object metadata", META_HINT)
    }

    /// Every metadata file under `objects/`, including those of a store that never committed.
    pub fn object_meta_files(&self) -> Result<Vec<PathBuf>> {
        json_files_in_shards(&self.layout.objects())
    }

    /// All digests in the store (objects whose directory exists), sorted.
    pub fn object_digests(&self) -> Result<Vec<Digest>> {
        let objects = self.layout.objects();
        let mut digests = Vec::new();
        for shard in crate::fsutil::list_dir(&objects)? {
            let shard_dir = objects.join(&shard);
            if !shard_dir.is_dir() {
                continue;
            }
            for name in crate::fsutil::list_dir(&shard_dir)? {
                if let (true, Ok(digest)) = (shard_dir.join(&name).is_dir(), Digest::parse(&name)) {
                    digests.push(digest);
                }
            }
        }
        Ok(digests)
    }

    /// Remove an object (directory, then metadata). The directory is first renamed into
    /// `tmp/` so that no partially deleted tree ever sits under a digest.
    pub fn remove_object(&self, digest: &str) -> Result<()> {
        check_digest(digest)?;
        let dir = self.object_dir(digest);
        if dir.exists() {
            let trash = self
                .layout
                .tmp()
                .join(format!(".trash-{digest}-{}", crate::clock::new_run_id()));
            fs::rename(&dir, &trash).at("move an object out of the store to", &trash)?;
            remove_tree(&trash)?;
        }
        remove_file_if_exists(&self.object_meta_path(digest))
    }
}

impl Registry {
    /// Move a stage's output into the store and return its digest. Identical content already
    /// in the store is kept (with its first producer) and the new copy discarded. The staging
    /// directory is removed in both cases.
    pub fn store(&self, staging: Staging, produced_by: ProducedBy) -> Result<Digest> {
        let out = staging.out_dir();
        if !out.is_dir() {
            return Err(RegistryError::MissingOutput { path: out });
        }
        let meta = self.files.put_object(&out, produced_by)?;
        self.index.put_artifact(&meta)?;
        self.index.flush()?;
        self.files.discard(staging)?;
        Ok(meta.digest)
    }

    /// The directory of an object (whether or not it exists).
    pub fn object_path(&self, digest: &str) -> PathBuf {
        self.files.object_dir(digest)
    }

    /// Whether the store holds an object with this digest.
    pub fn has_object(&self, digest: &str) -> bool {
        self.files.has_object(digest)
    }

    /// Metadata of a stored object; None when the object is not in the store.
    pub fn object_meta(&self, digest: &str) -> Result<Option<ObjectMeta>> {
        check_digest(digest)?;
        if !self.files.object_dir(digest).is_dir() {
            return Ok(None);
        }
        self.files.object_meta(digest)
    }

    /// All digests in the store (objects whose directory exists), sorted.
    pub fn object_digests(&self) -> Result<Vec<Digest>> {
        self.files.object_digests()
    }

    /// Remove an object from the store and the index.
    pub(crate) fn remove_object(&self, digest: &str) -> Result<()> {
        self.files.remove_object(digest)?;
        self.index.remove_artifact(digest)
    }
}
