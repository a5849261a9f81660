//! JSON Schema of the manifest, for editor completion and `binarylm schema`.
//!
//! Each kind's params come from its struct (through `schemars`, so field doc comments become
//! descriptions); the top level and the `kind` switch are assembled here, because loading
//! dispatches on `kind` by hand rather than through a serde enum.

use serde_json::{json, Map, Value};

use crate::load::DEFAULT_SEED;
use crate::manifest::Resources;
use crate::params::{find_kind, KINDS};

const NAME_DOC: &str = "Name of the pipeline, shown in plans, runs and the lockfile. Required.";
const SEED_DOC: &str =
    "Seed for every random choice in the pipeline (splits, initialization, sampling). Default 1337.";
const STAGES_DOC: &str = "The stages, by name: lowercase letters, digits, `_` and `-`. Each has a `kind` and that kind's keys; references between stages form the pipeline's graph. Required, at least one.";
const KIND_DOC: &str = "What the stage does; selects which other keys are allowed.";
const RESOURCES_DOC: &str = "Resources the stage needs. Default: no GPU, an even share of threads.";

/// The stage-name rule as a regular expression (see the loader for the same rule in code).
const STAGE_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// Description of a top-level key, for hints.
pub(crate) fn top_level_doc(key: &str) -> Option<&'static str> {
    match key {
        "name" => Some(NAME_DOC),
        "seed" => Some(SEED_DOC),
        "stages" => Some(STAGES_DOC),
        "remotes" => Some(crate::remotes::REMOTES_DOC),
        _ => None,
    }
}

/// Description of a key every stage has (`kind`, `resources`, `resources.threads`).
pub(crate) fn stage_key_doc(key: &str) -> Option<String> {
    match key {
        "kind" => Some(KIND_DOC.to_string()),
        "resources" => Some(RESOURCES_DOC.to_string()),
        _ => {
            let field = key.strip_prefix("resources.")?;
            let schema = schemars::schema_for!(Resources).to_value();
            property_doc(&schema, field)
        }
    }
}

/// Description of a kind's parameter (first segment of `path`), from its doc comment.
pub(crate) fn param_doc(kind: &str, path: &str) -> Option<String> {
    let entry = find_kind(kind)?;
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = (entry.schema)(&mut generator).to_value();
    let field = path.split(['.', '[']).next().unwrap_or(path);
    property_doc(&schema, field)
}

fn property_doc(schema: &Value, field: &str) -> Option<String> {
    schema
        .get("properties")?
        .get(field)?
        .get("description")?
        .as_str()
        .map(|d| d.replace('\n', " "))
}

