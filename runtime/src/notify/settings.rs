//! `[notify]` of the config file, and what it becomes once checked: which events, the
//! thresholds, and the channels, each with its defaults. Secrets (the SMTP login, a webhook
//! URL holding a token) are only named here, and read when a notice is sent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Context, Forms, Invalid, parse_duration, password_in_config, pick_source};
use crate::reqcheck::{CredentialsSource, CredentialsSources};

/// The default of `quarantine_threshold`.
pub(crate) const DEFAULT_QUARANTINE_THRESHOLD: u64 = 100;
/// The default of `[notify.email] timeout`: one message, connection included.
pub(crate) const DEFAULT_EMAIL_TIMEOUT: Duration = Duration::from_secs(30);
/// The default of `[[notify.webhook]] timeout`, per request.
pub(crate) const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// `[notify]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    /// Which events (default: all of [`EventKind::CONFIGURABLE`]).
    on: Option<Vec<String>>,
    /// Open quarantine entries past which a notice is sent (default
    /// [`DEFAULT_QUARANTINE_THRESHOLD`]).
    quarantine_threshold: Option<u64>,
    email: Option<RawEmail>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

/// `[notify.email]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmail {
    host: String,
    /// Default: [`SmtpTls::default_port`] of `tls`.
    port: Option<u16>,
    /// `"starttls"` (default, [`SmtpTls::StartTls`]) or `"tls"`.
    tls: Option<String>,
    from: String,
    to: Vec<String>,
    username_env: Option<String>,
    username_file: Option<PathBuf>,
    username_secret: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    password_secret: Option<String>,
    /// Refused, like `[reqcheck] password`.
    password: Option<toml::Value>,
    ca_file: Option<PathBuf>,
    /// Per-message timeout (default [`DEFAULT_EMAIL_TIMEOUT`]).
    timeout: Option<String>,
}

/// `[[notify.webhook]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    url: Option<String>,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
    url_secret: Option<String>,
    /// `"json"` (default, [`WebhookFormat::Json`]), `"teams"` or `"slack"`.
    format: Option<String>,
    /// Per-request timeout (default [`DEFAULT_WEBHOOK_TIMEOUT`]).
    timeout: Option<String>,
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A run failed (or a run was interrupted): its error class, not its message.
    RunFailed,
    /// ReqCheck stored imports with record errors (`partial_failure`).
    PartialFailure,
    /// The open quarantine grew past `quarantine_threshold` rows.
    Quarantine,
    /// No complete run for `[status] max_age`.
    Stale,
    /// The first complete run after a failure or stale notice.
    Recovered,
    /// `reqsync notify test`.
    Test,
}

impl EventKind {
    /// Every event `on` may name (all of them are the default).
    pub(crate) const CONFIGURABLE: [EventKind; 5] = [
        EventKind::RunFailed,
        EventKind::PartialFailure,
        EventKind::Quarantine,
        EventKind::Stale,
        EventKind::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunFailed => "run-failed",
            EventKind::PartialFailure => "partial-failure",
            EventKind::Quarantine => "quarantine",
            EventKind::Stale => "stale",
            EventKind::Recovered => "recovered",
            EventKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::CONFIGURABLE.into_iter().find(|k| k.as_str() == s)
    }
}

/// `[notify]`
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub on: BTreeSet<EventKind>,
    /// A quarantine notice is sent when the open entries grow past this many.
    pub quarantine_threshold: u64,
    /// "No complete run" is sent when the newest complete run is older than this: `[status]
    /// max_age`, the age `reqsync status` and the status page also hold runs to.
    pub stale_after: Duration,
    pub email: Option<EmailConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

