//! `[reqcheck]`: where ReqCheck is, how to log in, and how the client sends to it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::reqcheck::client::DEFAULT_TIMEOUT;
use crate::reqcheck::credentials::{CredentialsSource, CredentialsSources};
use crate::reqcheck::proxy::ProxySetting;
use crate::reqcheck::{RetryPolicy, parse_base_url};

use super::credentials::{Forms, password_in_config, pick_source};
use super::{Context, Invalid, parse_duration};

/// The variable the ReqCheck username is read from when no `username_*` key says otherwise.
pub const DEFAULT_USERNAME_ENV: &str = "REQCHECK_USERNAME";
/// The variable the ReqCheck password is read from when no `password_*` key says otherwise.
pub const DEFAULT_PASSWORD_ENV: &str = "REQCHECK_PASSWORD";

/// Two requests in flight keep ReqCheck busy while the answer to one travels back and the next
/// leaves; three measured within the noise of two (docs/PERFORMANCE.md, "filling the idle
/// moments").
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 2;
/// Each request in flight may be in doubt after a crash, and holds a body in memory.
const MAX_REQUESTS_IN_FLIGHT: usize = 8;
/// Past this many attempts a request is not failing for a passing reason.
const MAX_RETRY_ATTEMPTS: u32 = 100;

/// `[reqcheck]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReqCheck {
    /// Base URL, e.g. `https://reqcheck.example.org`.
    url: String,
    /// Environment variable holding the username (default [`DEFAULT_USERNAME_ENV`]).
    username_env: Option<String>,
    /// File holding the username (instead of the environment).
    username_file: Option<PathBuf>,
    /// Name of the secret holding the username in the secret store (`reqsync secret set`).
    username_secret: Option<String>,
    /// Environment variable holding the password (default [`DEFAULT_PASSWORD_ENV`]).
    password_env: Option<String>,
    /// File holding the password (instead of the environment).
    password_file: Option<PathBuf>,
    /// Name of the secret holding the password in the secret store.
    password_secret: Option<String>,
    /// Refused: secrets never live in the config file. Present only to say so clearly.
    password: Option<toml::Value>,
    /// Per-request timeout, e.g. `"2m"` (default [`DEFAULT_TIMEOUT`]).
    timeout: Option<String>,
    /// Extra CA certificate (PEM) to trust for ReqCheck's TLS certificate.
    ca_file: Option<PathBuf>,
    /// Attempts per request, the first included (1 = never retry; default
    /// `RetryPolicy::default().max_attempts`).
    retry_attempts: Option<u32>,
    /// No retry starts later than this after a request's first attempt (default
    /// `RetryPolicy::default().max_elapsed`).
    retry_max_time: Option<String>,
    /// Allow plain `http://` to a host other than loopback (default false).
    allow_insecure_http: Option<bool>,
    /// Requests sent before the previous one's answer (1 = one at a time; default
    /// [`DEFAULT_REQUESTS_IN_FLIGHT`]).
    requests_in_flight: Option<usize>,
    /// The HTTP proxy to reach ReqCheck through: `"http://proxy.example:3128"`, `"none"`
    /// (always directly), or `"system"` (the default: `HTTPS_PROXY` and the like, or the
    /// operating system's setting).
    proxy: Option<String>,
    /// Environment variable, file or stored secret holding the proxy's user name (no default:
    /// without these, the proxy is asked without credentials).
    proxy_username_env: Option<String>,
    proxy_username_file: Option<PathBuf>,
    proxy_username_secret: Option<String>,
    /// Environment variable, file or stored secret holding the proxy's password.
    proxy_password_env: Option<String>,
    proxy_password_file: Option<PathBuf>,
    proxy_password_secret: Option<String>,
    /// Refused, like `password`.
    proxy_password: Option<toml::Value>,
}

#[derive(Debug, Clone)]
pub struct ReqCheckConfig {
    pub url: String,
    pub username: CredentialsSource,
    pub password: CredentialsSource,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub retry: RetryPolicy,
    /// Plain `http://` to a non-loopback host is refused unless this is set.
    pub allow_insecure_http: bool,
    /// How many requests of a job may await ReqCheck's answer at once. ReqCheck may store
    /// those in either order, so a request sharing a key with an earlier one waits for every
    /// earlier answer (see `pipeline::batcher::Request::repeats_a_key`).
    pub requests_in_flight: usize,
    /// Directly, through the system's proxy, or through this one (see `reqcheck::proxy`).
    pub proxy: ProxySetting,
    /// Where the proxy's user name and password are, when it wants them.
    pub proxy_credentials: Option<CredentialsSources>,
}

