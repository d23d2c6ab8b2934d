//! The HTTP client for ReqCheck's three endpoints.
//!
//! All three are POST with HTTP Basic auth and a JSON body. Error messages carry the status and
//! ReqCheck's short `status` text at most, never a response body: a 500 page could echo
//! anything, and nothing from a request body (PHI) may reach a log.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Credentials;
use super::retry::{Decision, FailureKind, RetryPolicy, StopReason, parse_retry_after};

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per attempt: each retry gets the whole timeout again.
    pub timeout: Duration,
    /// An extra CA certificate (PEM) to trust, e.g. a clinic's internal CA.
    pub ca_file: Option<PathBuf>,
    /// How often and how long a failed request is tried again (see [`super::retry`]).
    pub retry: RetryPolicy,
    /// Allow a plain `http://` URL to a host other than loopback. Off by default: the
    /// requests carry patient data and the ReqCheck password.
    pub allow_insecure_http: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            ca_file: None,
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid ReqCheck URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot read the CA certificate {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error(
        "ReqCheck refused the credentials (401) at {endpoint}: check REQCHECK_USERNAME / \
         REQCHECK_PASSWORD (or the files configured in [reqcheck])"
    )]
    Unauthorized { endpoint: String },
    #[error("ReqCheck rejected the request to {endpoint} ({status}): {message}")]
    Rejected {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error(
        "ReqCheck failed on {endpoint} with a server error ({status}); records before the failure may have been stored"
    )]
    Server { endpoint: String, status: u16 },
    #[error("unexpected HTTP status {status} from {endpoint}")]
    UnexpectedStatus { endpoint: String, status: u16 },
    #[error("cannot reach ReqCheck at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error(
        "TLS with ReqCheck at {url} failed: {reason}. If its certificate is not trusted (e.g. \
         UnknownIssuer) and is issued by an internal CA, set `[reqcheck] ca_file` to that CA's \
         PEM certificate; verification itself is never switched off"
    )]
    Tls { url: String, reason: String },
    #[error("ReqCheck's answer from {endpoint} is not what its API returns: {reason}")]
    BadResponse { endpoint: String, reason: String },
    #[error(
        "refusing plain http:// to {host}: requests to ReqCheck carry patient data and the \
         password. Use an https:// URL, or set `allow_insecure_http = true` in [reqcheck] if \
         the network to {host} is trusted"
    )]
    InsecureHttp { host: String },
    /// Every attempt failed with a transient error, or the next wait would pass
    /// `retry_max_time`; `last` is the last attempt's error.
    #[error("gave up after {attempts} attempt{} in {}{}: {last}",
        if *.attempts == 1 { "" } else { "s" },
        seconds(*.elapsed),
        match .next_wait {
            Some(wait) => format!(" (the next wait, {}, would pass retry_max_time)", seconds(*wait)),
            None => String::new(),
        })]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        /// Set when the time limit, not the attempt count, ended the retries.
        next_wait: Option<Duration>,
        last: Box<ClientError>,
    },
    /// The run was cancelled (a service shutting down) while waiting to try again; `last` is
    /// the last attempt's error.
    #[error("stopped retrying after {attempts} attempt{}, since shutdown was requested: {last}",
        if *.attempts == 1 { "" } else { "s" })]
    RetryCancelled {
        attempts: u32,
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// The error of the last attempt: the error itself, or what [`ClientError::GaveUp`] wraps.
    pub fn last_cause(&self) -> &ClientError {
        match self {
            ClientError::GaveUp { last, .. } | ClientError::RetryCancelled { last, .. } => {
                last.last_cause()
            }
            other => other,
        }
    }
}

/// `41 s`, or `0.3 s` below ten seconds (test runs and short outages), for messages.
fn seconds(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else {
        format!("{secs:.0} s")
    }
}

