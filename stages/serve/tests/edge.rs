//! Raw-HTTP tests of the edge: every malformed request gets the OpenAI error object and the
//! right status; API keys; body limit; full queue; disconnects; timeouts; graceful shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use serve::{ApiKeys, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn error_of(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(v["error"]["message"].is_string(), "{body}");
    assert!(v["error"]["type"].is_string(), "{body}");
    v["error"].clone()
}

#[tokio::test]
async fn malformed_requests_get_openai_errors() {
    let ts = start(Options::default()).await;
    let m = MODEL;
    // (path, body, status, param (None: no param expected), words the message must contain)
    let cases: Vec<(&str, String, u16, Option<&str>, &str)> = vec![
        (
            "/v1/completions",
            "{not json".into(),
            400,
            None,
            "not valid JSON",
        ),
        ("/v1/completions", "".into(), 400, None, "empty"),
        ("/v1/completions", "[1,2]".into(), 400, None, "JSON object"),
        (
            "/v1/completions",
            "nope".into(),
            400,
            None,
            "not valid JSON",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a"}} trailing"#),
            400,
            None,
            "not valid JSON",
        ),
        (
            "/v1/completions",
            r#"{"prompt":"a"}"#.into(),
            400,
            None,
            "model",
        ),
        (
            "/v1/completions",
            r#"{"model":"nope","prompt":"a"}"#.into(),
            404,
            Some("model"),
            "does not exist",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}"}}"#),
            400,
            None,
            "prompt",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","max_tokens":"ten"}}"#),
            400,
            Some("max_tokens"),
            "invalid type",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","max_tokens":-1}}"#),
            400,
            Some("max_tokens"),
            "0 or more",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","max_tokens":1.5}}"#),
            400,
            Some("max_tokens"),
            "invalid type",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","temperature":-0.5}}"#),
            400,
            Some("temperature"),
            "between 0 and 2",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","temperature":"hot"}}"#),
            400,
            Some("temperature"),
            "invalid type",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","top_p":0}}"#),
            400,
            Some("top_p"),
            "(0, 1]",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","top_k":-5}}"#),
            400,
            Some("top_k"),
            "positive",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","n":0}}"#),
            400,
            Some("n"),
            "between 1 and",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","n":1000}}"#),
            400,
            Some("n"),
            "between 1 and",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","logprobs":-1}}"#),
            400,
            Some("logprobs"),
            "between 0 and",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","logprobs":500}}"#),
            400,
            Some("logprobs"),
            "between 0 and",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","stop":5}}"#),
            400,
            Some("stop"),
            "string",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","stop":[""]}}"#),
            400,
            Some("stop"),
            "empty",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","stream":"yes"}}"#),
            400,
            Some("stream"),
            "invalid type",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","stream_options":{{"include_usage":true}}}}"#),
            400,
            Some("stream_options"),
            "stream: true",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","frobnicate":1}}"#),
            400,
            None,
            "frobnicate",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","presence_penalty":1}}"#),
            400,
            Some("presence_penalty"),
            "not supported",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":[]}}"#),
            400,
            Some("prompt"),
            "empty array",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":{{"a":1}}}}"#),
            400,
            Some("prompt"),
            "must be a string",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":["a",[1]]}}"#),
            400,
            Some("prompt"),
            "must be a string",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":[1,-2]}}"#),
            400,
            Some("prompt"),
            "token ids",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":[1,9999]}}"#),
            400,
            Some("prompt"),
            "vocabulary",
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{m}","prompt":"a","max_tokens":500}}"#),
            400,
            Some("max_tokens"),
            "context window is 128",
        ),
        (
            "/v1/completions",
            format!(
                r#"{{"model":"{m}","prompt":"{}","max_tokens":1}}"#,
                "a".repeat(200)
            ),
            400,
            Some("prompt"),
            "context window is 128",
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{m}","messages":[]}}"#),
            400,
            Some("messages"),
            "at least one",
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{m}","messages":"hi"}}"#),
            400,
            Some("messages"),
            "invalid type",
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{m}","messages":[{{"role":"wizard","content":"hi"}}]}}"#),
            400,
            Some("messages[0].role"),
            "unknown role",
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{m}","messages":[{{"role":"user","content":5}}]}}"#),
            400,
            Some("messages[0].content"),
            "string",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"{m}","messages":[{{"role":"user","content":[{{"type":"image_url"}}]}}]}}"#
            ),
            400,
            Some("messages[0].content"),
            "text only",
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{m}","messages":[{{"role":"user"}}]}}"#),
            400,
            None,
            "content",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"{m}","messages":[{{"role":"user","content":"hi"}}],"top_logprobs":2}}"#
            ),
            400,
            Some("top_logprobs"),
            "logprobs: true",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"{m}","messages":[{{"role":"user","content":"hi"}}],"max_completion_tokens":-3}}"#
            ),
            400,
            Some("max_completion_tokens"),
            "0 or more",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"{m}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":1000}}"#
            ),
            400,
            Some("max_tokens"),
            "context window",
        ),
        ("/tokenize", r#"{}"#.into(), 400, None, "exactly one"),
        (
            "/tokenize",
            r#"{"prompt": 3}"#.into(),
            400,
            Some("prompt"),
            "invalid type",
        ),
        (
            "/detokenize",
            r#"{"tokens": [-1]}"#.into(),
            400,
            Some("tokens"),
            "0..",
        ),
    ];
    for (path, body, status, param, words) in cases {
        let (got, _, resp) = raw(ts.addr, &post(path, &body)).await;
        assert_eq!(got, status, "{path} {body}: {resp}");
        let e = error_of(&resp);
        if let Some(p) = param {
            assert_eq!(e["param"], p, "{body}: {resp}");
        }
        assert!(
            e["message"].as_str().unwrap().contains(words),
            "{body}: message lacks {words:?}: {resp}"
        );
    }
    // The server is still healthy after all of that.
    let (status, _, _) = raw(
        ts.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    ts.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let ts = start(Options::default()).await;
    let (status, _, body) = raw(
        ts.addr,
        b"GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
    assert!(error_of(&body)["message"]
        .as_str()
        .unwrap()
        .contains("/v2/nothing"));
    let (status, _, body) = raw(
        ts.addr,
        b"GET /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    error_of(&body);
    // Not HTTP at all: the connection gets a 400 from the HTTP layer and is closed.
    let (status, _, _) = raw(ts.addr, b"HELLO\r\n\r\n").await;
    assert_eq!(status, 400);
    ts.shutdown().await;
}

#[tokio::test]
async fn api_keys_guard_the_api_but_not_health() {
    let ts = start(Options {
        keys: ApiKeys::from_list(["sekret-1", "sekret-2"]),
        ..Default::default()
    })
    .await;
    let body = format!(r#"{{"model":"{MODEL}","prompt":"the","max_tokens":2}}"#);
    let with = |auth: &str| {
        format!(
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let (status, head, resp) = raw(ts.addr, &with("")).await;
    assert_eq!(status, 401);
    assert!(head.to_lowercase().contains("www-authenticate: bearer"));
    assert_eq!(error_of(&resp)["code"], "invalid_api_key");
    let (status, _, resp) = raw(ts.addr, &with("Authorization: Bearer wrong\r\n")).await;
    assert_eq!(status, 401);
    assert!(!resp.contains("sekret"), "never echo keys: {resp}");
    let (status, _, _) = raw(ts.addr, &with("Authorization: Bearer sekret-2\r\n")).await;
    assert_eq!(status, 200);
    let (status, _, _) = raw(
        ts.addr,
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = raw(
        ts.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    ts.shutdown().await;
}

#[tokio::test]
async fn body_limit_is_enforced_declared_or_chunked() {
    let ts = start(Options {
        config: ServerConfig {
            max_body_bytes: 1000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let big = format!(r#"{{"model":"{MODEL}","prompt":"{}"}}"#, "a".repeat(5000));
    let (status, _, body) = raw(ts.addr, &post("/v1/completions", &big)).await;
    assert_eq!(status, 413);
    assert!(error_of(&body)["message"]
        .as_str()
        .unwrap()
        .contains("1000 bytes"));
    // Chunked: no Content-Length to trust, the limit applies while reading.
    let mut req = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in big.as_bytes().chunks(500) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = raw(ts.addr, &req).await;
    assert_eq!(status, 413);
    error_of(&body);
    ts.shutdown().await;
}

async fn completion(ts: &TestServer, max_tokens: usize) -> reqwest::Response {
    reqwest::Client::new()
        .post(ts.url("/v1/completions"))
        .json(&serde_json::json!({"model": MODEL, "prompt": "the", "max_tokens": max_tokens, "temperature": 0}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn full_queue_answers_503_with_retry_after() {
    let ts = start(Options {
        config: ServerConfig {
            max_batch: 1,
            queue_capacity: 1,
            retry_after_s: 3,
            ..Default::default()
        },
        // The first request holds the only batch place for about five seconds.
        step_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let ts = std::sync::Arc::new(ts);
    let running = {
        let ts = ts.clone();
        tokio::spawn(async move { completion(&ts, 100).await.status().as_u16() })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ts.probe.live_sequences.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the first request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut handles = Vec::new();
    for _ in 0..5 {
        let ts = ts.clone();
        handles.push(tokio::spawn(async move { completion(&ts, 2).await }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for h in handles {
        let resp = h.await.unwrap();
        match resp.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(resp.headers()["retry-after"], "3");
                let e: Value = resp.json().await.unwrap();
                assert_eq!(e["error"]["code"], "server_overloaded");
                refused += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(
        (ok, refused),
        (1, 4),
        "one waits in the queue, the rest are refused"
    );
    assert_eq!(running.await.unwrap(), 200);
    std::sync::Arc::try_unwrap(ts)
        .ok()
        .unwrap()
        .shutdown()
        .await;
}

#[tokio::test]
async fn new_requests_join_the_running_batch() {
    let ts = start(Options {
        step_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let ts = std::sync::Arc::new(ts);
    let long = {
        let ts = ts.clone();
        tokio::spawn(async move {
            let r = completion(&ts, 100).await;
            (Instant::now(), r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let short = completion(&ts, 5).await;
    let short_done = Instant::now();
    assert_eq!(short.status(), 200);
    let (long_done, status) = long.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        short_done < long_done,
        "the short request waited for the long one"
    );
    assert!(
        ts.probe.max_batch.load(Ordering::SeqCst) >= 2,
        "never decoded together"
    );
    std::sync::Arc::try_unwrap(ts)
        .ok()
        .unwrap()
        .shutdown()
        .await;
}

async fn metric(ts: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(ts.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn a_disconnected_stream_is_cancelled_and_freed() {
    let ts = start(Options {
        step_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let body = format!(r#"{{"model":"{MODEL}","prompt":"the","max_tokens":100,"stream":true}}"#);
    let mut s = tokio::net::TcpStream::connect(ts.addr).await.unwrap();
    s.write_all(&post("/v1/completions", &body)).await.unwrap();
    // Read until the first token arrived, so the sequence is surely running.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("200 OK"));
    assert_eq!(ts.probe.live_sequences.load(Ordering::SeqCst), 1);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ts.probe.live_sequences.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "sequence still alive after disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&ts, "binarylm_cancelled_sequences_total").await, 1.0);
    assert!(metric(&ts, "binarylm_generated_tokens_total").await < 100.0);
    ts.shutdown().await;
}

#[tokio::test]
async fn a_disconnected_plain_request_is_cancelled_too() {
    let ts = start(Options {
        step_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let body = format!(r#"{{"model":"{MODEL}","prompt":"the","max_tokens":100}}"#);
    let mut s = tokio::net::TcpStream::connect(ts.addr).await.unwrap();
    s.write_all(&post("/v1/completions", &body)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ts.probe.live_sequences.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ts.probe.live_sequences.load(Ordering::SeqCst) > 0 {
        assert!(
            Instant::now() < deadline,
            "sequence still alive after disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metric(&ts, "binarylm_generated_tokens_total").await < 100.0);
    ts.shutdown().await;
}

#[tokio::test]
async fn generation_timeout_is_504_and_frees_the_sequence() {
    let ts = start(Options {
        config: ServerConfig {
            request_timeout_s: 0.3,
            ..Default::default()
        },
        step_delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let resp = completion(&ts, 100).await;
    assert_eq!(resp.status(), 504);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ts.probe.live_sequences.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ts.shutdown().await;
}

#[tokio::test]
async fn slow_headers_and_bodies_are_cut_off() {
    let ts = start(Options {
        config: ServerConfig {
            header_timeout_s: 0.3,
            body_timeout_s: 0.3,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    // Headers never finish: the connection is closed.
    let mut s = tokio::net::TcpStream::connect(ts.addr).await.unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection left open");
    // The body never finishes: 408 with an error object.
    let mut s = tokio::net::TcpStream::connect(ts.addr).await.unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"model\"").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request body"), "{text}");
    ts.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_streams() {
    let mut ts = start(Options {
        step_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let body = format!(
        r#"{{"model":"{MODEL}","prompt":"the","max_tokens":40,"temperature":0,"stream":true}}"#
    );
    let addr = ts.addr;
    let stream = tokio::spawn(async move { raw(addr, &post("/v1/completions", &body)).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while ts.probe.live_sequences.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = ts.server.take().unwrap();
    let started = Instant::now();
    server.shutdown().await;
    let (status, _, body) = stream.await.unwrap();
    assert_eq!(status, 200);
    let frames = sse_data(&body);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{body}");
    let (want, _) = ts.model.greedy(&encode("the"), 40);
    let text: String = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        text.as_bytes(),
        want.iter().map(|&t| t as u8).collect::<Vec<_>>()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_model_failure_fails_its_request_only() {
    let ts = start(Options {
        panic_token: Some(b'!' as u32),
        ..Default::default()
    })
    .await;
    let (status, _, body) = raw(
        ts.addr,
        &post(
            "/v1/completions",
            &format!(r#"{{"model":"{MODEL}","prompt":"boom!","max_tokens":3}}"#),
        ),
    )
    .await;
    assert_eq!(status, 500);
    assert!(error_of(&body)["message"]
        .as_str()
        .unwrap()
        .contains("simulated device failure"));
    let resp = completion(&ts, 3).await;
    assert_eq!(resp.status(), 200);
    ts.shutdown().await;
}
