//! The HTTP client for ReqCheck's three endpoints.
//!
//! All three are POST with HTTP Basic auth and a JSON body. Error messages carry the status and
//! ReqCheck's short `status` text at most, never a response body: a 500 page could echo
//! anything, and nothing from a request body (PHI) may reach a log.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use super::Credentials;

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    /// An extra CA certificate (PEM) to trust, e.g. a clinic's internal CA.
    pub ca_file: Option<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            ca_file: None,
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
    #[error("ReqCheck's answer from {endpoint} is not what its API returns: {reason}")]
    BadResponse { endpoint: String, reason: String },
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
        })
    }

    pub fn base_url(&self) -> &reqwest::Url {
        &self.base
    }

    /// `POST /heartbeat`.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        let endpoint = "/heartbeat";
        let response = self.post(endpoint, Vec::new()).await?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(self.status_error(endpoint, response).await);
        }
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

    /// POSTs a rendered body to an import endpoint and reads ReqCheck's verdict.
    pub async fn import(
        &self,
        endpoint: &str,
        body: Vec<u8>,
    ) -> Result<ImportResponse, ClientError> {
        let response = self.post(endpoint, body).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.status_error(endpoint, response).await);
        }
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

    async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<reqwest::Response, ClientError> {
        let url = self
            .base
            .join(endpoint.trim_start_matches('/'))
            .map_err(|e| ClientError::BadUrl {
                url: self.base.to_string(),
                reason: e.to_string(),
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
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: error_chain(&e),
            })
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
