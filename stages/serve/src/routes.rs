//! HTTP handlers: the OpenAI endpoints, the tokenizer endpoints, health and metrics, and the
//! middleware for request logs, metrics and API keys.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use common::rng::{mix64, GOLDEN_GAMMA};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant as TokioInstant;

use crate::auth::ApiKeys;
use crate::chat::ChatTemplate;
use crate::config::ServerConfig;
use crate::engine::{Codec, ModelInfo, SpecialToken};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::openai::*;
use crate::scheduler::{fresh_seed, Event, FinishReason, Job, Refused, Scheduler, TokenLogprob};
use crate::tokens::{encode_with_specials, prompt_specials, text_of, token_text};
use crate::validate::{self, GenPlan, Limits};

/// Everything a handler needs, shared by all connections.
pub struct AppState {
    pub codec: Arc<dyn Codec>,
    pub info: ModelInfo,
    pub template: ChatTemplate,
    pub specials: Vec<SpecialToken>,
    pub scheduler: Scheduler,
    pub metrics: Arc<Metrics>,
    pub config: ServerConfig,
    pub keys: ApiKeys,
    pub request_timeout: Duration,
    pub body_timeout: Duration,
}

impl AppState {
    pub fn new(
        codec: Arc<dyn Codec>,
        info: ModelInfo,
        scheduler: Scheduler,
        metrics: Arc<Metrics>,
        config: ServerConfig,
        keys: ApiKeys,
    ) -> Result<AppState, crate::error::ServeError> {
        config.validate()?;
        Ok(AppState {
            template: ChatTemplate::for_codec(codec.as_ref()),
            specials: prompt_specials(&info, codec.as_ref()),
            request_timeout: config.request_timeout()?,
            body_timeout: config.body_timeout()?,
            codec,
            info,
            scheduler,
            metrics,
            config,
            keys,
        })
    }

    fn validation(&self) -> validate::Context<'_> {
        validate::Context {
            codec: self.codec.as_ref(),
            info: &self.info,
            template: &self.template,
            specials: &self.specials,
            limits: Limits {
                max_n: self.config.max_n,
                max_logprobs: self.config.max_logprobs,
                max_sequences: self.config.queue_capacity,
            },
        }
    }
}

type AppRef = Arc<AppState>;

