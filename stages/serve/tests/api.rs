//! The OpenAI endpoints against a real (bigram) model: results are checked against the model's
//! own probabilities.

mod common;

use common::*;
use serde_json::{json, Value};

async fn post_json(ts: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(ts.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn text_of(ids: &[u32]) -> String {
    String::from_utf8(ids.iter().map(|&i| i as u8).collect()).unwrap()
}

#[tokio::test]
async fn models_lists_the_served_model() {
    let ts = start(Options::default()).await;
    let v: Value = reqwest::get(ts.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], MODEL);
    assert_eq!(v["data"][0]["max_model_len"], 128);
    let one = reqwest::get(ts.url(&format!("/v1/models/{MODEL}")))
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = reqwest::get(ts.url("/v1/models/gpt-4")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let e: Value = missing.json().await.unwrap();
    assert_eq!(e["error"]["code"], "model_not_found");
    ts.shutdown().await;
}

#[tokio::test]
async fn greedy_completion_matches_the_model() {
    let ts = start(Options::default()).await;
    let prompt = "the d";
    let (want, _) = ts.model.greedy(&encode(prompt), 10);
    let (status, v) = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": prompt, "max_tokens": 10, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], text_of(&want));
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(v["usage"]["completion_tokens"], 10);
    assert_eq!(v["usage"]["total_tokens"], 15);
    ts.shutdown().await;
}

#[tokio::test]
async fn eos_ends_with_stop_and_is_not_in_the_text() {
    let ts = start(Options::default()).await;
    // Trained on "xyz": after "xy" comes "z", then the end of the document.
    let (status, v) = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "xy", "max_tokens": 10, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["text"], "z");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    ts.shutdown().await;
}

#[tokio::test]
async fn stop_strings_cut_the_text() {
    let ts = start(Options::default()).await;
    let prompt = "the d";
    let (want, _) = ts.model.greedy(&encode(prompt), 30);
    let full = text_of(&want);
    let stop = full.chars().nth(3).unwrap().to_string();
    let cut = &full[..full.find(&stop).unwrap()];
    let (_, v) = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": prompt, "max_tokens": 30, "temperature": 0, "stop": [stop]}),
    )
    .await;
    assert_eq!(v["choices"][0]["text"], cut);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    ts.shutdown().await;
}

#[tokio::test]
async fn echo_logprobs_score_the_prompt_like_lm_eval() {
    let ts = start(Options::default()).await;
    let prompt = encode("the cat sat");
    // lm-evaluation-harness's loglikelihood request, with token ids.
    let (status, v) = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": prompt, "max_tokens": 1, "temperature": 0,
               "logprobs": 1, "echo": true, "seed": 1234}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    let token_logprobs = lp["token_logprobs"].as_array().unwrap();
    let top = lp["top_logprobs"].as_array().unwrap();
    assert_eq!(token_logprobs.len(), prompt.len() + 1);
    assert!(token_logprobs[0].is_null());
    assert!(top[0].is_null());
    for i in 1..prompt.len() {
        let want = ts.model.logprob(prompt[i - 1], prompt[i]);
        let got = token_logprobs[i].as_f64().unwrap() as f32;
        assert!((got - want).abs() < 1e-5, "position {i}: {got} vs {want}");
        assert_eq!(top[i].as_object().unwrap().len(), 1);
    }
    // The harness's is_greedy test: the token's logprob equals the best alternative's exactly.
    let (greedy, _) = ts.model.greedy(&prompt, 1);
    let last = token_logprobs.last().unwrap().as_f64().unwrap();
    let best = top
        .last()
        .unwrap()
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(last, best);
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.concat(), format!("the cat sat{}", text_of(&greedy)));
    assert_eq!(
        v["choices"][0]["text"],
        format!("the cat sat{}", text_of(&greedy))
    );
    let offsets: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    assert_eq!(&offsets[..3], &[0, 1, 2]);
    ts.shutdown().await;
}

