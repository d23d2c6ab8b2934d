//! `reqsync.toml`: one file for the ReqCheck connection, the source, the sync's clock settings,
//! the jobs, and the settings of the daemon, status checks, notices, the audit trail and the
//! secret store. The structs are the documentation; unknown keys are errors (a misspelt key
//! must not silently fall back to a default). Relative paths are relative to the config file.
//!
//! [`Config::parse`] reads the file and hands each section to the type it becomes, which
//! checks it and fills in its defaults, each in a module of its own: `[reqcheck]` in
//! `reqcheck.rs`, `[sync]` in `sync.rs`, `[[jobs]]` in `jobs.rs`, `[daemon]` in `daemon.rs`,
//! `[notify]` in `crate::notify::settings`. Each default is defined once, as a constant or a
//! `Default` beside its setting; docs/CONFIG.md's tables are checked against them by the tests
//! in `config_md.rs`, and the config `reqsync init` writes states them from the constants.

mod credentials;
mod daemon;
mod jobs;
mod reqcheck;
mod sync;

#[cfg(test)]
mod config_md;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::notify::settings::{NotifyConfig, RawNotify};
use crate::reqcheck::credentials::CredentialsSource;
use crate::reqcheck::{BaseUrlError, parse_base_url};
use crate::secret_store::{SecretRef, SecretStore};
use crate::source::{SourceError, SourceUrl};
use crate::transform::{CacheError, ModuleCache, SandboxLimits};

pub(crate) use credentials::{Forms, password_in_config, pick_source};
pub use daemon::{DEFAULT_DAEMON_LISTEN, DEFAULT_STATUS_PAGE, DaemonConfig};
pub use jobs::{DEFAULT_BATCH_SIZE, DEFAULT_GROUP_BY_COLUMN, JobConfig};
pub use reqcheck::{
    DEFAULT_PASSWORD_ENV, DEFAULT_REQUESTS_IN_FLIGHT, DEFAULT_USERNAME_ENV, ReqCheckConfig,
};
pub use sync::{
    DEFAULT_CACHE_DIR, DEFAULT_CLINIC_TIME_ZONE, DEFAULT_LOOK_BACK, DEFAULT_STATE_DIR,
    DEFAULT_TRANSFORM_BATCH_ROWS, PartialFailurePolicy,
};

/// The audit trail, relative to the config file.
pub(crate) const DEFAULT_AUDIT_FILE: &str = ".reqsync/audit.jsonl";

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

/// A value of the config file that reqsync cannot use: its key (`section.key`, `jobs[0].name`)
/// and why. [`Config::parse`] makes it a [`ConfigError::Invalid`] naming the file.
#[derive(Debug)]
pub(crate) struct Invalid {
    key: String,
    reason: String,
}

impl Invalid {
    pub(crate) fn new(key: impl Into<String>, reason: impl ToString) -> Self {
        Invalid {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// What a section needs besides its own keys: the folder relative paths are relative to, and
/// the secret store that `*_secret` keys name.
pub(crate) struct Context {
    base: PathBuf,
    secrets: SecretStore,
}

impl Context {
    /// `path` as a key gives it: relative to the config file's folder unless absolute.
    pub(crate) fn rel(&self, path: &Path) -> PathBuf {
        crate::native_path::resolve(&self.base, path)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    reqcheck: reqcheck::RawReqCheck,
    source: RawSource,
    #[serde(default)]
    sync: sync::RawSync,
    #[serde(default)]
    jobs: Vec<jobs::RawJob>,
    #[serde(default)]
    daemon: daemon::RawDaemon,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    secrets: RawSecrets,
    #[serde(default)]
    status: RawStatus,
    notify: Option<RawNotify>,
}

/// `[source]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    /// The clinic database: `sqlite://PATH`, `postgres://…` (or `postgresql://`) or
    /// `sqlserver://…` (or `mssql://`), with their options. Parsed when a command opens the
    /// source ([`Config::source`]), not when the config loads.
    url: String,
}

/// `[secrets]`: the store `reqsync secret set` writes and `*_secret` keys read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    /// The store folder (default `crate::secret_store::DEFAULT_DIR` beside the config file).
    dir: Option<PathBuf>,
}

/// `[audit]`: the hash-chained audit trail.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// JSON-lines file the audit events are appended to (default [`DEFAULT_AUDIT_FILE`]).
    file: Option<PathBuf>,
}

/// `[status]`: what `reqsync status` and the daemon's status page call healthy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    /// How old a job's last complete run may be (default `crate::status::DEFAULT_MAX_AGE`).
    max_age: Option<String>,
}

