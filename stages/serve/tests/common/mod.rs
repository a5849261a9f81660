//! A small but real language model for the server tests: a byte-level bigram model trained by
//! counting pairs in a text. Its probabilities are computed, not faked, so tests can check the
//! server's greedy text and log-probabilities against the model directly.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serve::{
    ApiKeys, Codec, Engine, EngineError, Logits, ModelInfo, ModelSpec, PrefillOutput,
    RunningServer, ServerConfig, SpecialToken,
};

pub const EOS: u32 = 256;
pub const SYSTEM: u32 = 257;
pub const USER: u32 = 258;
pub const ASSISTANT: u32 = 259;
pub const END: u32 = 260;
pub const VOCAB: usize = 261;
pub const MODEL: &str = "bigram-test";

/// Bytes are tokens 0..256; then `<|eos|>` and (optionally visible) chat markers.
pub struct ByteCodec {
    pub markers: bool,
}

impl Codec for ByteCodec {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }
    fn decode(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            match id {
                0..=255 => out.push(id as u8),
                EOS => out.extend_from_slice(b"<|eos|>"),
                SYSTEM => out.extend_from_slice(b"<|system|>"),
                USER => out.extend_from_slice(b"<|user|>"),
                ASSISTANT => out.extend_from_slice(b"<|assistant|>"),
                END => out.extend_from_slice(b"<|end|>"),
                _ => {}
            }
        }
        out
    }
    fn token_to_id(&self, token: &str) -> Option<u32> {
        match token {
            "<|eos|>" => Some(EOS),
            "<|system|>" if self.markers => Some(SYSTEM),
            "<|user|>" if self.markers => Some(USER),
            "<|assistant|>" if self.markers => Some(ASSISTANT),
            "<|end|>" if self.markers => Some(END),
            _ => None,
        }
    }
    fn vocab_size(&self) -> usize {
        VOCAB
    }
}

/// Log-probabilities of a bigram model: `logp[a * VOCAB + b] = ln p(b | a)`.
#[derive(Clone)]
pub struct BigramModel {
    pub logp: Arc<Vec<f32>>,
}

impl BigramModel {
    /// Counts pairs in `docs` (each followed by `<|eos|>`, and preceded by it, as in training
    /// shards), smoothed so every token stays possible.
    pub fn train(docs: &[&[u32]]) -> BigramModel {
        let mut counts = vec![0.01f64; VOCAB * VOCAB];
        for doc in docs {
            let mut prev = EOS;
            for &t in doc.iter().chain(std::iter::once(&EOS)) {
                counts[prev as usize * VOCAB + t as usize] += 1.0;
                prev = t;
            }
        }
        let mut logp = vec![0f32; VOCAB * VOCAB];
        for a in 0..VOCAB {
            let row = &counts[a * VOCAB..(a + 1) * VOCAB];
            let sum: f64 = row.iter().sum();
            for b in 0..VOCAB {
                logp[a * VOCAB + b] = (row[b] / sum).ln() as f32;
            }
        }
        BigramModel {
            logp: Arc::new(logp),
        }
    }

    pub fn row(&self, a: u32) -> &[f32] {
        &self.logp[a as usize * VOCAB..(a as usize + 1) * VOCAB]
    }

    pub fn logprob(&self, a: u32, b: u32) -> f32 {
        self.row(a)[b as usize]
    }

    /// Greedy continuation of `prompt`, stopping before `<|eos|>`.
    pub fn greedy(&self, prompt: &[u32], max: usize) -> (Vec<u32>, bool) {
        let mut out = Vec::new();
        let mut last = *prompt.last().unwrap();
        for _ in 0..max {
            let next = serve::sampling::argmax(self.row(last));
            if next == EOS {
                return (out, true);
            }
            out.push(next);
            last = next;
        }
        (out, false)
    }
}

/// Counters the tests read to see what the engine did.
#[derive(Default)]
pub struct Probe {
    pub max_batch: AtomicUsize,
    pub steps: AtomicUsize,
    pub live_sequences: AtomicUsize,
}

