//! `sqlserver://` source URLs: where the server is, who logs in, how TLS is checked.
//!
//! ```text
//! sqlserver://[USER@]HOST[:PORT]/DATABASE[?OPTION=VALUE&...]
//! ```
//!
//! The password never appears in the URL (a URL ends up in shell history, process listings and
//! config files): it comes from an environment variable or a file. Every option is documented in
//! `docs/CONFIG.md`; unknown options are errors naming the option.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::redact::RedactedUrl;
use crate::reqcheck::CredentialsSource;
use crate::source::SourceError;

/// Default SQL Server TCP port.
pub const DEFAULT_PORT: u16 = 1433;
/// Environment variable holding the login name when the URL names none.
pub const DEFAULT_USER_ENV: &str = "REQSYNC_SQLSERVER_USER";
/// Environment variable holding the password unless `password_file` or `password_env` is given.
pub const DEFAULT_PASSWORD_ENV: &str = "REQSYNC_SQLSERVER_PASSWORD";
/// TCP connect plus prelogin, TLS and login. Long enough for a server across a WAN link, short
/// enough that a cron run against a dead host fails within a minute.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the server may stay silent while a query runs (not a bound on the whole query: a
/// sort over a large table may take minutes before the first row, a slow consumer never trips it).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// What the server's session list (`sys.dm_exec_sessions.program_name`) shows.
pub const DEFAULT_APPLICATION_NAME: &str = "reqsync";

/// A parsed `sqlserver://` URL. Holds where secrets come from, never the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlServerUrl {
    pub host: String,
    /// `None` with an instance: the port is asked from the SQL Browser service (UDP 1434).
    pub port: Option<u16>,
    /// Named instance (`?instance=NAME`).
    pub instance: Option<String>,
    pub database: String,
    pub user: UserSource,
    pub password: CredentialsSource,
    pub application_name: String,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    pub tls: TlsMode,
}

/// Where the login name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSource {
    /// In the URL (`sqlserver://reqsync_reader@host/db`).
    Literal(String),
    /// From an environment variable (`user_env`, default `REQSYNC_SQLSERVER_USER`).
    Env(String),
}

/// Transport encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS for the whole connection, the server's certificate checked as `trust` says. The
    /// default: the connection carries patient data and the login password.
    Required {
        trust: Trust,
        /// Name the certificate must carry when it differs from `host` (an IP address, a tunnel).
        hostname_in_certificate: Option<String>,
    },
    /// No TLS at all (`encrypt=false`): credentials and rows cross the network in clear text.
    /// Refused by most servers; meant for a loopback test server.
    Off,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's trust store.
    System,
    /// The system store plus this CA certificate (PEM or DER), e.g. the clinic's internal CA.
    CaFile(PathBuf),
    /// The server's own (typically self-signed) certificate, trusted as its own anchor: the
    /// usual way to pin SQL Server's generated certificate. The name is still checked.
    ServerCertificate(PathBuf),
    /// Any certificate, unchecked (`trust_any_certificate=true`). Encrypts against passive
    /// eavesdropping only; a machine in the middle can read everything. Warned about loudly.
    AnyCertificate,
}

