//! The content digest of a directory: a BLAKE3 hash per file, then one BLAKE3 over a versioned,
//! length-prefixed encoding of the sorted listing. Only what a reader of the artifact can
//! observe counts: relative paths, contents and the executable bit. Timestamps, creation order
//! and empty directories do not.

use std::fs::{self, File};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, RegistryError, Result};

/// Bumped (with a note) whenever the encoding below changes; it is hashed first, so digests of
/// different encodings can never collide.
/// 1: initial encoding.
const MERKLE_VERSION: u64 = 1;
const DOMAIN: &[u8] = b"binarylm.merkle";

/// One file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators.
    pub path: String,
    pub size: u64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
    pub executable: bool,
}

/// The listing of a directory and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub digest: String,
    /// Sorted by path.
    pub files: Vec<FileEntry>,
}

impl Tree {
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Hash the directory `root`. Symbolic links and special files are errors: the first would
/// make an artifact depend on something outside it, the second cannot be stored.
pub fn hash_dir(root: &Path) -> Result<Tree> {
    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Tree {
        digest: digest_of(&files),
        files,
    })
}

/// The digest of a listing (which must be sorted by path).
pub fn digest_of(files: &[FileEntry]) -> String {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, DOMAIN);
    h.update(&MERKLE_VERSION.to_le_bytes());
    h.update(&(files.len() as u64).to_le_bytes());
    for f in files {
        put_bytes(&mut h, f.path.as_bytes());
        h.update(&[u8::from(f.executable)]);
        h.update(&f.size.to_le_bytes());
        put_bytes(&mut h, f.blake3.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// Length first, so no two different sequences of fields encode to the same bytes.
fn put_bytes(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<FileEntry>) -> Result<()> {
    for entry in fs::read_dir(dir).at("list", dir)? {
        let entry = entry.at("list", dir)?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| RegistryError::NonUtf8Path { path: path.clone() })?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let ty = entry.file_type().at("inspect", &path)?;
        if ty.is_symlink() {
            return Err(RegistryError::SymlinkInOutput { path });
        } else if ty.is_dir() {
            walk(&path, &rel, out)?;
        } else if ty.is_file() {
            out.push(hash_file(&path, rel)?);
        } else {
            return Err(RegistryError::UnsupportedFileType { path });
        }
    }
    Ok(())
}

fn hash_file(path: &Path, rel: String) -> Result<FileEntry> {
    let file = File::open(path).at("open", path)?;
    let meta = file.metadata().at("inspect", path)?;
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut &file, &mut hasher).at("read", path)?;
    Ok(FileEntry {
        path: rel,
        size,
        blake3: hasher.finalize().to_hex().to_string(),
        executable: is_executable(&meta),
    })
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    fn dir_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("out");
        fs::create_dir_all(&root).expect("mkdir");
        for (rel, content) in files {
            write(&root, rel, content);
        }
        (t, root)
    }

    #[test]
    fn independent_of_creation_order_mtime_and_empty_dirs() {
        let (_a, a) = dir_with(&[("x.txt", b"one"), ("sub/y.bin", b"two")]);
        let (_b, b) = dir_with(&[("sub/y.bin", b"two"), ("x.txt", b"one")]);
        fs::create_dir_all(b.join("empty/nested")).expect("mkdir");
        let f = File::options()
            .write(true)
            .open(b.join("x.txt"))
            .expect("open");
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(12345))
            .expect("set mtime");
        let ta = hash_dir(&a).expect("hash a");
        let tb = hash_dir(&b).expect("hash b");
        assert_eq!(ta.digest, tb.digest);
        assert_eq!(ta.files, tb.files);
        assert_eq!(ta.total_size(), 6);
        assert_eq!(ta.files[0].path, "sub/y.bin");
    }

    #[test]
    fn changes_with_content_and_name() {
        let (_a, a) = dir_with(&[("x.txt", b"one")]);
        let (_b, b) = dir_with(&[("x.txt", b"onE")]);
        let (_c, c) = dir_with(&[("z.txt", b"one")]);
        // Same bytes split differently across path and content must not collide.
        let (_d, d) = dir_with(&[("x.txtone", b"")]);
        let digests: Vec<String> = [&a, &b, &c, &d]
            .iter()
            .map(|p| hash_dir(p).expect("hash").digest)
            .collect();
        for i in 0..digests.len() {
            for j in i + 1..digests.len() {
                assert_ne!(digests[i], digests[j], "{i} vs {j}");
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn changes_with_executable_bit() {
        use std::os::unix::fs::PermissionsExt;
        let (_a, a) = dir_with(&[("run.sh", b"echo hi")]);
        let before = hash_dir(&a).expect("hash");
        fs::set_permissions(a.join("run.sh"), fs::Permissions::from_mode(0o755)).expect("chmod");
        let after = hash_dir(&a).expect("hash");
        assert!(after.files[0].executable);
        assert_ne!(before.digest, after.digest);
    }

    #[cfg(unix)]
    #[test]
    fn rejects_symlinks() {
        let (_a, a) = dir_with(&[("real.txt", b"x")]);
        std::os::unix::fs::symlink(a.join("real.txt"), a.join("link.txt")).expect("symlink");
        let err = hash_dir(&a).expect_err("symlink must be rejected");
        assert!(
            matches!(err, RegistryError::SymlinkInOutput { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("link.txt"));
    }
}