impl ReqCheckConfig {
    /// `[reqcheck]`, checked: the URL, where each credential is (never in the file itself),
    /// the proxy, and the client's bounds.
    pub(super) fn from_raw(r: RawReqCheck, cx: &Context) -> Result<Self, Invalid> {
        if r.password.is_some() {
            return Err(Invalid::new(
                "reqcheck.password",
                password_in_config("password", "reqcheck", Some(DEFAULT_PASSWORD_ENV)),
            ));
        }
        let username = pick_source(
            "reqcheck",
            "username",
            Forms {
                env: r.username_env,
                file: r.username_file,
                secret: r.username_secret,
            },
            Some(DEFAULT_USERNAME_ENV),
            cx,
        )?
        .unwrap_or_else(|| CredentialsSource::Env(DEFAULT_USERNAME_ENV.into()));
        let password = pick_source(
            "reqcheck",
            "password",
            Forms {
                env: r.password_env,
                file: r.password_file,
                secret: r.password_secret,
            },
            Some(DEFAULT_PASSWORD_ENV),
            cx,
        )?
        .unwrap_or_else(|| CredentialsSource::Env(DEFAULT_PASSWORD_ENV.into()));
        if r.proxy_password.is_some() {
            return Err(Invalid::new(
                "reqcheck.proxy_password",
                password_in_config("proxy_password", "proxy", None),
            ));
        }
        let proxy = match &r.proxy {
            Some(text) => {
                ProxySetting::parse(text).map_err(|e| Invalid::new("reqcheck.proxy", e))?
            }
            None => ProxySetting::default(),
        };
        let proxy_credentials = proxy_sources(
            Forms {
                env: r.proxy_username_env,
                file: r.proxy_username_file,
                secret: r.proxy_username_secret,
            },
            Forms {
                env: r.proxy_password_env,
                file: r.proxy_password_file,
                secret: r.proxy_password_secret,
            },
            cx,
        )?;
        if proxy == ProxySetting::None && proxy_credentials.is_some() {
            return Err(Invalid::new(
                "reqcheck.proxy",
                "is \"none\", yet the proxy's credentials are configured: remove \
                 `proxy_username_*`/`proxy_password_*`, or name the proxy",
            ));
        }
        let timeout = match r.timeout {
            Some(t) => parse_duration(&t).map_err(|e| Invalid::new("reqcheck.timeout", e))?,
            None => DEFAULT_TIMEOUT,
        };
        parse_base_url(&r.url).map_err(|e| Invalid::new("reqcheck.url", e))?;
        let mut retry = RetryPolicy::default();
        if let Some(n) = r.retry_attempts {
            if n == 0 || n > MAX_RETRY_ATTEMPTS {
                return Err(Invalid::new(
                    "reqcheck.retry_attempts",
                    format!("must be between 1 (never retry) and {MAX_RETRY_ATTEMPTS}"),
                ));
            }
            retry.max_attempts = n;
        }
        if let Some(t) = &r.retry_max_time {
            retry.max_elapsed =
                parse_duration(t).map_err(|e| Invalid::new("reqcheck.retry_max_time", e))?;
        }
        let requests_in_flight = r.requests_in_flight.unwrap_or(DEFAULT_REQUESTS_IN_FLIGHT);
        if !(1..=MAX_REQUESTS_IN_FLIGHT).contains(&requests_in_flight) {
            return Err(Invalid::new(
                "reqcheck.requests_in_flight",
                format!("must be between 1 (one request at a time) and {MAX_REQUESTS_IN_FLIGHT}"),
            ));
        }
        Ok(ReqCheckConfig {
            url: r.url,
            username,
            password,
            timeout,
            ca_file: r.ca_file.map(|p| cx.rel(&p)),
            retry,
            allow_insecure_http: r.allow_insecure_http.unwrap_or_default(),
            requests_in_flight,
            proxy,
            proxy_credentials,
        })
    }
}

/// `proxy_username_*` and `proxy_password_*`: both or neither, each from a variable, a file or
/// the secret store. Unlike ReqCheck's, they have no default variables: most proxies want no
/// login, and one that does answers 407, which says to set these.
fn proxy_sources(
    username: Forms,
    password: Forms,
    cx: &Context,
) -> Result<Option<CredentialsSources>, Invalid> {
    let username = pick_source("reqcheck", "proxy_username", username, None, cx)?;
    let password = pick_source("reqcheck", "proxy_password", password, None, cx)?;
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(CredentialsSources { username, password })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Invalid::new(
            "reqcheck.proxy_password_env",
            "the proxy's user name is configured but not its password: add \
             `proxy_password_env`, `proxy_password_file` or `proxy_password_secret`",
        )),
        (None, Some(_)) => Err(Invalid::new(
            "reqcheck.proxy_username_env",
            "the proxy's password is configured but not its user name: add \
             `proxy_username_env`, `proxy_username_file` or `proxy_username_secret`",
        )),
    }
}