impl SqlServerUrl {
    /// Parses `url`; relative file paths in options resolve against `base` (the config folder).
    pub fn parse(url: &str, base: Option<&Path>) -> Result<Self, SourceError> {
        let bad = |reason: String| SourceError::BadUrl {
            url: RedactedUrl::new(url).to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("sqlserver://")
            .or_else(|| url.strip_prefix("mssql://"))
            .ok_or_else(|| bad("expected sqlserver://".into()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if userinfo.is_some_and(|u| u.contains(':')) {
            return Err(bad(
                "a password never goes in the URL: put it in REQSYNC_SQLSERVER_PASSWORD, \
                 another variable (`password_env=NAME`) or a file (`password_file=PATH`)"
                    .into(),
            ));
        }
        let (host, port) = split_host_port(hostport).map_err(bad)?;
        if host.is_empty() {
            return Err(bad("no host (sqlserver://HOST/DATABASE)".into()));
        }
        let database =
            crate::source::url::percent_decode(path.trim_end_matches('/')).map_err(bad)?;
        if database.is_empty() {
            return Err(bad(
                "no database: name it in the path (sqlserver://HOST/DATABASE)".into(),
            ));
        }
        if database.contains('/') {
            return Err(bad(format!("`{database}` is not a database name")));
        }

        let resolve = |p: String| {
            let p = PathBuf::from(p);
            match base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            }
        };
        let mut instance = None;
        let mut user_env = None;
        let mut password_env = None;
        let mut password_file = None;
        let mut password_secret = None;
        let mut application_name = DEFAULT_APPLICATION_NAME.to_string();
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        let mut query_timeout = DEFAULT_QUERY_TIMEOUT;
        let mut encrypt = true;
        let mut trust_ca_file = None;
        let mut trust_server_certificate = None;
        let mut trust_any = false;
        let mut hostname_in_certificate = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("option `{pair}` has no value (`{pair}=…`)")))?;
            let value = crate::source::url::percent_decode(value).map_err(bad)?;
            let duration = |v: &str| {
                humantime::parse_duration(v)
                    .map_err(|e| bad(format!("option `{key}`: {e} (e.g. `30s`, `5m`)")))
            };
            let flag = |v: &str| match v {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" => Ok(false),
                _ => Err(bad(format!("option `{key}` is `true` or `false`"))),
            };
            match key {
                "instance" => instance = Some(value),
                "user_env" => user_env = Some(value),
                "password_env" => password_env = Some(value),
                "password_file" => password_file = Some(resolve(value)),
                "password_secret" => {
                    password_secret =
                        Some(crate::source::url::secret_option(&value, base).map_err(bad)?);
                }
                "app_name" | "application_name" => application_name = value,
                "connect_timeout" => connect_timeout = duration(&value)?,
                "query_timeout" => query_timeout = duration(&value)?,
                "encrypt" => encrypt = flag(&value)?,
                "trust_ca_file" => trust_ca_file = Some(resolve(value)),
                "trust_server_certificate" => trust_server_certificate = Some(resolve(value)),
                "trust_any_certificate" => trust_any = flag(&value)?,
                "hostname_in_certificate" => hostname_in_certificate = Some(value),
                "password" | "pwd" => {
                    return Err(bad(
                        "a password never goes in the URL: use `password_env=NAME` or \
                         `password_file=PATH`"
                            .into(),
                    ));
                }
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}` (known: instance, user_env, password_env, \
                         password_file, password_secret, app_name, connect_timeout, \
                         query_timeout, encrypt, trust_ca_file, trust_server_certificate, \
                         trust_any_certificate, hostname_in_certificate)"
                    )));
                }
            }
        }
        if instance.is_some() && port.is_some() {
            return Err(bad(
                "give either a port or `instance=NAME` (a named instance's port is asked \
                 from the SQL Browser service), not both"
                    .into(),
            ));
        }
        let password_forms = usize::from(password_env.is_some())
            + usize::from(password_file.is_some())
            + usize::from(password_secret.is_some());
        if password_forms > 1 {
            return Err(bad(
                "give one of `password_env`, `password_file` and `password_secret`, not more"
                    .into(),
            ));
        }
        let user = match (userinfo, user_env) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give the login either in the URL (USER@HOST) or as `user_env`, not both"
                        .into(),
                ));
            }
            (Some(u), None) => {
                UserSource::Literal(crate::source::url::percent_decode(u).map_err(bad)?)
            }
            (None, Some(var)) => UserSource::Env(var),
            (None, None) => UserSource::Env(DEFAULT_USER_ENV.to_string()),
        };
        let password = match (password_env, password_file, password_secret) {
            (_, Some(path), _) => CredentialsSource::File(path),
            (_, _, Some(secret)) => CredentialsSource::Store(secret),
            (Some(var), None, None) => CredentialsSource::Env(var),
            (None, None, None) => CredentialsSource::Env(DEFAULT_PASSWORD_ENV.to_string()),
        };
        let trust_choices = usize::from(trust_ca_file.is_some())
            + usize::from(trust_server_certificate.is_some())
            + usize::from(trust_any);
        if trust_choices > 1 {
            return Err(bad(
                "choose one of `trust_ca_file`, `trust_server_certificate` and \
                 `trust_any_certificate`"
                    .into(),
            ));
        }
        let tls = if encrypt {
            let trust = match (trust_ca_file, trust_server_certificate, trust_any) {
                (Some(ca), _, _) => Trust::CaFile(ca),
                (_, Some(cert), _) => Trust::ServerCertificate(cert),
                (_, _, true) => Trust::AnyCertificate,
                _ => Trust::System,
            };
            TlsMode::Required {
                trust,
                hostname_in_certificate,
            }
        } else {
            if trust_choices > 0 || hostname_in_certificate.is_some() {
                return Err(bad(
                    "certificate options mean nothing with `encrypt=false`".into()
                ));
            }
            TlsMode::Off
        };
        Ok(Self {
            host,
            port,
            instance,
            database,
            user,
            password,
            application_name,
            connect_timeout,
            query_timeout,
            tls,
        })
    }

    /// `sqlserver://host:port/database` (or `host/database?instance=…`), for messages: no
    /// credentials, no file paths.
    pub fn display(&self) -> String {
        match (&self.instance, self.port) {
            (Some(instance), _) => format!(
                "sqlserver://{}/{}?instance={instance}",
                self.host, self.database
            ),
            (None, port) => format!(
                "sqlserver://{}:{}/{}",
                self.host,
                port.unwrap_or(DEFAULT_PORT),
                self.database
            ),
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the host".to_string())?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), Some(port(p)?))),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(format!("unexpected `{after}` after the host")),
        };
    }
    match s.rsplit_once(':') {
        Some((host, p)) => Ok((host.to_string(), Some(port(p)?))),
        None => Ok((s.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<SqlServerUrl, SourceError> {
        SqlServerUrl::parse(url, Some(Path::new("/etc/reqsync")))
    }

    #[test]
    fn minimal_url_gets_safe_defaults() {
        let u = parse("sqlserver://db.clinic.local/clinic").unwrap();
        assert_eq!(u.host, "db.clinic.local");
        assert_eq!(u.port, None);
        assert_eq!(u.database, "clinic");
        assert_eq!(u.user, UserSource::Env(DEFAULT_USER_ENV.into()));
        assert_eq!(
            u.password,
            CredentialsSource::Env(DEFAULT_PASSWORD_ENV.into())
        );
        assert_eq!(
            u.tls,
            TlsMode::Required {
                trust: Trust::System,
                hostname_in_certificate: None
            }
        );
        assert_eq!(u.display(), "sqlserver://db.clinic.local:1433/clinic");
    }

    #[test]
    fn every_option_is_read_and_paths_resolve_against_the_config_folder() {
        let u = parse(
            "sqlserver://reader@10.0.0.5:14330/Clinic%20DB?password_file=secret.txt&app_name=rs\
             &connect_timeout=5s&query_timeout=2m&trust_ca_file=/pki/ca.pem\
             &hostname_in_certificate=sql01",
        )
        .unwrap();
        assert_eq!(u.user, UserSource::Literal("reader".into()));
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.5", Some(14330)));
        assert_eq!(u.database, "Clinic DB");
        assert_eq!(
            u.password,
            CredentialsSource::File("/etc/reqsync/secret.txt".into())
        );
        assert_eq!(u.application_name, "rs");
        assert_eq!(u.connect_timeout, Duration::from_secs(5));
        assert_eq!(u.query_timeout, Duration::from_secs(120));
        assert_eq!(
            u.tls,
            TlsMode::Required {
                trust: Trust::CaFile("/pki/ca.pem".into()),
                hostname_in_certificate: Some("sql01".into())
            }
        );
    }

    #[test]
    fn named_instance_and_ipv6_hosts() {
        let u = parse("sqlserver://sql01/clinic?instance=SQLEXPRESS").unwrap();
        assert_eq!(u.instance.as_deref(), Some("SQLEXPRESS"));
        assert_eq!(u.display(), "sqlserver://sql01/clinic?instance=SQLEXPRESS");
        let u = parse("sqlserver://[::1]:1433/clinic").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(1433)));
        let e = parse("sqlserver://sql01:1433/clinic?instance=X").unwrap_err();
        assert!(e.to_string().contains("either a port"), "{e}");
    }

    #[test]
    fn passwords_in_the_url_are_refused_without_being_echoed() {
        for url in [
            "sqlserver://sa:hunter2@db/clinic",
            "sqlserver://db/clinic?password=hunter2",
        ] {
            let msg = parse(url).unwrap_err().to_string();
            assert!(msg.contains("never goes in the URL"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn unknown_options_and_conflicts_are_named() {
        let e = parse("sqlserver://db/clinic?encrypt=true&trust_cert=1").unwrap_err();
        assert!(e.to_string().contains("unknown option `trust_cert`"), "{e}");
        let e =
            parse("sqlserver://db/clinic?trust_any_certificate=true&trust_ca_file=x").unwrap_err();
        assert!(e.to_string().contains("choose one"), "{e}");
        let e = parse("sqlserver://db/clinic?encrypt=false&trust_ca_file=x").unwrap_err();
        assert!(e.to_string().contains("encrypt=false"), "{e}");
        let e = parse("sqlserver://db").unwrap_err();
        assert!(e.to_string().contains("no database"), "{e}");
        let e = parse("sqlserver://db/clinic?query_timeout=soon").unwrap_err();
        assert!(e.to_string().contains("query_timeout"), "{e}");
        let e = parse("sqlserver://db/clinic?password_env=A&password_secret=sql").unwrap_err();
        assert!(e.to_string().contains("not more"), "{e}");
        let e = parse("sqlserver://db/clinic?password_secret=a%2Fb").unwrap_err();
        assert!(e.to_string().contains("not a secret name"), "{e}");
    }

    #[test]
    fn a_stored_password_is_named_and_found_beside_the_config() {
        let u = parse("sqlserver://reader@db/clinic?password_secret=sql").unwrap();
        let CredentialsSource::Store(secret) = &u.password else {
            panic!("{:?}", u.password);
        };
        assert_eq!(secret.name.as_str(), "sql");
        assert_eq!(secret.store.dir(), Path::new("/etc/reqsync/secrets"));
    }

    #[test]
    fn encryption_can_be_turned_off_and_any_certificate_trusted_explicitly() {
        let u = parse("sqlserver://db/clinic?encrypt=false").unwrap();
        assert_eq!(u.tls, TlsMode::Off);
        let u = parse("sqlserver://db/clinic?trust_any_certificate=true").unwrap();
        assert!(matches!(
            u.tls,
            TlsMode::Required {
                trust: Trust::AnyCertificate,
                ..
            }
        ));
        let u = parse("sqlserver://db/clinic?trust_server_certificate=server.pem").unwrap();
        assert!(matches!(
            u.tls,
            TlsMode::Required { trust: Trust::ServerCertificate(p), .. } if p == Path::new("/etc/reqsync/server.pem")
        ));
    }
}
