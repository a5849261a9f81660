//! The official `openai` Python SDK against the server (bigram model): completions, chat,
//! streaming, logprobs, seeds and errors as real clients see them. Needs the project's
//! virtualenv with `scripts/requirements-test.txt` installed (`bash scripts/setup.sh`).

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;
use serve::ApiKeys;

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python at {}: run `bash scripts/setup.sh` (it installs scripts/requirements-test.txt)",
        python.display()
    );
    python
}

fn text_of(ids: &[u32]) -> String {
    String::from_utf8(ids.iter().map(|&i| i as u8).collect()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_works_against_the_server() {
    let ts = start(Options {
        keys: ApiKeys::from_list(["test-key"]),
        ..Default::default()
    })
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .arg(format!("http://{}", ts.addr))
        .arg(MODEL)
        .arg("test-key")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "openai client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &ts.model;

    assert_eq!(v["models"], serde_json::json!([MODEL]));
    let (want, _) = m.greedy(&encode("the d"), 10);
    assert_eq!(v["completion"]["text"], text_of(&want));
    assert_eq!(v["completion"]["finish_reason"], "length");
    assert_eq!(v["completion"]["usage"], serde_json::json!([5, 10, 15]));
    assert_eq!(v["completion_stream"], text_of(&want));

    let prompt = encode("the cat sat");
    let lp = &v["echo_logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len(), prompt.len() + 1);
    assert!(lp["token_logprobs"][0].is_null());
    for i in 1..prompt.len() {
        let got = lp["token_logprobs"][i].as_f64().unwrap() as f32;
        assert!((got - m.logprob(prompt[i - 1], prompt[i])).abs() < 1e-5);
        assert_eq!(lp["top_counts"][i], 2);
    }

    let chat = &v["chat"];
    assert_eq!(chat["role"], "assistant");
    let n = chat["completion_tokens"].as_u64().unwrap() as usize;
    assert_eq!(chat["logprobs"].as_array().unwrap().len(), n);
    assert!(chat["top_counts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c == 2));
    assert_eq!(v["chat_stream"]["content"], chat["content"]);
    assert_eq!(
        v["chat_stream"]["completion_tokens"],
        chat["completion_tokens"]
    );

    let seeded = v["seeded"].as_array().unwrap();
    assert_eq!(seeded[0], seeded[1], "same seed, same completions");
    assert_ne!(seeded[0][0], seeded[0][1], "the two choices differ");

    assert_eq!(
        v["errors"]["unknown_model"],
        serde_json::json!([404, "model_not_found"])
    );
    assert_eq!(
        v["errors"]["too_long"],
        serde_json::json!([400, "max_tokens"])
    );
    assert_eq!(v["errors"]["wrong_key"], serde_json::json!([401]));
    ts.shutdown().await;
}
