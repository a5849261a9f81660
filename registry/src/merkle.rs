//! The content digest of an artifact directory: `common::tree`'s digest (a BLAKE3 per file,
//! then one over the sorted, length-prefixed listing; paths, contents and the executable bit
//! count, timestamps and empty directories do not), refusing symbolic links and special files.

use std::path::Path;

pub use common::tree::FileEntry;
use common::tree::{Links, TreeError};
use common::Digest;

use crate::error::{RegistryError, Result};

/// The listing of a directory and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub digest: Digest,
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
    let files = common::tree::list(root, Links::Refuse).map_err(|e| match e {
        TreeError::Io { op, path, source } => RegistryError::io(op, path, source),
        TreeError::Symlink { path } | TreeError::Loop { path } => {
            RegistryError::SymlinkInOutput { path }
        }
        TreeError::Special { path } => RegistryError::UnsupportedFileType { path },
        TreeError::NonUtf8 { path } => RegistryError::NonUtf8Path { path },
    })?;
    Ok(Tree {
        digest: digest_of(&files),
        files,
    })
}

/// The digest of a listing (which must be sorted by path).
pub fn digest_of(files: &[FileEntry]) -> Digest {
    common::tree::digest(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};
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
        let digests: Vec<Digest> = [&a, &b, &c, &d]
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
