//! Local source paths as a manifest writes them (a file, a directory or a glob) expanded into
//! the files they name, in one deterministic order. The fingerprint and the stage that reads
//! the files both go through here, so they always agree on what was read.

use std::io;
use std::path::{Path, PathBuf};

/// Characters that make a source path a glob pattern.
const GLOB_CHARS: &[char] = &['*', '?', '['];

/// The files `pattern` (relative to `dir`, or absolute) names, sorted by path: a file is
/// itself, a directory is every file under it (recursively), a glob is its matches (files
/// only). Errors when nothing exists or the glob matches no file, naming the pattern.
pub fn expand_local(dir: &Path, pattern: &str) -> io::Result<Vec<PathBuf>> {
    let full = dir.join(pattern);
    let mut files = Vec::new();
    if pattern.contains(GLOB_CHARS) {
        // The manifest's directory is literal text, even if its name has `[` or `*` in it.
        let text = if Path::new(pattern).is_absolute() {
            pattern.to_string()
        } else {
            let dir = dir.to_str().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the path is not valid UTF-8")
            })?;
            format!("{}/{pattern}", glob::Pattern::escape(dir))
        };
        let matches = glob::glob(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{pattern}` is not a valid glob: {e}"),
            )
        })?;
        for entry in matches {
            let path = entry.map_err(std::io::Error::from)?;
            if path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no file matches `{pattern}`"),
            ));
        }
    } else {
        let meta = std::fs::metadata(&full)?;
        if meta.is_dir() {
            walk(&full, &mut files)?;
        } else {
            files.push(full);
        }
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_and_globs_expand_sorted() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path();
        std::fs::create_dir_all(root.join("t/sub"))?;
        for name in ["t/b.txt", "t/a.txt", "t/sub/c.txt", "t/x.md"] {
            std::fs::write(root.join(name), name)?;
        }
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|f| {
                    f.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(names(expand_local(root, "t/a.txt")?), ["t/a.txt"]);
        assert_eq!(
            names(expand_local(root, "t")?),
            ["t/a.txt", "t/b.txt", "t/sub/c.txt", "t/x.md"]
        );
        assert_eq!(
            names(expand_local(root, "t/*.txt")?),
            ["t/a.txt", "t/b.txt"]
        );
        let none = expand_local(root, "t/*.csv").expect_err("no match");
        assert!(none.to_string().contains("t/*.csv"), "{none}");
        assert!(expand_local(root, "missing.txt").is_err());
        Ok(())
    }

    #[test]
    fn glob_characters_in_the_manifest_directory_are_literal() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("run[1]");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("a.txt"), "a")?;
        assert_eq!(expand_local(&dir, "*.txt")?, [dir.join("a.txt")]);
        Ok(())
    }
}
