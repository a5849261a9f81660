//! binarylm manifests: loading YAML with source positions, validation that reports every error
//! at once, the stage DAG, content fingerprints, and the JSON Schema.
//!
//! ```no_run
//! let manifest = pipelines::load(std::path::Path::new("pipeline.yaml"))?;
//! for &i in manifest.dag().topo_order() {
//!     println!("{} ({})", manifest.stages[i].name, manifest.stages[i].params.kind());
//! }
//! # Ok::<(), pipelines::ManifestErrors>(())
//! ```

mod artifact;
pub mod artifacts;
mod dag;
mod de;
mod diagnostics;
mod fingerprint;
pub mod job;
mod load;
mod local;
mod manifest;
mod params;
mod remotes;
mod schema;
mod span;
mod yaml;

pub use artifact::ArtifactType;
pub use dag::{Dag, UnknownStage};
pub use diagnostics::{ErrorCode, ManifestError, ManifestErrors};
pub use fingerprint::{
    explain, fingerprint, hash_path, Change, FingerprintInput, FINGERPRINT_FORMAT_VERSION,
};
pub use job::{MissingInput, TorchEvent, TorchJob, TORCH_JOB_FORMAT};
pub use load::{load, parse, DEFAULT_SEED};
pub use local::expand_local;
pub use manifest::{Manifest, Reference, Resources, Stage, StageParams};
pub use params::{
    swiglu_hidden, Mlp, ModelArchitecture, ModelParams, ModelPreset, Norm, Positions, Precision,
    PretrainParams, TokenizerModel, TokenizerParams, TrainParams, Windows, DEFAULT_MIN_FREQUENCY,
    DEFAULT_PATTERN, DEFAULT_SPECIAL_TOKENS, DEFAULT_VOCAB_SIZE,
};
pub use params::{ChoiceFormat, EvalParams, EvalTask, TaskKind, DEFAULT_MAX_NEW_TOKENS};
pub use params::{
    CleanParams, CommandParams, DataParams, DataSource, Dedup, Generator, InvalidUtf8,
    NearDedupParams, Normalize, QualityParams, RecordShape, SourceFormat, SourceSpec, SplitName,
    SplitParams, SyntheticSource, ValSelection, DEFAULT_COLUMN, DEFAULT_VAL_FRACTION,
};
pub use params::{DeployParams, DeployServer, DeploySmoke, DpoLoss, DpoParams};
pub use params::{ExportArchitecture, ExportFormat, ExportParams, GgufDtype};
pub use params::{KindInfo, LocalFilesError, Reproducibility, Runner, Tolerance};
pub use params::{LoraAlsoTrain, LoraParams, LoraTarget, SftEval, SftParams};
pub use params::{QuantScheme, QuantizeParams};
pub use remotes::{valid_remote_name, RemoteConfig};
pub use schema::json_schema;
pub use span::Span;

/// Names of every stage kind binarylm knows, in the order shown to users.
pub fn kinds() -> Vec<&'static str> {
    params::KINDS.iter().map(|k| k.info.name).collect()
}

/// The descriptor of `kind` (name, version, artifact type, runner, headline), or `None` for a
/// kind binarylm does not know.
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    params::find_kind(kind).map(|k| &k.info)
}

/// Every kind's descriptor, in the order shown to users.
pub fn kind_infos() -> impl Iterator<Item = &'static KindInfo> {
    params::KINDS.iter().map(|k| &k.info)
}

/// The type of artifact a stage of `kind` produces, or `None` for a kind binarylm does not know.
pub fn produces(kind: &str) -> Option<ArtifactType> {
    params::find_kind(kind).map(|k| k.info.produces)
}
