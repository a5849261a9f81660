//! The typed manifest: what `load` returns and every other crate reads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifact::ArtifactType;
use crate::params::{find_kind, KindInfo, KindParams, LocalFilesError};
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
    /// `remotes:`, by name: where `push`/`pull` share artifacts. Never part of a fingerprint.
    pub remotes: std::collections::BTreeMap<String, crate::RemoteConfig>,
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

/// A stage's kind and its typed parameters.
///
/// Holds the params struct of any kind (the kinds table in `params/` lists them); code that
/// needs one kind's fields asks for them by type with [`StageParams::get`], and everything
/// kind-independent goes through the kind's descriptor ([`StageParams::info`]).
#[derive(Clone)]
pub struct StageParams(Arc<dyn KindParams>);

impl StageParams {
    pub(crate) fn new(params: impl KindParams + 'static) -> StageParams {
        StageParams(Arc::new(params))
    }

    /// The kind's descriptor: name, version, artifact type, runner, headline metric.
    pub fn info(&self) -> KindInfo {
        self.0.info()
    }

    /// The kind's name as written in manifests (`command`).
    pub fn kind(&self) -> &'static str {
        self.info().name
    }

    /// The type of artifact this stage produces (its kind's, or a command's `produces:`).
    pub fn produces(&self) -> ArtifactType {
        self.0.produces()
    }

    /// The params struct of this stage, when it is of kind `K`
    /// (`params.get::<pipelines::DataParams>()`).
    pub fn get<K: 'static>(&self) -> Option<&K> {
        self.0.as_any().downcast_ref::<K>()
    }

    /// The upstream stages this stage reads, with the key each came from (`inputs[1]`).
    pub fn references(&self) -> Vec<Reference> {
        self.0.references()
    }

    /// Resolved params (defaults applied) as JSON with sorted object keys.
    pub fn canonical(&self) -> serde_json::Value {
        self.0.canonical()
    }

    /// Files under `manifest_dir` whose content the stage reads (relative, sorted): part of
    /// its fingerprint.
    pub fn local_files(&self, manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        self.0.local_files(manifest_dir)
    }
}

impl fmt::Debug for StageParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Same kind and same resolved params.
impl PartialEq for StageParams {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.canonical() == other.canonical()
    }
}

/// As the canonical params with `kind` added: what the torch job file carries.
impl serde::Serialize for StageParams {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = self.canonical();
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("kind".to_string(), self.kind().into());
        }
        value.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for StageParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let kind = value
            .as_object_mut()
            .and_then(|m| m.remove("kind"))
            .and_then(|k| k.as_str().map(str::to_string))
            .ok_or_else(|| D::Error::custom("stage params without a `kind`"))?;
        let entry =
            find_kind(&kind).ok_or_else(|| D::Error::custom(format!("unknown kind `{kind}`")))?;
        (entry.from_json)(value).map_err(D::Error::custom)
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