/// What `/heartbeat` says: when ReqCheck last received an import (the older of the newest
/// patient import and the newest dose import), or nothing before the first import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub last_update_date: Option<DateTime<FixedOffset>>,
}

/// Whether every record of an accepted import was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Success,
    PartialFailure,
}

/// ReqCheck's answer to an accepted (201) import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportResponse {
    pub status: ImportStatus,
    pub data_import_id: i64,
    /// ids of ReqCheck's DataImportError rows; the reasons are only in ReqCheck's admin UI.
    pub error_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct HeartbeatBody {
    last_update_date: Option<String>,
    last_update_date_timestamp: Option<i64>,
}

#[derive(Deserialize)]
struct ImportBody {
    status: String,
    data_import_id: Option<i64>,
    // ReqCheck spells it this way.
    #[serde(default)]
    error_objects_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

/// A client for one ReqCheck instance.
#[derive(Debug, Clone)]
pub struct ReqCheckClient {
    http: reqwest::Client,
    base: reqwest::Url,
    credentials: Credentials,
    retry: RetryPolicy,
    /// The backoff's random source, shared by clones; seeded from the OS unless a test fixes
    /// it ([`ReqCheckClient::with_jitter_seed`]).
    jitter: Arc<Mutex<StdRng>>,
}

/// One failed attempt: the error to report, and what the retry policy needs to know.
#[derive(Debug)]
struct Failed {
    error: ClientError,
    kind: FailureKind,
    retry_after: Option<Duration>,
}

impl ReqCheckClient {
    pub fn new(
        base_url: &str,
        credentials: Credentials,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let base = reqwest::Url::parse(base_url).map_err(|e| ClientError::BadUrl {
            url: base_url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadUrl {
                url: base_url.to_string(),
                reason: "use an https:// (or, for a local receiver, http://) URL".into(),
            });
        }
        if base.scheme() == "http" && !options.allow_insecure_http && !is_loopback(&base) {
            return Err(ClientError::InsecureHttp {
                host: base.host_str().unwrap_or_default().to_string(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("reqsync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| ClientError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ClientError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            builder = builder.tls_certs_merge([cert]);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self {
            http,
            base,
            credentials,
            retry: options.retry.clone(),
            jitter: Arc::new(Mutex::new(StdRng::from_os_rng())),
        })
    }

    /// Draws the backoff waits from a generator seeded with `seed`, so that a test's waits
    /// are the same on every run.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        self
    }

    pub fn base_url(&self) -> &reqwest::Url {
        &self.base
    }

    /// `POST /heartbeat`.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        let endpoint = "/heartbeat";
        let response = self
            .post_with_retries(endpoint, Bytes::new(), StatusCode::OK, None)
            .await?;
        let body: HeartbeatBody = response
            .json()
            .await
            .map_err(|e| ClientError::BadResponse {
                endpoint: endpoint.into(),
                reason: e.to_string(),
            })?;
        let last_update_date =
            match (body.last_update_date, body.last_update_date_timestamp) {
                (Some(s), _) => Some(DateTime::parse_from_rfc3339(&s).map_err(|e| {
                    ClientError::BadResponse {
                        endpoint: endpoint.into(),
                        reason: format!("last_update_date is not ISO 8601 with an offset: {e}"),
                    }
                })?),
                (None, Some(ts)) => DateTime::from_timestamp(ts, 0).map(|d| d.fixed_offset()),
                (None, None) => None,
            };
        Ok(Heartbeat { last_update_date })
    }

    /// POSTs a rendered body to an import endpoint and reads ReqCheck's verdict. Transient
    /// failures are retried with the same body: see [`super::retry`] for why that is safe.
    pub async fn import(
        &self,
        endpoint: &str,
        body: Vec<u8>,
    ) -> Result<ImportResponse, ClientError> {
        self.import_unless_cancelled(endpoint, body, None).await
    }

    /// [`import`](Self::import), but a wait before a retry ends as soon as `cancel` is
    /// cancelled ([`ClientError::RetryCancelled`]): a service shutting down stops within
    /// moments instead of waiting out a backoff of up to `max_delay` (or a `Retry-After`). An
    /// attempt already sent is never abandoned; its answer decides as usual.
    pub async fn import_unless_cancelled(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        cancel: Option<&CancellationToken>,
    ) -> Result<ImportResponse, ClientError> {
        // `Bytes` takes over the buffer without copying; each attempt sends a cheap clone.
        let response = self
            .post_with_retries(endpoint, Bytes::from(body), StatusCode::CREATED, cancel)
            .await?;
        let body: ImportBody = response
            .json()
            .await
            .map_err(|e| ClientError::BadResponse {
                endpoint: endpoint.into(),
                reason: e.to_string(),
            })?;
        let status = match body.status.as_str() {
            "success" => ImportStatus::Success,
            "partial_failure" => ImportStatus::PartialFailure,
            _ => {
                return Err(ClientError::BadResponse {
                    endpoint: endpoint.into(),
                    reason: "unknown import status".into(),
                });
            }
        };
        let data_import_id = body
            .data_import_id
            .ok_or_else(|| ClientError::BadResponse {
                endpoint: endpoint.into(),
                reason: "no data_import_id".into(),
            })?;
        Ok(ImportResponse {
            status,
            data_import_id,
            error_ids: body.error_objects_ids,
        })
    }

    /// POSTs `body` until ReqCheck answers `success`, a failure is not transient, or the
    /// retry policy's bounds are reached. Every retry is logged (endpoint, attempt, status or
    /// failure class, wait), never a body or an error text that could quote one.
    async fn post_with_retries(
        &self,
        endpoint: &str,
        body: Bytes,
        success: StatusCode,
        cancel: Option<&CancellationToken>,
    ) -> Result<reqwest::Response, ClientError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failed = match self.post(endpoint, body.clone()).await {
                Ok(response) if response.status() == success => return Ok(response),
                Ok(response) => self.status_failure(endpoint, response).await,
                Err(failed) => failed,
            };
            let elapsed = started.elapsed();
            let decision = {
                // A poisoned lock only means another request panicked mid-draw; the
                // generator's state is still a valid one.
                let mut rng = self.jitter.lock().unwrap_or_else(|p| p.into_inner());
                self.retry
                    .decide(attempt, elapsed, failed.kind, failed.retry_after, &mut *rng)
            };
            let next_wait = match decision {
                Decision::Retry {
                    delay,
                    from_retry_after,
                } => {
                    tracing::warn!(
                        target: "reqsync::reqcheck",
                        event = "request_retry",
                        endpoint,
                        attempt,
                        max_attempts = self.retry.max_attempts,
                        status = failed.kind.status(),
                        error_class = failed.kind.label(),
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        retry_after = from_retry_after,
                        "ReqCheck request failed; trying again"
                    );
                    let cancelled = match cancel {
                        Some(token) => tokio::select! {
                            () = tokio::time::sleep(delay) => false,
                            () = token.cancelled() => true,
                        },
                        None => {
                            tokio::time::sleep(delay).await;
                            false
                        }
                    };
                    if cancelled {
                        return Err(ClientError::RetryCancelled {
                            attempts: attempt,
                            last: Box::new(failed.error),
                        });
                    }
                    continue;
                }
                Decision::Stop(StopReason::NotTransient) => return Err(failed.error),
                // Retries switched off: the error as it is, without a "gave up" preamble.
                Decision::Stop(StopReason::Attempts) if attempt == 1 => return Err(failed.error),
                Decision::Stop(StopReason::Attempts) => None,
                Decision::Stop(StopReason::Time { wait }) => Some(wait),
            };
            return Err(ClientError::GaveUp {
                attempts: attempt,
                elapsed,
                next_wait,
                last: Box::new(failed.error),
            });
        }
    }

