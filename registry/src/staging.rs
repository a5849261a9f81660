//! Staging directories: where a stage writes its output (and checkpoints) before the output is
//! hashed and moved into the store. One per fingerprint, so an interrupted stage that runs
//! again with the same fingerprint finds its checkpoints.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fsutil::{remove_file_if_exists, remove_tree};
use crate::layout::check_fingerprint;
use crate::owner::write_owner;
use crate::registry::Registry;

/// A stage's working directory `tmp/<fingerprint>/`. The stage writes its artifact into
/// `out_dir()` and may keep checkpoints anywhere else under `path()`.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    fingerprint: String,
    /// The directory was already there: a leftover of an interrupted run of this fingerprint,
    /// possibly holding checkpoints to resume from (and a partial `out/`).
    pub existed: bool,
}

impl Staging {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the artifact goes; this is what `Registry::store` hashes and keeps.
    pub fn out_dir(&self) -> PathBuf {
        self.path.join("out")
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Empty `out_dir()` (for a stage that restarts its output from scratch after a crash).
    pub fn clear_out(&self) -> Result<()> {
        let out = self.out_dir();
        remove_tree(&out)?;
        fs::create_dir_all(&out).at("create directory", &out)
    }
}

impl Registry {
    /// The staging directory for `fingerprint`, created if needed. It is marked as owned by
    /// this process so that `gc` leaves it alone while the process lives.
    pub fn staging(&self, fingerprint: &str) -> Result<Staging> {
        check_fingerprint(fingerprint)?;
        let path = self.layout.staging(fingerprint);
        let existed = path.exists();
        let staging = Staging {
            path,
            fingerprint: fingerprint.to_string(),
            existed,
        };
        let out = staging.out_dir();
        fs::create_dir_all(&out).at("create staging directory", &out)?;
        write_owner(&self.layout.staging_owner(fingerprint))?;
        Ok(staging)
    }

    /// Throw a staging directory away (a stage that failed in a way that makes its partial
    /// state useless). A failed stage that may resume should instead leave it in place.
    pub fn discard(&self, staging: Staging) -> Result<()> {
        remove_tree(&staging.path)?;
        remove_file_if_exists(&self.layout.staging_owner(&staging.fingerprint))
    }
}
