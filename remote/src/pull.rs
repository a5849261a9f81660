//! `pull` (and `run --pull`'s fetch): bring stage results and their objects from a remote into
//! the local store. Nothing is trusted on the way: a record must name the fingerprint and digest
//! its key says, an object's listing must hash to its digest, every file is hashed as it
//! streams in and must be the blob the listing names, and the registry hashes the assembled
//! object once more before the rename that makes it visible. Files land under `tmp/` first, so
//! a kill leaves no partial object; a re-run keeps the files already verified there.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::TryStreamExt;
use registry::{ObjectMeta, Registry, StageResult};

use crate::client::Remote;
use crate::error::{RemoteError, Result};
use crate::keys;
use crate::progress::Progress;
use crate::push::hash_file;
use crate::Transfer;

/// Files received at once.
const PARALLEL: usize = 8;

/// A stage result to bring in: by fingerprint, and by digest when the lockfile pins one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub stage: String,
    pub fingerprint: String,
    pub digest: Option<registry::Digest>,
}

/// A result found on the remote, and its object's listing when the object must be fetched.
struct Planned {
    stage: String,
    record: StageResult,
    object: Option<ObjectMeta>,
}

/// Pull every `wanted` result; one that the remote lacks is an error (nothing after it is
/// skipped silently: what was pulled before it stays, complete). `manifest` is the local
/// manifest's path, whose stages the pulled results become the latest of.
pub async fn pull(
    remote: &Remote,
    registry: &Registry,
    manifest: &str,
    wanted: &[Wanted],
    quiet: bool,
) -> Result<Transfer> {
    let mut transfer = Transfer::default();
    let mut planned = Vec::new();
    let mut seen_objects = BTreeSet::new();
    for w in wanted {
        if let Some(local) = local_result(registry, w)? {
            registry.import_result(&local, manifest, &w.stage)?;
            transfer.objects_present += usize::from(seen_objects.insert(local.digest.clone()));
            continue;
        }
        let record = find_record(remote, w)
            .await?
            .ok_or_else(|| RemoteError::NotOnRemote {
                name: remote.name.clone(),
                stage: w.stage.clone(),
                fingerprint: w.fingerprint.clone(),
            })?;
        let object =
            if registry.has_object(&record.digest) || !seen_objects.insert(record.digest.clone()) {
                None
            } else {
                Some(object_meta(remote, &record.digest).await?)
            };
        planned.push(Planned {
            stage: w.stage.clone(),
            record,
            object,
        });
    }
    let total: u64 = planned
        .iter()
        .filter_map(|p| p.object.as_ref())
        .map(|m| m.total_size)
        .sum();
    let progress = if quiet {
        Progress::hidden()
    } else {
        Progress::bytes(&format!("pulling from {}", remote.name), total)
    };
    for p in &planned {
        if let Some(meta) = &p.object {
            let files = receive(remote, registry, meta, &progress).await?;
            transfer.objects += 1;
            transfer.files += files;
            transfer.bytes += meta.total_size;
        } else {
            transfer.objects_present += 1;
        }
        registry.import_result(&p.record, manifest, &p.stage)?;
        transfer.records += 1;
    }
    progress.finish();
    Ok(transfer)
}

/// For `run --pull`: the result of one fingerprint, brought in from the remote; None when the
/// remote does not have it.
pub async fn fetch(
    remote: &Remote,
    registry: &Registry,
    manifest: &str,
    wanted: &Wanted,
) -> Result<Option<StageResult>> {
    if let Some(local) = local_result(registry, wanted)? {
        return Ok(Some(registry.import_result(
            &local,
            manifest,
            &wanted.stage,
        )?));
    }
    let Some(record) = find_record(remote, wanted).await? else {
        return Ok(None);
    };
    if !registry.has_object(&record.digest) {
        let meta = object_meta(remote, &record.digest).await?;
        receive(remote, registry, &meta, &Progress::hidden()).await?;
    }
    Ok(Some(registry.import_result(
        &record,
        manifest,
        &wanted.stage,
    )?))
}

fn local_result(registry: &Registry, w: &Wanted) -> Result<Option<StageResult>> {
    Ok(registry
        .lookup(&w.fingerprint)?
        .filter(|r| w.digest.as_ref().is_none_or(|d| *d == r.digest)))
}

/// The remote's record for `w`: the one of its digest, else any (the first by digest).
async fn find_record(remote: &Remote, w: &Wanted) -> Result<Option<StageResult>> {
    if !keys::is_hex_id(&w.fingerprint) {
        return Ok(None);
    }
    let digest = match &w.digest {
        Some(d) => d.clone(),
        None => {
            let names = remote.list_names(&keys::records_of(&w.fingerprint)).await?;
            // A name that is not a digest is not a record of ours: skip it.
            match names
                .iter()
                .filter_map(|n| n.strip_suffix(".json"))
                .find_map(|d| registry::Digest::parse(d).ok())
            {
                Some(d) => d,
                None => return Ok(None),
            }
        }
    };
    let key = keys::record(&w.fingerprint, &digest);
    let Some(record) = remote.get_json::<StageResult>(&key).await? else {
        return Ok(None);
    };
    if record.fingerprint != w.fingerprint || record.digest != digest {
        return Err(remote.tampered(
            &key,
            format!(
                "it describes fingerprint {} / digest {}, not the ones its name says",
                record.fingerprint, record.digest
            ),
        ));
    }
    Ok(Some(record))
}

