//! Load generator for a running binarylm server (loopback only): C concurrent clients stream
//! completions for D seconds; reports p50/p99 time to first token and time per output token,
//! aggregate tokens/s, errors and dropped streams. Used by `bench/serve_load.sh`, against
//! binarylm's server and against llama-cpp-python's (any OpenAI-style `/v1/completions`).
//!
//! ```text
//! cargo run --release -p serve --example loadtest -- --url http://127.0.0.1:8000 \
//!     --clients 16 --duration 30 --max-tokens 64 [--json out.json]
//! ```

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

struct Args {
    url: String,
    clients: usize,
    duration: Duration,
    max_tokens: usize,
    prompt: String,
    json: Option<String>,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:8000".into(),
        clients: 16,
        duration: Duration::from_secs(30),
        max_tokens: 64,
        prompt: "Once upon a time".into(),
        json: None,
        label: "run".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--clients" => a.clients = val()?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--duration" => {
                a.duration =
                    Duration::from_secs_f64(val()?.parse().map_err(|e| format!("--duration: {e}"))?)
            }
            "--max-tokens" => {
                a.max_tokens = val()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--prompt" => a.prompt = val()?,
            "--json" => a.json = Some(val()?),
            "--label" => a.label = val()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    // A load generator must never be pointed at someone else's machine.
    let host = a
        .url
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    if !(host == "127.0.0.1" || host == "localhost") {
        return Err(format!(
            "--url must point at 127.0.0.1 or localhost (loopback only); got host {host}"
        ));
    }
    if a.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Sample {
    /// None for a stream that carried no text (it ended at once): such a stream has no first
    /// token, and counting it as 0 would flatter the percentiles.
    ttft: Option<f64>,
    tpot: Option<f64>,
    tokens: usize,
    /// The stream reported no `usage`: `tokens` counts its text frames instead (one token
    /// each in the servers measured, which stream token by token).
    counted_frames: bool,
}

enum Outcome {
    Ok(Sample),
    Error(String),
    Dropped,
}

async fn one_request(client: &reqwest::Client, a: &Args, model: &str) -> Outcome {
    let body = json!({
        "model": model, "prompt": a.prompt, "max_tokens": a.max_tokens,
        "temperature": 0.8, "stream": true, "stream_options": {"include_usage": true},
    });
    let start = Instant::now();
    let resp = match client
        .post(format!("{}/v1/completions", a.url))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    if !resp.status().is_success() {
        return Outcome::Error(format!("HTTP {}", resp.status()));
    }
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last = start;
    let mut usage: Option<usize> = None;
    let mut frames = 0usize;
    let mut done = false;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Outcome::Dropped;
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..pos + 2).collect();
            let line = String::from_utf8_lossy(&frame);
            let Some(data) = line.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                return Outcome::Error(format!("bad frame {data}"));
            };
            if v.get("error").is_some() {
                return Outcome::Error(data.to_string());
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                usage = Some(n as usize);
            }
            let has_text = v["choices"][0]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
            if has_text {
                frames += 1;
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
            }
        }
    }
    if !done {
        return Outcome::Dropped;
    }
    let tokens = usage.unwrap_or(frames);
    let counted_frames = usage.is_none();
    let Some(first) = first else {
        return Outcome::Ok(Sample {
            counted_frames,
            ..Sample::default()
        });
    };
    Outcome::Ok(Sample {
        ttft: Some(first.duration_since(start).as_secs_f64()),
        tpot: (tokens > 1).then(|| last.duration_since(first).as_secs_f64() / (tokens - 1) as f64),
        tokens,
        counted_frames,
    })
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let client = reqwest::Client::new();
    let models: Value = match client.get(format!("{}/v1/models", a.url)).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => {
            eprintln!("error: cannot reach {}: {e}", a.url);
            std::process::exit(1);
        }
    };
    let model = models["data"][0]["id"]
        .as_str()
        .unwrap_or("model")
        .to_string();
    let started = Instant::now();
    let deadline = started + a.duration;
    let mut tasks = Vec::new();
    for _ in 0..a.clients {
        let (a, client, model) = (a.clone(), client.clone(), model.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                out.push(one_request(&client, &a, &model).await);
            }
            out
        }));
    }
    let mut samples = Vec::new();
    let (mut errors, mut dropped) = (Vec::new(), 0usize);
    for t in tasks {
        for o in t.await.unwrap_or_default() {
            match o {
                Outcome::Ok(s) => samples.push(s),
                Outcome::Error(e) => errors.push(e),
                Outcome::Dropped => dropped += 1,
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let tokens: usize = samples.iter().map(|s| s.tokens).sum();
    let mut ttft: Vec<f64> = samples.iter().filter_map(|s| s.ttft).collect();
    let without_text = samples.iter().filter(|s| s.ttft.is_none()).count();
    let mut tpot: Vec<f64> = samples.iter().filter_map(|s| s.tpot).collect();
    let counted_frames = samples.iter().filter(|s| s.counted_frames).count();
    let report = json!({
        "label": a.label,
        "clients": a.clients,
        "duration_s": a.duration.as_secs_f64(),
        "wall_s": wall,
        "requests": samples.len(),
        "errors": errors.len(),
        "dropped_streams": dropped,
        "streams_without_text": without_text,
        "completion_tokens": tokens,
        "streams_without_usage": counted_frames,
        "tokens_per_s": tokens as f64 / wall,
        "ttft_p50_ms": percentile(&mut ttft, 50.0) * 1e3,
        "ttft_p99_ms": percentile(&mut ttft, 99.0) * 1e3,
        "tpot_p50_ms": percentile(&mut tpot, 50.0) * 1e3,
        "tpot_p99_ms": percentile(&mut tpot, 99.0) * 1e3,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    for e in errors.iter().take(5) {
        eprintln!("error sample: {e}");
    }
    if let Some(path) = &a.json {
        if let Err(e) = std::fs::write(path, report.to_string()) {
            eprintln!("error: writing {path}: {e}");
            std::process::exit(1);
        }
    }
    if !errors.is_empty() || dropped > 0 {
        std::process::exit(1);
    }
}
