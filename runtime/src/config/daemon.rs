//! `[daemon]`: settings of `reqsync daemon` only: where it serves `/healthz`, `/metrics` and
//! `/status`, what one client may hold of that listener, and the status page's login.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::daemon::http::HttpLimits;
use crate::reqcheck::credentials::CredentialsSource;

use super::credentials::{Forms, password_in_config, pick_source};
use super::{Context, Invalid, parse_duration};

/// Where `reqsync daemon` serves `/healthz` and `/metrics` unless told otherwise: loopback only
/// (the endpoints carry no PHI, but nothing outside the host needs them without a decision), on
/// a port in the range Prometheus exporters conventionally use.
pub const DEFAULT_DAEMON_LISTEN: &str = "127.0.0.1:9464";
/// The status page is served unless `status_page = false`: on loopback it needs no login, and
/// elsewhere it answers 403 until one is configured.
pub const DEFAULT_STATUS_PAGE: bool = true;

/// A scrape takes milliseconds: minutes of patience only keep a stuck client's socket open.
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(300);
/// Each connection holds a file descriptor, which the runs need too.
const MAX_HTTP_CONNECTIONS: usize = 1024;

/// `[daemon]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    /// Address of `/healthz` and `/metrics` (default [`DEFAULT_DAEMON_LISTEN`]).
    listen: Option<String>,
    /// How long a connection may take to send a request's head, and stay idle between
    /// requests (default `HttpLimits::default().header_timeout`).
    header_timeout: Option<String>,
    /// How long a request may take to be answered, and a connection stay open (default
    /// `HttpLimits::default().request_timeout`).
    request_timeout: Option<String>,
    /// Connections served at once; more are closed as they arrive (default
    /// `HttpLimits::default().max_connections`).
    max_connections: Option<usize>,
    /// Serve the status page at `/status` (default [`DEFAULT_STATUS_PAGE`]).
    status_page: Option<bool>,
    /// The user name the status page asks for (HTTP basic authentication); required when
    /// `listen` is not a loopback address.
    status_username: Option<String>,
    status_password_env: Option<String>,
    status_password_file: Option<PathBuf>,
    status_password_secret: Option<String>,
    /// Refused with the way to give it: passwords never go in the config file.
    status_password: Option<toml::Value>,
}

/// `[daemon]`, validated.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where `/healthz`, `/metrics` and `/status` are served.
    pub listen: SocketAddr,
    /// What one client may hold of that listener.
    pub limits: HttpLimits,
    /// Whether `/status` is served at all.
    pub status_page: bool,
    /// The status page's login (user name, where its password is); without one the page is
    /// served on loopback only.
    pub status_login: Option<(String, CredentialsSource)>,
}

impl DaemonConfig {
    pub(super) fn from_raw(raw: RawDaemon, cx: &Context) -> Result<Self, Invalid> {
        if raw.status_password.is_some() {
            return Err(Invalid::new(
                "daemon.status_password",
                password_in_config("status_password", "status-page", None),
            ));
        }
        let status_password = pick_source(
            "daemon",
            "status_password",
            Forms {
                env: raw.status_password_env.clone(),
                file: raw.status_password_file.clone(),
                secret: raw.status_password_secret.clone(),
            },
            None,
            cx,
        )?;
        let status_login = match (raw.status_username.clone(), status_password) {
            (Some(user), Some(password)) if !user.is_empty() && !user.contains(':') => {
                Some((user, password))
            }
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "daemon.status_username",
                    "a user name for basic authentication is not empty and has no `:`",
                ));
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(Invalid::new(
                    "daemon.status_password_env",
                    "the status page's user name is configured but not its password: add \
                     `status_password_env`, `status_password_file` or `status_password_secret`",
                ));
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "daemon.status_username",
                    "the status page's password is configured but not its user name: add \
                     `status_username`",
                ));
            }
        };
        let listen = raw
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_DAEMON_LISTEN)
            .parse()
            .map_err(|_| {
                Invalid::new(
                    "daemon.listen",
                    format!("expected an IP address and port, e.g. \"{DEFAULT_DAEMON_LISTEN}\""),
                )
            })?;
        Ok(DaemonConfig {
            listen,
            limits: http_limits(&raw)?,
            status_page: raw.status_page.unwrap_or(DEFAULT_STATUS_PAGE),
            status_login,
        })
    }
}

/// `[daemon]`'s limits on the `/healthz` and `/metrics` listener (see `daemon/http.rs`).
fn http_limits(raw: &RawDaemon) -> Result<HttpLimits, Invalid> {
    let defaults = HttpLimits::default();
    let timeout = |key: &str, value: &Option<String>, default: Duration| {
        let Some(text) = value else {
            return Ok(default);
        };
        let key = format!("daemon.{key}");
        let d = parse_duration(text).map_err(|e| Invalid::new(key.clone(), e))?;
        if d.is_zero() || d > MAX_HTTP_TIMEOUT {
            return Err(Invalid::new(
                key,
                format!(
                    "must be more than 0 and at most {}",
                    humantime::format_duration(MAX_HTTP_TIMEOUT)
                ),
            ));
        }
        Ok(d)
    };
    let max_connections = raw.max_connections.unwrap_or(defaults.max_connections);
    if !(1..=MAX_HTTP_CONNECTIONS).contains(&max_connections) {
        return Err(Invalid::new(
            "daemon.max_connections",
            format!("must be between 1 and {MAX_HTTP_CONNECTIONS}"),
        ));
    }
    Ok(HttpLimits {
        header_timeout: timeout(
            "header_timeout",
            &raw.header_timeout,
            defaults.header_timeout,
        )?,
        request_timeout: timeout(
            "request_timeout",
            &raw.request_timeout,
            defaults.request_timeout,
        )?,
        max_connections,
    })
}