impl RawStatus {
    fn max_age(&self) -> Result<Duration, Invalid> {
        let max_age = match self.max_age.as_deref() {
            Some(age) => parse_duration(age).map_err(|e| Invalid::new("status.max_age", e))?,
            None => crate::status::DEFAULT_MAX_AGE,
        };
        if max_age.is_zero() {
            return Err(Invalid::new("status.max_age", "must be longer than 0s"));
        }
        Ok(max_age)
    }
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
    pub(crate) fn secret_files(&self) -> Vec<PathBuf> {
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
        Self::from_raw(path, raw).map_err(|Invalid { key, reason }| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            reason,
        })
    }

    /// Each section, checked and completed with its defaults by the type it becomes.
    fn from_raw(path: &Path, raw: RawConfig) -> Result<Self, Invalid> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let secrets = match &raw.secrets.dir {
            Some(dir) => SecretStore::new(crate::native_path::resolve(&base, dir)),
            None => SecretStore::beside_config(&base),
        };
        let cx = Context { base, secrets };
        let reqcheck = ReqCheckConfig::from_raw(raw.reqcheck, &cx)?;
        let sync = sync::SyncSettings::from_raw(raw.sync, &cx)?;
        let audit_file = cx.rel(
            raw.audit
                .file
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_AUDIT_FILE)),
        );
        let jobs = JobConfig::from_raw(raw.jobs, &sync.sandbox, &cx)?;
        let daemon = DaemonConfig::from_raw(raw.daemon, &cx)?;
        let status_max_age = raw.status.max_age()?;
        let notify = raw
            .notify
            .map(|n| NotifyConfig::from_raw(n, status_max_age, &cx))
            .transpose()?;
        Ok(Config {
            path: path.to_path_buf(),
            reqcheck,
            source_url: raw.source.url,
            clinic_tz: sync.clinic_tz,
            look_back: sync.look_back,
            initial_start: sync.initial_start,
            transform_batch_rows: sync.transform_batch_rows,
            sandbox: sync.sandbox,
            cache_dir: sync.cache_dir,
            jobs,
            daemon,
            state_dir: sync.state_dir,
            on_partial_failure: sync.on_partial_failure,
            audit_file,
            secrets: cx.secrets,
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

/// A duration as the config file writes it: humantime's `"1d"`, `"12h"`, `"90s"`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. \"1d\", \"12h\", \"90s\")"))
}

/// `d` the way a config file would write it, in its largest whole unit (`"26h"`, `"2m"`), for
/// text that states a default.
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, unit_ms) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms.is_multiple_of(unit_ms) {
            return format!("{}{unit}", ms / unit_ms);
        }
    }
    format!("{ms}ms")
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
    use crate::daemon::http::HttpLimits;
    use crate::notify::settings::{EventKind, SmtpTls, WebhookFormat};
    use crate::reqcheck::credentials::CredentialsSources;
    use crate::reqcheck::proxy::ProxySetting;
    use crate::secret_store::SecretName;

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
    fn duration_text_writes_a_duration_the_config_reads_back() {
        for (d, text) in [
            (Duration::from_secs(26 * 3600), "26h"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(duration_text(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
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
