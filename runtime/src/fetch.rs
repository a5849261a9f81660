//! The seam through which `run --pull` asks a remote cache for a result before running a
//! stage. The runtime stays free of network code: the binary plugs a remote in here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use registry::{Registry, StageResult};

/// What a fetcher is asked for: the result of `fingerprint` for `stage` of `manifest` (its
/// absolute path), and under `--locked` the digest the lockfile pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub manifest: String,
    pub stage: String,
    pub fingerprint: String,
    pub digest: Option<registry::Digest>,
}

pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<StageResult>, String>> + Send + 'a>>;

/// A source of stage results other than the local store (a remote cache).
pub trait Fetcher: Send + Sync {
    /// Names it in messages ("remote `origin`").
    fn describe(&self) -> String;

    /// Bring the requested result (and its object) into `registry` and return it; `Ok(None)`
    /// when the source does not have it. An error is reported and the stage runs instead.
    fn fetch(&self, registry: Arc<Registry>, request: FetchRequest) -> FetchFuture<'_>;
}
