//! `[notify]`, validated: which events, the thresholds, and the channels. Parsed from the config
//! file by `config.rs`; secrets (the SMTP login, a webhook URL holding a token) are only named
//! here, and read when a notice is sent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::reqcheck::{CredentialsSource, CredentialsSources};

/// The default of `quarantine_threshold`.
pub const DEFAULT_QUARANTINE_THRESHOLD: u64 = 100;

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
    pub const CONFIGURABLE: [EventKind; 5] = [
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS before anything else (port 587); a server that
    /// does not offer STARTTLS is refused.
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS, port 465).
    Tls,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The notice itself as JSON.
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
    pub fn enabled(&self, kind: EventKind) -> bool {
        kind == EventKind::Test || self.on.contains(&kind)
    }

    /// The files a secret is read from (the config refuses them as queries or templates).
    pub fn secret_sources(&self) -> Vec<&CredentialsSource> {
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
