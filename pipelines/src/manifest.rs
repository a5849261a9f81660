//! The typed manifest: what `load` returns and every other crate reads.

use std::path::PathBuf;

use crate::artifact::ArtifactType;
use crate::params::{
    CommandParams, DataParams, DeployParams, KindParams, PretrainParams, TokenizerParams,
};
use crate::span::Span;

/// A loaded, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub path: PathBuf,
    /// Directory of the manifest: relative paths (deps, workspace) resolve against it.
    pub dir: PathBuf,
    /// The pipeline's name (`name:`).
    pub name: String,
    /// Seed for every random choice in the pipeline (`seed:`). Default 1337.
    pub seed: u64,
    /// In file order.
    pub stages: Vec<Stage>,
}

impl Manifest {
    /// The stage called `name`, if any.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Index of the stage called `name` in [`Manifest::stages`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }
}

/// One stage of a manifest.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The stage's key under `stages:`.
    pub name: String,
    /// The kind and its typed parameters.
    pub params: StageParams,
    /// `resources:` of the stage (defaults when absent).
    pub resources: Resources,
    /// Span of the stage's key in the `stages:` mapping.
    pub span: Span,
}

/// `resources:` on any stage. Defaults: no GPU, threads = None (share of the budget).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Whether the stage needs a GPU. Default `false`.
    #[serde(default)]
    pub gpu: bool,
    /// CPU threads the stage may use (at least 1). Default: an even share of the run's budget.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub threads: Option<usize>,
}

/// A stage's kind and its typed parameters: one variant per kind.
///
/// Adding a kind: a params struct implementing `StageKind` (in `params/`), a variant here, one
/// arm in `StageParams::as_kind`, and one line in the kinds table (`params::KINDS`).
#[derive(Debug, Clone, PartialEq)]
pub enum StageParams {
    /// `kind: data`.
    Data(DataParams),
    /// `kind: command`.
    Command(CommandParams),
    /// `kind: tokenizer`.
    Tokenizer(TokenizerParams),
    /// `kind: pretrain`.
    /// Boxed: its params are several times the size of the other kinds'.
    Pretrain(Box<PretrainParams>),
    /// `kind: deploy`.
    Deploy(DeployParams),
}

impl StageParams {
    /// Every kind handled the same way goes through this one match.
    fn as_kind(&self) -> &dyn KindParams {
        match self {
            StageParams::Data(p) => p,
            StageParams::Command(p) => p,
            StageParams::Tokenizer(p) => p,
            StageParams::Pretrain(p) => p.as_ref(),
            StageParams::Deploy(p) => p,
        }
    }

    /// The kind's name as written in manifests (`command`).
    pub fn kind(&self) -> &'static str {
        self.as_kind().kind()
    }

    /// The type of artifact this stage produces.
    pub fn produces(&self) -> ArtifactType {
        self.as_kind().produces()
    }

    /// The upstream stages this stage reads, with the key each came from (`inputs[1]`).
    pub fn references(&self) -> Vec<Reference> {
        self.as_kind().references()
    }

    /// Resolved params (defaults applied) as JSON with sorted object keys.
    pub fn canonical(&self) -> serde_json::Value {
        self.as_kind().canonical()
    }
}

/// A reference from one stage to another: `key` is where it was written (e.g. `inputs[1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Name of the referenced (upstream) stage.
    pub stage: String,
    /// Key path inside the referencing stage's params, e.g. `inputs[1]`.
    pub key: String,
    /// The artifact types this key can read; [`Reference::ANY`] (empty) takes every type.
    /// Loading refuses a reference to a stage whose kind produces another type.
    pub accepts: &'static [ArtifactType],
}

impl Reference {
    /// `accepts` of a key that reads whatever its stage produced (`command`'s `inputs`).
    pub const ANY: &'static [ArtifactType] = &[];

    /// Whether this key can read an artifact of type `produced`.
    pub fn accepts_type(&self, produced: ArtifactType) -> bool {
        self.accepts.is_empty() || self.accepts.contains(&produced)
    }
}