pub struct BigramEngine {
    pub model: BigramModel,
    /// Simulated compute time per prefill and per decode step (whatever the batch size, as on
    /// a GPU), so batching shows up in wall time.
    pub step_delay: Duration,
    pub probe: Arc<Probe>,
    /// A prompt holding this token makes prefill panic (a stand-in for a device failure).
    pub panic_token: Option<u32>,
}

pub struct Seq {
    last: Option<u32>,
    probe: Arc<Probe>,
}

impl Drop for Seq {
    fn drop(&mut self) {
        self.probe.live_sequences.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Engine for BigramEngine {
    type Sequence = Seq;

    fn new_sequence(&mut self) -> Result<Seq, EngineError> {
        self.probe.live_sequences.fetch_add(1, Ordering::SeqCst);
        Ok(Seq {
            last: None,
            probe: self.probe.clone(),
        })
    }

    fn prefill(
        &mut self,
        seq: &mut Seq,
        tokens: &[u32],
        output: PrefillOutput,
    ) -> Result<Logits, EngineError> {
        std::thread::sleep(self.step_delay);
        if let Some(p) = self.panic_token {
            assert!(!tokens.contains(&p), "simulated device failure");
        }
        let rows: Vec<u32> = match output {
            PrefillOutput::All => tokens.to_vec(),
            PrefillOutput::Last => {
                vec![*tokens.last().ok_or(EngineError("empty prefill".into()))?]
            }
        };
        seq.last = tokens.last().copied();
        let data = rows
            .iter()
            .flat_map(|&t| self.model.row(t).to_vec())
            .collect();
        Ok(Logits::new(VOCAB, data).unwrap())
    }

    fn decode(&mut self, seqs: &mut [&mut Seq], tokens: &[u32]) -> Result<Logits, EngineError> {
        std::thread::sleep(self.step_delay);
        self.probe.steps.fetch_add(1, Ordering::SeqCst);
        self.probe.max_batch.fetch_max(seqs.len(), Ordering::SeqCst);
        let mut data = Vec::with_capacity(seqs.len() * VOCAB);
        for (s, &t) in seqs.iter_mut().zip(tokens) {
            s.last = Some(t);
            data.extend_from_slice(self.model.row(t));
        }
        Ok(Logits::new(VOCAB, data).unwrap())
    }
}

pub const CORPUS: &str =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog ran to the park.";

pub fn encode(s: &str) -> Vec<u32> {
    s.bytes().map(u32::from).collect()
}

pub fn model() -> BigramModel {
    BigramModel::train(&[&encode(CORPUS), &encode("xyz")])
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub model: BigramModel,
    pub probe: Arc<Probe>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

pub struct Options {
    pub config: ServerConfig,
    pub keys: ApiKeys,
    pub step_delay: Duration,
    pub markers: bool,
    pub context_length: usize,
    pub panic_token: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: ServerConfig::default(),
            keys: ApiKeys::none(),
            step_delay: Duration::ZERO,
            markers: true,
            context_length: 128,
            panic_token: None,
        }
    }
}

pub async fn start(opts: Options) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let model = model();
    let probe = Arc::new(Probe::default());
    let codec: Arc<dyn Codec> = Arc::new(ByteCodec {
        markers: opts.markers,
    });
    let info = ModelInfo {
        id: MODEL.into(),
        context_length: opts.context_length,
        eos_token: SpecialToken::lookup(codec.as_ref(), "<|eos|>"),
        bos_token: None,
        pad_token: None,
        created: 1_700_000_000,
    };
    let engine = BigramEngine {
        model: model.clone(),
        step_delay: opts.step_delay,
        probe: probe.clone(),
        panic_token: opts.panic_token,
    };
    let server = serve::start(
        listener,
        ModelSpec { codec, info },
        move || Ok(engine),
        opts.config,
        opts.keys,
    )
    .await
    .unwrap();
    TestServer {
        server: Some(server),
        addr,
        model,
        probe,
    }
}

/// Sends raw bytes, reads until the server closes; returns (status, head, body).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body)
}

/// Undoes HTTP/1.1 chunked transfer coding.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A POST with a JSON body and `Connection: close`.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|frame| frame.trim().strip_prefix("data: ").map(str::to_string))
        .collect()
}
