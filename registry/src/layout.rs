//! Where things live inside a workspace directory, and the validation of the ids that become
//! path components (a digest or fingerprint must never be able to name `../x`).

use std::path::{Path, PathBuf};

use crate::error::{RegistryError, Result};

pub(crate) const OBJECTS: &str = "objects";
pub(crate) const RECORDS: &str = "records";
pub(crate) const RUNS: &str = "runs";
pub(crate) const TMP: &str = "tmp";
pub(crate) const LOGS: &str = "logs";
pub(crate) const INDEX: &str = "registry.sled";
pub(crate) const LOCK: &str = "lock";
/// Caches shared by every stage and pipeline of the workspace (downloads by pin), which must
/// outlive any one stage's scratch directory.
pub(crate) const CACHE: &str = "downloads";

/// Length of a full BLAKE3 digest in hex.
pub const DIGEST_HEX_LEN: usize = 64;
/// Shortest digest prefix `resolve` accepts.
pub const MIN_PREFIX_LEN: usize = 6;

pub(crate) fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A digest or fingerprint: lowercase hex, long enough to shard by its first two characters.
pub(crate) fn check_hex_id(what: &'static str, value: &str) -> Result<()> {
    if value.len() >= 2 && value.len() <= 128 && is_hex(value) {
        Ok(())
    } else {
        Err(RegistryError::InvalidId {
            what,
            value: value.to_string(),
            min_len: 2,
        })
    }
}

pub(crate) fn check_digest(digest: &str) -> Result<()> {
    check_hex_id("digest", digest)
}

/// A full digest, as a path component and a lookup key.
pub(crate) fn parse_digest(digest: &str) -> Result<common::Digest> {
    common::Digest::parse(digest).map_err(|_| RegistryError::InvalidId {
        what: "digest",
        value: digest.to_string(),
        min_len: DIGEST_HEX_LEN,
    })
}

pub(crate) fn check_fingerprint(fingerprint: &str) -> Result<()> {
    check_hex_id("fingerprint", fingerprint)
}

pub(crate) fn check_run_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidRunId {
            value: id.to_string(),
        })
    }
}

/// The paths of one workspace.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn objects(&self) -> PathBuf {
        self.root.join(OBJECTS)
    }
    pub fn object_dir(&self, digest: &str) -> PathBuf {
        self.objects().join(shard(digest)).join(digest)
    }
    pub fn object_meta(&self, digest: &str) -> PathBuf {
        self.objects()
            .join(shard(digest))
            .join(format!("{digest}.json"))
    }
    pub fn records(&self) -> PathBuf {
        self.root.join(RECORDS)
    }
    pub fn record(&self, fingerprint: &str) -> PathBuf {
        self.records()
            .join(shard(fingerprint))
            .join(format!("{fingerprint}.json"))
    }
    pub fn runs(&self) -> PathBuf {
        self.root.join(RUNS)
    }
    pub fn run(&self, id: &str) -> PathBuf {
        self.runs().join(format!("{id}.json"))
    }
    /// Marker naming the process that is executing a run (see `owner`).
    pub fn run_owner(&self, id: &str) -> PathBuf {
        self.runs().join(format!("{id}.owner"))
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join(TMP)
    }
    pub fn staging(&self, fingerprint: &str) -> PathBuf {
        self.tmp().join(fingerprint)
    }
    pub fn staging_owner(&self, fingerprint: &str) -> PathBuf {
        self.tmp().join(format!("{fingerprint}.owner"))
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join(LOGS)
    }
}

fn shard(id: &str) -> &str {
    id.get(..2).unwrap_or(id)
}

pub(crate) fn lock_path(workspace: &Path) -> PathBuf {
    workspace.join(LOCK)
}

/// The first `n` characters of an id, for messages.
pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
