//! The JSON API the page reads (and scripts may too): every handler builds its document on a
//! blocking thread from the current snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;

use crate::error::ApiError;
use crate::files;
use crate::snapshot::{Snapshot, Workspace};
use crate::views;

/// Longest text the tokenize box accepts.
const MAX_TOKENIZE_BYTES: usize = 64 << 10;

pub struct AppState {
    pub workspace: Workspace,
    inspectors: crate::inspector::Inspectors,
    /// Tokenizers by artifact digest (objects never change, so neither do they).
    tokenizers: Mutex<HashMap<String, Arc<Tokenizer>>>,
}

impl AppState {
    pub fn new(workspace: Workspace) -> AppState {
        AppState {
            workspace,
            inspectors: Default::default(),
            tokenizers: Mutex::default(),
        }
    }
}

pub type Shared = Arc<AppState>;

/// Runs `f` on the current snapshot on a blocking thread (the registry and files are sync).
pub async fn with_snapshot<T, F>(state: &Shared, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState, &Snapshot) -> Result<T, ApiError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let snap = state.workspace.snapshot()?;
        f(&state, &snap)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

pub async fn home(State(s): State<Shared>) -> Result<Json<views::Home>, ApiError> {
    with_snapshot(&s, |_, snap| Ok(views::home(snap)))
        .await
        .map(Json)
}

pub async fn runs(State(s): State<Shared>) -> Result<Json<Vec<views::RunSummary>>, ApiError> {
    with_snapshot(&s, |_, snap| {
        Ok(snap
            .runs
            .iter()
            .map(|r| views::run_summary(snap, r))
            .collect())
    })
    .await
    .map(Json)
}

pub async fn pipeline(
    State(s): State<Shared>,
    Path(id): Path<usize>,
) -> Result<Json<views::PipelineView>, ApiError> {
    with_snapshot(&s, move |_, snap| views::pipeline(snap, id))
        .await
        .map(Json)
}

pub async fn stage(
    State(s): State<Shared>,
    Path((id, name)): Path<(usize, String)>,
) -> Result<Json<views::StageView>, ApiError> {
    with_snapshot(&s, move |_, snap| views::stage(snap, id, &name))
        .await
        .map(Json)
}

#[derive(Deserialize)]
pub struct TokenizeRequest {
    text: String,
}

#[derive(Serialize)]
pub struct TokenView {
    id: u32,
    /// The token's bytes as text (invalid UTF-8 replaced).
    text: String,
    special: bool,
}

#[derive(Serialize)]
pub struct TokenizeView {
    digest: registry::Digest,
    vocab_size: usize,
    bytes: usize,
    tokens: Vec<TokenView>,
}

/// The tokens of a text under the tokenizer a stage's artifact holds (a tokenizer stage, or a
/// model stage, which carries its tokenizer).
pub async fn tokenize(
    State(s): State<Shared>,
    Path((id, name)): Path<(usize, String)>,
    Json(req): Json<TokenizeRequest>,
) -> Result<Json<TokenizeView>, ApiError> {
    if req.text.len() > MAX_TOKENIZE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the text is {} bytes; the tokenize box takes up to {MAX_TOKENIZE_BYTES}",
            req.text.len()
        )));
    }
    with_snapshot(&s, move |state, snap| {
        let digest = views::artifact_with(
            snap,
            id,
            &name,
            &[views::TOKENIZER_FILE],
            "artifact with a tokenizer.json",
        )?;
        let tok = state.tokenizer(snap, &digest)?;
        let tokens = tok
            .encode(&req.text)
            .into_iter()
            .map(|id| TokenView {
                id,
                text: String::from_utf8_lossy(tok.token_bytes(id).unwrap_or_default()).into_owned(),
                special: tok.is_added(id),
            })
            .collect();
        Ok(TokenizeView {
            digest,
            vocab_size: tok.vocab_size(),
            bytes: req.text.len(),
            tokens,
        })
    })
    .await
    .map(Json)
}

impl AppState {
    fn tokenizer(&self, snap: &Snapshot, digest: &str) -> Result<Arc<Tokenizer>, ApiError> {
        let mut cache = self.tokenizers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cache.get(digest) {
            return Ok(Arc::clone(t));
        }
        let path = files::object_file(&snap.registry, digest, views::TOKENIZER_FILE)?;
        let tok = Tokenizer::from_file(&path)
            .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
        let tok = Arc::new(tok);
        cache.insert(digest.to_string(), Arc::clone(&tok));
        Ok(tok)
    }
}

/// The model inspector of a model stage: the request (`{"op": "prompt", "text": …}` or
/// `{"op": "embeddings", "token": …}`) goes to that model's `binarylm-torch inspect`.
pub async fn inspect(
    State(s): State<Shared>,
    Path((id, name)): Path<(usize, String)>,
    Json(req): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let text_len = req.get("text").and_then(|t| t.as_str()).map_or(0, str::len);
    if text_len > MAX_TOKENIZE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the prompt is {text_len} bytes; the inspector takes up to {MAX_TOKENIZE_BYTES}"
        )));
    }
    with_snapshot(&s, move |state, snap| {
        let digest = views::artifact_with(
            snap,
            id,
            &name,
            &[views::MODEL_CONFIG_FILE, views::TOKENIZER_FILE],
            "model to inspect",
        )?;
        let dir = snap.registry.object_path(&digest);
        state.inspectors.ask(&digest, &dir, &req)
    })
    .await
    .map(|json| ([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

pub async fn curve_sources(
    State(s): State<Shared>,
) -> Result<Json<Vec<views::CurveSource>>, ApiError> {
    with_snapshot(&s, |_, snap| views::curve_sources(snap))
        .await
        .map(Json)
}

pub async fn curve(
    State(s): State<Shared>,
    Path(digest): Path<String>,
) -> Result<Json<Vec<pipelines::artifacts::CurvePoint>>, ApiError> {
    with_snapshot(&s, move |_, snap| views::curve(snap, &digest))
        .await
        .map(Json)
}

/// A file of a stored object, by its path in the object's listing.
pub async fn object_file(
    State(s): State<Shared>,
    Path((digest, rel)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (bytes, mime) = with_snapshot(&s, move |_, snap| {
        let path = files::object_file(&snap.registry, &digest, &rel)?;
        Ok((files::read_whole(&path)?, mime_of(&rel)))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            // An SVG opened directly must not run script in the UI's origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

/// A stage's log in a run.
pub async fn log(
    State(s): State<Shared>,
    Path((run, stage)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = with_snapshot(&s, move |_, snap| {
        let known = snap
            .registry
            .run(&run)
            .ok()
            .flatten()
            .and_then(|r| snap.pipeline_of(&r.manifest))
            .and_then(|p| p.manifest.as_ref().ok())
            .is_some_and(|m| m.stage(&stage).is_some());
        let path = files::log_file(&snap.registry, &run, &stage, known)?;
        files::read_whole(&path)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

fn mime_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("md" | "txt" | "jsonl" | "log" | "yaml" | "csv") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
