//! `reqsync.toml`: one file for the ReqCheck connection, the source, the sync's clock settings
//! and the jobs. The structs are the documentation; unknown keys are errors (a misspelt key
//! must not silently fall back to a default). Relative paths are relative to the config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::daemon::Schedule;
use crate::daemon::http::HttpLimits;
use crate::notify::settings::{
    DEFAULT_QUARANTINE_THRESHOLD, EmailConfig, EventKind, NotifyConfig, SmtpTls, UrlSource,
    WebhookConfig, WebhookFormat,
};
use crate::reqcheck::credentials::{CredentialsSource, CredentialsSources};
use crate::reqcheck::proxy::ProxySetting;
use crate::reqcheck::targets::{self, Target};
use crate::reqcheck::{BaseUrlError, RetryPolicy, parse_base_url};
use crate::secret_store::{SecretName, SecretRef, SecretStore};
use crate::source::{SourceError, SourceUrl};
use crate::transform::{CacheError, ModuleCache, SandboxLimits};

/// Default look-back subtracted from ReqCheck's last import time: late-committed source rows
/// carry an `updated_at` before it.
pub const DEFAULT_LOOK_BACK: &str = "1d";

/// Where `reqsync daemon` serves `/healthz` and `/metrics` unless told otherwise: loopback only
/// (the endpoints carry no PHI, but nothing outside the host needs them without a decision), on
/// a port in the range Prometheus exporters conventionally use.
pub const DEFAULT_DAEMON_LISTEN: &str = "127.0.0.1:9464";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("config file {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("config file {}: `{key}`: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    reqcheck: RawReqCheck,
    source: RawSource,
    #[serde(default)]
    sync: RawSync,
    #[serde(default, rename = "jobs")]
    jobs: Vec<RawJob>,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    secrets: RawSecrets,
    #[serde(default)]
    status: RawStatus,
    notify: Option<RawNotify>,
}

/// `[status]`: what `reqsync status` and the daemon's status page call healthy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    /// How old a job's last complete run may be (default `crate::status::DEFAULT_MAX_AGE`).
    max_age: Option<String>,
}

/// `[notify]`: notices of failed, partial and stale runs and of a growing quarantine, by
/// e-mail and webhooks (see `crate::notify`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    /// Which events (default: all of `run-failed`, `partial-failure`, `quarantine`, `stale`,
    /// `recovered`).
    on: Option<Vec<String>>,
    /// Open quarantine entries past which a notice is sent (default 100).
    quarantine_threshold: Option<u64>,
    email: Option<RawEmail>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

/// `[notify.email]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: String,
    /// Default 587 with STARTTLS, 465 with implicit TLS.
    port: Option<u16>,
    /// `"starttls"` (default) or `"tls"`.
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
    /// Per-message timeout (default 30 s).
    timeout: Option<String>,
}

/// `[[notify.webhook]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
    url_secret: Option<String>,
    /// `"json"` (default), `"teams"` or `"slack"`.
    format: Option<String>,
    /// Per-request timeout (default 15 s).
    timeout: Option<String>,
}

/// `[secrets]`: the store `reqsync secret set` writes and `*_secret` keys read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    /// The store folder (default `secrets` beside the config file).
    dir: Option<PathBuf>,
}

/// `[audit]`: the hash-chained audit trail.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// JSON-lines file the audit events are appended to (default `.reqsync/audit.jsonl`).
    file: Option<PathBuf>,
}

/// `[daemon]`: settings of `reqsync daemon` only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    /// Address of `/healthz` and `/metrics` (default `127.0.0.1:9464`).
    listen: Option<String>,
    /// How long a connection may take to send a request's head, and stay idle between
    /// requests (default 10 s).
    header_timeout: Option<String>,
    /// How long a request may take to be answered, and a connection stay open (default 10 s).
    request_timeout: Option<String>,
    /// Connections served at once; more are closed as they arrive (default 32).
    max_connections: Option<usize>,
    /// Serve the status page at `/status` (default true).
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

/// `[reqcheck]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReqCheck {
    /// Base URL, e.g. `https://reqcheck.example.org`.
    url: String,
    /// Environment variable holding the username (default `REQCHECK_USERNAME`).
    username_env: Option<String>,
    /// File holding the username (instead of the environment).
    username_file: Option<PathBuf>,
    /// Name of the secret holding the username in the secret store (`reqsync secret set`).
    username_secret: Option<String>,
    /// Environment variable holding the password (default `REQCHECK_PASSWORD`).
    password_env: Option<String>,
    /// File holding the password (instead of the environment).
    password_file: Option<PathBuf>,
    /// Name of the secret holding the password in the secret store.
    password_secret: Option<String>,
    /// Refused: secrets never live in the config file. Present only to say so clearly.
    password: Option<toml::Value>,
    /// Per-request timeout, e.g. `"2m"` (default 2 minutes).
    timeout: Option<String>,
    /// Extra CA certificate (PEM) to trust for ReqCheck's TLS certificate.
    ca_file: Option<PathBuf>,
    /// Attempts per request, the first included (default 6; 1 = never retry).
    retry_attempts: Option<u32>,
    /// No retry starts later than this after a request's first attempt (default `"10m"`).
    retry_max_time: Option<String>,
    /// Allow plain `http://` to a host other than loopback (default false).
    allow_insecure_http: Option<bool>,
    /// Requests sent before the previous one's answer (default 2; 1 = one at a time).
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

/// `[source]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    /// `sqlite://PATH`
    url: String,
}

/// `[sync]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    /// IANA time zone of the source's timestamps (default `America/Chicago`, Kansas City).
    clinic_time_zone: Option<String>,
    /// Subtracted from ReqCheck's last import time, e.g. `"1d"`, `"12h"` (default `1d`).
    look_back: Option<String>,
    /// Window start when ReqCheck has no import yet (`YYYY-MM-DDTHH:MM:SS`, clinic time).
    /// Without it the first run is a full extract.
    initial_start: Option<String>,
    /// Rows per transform call (default 512).
    transform_batch_rows: Option<usize>,
    /// Wall-clock budget of one transform call, in milliseconds (default 10000).
    transform_deadline_ms: Option<u64>,
    /// Memory a transform instance may grow to, in MiB (default 256).
    transform_memory_mb: Option<u64>,
    /// Largest record a transform may emit, in KiB of JSON (default 1024).
    transform_max_record_kb: Option<u64>,
    /// Folder for precompiled transform modules (default: `.reqsync/cache` beside the config).
    cache_dir: Option<PathBuf>,
    /// Folder for the run ledger, run reports and quarantine (default `.reqsync/state`).
    state_dir: Option<PathBuf>,
    /// `"fail"` (default) or `"accept"`: what a `201 partial_failure` answer means for the run.
    on_partial_failure: Option<String>,
}

