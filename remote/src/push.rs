//! `push`: send stage results and their objects to a remote. Order is what makes a push safe
//! to interrupt and to run twice at once: blobs first, then each object's metadata (its commit
//! point on the remote), then the stage records that name it. A re-run skips every key that is
//! already complete, so an interrupted push resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use registry::{Digest, FileEntry, ObjectMeta, Registry, StageResult};

use crate::client::Remote;
use crate::error::{RemoteError, Result};
use crate::keys;
use crate::progress::Progress;
use crate::Transfer;

/// Files sent at once.
const PARALLEL: usize = 8;

/// One blob to send: the local file and the stage it is for (for messages).
struct Upload {
    entry: FileEntry,
    path: PathBuf,
    stage: String,
}

/// Push `results` (and their objects) to `remote`.
pub async fn push(
    remote: &Remote,
    registry: &Registry,
    results: &[StageResult],
    quiet: bool,
) -> Result<Transfer> {
    let mut transfer = Transfer::default();
    // Objects to send, by digest (two stages may share one).
    let mut objects: BTreeMap<Digest, (ObjectMeta, String)> = BTreeMap::new();
    let mut present: BTreeSet<Digest> = BTreeSet::new();
    for result in results {
        let digest = &result.digest;
        if objects.contains_key(digest) || present.contains(digest) {
            continue;
        }
        let meta = registry
            .object_meta(digest)?
            .ok_or_else(|| RemoteError::NotLocal {
                stage: result.stage.clone(),
                digest: digest.to_string(),
            })?;
        if remote.exists(&keys::object(digest)).await? {
            present.insert(digest.clone());
        } else {
            objects.insert(digest.clone(), (meta, result.stage.clone()));
        }
    }
    transfer.objects_present = present.len();

    // Blobs the remote lacks (shared files are sent once).
    let mut uploads: BTreeMap<String, Upload> = BTreeMap::new();
    for (digest, (meta, stage)) in &objects {
        for entry in &meta.files {
            if uploads.contains_key(&entry.blake3) {
                continue;
            }
            if remote.exists(&keys::blob(&entry.blake3)).await? {
                continue;
            }
            uploads.insert(
                entry.blake3.clone(),
                Upload {
                    entry: entry.clone(),
                    path: registry.object_path(digest).join(&entry.path),
                    stage: stage.clone(),
                },
            );
        }
    }
    let total: u64 = uploads.values().map(|u| u.entry.size).sum();
    let progress = if quiet {
        Progress::hidden()
    } else {
        Progress::bytes(&format!("pushing to {}", remote.name), total)
    };
    futures::stream::iter(uploads.values().map(Ok))
        .try_for_each_concurrent(PARALLEL, |upload| {
            let progress = progress.clone();
            async move { send_blob(remote, upload, &progress).await }
        })
        .await?;
    progress.finish();
    transfer.files = uploads.len();
    transfer.bytes = total;

    // Every blob is there: now the objects become visible, then the records that name them.
    for (digest, (meta, _)) in &objects {
        remote.put_json(&keys::object(digest), meta).await?;
    }
    transfer.objects = objects.len();
    let records = futures::stream::iter(results.iter())
        .map(|r| async move {
            let key = keys::record(&r.fingerprint, &r.digest);
            if remote.exists(&key).await? {
                return Ok::<usize, RemoteError>(0);
            }
            remote.put_json(&key, r).await?;
            Ok(1)
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<usize>>()
        .await?;
    transfer.records = records.iter().sum();
    Ok(transfer)
}

/// Check the local file against the store's listing (never spread a damaged file under a
/// digest it does not have), then upload it.
async fn send_blob(remote: &Remote, upload: &Upload, progress: &Progress) -> Result<()> {
    let path = upload.path.clone();
    let (hash, size) = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(|e| RemoteError::Task(e.to_string()))??;
    if hash != upload.entry.blake3 || size != upload.entry.size {
        return Err(RemoteError::LocalCorrupt {
            stage: upload.stage.clone(),
            path: upload.path.clone(),
        });
    }
    remote
        .put_file(&keys::blob(&upload.entry.blake3), &upload.path, progress)
        .await
}

pub(crate) fn hash_file(path: &std::path::Path) -> Result<(String, u64)> {
    let file = std::fs::File::open(path).map_err(|e| RemoteError::io("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    let size =
        std::io::copy(&mut &file, &mut hasher).map_err(|e| RemoteError::io("read", path, e))?;
    Ok((hasher.finalize().to_hex().to_string(), size))
}
