//! A remote in a directory on a shared file system (NFS, a mounted share, another disk).
//!
//! object_store's local backend writes each file to a staging name beside its destination and
//! renames it into place when complete, so a killed writer leaves at most a staging file
//! (`<name>#<n>`), never a partial file under a real key; readers and listings skip staging
//! names.

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::error::{RemoteError, Result};

pub(crate) fn open(name: &str, dir: &Path) -> Result<Arc<dyn ObjectStore>> {
    if !dir.is_dir() {
        return Err(RemoteError::MissingDir {
            name: name.to_string(),
            path: dir.to_path_buf(),
        });
    }
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|source| RemoteError::Setup {
            name: name.to_string(),
            location: dir.display().to_string(),
            source: Box::new(source),
        })?
        // Blobs are written once and never appended to; dropping a key cleans up its folders.
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}