/// `[[jobs]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    query: PathBuf,
    transform: PathBuf,
    template: PathBuf,
    /// Defaults to the endpoint of the record type the module emits.
    endpoint: Option<String>,
    /// Records per request (default 500). A patient's doses are never split, so a request can
    /// exceed this to hold one patient's whole history.
    batch_size: Option<usize>,
    /// For dose jobs: the query column identifying the patient (default `patno`). The query
    /// must return each patient's rows together (ORDER BY it).
    group_by_column: Option<String>,
    /// When `reqsync daemon` runs the job: a cron expression, 5 fields (minutes) or 6 (leading
    /// seconds), in the clinic's time zone. Without it the daemon does not run the job.
    schedule: Option<String>,
    /// Sandbox limits for this job's module, overriding the `[sync]` defaults.
    transform_deadline_ms: Option<u64>,
    transform_memory_mb: Option<u64>,
    transform_max_record_kb: Option<u64>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub reqcheck: ReqCheckConfig,
    pub source_url: String,
    pub clinic_tz: Tz,
    pub look_back: chrono::Duration,
    pub initial_start: Option<NaiveDateTime>,
    pub transform_batch_rows: usize,
    /// Default sandbox limits (`[sync]`); each job has its own copy with overrides.
    pub sandbox: SandboxLimits,
    pub cache_dir: PathBuf,
    pub jobs: Vec<JobConfig>,
    pub daemon: DaemonConfig,
    /// The run ledger, run reports and quarantine live here.
    pub state_dir: PathBuf,
    pub on_partial_failure: PartialFailurePolicy,
    /// The hash-chained audit trail (JSON lines).
    pub audit_file: PathBuf,
    /// Where `*_secret` keys (and a source URL's `password_secret=`) find their secrets.
    pub secrets: SecretStore,
    /// `[status] max_age`: a job whose last complete run is older needs someone to look.
    pub status_max_age: Duration,
    /// `[notify]`; `None` without the section.
    pub notify: Option<NotifyConfig>,
}

/// What ReqCheck's `201 partial_failure` (an import stored with record errors) means for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartialFailurePolicy {
    /// The run fails (exit code 7) and does not count as complete, so the next run re-sends
    /// its window: a record error caused by something passing heals without anyone acting.
    #[default]
    Fail,
    /// The run succeeds; the error ids are still reported and kept in the ledger.
    Accept,
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

/// Two requests in flight keep ReqCheck busy while the answer to one travels back and the next
/// leaves; three measured within the noise of two (docs/PERFORMANCE.md, "filling the idle
/// moments").
const DEFAULT_REQUESTS_IN_FLIGHT: usize = 2;
/// Each request in flight may be in doubt after a crash, and holds a body in memory.
const MAX_REQUESTS_IN_FLIGHT: usize = 8;

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

