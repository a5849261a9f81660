//! Starting, running and stopping a server: the accept loop (HTTP/1.1 through hyper, with a
//! header-read timeout against slow clients), the engine thread, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::ApiKeys;
use crate::config::ServerConfig;
use crate::engine::{Codec, Engine, EngineError, ModelInfo};
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::routes::{router, AppState};
use crate::scheduler::{Scheduler, SchedulerConfig};

/// The tokenizer and facts of the model to serve.
pub struct ModelSpec {
    pub codec: Arc<dyn Codec>,
    pub info: ModelInfo,
}

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A token that starts the graceful shutdown when cancelled (e.g. from a signal handler).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Waits until the server has stopped (after [`RunningServer::stop_token`] is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stops accepting, finishes in-flight requests (up to the grace period), stops the engine.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.wait().await;
    }
}

/// Now in Unix seconds (the `created` of a model without a better date).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Loads the engine (on its own thread) and starts serving on `listener`.
pub async fn start<E, F>(
    listener: TcpListener,
    model: ModelSpec,
    make_engine: F,
    config: ServerConfig,
    keys: ApiKeys,
) -> Result<RunningServer, ServeError>
where
    E: Engine,
    F: FnOnce() -> Result<E, EngineError> + Send + 'static,
{
    config.validate()?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: "the given listener".into(),
        source,
    })?;
    let metrics = Arc::new(Metrics::default());
    let sched_config = SchedulerConfig {
        max_batch: config.max_batch,
        queue_capacity: config.queue_capacity,
    };
    let codec = model.codec.clone();
    let context = model.info.context_length;
    let m = metrics.clone();
    let (scheduler, engine_thread) = tokio::task::spawn_blocking(move || {
        Scheduler::start(make_engine, codec, context, sched_config, m)
    })
    .await
    .map_err(|e| EngineError(format!("the engine loader panicked: {e}")))??;
    let header_timeout = config.header_timeout()?;
    let grace = config.shutdown_grace();
    let state = Arc::new(AppState::new(
        model.codec,
        model.info,
        scheduler.clone(),
        metrics.clone(),
        config,
        keys,
    )?);
    tracing::info!(
        %addr,
        model = %state.info.id,
        context = state.info.context_length,
        auth = !state.keys.is_empty(),
        "serving"
    );
    let app = router(state);
    let stop = CancellationToken::new();
    let stop_loop = stop.clone();
    let task = tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                _ = stop_loop.cancelled() => break,
                accepted = listener.accept() => {
                    let (stream, _peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        // New requests on open connections now get 503; queued and running ones complete.
        scheduler.close();
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(grace) => {
                tracing::warn!(grace_s = grace.as_secs_f64(), "grace period over; closing remaining connections");
            }
        }
        let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
        tracing::info!("stopped");
    });
    Ok(RunningServer {
        addr,
        stop,
        metrics,
        task,
    })
}
