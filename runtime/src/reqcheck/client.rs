//! The HTTP client for ReqCheck's three endpoints.
//!
//! All three are POST with HTTP Basic auth and a JSON body. Error messages carry the status and
//! ReqCheck's short `status` text at most, never a response body: a 500 page could echo
//! anything, and nothing from a request body (PHI) may reach a log. URLs in messages go through
//! [`RedactedUrl`].
//!
//! What the client does not trust ReqCheck's side with:
//! - **Redirects are never followed.** Following one re-sends the body (patient data) and the
//!   `Authorization` header to whatever the `Location` names, possibly over plain HTTP; a 3xx
//!   is an error ([`ClientError::Redirected`]) that is not retried.
//! - **Answers are read up to [`MAX_ANSWER_BYTES`]**, chunk by chunk: a server streaming an
//!   endless body cannot exhaust memory.
//! - Reading the answer is part of the attempt: an answer cut off or stalled mid-body is a
//!   transport failure like one before the status line (a timeout, a closed connection), and is
//!   retried the same way.
//!
//! Through an HTTP proxy ([`super::proxy`]) nothing of this changes: the TLS session is with
//! ReqCheck, inside the proxy's tunnel, and a proxy's refusal is an error that names the proxy
//! and says what to fix.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, FixedOffset};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::redact::RedactedUrl;

use super::Credentials;
use super::base_url::parse_base_url;
use super::proxy::{self, ProxyError, ProxyLogin, ProxyRoute, ProxySetting, Route, SystemProxy};
use super::retry::{Decision, FailureKind, RetryPolicy, StopReason, parse_retry_after};

/// How long one attempt at a request may take, answer included, unless `[reqcheck] timeout`
/// says otherwise. A service stopping waits for the request in flight: the systemd unit's
/// `TimeoutStopSec=150` (packaging/linux/reqsync.service, README) allows for this, so raise
/// both together.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// `[reqcheck] proxy`: the system's proxy by default (see [`super::proxy`]).
    pub proxy: ProxySetting,
    /// The proxy's user name and password, sent in `Proxy-Authorization`.
    pub proxy_credentials: Option<Credentials>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
            proxy: ProxySetting::default(),
            proxy_credentials: None,
        }
    }
}

