//! The seam between the executor and what a stage does.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::context::StageContext;
use crate::error::StageError;

/// What a finished stage reports besides its output files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageMetrics {
    pub metrics: BTreeMap<String, f64>,
    /// Which entry of `metrics` summaries and the lockfile show.
    pub headline: Option<String>,
    /// Device the stage computed on ("cpu", "cuda:0").
    pub device: Option<String>,
    /// The libtorch build a torch stage ran on (`2.11.0+cpu`); none for in-process kinds.
    pub libtorch: Option<String>,
}

/// One stage kind (`command`, `data`, `pretrain`, …).
///
/// `run` is blocking and is called on a blocking thread; it writes only under
/// `ctx.out_dir` (and may keep checkpoints under `ctx.work_dir`), reads inputs only from
/// `ctx.inputs`, and returns [`StageError::Cancelled`] promptly once `ctx.cancel` fires.
pub trait StageKind: Send + Sync {
    /// The `kind:` value in manifests. Everything else about the kind (its version, artifact
    /// type, headline metric) is its descriptor, [`pipelines::KindInfo`].
    fn name(&self) -> &'static str;
    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError>;
}

/// The stage kinds a build knows, by name.
#[derive(Clone, Default)]
pub struct Kinds {
    kinds: BTreeMap<&'static str, Arc<dyn StageKind>>,
}

impl Kinds {
    pub fn register(&mut self, kind: Arc<dyn StageKind>) {
        self.kinds.insert(kind.name(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn StageKind>> {
        self.kinds.get(name)
    }
}
