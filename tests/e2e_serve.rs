//! Serving through the real binaries: a tiny model trained by `binarylm run` (data → tokenizer
//! → pretrain) and deployed by a `deploy` stage (bundle + smoke test), then `binarylm serve`d
//! and driven by the official `openai` Python SDK (completions, chat, streaming, logprobs,
//! seeds), raw HTTP for malformed requests, and SIGTERM for a clean shutdown.

mod common;
use common::server::Server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{outcomes, python, stage, Project};
use serde_json::Value;

/// Model id the deploy stage gives its bundle.
const BUNDLE_NAME: &str = "tiny-api";

const MANIFEST: &str = r#"
name: serve-e2e
seed: 3
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 300 } }]
    split: { val_fraction: 0.1 }
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 64}
    train: {steps: 40, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 20, eval_batches: 2, log_every: 10}
  api:
    kind: deploy
    model: base
    name: tiny-api
    device: cpu
    server: { max_batch: 4 }
    smoke: { max_tokens: 8 }
"#;

impl Server {
    /// Sends one raw HTTP/1.1 request; returns the status and the body.
    fn raw(&self, request: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {resp:?}"));
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.raw(&format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.get_with(path, "")
    }

    /// A GET with extra header lines (each ending in `\r\n`).
    fn get_with(&self, path: &str, headers: &str) -> (u16, String) {
        self.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
        ))
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child process by pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The error object of an OpenAI error response.
fn error_of(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"].clone()
}

fn artifact_dir(p: &Project, stage: &str) -> PathBuf {
    let show = p.run(&["show", stage, "--json"]);
    show.ok();
    PathBuf::from(show.json()["path"].as_str().unwrap())
}

fn run_openai_client(url: &str, model: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_e2e.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(url)
        .arg(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openai client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_trained_model_is_deployed_served_and_used_by_the_openai_sdk() {
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    let (r, report) = p.run_json(&[]);
    r.ok();
    let o = outcomes(&report);
    assert_eq!(o["base"], "ran", "{report}");
    assert_eq!(o["api"], "ran", "{report}");

    // The deploy stage: a bundle, smoke-tested, with latency and throughput as metrics.
    let api = stage(&report, "api");
    assert_eq!(api["headline"], "chat_tokens_per_s", "{api}");
    let m = &api["metrics"];
    for key in [
        "completion_latency_s",
        "completion_tokens_per_s",
        "chat_time_to_first_token_s",
        "chat_latency_s",
        "chat_tokens_per_s",
    ] {
        assert!(m[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {m}");
    }
    assert!(m["completion_tokens"].as_f64().unwrap() <= 8.0, "{m}");
    let bundle = artifact_dir(&p, "api");
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "server.json",
        "bundle.json",
        "smoke.json",
    ] {
        assert!(bundle.join(f).is_file(), "{f} missing from the bundle");
    }
    let server_json: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("server.json")).unwrap())
            .unwrap();
    assert_eq!(server_json["max_batch"], 4);
    let base_dir = artifact_dir(&p, "base");
    assert_eq!(
        std::fs::read(bundle.join("model.safetensors")).unwrap(),
        std::fs::read(base_dir.join("model.safetensors")).unwrap()
    );
    // Cached the second time.
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(outcomes(&report)["api"], "cached", "{report}");

    // `binarylm serve <pretrain stage>`: served under the stage's name.
    let server = Server::start(&p, "base");
    let v = run_openai_client(&server.url, "base");
    assert_eq!(v["models"], serde_json::json!(["base"]));
    let prompt_len = v["prompt_ids"].as_array().unwrap().len();
    assert!(prompt_len > 1, "{v}");

    let c = &v["completion"];
    let usage = c["usage"].as_array().unwrap();
    assert_eq!(usage[0], prompt_len, "prompt tokens = /tokenize count");
    let n = usage[1].as_u64().unwrap();
    assert!((1..=12).contains(&n), "{c}");
    assert_eq!(usage[2].as_u64().unwrap(), prompt_len as u64 + n);
    if n < 12 {
        assert_eq!(c["finish_reason"], "stop", "{c}");
    } else {
        assert_eq!(c["finish_reason"], "length", "{c}");
    }
    // Greedy decoding is deterministic, and the same through every path.
    assert_eq!(v["completion_again"], c["text"]);
    assert_eq!(v["completion_stream"], c["text"]);
    assert_eq!(v["completion_by_ids"], c["text"]);

    // Prompt log-probabilities: one entry per prompt token plus the generated one, the first
    // `null`; each a log-probability, the greedy token the most likely of its top 3.
    let echo = &v["echo"];
    let lps = echo["token_logprobs"].as_array().unwrap();
    assert_eq!(lps.len(), prompt_len + 1, "{echo}");
    assert!(lps[0].is_null());
    for lp in &lps[1..] {
        let lp = lp.as_f64().unwrap();
        assert!(lp <= 0.0 && lp.is_finite(), "{echo}");
    }
    let tops = echo["top_logprobs"].as_array().unwrap();
    assert!(tops[0].is_null());
    let last_top = tops[prompt_len].as_object().unwrap();
    assert_eq!(last_top.len(), 3, "{echo}");
    let best = last_top
        .values()
        .map(|x| x.as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    let chosen = lps[prompt_len].as_f64().unwrap();
    assert!(
        (best - chosen).abs() < 1e-4,
        "greedy picked {chosen}, best {best}"
    );
    assert!(echo["text"]
        .as_str()
        .unwrap()
        .starts_with("Once upon a time"));

    // Seeded sampling repeats; the two choices of one request differ.
    let seeded = v["seeded"].as_array().unwrap();
    assert_eq!(seeded[0], seeded[1], "same seed, same completions");
    assert_ne!(seeded[0][0], seeded[0][1], "{seeded:?}");

    let chat = &v["chat"];
    assert_eq!(chat["role"], "assistant");
    let chat_tokens = chat["completion_tokens"].as_u64().unwrap();
    assert_eq!(
        chat["logprobs"].as_array().unwrap().len() as u64,
        chat_tokens
    );
    assert_eq!(v["chat_stream"]["content"], chat["content"]);
    assert_eq!(v["chat_stream"]["completion_tokens"], chat_tokens);
    assert!(v["chat_stream"]["chunks"].as_u64().unwrap() >= 2);

    assert_eq!(v["errors"]["unknown_model"][0], 404);
    assert_eq!(v["errors"]["too_long"][0], 400);
    assert!(v["errors"]["too_long"][1]
        .as_str()
        .unwrap()
        .contains("context"));

    // Malformed requests against the real model: the OpenAI error object, the right status,
    // and the server keeps serving.
    let model = r#""model":"base""#;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "JSON"),
        (
            format!(r#"{{{model},"prompt":"x","max_tokens":"ten"}}"#),
            400,
            "max_tokens",
        ),
        (
            format!(r#"{{{model},"prompt":"x","max_tokens":-1}}"#),
            400,
            "max_tokens",
        ),
        (
            format!(r#"{{{model},"prompt":"x","temperature":-0.5}}"#),
            400,
            "temperature",
        ),
        (r#"{"model":"gpt-4","prompt":"x"}"#.into(), 404, "gpt-4"),
        (
            format!(r#"{{{model},"prompt":[1,2,99999],"max_tokens":1}}"#),
            400,
            "99999",
        ),
        (
            format!(r#"{{{model},"prompt":"x","max_tokens":64}}"#),
            400,
            "context",
        ),
        (
            format!(r#"{{{model},"prompt":"x","bogus":1}}"#),
            400,
            "bogus",
        ),
    ];
    for (body, status, needle) in &cases {
        let (got, resp) = server.post("/v1/completions", body);
        assert_eq!(got, *status, "{body} → {resp}");
        let err = error_of(&resp);
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{body} → {resp}"
        );
        assert!(err["type"].is_string(), "{resp}");
    }
    let (got, resp) = server.post(
        "/v1/chat/completions",
        r#"{"model":"base","messages":[{"role":"wizard","content":"x"}]}"#,
    );
    assert_eq!(got, 400, "{resp}");
    let (got, resp) = server.get("/health");
    assert_eq!(got, 200, "{resp}");
    let (got, metrics) = server.get("/metrics");
    assert_eq!(got, 200);
    assert!(metrics.contains("time_to_first_token"), "{metrics}");
    let (got, _) = server.post(
        "/v1/completions",
        r#"{"model":"base","prompt":"x","max_tokens":2}"#,
    );
    assert_eq!(got, 200, "still serving after the bad requests");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM should stop it cleanly: {status}");

    // `binarylm serve <deploy stage>`: the bundle's name; API keys from the environment.
    let server = Server::start_with(&p, "api", &[("BINARYLM_API_KEYS", "sesame")]);
    let (got, body) = server.get("/v1/models");
    assert_eq!(got, 401, "{body}");
    let (got, body) = server.get_with("/v1/models", "Authorization: Bearer wrong\r\n");
    assert_eq!(got, 401, "{body}");
    let (got, body) = server.get_with("/v1/models", "Authorization: Bearer sesame\r\n");
    assert_eq!(got, 200);
    let models: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(models["data"][0]["id"], BUNDLE_NAME, "{models}");
    assert_eq!(models["data"][0]["max_model_len"], 64, "{models}");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM should stop it cleanly: {status}");
}

#[test]
fn bad_serve_targets_and_deploy_inputs_fail_clearly() {
    let p = Project::new();
    let r = p.run(&["serve", "nothing-here", "--port", "0"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing-here"), "{}", r.stderr);

    // A directory that is not a model.
    std::fs::create_dir_all(p.file("empty")).unwrap();
    std::fs::write(p.file("empty/tokenizer.json"), "{}").unwrap();
    let r = p.run(&["serve", "empty", "--port", "0", "--device", "cpu"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("config.json"), "{}", r.stderr);

    // A deploy stage pointed at a stage that makes no model is refused when the manifest loads
    // (exit 2), before `notes` runs.
    p.write(
        "pipeline.yaml",
        "name: bad-deploy\nstages:\n  notes:\n    kind: command\n    run: echo hi > \"$BINARYLM_OUT/notes.txt\"\n  api:\n    kind: deploy\n    model: notes\n    device: cpu\n",
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("wrong-artifact-type") && r.stderr.contains("`notes`"),
        "{}",
        r.stderr
    );
}
