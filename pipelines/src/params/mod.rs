//! Stage kinds and their typed parameters.
//!
//! Each kind is a params struct (with `deny_unknown_fields` and documented defaults) that
//! implements [`StageKind`] — which carries the kind's descriptor, [`KindInfo`] — plus one entry
//! in [`KINDS`]. Loading dispatches on `kind:` through that table, so each struct is
//! deserialized from its own node and errors keep their positions; the executor, `plan`,
//! `schema`, `show` and the torch dispatcher read the same table (docs/internals.md, "Adding a
//! stage kind").

mod command;
mod data;
mod deploy;
mod dpo;
mod eval;
mod export;
mod pretrain;
mod quantize;
mod sft;
mod tokenizer;

pub use command::CommandParams;
pub use data::{
    CleanParams, DataParams, DataSource, Dedup, Generator, InvalidUtf8, NearDedupParams, Normalize,
    QualityParams, RecordShape, SourceFormat, SourceSpec, SplitName, SplitParams, SyntheticSource,
    ValSelection, DEFAULT_COLUMN, DEFAULT_VAL_FRACTION,
};
pub use deploy::{DeployParams, DeployServer, DeploySmoke};
pub use dpo::{DpoLoss, DpoParams};
pub use eval::{ChoiceFormat, EvalParams, EvalTask, TaskKind, DEFAULT_MAX_NEW_TOKENS};
pub use export::{ExportArchitecture, ExportFormat, ExportParams, GgufDtype};
pub use pretrain::{
    swiglu_hidden, Mlp, ModelArchitecture, ModelParams, ModelPreset, Norm, Positions, Precision,
    PretrainParams, TrainParams, Windows,
};
pub use quantize::{QuantScheme, QuantizeParams};
pub use sft::{LoraAlsoTrain, LoraParams, LoraTarget, SftEval, SftParams};
pub use tokenizer::{
    TokenizerModel, TokenizerParams, DEFAULT_MIN_FREQUENCY, DEFAULT_PATTERN,
    DEFAULT_SPECIAL_TOKENS, DEFAULT_VOCAB_SIZE,
};

use std::any::Any;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::artifact::ArtifactType;
use crate::de::{from_node, Issue, IssueKind};
use crate::manifest::{Reference, StageParams};
use crate::yaml::Node;

/// A problem found by [`StageKind::validate`]: a key path in the params, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    /// Key path inside the params (`env.FOO`, `deps[0]`).
    pub path: String,
    /// Point at the key itself (a bad name) rather than its value.
    pub on_key: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// Where a kind's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// Inside the `binarylm` process (an implementation registered in `stages::kinds`).
    InProcess,
    /// In the `binarylm-torch` executable, which links libtorch (an entry in
    /// `stages_torch::kinds::TORCH_KINDS`).
    Torch,
}

/// What `run --locked` may expect of a kind's output when it is computed again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reproducibility {
    /// The same inputs give the same bytes on any machine, with any thread count.
    Exact,
    /// Bit-identical on one libtorch build, on the CPU, with the same thread count; elsewhere
    /// (a GPU, another thread count or libtorch) reduction order changes the last bits, so each
    /// listed metric must stay within its tolerance of the locked value instead.
    SameMachine(&'static [Tolerance]),
}

/// How far a metric may move when a stage is reproduced where bit-exactness is not expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub metric: &'static str,
    /// Relative: 0.01 accepts a value within ±1 % of the locked one.
    pub relative: f64,
}

/// What binarylm knows about a stage kind, declared once beside its params.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindInfo {
    /// The name written after `kind:`.
    pub name: &'static str,
    /// Implementation version, part of every fingerprint of this kind. Bump it (with a comment
    /// saying why) whenever the same params would now produce different output.
    pub version: u32,
    /// The type of artifact a stage of this kind produces, checked against what the keys of
    /// downstream stages accept.
    pub produces: ArtifactType,
    /// Where the work runs.
    pub runner: Runner,
    /// The metric that summaries and the lockfile show, when the kind has one.
    pub headline: Option<&'static str>,
    /// What `run --locked` checks when the stage is computed again (docs/pipelines.md,
    /// "What reproducible means").
    pub reproducible: Reproducibility,
}