/// The JSON Schema (draft 2020-12) of a manifest.
///
/// Stages are a `oneOf` over the kinds, each selected by its `kind` constant, with the kind's
/// keys plus `resources`; unknown keys are not allowed anywhere.
pub fn json_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let resources = generator.subschema_for::<Resources>().to_value();
    let remote = generator
        .subschema_for::<crate::remotes::RemoteConfig>()
        .to_value();

    let mut defs = Map::new();
    let mut variants = Vec::new();
    for kind in KINDS {
        let mut stage = (kind.schema)(&mut generator).to_value();
        let title = format!("{}Stage", capitalize(kind.info.name));
        if let Some(object) = stage.as_object_mut() {
            object.remove("$schema");
            let properties = object.entry("properties").or_insert_with(|| json!({}));
            if let Some(properties) = properties.as_object_mut() {
                properties.insert(
                    "kind".to_string(),
                    json!({ "const": kind.info.name, "description": KIND_DOC }),
                );
                let mut res = resources.clone();
                if let Some(r) = res.as_object_mut() {
                    r.insert("description".to_string(), json!(RESOURCES_DOC));
                }
                properties.insert("resources".to_string(), res);
            }
            let required = object.entry("required").or_insert_with(|| json!([]));
            if let Some(required) = required.as_array_mut() {
                required.insert(0, json!("kind"));
            }
            object.insert("title".to_string(), json!(title));
        }
        variants.push(json!({ "$ref": format!("#/$defs/{title}") }));
        defs.insert(title, stage);
    }
    for (name, schema) in generator.take_definitions(true) {
        defs.insert(name, schema);
    }
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.info.name).collect();
    defs.insert(
        "Stage".to_string(),
        json!({
            "description": "One stage: a `kind` and that kind's keys.",
            "type": "object",
            "required": ["kind"],
            "properties": { "kind": { "enum": kinds, "description": KIND_DOC } },
            "oneOf": variants,
        }),
    );

    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://binarylm.dev/schema/manifest.json",
        "title": "binarylm manifest",
        "description": "A pipeline of stages that builds a language model, run with `binarylm run`.",
        "type": "object",
        "required": ["name", "stages"],
        "additionalProperties": false,
        "properties": {
            "name": { "type": "string", "minLength": 1, "description": NAME_DOC },
            "seed": {
                "type": "integer",
                "minimum": 0,
                "default": DEFAULT_SEED,
                "description": SEED_DOC,
            },
            "stages": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": { "pattern": STAGE_NAME_PATTERN },
                "additionalProperties": { "$ref": "#/$defs/Stage" },
                "description": STAGES_DOC,
            },
            "remotes": {
                "type": "object",
                "propertyNames": { "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$" },
                "additionalProperties": {
                    "oneOf": [
                        { "type": "string", "minLength": 1 },
                        remote,
                    ],
                },
                "description": crate::remotes::REMOTES_DOC,
            },
        },
        "$defs": defs,
    })
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_the_keys_and_carries_doc_comments() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).expect("serializes");
        let back: Value = serde_json::from_str(&text).expect("parses back");
        assert_eq!(back, schema);

        assert_eq!(schema["required"], json!(["name", "stages"]));
        assert_eq!(schema["properties"]["seed"]["default"], json!(1337));
        let command = &schema["$defs"]["CommandStage"];
        assert_eq!(command["properties"]["kind"]["const"], json!("command"));
        for key in ["run", "inputs", "deps", "env", "resources"] {
            assert!(
                command["properties"].get(key).is_some(),
                "missing {key}: {command}"
            );
        }
        assert_eq!(command["additionalProperties"], json!(false));
        assert_eq!(command["required"], json!(["kind", "run"]));
        let run_doc = command["properties"]["run"]["description"]
            .as_str()
            .unwrap_or("");
        assert!(run_doc.contains("sh -c"), "{run_doc}");
        let stage = &schema["$defs"]["Stage"];
        assert_eq!(stage["oneOf"][0]["$ref"], json!("#/$defs/DataStage"));
        assert_eq!(stage["oneOf"][1]["$ref"], json!("#/$defs/CommandStage"));
        let data = &schema["$defs"]["DataStage"];
        assert_eq!(data["required"], json!(["kind", "sources"]));
        for key in ["sources", "clean", "split"] {
            assert!(
                data["properties"].get(key).is_some(),
                "missing {key}: {data}"
            );
        }
        let text = text.replace("\\n", "\n");
        assert!(
            text.contains("Default `nfc`"),
            "clean.normalize documents its default"
        );
    }

    #[test]
    fn every_ref_resolves() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).expect("serializes");
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = piece.split('"').next().unwrap_or("");
            let pointer = target.trim_start_matches('#');
            assert!(schema.pointer(pointer).is_some(), "dangling $ref {target}");
        }
    }

    #[test]
    fn docs_feed_hints() {
        assert!(param_doc("command", "inputs[0]").is_some_and(|d| d.contains("BINARYLM_INPUT")));
        assert!(stage_key_doc("resources.threads").is_some_and(|d| d.contains("at least 1")));
        assert_eq!(top_level_doc("seed"), Some(SEED_DOC));
        assert!(param_doc("nope", "run").is_none());
    }
}
