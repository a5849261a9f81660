//! The HTTP server: routes, the access check every request passes, and the live stream.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;

use crate::access::{Access, Granted};
use crate::api::{self, AppState, Shared};
use crate::error::{ApiError, UiError};
use crate::snapshot::Workspace;
use crate::{assets, live};

/// How often the live stream looks at the workspace.
const LIVE_PERIOD: Duration = Duration::from_millis(1000);

/// What `binarylm ui` was asked for, resolved.
pub struct UiOptions {
    pub workspace: PathBuf,
    /// The manifest the user works with (listed first), if any.
    pub manifest: Option<PathBuf>,
    pub host: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub access: Access,
    /// The stage kinds this build knows (what `plan` needs).
    pub kinds: runtime::Kinds,
}

/// A server bound to its address, not yet serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
    access: Access,
}

/// Reads the workspace once (so that a workspace that cannot be read is an error now, not on
/// the first page) and binds the address.
pub async fn bind(opts: UiOptions) -> Result<Bound, UiError> {
    let workspace = Workspace::new(opts.workspace.clone(), opts.manifest, opts.kinds);
    workspace.snapshot().map_err(|source| UiError::Workspace {
        path: opts.workspace.clone(),
        source,
    })?;
    let state: Shared = Arc::new(AppState::new(workspace));
    let addr = SocketAddr::new(opts.host, opts.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| UiError::Bind { addr, source })?;
    Ok(Bound {
        router: router(state, opts.access.clone()),
        listener,
        addr,
        access: opts.access,
    })
}

impl Bound {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link to open: with the token when there is one. Bound to every interface
    /// (`0.0.0.0`, `::`), the link names loopback, which browsers connect to (another machine
    /// uses this one's name or address with the same port and token).
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        match self.access.token_value() {
            Some(t) => format!("http://{host}:{}/?token={t}", self.addr.port()),
            None => format!("http://{host}:{}/", self.addr.port()),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), UiError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(UiError::Serve)
    }
}

fn router(state: Shared, access: Access) -> Router {
    Router::new()
        .route("/", get(|| async { assets::index() }))
        .route(
            "/assets/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    assets::asset(&name)
                },
            ),
        )
        .route("/api/home", get(api::home))
        .route("/api/runs", get(api::runs))
        .route("/api/pipelines/{id}", get(api::pipeline))
        .route("/api/pipelines/{id}/stages/{stage}", get(api::stage))
        .route(
            "/api/pipelines/{id}/stages/{stage}/tokenize",
            post(api::tokenize),
        )
        .route(
            "/api/pipelines/{id}/stages/{stage}/inspect",
            post(api::inspect),
        )
        .route("/api/curves", get(api::curve_sources))
        .route("/api/curves/{digest}", get(api::curve))
        .route("/api/objects/{digest}/files/{*path}", get(api::object_file))
        .route("/api/logs/{run}/{stage}", get(api::log))
        .route("/api/live", get(live_json))
        .route("/api/live/events", get(live_events))
        .fallback(|| async { ApiError::not_found("no such page or API route") })
        .layer(middleware::from_fn_with_state(access, check_access))
        .with_state(state)
}

/// Every request: only GET and POST (nothing here changes anything), and the access check.
async fn check_access(State(access): State<Access>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::POST {
        return ApiError {
            status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{} is not served: the UI only reads", req.method()),
        }
        .into_response();
    }
    match access.check(req.headers(), req.uri().query()) {
        Ok(Granted::Plain) => next.run(req).await,
        Ok(Granted::SetCookie(cookie)) => {
            let mut resp = next.run(req).await;
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn live_json(State(s): State<Shared>) -> Result<Json<live::Live>, ApiError> {
    api::with_snapshot(&s, |_, snap| Ok(live::live(snap)))
        .await
        .map(Json)
}

/// Server-sent events: a `live` event whenever what is running changed (checked every second),
/// and a `changed` event when the workspace's results changed (pages reload their data).
async fn live_events(
    State(s): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Seen {
        live: Option<String>,
        home: Option<String>,
    }
    let stream = futures_util::stream::unfold(
        (
            s,
            Seen {
                live: None,
                home: None,
            },
            true,
        ),
        |(s, mut seen, first)| async move {
            let mut wait = !first;
            loop {
                if wait {
                    tokio::time::sleep(LIVE_PERIOD).await;
                }
                wait = true;
                let now = api::with_snapshot(&s, |_, snap| {
                    let live = serde_json::to_string(&live::live(snap)).unwrap_or_default();
                    let home = serde_json::to_string(&crate::views::home(snap)).unwrap_or_default();
                    Ok((live, home))
                })
                .await;
                let Ok((live, home)) = now else { continue };
                let mut event = None;
                if seen.home.as_ref() != Some(&home) {
                    let was_seen = seen.home.is_some();
                    seen.home = Some(home);
                    if was_seen {
                        event = Some(Event::default().event("changed").data("{}"));
                    }
                }
                if event.is_none() && seen.live.as_ref() != Some(&live) {
                    event = Some(Event::default().event("live").data(live.clone()));
                    seen.live = Some(live);
                }
                if let Some(e) = event {
                    return Some((Ok(e), (s, seen, false)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
