//! File-system helpers: atomic writes, JSON files, read-only trees and their removal.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{IoContext, RegistryError, Result};

/// Write `bytes` to `path` so that readers see either the old file or the whole new one: a temp
/// file in the same directory (so the rename cannot cross file systems), synced, then renamed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).at("create directory", dir)?;
    let mut builder = tempfile::Builder::new();
    // Temp files are private (0600) by default; these become ordinary files (records, the
    // lockfile) that other users and tools should be able to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).at("create a temp file in", dir)?;
    tmp.write_all(bytes).at("write", tmp.path().to_path_buf())?;
    tmp.as_file()
        .sync_all()
        .at("sync", tmp.path().to_path_buf())?;
    tmp.persist(path)
        .map_err(|e| RegistryError::io("replace", path, e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Pretty JSON with a trailing newline, written atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<()> {
    let mut bytes = to_json(value, what)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

pub(crate) fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|source| RegistryError::Encode { what, source })
}

/// Read a JSON file; `Ok(None)` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RegistryError::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RegistryError::CorruptFile {
            path: path.to_path_buf(),
            what,
            hint,
            source,
        })
}

/// Make a directory entry durable after a rename into it. Best effort: not every platform lets
/// a directory be opened and synced, and the data itself was already synced.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Make every file under `dir` read-only, so that a stored artifact is not edited in place by
/// accident (which would silently break its digest).
pub(crate) fn make_files_read_only(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).at("list", dir)? {
        let entry = entry.at("list", dir)?;
        let path = entry.path();
        let ty = entry.file_type().at("inspect", &path)?;
        if ty.is_dir() {
            make_files_read_only(&path)?;
        } else if ty.is_file() {
            let mut perms = entry.metadata().at("inspect", &path)?.permissions();
            if !perms.readonly() {
                perms.set_readonly(true);
                fs::set_permissions(&path, perms).at("make read-only", &path)?;
            }
        }
    }
    Ok(())
}

/// Remove a tree that may contain read-only files. Files are made writable first: Windows
/// refuses to delete read-only files, and it keeps the behaviour the same everywhere.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RegistryError::io("inspect", path, e)),
    };
    if !meta.is_dir() {
        return remove_file_if_exists(path);
    }
    make_writable(path)?;
    fs::remove_dir_all(path).at("remove", path)
}

fn make_writable(dir: &Path) -> Result<()> {
    set_writable(dir)?;
    for entry in fs::read_dir(dir).at("list", dir)? {
        let entry = entry.at("list", dir)?;
        let path = entry.path();
        let ty = entry.file_type().at("inspect", &path)?;
        if ty.is_dir() {
            make_writable(&path)?;
        } else if ty.is_file() {
            set_writable(&path)?;
        }
    }
    Ok(())
}

fn set_writable(path: &Path) -> Result<()> {
    let mut perms = fs::metadata(path).at("inspect", path)?.permissions();
    if perms.readonly() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            perms.set_mode(perms.mode() | 0o200);
        }
        #[cfg(not(unix))]
        perms.set_readonly(false);
        fs::set_permissions(path, perms).at("make writable", path)?;
    }
    Ok(())
}

pub(crate) fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RegistryError::io("remove", path, e)),
    }
}

/// Total size in bytes of the regular files under `path` (0 when it does not exist).
pub(crate) fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| tree_size(&e.path()))
        .sum()
}

/// The names of the entries of `dir`, sorted; empty when `dir` does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.at("list", dir)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}