/// How the SMTP connection is encrypted. There is no plain-text mode: the login and the
/// notice would cross the network readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS before anything else (port 587); a server that
    /// does not offer STARTTLS is refused.
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    /// The port a server speaking this way listens on, unless `port` says otherwise: the
    /// submission port for STARTTLS, SMTPS's for implicit TLS.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// `[notify.email]`
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    /// The SMTP login, from the environment, an owner-only file or the secret store; `None`:
    /// the server takes mail without a login.
    pub login: Option<CredentialsSources>,
    /// An extra CA certificate (PEM) to trust for the server's certificate.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// The body shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// The notice itself as JSON.
    #[default]
    Json,
    /// A Microsoft Teams message with an Adaptive Card (a Teams Workflows webhook).
    Teams,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Teams => "teams",
            WebhookFormat::Slack => "slack",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            WebhookFormat::Json,
            WebhookFormat::Teams,
            WebhookFormat::Slack,
        ]
        .into_iter()
        .find(|f| f.as_str() == text)
    }
}

/// Where a webhook's URL comes from: Teams and Slack URLs carry their token in the path, so
/// the URL is a secret and may live where passwords do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Written in the config file (`url`).
    Config(String),
    /// `url_env`, `url_file` or `url_secret`.
    Secret(CredentialsSource),
}

/// `[[notify.webhook]]`
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: UrlSource,
    pub format: WebhookFormat,
    pub timeout: Duration,
}

impl NotifyConfig {
    pub(crate) fn enabled(&self, kind: EventKind) -> bool {
        kind == EventKind::Test || self.on.contains(&kind)
    }

    /// The files a secret is read from (the config refuses them as queries or templates).
    pub(crate) fn secret_sources(&self) -> Vec<&CredentialsSource> {
        let mut sources = Vec::new();
        if let Some(login) = self.email.as_ref().and_then(|e| e.login.as_ref()) {
            sources.push(&login.username);
            sources.push(&login.password);
        }
        for hook in &self.webhooks {
            if let UrlSource::Secret(source) = &hook.url {
                sources.push(source);
            }
        }
        sources
    }
}

