//! Every class of manifest error, one fixture each (plus one with several errors at once):
//! the error code, its line:col, and a snapshot of the rendered message.

use std::path::Path;

use pipelines::ManifestErrors;

fn errors_of(name: &str) -> ManifestErrors {
    // A relative path, as a user would type it: rendered messages must show it unchanged.
    let path = format!("tests/malformed/{name}.yaml");
    match pipelines::load(Path::new(&path)) {
        Ok(manifest) => panic!("{path} loaded but should not: {manifest:?}"),
        Err(errors) => errors,
    }
}

/// Asserts the errors' (code, line, col) and snapshots the rendering.
fn check(name: &str, expected: &[(&str, usize, usize)]) {
    let errors = errors_of(name);
    let found: Vec<(&str, usize, usize)> = errors
        .errors
        .iter()
        .map(|e| {
            let (line, col) = e.span.map(|s| (s.line, s.col)).unwrap_or((0, 0));
            (e.code(), line, col)
        })
        .collect();
    assert_eq!(found, expected, "\n{errors}");
    for error in &errors.errors {
        assert!(error.hint.is_some(), "no hint for {}", error.code());
        assert_eq!(
            error.path,
            Path::new(&format!("tests/malformed/{name}.yaml"))
        );
    }
    let rendered = errors.to_string();
    assert!(!rendered.contains('\x1b'), "no colours in Display");
    insta::assert_snapshot!(name, rendered);
}

#[test]
fn syntax() {
    check("syntax", &[("manifest::syntax", 6, 8)]);
}

#[test]
fn empty() {
    check("empty", &[("manifest::empty", 1, 1)]);
}

#[test]
fn not_a_mapping() {
    check("not_a_mapping", &[("manifest::not-a-mapping", 1, 1)]);
}

#[test]
fn missing_name() {
    check("missing_name", &[("manifest::missing-key", 1, 1)]);
}

#[test]
fn missing_stages() {
    check("missing_stages", &[("manifest::missing-key", 1, 1)]);
}

#[test]
fn bad_remotes() {
    check(
        "bad_remotes",
        &[
            ("manifest::invalid-value", 3, 8),
            ("manifest::unknown-key", 4, 31),
            ("manifest::invalid-value", 5, 3),
            ("manifest::invalid-value", 7, 3),
            ("manifest::invalid-value", 8, 8),
        ],
    );
}

#[test]
fn unknown_top_level_key() {
    check("unknown_top_level_key", &[("manifest::unknown-key", 2, 1)]);
}

#[test]
fn stages_empty() {
    check("stages_empty", &[("manifest::invalid-stages", 2, 9)]);
}

#[test]
fn stages_not_a_mapping() {
    check(
        "stages_not_a_mapping",
        &[("manifest::invalid-stages", 3, 3)],
    );
}

#[test]
fn stage_not_a_mapping() {
    check(
        "stage_not_a_mapping",
        &[("manifest::stage-not-a-mapping", 3, 9)],
    );
}

#[test]
fn missing_kind() {
    check("missing_kind", &[("manifest::missing-kind", 3, 3)]);
}

#[test]
fn unknown_kind() {
    check("unknown_kind", &[("manifest::unknown-kind", 4, 11)]);
}

#[test]
fn unknown_key() {
    check("unknown_key", &[("manifest::unknown-key", 7, 5)]);
}

#[test]
fn wrong_type_seed() {
    check("wrong_type_seed", &[("manifest::wrong-type", 2, 7)]);
}

#[test]
fn wrong_type_inputs() {
    check("wrong_type_inputs", &[("manifest::wrong-type", 6, 13)]);
}

#[test]
fn missing_run() {
    check("missing_run", &[("manifest::missing-param", 3, 3)]);
}

#[test]
fn duplicate_stage() {
    check("duplicate_stage", &[("manifest::duplicate-stage", 6, 3)]);
}

#[test]
fn invalid_stage_name() {
    check(
        "invalid_stage_name",
        &[("manifest::invalid-stage-name", 3, 3)],
    );
}

#[test]
fn unknown_stage() {
    check("unknown_stage", &[("manifest::unknown-stage", 9, 20)]);
}

#[test]
fn self_reference() {
    check("self_reference", &[("manifest::self-reference", 6, 14)]);
}

#[test]
fn cycle() {
    check("cycle", &[("manifest::cycle", 6, 14)]);
}

#[test]
fn alias_bomb() {
    check("alias_bomb", &[("manifest::alias-bomb", 5, 45)]);
}

#[test]
fn duplicate_key() {
    check("duplicate_key", &[("manifest::duplicate-key", 7, 5)]);
}

#[test]
fn negative_resources() {
    check(
        "negative_resources",
        &[("manifest::invalid-resources", 6, 37)],
    );
}

#[test]
fn zero_threads() {
    check("zero_threads", &[("manifest::invalid-resources", 7, 16)]);
}