/// A stage kind: its descriptor, its params struct, and what it knows about its references.
pub(crate) trait StageKind:
    Serialize
    + DeserializeOwned
    + schemars::JsonSchema
    + Clone
    + PartialEq
    + std::fmt::Debug
    + Send
    + Sync
    + Sized
    + 'static
{
    /// The kind's descriptor.
    const INFO: KindInfo;

    /// Upstream stages named in the params, with the key path they were written at and the
    /// artifact types that key accepts.
    fn references(&self) -> Vec<Reference>;

    /// What this stage produces: the descriptor's type, unless the params say (a command's
    /// `produces:`).
    fn produces(&self) -> ArtifactType {
        Self::INFO.produces
    }

    /// Checks that types cannot express (empty strings, reserved names, shapes that do not fit).
    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }

    /// Files under the manifest's directory whose content the stage reads (relative paths,
    /// sorted): their digests are part of its fingerprint.
    fn local_files(&self, _manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        Ok(Vec::new())
    }
}

/// A pattern of a stage's local files that could not be expanded.
#[derive(Debug, thiserror::Error)]
#[error("{pattern}: {source}")]
pub struct LocalFilesError {
    /// The path or glob as written in the manifest.
    pub pattern: String,
    #[source]
    pub source: std::io::Error,
}

/// The object-safe face of a kind, so [`StageParams`] holds any kind without an enum.
pub(crate) trait KindParams: std::fmt::Debug + Send + Sync {
    fn info(&self) -> KindInfo;
    fn produces(&self) -> ArtifactType;
    fn references(&self) -> Vec<Reference>;
    fn canonical(&self) -> serde_json::Value;
    fn local_files(&self, manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError>;
    fn as_any(&self) -> &dyn Any;
}

impl<K: StageKind> KindParams for K {
    fn info(&self) -> KindInfo {
        K::INFO
    }

    fn produces(&self) -> ArtifactType {
        StageKind::produces(self)
    }

    fn references(&self) -> Vec<Reference> {
        StageKind::references(self)
    }

    fn canonical(&self) -> serde_json::Value {
        // Plain structs with string keys always serialize. Failing loudly beats a `Null` that
        // would give different params the same fingerprint.
        let value = serde_json::to_value(self).expect("stage params serialize to JSON");
        sort_keys(value)
    }

