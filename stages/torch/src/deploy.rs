//! The `deploy` stage as `binarylm-torch run-stage` runs it: package a model into a servable
//! bundle, serve the bundle on an ephemeral loopback port, smoke-test it as a client would (a
//! completion and a streamed chat), record latency and tokens/s, stop the server.
//!
//! Bundle files: `model.safetensors`, `config.json`, `tokenizer.json` (the model and its
//! tokenizer), `server.json` (the server settings, a [`ServerConfig`]), `bundle.json`
//! ([`BundleInfo`]) and `smoke.json` (the smoke test's answers; its latencies and tokens/s are
//! the stage's metrics, kept in the registry, not in the bundle). `binarylm serve <deploy
//! stage>` serves it with those settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pipelines::{DeployParams, TorchJob};
use serve::smoke::{SmokeReport, SmokeRequest};
use serve::{ApiKeys, ServerConfig};

use crate::device::{self, DeviceChoice, DeviceError};
use crate::model::CONFIG_FILE;
use crate::server::engine::{read_config, ServePrecision};
use crate::server::{
    self, BundleInfo, ServeOptions, ServingError, BUNDLE_FILE, BUNDLE_FORMAT, SERVER_CONFIG_FILE,
    TOKENIZER_FILE,
};
use crate::train::Observer;

/// What the smoke test got back (the answers; its timings are the stage's metrics).
pub const SMOKE_FILE: &str = "smoke.json";

