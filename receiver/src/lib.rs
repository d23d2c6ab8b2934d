//! ReqCheck-compatible development receiver.
//!
//! An HTTP(S) server speaking ReqCheck's import API (`POST /heartbeat`, `/patient_data`,
//! `/vaccine_dose_data`) with the real Rails app's behaviour, traps included, as written up in
//! `docs/reqcheck-api.md`: 400 on an empty array, 201 `partial_failure` even when every
//! record failed, doses grouped by the *raw* `patient_number`, a dose import replacing each
//! patient's whole history, "Not Found" placeholder patients, gender never stored, 500s that
//! leave half a request written. An extractor that works against this receiver works against
//! ReqCheck; one that trips a trap here would have tripped it there.
//!
//! Everything lands in an SQLite file ([`Store`]) that [`Store::dump`] reads back.
//!
//! Layout: `server` (routing, auth order, responses) hands a parsed body (`params`) to
//! `import` (the per-record semantics, using `coerce` and `ruby` for Rails' casts), which
//! writes through `store`. `heartbeat` answers the heartbeat; `dump` reads everything back;
//! `tls` loads the certificate; `faults` makes it misbehave on purpose, for tests. Log lines go
//! through `events` only, which take no row values.

mod auth;
mod coerce;
mod dump;
mod error;
mod events;
mod faults;
mod heartbeat;
mod import;
mod params;
mod respond;
mod ruby;
mod server;
mod store;
mod tls;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt;
use tokio::task::JoinHandle;

pub use dump::{DataImportErrorRow, DataImportRow, Dump};
pub use error::ReceiverError;
pub use faults::{
    FaultAction, FaultEndpoint, FaultRule, FaultSpecError, Faults, RequestCounts, Requests,
    RetryAfter,
};
pub use store::Store;

/// How to run a receiver.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// Address to listen on; port 0 picks a free port (see [`RunningReceiver::local_addr`]).
    pub listen: SocketAddr,
    /// SQLite file to keep the data in; created if missing.
    pub db_path: PathBuf,
    /// HTTP Basic user name the extractor must send (ReqCheck's `EXTRACTOR_NAME`).
    pub username: String,
    /// HTTP Basic password (ReqCheck's `EXTRACTOR_PASSWORD`).
    pub password: String,
    /// Serve HTTPS with this certificate and key; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Requests to fail on purpose ([`Faults::default`]: none).
    pub faults: Faults,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("listen", &self.listen)
            .field("db_path", &self.db_path)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .field("faults", &self.faults)
            .finish()
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How long [`RunningReceiver::shutdown`] lets in-flight requests finish.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// A receiver serving in a background task. Dropping it stops the server without waiting;
/// prefer [`RunningReceiver::shutdown`].
#[derive(Debug)]
pub struct RunningReceiver {
    local_addr: SocketAddr,
    tls: bool,
    handle: axum_server::Handle,
    task: Option<JoinHandle<std::io::Result<()>>>,
    counts: Arc<faults::Counters>,
}

/// Opens the database, binds the address and starts serving in a background task.
///
/// Must be called inside a multi-threaded Tokio runtime.
pub async fn start(config: ReceiverConfig) -> Result<RunningReceiver, ReceiverError> {
    let db_path = config.db_path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(db_path))
        .await
        .map_err(|e| ReceiverError::Task(e.to_string()))??;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;

    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| ReceiverError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ReceiverError::Bind {
            addr: config.listen,
            source,
        })?;

    let counts = Arc::new(faults::Counters::default());
    let planned = (!config.faults.is_empty()).then(|| config.faults.clone());
    let state = Arc::new(server::AppState {
        store: Arc::new(store),
        credentials: auth::Credentials::new(config.username, config.password),
        faults: config.faults,
        counts: Arc::clone(&counts),
    });
    // axum-server hands hyper's request bodies to the service; naming the type picks which of
    // the router's `Service` impls the wrapper forwards to.
    let app = ServiceExt::<axum::http::Request<hyper::body::Incoming>>::into_make_service(
        faults::DropMarked::new(server::router(state)),
    );
    let handle = axum_server::Handle::new();
    let serving = tls.is_some();
    let task = match tls {
        Some(tls) => tokio::spawn(
            axum_server::from_tcp_rustls(listener, tls)
                .handle(handle.clone())
                .serve(app),
        ),
        None => tokio::spawn(
            axum_server::from_tcp(listener)
                .handle(handle.clone())
                .serve(app),
        ),
    };
    events::listening(local_addr, serving);
    if let Some(plan) = planned {
        events::faults_planned(&plan);
    }
    Ok(RunningReceiver {
        local_addr,
        tls: serving,
        handle,
        task: Some(task),
        counts,
    })
}

impl RunningReceiver {
    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many requests reached each endpoint past auth so far, and how many auth refused.
    pub fn requests(&self) -> RequestCounts {
        self.counts.snapshot()
    }

    /// `http://ADDR` or `https://ADDR`, without a trailing slash. With TLS, connect by a name
    /// the certificate covers if the address is not in it.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 10 s) and waits for
    /// the server task.
    pub async fn shutdown(mut self) -> Result<(), ReceiverError> {
        self.handle.graceful_shutdown(Some(GRACE_PERIOD));
        let result = self.finished().await;
        events::stopped();
        result
    }

    /// Waits until the server task ends on its own (it only does on an error or shutdown).
    async fn finished(&mut self) -> Result<(), ReceiverError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.task = None;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ReceiverError::Serve(e)),
            Err(e) => Err(ReceiverError::Task(e.to_string())),
        }
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.handle.shutdown();
        }
    }
}

/// Runs a started receiver until Ctrl-C or SIGTERM, then shuts it down gracefully (for the
/// CLI, which says where it listens once it does).
pub async fn serve_until_signal(mut running: RunningReceiver) -> Result<(), ReceiverError> {
    let stopped_by_itself = tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            None
        }
        result = running.finished() => Some(result),
    };
    match stopped_by_itself {
        Some(result) => result,
        None => running.shutdown().await,
    }
}

async fn shutdown_signal() -> Result<(), ReceiverError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(ReceiverError::Signal)?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.map_err(ReceiverError::Signal),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(ReceiverError::Signal)
    }
}
