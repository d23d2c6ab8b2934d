//! `sqlserver://` source URLs: where the server is, who logs in, how TLS is checked.
//!
//! ```text
//! sqlserver://[USER@]HOST[:PORT]/DATABASE[?OPTION=VALUE&...]
//! ```
//!
//! Three ways to log in (`auth=`): a SQL Server login and its password (`sql`, the default), a
//! Windows account and its password through NTLM (`windows`), or the Windows identity the
//! process runs as through SSPI (`integrated`, no name and no password at all).
//!
//! A password never appears in the URL (a URL ends up in shell history, process listings and
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
pub(crate) const DEFAULT_USER_ENV: &str = "REQSYNC_SQLSERVER_USER";
/// Environment variable holding the password unless `password_file` or `password_env` is given.
pub const DEFAULT_PASSWORD_ENV: &str = "REQSYNC_SQLSERVER_PASSWORD";
/// TCP connect plus prelogin, TLS and login. Long enough for a server across a WAN link, short
/// enough that a cron run against a dead host fails within a minute.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the server may stay silent while a query runs (not a bound on the whole query: a
/// sort over a large table may take minutes before the first row, a slow consumer never trips it).
pub(crate) const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// What the server's session list (`sys.dm_exec_sessions.program_name`) shows.
pub(crate) const DEFAULT_APPLICATION_NAME: &str = "reqsync";
/// Every option of the URL's query string (docs/CONFIG.md's table is checked against it);
/// `application_name` is also read, as libpq's spelling of `app_name`.
pub(crate) const OPTIONS: &[&str] = &[
    "instance",
    "auth",
    "user_env",
    "password_env",
    "password_file",
    "password_secret",
    "app_name",
    "connect_timeout",
    "query_timeout",
    "encrypt",
    "trust_ca_file",
    "trust_server_certificate",
    "trust_any_certificate",
    "hostname_in_certificate",
];

/// A parsed `sqlserver://` URL. Holds where secrets come from, never the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlServerUrl {
    pub host: String,
    /// `None` with an instance: the port is asked from the SQL Browser service (UDP 1434).
    pub port: Option<u16>,
    /// Named instance (`?instance=NAME`).
    pub instance: Option<String>,
    pub database: String,
    /// Who logs in, and how (`auth=`).
    pub auth: Auth,
    pub application_name: String,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    pub tls: TlsMode,
}

/// How reqsync proves who it is to the server (`auth=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `auth=sql`, the default: a SQL Server login (`CREATE LOGIN … WITH PASSWORD`) and its
    /// password, checked by SQL Server itself.
    Sql(Credentials),
    /// `auth=windows`: a Windows account, `DOMAIN\name` (or `name@domain`), and its password,
    /// proven to the server through NTLM; the password itself never crosses the network.
    Windows(Credentials),
    /// `auth=integrated`: the Windows identity the process runs as (the service account),
    /// through SSPI. There is nothing to configure or to keep secret: Windows holds the
    /// credentials.
    Integrated,
}

impl Auth {
    /// The `auth=` value, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Auth::Sql(_) => "sql",
            Auth::Windows(_) => "windows",
            Auth::Integrated => "integrated",
        }
    }

    /// Where the login name and password come from; `None` for `auth=integrated`.
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            Auth::Sql(c) | Auth::Windows(c) => Some(c),
            Auth::Integrated => None,
        }
    }

    /// The same, to point a `password_secret=` at the config's secret store.
    pub(crate) fn credentials_mut(&mut self) -> Option<&mut Credentials> {
        match self {
            Auth::Sql(c) | Auth::Windows(c) => Some(c),
            Auth::Integrated => None,
        }
    }

    /// Whether the server sees a Windows account (`auth=windows` or `auth=integrated`).
    pub(crate) fn is_windows(&self) -> bool {
        !matches!(self, Auth::Sql(_))
    }
}