/// The largest answer body the client reads, 1 MiB. ReqCheck's answers are small JSON objects:
/// a heartbeat is under 200 bytes, and an import's answer lists at most one error id per record
/// (a few KiB for a batch of 500). A longer answer is not ReqCheck speaking: reading stops there
/// ([`ClientError::AnswerTooLarge`]). No content encoding is negotiated (reqwest is built
/// without gzip and the like), so these are the bytes on the wire.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid ReqCheck URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot read the CA certificate {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    /// The proxy settings cannot be used (found when the client is built).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The proxy answered 407: not retried, as the same credentials would be refused again
    /// (and repeated failed logins can lock the proxy account).
    #[error(
        "{proxy} refused reqsync's credentials (407 Proxy Authentication Required) on the way \
         to ReqCheck at {url}: {fix}"
    )]
    ProxyAuth {
        /// The proxy, described: `the proxy http://host:port (from HTTPS_PROXY)`.
        proxy: String,
        url: String,
        fix: String,
    },
    /// The proxy answered the CONNECT request with another error status. reqwest does not
    /// pass the status on (hyper-util reports "unsuccessful" for every status but 200 and
    /// 407), so the message names the likely ones.
    #[error(
        "{proxy} would not open a tunnel to ReqCheck at {target}: it answered the CONNECT \
         request with an error, such as 403 (its rules do not allow this host or port) or \
         502/503/504 (it cannot reach ReqCheck).{hint} Ask the proxy's administrators to allow \
         CONNECT to {target}, or check {fix}"
    )]
    ProxyRefused {
        proxy: String,
        /// `host:port`, as the CONNECT request named it.
        target: String,
        hint: String,
        fix: String,
    },
    /// No connection to the proxy, or it broke off before the tunnel stood.
    #[error(
        "cannot reach ReqCheck at {url} through {proxy}: {reason}. Check that {fix} names the \
         proxy's host and port and that the proxy is running"
    )]
    ProxyUnreachable {
        proxy: String,
        url: String,
        reason: String,
        fix: String,
    },
    /// `check` says where the credentials were read (variables, files, stored secrets).
    #[error("ReqCheck refused the credentials (401) at {endpoint}: check {check}")]
    Unauthorized { endpoint: String, check: String },
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
    /// `via` is empty, or ` through the proxy …` when one was used.
    #[error("cannot reach ReqCheck at {url}{via}: {reason}")]
    Transport {
        url: String,
        via: String,
        reason: String,
    },
    #[error(
        "TLS with ReqCheck at {url}{via} failed: {reason}. If its certificate is not trusted (e.g. \
         UnknownIssuer) and is issued by an internal CA, set `[reqcheck] ca_file` to that CA's \
         PEM certificate; verification itself is never switched off{}",
        if .via.is_empty() { "" } else {
            ". Through a proxy, an unknown issuer often means the proxy inspects TLS with a \
             certificate of its own: ask for ReqCheck's host to be exempted from inspection \
             rather than trusting the proxy's CA, which would let it read patient data"
        }
    )]
    Tls {
        url: String,
        via: String,
        reason: String,
    },
    #[error("ReqCheck's answer from {endpoint} is not what its API returns: {reason}")]
    BadResponse { endpoint: String, reason: String },
    /// A 3xx: never followed (see the module documentation), never retried.
    #[error(
        "ReqCheck answered {endpoint} with a redirect ({status}) to {location}; reqsync never \
         follows redirects, since every request carries patient data and the ReqCheck password. \
         If ReqCheck has moved, configure its final address in `[reqcheck] url` (or \
         --reqcheck-url)"
    )]
    Redirected {
        endpoint: String,
        status: u16,
        /// Where the redirect points, scheme, host and port only: a path or query could hold
        /// a token, a user part a password.
        location: String,
    },
    #[error(
        "ReqCheck's answer from {endpoint} is larger than {} KiB, far beyond any answer its API \
         gives; stopped reading. Check that `[reqcheck] url` points at ReqCheck",
        .limit / 1024
    )]
    AnswerTooLarge { endpoint: String, limit: usize },
    #[error("ReqCheck's answer from {url} broke off: {reason}")]
    AnswerInterrupted { url: String, reason: String },
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
    /// Directly or through which proxy; decided once, when the client is built.
    route: Route,
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
        let base = parse_base_url(base_url).map_err(|e| ClientError::BadUrl {
            url: RedactedUrl::new(base_url).to_string(),
            reason: e.to_string(),
        })?;
        if base.scheme() == "http" && !options.allow_insecure_http && !is_loopback(&base) {
            return Err(ClientError::InsecureHttp {
                host: base.host_str().unwrap_or_default().to_string(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            // reqwest follows up to 10 redirects by default, re-sending a 307/308's body and
            // credentials wherever `Location` points; a 3xx is reported instead. Through a
            // proxy too: the redirect is inside the tunnel, and reqwest's policy applies.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("reqsync/", env!("CARGO_PKG_VERSION")));
        // The route is decided here rather than left to reqwest's own reading of the system's
        // settings: loopback gets its own rule, and error messages can name the proxy used.
        let (route, proxy_auth) = proxy::resolve(
            &options.proxy,
            options.proxy_credentials.as_ref(),
            &base,
            &SystemProxy::read(),
        )?;
        match &route {
            Route::Direct(why) => {
                tracing::debug!(
                    target: "reqsync::reqcheck",
                    reason = ?why,
                    "ReqCheck is reached directly, without a proxy"
                );
                builder = builder.no_proxy();
            }
            Route::Proxy(p) => {
                tracing::info!(
                    target: "reqsync::reqcheck",
                    proxy = %p.shown(),
                    origin = %p.origin,
                    login = p.login != ProxyLogin::None,
                    "ReqCheck is reached through a proxy"
                );
                // `all`: the one URL this client speaks to, whatever its scheme.
                let mut proxy = reqwest::Proxy::all(p.url.as_str())
                    .map_err(|e| ClientError::Build(e.to_string()))?;
                if let Some(auth) = proxy_auth {
                    proxy = proxy.custom_http_auth(auth);
                }
                builder = builder.proxy(proxy);
            }
        }
        if let Some(path) = &options.ca_file {
            let pem =
                crate::input_file::read(path, crate::input_file::CERTIFICATES).map_err(|e| {
                    ClientError::CaFile {
                        path: path.clone(),
                        reason: e.reason(),
                    }
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
            route,
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

    /// Directly or through which proxy the client reaches ReqCheck.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// `POST /heartbeat`.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        let endpoint = "/heartbeat";
        let answer = self
            .post_with_retries(endpoint, Bytes::new(), StatusCode::OK, None)
            .await?;
        let body: HeartbeatBody = parse_answer(endpoint, &answer)?;
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
    pub(crate) async fn import_unless_cancelled(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        cancel: Option<&CancellationToken>,
    ) -> Result<ImportResponse, ClientError> {
        // `Bytes` takes over the buffer without copying; each attempt sends a cheap clone.
        let answer = self
            .post_with_retries(endpoint, Bytes::from(body), StatusCode::CREATED, cancel)
            .await?;
        let body: ImportBody = parse_answer(endpoint, &answer)?;
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

    /// POSTs `body` until ReqCheck answers `success` and its answer is read whole, a failure
    /// is not transient, or the retry policy's bounds are reached; returns the answer's body.
    /// Every retry is logged (endpoint, attempt, status or failure class, wait), never a body
    /// or an error text that could quote one.
    ///
    /// An answer that breaks off is retried like a request that got none: ReqCheck may have
    /// stored the import already, and sending it again is safe (see [`super::retry`]).
    async fn post_with_retries(
        &self,
        endpoint: &str,
        body: Bytes,
        success: StatusCode,
        cancel: Option<&CancellationToken>,
    ) -> Result<Bytes, ClientError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let failed = match self.post(endpoint, body.clone()).await {
                Ok(response) if response.status() == success => {
                    match read_answer(endpoint, response).await {
                        Ok(answer) => return Ok(answer),
                        Err(failed) => failed,
                    }
                }
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
                    url: RedactedUrl::new(self.base.as_str()).to_string(),
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
            .map_err(|e| self.send_failure(e, &url))
    }

    /// A request that got no answer, as a failed attempt. Through a proxy, a failure to get
    /// the tunnel is the proxy's, and says so.
    fn send_failure(&self, e: reqwest::Error, url: &reqwest::Url) -> Failed {
        let shown = RedactedUrl::new(url.as_str()).to_string();
        let Some(proxy) = self.route.proxy() else {
            return transport_failure(e, |kind, reason| {
                if kind == FailureKind::Tls {
                    ClientError::Tls {
                        url: shown,
                        via: String::new(),
                        reason,
                    }
                } else {
                    ClientError::Transport {
                        url: shown,
                        via: String::new(),
                        reason,
                    }
                }
            });
        };
        let unreachable = |reason| ClientError::ProxyUnreachable {
            proxy: proxy.described(),
            url: shown.clone(),
            reason,
            fix: proxy.origin.to_fix(),
        };
        match tunnel_failure(&e) {
            Some(Tunnel::AuthRequired) => Failed {
                error: self.proxy_auth_error(proxy),
                kind: FailureKind::ProxyAuth,
                retry_after: None,
            },
            Some(Tunnel::Refused) => Failed {
                error: ClientError::ProxyRefused {
                    proxy: proxy.described(),
                    target: connect_target(&self.base),
                    hint: if is_loopback(&self.base) {
                        " ReqCheck's URL is on this machine's loopback, which a proxy elsewhere \
                         cannot reach: set `[reqcheck] proxy = \"none\"` to connect directly."
                            .into()
                    } else {
                        String::new()
                    },
                    fix: proxy.origin.to_fix(),
                },
                kind: FailureKind::ProxyRefused,
                retry_after: None,
            },
            // Connecting to the proxy (or its own TLS, for an https:// proxy) failed, or it
            // closed the connection before answering CONNECT.
            Some(Tunnel::Other) => transport_failure(e, |_, reason| unreachable(reason)),
            // A plain http:// ReqCheck is forwarded, not tunnelled: a connection that fails
            // is still one to the proxy.
            None if transport_kind(&e) == FailureKind::Connect => {
                transport_failure(e, |_, reason| unreachable(reason))
            }
            None => {
                let via = format!(" through {}", proxy.described());
                transport_failure(e, |kind, reason| {
                    if kind == FailureKind::Tls {
                        ClientError::Tls {
                            url: shown,
                            via,
                            reason,
                        }
                    } else {
                        ClientError::Transport {
                            url: shown,
                            via,
                            reason,
                        }
                    }
                })
            }
        }
    }

    /// The proxy's 407, with what to check depending on where its credentials came from.
    fn proxy_auth_error(&self, proxy: &ProxyRoute) -> ClientError {
        let fix = match &proxy.login {
            ProxyLogin::None => "the proxy requires a login: name where its user name and \
                                 password are with `proxy_username_env`/`proxy_username_file` \
                                 and `proxy_password_env`/`proxy_password_file` (or the \
                                 `_secret` forms) in [reqcheck]"
                .to_string(),
            ProxyLogin::Configured { check } => {
                format!("check {check} (`proxy_username_*`/`proxy_password_*` in [reqcheck])")
            }
            ProxyLogin::InUrl => format!(
                "check the user name and password in the proxy URL of {}, or give them with \
                 `proxy_username_env`/`proxy_password_env` (or `_file`) in [reqcheck]",
                proxy.origin
            ),
        };
        ClientError::ProxyAuth {
            proxy: proxy.described(),
            url: RedactedUrl::new(self.base.as_str()).to_string(),
            fix: format!("{fix}. Not retried: the same credentials would be refused again"),
        }
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
        // A plain http:// request forwarded by a proxy gets the proxy's 407 as its answer.
        if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
            && let Some(proxy) = self.route.proxy()
        {
            return self.proxy_auth_error(proxy);
        }
        let endpoint = endpoint.to_string();
        match status {
            s if s.is_redirection() => ClientError::Redirected {
                endpoint,
                status: s.as_u16(),
                location: redirect_target(&response),
            },
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
                endpoint,
                check: self.credentials.where_to_check(),
            },
            s if s.is_server_error() => ClientError::Server {
                endpoint,
                status: s.as_u16(),
            },
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                // ReqCheck's 400 body is `{"status": "patient_data key missing"}`: safe to show.
                let body = read_answer(&endpoint, response).await.ok();
                let message = match body.and_then(|b| serde_json::from_slice::<StatusBody>(&b).ok())
                {
                    Some(b) if b.status.len() <= 200 => b.status,
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
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
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

/// How getting a proxy's tunnel failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tunnel {
    /// 407 Proxy Authentication Required.
    AuthRequired,
    /// Any other status but 200.
    Refused,
    /// No connection to the proxy, its TLS failed, or it closed before answering.
    Other,
}

/// Whether `e` is a failure to get a tunnel from the proxy, and which. hyper-util's
/// `TunnelError` lives in a private module, so it cannot be downcast to: its message is the
/// only signal (`tunnel error: proxy authorization required`, `tunnel error: unsuccessful`,
/// …). The end-to-end proxy tests (tests/e2e/proxy.rs) fail if an upgrade changes it.
fn tunnel_failure(e: &reqwest::Error) -> Option<Tunnel> {
    causes(e).iter().find_map(|c| {
        let text = c.to_string();
        let rest = text.strip_prefix("tunnel error: ")?;
        Some(match rest {
            "proxy authorization required" => Tunnel::AuthRequired,
            "unsuccessful" => Tunnel::Refused,
            _ => Tunnel::Other,
        })
    })
}

/// `host:port` of `url`, as a CONNECT request names it.
fn connect_target(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
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

/// A failed attempt from a transport error, classified by [`transport_kind`]; `error` makes the
/// message from the class and the error's chain of causes.
fn transport_failure(
    e: reqwest::Error,
    error: impl FnOnce(FailureKind, String) -> ClientError,
) -> Failed {
    let kind = transport_kind(&e);
    Failed {
        error: error(kind, error_chain(e)),
        kind,
        retry_after: None,
    }
}

/// reqwest's top-level message ("error sending request") hides the cause that tells a user
/// what to fix (connection refused, certificate unknown, timeout): include the chain. The URL
/// reqwest adds to its message is left out: callers name it themselves, redacted.
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
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

/// Reads an answer's body chunk by chunk, up to [`MAX_ANSWER_BYTES`]. A body announced or
/// found to be longer is refused as soon as that is known, without reading the rest; one that
/// breaks off (a timeout, a closed connection) is a transport failure, retried like any.
async fn read_answer(endpoint: &str, mut response: reqwest::Response) -> Result<Bytes, Failed> {
    let too_large = || Failed {
        error: ClientError::AnswerTooLarge {
            endpoint: endpoint.to_string(),
            limit: MAX_ANSWER_BYTES,
        },
        kind: FailureKind::TooLarge,
        retry_after: None,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let url = RedactedUrl::new(response.url().as_str()).to_string();
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                return Err(too_large());
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body.freeze()),
            Err(e) => {
                return Err(transport_failure(e, |_, reason| {
                    ClientError::AnswerInterrupted { url, reason }
                }));
            }
        }
    }
}

/// ReqCheck's JSON answer as `T`. A parse error says what kind of problem and where, never
/// serde's own message: that quotes the value it could not take.
fn parse_answer<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax => "not valid JSON",
            Category::Data => "JSON of another shape",
            Category::Eof => "JSON cut short",
            Category::Io => "unreadable",
        };
        ClientError::BadResponse {
            endpoint: endpoint.to_string(),
            reason: format!("{what} (line {}, column {})", e.line(), e.column()),
        }
    })
}

/// Where a redirect points, as `scheme://host[:port]`: never the path, query or user part. A
/// relative `Location` is resolved against the request's URL.
fn redirect_target(response: &reqwest::Response) -> String {
    let Some(location) = response.headers().get(LOCATION) else {
        return "nowhere (no Location header)".into();
    };
    let target = location
        .to_str()
        .ok()
        .and_then(|l| response.url().join(l).ok());
    match target
        .as_ref()
        .and_then(|t| Some((t.scheme(), t.host_str()?, t.port())))
    {
        Some((scheme, host, Some(port))) => format!("{scheme}://{host}:{port}"),
        Some((scheme, host, None)) => format!("{scheme}://{host}"),
        None => "a Location that is not a URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(location: Option<&str>) -> reqwest::Response {
        let mut answer = axum::http::Response::builder().status(307);
        if let Some(l) = location {
            answer = answer.header("location", l);
        }
        reqwest::Response::from(answer.body("").expect("response"))
    }

    #[test]
    fn a_redirect_is_named_by_scheme_host_and_port_only() {
        assert_eq!(
            redirect_target(&redirect(Some(
                "http://thief:pw@evil.example:8080/collect?token=t0ken#x"
            ))),
            "http://evil.example:8080"
        );
        assert_eq!(
            redirect_target(&redirect(Some("https://[::1]/x"))),
            "https://[::1]"
        );
        // Relative: the same host as the request's.
        assert_eq!(
            redirect_target(&redirect(Some("/elsewhere?token=t0ken"))),
            "http://no.url.provided.local"
        );
        assert_eq!(
            redirect_target(&redirect(None)),
            "nowhere (no Location header)"
        );
        assert_eq!(
            redirect_target(&redirect(Some("http://"))),
            "a Location that is not a URL"
        );
    }

    #[test]
    fn a_malformed_answer_is_described_without_quoting_it() {
        let e = parse_answer::<HeartbeatBody>(
            "/heartbeat",
            br#"{"last_update_date_timestamp": "Jane Doe 1984-02-29"}"#,
        )
        .map(|_| ())
        .expect_err("a name is not a timestamp");
        let message = e.to_string();
        assert!(message.contains("/heartbeat"), "{message}");
        assert!(message.contains("JSON of another shape"), "{message}");
        assert!(
            !message.contains("Jane") && !message.contains("1984"),
            "{message}"
        );
        let e = parse_answer::<HeartbeatBody>("/heartbeat", b"{\"last_upd")
            .map(|_| ())
            .expect_err("cut short");
        assert!(e.to_string().contains("JSON cut short"), "{e}");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_quoting_the_password() {
        let credentials = Credentials {
            username: "u".into(),
            password: super::super::Secret::new("pw"),
            origin: None,
        };
        let e = ReqCheckClient::new(
            "http://user:s3cret@127.0.0.1:3000",
            credentials,
            &ClientOptions::default(),
        )
        .expect_err("refused");
        assert!(matches!(e, ClientError::BadUrl { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains("http://***@127.0.0.1:3000"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