impl NotifyConfig {
    /// `[notify]`, checked: known events, at least one channel, e-mail addresses that parse,
    /// TLS always on for SMTP, a webhook URL given exactly one way and never quoted in an error
    /// (it may hold a token). A `stale` notice uses `stale_after`, `[status] max_age`: one
    /// setting says how old the last complete run may be, for `reqsync status`, the status page
    /// and notices alike.
    pub(crate) fn from_raw(
        raw: RawNotify,
        stale_after: Duration,
        cx: &Context,
    ) -> Result<Self, Invalid> {
        let on = match raw.on {
            None => EventKind::CONFIGURABLE.into_iter().collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    EventKind::parse(name).ok_or_else(|| {
                        Invalid::new(
                            "notify.on",
                            format!(
                                "`{name}` is not an event; use {}",
                                EventKind::CONFIGURABLE
                                    .map(|k| format!("\"{}\"", k.as_str()))
                                    .join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let email = raw
            .email
            .map(|e| EmailConfig::from_raw(e, cx))
            .transpose()?;
        let webhooks = raw
            .webhook
            .into_iter()
            .enumerate()
            .map(|(i, w)| WebhookConfig::from_raw(i, w, cx))
            .collect::<Result<Vec<_>, _>>()?;
        if email.is_none() && webhooks.is_empty() {
            return Err(Invalid::new(
                "notify",
                "no channel: add a [notify.email] section or a [[notify.webhook]]",
            ));
        }
        Ok(NotifyConfig {
            on,
            quarantine_threshold: raw
                .quarantine_threshold
                .unwrap_or(DEFAULT_QUARANTINE_THRESHOLD),
            stale_after,
            email,
            webhooks,
        })
    }
}

impl EmailConfig {
    /// `[notify.email]`, checked.
    fn from_raw(e: RawEmail, cx: &Context) -> Result<Self, Invalid> {
        if e.password.is_some() {
            return Err(Invalid::new(
                "notify.email.password",
                password_in_config("password", "smtp", None),
            ));
        }
        let tls = match e.tls.as_deref() {
            None => SmtpTls::default(),
            Some("starttls") => SmtpTls::StartTls,
            Some("tls") => SmtpTls::Tls,
            Some(other) => {
                return Err(Invalid::new(
                    "notify.email.tls",
                    format!(
                        "`{other}` is neither \"starttls\" nor \"tls\" (plain-text SMTP is not \
                         offered: the login would cross the network readable)"
                    ),
                ));
            }
        };
        if e.host.trim().is_empty() {
            return Err(Invalid::new("notify.email.host", "must not be empty"));
        }
        super::email::check_address(&e.from)
            .map_err(|reason| Invalid::new("notify.email.from", reason))?;
        if e.to.is_empty() {
            return Err(Invalid::new(
                "notify.email.to",
                "name at least one recipient",
            ));
        }
        for to in &e.to {
            super::email::check_address(to)
                .map_err(|reason| Invalid::new("notify.email.to", reason))?;
        }
        let username = pick_source(
            "notify.email",
            "username",
            Forms {
                env: e.username_env,
                file: e.username_file,
                secret: e.username_secret,
            },
            None,
            cx,
        )?;
        let password = pick_source(
            "notify.email",
            "password",
            Forms {
                env: e.password_env,
                file: e.password_file,
                secret: e.password_secret,
            },
            None,
            cx,
        )?;
        let login = match (username, password) {
            (Some(username), Some(password)) => Some(CredentialsSources { username, password }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Invalid::new(
                    "notify.email.password_env",
                    "the SMTP user name is configured but not its password: add `password_env`, \
                     `password_file` or `password_secret`",
                ));
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "notify.email.username_env",
                    "the SMTP password is configured but not its user name: add `username_env`, \
                     `username_file` or `username_secret`",
                ));
            }
        };
        let timeout = match &e.timeout {
            Some(t) => {
                parse_duration(t).map_err(|err| Invalid::new("notify.email.timeout", err))?
            }
            None => DEFAULT_EMAIL_TIMEOUT,
        };
        Ok(EmailConfig {
            port: e.port.unwrap_or(tls.default_port()),
            host: e.host,
            tls,
            from: e.from,
            to: e.to,
            login,
            ca_file: e.ca_file.map(|p| cx.rel(&p)),
            timeout,
        })
    }
}

impl WebhookConfig {
    /// The `i`th `[[notify.webhook]]`, checked.
    fn from_raw(i: usize, w: RawWebhook, cx: &Context) -> Result<Self, Invalid> {
        let key = |k: &str| format!("notify.webhook[{i}].{k}");
        let format = match w.format.as_deref() {
            None => WebhookFormat::default(),
            Some(text) => WebhookFormat::parse(text).ok_or_else(|| {
                Invalid::new(
                    key("format"),
                    format!("`{text}` is not one of \"json\", \"teams\", \"slack\""),
                )
            })?,
        };
        let secret = pick_source(
            &format!("notify.webhook[{i}]"),
            "url",
            Forms {
                env: w.url_env,
                file: w.url_file,
                secret: w.url_secret,
            },
            None,
            cx,
        )?;
        let url = match (w.url, secret) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    key("url"),
                    "give the URL one of `url`, `url_env`, `url_file` and `url_secret`, not more",
                ));
            }
            (None, None) => {
                return Err(Invalid::new(
                    key("url"),
                    "missing: set `url`, or (for a URL holding a token, as Teams and Slack \
                     URLs do) `url_env`, `url_file` or `url_secret`",
                ));
            }
            (Some(url), None) => {
                super::webhook::check_url(&url).map_err(|e| Invalid::new(key("url"), e))?;
                UrlSource::Config(url)
            }
            (None, Some(source)) => UrlSource::Secret(source),
        };
        let timeout = match &w.timeout {
            Some(t) => parse_duration(t).map_err(|e| Invalid::new(key("timeout"), e))?,
            None => DEFAULT_WEBHOOK_TIMEOUT,
        };
        Ok(WebhookConfig {
            url,
            format,
            timeout,
        })
    }
}
