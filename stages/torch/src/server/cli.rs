//! `binarylm-torch serve`: serve a model directory over HTTP until Ctrl-C or SIGTERM, then
//! finish in-flight requests and exit. `binarylm serve` resolves stage names and digests and
//! hands over to this command.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serve::{ApiKeys, ServeFlags, API_KEYS_ENV};

use crate::device::DeviceChoice;
use crate::server::engine::ServePrecision;
use crate::server::{self, ServeOptions};

/// The line printed on stdout once the server accepts connections (followed by the URL), so
/// scripts and tests can wait for it and learn the port when `--port 0` picked one.
pub const READY_PREFIX: &str = "listening on ";

#[derive(Debug, Parser)]
#[command(
    name = "binarylm-torch serve",
    about = "Serve a model directory with the OpenAI API (normally run through `binarylm serve`)",
    after_help = "\
Examples:
  binarylm-torch serve path/to/model --port 8000
  binarylm-torch serve bundle/ --port 0        (prints `listening on http://127.0.0.1:PORT`)

  curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
       -d '{\"model\": \"model\", \"prompt\": \"Once upon a time\", \"max_tokens\": 32}'

A deploy bundle's server.json and bundle.json give the defaults of --config and --name."
)]
pub struct ServeArgs {
    /// Directory with config.json and model.safetensors (a pretrain artifact or deploy bundle).
    pub model_dir: PathBuf,
    #[command(flatten)]
    pub flags: ServeFlags,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Runs `binarylm-torch serve` with `args` (the words after `serve`).
pub fn main(args: &[String]) -> ExitCode {
    let args = match ServeArgs::try_parse_from(
        std::iter::once("binarylm-torch serve".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn run(args: ServeArgs) -> Result<(), String> {
    let ServeArgs {
        model_dir,
        flags: args,
    } = args;
    let device: DeviceChoice = args.device.parse().map_err(|e| format!("--device: {e}"))?;
    let precision: ServePrecision = args
        .precision
        .parse()
        .map_err(|e| format!("--precision: {e}"))?;
    if !model_dir.is_dir() {
        return Err(format!(
            "{} is not a directory (give a model directory: a pretrain artifact or deploy bundle)",
            model_dir.display()
        ));
    }
    let mut config = match &args.config {
        Some(path) => server::read_server_config(path),
        None => server::default_server_config(&model_dir),
    }
    .map_err(|e| e.to_string())?;
    if let Some(n) = args.max_batch {
        config.max_batch = n;
    }
    if let Some(n) = args.queue_capacity {
        config.queue_capacity = n;
    }
    config.validate().map_err(|e| e.to_string())?;
    let env_keys = std::env::var(API_KEYS_ENV).ok();
    let keys = ApiKeys::load(args.api_key_file.as_deref(), env_keys.as_deref())
        .map_err(|e| e.to_string())?;
    let opts = ServeOptions {
        model_dir: model_dir.clone(),
        tokenizer: args.tokenizer.clone(),
        name: args.name.clone(),
        device,
        precision,
        threads: args.threads,
        config,
        keys,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(async move {
        let addr = (args.host.as_str(), args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
        let server = server::start(listener, opts)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{READY_PREFIX}http://{}", server.addr());
            let _ = out.flush();
        }
        let stop = server.stop_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("signal received: finishing in-flight requests (again to force)");
            stop.cancel();
            // A second signal while draining exits at once.
            shutdown_signal().await;
            std::process::exit(130);
        });
        server.wait().await;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