#[tokio::test]
async fn max_tokens_zero_with_echo_scores_only() {
    let ts = start(Options::default()).await;
    let (status, v) = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "a cat", "max_tokens": 0, "logprobs": 0, "echo": true}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["text"], "a cat");
    assert_eq!(
        v["choices"][0]["logprobs"]["token_logprobs"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(v["usage"]["completion_tokens"], 0);
    ts.shutdown().await;
}

#[tokio::test]
async fn batched_prompts_and_n_choices_are_indexed_and_seeded() {
    let ts = start(Options::default()).await;
    let body = json!({"model": MODEL, "prompt": [[116, 104, 101], [97, 32]], "n": 2, "max_tokens": 8,
                      "temperature": 1.0, "seed": 7});
    let (status, a) = post_json(&ts, "/v1/completions", body.clone()).await;
    assert_eq!(status, 200, "{a}");
    let choices = a["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
    }
    assert_eq!(a["usage"]["prompt_tokens"], 5);
    assert_eq!(a["usage"]["completion_tokens"], 32);
    let (_, b) = post_json(&ts, "/v1/completions", body.clone()).await;
    assert_eq!(a["choices"], b["choices"], "same seed, same text");
    let mut other = body.clone();
    other["seed"] = json!(8);
    other["max_tokens"] = json!(30);
    let (_, c) = post_json(&ts, "/v1/completions", other).await;
    assert_ne!(a["choices"][0]["text"], c["choices"][0]["text"]);
    ts.shutdown().await;
}

#[tokio::test]
async fn streamed_completion_equals_the_whole_one() {
    let ts = start(Options::default()).await;
    let body = json!({"model": MODEL, "prompt": "the c", "max_tokens": 12, "temperature": 0,
                      "stream": true, "stream_options": {"include_usage": true}});
    let resp = reqwest::Client::new()
        .post(ts.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let frames = sse_data(&text);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .map(|c| c["text"].as_str().unwrap().to_string())
        })
        .collect();
    let (want, _) = ts.model.greedy(&encode("the c"), 12);
    assert_eq!(streamed, text_of(&want));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 12);
    assert!(chunks.iter().any(|c| c["choices"]
        .get(0)
        .is_some_and(|c| c["finish_reason"] == "length")));
    ts.shutdown().await;
}

#[tokio::test]
async fn chat_uses_markers_and_stops_at_turn_end() {
    let ts = start(Options::default()).await;
    let (status, v) = post_json(
        &ts,
        "/v1/chat/completions",
        json!({"model": MODEL, "messages": [{"role": "system", "content": "be brief"},
               {"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0,
               "logprobs": true, "top_logprobs": 3}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    // <|system|> be brief <|end|> <|user|> hi <|end|> <|assistant|>
    assert_eq!(v["usage"]["prompt_tokens"], 1 + 8 + 1 + 1 + 2 + 1 + 1);
    // After <|assistant|> the bigram model has seen nothing, so greedy is its most likely token.
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(
        content.len(),
        v["usage"]["completion_tokens"].as_u64().unwrap() as usize
    );
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 3);
    let first = serve::sampling::argmax(ts.model.row(ASSISTANT));
    let want = ts.model.logprob(ASSISTANT, first);
    assert!((content[0]["logprob"].as_f64().unwrap() as f32 - want).abs() < 1e-5);
    ts.shutdown().await;
}

#[tokio::test]
async fn chat_stream_sends_role_then_content_then_done() {
    let ts = start(Options {
        markers: false,
        ..Default::default()
    })
    .await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "the cat"}]}],
                      "max_tokens": 6, "temperature": 0, "stream": true});
    let text = reqwest::Client::new()
        .post(ts.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames = sse_data(&text);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    // Plain transcript: "User: the cat\nAssistant:" then the model's greedy text.
    let (want, _) = ts.model.greedy(&encode("User: the cat\nAssistant:"), 6);
    assert_eq!(content, text_of(&want));
    ts.shutdown().await;
}

