//! An open remote and the few operations push and pull are made of. Every read is checked by
//! its caller against what its key promises; every write is atomic on both backends.

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Location, Resolved};
use crate::error::{RemoteError, Result};
use crate::progress::Progress;

/// Chunk size for reading local files into uploads.
const CHUNK: usize = 4 << 20;

/// An open remote cache.
#[derive(Clone)]
pub struct Remote {
    pub name: String,
    /// Where it is, for messages.
    pub location: String,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({} at {})", self.name, self.location)
    }
}

impl Remote {
    /// Open the remote `resolved` names. A directory must exist; a bucket is first contacted by
    /// the first transfer.
    pub fn open(resolved: &Resolved) -> Result<Remote> {
        let store = match &resolved.location {
            Location::Dir(dir) => crate::dir::open(&resolved.name, dir)?,
            Location::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => crate::s3::open(
                &resolved.name,
                bucket,
                prefix,
                endpoint.as_deref(),
                region.as_deref(),
            )?,
        };
        let location = match &resolved.location {
            // `../cache` from a manifest reads better as the directory it is.
            Location::Dir(dir) => dir
                .canonicalize()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| dir.display().to_string()),
            other => other.to_string(),
        };
        Ok(Remote {
            name: resolved.name.clone(),
            location,
            store,
        })
    }

    fn store_error(
        &self,
        action: &'static str,
        key: &Path,
        source: object_store::Error,
    ) -> RemoteError {
        RemoteError::Store {
            name: self.name.clone(),
            location: self.location.clone(),
            action,
            key: key.to_string(),
            source: Box::new(source),
        }
    }

    pub(crate) fn tampered(&self, key: &Path, detail: impl Into<String>) -> RemoteError {
        RemoteError::Tampered {
            name: self.name.clone(),
            key: key.to_string(),
            detail: detail.into(),
        }
    }

    /// Whether `key` holds a complete file.
    pub(crate) async fn exists(&self, key: &Path) -> Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.store_error("look up", key, e)),
        }
    }

    /// The names directly under the folder `prefix` (files only).
    pub(crate) async fn list_names(&self, prefix: &Path) -> Result<Vec<String>> {
        let listing = match self.store.list_with_delimiter(Some(prefix)).await {
            Ok(l) => l,
            // A folder nothing was ever written to (the directory backend has no such folder).
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(self.store_error("list", prefix, e)),
        };
        let mut names: Vec<String> = listing
            .objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// A JSON document; None when the key is absent. Unparsable JSON is refused as tampered.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, key: &Path) -> Result<Option<T>> {
        let bytes = match self.store.get(key).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| self.store_error("read", key, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error("read", key, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.tampered(key, format!("it is not the JSON binarylm writes ({e})")))
    }

    /// Write a JSON document (one atomic PUT).
    pub(crate) async fn put_json<T: Serialize>(&self, key: &Path, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| RemoteError::Task(format!("encoding {key}: {e}")))?;
        bytes.push(b'\n');
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .map_err(|e| self.store_error("write", key, e))?;
        Ok(())
    }

    /// Upload a local file to `key`, streaming: small files go in one PUT, large ones as a
    /// multipart upload that becomes visible only when complete.
    pub(crate) async fn put_file(
        &self,
        key: &Path,
        path: &FsPath,
        progress: &Progress,
    ) -> Result<()> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| RemoteError::io("open", path, e))?;
        let mut writer = BufWriter::new(self.store.clone(), key.clone());
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(RemoteError::io("read", path, e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.write_all(&buf[..n]).await {
                let _ = writer.abort().await;
                return Err(self.store_error(
                    "write",
                    key,
                    object_store::Error::Generic {
                        store: "upload",
                        source: Box::new(e),
                    },
                ));
            }
            progress.inc(n as u64);
        }
        writer.shutdown().await.map_err(|e| {
            self.store_error(
                "finish writing",
                key,
                object_store::Error::Generic {
                    store: "upload",
                    source: Box::new(e),
                },
            )
        })
    }

    /// Download `key` into `dest` (a temp name the caller renames), hashing as it streams.
    /// Returns the BLAKE3 hex of what arrived and its size; the caller compares them with what
    /// the key promises.
    pub(crate) async fn get_file(
        &self,
        key: &Path,
        dest: &FsPath,
        progress: &Progress,
    ) -> Result<(String, u64)> {
        let result = match self.store.get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(self.tampered(key, "a file its object lists is missing from the remote"))
            }
            Err(e) => return Err(self.store_error("read", key, e)),
        };
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| RemoteError::io("create", dest, e))?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.store_error("read", key, e))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| RemoteError::io("write", dest, e))?;
            progress.inc(chunk.len() as u64);
        }
        out.sync_all()
            .await
            .map_err(|e| RemoteError::io("sync", dest, e))?;
        Ok((hasher.finalize().to_hex().to_string(), size))
    }
}