/// The full router.
pub fn router(state: AppRef) -> Router {
    let protected = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/tokenizer_info", get(tokenizer_info))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_log,
        ))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Middleware

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// One structured log line and one metrics count per request. Headers are never logged (they
/// may carry API keys).
async fn access_log(State(st): State<AppRef>, req: Request, next: Next) -> Response {
    let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Label metrics by route pattern, not raw path, so unknown paths cannot blow up cardinality.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    st.metrics.request(&route, status);
    tracing::info!(
        target: "binarylm::serve::access",
        request_id = id,
        %method,
        path = %path,
        status,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&format!("req-{id}")) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn require_key(State(st): State<AppRef>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if st.keys.allows(auth) {
        next.run(req).await
    } else {
        let mut resp = ApiError::unauthorized().into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        resp
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// Reads and parses a JSON body under the size limit and the body timeout; every failure is an
/// OpenAI error naming what was wrong.
async fn read_json<T: DeserializeOwned>(st: &AppState, req: Request) -> Result<T, ApiError> {
    let limit = st.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    let body = Limited::new(req.into_body(), limit);
    let bytes: Bytes = match tokio::time::timeout(st.body_timeout, body.collect()).await {
        Err(_) => {
            return Err(ApiError::timeout(
                "sending the request body",
                st.config.body_timeout_s,
            ))
        }
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(ApiError::body_too_large(limit));
            }
            return Err(ApiError::invalid(format!(
                "could not read the request body: {e}"
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    parse_json(&bytes)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; send a JSON object",
        ));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Serde would happily read a struct from an array; name the real problem instead.
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => ApiError::invalid(format!("the request body is not valid JSON: {e}")),
            Ok(_) => ApiError::invalid("the request body must be a JSON object"),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!("the request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"))
        } else {
            ApiError::param(path.clone(), format!("invalid `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Simple endpoints

async fn health(State(st): State<AppRef>) -> Response {
    if st.scheduler.is_closing() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "shutting_down"})),
        )
            .into_response()
    } else {
        axum::Json(serde_json::json!({"status": "ok", "model": st.info.id})).into_response()
    }
}

async fn metrics(State(st): State<AppRef>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

fn model_object(info: &ModelInfo) -> ModelObject {
    ModelObject {
        id: info.id.clone(),
        object: "model",
        created: info.created,
        owned_by: "binarylm",
        max_model_len: info.context_length,
    }
}

async fn models(State(st): State<AppRef>) -> axum::Json<ModelList> {
    axum::Json(ModelList {
        object: "list",
        data: vec![model_object(&st.info)],
    })
}

async fn model(
    State(st): State<AppRef>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<ModelObject>, ApiError> {
    validate::check_model(&id, &st.info)?;
    Ok(axum::Json(model_object(&st.info)))
}

async fn tokenizer_info(State(st): State<AppRef>) -> Response {
    let text = |t: &Option<SpecialToken>| t.as_ref().map(|t| t.text.clone());
    axum::Json(serde_json::json!({
        "tokenizer_class": "binarylm",
        "eos_token": text(&st.info.eos_token),
        "bos_token": text(&st.info.bos_token),
        "pad_token": text(&st.info.pad_token),
        "chat_template": st.template.jinja(),
        "model_max_length": st.info.context_length,
        "vocab_size": st.codec.vocab_size(),
    }))
    .into_response()
}

async fn tokenize(State(st): State<AppRef>, req: Request) -> Result<Response, ApiError> {
    let body: TokenizeRequest = read_json(&st, req).await?;
    if let Some(m) = &body.model {
        validate::check_model(m, &st.info)?;
    }
    let tokens = match (&body.prompt, &body.messages) {
        (Some(p), None) => encode_with_specials(st.codec.as_ref(), &st.specials, p),
        (None, Some(msgs)) => {
            let msgs = validate::messages(msgs)?;
            let mut ids = st.template.render(st.codec.as_ref(), &msgs);
            if body.add_generation_prompt == Some(false) && st.template.uses_markers() {
                ids.pop();
            }
            ids
        }
        _ => {
            return Err(ApiError::invalid(
                "send exactly one of `prompt` (text) or `messages` (a chat)",
            ))
        }
    };
    Ok(axum::Json(serde_json::json!({
        "tokens": tokens,
        "count": tokens.len(),
        "max_model_len": st.info.context_length,
    }))
    .into_response())
}

async fn detokenize(State(st): State<AppRef>, req: Request) -> Result<Response, ApiError> {
    let body: DetokenizeRequest = read_json(&st, req).await?;
    if let Some(m) = &body.model {
        validate::check_model(m, &st.info)?;
    }
    let vocab = st.codec.vocab_size();
    let ids = body
        .tokens
        .iter()
        .map(|&t| {
            u32::try_from(t)
                .ok()
                .filter(|&t| (t as usize) < vocab)
                .ok_or_else(|| {
                    ApiError::param(
                        "tokens",
                        format!("token ids must be in 0..{vocab}; got {t}"),
                    )
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(
        axum::Json(serde_json::json!({ "prompt": text_of(st.codec.as_ref(), &ids) }))
            .into_response(),
    )
}

// ---------------------------------------------------------------------------------------------
// Generation

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What every object of one response repeats: its id, creation time and model.
struct ResponseHead {
    id: String,
    created: u64,
    model: String,
}

impl ResponseHead {
    /// A fresh id starting with `prefix` (`cmpl`, `chatcmpl`), created now.
    fn new(st: &AppState, prefix: &str) -> ResponseHead {
        ResponseHead {
            id: format!("{prefix}-{:016x}", fresh_seed()),
            created: unix_now(),
            model: st.info.id.clone(),
        }
    }

    /// A `text_completion` object: the whole response, or one streamed chunk of it.
    fn completion(
        &self,
        choices: Vec<CompletionChoice>,
        usage: Option<Usage>,
    ) -> CompletionResponse {
        CompletionResponse {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }

    /// A `chat.completion.chunk` object.
    fn chat_chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }
}

/// Queues one job per prompt × choice; the receiver gets all their events.
fn submit(st: &AppState, plan: &GenPlan) -> Result<UnboundedReceiver<Event>, ApiError> {
    let (tx, rx) = unbounded_channel();
    let arrived = Instant::now();
    let mut jobs = Vec::with_capacity(plan.prompts.len() * plan.n);
    for (p, prompt) in plan.prompts.iter().enumerate() {
        for j in 0..plan.n {
            let seed = match plan.seed {
                // Choices of one request differ, yet the same request repeats exactly.
                Some(s) => mix64(s ^ (j as u64).wrapping_mul(GOLDEN_GAMMA)),
                None => fresh_seed(),
            };
            jobs.push(Job {
                index: p * plan.n + j,
                prompt: prompt.clone(),
                max_tokens: plan.max_tokens,
                sampling: plan.sampling,
                seed,
                stop: plan.stop.clone(),
                stop_tokens: plan.stop_tokens.clone(),
                prompt_logprobs: plan.prompt_logprobs,
                logprobs: plan.logprobs,
                events: tx.clone(),
                arrived,
            });
        }
    }
    st.scheduler.submit(jobs).map_err(|r| match r {
        Refused::QueueFull => ApiError::overloaded(st.config.retry_after_s),
        Refused::ShuttingDown => ApiError::shutting_down(),
    })?;
    Ok(rx)
}

/// Per-choice results gathered from events.
#[derive(Default)]
struct ChoiceState {
    text: String,
    prompt: Option<Vec<TokenLogprob>>,
    tokens: Vec<TokenLogprob>,
    finish: Option<FinishReason>,
    completion_tokens: usize,
}

/// Waits for every choice of a non-streamed request and shapes each with `choice(index,
/// state)`; returns the choices and the request's usage.
async fn collect<C>(
    st: &AppState,
    mut rx: UnboundedReceiver<Event>,
    plan: &GenPlan,
    mut choice: impl FnMut(usize, ChoiceState) -> C,
) -> Result<(Vec<C>, Usage), ApiError> {
    let choices = plan.sequences();
    let deadline = TokioInstant::now() + st.request_timeout;
    let mut out: Vec<ChoiceState> = (0..choices).map(|_| ChoiceState::default()).collect();
    let mut open = choices;
    while open > 0 {
        let event = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Err(ApiError::generation_timeout(st.config.request_timeout_s)),
            Ok(None) => return Err(ApiError::internal("the engine stopped before finishing")),
            Ok(Some(e)) => e,
        };
        match event {
            Event::Prompt { index, tokens } => out[index].prompt = Some(tokens),
            Event::Delta {
                index,
                text,
                tokens,
            } => {
                out[index].text.push_str(&text);
                out[index].tokens.extend(tokens);
            }
            Event::Finished {
                index,
                reason,
                completion_tokens,
            } => {
                out[index].finish = Some(reason);
                out[index].completion_tokens = completion_tokens;
                open -= 1;
            }
            Event::Failed { message, .. } => return Err(ApiError::internal(message)),
        }
    }
    let completion_tokens = out.iter().map(|c| c.completion_tokens).sum();
    let choices = out.into_iter().enumerate().map(|(i, c)| choice(i, c));
    Ok((choices.collect(), usage(plan, completion_tokens)))
}

fn usage(plan: &GenPlan, completion_tokens: usize) -> Usage {
    let prompt_tokens = plan.prompts.iter().map(Vec::len).sum();
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

/// JSON cannot hold -inf; report "impossible" as a very negative number, as vLLM does.
fn finite(lp: f32) -> f32 {
    if lp.is_finite() {
        lp
    } else {
        -9999.0
    }
}

/// Appends tokens to completions-style log-probabilities; `offset` is the running character
/// offset in the returned text.
fn push_completion_logprobs(
    codec: &dyn Codec,
    out: &mut CompletionLogprobs,
    tokens: &[TokenLogprob],
    offset: &mut usize,
) {
    for t in tokens {
        let text = token_text(codec, t.id);
        out.text_offset.push(*offset);
        *offset += text.chars().count();
        out.tokens.push(text);
        out.token_logprobs
            .push(t.logprob.map(|lp| finite(lp) as f64));
        out.top_logprobs.push(t.logprob.map(|_| {
            t.top
                .iter()
                .map(|&(id, lp)| (token_text(codec, id), serde_json::json!(finite(lp) as f64)))
                .collect()
        }));
    }
}

fn chat_logprobs(codec: &dyn Codec, tokens: &[TokenLogprob]) -> Vec<ChatTokenLogprob> {
    let entry = |id: u32| {
        let bytes = codec.decode(&[id]);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    tokens
        .iter()
        .map(|t| {
            let (token, bytes) = entry(t.id);
            ChatTokenLogprob {
                token,
                logprob: finite(t.logprob.unwrap_or(0.0)),
                bytes,
                top_logprobs: Some(
                    t.top
                        .iter()
                        .map(|&(id, lp)| {
                            let (token, bytes) = entry(id);
                            ChatTopLogprob {
                                token,
                                logprob: finite(lp),
                                bytes,
                            }
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

async fn completions(State(st): State<AppRef>, req: Request) -> Result<Response, ApiError> {
    let body: CompletionRequest = read_json(&st, req).await?;
    let plan = validate::completion(&body, &st.validation())?;
    let rx = submit(&st, &plan)?;
    let head = ResponseHead::new(&st, "cmpl");
    if plan.stream {
        return Ok(sse(completion_stream(st, plan, rx, head)));
    }
    let codec = st.codec.as_ref();
    let (choices, usage) = collect(&st, rx, &plan, |i, c| {
        let prompt = &plan.prompts[i / plan.n];
        let mut text = String::new();
        let mut logprobs = plan.logprobs.map(|_| CompletionLogprobs::default());
        let mut offset = 0;
        if plan.echo {
            text.push_str(&text_of(codec, prompt));
            if let (Some(lp), Some(p)) = (logprobs.as_mut(), c.prompt.as_ref()) {
                push_completion_logprobs(codec, lp, p, &mut offset);
            }
        }
        text.push_str(&c.text);
        if let Some(lp) = logprobs.as_mut() {
            push_completion_logprobs(codec, lp, &c.tokens, &mut offset);
        }
        CompletionChoice {
            index: i,
            text,
            logprobs,
            finish_reason: c.finish.map(FinishReason::as_str),
        }
    })
    .await?;
    Ok(axum::Json(head.completion(choices, Some(usage))).into_response())
}

async fn chat_completions(State(st): State<AppRef>, req: Request) -> Result<Response, ApiError> {
    let body: ChatRequest = read_json(&st, req).await?;
    let plan = validate::chat(&body, &st.validation())?;
    let rx = submit(&st, &plan)?;
    let head = ResponseHead::new(&st, "chatcmpl");
    if plan.stream {
        return Ok(sse(chat_stream(st, plan, rx, head)));
    }
    let (choices, usage) = collect(&st, rx, &plan, |i, c| ChatChoice {
        index: i,
        logprobs: plan.logprobs.map(|_| ChatLogprobs {
            content: chat_logprobs(st.codec.as_ref(), &c.tokens),
        }),
        message: ChatMessageOut {
            role: "assistant",
            content: c.text,
        },
        finish_reason: c.finish.map(FinishReason::as_str),
    })
    .await?;
    Ok(axum::Json(ChatResponse {
        id: head.id,
        object: "chat.completion",
        created: head.created,
        model: head.model,
        choices,
        usage,
    })
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// Streaming (server-sent events)

fn sse(
    stream: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("cannot build the stream").into_response())
}

fn data<T: Serialize>(value: &T) -> Bytes {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("data: {json}\n\n"))
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Drives a stream: turns events into SSE frames with `on_event`, stops at the deadline with
/// an error frame, and always ends with `data: [DONE]`. Dropping the stream (client gone)
/// drops the receiver, which cancels the sequences.
struct Streamer {
    rx: UnboundedReceiver<Event>,
    deadline: TokioInstant,
    open: usize,
    finished: bool,
    timeout_s: f64,
}

enum Next2 {
    Event(Event),
    Error(ApiError),
    End,
}

impl Streamer {
    fn new(st: &AppState, rx: UnboundedReceiver<Event>, open: usize) -> Streamer {
        Streamer {
            rx,
            deadline: TokioInstant::now() + st.request_timeout,
            open,
            finished: false,
            timeout_s: st.config.request_timeout_s,
        }
    }

    async fn next(&mut self) -> Next2 {
        if self.finished || self.open == 0 {
            return Next2::End;
        }
        match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
            Err(_) => {
                self.finished = true;
                Next2::Error(ApiError::generation_timeout(self.timeout_s))
            }
            Ok(None) => {
                self.finished = true;
                Next2::Error(ApiError::internal("the engine stopped before finishing"))
            }
            Ok(Some(Event::Failed { message, .. })) => {
                self.finished = true;
                Next2::Error(ApiError::internal(message))
            }
            Ok(Some(e)) => {
                if matches!(e, Event::Finished { .. }) {
                    self.open -= 1;
                }
                Next2::Event(e)
            }
        }
    }
}

/// What the streamed endpoints differ in: their chunks. [`chunk_stream`] does the rest.
trait StreamChunks: Send + 'static {
    type Choice;
    /// A `data:` frame of one chunk holding `choices` (and `usage`, in the usage chunk).
    fn frame(&self, choices: Vec<Self::Choice>, usage: Option<Usage>) -> Bytes;
    /// The choice that ends choice `index` for `reason`.
    fn finished(index: usize, reason: FinishReason) -> Self::Choice;
    /// The choice a prompt or delta event sends; `None` when it sends nothing.
    fn choice(&mut self, st: &AppState, plan: &GenPlan, event: Event) -> Option<Self::Choice>;
}

/// The state of a [`chunk_stream`] between frames.
struct ChunkStream<K> {
    streamer: Streamer,
    st: AppRef,
    plan: GenPlan,
    chunks: K,
    /// Frames sent before any event.
    first: std::vec::IntoIter<Bytes>,
    completion_tokens: usize,
    done: bool,
}

/// A streamed generation: the `first` frames, then a frame per event; each choice ends with
/// its finish chunk, and after the last one come the usage chunk (with `include_usage`) and
/// `data: [DONE]`. An error (the deadline, an engine failure) ends the stream with an error
/// frame and `[DONE]`.
fn chunk_stream<K: StreamChunks>(
    st: AppRef,
    plan: GenPlan,
    rx: UnboundedReceiver<Event>,
    chunks: K,
    first: Vec<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = ChunkStream {
        streamer: Streamer::new(&st, rx, plan.sequences()),
        st,
        plan,
        chunks,
        first: first.into_iter(),
        completion_tokens: 0,
        done: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if let Some(b) = s.first.next() {
            return Some((Ok(b), s));
        }
        if s.done {
            return None;
        }
        let frame = match s.streamer.next().await {
            Next2::Event(Event::Finished {
                index,
                reason,
                completion_tokens,
            }) => {
                s.completion_tokens += completion_tokens;
                let mut b = s
                    .chunks
                    .frame(vec![K::finished(index, reason)], None)
                    .to_vec();
                if s.streamer.open == 0 {
                    if s.plan.include_usage {
                        let usage = usage(&s.plan, s.completion_tokens);
                        b.extend_from_slice(&s.chunks.frame(Vec::new(), Some(usage)));
                    }
                    b.extend_from_slice(DONE);
                    s.done = true;
                }
                Bytes::from(b)
            }
            Next2::Event(Event::Failed { .. }) | Next2::End => return None,
            Next2::Event(event) => match s.chunks.choice(&s.st, &s.plan, event) {
                Some(choice) => s.chunks.frame(vec![choice], None),
                None => Bytes::new(),
            },
            Next2::Error(e) => {
                s.done = true;
                let mut b = format!("data: {}\n\n", e.to_json()).into_bytes();
                b.extend_from_slice(DONE);
                Bytes::from(b)
            }
        };
        Some((Ok(frame), s))
    })
}

/// Completions chunks are `text_completion` objects; log-probability text offsets run on
/// per choice.
struct CompletionChunks {
    head: ResponseHead,
    offsets: Vec<usize>,
}

impl StreamChunks for CompletionChunks {
    type Choice = CompletionChoice;

    fn frame(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> Bytes {
        data(&self.head.completion(choices, usage))
    }

    fn finished(index: usize, reason: FinishReason) -> CompletionChoice {
        CompletionChoice {
            index,
            text: String::new(),
            logprobs: None,
            finish_reason: Some(reason.as_str()),
        }
    }

    fn choice(&mut self, st: &AppState, plan: &GenPlan, event: Event) -> Option<CompletionChoice> {
        let codec = st.codec.as_ref();
        let (index, text, logprobs) = match event {
            Event::Prompt { index, tokens } => {
                let mut lp = CompletionLogprobs::default();
                push_completion_logprobs(codec, &mut lp, &tokens, &mut self.offsets[index]);
                (
                    index,
                    text_of(codec, &plan.prompts[index / plan.n]),
                    Some(lp),
                )
            }
            Event::Delta {
                index,
                text,
                tokens,
            } => {
                let logprobs = plan.logprobs.map(|_| {
                    let mut lp = CompletionLogprobs::default();
                    push_completion_logprobs(codec, &mut lp, &tokens, &mut self.offsets[index]);
                    lp
                });
                (index, text, logprobs)
            }
            _ => return None,
        };
        Some(CompletionChoice {
            index,
            text,
            logprobs,
            finish_reason: None,
        })
    }
}

fn completion_stream(
    st: AppRef,
    plan: GenPlan,
    rx: UnboundedReceiver<Event>,
    head: ResponseHead,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let chunks = CompletionChunks {
        head,
        offsets: vec![0; plan.sequences()],
    };
    // Echo without log-probabilities: the prompt text goes out first.
    let mut first = Vec::new();
    if plan.echo && plan.prompt_logprobs.is_none() {
        first = (0..plan.sequences())
            .map(|index| {
                let text = text_of(st.codec.as_ref(), &plan.prompts[index / plan.n]);
                chunks.frame(
                    vec![CompletionChoice {
                        index,
                        text,
                        logprobs: None,
                        finish_reason: None,
                    }],
                    None,
                )
            })
            .collect();
    }
    chunk_stream(st, plan, rx, chunks, first)
}

/// Chat chunks are `chat.completion.chunk` objects with a `delta` per choice.
struct ChatChunks {
    head: ResponseHead,
}

impl StreamChunks for ChatChunks {
    type Choice = ChatChunkChoice;

    fn frame(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> Bytes {
        data(&self.head.chat_chunk(choices, usage))
    }

    fn finished(index: usize, reason: FinishReason) -> ChatChunkChoice {
        ChatChunkChoice {
            index,
            delta: ChatDelta::default(),
            logprobs: None,
            finish_reason: Some(reason.as_str()),
        }
    }

    /// New text; chat reports no prompt log-probabilities.
    fn choice(&mut self, st: &AppState, plan: &GenPlan, event: Event) -> Option<ChatChunkChoice> {
        let Event::Delta {
            index,
            text,
            tokens,
        } = event
        else {
            return None;
        };
        Some(ChatChunkChoice {
            index,
            delta: ChatDelta {
                role: None,
                content: Some(text),
            },
            logprobs: plan.logprobs.map(|_| ChatLogprobs {
                content: chat_logprobs(st.codec.as_ref(), &tokens),
            }),
            finish_reason: None,
        })
    }
}

fn chat_stream(
    st: AppRef,
    plan: GenPlan,
    rx: UnboundedReceiver<Event>,
    head: ResponseHead,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let chunks = ChatChunks { head };
    // Every choice opens with the assistant role, as OpenAI streams do.
    let first = (0..plan.n)
        .map(|index| {
            chunks.frame(
                vec![ChatChunkChoice {
                    index,
                    delta: ChatDelta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            )
        })
        .collect();
    chunk_stream(st, plan, rx, chunks, first)
}
