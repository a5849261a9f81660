//! The remote cache: stored artifacts move by digest between a workspace and a shared place —
//! a directory on a shared file system or an S3-compatible bucket — so that a colleague (or a
//! cluster job) reuses a result instead of recomputing it.
//!
//! Layout of a remote (under its root or prefix):
//! - `blobs/<aa>/<blake3>`: file contents, by the BLAKE3 of their bytes (shared between
//!   objects, so a file that did not change is sent once);
//! - `objects/<aa>/<digest>.json`: an object's metadata with its Merkle listing. Written after
//!   every blob it lists, so it is the object's commit point: when it is there, so is the rest;
//! - `records/<aa>/<fingerprint>/<digest>.json`: the stage result that produced the object.
//!   Written last; keyed by digest too, so two machines that produced different bytes for one
//!   fingerprint (a non-reproducible stage) never overwrite each other.
//!
//! Every key holds content determined by its name, so two pushers writing one key write the
//! same bytes, and each write is atomic on both backends (a temp file renamed into place; an S3
//! PUT or a completed multipart upload): no reader ever sees half a file. Nothing that arrives
//! is trusted: blobs are hashed as they stream in, and the registry hashes the assembled object
//! again before it becomes visible.

mod client;
mod config;
mod dir;
mod error;
mod keys;
mod progress;
mod pull;
mod push;
mod s3;

pub use client::Remote;
pub use config::{
    add_to_config, config_path, configured, remove_from_config, resolve, Configured, Location,
    Resolved, Source,
};
pub use error::{RemoteError, Result};
pub use progress::Progress;
pub use pull::{fetch, pull, Wanted};
pub use push::push;

/// What a push or pull moved, for its summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Transfer {
    /// Objects sent or received.
    pub objects: usize,
    /// Objects that were already on the other side.
    pub objects_present: usize,
    /// Files (blobs) sent or received.
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Stage records written on the other side.
    pub records: usize,
}

impl Transfer {
    /// "pushed 3 objects (12 files, 4.2 MB), 2 already there".
    pub fn summary(&self, verb: &str, side: &str) -> String {
        format!(
            "{verb} {} object{} ({} file{}, {}), {} already {side}",
            self.objects,
            plural(self.objects),
            self.files,
            plural(self.files),
            human_bytes(self.bytes),
            self.objects_present,
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Bytes in powers of 1000, one decimal.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
