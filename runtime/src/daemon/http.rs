//! `/healthz` and `/metrics` on a local address. Both show job names, times, counts and outcome
//! words only, so the port can be scraped without exposing PHI.
//!
//! The listener shares the process with the scheduled runs, and so its file descriptors: a
//! client that opens connections and sends nothing must not be able to hold them until the runs
//! fail with "Too many open files". So every connection is bounded ([`HttpLimits`]):
//! - it must send a request's head within `header_timeout`, counted from when the server
//!   starts waiting for one: at once for a new connection, and after each answer on a kept-alive
//!   one (so an idle keep-alive connection is closed after the same time);
//! - it is answered within `request_timeout` (503 otherwise), and closed once it has been open
//!   for `header_timeout + request_timeout`, whatever it does (a client that never reads its
//!   answer, say);
//! - at most `max_connections` are served at once; one more is closed as soon as it is
//!   accepted, not queued, so the sockets held never exceed the cap.
//!
//! axum's own `serve` has no such limits, so connections are accepted here and each is served
//! with hyper's HTTP/1 connection builder, whose header-read timeout does the first part.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::metrics::CONTENT_TYPE;
use super::service::DaemonState;
use crate::resource::{FILE_LIMIT_ADVICE, out_of_file_descriptors};

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

/// What one client may hold of the listener (`[daemon]` in the config; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// To send a request's head, and to stay idle between requests.
    pub header_timeout: Duration,
    /// To be answered; with `header_timeout`, how long a connection stays open at most.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// A scrape sends its head at once and is answered in milliseconds; Prometheus and a
    /// health checker need a connection or two each.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_connections: 32,
        }
    }
}

impl HttpLimits {
    fn connection_lifetime(&self) -> Duration {
        self.header_timeout.saturating_add(self.request_timeout)
    }
}

/// A connection told to close (its lifetime is over, or the daemon stops) may finish the
/// answer it is writing for this long before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long accepting pauses when the process is out of file descriptors: the next accept
/// would fail the same way at once, and a busy loop would take a core from the runs.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

pub fn router(state: Arc<DaemonState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(super::status_page::handler))
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

/// The start-up warning for an address reachable from other hosts, or `None` for loopback.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "/healthz and /metrics are served on {addr}, reachable from other hosts: they show \
             job names, run times and counts to anyone who can connect; bind 127.0.0.1 \
             (`[daemon] listen` or --listen) or put the port behind a firewall"
        )
    })
}

/// Serves until `shutdown` is cancelled, then lets the open connections finish (each is
/// closed within its lifetime anyway) and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<DaemonState>,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    let router = router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        // Closed at once when every slot is taken: queued, it would hold its socket anyway.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            refusals.count(limits.max_connections);
            continue;
        };
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            limits,
            slot,
            shutdown.clone(),
        ));
    }
    // Every connection has ended once every slot is free again.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    slots
        .acquire_many(all)
        .await
        .map(drop)
        .map_err(|e| HttpError::Serve(e.to_string()))
}

/// Connections closed because every slot was taken: said at most once a minute, so that a
/// flood shows in the log without filling it.
#[derive(Debug, Default)]
struct Refusals {
    since_warning: u64,
    warned: Option<tokio::time::Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(60);

    fn count(&mut self, max_connections: usize) {
        self.since_warning += 1;
        let now = tokio::time::Instant::now();
        if self.warned.is_some_and(|at| now - at < Self::EVERY) {
            return;
        }
        tracing::warn!(
            closed = self.since_warning,
            max_connections,
            "/healthz and /metrics: connections closed on arrival, every slot is taken (idle or \
             slow clients; raise `[daemon] max_connections` if they are legitimate)"
        );
        self.since_warning = 0;
        self.warned = Some(now);
    }
}

/// An accept that failed. Out of file descriptors: said once with what to do, then accepting
/// pauses (the connection waits in the kernel's backlog). Anything else concerns that one
/// connection (reset before it was accepted, say).
async fn accept_failed(e: &std::io::Error) {
    if out_of_file_descriptors(e) {
        tracing::warn!(
            error = %e,
            "cannot accept a connection on the /healthz and /metrics port: the process is out \
             of file descriptors; {FILE_LIMIT_ADVICE}"
        );
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    } else {
        tracing::debug!(error = %e, "a connection failed before it was accepted");
    }
}

/// Serves one connection within its limits; `_slot` is given back when it ends.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    _slot: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        answer(router.clone(), request, limits.request_timeout)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => {
            // A client that timed out, hung up or sent garbage: that connection's business.
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection closed");
            }
            return;
        }
        () = tokio::time::sleep(limits.connection_lifetime()) => {}
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
}

/// The router's answer, or 503 once `timeout` has passed.
async fn answer(
    mut router: Router,
    request: Request<Incoming>,
    timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let call = tower_service::Service::call(&mut router, request.map(Body::new));
    match tokio::time::timeout(timeout, call).await {
        Ok(response) => response,
        Err(_) => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "the answer took longer than `[daemon] request_timeout`\n",
        )
            .into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_quiet() {
        for quiet in ["127.0.0.1:9464", "127.1.2.3:1", "[::1]:9464"] {
            assert_eq!(exposure_warning(quiet.parse().expect("addr")), None);
        }
        for exposed in ["0.0.0.0:9464", "[::]:9464", "192.168.1.5:9464"] {
            let warning = exposure_warning(exposed.parse().expect("addr")).expect("warned");
            assert!(warning.contains(exposed), "{warning}");
            assert!(warning.contains("127.0.0.1"), "{warning}");
            assert!(warning.contains("firewall"), "{warning}");
        }
    }
}