#[test]
fn multiple_documents() {
    check(
        "multiple_documents",
        &[("manifest::multiple-documents", 6, 1)],
    );
}

#[test]
fn invalid_env() {
    check(
        "invalid_env",
        &[
            ("manifest::invalid-value", 7, 7),
            ("manifest::invalid-value", 8, 7),
        ],
    );
}

#[test]
fn many_errors_are_all_reported() {
    check(
        "many_errors",
        &[
            ("manifest::invalid-value", 3, 7),
            ("manifest::unknown-key", 8, 5),
            ("manifest::unknown-kind", 10, 11),
            ("manifest::unknown-stage", 14, 25),
            ("manifest::invalid-resources", 15, 26),
            ("manifest::invalid-stage-name", 16, 3),
            ("manifest::duplicate-stage", 19, 3),
        ],
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let errors = errors_of("does_not_exist");
    assert_eq!(errors.codes(), vec!["manifest::io"]);
    assert!(errors
        .to_string()
        .contains("tests/malformed/does_not_exist.yaml"));
}

#[test]
fn every_fixture_has_a_test() {
    let source = include_str!("malformed.rs");
    for entry in std::fs::read_dir("tests/malformed").expect("fixtures") {
        let path = entry.expect("entry").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        assert!(
            source.contains(&format!("check(\"{stem}\""))
                || source.contains(&format!("\"{stem}\",")),
            "fixture {stem} is not checked"
        );
    }
}

#[test]
fn data_unknown_clean_key() {
    check("data_unknown_clean_key", &[("manifest::unknown-key", 8, 7)]);
}

#[test]
fn data_wrong_type() {
    check("data_wrong_type", &[("manifest::wrong-type", 6, 53)]);
}

#[test]
fn data_two_readers() {
    check(
        "data_two_readers",
        &[
            ("manifest::invalid-value", 7, 9),
            ("manifest::invalid-value", 9, 28),
        ],
    );
}

#[test]
fn data_unknown_generator() {
    check(
        "data_unknown_generator",
        &[("manifest::invalid-value", 6, 33)],
    );
}

#[test]
fn tokenizer_invalid() {
    check(
        "tokenizer_invalid",
        &[
            ("manifest::invalid-value", 10, 14),
            ("manifest::invalid-value", 11, 21),
            ("manifest::invalid-value", 11, 33),
            ("manifest::invalid-value", 16, 17),
        ],
    );
}

#[test]
fn deploy_bad_values() {
    check(
        "deploy_bad_values",
        &[
            ("manifest::invalid-value", 9, 13),
            ("manifest::invalid-value", 11, 18),
            ("manifest::invalid-value", 12, 26),
        ],
    );
}

#[test]
fn deploy_model_is_data() {
    check(
        "deploy_model_is_data",
        &[("manifest::wrong-artifact-type", 14, 12)],
    );
}

#[test]
fn pretrain_tokenizer_is_data() {
    check(
        "pretrain_tokenizer_is_data",
        &[("manifest::wrong-artifact-type", 11, 16)],
    );
}

#[test]
fn tokenizer_data_is_tokenizer() {
    check(
        "tokenizer_data_is_tokenizer",
        &[("manifest::wrong-artifact-type", 11, 11)],
    );
}

#[test]
fn deploy_tokenizer_is_model() {
    check(
        "deploy_tokenizer_is_model",
        &[("manifest::wrong-artifact-type", 15, 16)],
    );
}

#[test]
fn deploy_model_is_command() {
    // A command's files have no known layout, so no typed key takes them.
    check(
        "deploy_model_is_command",
        &[("manifest::wrong-artifact-type", 8, 12)],
    );
}

#[test]
fn a_stage_with_invalid_params_is_still_typed() {
    // `corpus` fails its own checks (no sources), yet its kind is known: the reference to it
    // is checked too, and both errors come at once.
    let source = "name: x\nstages:\n  corpus:\n    kind: data\n    sources: []\n  base:\n    kind: pretrain\n    tokenizer: corpus\n";
    let errors = pipelines::parse(source, Path::new("p.yaml")).expect_err("two errors");
    assert_eq!(
        errors.codes(),
        ["manifest::invalid-value", "manifest::wrong-artifact-type"],
        "{errors}"
    );
    let hint = errors.errors[1].hint.as_deref().unwrap_or("");
    assert_eq!(
        hint,
        "`tokenizer` accepts a `tokenizer` stage (or a `command` stage with `produces: tokenizer`); this manifest has none, so add one"
    );
}

#[test]
fn a_command_that_declares_its_output_feeds_a_typed_key() {
    // A user's own step can stand in for a tokenizer stage by saying so.
    let source = "name: x\nstages:\n  tok:\n    kind: command\n    run: cp -r shards/. \"$BINARYLM_OUT\"\n    produces: tokenizer\n  base:\n    kind: pretrain\n    tokenizer: tok\n";
    let m = pipelines::parse(source, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        m.stage("tok").expect("tok").params.produces(),
        pipelines::ArtifactType::Tokenizer
    );
    // Declaring another type is still checked.
    let wrong = source.replace("produces: tokenizer", "produces: model");
    let errors = pipelines::parse(&wrong, Path::new("p.yaml")).expect_err("wrong type");
    assert_eq!(
        errors.codes(),
        ["manifest::wrong-artifact-type"],
        "{errors}"
    );
    assert!(
        errors.errors[0].message.contains("it produces a model"),
        "{errors}"
    );
}

#[test]
fn command_inputs_accept_any_artifact() {
    let source = "name: x\nstages:\n  corpus:\n    kind: data\n    sources: [{ synthetic: { generator: stories, documents: 10 } }]\n  tok:\n    kind: tokenizer\n    data: corpus\n  count:\n    kind: command\n    run: ls\n    inputs: [corpus, tok]\n";
    let manifest = pipelines::parse(source, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.stages.len(), 3);
}

#[test]
fn pretrain_heads_dont_divide() {
    check(
        "pretrain_heads_dont_divide",
        &[("manifest::invalid-value", 12, 22)],
    );
}

#[test]
fn pretrain_static_checks() {
    check(
        "pretrain_static_checks",
        &[
            ("manifest::invalid-value", 14, 18),
            ("manifest::invalid-value", 16, 15),
            ("manifest::invalid-value", 19, 21),
            ("manifest::invalid-value", 20, 11),
            ("manifest::invalid-value", 21, 19),
        ],
    );
}

#[test]
fn eval_bad_tasks() {
    check(
        "eval_bad_tasks",
        &[
            ("manifest::invalid-value", 8, 20),
            ("manifest::invalid-value", 10, 17),
            ("manifest::invalid-value", 11, 50),
            ("manifest::invalid-value", 12, 31),
        ],
    );
}

#[test]
fn eval_bad_generate() {
    check(
        "eval_bad_generate",
        &[
            ("manifest::invalid-value", 10, 17),
            ("manifest::invalid-value", 11, 50),
            ("manifest::invalid-value", 11, 60),
            ("manifest::invalid-value", 11, 81),
            ("manifest::invalid-value", 12, 46),
            ("manifest::invalid-value", 12, 60),
        ],
    );
}

#[test]
fn eval_model_is_tokenizer() {
    check(
        "eval_model_is_tokenizer",
        &[("manifest::wrong-artifact-type", 7, 14)],
    );
}

#[test]
fn quantize_bad_values() {
    check(
        "quantize_bad_values",
        &[
            ("manifest::invalid-value", 9, 17),
            ("manifest::invalid-value", 14, 17),
        ],
    );
}

#[test]
fn sft_bad_values() {
    check(
        "sft_bad_values",
        &[
            ("manifest::invalid-value", 16, 13),
            ("manifest::invalid-value", 17, 13),
            ("manifest::invalid-value", 19, 10),
            ("manifest::invalid-value", 20, 14),
            ("manifest::invalid-value", 21, 16),
            ("manifest::invalid-value", 22, 23),
            ("manifest::invalid-value", 23, 29),
        ],
    );
}

#[test]
fn sft_unknown_lora_target() {
    check(
        "sft_unknown_lora_target",
        &[("manifest::invalid-value", 16, 26)],
    );
}

#[test]
fn sft_model_is_tokenizer() {
    check(
        "sft_model_is_tokenizer",
        &[
            ("manifest::wrong-artifact-type", 14, 12),
            ("manifest::wrong-artifact-type", 15, 11),
        ],
    );
}

#[test]
fn sft_warmup_beyond_steps() {
    check(
        "sft_warmup_beyond_steps",
        &[
            ("manifest::invalid-value", 16, 39),
            ("manifest::invalid-value", 16, 48),
        ],
    );
}

#[test]
fn dpo_bad_values() {
    check(
        "dpo_bad_values",
        &[
            ("manifest::invalid-value", 23, 11),
            ("manifest::invalid-value", 24, 16),
        ],
    );
}

#[test]
fn dpo_unknown_loss() {
    check("dpo_unknown_loss", &[("manifest::invalid-value", 23, 11)]);
}

#[test]
fn dpo_data_is_tokenizer() {
    check(
        "dpo_data_is_tokenizer",
        &[("manifest::wrong-artifact-type", 22, 11)],
    );
}

#[test]
fn export_bad_values() {
    check(
        "export_bad_values",
        &[
            ("manifest::invalid-value", 10, 30),
            ("manifest::invalid-value", 11, 45),
            ("manifest::wrong-artifact-type", 12, 36),
            ("manifest::invalid-value", 13, 53),
            ("manifest::invalid-value", 16, 37),
        ],
    );
}