/// Steps reported as progress.
const STEPS: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error(
        "stage `{stage}` ({dir}) has no {file}: `model:` must name a stage that produced a model \
         (a pretrain stage)"
    )]
    NotAModel {
        stage: String,
        dir: PathBuf,
        file: &'static str,
    },
    #[error("stage `{stage}` ({dir}) has no {TOKENIZER_FILE}: {hint}")]
    NoTokenizer {
        stage: String,
        dir: PathBuf,
        hint: &'static str,
    },
    #[error(
        "`smoke.max_tokens` is {max_tokens} but the model's context holds {context} tokens in \
         all, prompt included: lower `smoke.max_tokens`"
    )]
    SmokeTooLong { max_tokens: usize, context: usize },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("starting the server on the bundle: {0}")]
    Serving(#[from] ServingError),
    #[error(transparent)]
    Smoke(#[from] serve::smoke::SmokeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a deploy run produced.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub smoke: SmokeReport,
    pub load_s: f64,
    pub device: String,
}

impl Deployed {
    /// The stage metrics `binarylm` records (headline `chat_tokens_per_s`).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let s = &self.smoke;
        BTreeMap::from([
            ("load_s".to_string(), self.load_s),
            ("completion_latency_s".to_string(), s.completion_latency_s),
            (
                "completion_tokens_per_s".to_string(),
                s.completion_tokens_per_s,
            ),
            ("completion_tokens".to_string(), s.completion_tokens as f64),
            (
                "chat_time_to_first_token_s".to_string(),
                s.chat_time_to_first_token_s,
            ),
            ("chat_latency_s".to_string(), s.chat_latency_s),
            ("chat_tokens_per_s".to_string(), s.chat_tokens_per_s),
            ("chat_tokens".to_string(), s.chat_tokens as f64),
        ])
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DeployError {
    move |source| DeployError::Io { context, source }
}

/// Copies the model and tokenizer into `out` and writes the settings; returns nothing but
/// files, so the bundle served below is exactly what `binarylm serve` will serve.
fn package(job: &TorchJob, params: &DeployParams, out: &Path) -> Result<(), DeployError> {
    let model_dir = job.input(&params.model)?;
    let weights = crate::model::quantized::weight_files(model_dir);
    for &file in std::iter::once(&CONFIG_FILE).chain(weights) {
        if !model_dir.join(file).is_file() {
            return Err(DeployError::NotAModel {
                stage: params.model.clone(),
                dir: model_dir.to_path_buf(),
                file,
            });
        }
    }
    let tokenizer = match &params.tokenizer {
        Some(stage) => {
            let dir = job.input(stage)?;
            let t = dir.join(TOKENIZER_FILE);
            if !t.is_file() {
                return Err(DeployError::NoTokenizer {
                    stage: stage.clone(),
                    dir: dir.to_path_buf(),
                    hint: "`tokenizer:` must name a tokenizer stage",
                });
            }
            t
        }
        None => {
            let t = model_dir.join(TOKENIZER_FILE);
            if !t.is_file() {
                return Err(DeployError::NoTokenizer {
                    stage: params.model.clone(),
                    dir: model_dir.to_path_buf(),
                    hint: "add `tokenizer: <tokenizer stage>` to the deploy stage",
                });
            }
            t
        }
    };
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let files = std::iter::once(CONFIG_FILE)
        .chain(weights.iter().copied())
        .map(|name| (model_dir.join(name), name))
        .chain(std::iter::once((tokenizer, TOKENIZER_FILE)));
    for (from, name) in files {
        let to = out.join(name);
        std::fs::copy(&from, &to).map_err(io(format!(
            "copying {} to {}",
            from.display(),
            to.display()
        )))?;
    }
    let server = server_config(params);
    write_json(&out.join(SERVER_CONFIG_FILE), &server)?;
    let bundle = BundleInfo {
        format: BUNDLE_FORMAT,
        name: params.name.clone().unwrap_or_else(|| params.model.clone()),
        model_stage: params.model.clone(),
        deploy_stage: job.stage.clone(),
        fingerprint: job.fingerprint.clone(),
    };
    write_json(&out.join(BUNDLE_FILE), &bundle)
}

/// The bundle's server settings: the stage's, the rest at their defaults.
pub fn server_config(params: &DeployParams) -> ServerConfig {
    ServerConfig {
        max_batch: params.server.max_batch,
        queue_capacity: params.server.queue_capacity,
        request_timeout_s: params.server.request_timeout_s,
        ..ServerConfig::default()
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), DeployError> {
    let text = serde_json::to_string_pretty(value).expect("plain structs serialize");
    std::fs::write(path, text + "\n").map_err(io(format!("writing {}", path.display())))
}

/// Runs a deploy job, reporting through `obs`.
pub fn run(
    job: &TorchJob,
    params: &DeployParams,
    obs: &dyn Observer,
) -> Result<Deployed, DeployError> {
    let choice: DeviceChoice = params.device.parse()?;
    let dev = device::resolve(choice)?;
    let out = &job.out_dir;

    obs.phase("packaging");
    obs.progress(0, Some(STEPS));
    package(job, params, out)?;
    let context = read_config(out)
        .map_err(|e| DeployError::Serving(e.into()))?
        .block_size;
    if params.smoke.max_tokens >= context {
        return Err(DeployError::SmokeTooLong {
            max_tokens: params.smoke.max_tokens,
            context,
        });
    }
    obs.log(&format!("bundle written to {}", out.display()));

    obs.phase("starting the server");
    obs.progress(1, Some(STEPS));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the async runtime".into()))?;
    let config = server::read_server_config(&out.join(SERVER_CONFIG_FILE))?;
    let opts = ServeOptions {
        model_dir: out.clone(),
        tokenizer: None,
        name: None,
        device: choice,
        precision: ServePrecision::Auto,
        threads: job.threads,
        config,
        keys: ApiKeys::none(),
    };
    let smoke = params.smoke.clone();
    let (report, load_s) = runtime.block_on(async move {
        let started = Instant::now();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(io("binding an ephemeral port on 127.0.0.1".into()))?;
        let server = server::start(listener, opts).await?;
        let load_s = started.elapsed().as_secs_f64();
        let request = SmokeRequest {
            base_url: format!("http://{}", server.addr()),
            api_key: None,
            prompt: smoke.prompt,
            chat: smoke.chat,
            max_tokens: smoke.max_tokens,
            timeout: Duration::from_secs(300),
        };
        let report = serve::smoke::run(&request).await;
        // Stop the server whether or not the checks passed.
        server.shutdown().await;
        Ok::<_, DeployError>((report?, load_s))
    })?;
    obs.phase("smoke test passed");
    obs.progress(2, Some(STEPS));
    obs.log(&format!(
        "smoke test: completion {} tokens in {:.3} s ({:.1} tokens/s): {:?}",
        report.completion_tokens,
        report.completion_latency_s,
        report.completion_tokens_per_s,
        report.completion_text
    ));
    obs.log(&format!(
        "smoke test: streamed chat {} tokens, first after {:.3} s, {:.1} tokens/s: {:?}",
        report.chat_tokens,
        report.chat_time_to_first_token_s,
        report.chat_tokens_per_s,
        report.chat_text
    ));
    write_json(&out.join(SMOKE_FILE), &report.outcome())?;
    obs.phase("done");
    obs.progress(STEPS, Some(STEPS));
    Ok(Deployed {
        smoke: report,
        load_s,
        device: device::id(dev),
    })
}
