//! `/healthz` and `/metrics` on a local address. Both show job names, times, counts and outcome
//! words only, so the port can be scraped without exposing PHI.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::CONTENT_TYPE;
use super::service::DaemonState;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen on {addr} for /healthz and /metrics: {reason} (set `[daemon] listen` or \
         --listen to a free address)"
    )]
    Bind { addr: SocketAddr, reason: String },
    #[error("the /healthz and /metrics server stopped: {0}")]
    Serve(String),
}

pub fn router(state: Arc<DaemonState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<Arc<DaemonState>>) -> impl IntoResponse {
    Json(state.health())
}

async fn metrics(State(state): State<Arc<DaemonState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Binds `addr`; port 0 picks a free one (ask the listener's `local_addr`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr).await.map_err(|e| HttpError::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<DaemonState>,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|e| HttpError::Serve(e.to_string()))
}
