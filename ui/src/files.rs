//! Reading files for a request without ever leaving the workspace. A request names a digest, a
//! run id or a stage, never a path of its own; the one path it may carry (a file inside an
//! object) must be one the object's listing names, and what it opens must still lie inside
//! that object once symlinks are followed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use registry::Registry;

use crate::error::ApiError;

/// Largest file served whole (bigger ones are refused: the UI shows summaries, not shards).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// A file of stored object `digest`, by its path in the object's listing.
pub fn object_file(registry: &Registry, digest: &str, rel: &str) -> Result<PathBuf, ApiError> {
    let meta = registry
        .object_meta(digest)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no object {digest} in the store")))?;
    if !meta.files.iter().any(|f| f.path == rel) {
        return Err(ApiError::not_found(format!(
            "object {} has no file `{rel}`",
            runtime::plan::short(digest)
        )));
    }
    let dir = registry.object_path(digest);
    inside(&dir, &dir.join(rel))
}

/// `path` with symlinks resolved, when that lies inside `root` (also resolved).
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, ApiError> {
    let refused = || ApiError::forbidden(format!("`{}` is outside the workspace", path.display()));
    let root = root.canonicalize().map_err(|_| refused())?;
    let real = path
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("`{}` does not exist", path.display())))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(refused())
    }
}

/// The log of `stage` in run `run_id`, when the run is recorded and names that stage.
pub fn log_file(
    registry: &Registry,
    run_id: &str,
    stage: &str,
    stage_known: bool,
) -> Result<PathBuf, ApiError> {
    let run = registry
        .run(run_id)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))?;
    if !stage_known && !run.outcomes.iter().any(|o| o.stage == stage) {
        return Err(ApiError::not_found(format!(
            "run {run_id} has no stage `{stage}`"
        )));
    }
    let logs = registry.log_dir(run_id);
    inside(registry.root(), &logs.join(format!("{stage}.log")))
}

/// The whole file, when it is not too large to serve.
pub fn read_whole(path: &Path) -> Result<Vec<u8>, ApiError> {
    let len = std::fs::metadata(path)
        .map_err(|e| ApiError::not_found(format!("{}: {e}", path.display())))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(ApiError::bad_request(format!(
            "{} is {len} bytes; the UI serves files up to {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

/// The last `max` bytes of a text file (from a line start), and whether it was cut.
pub fn tail(path: &Path, max: u64) -> std::io::Result<(String, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let cut = len > max;
    if cut {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        if let Some(nl) = text.find('\n') {
            text.drain(..=nl);
        }
    }
    Ok((text, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_refuses_escapes_and_symlinks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("a")).expect("mkdir");
        std::fs::write(root.join("a/f.txt"), "x").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("a/link")).expect("ln");

        assert!(inside(&root, &root.join("a/f.txt")).is_ok());
        assert_eq!(
            inside(&root, &root.join("a/../../secret"))
                .expect_err("dotdot")
                .status,
            403
        );
        assert_eq!(
            inside(&root, Path::new("/etc/passwd"))
                .expect_err("abs")
                .status,
            403
        );
        assert_eq!(
            inside(&root, &root.join("a/link"))
                .expect_err("symlink")
                .status,
            403
        );
        assert_eq!(
            inside(&root, &root.join("a/none"))
                .expect_err("missing")
                .status,
            404
        );
    }

    #[test]
    fn tail_keeps_whole_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("log");
        std::fs::write(&p, "first line\nsecond\nthird\n").expect("write");
        assert_eq!(
            tail(&p, 100).expect("tail"),
            ("first line\nsecond\nthird\n".into(), false)
        );
        assert_eq!(tail(&p, 10).expect("tail"), ("third\n".into(), true));
    }
}
