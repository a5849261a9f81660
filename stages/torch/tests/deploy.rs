//! The `deploy` stage in process: a (random-weight) model and a char tokenizer become a bundle
//! that is served on a loopback port and smoke-tested; inputs that cannot work fail before any
//! server starts, naming the stage and the fix.

use std::path::{Path, PathBuf};

use pipelines::TorchJob;
use stages_torch::deploy::{self, DeployError};
use stages_torch::model::{Gpt, ModelConfig, CONFIG_FILE, WEIGHTS_FILE};
use stages_torch::server::{BundleInfo, ServingError};
use stages_torch::train::Observer;
use tch::Device;
use tokenizer::{train_char, CharConfig, DEFAULT_SPECIAL_TOKENS};

struct Quiet(std::cell::RefCell<Vec<String>>);

impl Observer for Quiet {
    fn phase(&self, _text: &str) {}
    fn progress(&self, _done: u64, _total: Option<u64>) {}
    fn log(&self, line: &str) {
        self.0.borrow_mut().push(line.to_string());
    }
}

/// A model directory like a pretrain artifact's: config, weights and tokenizer. The model has
/// `extra_vocab` more (or, negative, fewer) rows than the tokenizer has ids.
fn model_dir(root: &Path, extra_vocab: i64) -> PathBuf {
    let dir = root.join("base");
    std::fs::create_dir_all(&dir).unwrap();
    let tok = train_char(
        &["once upon a time there was a cat who sat on a mat."],
        &CharConfig {
            min_frequency: 1,
            special_tokens: DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        },
    )
    .unwrap();
    tok.save(dir.join("tokenizer.json")).unwrap();
    let cfg = ModelConfig {
        n_layer: 1,
        n_head: 2,
        n_kv_head: 2,
        n_embd: 16,
        block_size: 48,
        mlp_hidden: 32,
        ..ModelConfig::preset(
            pipelines::ModelPreset::Tiny,
            (tok.vocab_size() as i64 + extra_vocab) as usize,
        )
    };
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    model.save(&dir.join(WEIGHTS_FILE)).unwrap();
    std::fs::write(dir.join(CONFIG_FILE), serde_json::to_string(&cfg).unwrap()).unwrap();
    dir
}

fn job(root: &Path, mut params: serde_json::Value, inputs: &[(&str, &Path)]) -> TorchJob {
    params["kind"] = "deploy".into();
    let params = serde_json::from_value(params).expect("deploy params");
    TorchJob {
        format: pipelines::TORCH_JOB_FORMAT,
        kind: "deploy".into(),
        stage: "api".into(),
        manifest_dir: root.to_path_buf(),
        params,
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_path_buf()))
            .collect(),
        out_dir: root.join("out"),
        work_dir: root.join("work"),
        resumed: false,
        seed: 1,
        threads: 1,
        fingerprint: "f".repeat(64),
    }
}

fn deploy_params(job: &TorchJob) -> &pipelines::DeployParams {
    job.params.get().expect("a deploy job")
}

#[test]
fn a_model_is_bundled_served_and_smoke_tested() {
    let root = tempfile::tempdir().unwrap();
    let base = model_dir(root.path(), 3); // padded rows beyond the tokenizer's ids
    let params = serde_json::json!({
        "model": "base", "name": "demo", "device": "cpu",
        "server": {"max_batch": 2, "queue_capacity": 4, "request_timeout_s": 60.0},
        "smoke": {"prompt": "once", "chat": "hi", "max_tokens": 5},
    });
    let j = job(root.path(), params, &[("base", &base)]);
    let obs = Quiet(Default::default());
    let d = deploy::run(&j, deploy_params(&j), &obs).unwrap();

    assert_eq!(d.smoke.model, "demo");
    assert!(d.smoke.completion_tokens <= 5);
    assert!(d.smoke.chat_tokens <= 5);
    let m = d.metrics();
    assert!(m["completion_latency_s"] > 0.0 && m["chat_latency_s"] > 0.0);
    assert!(obs
        .0
        .borrow()
        .iter()
        .any(|l| l.contains("smoke test: completion")));

    let out = root.path().join("out");
    for f in [
        WEIGHTS_FILE,
        CONFIG_FILE,
        "tokenizer.json",
        "server.json",
        "bundle.json",
        "smoke.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let bundle: BundleInfo =
        serde_json::from_str(&std::fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(
        (bundle.name.as_str(), bundle.model_stage.as_str()),
        ("demo", "base")
    );
    let server: serve::ServerConfig =
        serde_json::from_str(&std::fs::read_to_string(out.join("server.json")).unwrap()).unwrap();
    assert_eq!((server.max_batch, server.queue_capacity), (2, 4));
    assert_eq!(
        std::fs::read(out.join(WEIGHTS_FILE)).unwrap(),
        std::fs::read(base.join(WEIGHTS_FILE)).unwrap()
    );
}

#[test]
fn inputs_that_cannot_work_fail_clearly() {
    let root = tempfile::tempdir().unwrap();
    let base = model_dir(root.path(), 0);
    let obs = Quiet(Default::default());

    // A smoke test longer than the context.
    let j = job(
        root.path(),
        serde_json::json!({"model": "base", "device": "cpu", "smoke": {"max_tokens": 48}}),
        &[("base", &base)],
    );
    let e = deploy::run(&j, deploy_params(&j), &obs).unwrap_err();
    assert!(
        matches!(e, DeployError::SmokeTooLong { context: 48, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("smoke.max_tokens"), "{e}");

    // `tokenizer:` names a stage without a tokenizer.json.
    let empty = root.path().join("notok");
    std::fs::create_dir_all(&empty).unwrap();
    let j = job(
        root.path(),
        serde_json::json!({"model": "base", "tokenizer": "notok", "device": "cpu"}),
        &[("base", &base), ("notok", &empty)],
    );
    let e = deploy::run(&j, deploy_params(&j), &obs).unwrap_err();
    assert!(matches!(e, DeployError::NoTokenizer { .. }), "{e}");
    assert!(
        e.to_string().contains("`notok`") && e.to_string().contains("tokenizer stage"),
        "{e}"
    );

    // A model with fewer rows than the tokenizer has ids: the two were not trained together.
    let root2 = tempfile::tempdir().unwrap();
    let small = model_dir(root2.path(), -2);
    let j = job(
        root2.path(),
        serde_json::json!({"model": "base", "device": "cpu", "smoke": {"max_tokens": 4}}),
        &[("base", &small)],
    );
    let e = deploy::run(&j, deploy_params(&j), &obs).unwrap_err();
    assert!(
        matches!(e, DeployError::Serving(ServingError::Load(_))),
        "{e}"
    );
    assert!(e.to_string().contains("not trained together"), "{e}");
}