#[derive(Debug, Clone)]
pub struct JobConfig {
    pub name: String,
    pub query: PathBuf,
    pub transform: PathBuf,
    pub template: PathBuf,
    pub endpoint: Option<String>,
    pub batch_size: usize,
    pub group_by_column: Option<String>,
    /// `reqsync daemon`'s schedule for the job; `None`: the daemon does not run it.
    pub schedule: Option<Schedule>,
    /// The sandbox limits of this job's module.
    pub sandbox: SandboxLimits,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let path = &crate::native_path::native(path);
        let text =
            crate::input_file::read_to_string(path, crate::input_file::CONFIG).map_err(|e| {
                ConfigError::Read {
                    path: path.to_path_buf(),
                    reason: e.reason(),
                }
            })?;
        let config = Self::parse(path, &text)?;
        config.check_secret_files()?;
        Ok(config)
    }

    /// The config's source URL, parsed, its `password_secret=` looked up in this config's
    /// secret store. Use this rather than `SourceUrl::parse` for a config's URL: only the
    /// config knows `[secrets] dir`.
    pub fn source(&self) -> Result<SourceUrl, SourceError> {
        let mut url = SourceUrl::parse(&self.source_url, Some(self.base_dir()))?;
        url.use_secret_store(&self.secrets);
        Ok(url)
    }

    /// The files this config reads a secret from: ReqCheck's and the proxy's username and
    /// password files, the source URL's `password_file`, every file of the secret store, and
    /// where systemd's credentials of the secrets it names are.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let proxy = self
            .reqcheck
            .proxy_credentials
            .iter()
            .flat_map(|s| [&s.username, &s.password]);
        let mut named: Vec<&SecretRef> = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        let status_page = self
            .daemon
            .status_login
            .iter()
            .map(|(_, password)| password);
        let notify = self.notify.iter().flat_map(|n| n.secret_sources());
        for source in [&self.reqcheck.username, &self.reqcheck.password]
            .into_iter()
            .chain(status_page)
            .chain(proxy)
            .chain(notify)
        {
            match source {
                CredentialsSource::File(path) => files.push(path.clone()),
                CredentialsSource::Store(secret) => named.push(secret),
                CredentialsSource::Env(_) => {}
            }
        }
        let url = self.source().ok();
        if let Some(url) = &url {
            files.extend(url.password_file().map(Path::to_path_buf));
            named.extend(url.password_secret());
        }
        files.extend(self.secrets.files());
        files.extend(
            named
                .into_iter()
                .map(|secret| secret.store.locate(&secret.name).path().to_path_buf()),
        );
        files
    }

    /// Refuses a job whose query, template or module is one of the [secret
    /// files](Self::secret_files): a query "failing" on a password file would quote its first
    /// word in an error that the ledger and the run report keep.
    pub fn check_secret_files(&self) -> Result<(), ConfigError> {
        let secrets = self.secret_files();
        for job in &self.jobs {
            for (key, input) in [
                ("query", &job.query),
                ("template", &job.template),
                ("transform", &job.transform),
            ] {
                if secrets
                    .iter()
                    .any(|secret| crate::input_file::same_file(input, secret))
                {
                    return Err(ConfigError::Invalid {
                        path: self.path.clone(),
                        key: format!("jobs.{}.{key}", job.name),
                        reason: format!(
                            "{} is a file this config reads a password or user name from (or a \
                             file of its secret store); point `{key}` at the job's own file",
                            input.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        // toml's message names the key, line and column of the problem.
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let rel = |p: &Path| crate::native_path::resolve(&base, p);
        let secrets = match raw.secrets.dir {
            Some(dir) => SecretStore::new(rel(&dir)),
            None => SecretStore::beside_config(&base),
        };

        let r = raw.reqcheck;
        if r.password.is_some() {
            return Err(invalid(
                "reqcheck.password",
                password_in_config("password", "reqcheck", Some("REQCHECK_PASSWORD")),
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
            Some("REQCHECK_USERNAME"),
            &rel,
            &secrets,
        )
        .map_err(|(key, reason)| invalid(&key, reason))?
        .unwrap_or_else(|| CredentialsSource::Env("REQCHECK_USERNAME".into()));
        let password = pick_source(
            "reqcheck",
            "password",
            Forms {
                env: r.password_env,
                file: r.password_file,
                secret: r.password_secret,
            },
            Some("REQCHECK_PASSWORD"),
            &rel,
            &secrets,
        )
        .map_err(|(key, reason)| invalid(&key, reason))?
        .unwrap_or_else(|| CredentialsSource::Env("REQCHECK_PASSWORD".into()));
        if r.proxy_password.is_some() {
            return Err(invalid(
                "reqcheck.proxy_password",
                password_in_config("proxy_password", "proxy", None),
            ));
        }
        let proxy = match &r.proxy {
            Some(text) => {
                ProxySetting::parse(text).map_err(|e| invalid("reqcheck.proxy", e.to_string()))?
            }
            None => ProxySetting::System,
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
            &rel,
            &secrets,
        )
        .map_err(|(key, reason)| invalid(&key, reason))?;
        if proxy == ProxySetting::None && proxy_credentials.is_some() {
            return Err(invalid(
                "reqcheck.proxy",
                "is \"none\", yet the proxy's credentials are configured: remove \
                 `proxy_username_*`/`proxy_password_*`, or name the proxy"
                    .into(),
            ));
        }
        let timeout = match r.timeout {
            Some(t) => parse_duration(&t).map_err(|e| invalid("reqcheck.timeout", e))?,
            None => Duration::from_secs(120),
        };
        parse_base_url(&r.url).map_err(|e| invalid("reqcheck.url", e.to_string()))?;
        let mut retry = RetryPolicy::default();
        if let Some(n) = r.retry_attempts {
            if n == 0 || n > 100 {
                return Err(invalid(
                    "reqcheck.retry_attempts",
                    "must be between 1 (never retry) and 100".into(),
                ));
            }
            retry.max_attempts = n;
        }
        if let Some(t) = &r.retry_max_time {
            retry.max_elapsed =
                parse_duration(t).map_err(|e| invalid("reqcheck.retry_max_time", e))?;
        }
        let requests_in_flight = r.requests_in_flight.unwrap_or(DEFAULT_REQUESTS_IN_FLIGHT);
        if !(1..=MAX_REQUESTS_IN_FLIGHT).contains(&requests_in_flight) {
            return Err(invalid(
                "reqcheck.requests_in_flight",
                format!("must be between 1 (one request at a time) and {MAX_REQUESTS_IN_FLIGHT}"),
            ));
        }

        let s = raw.sync;
        let clinic_tz: Tz = s
            .clinic_time_zone
            .as_deref()
            .unwrap_or("America/Chicago")
            .parse()
            .map_err(|_| {
                invalid(
                    "sync.clinic_time_zone",
                    "not an IANA time zone name (e.g. America/Chicago)".into(),
                )
            })?;
        let look_back = parse_duration(s.look_back.as_deref().unwrap_or(DEFAULT_LOOK_BACK))
            .map_err(|e| invalid("sync.look_back", e))?;
        let look_back = chrono::Duration::from_std(look_back)
            .map_err(|e| invalid("sync.look_back", e.to_string()))?;
        let initial_start = s
            .initial_start
            .map(|v| {
                crate::transform::parse_timestamp(&v).ok_or_else(|| {
                    invalid(
                        "sync.initial_start",
                        "expected YYYY-MM-DDTHH:MM:SS (clinic local time)".into(),
                    )
                })
            })
            .transpose()?;
        let transform_batch_rows = s.transform_batch_rows.unwrap_or(512);
        if transform_batch_rows == 0 || transform_batch_rows > 65_536 {
            return Err(invalid(
                "sync.transform_batch_rows",
                "must be between 1 and 65536".into(),
            ));
        }
        let sandbox = sandbox_limits(
            &SandboxLimits::default(),
            "sync.",
            s.transform_deadline_ms,
            s.transform_memory_mb,
            s.transform_max_record_kb,
        )
        .map_err(|(key, reason)| invalid(&key, reason))?;
        let cache_dir = s
            .cache_dir
            .map(|p| rel(&p))
            .unwrap_or_else(|| rel(Path::new(".reqsync/cache")));
        let state_dir = s
            .state_dir
            .map(|p| rel(&p))
            .unwrap_or_else(|| rel(Path::new(".reqsync/state")));
        let on_partial_failure = match s.on_partial_failure.as_deref() {
            None | Some("fail") => PartialFailurePolicy::Fail,
            Some("accept") => PartialFailurePolicy::Accept,
            Some(other) => {
                return Err(invalid(
                    "sync.on_partial_failure",
                    format!("`{other}` is neither \"fail\" nor \"accept\""),
                ));
            }
        };
        let audit_file = raw
            .audit
            .file
            .map(|p| rel(&p))
            .unwrap_or_else(|| base.join(".reqsync").join("audit.jsonl"));

        if raw.jobs.is_empty() {
            return Err(invalid("jobs", "no [[jobs]] configured".into()));
        }
        let mut jobs = Vec::new();
        for (i, j) in raw.jobs.into_iter().enumerate() {
            let key = |k: &str| format!("jobs[{i}].{k}");
            if j.name.trim().is_empty() {
                return Err(invalid(&key("name"), "must not be empty".into()));
            }
            // A job's name becomes part of file names (dry-run bodies), metric labels and log
            // fields: no separators, no dot files, nothing that needs quoting.
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if !j.name.chars().all(plain) || j.name.starts_with('.') {
                return Err(invalid(
                    &key("name"),
                    "use letters, digits, `-`, `_` and `.` only (and no leading `.`), e.g. \
                     \"patients\""
                        .into(),
                ));
            }
            if jobs.iter().any(|other: &JobConfig| other.name == j.name) {
                return Err(invalid(
                    &key("name"),
                    format!("job name `{}` is used twice", j.name),
                ));
            }
            let batch_size = j.batch_size.unwrap_or(500);
            if batch_size == 0 {
                return Err(invalid(&key("batch_size"), "must be at least 1".into()));
            }
            if let Some(ep) = &j.endpoint
                && !targets::ALL.iter().any(|t| t.endpoint == ep)
            {
                return Err(invalid(
                    &key("endpoint"),
                    format!(
                        "`{ep}` is not a ReqCheck import endpoint (/patient_data or /vaccine_dose_data)"
                    ),
                ));
            }
            let schedule = j
                .schedule
                .as_deref()
                .map(Schedule::parse)
                .transpose()
                .map_err(|e| invalid(&key("schedule"), e.to_string()))?;
            jobs.push(JobConfig {
                name: j.name,
                query: rel(&j.query),
                transform: rel(&j.transform),
                template: rel(&j.template),
                endpoint: j.endpoint,
                batch_size,
                group_by_column: j.group_by_column,
                schedule,
                sandbox: sandbox_limits(
                    &sandbox,
                    &key(""),
                    j.transform_deadline_ms,
                    j.transform_memory_mb,
                    j.transform_max_record_kb,
                )
                .map_err(|(k, reason)| invalid(&k, reason))?,
            });
        }
        if raw.daemon.status_password.is_some() {
            return Err(invalid(
                "daemon.status_password",
                password_in_config("status_password", "status-page", None),
            ));
        }
        let status_password = pick_source(
            "daemon",
            "status_password",
            Forms {
                env: raw.daemon.status_password_env.clone(),
                file: raw.daemon.status_password_file.clone(),
                secret: raw.daemon.status_password_secret.clone(),
            },
            None,
            &rel,
            &secrets,
        )
        .map_err(|(key, reason)| invalid(&key, reason))?;
        let status_login = match (raw.daemon.status_username.clone(), status_password) {
            (Some(user), Some(password)) if !user.is_empty() && !user.contains(':') => {
                Some((user, password))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "daemon.status_username",
                    "a user name for basic authentication is not empty and has no `:`".into(),
                ));
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "daemon.status_password_env",
                    "the status page's user name is configured but not its password: add \
                     `status_password_env`, `status_password_file` or `status_password_secret`"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "daemon.status_username",
                    "the status page's password is configured but not its user name: add \
                     `status_username`"
                        .into(),
                ));
            }
        };
        let listen = raw
            .daemon
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_DAEMON_LISTEN)
            .parse()
            .map_err(|_| {
                invalid(
                    "daemon.listen",
                    "expected an IP address and port, e.g. \"127.0.0.1:9464\"".into(),
                )
            })?;
        let status_max_age = match raw.status.max_age.as_deref() {
            Some(age) => parse_duration(age).map_err(|reason| invalid("status.max_age", reason))?,
            None => crate::status::DEFAULT_MAX_AGE,
        };
        if status_max_age.is_zero() {
            return Err(invalid("status.max_age", "must be longer than 0s".into()));
        }
        let notify = raw
            .notify
            .map(|n| notify_config(n, status_max_age, &rel, &secrets))
            .transpose()
            .map_err(|(key, reason)| invalid(&key, reason))?;
        Ok(Config {
            path: path.to_path_buf(),
            reqcheck: ReqCheckConfig {
                url: r.url,
                username,
                password,
                timeout,
                ca_file: r.ca_file.map(|p| rel(&p)),
                retry,
                allow_insecure_http: r.allow_insecure_http.unwrap_or(false),
                requests_in_flight,
                proxy,
                proxy_credentials,
            },
            source_url: raw.source.url,
            clinic_tz,
            look_back,
            initial_start,
            transform_batch_rows,
            sandbox,
            cache_dir,
            jobs,
            daemon: DaemonConfig {
                listen,
                limits: http_limits(&raw.daemon).map_err(|(k, reason)| invalid(&k, reason))?,
                status_page: raw.daemon.status_page.unwrap_or(true),
                status_login,
            },
            state_dir,
            on_partial_failure,
            audit_file,
            secrets,
            status_max_age,
            notify,
        })
    }

    /// Sends to `url` instead of `[reqcheck] url` (`--reqcheck-url`), checked as the config
    /// file's is: a URL with a user name or password in it is refused.
    pub fn set_reqcheck_url(&mut self, url: &str) -> Result<(), BaseUrlError> {
        parse_base_url(url)?;
        self.reqcheck.url = url.to_string();
        Ok(())
    }

    /// The folder the config file lives in (relative source URLs resolve against it).
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The key that tags this project's compiled-module cache entries: in the state folder,
    /// not the cache folder, so that writing the cache is not enough to forge an entry.
    pub fn module_cache_key(&self) -> PathBuf {
        self.state_dir.join("module-cache.key")
    }

    /// The project's compiled-module cache (`[sync] cache_dir`), checked and keyed.
    pub fn module_cache(&self) -> Result<ModuleCache, CacheError> {
        ModuleCache::open(&self.cache_dir, &self.module_cache_key())
    }
}

impl JobConfig {
    /// The endpoint this job posts to: configured, or the one of the module's record type.
    pub fn endpoint_for(&self, target: &Target) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| target.endpoint.to_string())
    }
}

