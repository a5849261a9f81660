//! Stage kinds and their typed parameters.
//!
//! Each kind is a params struct (with `deny_unknown_fields` and documented defaults) that
//! implements [`StageKind`], plus one entry in [`KINDS`]. Loading dispatches on `kind:` through
//! that table, so each struct is deserialized from its own node and errors keep their positions.

mod command;
mod data;
mod deploy;
mod pretrain;
mod tokenizer;

pub use command::CommandParams;
pub use data::{
    CleanParams, DataParams, DataSource, Dedup, Generator, InvalidUtf8, NearDedupParams, Normalize,
    QualityParams, RecordShape, SourceFormat, SourceSpec, SplitName, SplitParams, SyntheticSource,
    ValSelection, DEFAULT_COLUMN, DEFAULT_VAL_FRACTION,
};
pub use deploy::{DeployParams, DeployServer, DeploySmoke};
pub use pretrain::{
    swiglu_hidden, Mlp, ModelArchitecture, ModelParams, ModelPreset, Norm, Positions, Precision,
    PretrainParams, TrainParams,
};
pub use tokenizer::{
    TokenizerModel, TokenizerParams, DEFAULT_MIN_FREQUENCY, DEFAULT_PATTERN,
    DEFAULT_SPECIAL_TOKENS, DEFAULT_VOCAB_SIZE,
};

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

/// A stage kind: its name, its params struct, and what it knows about its references.
pub(crate) trait StageKind:
    Serialize + DeserializeOwned + schemars::JsonSchema + Sized + 'static
{
    /// The name written after `kind:`.
    const KIND: &'static str;

    /// The type of artifact a stage of this kind produces, checked against what the keys of
    /// downstream stages accept.
    const PRODUCES: ArtifactType;

    /// Upstream stages named in the params, with the key path they were written at and the
    /// artifact types that key accepts.
    fn references(&self) -> Vec<Reference>;

    /// Wraps the params in their [`StageParams`] variant.
    fn into_params(self) -> StageParams;

    /// Checks that types cannot express (empty strings, reserved names).
    fn validate(&self) -> Vec<Invalid> {
        Vec::new()
    }
}

/// The object-safe face of a kind, so [`StageParams`] needs a single match.
pub(crate) trait KindParams {
    fn kind(&self) -> &'static str;
    fn produces(&self) -> ArtifactType;
    fn references(&self) -> Vec<Reference>;
    fn canonical(&self) -> serde_json::Value;
}

impl<K: StageKind> KindParams for K {
    fn kind(&self) -> &'static str {
        K::KIND
    }

    fn produces(&self) -> ArtifactType {
        K::PRODUCES
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
    pub name: &'static str,
    /// What a stage of this kind produces.
    pub produces: ArtifactType,
    /// Deserializes and validates the params from the stage's node (minus `kind`/`resources`).
    pub parse: fn(&Node) -> Result<StageParams, Vec<Issue>>,
    /// The params struct's JSON Schema (inline; nested types go to the generator's `$defs`).
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl KindEntry {
    const fn of<K: StageKind>() -> KindEntry {
        KindEntry {
            name: K::KIND,
            produces: K::PRODUCES,
            parse: parse_kind::<K>,
            schema: schema_of::<K>,
        }
    }
}

/// Every stage kind binarylm knows, in the order shown to users.
pub(crate) static KINDS: &[KindEntry] = &[
    KindEntry::of::<DataParams>(),
    KindEntry::of::<CommandParams>(),
    KindEntry::of::<TokenizerParams>(),
    KindEntry::of::<PretrainParams>(),
    KindEntry::of::<DeployParams>(),
];

/// The kinds whose stages produce one of `types`, in table order (for hints).
pub(crate) fn kinds_producing(types: &[ArtifactType]) -> Vec<&'static str> {
    KINDS
        .iter()
        .filter(|k| types.contains(&k.produces))
        .map(|k| k.name)
        .collect()
}

/// The entry for `kind`, if it is known.
pub(crate) fn find_kind(kind: &str) -> Option<&'static KindEntry> {
    KINDS.iter().find(|k| k.name == kind)
}

fn parse_kind<K: StageKind>(node: &Node) -> Result<StageParams, Vec<Issue>> {
    let params: K = from_node(node)?;
    let problems = params.validate();
    if problems.is_empty() {
        return Ok(params.into_params());
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
        let table: Vec<(&str, ArtifactType)> = KINDS.iter().map(|k| (k.name, k.produces)).collect();
        assert_eq!(
            table,
            [
                ("data", ArtifactType::Corpus),
                ("command", ArtifactType::Files),
                ("tokenizer", ArtifactType::Tokenizer),
                ("pretrain", ArtifactType::Model),
                ("deploy", ArtifactType::Bundle),
            ]
        );
        assert_eq!(crate::produces("pretrain"), Some(ArtifactType::Model));
        assert_eq!(crate::produces("sft"), None);
        assert_eq!(
            kinds_producing(&[ArtifactType::Model, ArtifactType::QuantizedModel]),
            ["pretrain"]
        );
    }
}