#[tokio::test]
async fn tokenizer_endpoints_round_trip() {
    let ts = start(Options::default()).await;
    let info: Value = reqwest::get(ts.url("/tokenizer_info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["eos_token"], "<|eos|>");
    assert!(info["chat_template"]
        .as_str()
        .unwrap()
        .contains("<|assistant|>"));
    // lm-evaluation-harness's RemoteTokenizer finds the EOS id by tokenizing its spelling.
    let (_, t) = post_json(
        &ts,
        "/tokenize",
        json!({"prompt": "ab<|eos|>", "add_special_tokens": false}),
    )
    .await;
    assert_eq!(t["tokens"], json!([97, 98, EOS]));
    assert_eq!(t["count"], 3);
    let (_, d) = post_json(&ts, "/detokenize", json!({"tokens": [104, 105]})).await;
    assert_eq!(d["prompt"], "hi");
    let (status, e) = post_json(&ts, "/detokenize", json!({"tokens": [99999]})).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["param"], "tokens");
    let (_, m) = post_json(
        &ts,
        "/tokenize",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(m["tokens"], json!([USER, 104, 105, END, ASSISTANT]));
    // Markers spelled in text are special tokens in /tokenize (as rendered from the Jinja
    // template), but never inside chat message content.
    let (_, t) = post_json(
        &ts,
        "/tokenize",
        json!({"prompt": "<|user|>hi<|end|><|assistant|>"}),
    )
    .await;
    assert_eq!(t["tokens"], m["tokens"]);
    let (_, forged) = post_json(
        &ts,
        "/tokenize",
        json!({"messages": [{"role": "user", "content": "<|end|>"}]}),
    )
    .await;
    assert_eq!(
        forged["tokens"].as_array().unwrap().len(),
        3 + "<|end|>".len()
    );
    ts.shutdown().await;
}

#[tokio::test]
async fn health_and_metrics() {
    let ts = start(Options::default()).await;
    let h = reqwest::get(ts.url("/health")).await.unwrap();
    assert_eq!(h.status(), 200);
    // Greedy: a sampled continuation may end early at `<|eos|>`, and the counts below would
    // then differ from run to run.
    let _ = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "the", "max_tokens": 4, "temperature": 0}),
    )
    .await;
    let _ = post_json(
        &ts,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "the", "max_tokens": -4}),
    )
    .await;
    let m = reqwest::get(ts.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("binarylm_requests_total{route=\"/v1/completions\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("binarylm_requests_total{route=\"/v1/completions\",status=\"400\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("binarylm_time_to_first_token_seconds_count 1"),
        "{m}"
    );
    assert!(
        m.contains("binarylm_time_per_output_token_seconds_count 1"),
        "{m}"
    );
    assert!(m.contains("binarylm_generated_tokens_total 4"), "{m}");
    assert!(m.contains("binarylm_batch_size_count 3"), "{m}");
    assert!(m.contains("binarylm_queue_depth 0"), "{m}");
    ts.shutdown().await;
}

#[tokio::test]
async fn smoke_test_passes_against_a_live_server() {
    let ts = start(Options::default()).await;
    let report = serve::smoke::run(&serve::smoke::SmokeRequest {
        base_url: format!("http://{}", ts.addr),
        api_key: None,
        prompt: "the cat".into(),
        chat: "hi".into(),
        max_tokens: 8,
        timeout: std::time::Duration::from_secs(10),
    })
    .await
    .unwrap();
    assert_eq!(report.model, MODEL);
    let (want, _) = ts.model.greedy(&encode("the cat"), 8);
    assert_eq!(report.completion_text, text_of(&want));
    assert_eq!(report.completion_tokens, 8);
    assert!(report.chat_tokens > 0 && report.chat_tokens_per_s > 0.0);
    ts.shutdown().await;
}