/// An object's listing from the remote, checked against its digest before anything is fetched.
async fn object_meta(remote: &Remote, digest: &str) -> Result<ObjectMeta> {
    let key = keys::object(digest);
    let meta: ObjectMeta = remote.get_json(&key).await?.ok_or_else(|| {
        remote.tampered(
            &key,
            "a stage record names this object, but the remote does not hold it",
        )
    })?;
    if meta.digest != digest || registry::digest_of(&meta.files) != digest {
        return Err(remote.tampered(&key, format!("its listing does not hash to {digest}")));
    }
    let mut paths = BTreeSet::new();
    for f in &meta.files {
        if !safe_relative(&f.path) || !keys::is_hex_id(&f.blake3) || !paths.insert(f.path.as_str())
        {
            return Err(remote.tampered(
                &key,
                format!("it lists an unsafe or repeated path `{}`", f.path),
            ));
        }
    }
    Ok(meta)
}

/// A relative path of plain components: nothing that could climb out of the object's folder.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Fetch every file of `meta` into a folder under the workspace's `tmp/`, verifying each, and
/// hand the folder to the registry (which verifies the whole). Returns the files fetched.
async fn receive(
    remote: &Remote,
    registry: &Registry,
    meta: &ObjectMeta,
    progress: &Progress,
) -> Result<usize> {
    // `run --pull` fetches for several stages at once, and two of them may want one object:
    // one assembles it while the other waits, then finds it stored.
    let slot = in_flight(&meta.digest);
    let _guard = slot.lock().await;
    if registry.has_object(&meta.digest) {
        return Ok(0);
    }
    let incoming = registry.incoming_dir(&meta.digest)?;
    let partial = incoming.with_extension("partial");
    std::fs::create_dir_all(&partial).map_err(|e| RemoteError::io("create", &partial, e))?;
    remove_unlisted(&incoming, meta)?;

    // Files already verified by an interrupted pull of this object stay.
    let mut todo = Vec::new();
    for entry in &meta.files {
        let dest = incoming.join(&entry.path);
        if dest.is_file() {
            let path = dest.clone();
            let (hash, size) = tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(|e| RemoteError::Task(e.to_string()))??;
            if hash == entry.blake3 && size == entry.size {
                continue;
            }
            std::fs::remove_file(&dest).map_err(|e| RemoteError::io("remove", &dest, e))?;
        }
        todo.push((entry, dest));
    }
    futures::stream::iter(todo.iter().map(Ok))
        .try_for_each_concurrent(PARALLEL, |(entry, dest)| {
            let partial = partial.join(&entry.blake3);
            let progress = progress.clone();
            async move {
                let key = keys::blob(&entry.blake3);
                let (hash, size) = remote.get_file(&key, &partial, &progress).await?;
                if hash != entry.blake3 || size != entry.size {
                    let _ = std::fs::remove_file(&partial);
                    return Err(remote.tampered(
                        &key,
                        format!("its content hashes to {hash} ({size} bytes), not to its name"),
                    ));
                }
                place(&partial, dest, entry.executable)
            }
        })
        .await?;
    let fetched = todo.len();
    let _ = std::fs::remove_dir_all(&partial);

    let registry = registry.clone();
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || registry.import_object(&incoming, &meta))
        .await
        .map_err(|e| RemoteError::Task(e.to_string()))??;
    Ok(fetched)
}

/// The lock of one object's assembly in this process (the workspace lock keeps other
/// processes out).
fn in_flight(digest: &str) -> Arc<tokio::sync::Mutex<()>> {
    static SLOTS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut slots = SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Drop the slots nobody holds, so the map stays as small as the transfers in flight.
    slots.retain(|_, slot| Arc::strong_count(slot) > 1);
    slots.entry(digest.to_string()).or_default().clone()
}

/// Move a verified download to its place in the object's folder.
fn place(from: &Path, to: &Path, executable: bool) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RemoteError::io("create", parent, e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(from, std::fs::Permissions::from_mode(mode))
            .map_err(|e| RemoteError::io("set permissions of", from, e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    std::fs::rename(from, to).map_err(|e| RemoteError::io("move into place", to, e))
}

/// Remove files an interrupted pull left that the listing does not name (they would change
/// the object's digest).
fn remove_unlisted(dir: &Path, meta: &ObjectMeta) -> Result<()> {
    let listed: BTreeSet<PathBuf> = meta.files.iter().map(|f| dir.join(&f.path)).collect();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| RemoteError::io("list", &d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| RemoteError::io("list", &d, e))?;
            let path = entry.path();
            let ty = entry
                .file_type()
                .map_err(|e| RemoteError::io("inspect", &path, e))?;
            if ty.is_dir() {
                stack.push(path);
            } else if !listed.contains(&path) {
                std::fs::remove_file(&path).map_err(|e| RemoteError::io("remove", &path, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        for ok in [
            "a",
            "model.safetensors",
            "sub/dir/x.json",
            "..hidden",
            "a..b",
        ] {
            assert!(safe_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\..\\b",
            "a\0",
        ] {
            assert!(!safe_relative(bad), "{bad}");
        }
    }
}