/// Where a login name and its password come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: UserSource,
    pub password: CredentialsSource,
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
        let mut auth = None;
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
                "auth" => auth = Some(value),
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
                        "unknown option `{other}` (known: {})",
                        OPTIONS.join(", ")
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
        let kind = match auth.as_deref() {
            None | Some("sql") => AuthKind::Sql,
            Some("windows") => AuthKind::Windows,
            Some("integrated") => AuthKind::Integrated,
            Some(other) => {
                return Err(bad(format!(
                    "`auth={other}` is not a way to log in: `auth=sql` (a SQL Server login, the \
                     default), `auth=windows` (a Windows account and its password) or \
                     `auth=integrated` (the Windows account reqsync runs as)"
                )));
            }
        };
        let auth = if kind == AuthKind::Integrated {
            // The identity is the process's own: a name or a password given here would be
            // silently ignored, and whoever wrote it would believe reqsync logs in with it.
            let given: Vec<&str> = [
                (userinfo.is_some(), "a login name in the URL (NAME@HOST)"),
                (user_env.is_some(), "`user_env`"),
                (password_env.is_some(), "`password_env`"),
                (password_file.is_some(), "`password_file`"),
                (password_secret.is_some(), "`password_secret`"),
            ]
            .into_iter()
            .filter_map(|(set, what)| set.then_some(what))
            .collect();
            if !given.is_empty() {
                return Err(bad(format!(
                    "`auth=integrated` logs in as the Windows account reqsync runs as, with no \
                     name or password: remove {}; to log in as another Windows account, use \
                     `auth=windows` with its name and password",
                    given.join(" and ")
                )));
            }
            Auth::Integrated
        } else {
            let user = match (userinfo, user_env) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "give the login either in the URL (USER@HOST) or as `user_env`, not both"
                            .into(),
                    ));
                }
                (Some(u), None) => {
                    let user = crate::source::url::percent_decode(u).map_err(bad)?;
                    check_user(kind, &user).map_err(bad)?;
                    UserSource::Literal(user)
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
            let credentials = Credentials { user, password };
            if kind == AuthKind::Windows {
                Auth::Windows(credentials)
            } else {
                Auth::Sql(credentials)
            }
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
            auth,
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

/// The `auth=` choice before its credentials are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Sql,
    Windows,
    Integrated,
}