    /// One attempt.
    async fn post(&self, endpoint: &str, body: Bytes) -> Result<reqwest::Response, Failed> {
        let url = self
            .base
            .join(endpoint.trim_start_matches('/'))
            .map_err(|e| Failed {
                error: ClientError::BadUrl {
                    url: self.base.to_string(),
                    reason: e.to_string(),
                },
                kind: FailureKind::Local,
                retry_after: None,
            })?;
        self.http
            .post(url.clone())
            .basic_auth(
                &self.credentials.username,
                Some(self.credentials.password.expose()),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let kind = transport_kind(&e);
                let (url, reason) = (url.to_string(), error_chain(&e));
                Failed {
                    kind,
                    error: if kind == FailureKind::Tls {
                        ClientError::Tls { url, reason }
                    } else {
                        ClientError::Transport { url, reason }
                    },
                    retry_after: None,
                }
            })
    }

    /// An answer other than the endpoint's success status, as a failed attempt.
    async fn status_failure(&self, endpoint: &str, response: reqwest::Response) -> Failed {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        Failed {
            error: self.status_error(endpoint, response).await,
            kind: FailureKind::Status(status.as_u16()),
            retry_after,
        }
    }

    async fn status_error(&self, endpoint: &str, response: reqwest::Response) -> ClientError {
        let status = response.status();
        let endpoint = endpoint.to_string();
        match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized { endpoint },
            s if s.is_server_error() => ClientError::Server {
                endpoint,
                status: s.as_u16(),
            },
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                // ReqCheck's 400 body is `{"status": "patient_data key missing"}`: safe to show.
                let message = match response.json::<StatusBody>().await {
                    Ok(b) if b.status.len() <= 200 => b.status,
                    _ => "no reason given".into(),
                };
                ClientError::Rejected {
                    endpoint,
                    status: status.as_u16(),
                    message,
                }
            }
            s => ClientError::UnexpectedStatus {
                endpoint,
                status: s.as_u16(),
            },
        }
    }
}

