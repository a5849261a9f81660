//! Serving a model directory over HTTP: what `binarylm-torch serve` and the `deploy` stage share.
//!
//! A servable directory holds `config.json` + `model.safetensors` (a pretrain artifact, or a
//! deploy bundle) and usually `tokenizer.json`. A deploy bundle adds `server.json` (the
//! [`ServerConfig`] it was deployed with) and `bundle.json` ([`BundleInfo`]: the model id to
//! serve under, what it was built from). Settings given explicitly win over the bundle's.

pub mod cli;
pub mod engine;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serve::{ApiKeys, EngineError, RunningServer, ServerConfig};
use tokio::net::TcpListener;

use crate::device::{self, DeviceChoice, DeviceError};
use engine::{prepare, LoadError, ServePrecision, TorchEngine};

/// The bundle description file of a deploy artifact.
pub const BUNDLE_FILE: &str = "bundle.json";
/// The server settings file of a deploy artifact.
pub const SERVER_CONFIG_FILE: &str = "server.json";
/// The tokenizer file of a model directory.
pub use crate::model::TOKENIZER_FILE;
/// Version of [`BundleInfo`]'s format.
pub const BUNDLE_FORMAT: u32 = 1;

/// `bundle.json`: what a deploy bundle is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleInfo {
    pub format: u32,
    /// The model id clients pass as `model`.
    pub name: String,
    /// The stage whose model this bundle packages.
    pub model_stage: String,
    /// The deploy stage that wrote it.
    pub deploy_stage: String,
    /// Fingerprint of the deploy stage run that wrote it.
    pub fingerprint: String,
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "{dir} holds no {TOKENIZER_FILE}; pass the tokenizer the model was trained with \
         (`--tokenizer FILE`)"
    )]
    NoTokenizer { dir: PathBuf },
}

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model_dir: PathBuf,
    /// Default: `model_dir/tokenizer.json`.
    pub tokenizer: Option<PathBuf>,
    /// Default: the bundle's name, else the directory's name.
    pub name: Option<String>,
    pub device: DeviceChoice,
    pub precision: ServePrecision,
    /// CPU threads libtorch may use (0: leave libtorch's default).
    pub threads: usize,
    pub config: ServerConfig,
    pub keys: ApiKeys,
}

fn file_error(path: &Path, message: impl ToString) -> ServingError {
    ServingError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Reads `bundle.json` of `dir`, if it has one.
pub fn read_bundle(dir: &Path) -> Result<Option<BundleInfo>, ServingError> {
    let path = dir.join(BUNDLE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
    let info: BundleInfo = serde_json::from_str(&text)
        .map_err(|e| file_error(&path, format!("not a valid bundle description ({e})")))?;
    if info.format != BUNDLE_FORMAT {
        return Err(file_error(
            &path,
            format!(
                "bundle format {} is not {BUNDLE_FORMAT}: redeploy with this binarylm",
                info.format
            ),
        ));
    }
    Ok(Some(info))
}

/// Reads a server settings file (JSON, [`ServerConfig`]'s keys).
pub fn read_server_config(path: &Path) -> Result<ServerConfig, ServingError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let config: ServerConfig = serde_json::from_str(&text)
        .map_err(|e| file_error(path, format!("not a valid server config ({e})")))?;
    config.validate().map_err(|e| file_error(path, e))?;
    Ok(config)
}

/// The settings a directory is served with by default: its `server.json` when it is a bundle,
/// else the defaults.
pub fn default_server_config(dir: &Path) -> Result<ServerConfig, ServingError> {
    let path = dir.join(SERVER_CONFIG_FILE);
    if path.exists() {
        read_server_config(&path)
    } else {
        Ok(ServerConfig::default())
    }
}

/// The model id of `dir` when none is given: the bundle's name, else the directory's name.
pub fn default_name(dir: &Path) -> Result<String, ServingError> {
    if let Some(b) = read_bundle(dir)? {
        return Ok(b.name);
    }
    Ok(dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".to_string()))
}

/// Loads the model (weights on the engine thread) and starts serving on `listener`.
pub async fn start(
    listener: TcpListener,
    opts: ServeOptions,
) -> Result<RunningServer, ServingError> {
    let started = Instant::now();
    let tokenizer = match &opts.tokenizer {
        Some(t) => t.clone(),
        None => {
            let t = opts.model_dir.join(TOKENIZER_FILE);
            if !t.is_file() {
                return Err(ServingError::NoTokenizer {
                    dir: opts.model_dir.clone(),
                });
            }
            t
        }
    };
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(&opts.model_dir)?,
    };
    let prepared = prepare(&opts.model_dir, &tokenizer, &name)?;
    let dev = device::resolve(opts.device)?;
    let (dir, cfg, precision, threads) = (
        opts.model_dir.clone(),
        prepared.config.clone(),
        opts.precision,
        opts.threads,
    );
    let vocab = serve::Codec::vocab_size(prepared.codec.as_ref());
    let make_engine = move || {
        // On the engine thread: libtorch's thread count is per calling thread.
        if threads > 0 {
            device::set_threads(threads);
        }
        TorchEngine::load(&dir, &cfg, dev, precision, vocab).map_err(|e| EngineError(e.to_string()))
    };
    let spec = serve::ModelSpec {
        codec: prepared.codec,
        info: prepared.info,
    };
    let server = serve::start(listener, spec, make_engine, opts.config, opts.keys).await?;
    tracing::info!(
        model_dir = %opts.model_dir.display(),
        device = %device::describe(dev),
        load_s = started.elapsed().as_secs_f64(),
        "model loaded"
    );
    Ok(server)
}