/// Why a `KEY = "…"` password in the config file is refused, and the three ways to give it
/// instead (`key` is the key without its `_secret`/`_env`/`_file` ending; `store_name` a
/// suggested name in the secret store; `default_env` the variable read without any of them).
fn password_in_config(key: &str, store_name: &str, default_env: Option<&str>) -> String {
    let env = match default_env {
        Some(var) => format!("set {var} (or `{key}_env`)"),
        None => format!("name the variable holding it with `{key}_env`"),
    };
    format!(
        "passwords never go in the config file; store it with `reqsync secret set {store_name}` \
         and set `{key}_secret = \"{store_name}\"`, or {env}, or point `{key}_file` at a file \
         readable only by the service account"
    )
}

/// The three ways a credential can be given (in `[reqcheck]`, `[daemon]`): `X_env`, `X_file`,
/// `X_secret`.
struct Forms {
    env: Option<String>,
    file: Option<PathBuf>,
    secret: Option<String>,
}

/// Where credential `what` (`username`, `proxy_password`…) comes from: at most one of its forms
/// (`None` when none is given). A secret's name is checked here, so that a bad one fails when
/// the config loads, not at the first run. Errors are (key, reason).
fn pick_source(
    section: &str,
    what: &str,
    forms: Forms,
    default_env: Option<&str>,
    rel: &dyn Fn(&Path) -> PathBuf,
    store: &SecretStore,
) -> Result<Option<CredentialsSource>, (String, String)> {
    let key = |form: &str| format!("{section}.{what}_{form}");
    let given = [
        forms.env.is_some(),
        forms.file.is_some(),
        forms.secret.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        let first = ["env", "file", "secret"]
            .into_iter()
            .zip(given)
            .find_map(|(form, g)| g.then_some(form))
            .unwrap_or("env");
        return Err((
            key(first),
            format!("give {what} one of `{what}_env`, `{what}_file` and `{what}_secret`, not more"),
        ));
    }
    if let Some(var) = forms.env {
        return Ok(Some(CredentialsSource::Env(var)));
    }
    if let Some(path) = forms.file {
        return Ok(Some(CredentialsSource::File(rel(&path))));
    }
    if let Some(name) = forms.secret {
        let name = SecretName::parse(&name).map_err(|e| (key("secret"), e.to_string()))?;
        return Ok(Some(CredentialsSource::Store(SecretRef {
            name,
            store: store.clone(),
        })));
    }
    Ok(default_env.map(|var| CredentialsSource::Env(var.to_string())))
}