/// `localhost`, 127.0.0.0/8 and ::1 (also as `::ffff:127.x.y.z`): plain HTTP there never
/// leaves the machine, which is how the development receiver is reached.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 literals come bracketed (`[::1]`).
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// Sorts a transport error into the classes the retry policy knows, by the types in its
/// chain of causes (reqwest → hyper-util → hyper, io, rustls), as reqwest's own `is_timeout`
/// does: the texts are not a stable interface.
fn transport_kind(e: &reqwest::Error) -> FailureKind {
    if e.is_builder() {
        return FailureKind::Local;
    }
    let causes = causes(e);
    // Before the connect check: a failed handshake is also a connect error, but no wait fixes
    // an unknown certificate.
    if causes.iter().any(|c| c.is::<rustls::Error>()) {
        return FailureKind::Tls;
    }
    if e.is_timeout() {
        return FailureKind::Timeout;
    }
    if e.is_connect() {
        return FailureKind::Connect;
    }
    let closed = causes.iter().any(|c| {
        c.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_canceled() || h.is_closed())
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                )
            })
    });
    if closed {
        FailureKind::Closed
    } else {
        FailureKind::Transport
    }
}

/// Every error in `e`'s chain, with the payloads of `io::Error`s: an `io::Error`'s `source()`
/// skips its own payload, and rustls' handshake error travels as the payload of an
/// `io::Error` inside another one (tokio-rustls, then hyper-rustls).
fn causes(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push(s);
        let mut inner = s;
        while let Some(payload) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let payload: &(dyn std::error::Error + 'static) = payload;
            out.push(payload);
            inner = payload;
        }
        source = s.source();
    }
    out
}

/// reqwest's top-level message ("error sending request") hides the cause that tells a user
/// what to fix (connection refused, certificate unknown, timeout): include the chain.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        out.push_str(" (timed out)");
    }
    out
}
