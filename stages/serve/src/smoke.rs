//! A smoke test of a running server, as a client sees it: health, the model list, one
//! completion and one streamed chat, with latency and tokens/s. The `deploy` stage runs it
//! against the server it just started; its numbers go into the stage's metrics.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

/// What the smoke test asks.
#[derive(Debug, Clone)]
pub struct SmokeRequest {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub api_key: Option<String>,
    pub prompt: String,
    pub chat: String,
    pub max_tokens: usize,
    pub timeout: Duration,
}

/// What it measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SmokeReport {
    pub model: String,
    pub completion_text: String,
    pub completion_tokens: usize,
    pub completion_latency_s: f64,
    pub completion_tokens_per_s: f64,
    pub chat_text: String,
    pub chat_tokens: usize,
    pub chat_time_to_first_token_s: f64,
    pub chat_latency_s: f64,
    pub chat_tokens_per_s: f64,
}

/// What the smoke test got back, without the timings: what a deploy bundle keeps (its timings
/// go to the run's record, so that two deployments of the same model write the same bundle).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SmokeOutcome {
    pub model: String,
    pub completion_text: String,
    pub completion_tokens: usize,
    pub chat_text: String,
    pub chat_tokens: usize,
}

impl SmokeReport {
    /// The answers without the timings.
    pub fn outcome(&self) -> SmokeOutcome {
        SmokeOutcome {
            model: self.model.clone(),
            completion_text: self.completion_text.clone(),
            completion_tokens: self.completion_tokens,
            chat_text: self.chat_text.clone(),
            chat_tokens: self.chat_tokens,
        }
    }
}

/// A failed check: what was asked, and what came back.
#[derive(Debug, thiserror::Error)]
#[error("smoke test: {step}: {problem}")]
pub struct SmokeError {
    pub step: &'static str,
    pub problem: String,
}

fn fail(step: &'static str, problem: impl Into<String>) -> SmokeError {
    SmokeError {
        step,
        problem: problem.into(),
    }
}

fn rate(tokens: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}

/// Runs the checks in order and stops at the first failure.
pub async fn run(req: &SmokeRequest) -> Result<SmokeReport, SmokeError> {
    let client = reqwest::Client::builder()
        .timeout(req.timeout)
        .build()
        .map_err(|e| fail("client", e.to_string()))?;
    let with_key = |b: reqwest::RequestBuilder| match &req.api_key {
        Some(k) => b.bearer_auth(k),
        None => b,
    };
    let url = |p: &str| format!("{}{p}", req.base_url);

    let health = client
        .get(url("/health"))
        .send()
        .await
        .map_err(|e| fail("GET /health", e.to_string()))?;
    if !health.status().is_success() {
        return Err(fail("GET /health", format!("HTTP {}", health.status())));
    }

    let models: Value = with_key(client.get(url("/v1/models")))
        .send()
        .await
        .map_err(|e| fail("GET /v1/models", e.to_string()))?
        .json()
        .await
        .map_err(|e| fail("GET /v1/models", e.to_string()))?;
    let model = models["data"][0]["id"]
        .as_str()
        .ok_or_else(|| fail("GET /v1/models", format!("no model listed: {models}")))?
        .to_string();

    let started = Instant::now();
    let resp = with_key(client.post(url("/v1/completions")))
        .json(&json!({"model": model, "prompt": req.prompt, "max_tokens": req.max_tokens, "temperature": 0}))
        .send()
        .await
        .map_err(|e| fail("POST /v1/completions", e.to_string()))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| fail("POST /v1/completions", e.to_string()))?;
    if !status.is_success() {
        return Err(fail(
            "POST /v1/completions",
            format!("HTTP {status}: {body}"),
        ));
    }
    let completion_latency_s = started.elapsed().as_secs_f64();
    let completion_text = body["choices"][0]["text"]
        .as_str()
        .ok_or_else(|| {
            fail(
                "POST /v1/completions",
                format!("no choices[0].text in {body}"),
            )
        })?
        .to_string();
    let completion_tokens = body["usage"]["completion_tokens"]
        .as_u64()
        .ok_or_else(|| fail("POST /v1/completions", format!("no usage in {body}")))?
        as usize;

    let started = Instant::now();
    let resp = with_key(client.post(url("/v1/chat/completions")))
        .json(
            &json!({"model": model, "messages": [{"role": "user", "content": req.chat}],
                      "max_tokens": req.max_tokens, "temperature": 0, "stream": true,
                      "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .map_err(|e| fail("POST /v1/chat/completions (stream)", e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(fail(
            "POST /v1/chat/completions (stream)",
            format!("HTTP {status}: {text}"),
        ));
    }
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let (mut chat_text, mut chat_tokens, mut first, mut done) =
        (String::new(), 0usize, None, false);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| fail("chat stream", e.to_string()))?;
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..pos + 2).collect();
            let frame = String::from_utf8_lossy(&frame);
            let Some(data) = frame.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| fail("chat stream", format!("bad frame {data:?}: {e}")))?;
            if v.get("error").is_some() {
                return Err(fail("chat stream", data.to_string()));
            }
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                if !t.is_empty() {
                    first.get_or_insert_with(Instant::now);
                }
                chat_text.push_str(t);
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                chat_tokens = n as usize;
            }
        }
    }
    if !done {
        return Err(fail(
            "chat stream",
            "the stream ended without `data: [DONE]`",
        ));
    }
    let chat_latency_s = started.elapsed().as_secs_f64();
    let ttft = first
        .map(|f| f.duration_since(started).as_secs_f64())
        .unwrap_or(chat_latency_s);
    Ok(SmokeReport {
        model,
        completion_tokens_per_s: rate(completion_tokens, completion_latency_s),
        completion_text,
        completion_tokens,
        completion_latency_s,
        chat_text,
        chat_tokens,
        chat_time_to_first_token_s: ttft,
        chat_latency_s,
        chat_tokens_per_s: rate(chat_tokens, chat_latency_s),
    })
}
