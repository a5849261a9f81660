//! The one directory hasher: a BLAKE3 hash per file, then one BLAKE3 over a versioned,
//! length-prefixed encoding of the sorted listing. Only what a reader of the files can observe
//! counts: relative paths, contents and the executable bit. Timestamps, creation order and
//! empty directories do not.
//!
//! The registry digests stage outputs with it (refusing symbolic links, which would make an
//! artifact depend on something outside it), and fingerprints digest directory dependencies
//! with it (following links, so a linked data file that changes changes the fingerprint).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bumped (with a note) whenever the encoding in [`digest`] changes; it is hashed first, so
/// digests of different encodings never collide. Changing it changes every artifact digest.
/// 1: initial encoding.
const VERSION: u64 = 1;
const DOMAIN: &[u8] = b"binarylm.merkle";

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators.
    pub path: String,
    pub size: u64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
    pub executable: bool,
}

/// What to do with a symbolic link met while walking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// An error ([`TreeError::Symlink`]): stored artifacts are self-contained.
    Refuse,
    /// Hash what the link points to, as if it were there (a loop is an error).
    Follow,
}

/// Why a tree could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is a symbolic link", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is neither a file nor a directory (a socket, device or FIFO)", path.display())]
    Special { path: PathBuf },
    #[error("{}: the path is not valid UTF-8", path.display())]
    NonUtf8 { path: PathBuf },
    #[error("{}: symbolic links form a loop", path.display())]
    Loop { path: PathBuf },
}

fn at<T>(op: &'static str, path: &Path, r: io::Result<T>) -> Result<T, TreeError> {
    r.map_err(|source| TreeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

/// Every file under `root`, sorted by relative path.
pub fn list(root: &Path, links: Links) -> Result<Vec<FileEntry>, TreeError> {
    let mut files = Vec::new();
    let mut ancestors = HashSet::new();
    if links == Links::Follow {
        ancestors.insert(at("resolve", root, fs::canonicalize(root))?);
    }
    walk(root, "", links, &mut ancestors, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The digest of a listing sorted by path (as [`list`] returns it).
pub fn digest(files: &[FileEntry]) -> crate::Digest {
    let mut h = blake3::Hasher::new();
    put_bytes(&mut h, DOMAIN);
    h.update(&VERSION.to_le_bytes());
    h.update(&(files.len() as u64).to_le_bytes());
    for f in files {
        put_bytes(&mut h, f.path.as_bytes());
        h.update(&[u8::from(f.executable)]);
        h.update(&f.size.to_le_bytes());
        put_bytes(&mut h, f.blake3.as_bytes());
    }
    crate::Digest::from_hash(h.finalize())
}

/// BLAKE3 of a file's bytes, hex (what `b3sum` prints), and its size.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut &file, &mut hasher)?;
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// Length first, so no two different sequences of fields encode to the same bytes.
fn put_bytes(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn walk(
    dir: &Path,
    prefix: &str,
    links: Links,
    ancestors: &mut HashSet<PathBuf>,
    out: &mut Vec<FileEntry>,
) -> Result<(), TreeError> {
    for entry in at("list", dir, fs::read_dir(dir))? {
        let entry = at("list", dir, entry)?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| TreeError::NonUtf8 { path: path.clone() })?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let mut ty = at("inspect", &path, entry.file_type())?;
        if ty.is_symlink() {
            if links == Links::Refuse {
                return Err(TreeError::Symlink { path });
            }
            ty = at("follow", &path, fs::metadata(&path))?.file_type();
        }
        if ty.is_dir() {
            // Only a linked directory can lead back up the tree; the set holds the real paths
            // of the directories being walked.
            let real = match links {
                Links::Follow => Some(at("resolve", &path, fs::canonicalize(&path))?),
                Links::Refuse => None,
            };
            if let Some(real) = &real {
                if !ancestors.insert(real.clone()) {
                    return Err(TreeError::Loop { path });
                }
            }
            walk(&path, &rel, links, ancestors, out)?;
            if let Some(real) = &real {
                ancestors.remove(real);
            }
        } else if ty.is_file() {
            out.push(entry_for(&path, rel)?);
        } else {
            return Err(TreeError::Special { path });
        }
    }
    Ok(())
}

fn entry_for(path: &Path, rel: String) -> Result<FileEntry, TreeError> {
    let meta = at("inspect", path, fs::metadata(path))?;
    let (size, blake3) = at("read", path, hash_file(path))?;
    Ok(FileEntry {
        path: rel,
        size,
        blake3,
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

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    fn tree_digest(root: &Path, links: Links) -> crate::Digest {
        digest(&list(root, links).expect("list"))
    }

    /// The encoding is pinned: changing it changes the digest of every stored artifact, and
    /// must be a deliberate [`VERSION`] bump.
    #[test]
    fn digest_of_a_known_listing_is_pinned() {
        let files = [FileEntry {
            path: "a.txt".into(),
            size: 3,
            blake3: blake3::hash(b"abc").to_hex().to_string(),
            executable: false,
        }];
        assert_eq!(
            digest(&files),
            "a89c5da9d399aa3721bf54dfc47acb3fe50fa45e652c7f4aa0ac0f5c6e3ce921"
        );
        assert_ne!(digest(&files), digest(&[]));
    }

    #[cfg(unix)]
    #[test]
    fn following_links_hashes_what_they_point_to() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = t.path().join("outside.txt");
        fs::write(&outside, b"v1").expect("write");
        let root = t.path().join("data");
        write(&root, "a.txt", b"a");
        std::os::unix::fs::symlink(&outside, root.join("linked.txt")).expect("symlink");

        let before = tree_digest(&root, Links::Follow);
        // Same bytes in place of the link: same digest, since a reader sees the same files.
        let copy = t.path().join("copy");
        write(&copy, "a.txt", b"a");
        write(&copy, "linked.txt", b"v1");
        assert_eq!(before, tree_digest(&copy, Links::Follow));
        // The linked file changes: so does the digest.
        fs::write(&outside, b"v2").expect("write");
        assert_ne!(before, tree_digest(&root, Links::Follow));
        // Refusing links names the link.
        let err = list(&root, Links::Refuse).expect_err("refused");
        assert!(matches!(err, TreeError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("linked.txt"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_is_an_error_not_a_hang() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("data");
        write(&root, "sub/a.txt", b"a");
        std::os::unix::fs::symlink(&root, root.join("sub/up")).expect("symlink");
        let err = list(&root, Links::Follow).expect_err("loop");
        assert!(matches!(err, TreeError::Loop { .. }), "{err}");
    }
}