    fn local_files(&self, manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        StageKind::local_files(self, manifest_dir)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Rebuilds objects with keys in sorted order, whatever map type serde_json was built with
/// (another crate enabling `preserve_order` would otherwise change the canonical form).
pub(crate) fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

/// How to load and describe one kind.
pub(crate) struct KindEntry {
    pub info: KindInfo,
    /// Deserializes and validates the params from the stage's node (minus `kind`/`resources`).
    pub parse: fn(&Node) -> Result<StageParams, Vec<Issue>>,
    /// Deserializes params written by [`StageParams`]'s `Serialize` (the torch job file).
    pub from_json: fn(serde_json::Value) -> Result<StageParams, serde_json::Error>,
    /// The params struct's JSON Schema (inline; nested types go to the generator's `$defs`).
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl KindEntry {
    const fn of<K: StageKind>() -> KindEntry {
        KindEntry {
            info: K::INFO,
            parse: parse_kind::<K>,
            from_json: from_json::<K>,
            schema: schema_of::<K>,
        }
    }
}

/// Every stage kind binarylm knows, in the order shown to users. Adding a kind: its params
/// file in this directory and one line here (docs/internals.md, "Adding a stage kind").
pub(crate) static KINDS: &[KindEntry] = &[
    KindEntry::of::<DataParams>(),
    KindEntry::of::<CommandParams>(),
    KindEntry::of::<TokenizerParams>(),
    KindEntry::of::<PretrainParams>(),
    KindEntry::of::<SftParams>(),
    KindEntry::of::<DpoParams>(),
    KindEntry::of::<DeployParams>(),
    KindEntry::of::<EvalParams>(),
    KindEntry::of::<QuantizeParams>(),
    KindEntry::of::<ExportParams>(),
];

/// The kinds whose stages produce one of `types`, in table order (for hints).
pub(crate) fn kinds_producing(types: &[ArtifactType]) -> Vec<&'static str> {
    KINDS
        .iter()
        .filter(|k| types.contains(&k.info.produces))
        .map(|k| k.info.name)
        .collect()
}

/// The entry for `kind`, if it is known.
pub(crate) fn find_kind(kind: &str) -> Option<&'static KindEntry> {
    KINDS.iter().find(|k| k.info.name == kind)
}

fn from_json<K: StageKind>(value: serde_json::Value) -> Result<StageParams, serde_json::Error> {
    serde_json::from_value::<K>(value).map(StageParams::new)
}

fn parse_kind<K: StageKind>(node: &Node) -> Result<StageParams, Vec<Issue>> {
    let params: K = from_node(node)?;
    let problems = params.validate();
    if problems.is_empty() {
        return Ok(StageParams::new(params));
    }
    Err(problems
        .into_iter()
        .map(|p| {
            let found = if p.on_key {
                node.key_at_path(&p.path)
            } else {
                node.at_path(&p.path)
            };
            let at = found.unwrap_or(node);
            Issue {
                span: at.span,
                width: at.width,
                path: p.path,
                kind: IssueKind::Invalid {
                    message: p.message,
                    hint: p.hint,
                },
            }
        })
        .collect())
}

fn schema_of<K: StageKind>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    K::json_schema(generator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_declares_what_it_produces() {
        let table: Vec<(&str, ArtifactType)> = KINDS
            .iter()
            .map(|k| (k.info.name, k.info.produces))
            .collect();
        assert_eq!(
            table,
            [
                ("data", ArtifactType::Corpus),
                ("command", ArtifactType::Files),
                ("tokenizer", ArtifactType::Tokenizer),
                ("pretrain", ArtifactType::Model),
                ("sft", ArtifactType::Model),
                ("dpo", ArtifactType::Model),
                ("deploy", ArtifactType::Bundle),
                ("eval", ArtifactType::EvalReport),
                ("quantize", ArtifactType::QuantizedModel),
                ("export", ArtifactType::Export),
            ]
        );
        assert_eq!(crate::produces("pretrain"), Some(ArtifactType::Model));
        assert_eq!(crate::produces("sft"), Some(ArtifactType::Model));
        assert_eq!(crate::produces("dpo"), Some(ArtifactType::Model));
        assert_eq!(crate::produces("ppo"), None);
        assert_eq!(
            kinds_producing(&[ArtifactType::Model, ArtifactType::QuantizedModel]),
            ["pretrain", "sft", "dpo", "quantize"]
        );
    }

    #[test]
    fn names_are_unique_and_descriptors_are_the_table_rows() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.info.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "two kinds share a name");
        for k in KINDS {
            assert!(k.info.version >= 1, "{}: versions start at 1", k.info.name);
        }
    }

    /// The torch job file carries params through `Serialize`/`Deserialize`: they come back as
    /// the same kind with the same values.
    #[test]
    fn params_round_trip_through_json() {
        let text = "name: t\nstages:\n  c:\n    kind: command\n    run: echo hi\n  tok: { kind: tokenizer, data: corpus }\n  corpus: { kind: data, sources: [{ synthetic: { generator: stories, documents: 5 } }] }\n  base: { kind: pretrain, tokenizer: tok, model: { n_layer: 2 } }\n";
        let m = crate::parse(text, Path::new("p.yaml")).expect("loads");
        for stage in &m.stages {
            let json = serde_json::to_value(&stage.params).expect("serializes");
            assert_eq!(json["kind"], stage.params.kind());
            let back: StageParams = serde_json::from_value(json).expect("deserializes");
            assert_eq!(back, stage.params);
            assert_eq!(back.kind(), stage.params.kind());
        }
        let base = m.stage("base").expect("base");
        let p = base.params.get::<PretrainParams>().expect("typed access");
        assert_eq!(p.model.n_layer, Some(2));
        assert!(base.params.get::<DataParams>().is_none());
        let unknown = serde_json::json!({ "kind": "ppo" });
        assert!(serde_json::from_value::<StageParams>(unknown).is_err());
    }
}