/// `proxy_username_*` and `proxy_password_*`: both or neither, each from a variable, a file or
/// the secret store. Unlike ReqCheck's, they have no default variables: most proxies want no
/// login, and one that does answers 407, which says to set these. Errors are (key, reason).
fn proxy_sources(
    username: Forms,
    password: Forms,
    rel: &dyn Fn(&Path) -> PathBuf,
    store: &SecretStore,
) -> Result<Option<CredentialsSources>, (String, String)> {
    let username = pick_source("reqcheck", "proxy_username", username, None, rel, store)?;
    let password = pick_source("reqcheck", "proxy_password", password, None, rel, store)?;
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(CredentialsSources { username, password })),
        (None, None) => Ok(None),
        (Some(_), None) => Err((
            "reqcheck.proxy_password_env".into(),
            "the proxy's user name is configured but not its password: add \
             `proxy_password_env`, `proxy_password_file` or `proxy_password_secret`"
                .into(),
        )),
        (None, Some(_)) => Err((
            "reqcheck.proxy_username_env".into(),
            "the proxy's password is configured but not its user name: add \
             `proxy_username_env`, `proxy_username_file` or `proxy_username_secret`"
                .into(),
        )),
    }
}

/// `[notify]`, checked: known events, at least one channel, e-mail addresses that parse, TLS
/// always on for SMTP, a webhook URL given exactly one way and never quoted in an error (it may
/// hold a token). Errors are (key, reason).
/// `[notify]`, validated. A `stale` notice uses `[status] max_age`: one setting says how old the
/// last complete run may be, for `reqsync status`, the status page and notices alike.
fn notify_config(
    raw: RawNotify,
    stale_after: Duration,
    rel: &dyn Fn(&Path) -> PathBuf,
    store: &SecretStore,
) -> Result<NotifyConfig, (String, String)> {
    let on = match raw.on {
        None => EventKind::CONFIGURABLE.into_iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                EventKind::parse(name).ok_or_else(|| {
                    (
                        "notify.on".to_string(),
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
    let email = raw.email.map(|e| email_config(e, rel, store)).transpose()?;
    let mut webhooks = Vec::new();
    for (i, w) in raw.webhook.into_iter().enumerate() {
        let key = |k: &str| format!("notify.webhook[{i}].{k}");
        let format = match w.format.as_deref() {
            None | Some("json") => WebhookFormat::Json,
            Some("teams") => WebhookFormat::Teams,
            Some("slack") => WebhookFormat::Slack,
            Some(other) => {
                return Err((
                    key("format"),
                    format!("`{other}` is not one of \"json\", \"teams\", \"slack\""),
                ));
            }
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
            rel,
            store,
        )?;
        let url = match (w.url, secret) {
            (Some(_), Some(_)) => {
                return Err((
                    key("url"),
                    "give the URL one of `url`, `url_env`, `url_file` and `url_secret`, not more"
                        .into(),
                ));
            }
            (None, None) => {
                return Err((
                    key("url"),
                    "missing: set `url`, or (for a URL holding a token, as Teams and Slack \
                     URLs do) `url_env`, `url_file` or `url_secret`"
                        .into(),
                ));
            }
            (Some(url), None) => {
                crate::notify::webhook::check_url(&url).map_err(|e| (key("url"), e.to_string()))?;
                UrlSource::Config(url)
            }
            (None, Some(source)) => UrlSource::Secret(source),
        };
        let timeout = match &w.timeout {
            Some(t) => parse_duration(t).map_err(|e| (key("timeout"), e))?,
            None => Duration::from_secs(15),
        };
        webhooks.push(WebhookConfig {
            url,
            format,
            timeout,
        });
    }
    if email.is_none() && webhooks.is_empty() {
        return Err((
            "notify".into(),
            "no channel: add a [notify.email] section or a [[notify.webhook]]".into(),
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

/// `[notify.email]`, checked. Errors are (key, reason).
fn email_config(
    e: RawEmail,
    rel: &dyn Fn(&Path) -> PathBuf,
    store: &SecretStore,
) -> Result<EmailConfig, (String, String)> {
    if e.password.is_some() {
        return Err((
            "notify.email.password".into(),
            password_in_config("password", "smtp", None),
        ));
    }
    let tls = match e.tls.as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some(other) => {
            return Err((
                "notify.email.tls".into(),
                format!(
                    "`{other}` is neither \"starttls\" nor \"tls\" (plain-text SMTP is not \
                     offered: the login would cross the network readable)"
                ),
            ));
        }
    };
    if e.host.trim().is_empty() {
        return Err(("notify.email.host".into(), "must not be empty".into()));
    }
    crate::notify::email::check_address(&e.from)
        .map_err(|reason| ("notify.email.from".to_string(), reason))?;
    if e.to.is_empty() {
        return Err((
            "notify.email.to".into(),
            "name at least one recipient".into(),
        ));
    }
    for to in &e.to {
        crate::notify::email::check_address(to)
            .map_err(|reason| ("notify.email.to".to_string(), reason))?;
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
        rel,
        store,
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
        rel,
        store,
    )?;
    let login = match (username, password) {
        (Some(username), Some(password)) => Some(CredentialsSources { username, password }),
        (None, None) => None,
        (Some(_), None) => {
            return Err((
                "notify.email.password_env".into(),
                "the SMTP user name is configured but not its password: add `password_env`, \
                 `password_file` or `password_secret`"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "notify.email.username_env".into(),
                "the SMTP password is configured but not its user name: add `username_env`, \
                 `username_file` or `username_secret`"
                    .into(),
            ));
        }
    };
    let timeout = match &e.timeout {
        Some(t) => parse_duration(t).map_err(|err| ("notify.email.timeout".to_string(), err))?,
        None => Duration::from_secs(30),
    };
    Ok(EmailConfig {
        port: e.port.unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }),
        host: e.host,
        tls,
        from: e.from,
        to: e.to,
        login,
        ca_file: e.ca_file.map(|p| rel(&p)),
        timeout,
    })
}

/// Applies limit overrides to `base`; a zero or absurd value is an error naming `prefix` + key.
fn sandbox_limits(
    base: &SandboxLimits,
    prefix: &str,
    deadline_ms: Option<u64>,
    memory_mb: Option<u64>,
    max_record_kb: Option<u64>,
) -> Result<SandboxLimits, (String, String)> {
    let mut limits = base.clone();
    let positive = |key: &str, v: u64, max: u64| {
        if v == 0 || v > max {
            Err((
                format!("{prefix}{key}"),
                format!("must be between 1 and {max}"),
            ))
        } else {
            Ok(v)
        }
    };
    if let Some(v) = deadline_ms {
        limits.call_deadline =
            Duration::from_millis(positive("transform_deadline_ms", v, 3_600_000)?);
    }
    if let Some(v) = memory_mb {
        // wasm32 linear memory cannot exceed 4 GiB.
        limits.memory_bytes = (positive("transform_memory_mb", v, 4096)? as usize) << 20;
    }
    if let Some(v) = max_record_kb {
        limits.max_record_bytes = (positive("transform_max_record_kb", v, 1 << 20)? as usize) << 10;
    }
    Ok(limits)
}

/// `[daemon]`'s limits on the `/healthz` and `/metrics` listener (see `daemon/http.rs`).
/// Errors are (key, reason).
fn http_limits(raw: &RawDaemon) -> Result<HttpLimits, (String, String)> {
    let defaults = HttpLimits::default();
    let timeout = |key: &str, value: &Option<String>, default: Duration| {
        let Some(text) = value else {
            return Ok(default);
        };
        let key = format!("daemon.{key}");
        let d = parse_duration(text).map_err(|e| (key.clone(), e))?;
        if d.is_zero() || d > MAX_HTTP_TIMEOUT {
            return Err((
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
        return Err((
            "daemon.max_connections".into(),
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

/// A scrape takes milliseconds: minutes of patience only keep a stuck client's socket open.
const MAX_HTTP_TIMEOUT: Duration = Duration::from_secs(300);
/// Each connection holds a file descriptor, which the runs need too.
const MAX_HTTP_CONNECTIONS: usize = 1024;

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. \"1d\", \"12h\", \"90s\")"))
}

#[cfg(test)]
mod tests {

    /// The configs the .deb and the MSI install must load as they ship (a key renamed in the
    /// code would otherwise first fail on a clinic's server).
    #[test]
    fn the_packaged_sample_configs_load() {
        for (name, text) in [
            (
                "packaging/linux/reqsync.toml",
                include_str!("../../../packaging/linux/reqsync.toml"),
            ),
            (
                "packaging/windows/reqsync.toml",
                include_str!("../../../packaging/windows/reqsync.toml"),
            ),
        ] {
            let config = Config::parse(Path::new("reqsync.toml"), text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.jobs.len(), 2, "{name}");
            assert!(config.jobs.iter().all(|j| j.schedule.is_some()), "{name}");
        }
    }

    use super::*;

    const MINIMAL: &str = r#"
[reqcheck]
url = "https://reqcheck.example.org"

[source]
url = "sqlite://clinic.db"

[[jobs]]
name = "patients"
query = "queries/patients.sql"
transform = "transforms/patients.wasm"
template = "templates/patient_data.json.j2"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/srv/reqsync/reqsync.toml"), text)
    }

    #[test]
    fn defaults_apply_and_paths_resolve_against_the_config_folder() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.look_back, chrono::Duration::days(1));
        assert_eq!(c.clinic_tz, chrono_tz::America::Chicago);
        assert_eq!(
            c.jobs[0].query,
            Path::new("/srv/reqsync/queries/patients.sql")
        );
        assert_eq!(c.jobs[0].batch_size, 500);
        assert_eq!(
            c.reqcheck.password,
            CredentialsSource::Env("REQCHECK_PASSWORD".into())
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key_and_line() {
        let e = parse(&MINIMAL.replace("[source]", "[source]\nurll = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("urll"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn a_job_name_that_could_leave_a_folder_is_refused() {
        for name in ["../../etc/cron.d/x", "a/b", ".hidden", "two words", "tab\t"] {
            let e = parse(&MINIMAL.replace("name = \"patients\"", &format!("name = {name:?}")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("jobs[0].name"), "{name}: {e}");
        }
        for name in ["patients", "vaccine-doses", "doses_2016.v2"] {
            assert!(
                parse(&MINIMAL.replace("name = \"patients\"", &format!("name = {name:?}"))).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn notify_parses_with_its_defaults_and_names_bad_keys() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.notify.is_none());
        let c = parse(&format!(
            "{MINIMAL}\n[notify]\n[notify.email]\nhost = \"smtp.clinic.example\"\n\
             from = \"reqsync@clinic.example\"\nto = [\"ops@clinic.example\"]\n\
             username_env = \"SMTP_USER\"\npassword_file = \"secrets/smtp\"\n\
             [[notify.webhook]]\nurl_secret = \"teams-hook\"\nformat = \"teams\"\n"
        ))
        .unwrap();
        let n = c.notify.as_ref().unwrap();
        assert_eq!(n.on.len(), 5);
        assert_eq!(n.quarantine_threshold, 100);
        assert_eq!(n.stale_after, Duration::from_secs(26 * 3600));
        let email = n.email.as_ref().unwrap();
        assert_eq!((email.port, email.tls), (587, SmtpTls::StartTls));
        assert_eq!(n.webhooks[0].format, WebhookFormat::Teams);
        // The SMTP password file is a secret file: no job may read it as a query.
        assert!(
            c.secret_files()
                .contains(&PathBuf::from("/srv/reqsync/secrets/smtp"))
        );
        let c = parse(&format!(
            "{MINIMAL}\n[status]\nmax_age = \"2h\"\n[notify]\non = [\"stale\"]\n\
             [notify.email]\nhost = \"h\"\ntls = \"tls\"\nfrom = \"a@b.example\"\n\
             to = [\"c@d.example\"]\n"
        ))
        .unwrap();
        let n = c.notify.unwrap();
        assert_eq!(n.on.iter().copied().collect::<Vec<_>>(), [EventKind::Stale]);
        assert_eq!(n.email.unwrap().port, 465);

        let email = "[notify.email]\nhost = \"h\"\nfrom = \"a@b.example\"\nto = [\"c@d.example\"]";
        for (text, key) in [
            ("[notify]", "notify"),
            (
                "[notify]\non = [\"everything\"]\n[[notify.webhook]]\nurl = \"https://h.example/x\"",
                "notify.on",
            ),
            (
                &format!("[notify]\n{email}\ntls = \"none\""),
                "notify.email.tls",
            ),
            (
                &format!("[notify]\n{email}\npassword = \"hunter2\""),
                "notify.email.password",
            ),
            (
                &format!("[notify]\n{email}\nusername_env = \"U\""),
                "notify.email.password_env",
            ),
            (
                "[notify]\n[notify.email]\nhost = \"h\"\nfrom = \"not an address\"\nto = [\"c@d.example\"]",
                "notify.email.from",
            ),
            (
                "[notify]\n[[notify.webhook]]\nformat = \"json\"",
                "notify.webhook[0].url",
            ),
            (
                "[notify]\n[[notify.webhook]]\nurl = \"https://h.example/a\"\nurl_env = \"HOOK\"",
                "notify.webhook[0].url",
            ),
            (
                "[notify]\n[[notify.webhook]]\nurl = \"https://h.example/a\"\nformat = \"discord\"",
                "notify.webhook[0].format",
            ),
        ] {
            let e = parse(&format!("{MINIMAL}\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_plain_http_webhook_is_refused_off_loopback_without_quoting_its_token() {
        let hook = |url: &str| {
            parse(&format!(
                "{MINIMAL}\n[notify]\n[[notify.webhook]]\nurl = \"{url}\"\n"
            ))
        };
        let e = hook("http://hooks.example.org/services/T0KEN")
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.webhook[0].url"), "{e}");
        assert!(e.contains("https://"), "{e}");
        assert!(!e.contains("T0KEN"), "{e}");
        let e = hook("https://user:T0KEN@hooks.example.org/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("T0KEN"), "{e}");
        assert!(hook("http://127.0.0.1:8080/hook").is_ok());
        assert!(hook("https://prod.westus.logic.azure.com/workflows/x").is_ok());
    }

    #[test]
    fn password_in_config_file_is_refused() {
        let e = parse(&MINIMAL.replace("[source]", "password = \"hunter2\"\n[source]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reqcheck.password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn credentials_in_the_reqcheck_url_are_refused_without_quoting_them() {
        for url in [
            "http://user:s3cret@127.0.0.1:3000",
            "https://s3cret@reqcheck.example.org",
        ] {
            let e = parse(&MINIMAL.replace("https://reqcheck.example.org", url))
                .unwrap_err()
                .to_string();
            assert!(e.contains("reqcheck.url"), "{e}");
            assert!(e.contains("user name or password"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let mut config = parse(MINIMAL).unwrap();
        let e = config
            .set_reqcheck_url("http://user:s3cret@127.0.0.1:3000")
            .unwrap_err();
        assert_eq!(e, BaseUrlError::Credentials);
        assert_eq!(config.reqcheck.url, "https://reqcheck.example.org");
        config.set_reqcheck_url("http://127.0.0.1:3000").unwrap();
        assert_eq!(config.reqcheck.url, "http://127.0.0.1:3000");
    }

    fn with_reqcheck(lines: &str) -> Result<Config, ConfigError> {
        parse(&MINIMAL.replace("[source]", &format!("{lines}\n[source]")))
    }

    #[test]
    fn the_proxy_defaults_to_the_system_and_takes_none_or_a_url() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.reqcheck.proxy, ProxySetting::System);
        assert_eq!(c.reqcheck.proxy_credentials, None);
        assert_eq!(
            with_reqcheck("proxy = \"none\"").unwrap().reqcheck.proxy,
            ProxySetting::None
        );
        assert_eq!(
            with_reqcheck("proxy = \"http://proxy.example:3128\"")
                .unwrap()
                .reqcheck
                .proxy,
            ProxySetting::Url("http://proxy.example:3128/".into())
        );
        for bad in [
            "socks5://p:1080",
            "proxy.example:3128",
            "http://wpad/proxy.pac",
        ] {
            let e = with_reqcheck(&format!("proxy = {bad:?}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("reqcheck.proxy"), "{e}");
        }
    }

    #[test]
    fn credentials_in_the_proxy_url_are_refused_without_quoting_them() {
        let e = with_reqcheck("proxy = \"http://clinic:s3cret@proxy.example:3128\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reqcheck.proxy"), "{e}");
        assert!(e.contains("proxy_password_env"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("clinic:"), "{e}");
        let e = with_reqcheck("proxy_password = \"s3cret\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reqcheck.proxy_password"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn proxy_credentials_come_in_pairs_from_variables_or_files() {
        let c = with_reqcheck(
            "proxy = \"http://proxy.example:3128\"\nproxy_username_env = \"CLINIC_PROXY_USER\"\n\
             proxy_password_file = \"secrets/proxy-password\"",
        )
        .unwrap();
        assert_eq!(
            c.reqcheck.proxy_credentials,
            Some(CredentialsSources {
                username: CredentialsSource::Env("CLINIC_PROXY_USER".into()),
                password: CredentialsSource::File("/srv/reqsync/secrets/proxy-password".into()),
            })
        );
        // A password file is a secret file: no job may read it as its query.
        assert!(
            c.secret_files()
                .contains(&PathBuf::from("/srv/reqsync/secrets/proxy-password"))
        );
        // Without an explicit proxy, the credentials are for the system's.
        assert!(with_reqcheck("proxy_username_env = \"U\"\nproxy_password_env = \"P\"").is_ok());
        for (lines, key) in [
            ("proxy_username_env = \"U\"", "reqcheck.proxy_password_env"),
            ("proxy_password_env = \"P\"", "reqcheck.proxy_username_env"),
            (
                "proxy_username_env = \"U\"\nproxy_username_file = \"u\"\nproxy_password_env = \"P\"",
                "reqcheck.proxy_username_env",
            ),
            (
                "proxy = \"none\"\nproxy_username_env = \"U\"\nproxy_password_env = \"P\"",
                "reqcheck.proxy",
            ),
        ] {
            let e = with_reqcheck(lines).unwrap_err().to_string();
            assert!(e.contains(key), "{lines}: {e}");
        }
    }

    #[test]
    fn secrets_are_named_in_the_store_beside_the_config_or_in_its_dir() {
        let c =
            with_reqcheck("password_secret = \"reqcheck\"\nusername_secret = \"rc-user\"").unwrap();
        let store = SecretStore::new(PathBuf::from("/srv/reqsync/secrets"));
        assert_eq!(c.secrets, store);
        assert_eq!(
            c.reqcheck.password,
            CredentialsSource::Store(SecretRef {
                name: SecretName::parse("reqcheck").unwrap(),
                store: store.clone(),
            })
        );
        assert!(
            matches!(&c.reqcheck.username, CredentialsSource::Store(s) if s.name.as_str() == "rc-user")
        );

        let c = parse(&format!(
            "{}\n[secrets]\ndir = \"/etc/reqsync/secrets\"",
            MINIMAL.replace(
                "[source]\nurl = \"sqlite://clinic.db\"",
                "password_secret = \"reqcheck\"\n[source]\n\
                 url = \"postgres://clinic@db/emr?password_secret=pg\""
            )
        ))
        .unwrap();
        assert_eq!(c.secrets.dir(), Path::new("/etc/reqsync/secrets"));
        assert!(
            matches!(&c.reqcheck.password, CredentialsSource::Store(s) if s.store == c.secrets)
        );
        // The source URL's secret is looked up in the config's store, not the default one.
        let url = c.source().unwrap();
        assert_eq!(url.password_secret().map(|s| &s.store), Some(&c.secrets));
        assert_eq!(url.password_secret().map(|s| s.name.as_str()), Some("pg"));
        // A relative dir is relative to the config file.
        let c = parse(&format!("{MINIMAL}\n[secrets]\ndir = \"private/secrets\"")).unwrap();
        assert_eq!(c.secrets.dir(), Path::new("/srv/reqsync/private/secrets"));
    }

    #[test]
    fn a_credential_given_two_ways_is_refused_naming_the_keys() {
        for (lines, key) in [
            (
                "password_env = \"P\"\npassword_secret = \"reqcheck\"",
                "reqcheck.password_env",
            ),
            (
                "password_file = \"pw\"\npassword_secret = \"reqcheck\"",
                "reqcheck.password_file",
            ),
            (
                "username_env = \"U\"\nusername_file = \"u\"",
                "reqcheck.username_env",
            ),
            (
                "proxy_username_secret = \"pu\"\nproxy_username_env = \"U\"\n\
                 proxy_password_secret = \"pp\"",
                "reqcheck.proxy_username_env",
            ),
        ] {
            let e = with_reqcheck(lines).unwrap_err().to_string();
            assert!(e.contains(key), "{lines}: {e}");
            assert!(e.contains("not more"), "{lines}: {e}");
            assert!(e.contains("_secret`"), "{lines}: {e}");
        }
        let c = with_reqcheck("proxy_username_secret = \"pu\"\nproxy_password_secret = \"pp\"")
            .unwrap();
        let proxy = c.reqcheck.proxy_credentials.unwrap();
        assert!(matches!(proxy.password, CredentialsSource::Store(s) if s.name.as_str() == "pp"));
    }

    #[test]
    fn a_secret_name_is_checked_when_the_config_loads_without_quoting_it() {
        for bad in ["../etc/shadow", "hunter2!", ".hidden", ""] {
            let e = with_reqcheck(&format!("password_secret = {bad:?}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("reqcheck.password_secret"), "{bad}: {e}");
            assert!(e.contains("not a secret name"), "{bad}: {e}");
            if !bad.is_empty() {
                assert!(!e.contains(bad), "{bad}: {e}");
            }
        }
        let e = with_reqcheck("proxy_username_secret = \"nul\"\nproxy_password_secret = \"p\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reqcheck.proxy_username_secret"), "{e}");
        let e = parse(&MINIMAL.replace(
            "sqlite://clinic.db",
            "sqlserver://db/clinic?password_secret=a%20b",
        ))
        .map(|c| c.source().map(|_| ()))
        .unwrap()
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a secret name"), "{e}");
    }

    #[test]
    fn every_file_of_the_secret_store_is_a_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("reqsync.toml");
        std::fs::write(
            &config,
            MINIMAL.replace("\"queries/patients.sql\"", "\"secrets/reqcheck\""),
        )
        .unwrap();
        // Before the secret exists the query is merely missing; once stored, it is refused.
        Config::load(&config).unwrap();
        let store = SecretStore::beside_config(dir.path());
        store
            .write(
                &SecretName::parse("reqcheck").unwrap(),
                &crate::reqcheck::Secret::new("hunter2"),
                &crate::secret_store::WriteOptions::default(),
            )
            .unwrap();
        if cfg!(windows) {
            // The store's file there is `reqcheck.dpapi`.
            return;
        }
        let e = Config::load(&config).unwrap_err().to_string();
        assert!(e.contains("jobs.patients.query"), "{e}");
        assert!(e.contains("secret store"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn sandbox_limits_default_in_sync_and_override_per_job() {
        let text = MINIMAL.replace(
            "name = \"patients\"",
            "name = \"patients\"\ntransform_memory_mb = 64",
        );
        let c = parse(&format!("{text}\n[sync]\ntransform_deadline_ms = 2500")).unwrap();
        assert_eq!(c.sandbox.call_deadline, Duration::from_millis(2500));
        assert_eq!(c.jobs[0].sandbox.call_deadline, Duration::from_millis(2500));
        assert_eq!(c.jobs[0].sandbox.memory_bytes, 64 << 20);
        assert_eq!(
            c.sandbox.memory_bytes,
            SandboxLimits::default().memory_bytes
        );
        let e = parse(&MINIMAL.replace(
            "name = \"patients\"",
            "name = \"patients\"\ntransform_max_record_kb = 0",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("jobs[0].transform_max_record_kb"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = parse(&format!("{MINIMAL}\n[sync]\nlook_back = \"yesterday\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sync.look_back"), "{e}");
        let e = parse(&format!(
            "{MINIMAL}\n[sync]\nclinic_time_zone = \"Kansas City\""
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("sync.clinic_time_zone"), "{e}");
        let e =
            parse(&MINIMAL.replace("name = \"patients\"", "name = \"patients\"\nbatch_size = 0"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("jobs[0].batch_size"), "{e}");
        let e = parse(&MINIMAL.replace(
            "name = \"patients\"",
            "name = \"patients\"\nbatch_size = \"ten\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("batch_size"), "{e}");
    }

    #[test]
    fn requests_in_flight_defaults_to_two_and_is_bounded() {
        assert_eq!(parse(MINIMAL).unwrap().reqcheck.requests_in_flight, 2);
        let with = |n: &str| {
            parse(&MINIMAL.replace("[source]", &format!("requests_in_flight = {n}\n[source]")))
        };
        assert_eq!(with("1").unwrap().reqcheck.requests_in_flight, 1);
        assert_eq!(with("8").unwrap().reqcheck.requests_in_flight, 8);
        for bad in ["0", "9"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("reqcheck.requests_in_flight"), "{e}");
            assert!(e.contains("between 1"), "{e}");
        }
    }

    #[test]
    fn schedule_and_daemon_section_parse_and_default() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.jobs[0].schedule.is_none());
        assert_eq!(c.daemon.listen.to_string(), DEFAULT_DAEMON_LISTEN);
        let c = parse(&format!(
            "{}\n[daemon]\nlisten = \"0.0.0.0:9100\"",
            MINIMAL.replace(
                "name = \"patients\"",
                "name = \"patients\"\nschedule = \"*/15 * * * *\""
            )
        ))
        .unwrap();
        assert_eq!(
            c.jobs[0].schedule.as_ref().map(|s| s.as_str()),
            Some("*/15 * * * *")
        );
        assert_eq!(c.daemon.listen.to_string(), "0.0.0.0:9100");
    }

    #[test]
    fn bad_schedule_and_listen_name_their_key() {
        let e = parse(&MINIMAL.replace(
            "name = \"patients\"",
            "name = \"patients\"\nschedule = \"every night\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("jobs[0].schedule"), "{e}");
        let e = parse(&format!("{MINIMAL}\n[daemon]\nlisten = \"localhost\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("daemon.listen"), "{e}");
        let e = parse(&format!("{MINIMAL}\n[daemon]\nport = 9100"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn the_listener_limits_default_and_are_bounded() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.daemon.limits, HttpLimits::default());
        let c = parse(&format!(
            "{MINIMAL}\n[daemon]\nheader_timeout = \"2s\"\nrequest_timeout = \"1m\"\nmax_connections = 4"
        ))
        .unwrap();
        assert_eq!(c.daemon.limits.header_timeout, Duration::from_secs(2));
        assert_eq!(c.daemon.limits.request_timeout, Duration::from_secs(60));
        assert_eq!(c.daemon.limits.max_connections, 4);
        for (key, bad) in [
            ("header_timeout", "\"0s\""),
            ("request_timeout", "\"1h\""),
            ("request_timeout", "\"soon\""),
            ("max_connections", "0"),
            ("max_connections", "5000"),
        ] {
            let e = parse(&format!("{MINIMAL}\n[daemon]\n{key} = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("daemon.{key}")), "{e}");
        }
    }
}