/// Whether `user` is a name of the kind `auth=` expects. Checked when the URL is parsed for a
/// name in it, and when the source opens for a name from an environment variable.
///
/// A Windows account must carry its domain: NTLM with a bare name would be checked against
/// whichever domain the server picks, and a failure would then name the wrong account. A SQL
/// Server login never contains `\` (SQL Server refuses that name for a SQL login), so a
/// `DOMAIN\name` with the default `auth=sql` is a forgotten `auth=windows`.
pub(crate) fn check_user(kind: AuthKind, user: &str) -> Result<(), String> {
    match kind {
        AuthKind::Sql if user.contains('\\') => Err(format!(
            "`{user}` is a Windows account, and the URL asks for a SQL Server login (`auth=sql`, \
             the default): add `auth=windows` to log in as that account with its password, or \
             `auth=integrated` to log in as the account reqsync runs as"
        )),
        AuthKind::Windows => match user.split_once('\\') {
            Some((domain, name))
                if !domain.is_empty() && !name.is_empty() && !name.contains('\\') =>
            {
                Ok(())
            }
            Some(_) => Err(format!(
                "`{user}` is not a Windows account name: write DOMAIN\\name (in the URL, \
                 DOMAIN%5Cname)"
            )),
            None if user
                .split_once('@')
                .is_some_and(|(n, d)| !n.is_empty() && !d.is_empty()) =>
            {
                Ok(())
            }
            None => Err(format!(
                "`auth=windows` needs the account's domain: write DOMAIN\\{user} (in the URL, \
                 DOMAIN%5C{user}; for an account local to the server, its computer name as the \
                 domain) or {user}@domain (in the URL, {user}%40domain)"
            )),
        },
        _ => Ok(()),
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
        assert_eq!(
            u.auth,
            Auth::Sql(Credentials {
                user: UserSource::Env(DEFAULT_USER_ENV.into()),
                password: CredentialsSource::Env(DEFAULT_PASSWORD_ENV.into())
            })
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
        assert_eq!(
            u.auth,
            Auth::Sql(Credentials {
                user: UserSource::Literal("reader".into()),
                password: CredentialsSource::File("/etc/reqsync/secret.txt".into())
            })
        );
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.5", Some(14330)));
        assert_eq!(u.database, "Clinic DB");
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
        let password = &u.auth.credentials().expect("a SQL login").password;
        let CredentialsSource::Store(secret) = password else {
            panic!("{password:?}");
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

    #[test]
    fn auth_sql_is_the_default_and_can_be_named() {
        let named = parse("sqlserver://reader@db/clinic?auth=sql&password_env=PW").unwrap();
        let default = parse("sqlserver://reader@db/clinic?password_env=PW").unwrap();
        assert_eq!(named, default);
        assert_eq!(
            named.auth,
            Auth::Sql(Credentials {
                user: UserSource::Literal("reader".into()),
                password: CredentialsSource::Env("PW".into())
            })
        );
        assert_eq!(named.auth.name(), "sql");
        assert!(!named.auth.is_windows());
    }

    #[test]
    fn auth_windows_takes_a_domain_account_escaped_or_literal_and_its_password() {
        for url in [
            "sqlserver://CLINIC%5Creqsync_svc@sql01/clinic?auth=windows&password_env=SVC_PW",
            "sqlserver://CLINIC%5creqsync_svc@sql01/clinic?auth=windows&password_env=SVC_PW",
            "sqlserver://CLINIC\\reqsync_svc@sql01/clinic?auth=windows&password_env=SVC_PW",
        ] {
            let u = parse(url).unwrap();
            assert_eq!(
                u.auth,
                Auth::Windows(Credentials {
                    user: UserSource::Literal("CLINIC\\reqsync_svc".into()),
                    password: CredentialsSource::Env("SVC_PW".into())
                }),
                "{url}"
            );
            assert!(u.auth.is_windows());
        }
        // A user principal name, and a name and password from elsewhere.
        let u = parse("sqlserver://svc%40clinic.local@sql01/clinic?auth=windows").unwrap();
        assert_eq!(
            u.auth.credentials().map(|c| &c.user),
            Some(&UserSource::Literal("svc@clinic.local".into()))
        );
        let u = parse("sqlserver://sql01/clinic?auth=windows&user_env=SVC&password_file=pw.txt")
            .unwrap();
        assert_eq!(
            u.auth,
            Auth::Windows(Credentials {
                user: UserSource::Env("SVC".into()),
                password: CredentialsSource::File("/etc/reqsync/pw.txt".into())
            })
        );
        let u = parse("sqlserver://sql01/clinic?auth=windows").unwrap();
        assert_eq!(
            u.auth.credentials(),
            Some(&Credentials {
                user: UserSource::Env(DEFAULT_USER_ENV.into()),
                password: CredentialsSource::Env(DEFAULT_PASSWORD_ENV.into())
            })
        );
    }

    #[test]
    fn auth_integrated_needs_no_name_and_no_password() {
        let u = parse("sqlserver://sql01.clinic.local/clinic?auth=integrated").unwrap();
        assert_eq!(u.auth, Auth::Integrated);
        assert_eq!(u.auth.credentials(), None);
        assert_eq!(u.auth.name(), "integrated");
        // With a port, an instance and TLS options, like any other URL.
        let u = parse(
            "sqlserver://sql01/clinic?auth=integrated&instance=SQLEXPRESS&trust_ca_file=ca.pem",
        )
        .unwrap();
        assert_eq!(u.auth, Auth::Integrated);
        assert_eq!(u.instance.as_deref(), Some("SQLEXPRESS"));
    }

    #[test]
    fn auth_integrated_refuses_a_name_or_password_it_would_ignore() {
        for (url, named) in [
            (
                "sqlserver://CLINIC%5Csvc@sql01/clinic?auth=integrated",
                "a login name in the URL",
            ),
            (
                "sqlserver://sql01/clinic?auth=integrated&user_env=U",
                "`user_env`",
            ),
            (
                "sqlserver://sql01/clinic?auth=integrated&password_env=PW",
                "`password_env`",
            ),
            (
                "sqlserver://sql01/clinic?password_file=pw.txt&auth=integrated",
                "`password_file`",
            ),
        ] {
            let msg = parse(url).unwrap_err().to_string();
            assert!(msg.contains("`auth=integrated`"), "{msg}");
            assert!(msg.contains(&format!("remove {named}")), "{msg}");
            assert!(msg.contains("auth=windows"), "{msg}");
        }
    }

    #[test]
    fn auth_values_and_account_forms_that_cannot_work_are_refused() {
        let msg = parse("sqlserver://db/clinic?auth=ntlm")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`auth=ntlm` is not a way to log in"), "{msg}");
        assert!(msg.contains("auth=integrated"), "{msg}");
        // A Windows account without its domain.
        let msg = parse("sqlserver://svc@db/clinic?auth=windows")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("needs the account's domain"), "{msg}");
        assert!(msg.contains("DOMAIN%5Csvc"), "{msg}");
        for bad in ["%5Csvc", "CLINIC%5C", "A%5CB%5Cc"] {
            let msg = parse(&format!("sqlserver://{bad}@db/clinic?auth=windows"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("is not a Windows account name"),
                "{bad}: {msg}"
            );
        }
        // A Windows account with the default SQL login: `auth=windows` was forgotten.
        let msg = parse("sqlserver://CLINIC%5Csvc@db/clinic")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is a Windows account"), "{msg}");
        assert!(msg.contains("add `auth=windows`"), "{msg}");
        // The password rules hold for Windows accounts too.
        for url in [
            "sqlserver://CLINIC%5Csvc:hunter2@db/clinic?auth=windows",
            "sqlserver://CLINIC%5Csvc@db/clinic?auth=windows&password=hunter2",
        ] {
            let msg = parse(url).unwrap_err().to_string();
            assert!(msg.contains("never goes in the URL"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
        let msg =
            parse("sqlserver://CLINIC%5Csvc@db/clinic?auth=windows&password_env=A&password_file=b")
                .unwrap_err()
                .to_string();
        assert!(msg.contains("not more"), "{msg}");
        let msg = parse("sqlserver://CLINIC%5Csvc@db/clinic?auth=windows&user_env=U")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not both"), "{msg}");
    }
}
