//! `postgres://USER@HOST[:PORT]/DATABASE[?OPTION=VALUE&…]`: where a PostgreSQL clinic database
//! is and how to reach it.
//!
//! The URL never carries the password: one in the user part or as `password=` is refused (the
//! error quotes the URL with the password masked), because config files and command lines end up
//! in shell histories, process lists and support tickets. The password comes from an environment
//! variable (`PGPASSWORD` unless `password_env` names another), from `password_file`, or from the
//! secret store (`password_secret`, see `crate::secret_store`).
//!
//! Option names follow libpq where the meaning is the same (`sslmode`, `sslrootcert`,
//! `connect_timeout`, `application_name`). `sslmode` deliberately accepts fewer values than
//! libpq: its `require` and `prefer` encrypt without checking who answers, which is not what
//! anyone reading `require` expects; here TLS with full verification is the default and
//! accepting any certificate must be spelled out (`no-verify`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::SourceError;
use crate::redact::RedactedUrl;

/// PostgreSQL's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// How long connecting (TCP, TLS handshake and login together) may take by default. Long enough
/// for a server across a VPN, short enough that a scheduled run with a wrong host fails while
/// someone is still watching.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The variable the password is read from when the URL names none (libpq's convention).
pub const DEFAULT_PASSWORD_ENV: &str = "PGPASSWORD";

/// Every option of the URL's query string (docs/CONFIG.md's table is checked against it).
pub(crate) const OPTIONS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "password_env",
    "password_file",
    "password_secret",
    "connect_timeout",
    "search_path",
    "application_name",
];

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS required; the certificate must chain to a trusted root (the platform's, or
    /// `sslrootcert`) and name the host. The default.
    VerifyFull,
    /// TLS required but any certificate is accepted: protects against eavesdropping, not against
    /// an impostor server. Only on explicit request, with a warning at every run.
    NoVerify,
    /// No TLS: rows and the password cross the network in the clear.
    Disable,
}

impl TlsMode {
    /// The `sslmode` spelling.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::VerifyFull => "verify-full",
            TlsMode::NoVerify => "no-verify",
            TlsMode::Disable => "disable",
        }
    }
}

/// Where the password comes from. The password itself is read when the source is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `PGPASSWORD` when it is set; otherwise no password (for `trust` or certificate setups).
    DefaultEnv,
    /// `password_env=VAR`: this variable must be set.
    Env(String),
    /// `password_file=PATH`: the file's first line.
    File(PathBuf),
    /// `password_secret=NAME`: a secret of the store (or of systemd's credentials).
    Store(crate::secret_store::SecretRef),
}

/// A parsed `postgres://` URL. Holds no secret, so it may be printed and compared freely;
/// `Display` gives `postgres://USER@HOST:PORT/DATABASE` for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// `sslmode`.
    pub tls: TlsMode,
    /// `sslrootcert`: PEM file of CA certificates trusted in addition to the platform's.
    pub ca_file: Option<PathBuf>,
    pub password: PasswordSource,
    /// `connect_timeout` (seconds in the URL): TCP connect, TLS handshake and login together.
    pub connect_timeout: Duration,
    /// `search_path`: schemas searched for unqualified table names (the server's default when
    /// empty). `reqsync seed` creates the first one.
    pub search_path: Vec<String>,
    /// `application_name`, shown in the server's `pg_stat_activity` (default `reqsync`).
    pub application_name: String,
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }
}

impl PostgresUrl {
    /// The `HOST:PORT` part, for messages about the network.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Parses `postgres://…` or `postgresql://…`; relative file paths in options resolve against
    /// `base` (the config file's folder).
    pub fn parse(url: &str, base: Option<&Path>) -> Result<Self, SourceError> {
        let bad = |reason: String| SourceError::BadUrl {
            url: RedactedUrl::new(url).to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("expected postgres://USER@HOST[:PORT]/DATABASE".into()))?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = main.split_once('/').unwrap_or((main, ""));
        // The last `@` ends the user part: an unencoded `@` inside a password must not make the
        // rest of the password look like a host name.
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("no user name: write postgres://USER@HOST/DATABASE".into()))?;
        if userinfo.contains(':') {
            return Err(bad(format!(
                "a password in the URL is refused (URLs end up in configs, shell histories and \
                 logs): put it in {DEFAULT_PASSWORD_ENV}, or name its source with \
                 password_env=VAR or password_file=PATH"
            )));
        }
        let user = crate::source::url::percent_decode(userinfo).map_err(&bad)?;
        if user.is_empty() {
            return Err(bad("the user name is empty".into()));
        }
        let (host, port) = split_host_port(hostport).map_err(&bad)?;
        let database = crate::source::url::percent_decode(database).map_err(&bad)?;
        if database.is_empty() || database.contains('/') {
            return Err(bad(
                "no database name: write postgres://USER@HOST[:PORT]/DATABASE".into(),
            ));
        }

        let mut parsed = PostgresUrl {
            host,
            port,
            user,
            database,
            tls: TlsMode::VerifyFull,
            ca_file: None,
            password: PasswordSource::DefaultEnv,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            search_path: Vec::new(),
            application_name: "reqsync".into(),
        };
        let resolve = |value: String| {
            let path = PathBuf::from(value);
            match base {
                Some(base) if path.is_relative() => base.join(path),
                _ => path,
            }
        };
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("option `{pair}` has no value (write {pair}=VALUE)")))?;
            if key == "password" {
                return Err(bad(format!(
                    "a password in the URL is refused: put it in {DEFAULT_PASSWORD_ENV}, or use \
                     password_env=VAR or password_file=PATH"
                )));
            }
            if seen.iter().any(|k| k == key) {
                return Err(bad(format!("option `{key}` is given twice")));
            }
            seen.push(key.to_string());
            let value = crate::source::url::percent_decode(raw).map_err(&bad)?;
            if value.is_empty() {
                return Err(bad(format!("option `{key}` is empty")));
            }
            match key {
                "sslmode" => parsed.tls = parse_sslmode(&value).map_err(&bad)?,
                "sslrootcert" => parsed.ca_file = Some(resolve(value)),
                "password_env" => parsed.password = PasswordSource::Env(value),
                "password_file" => parsed.password = PasswordSource::File(resolve(value)),
                "password_secret" => {
                    parsed.password = PasswordSource::Store(
                        crate::source::url::secret_option(&value, base).map_err(&bad)?,
                    );
                }
                "connect_timeout" => {
                    let secs: u64 = value
                        .parse()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| {
                            bad("connect_timeout must be whole seconds, 1 to 3600".into())
                        })?;
                    parsed.connect_timeout = Duration::from_secs(secs);
                }
                "search_path" => {
                    parsed.search_path = value.split(',').map(|s| s.trim().to_string()).collect();
                    if let Some(schema) = parsed.search_path.iter().find(|s| !is_plain_name(s)) {
                        return Err(bad(format!(
                            "search_path entry `{schema}` is not a plain schema name (lower-case \
                             letters, digits and `_`, not starting with a digit)"
                        )));
                    }
                }
                "application_name" => {
                    if value.len() > 63 || !value.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(bad(
                            "application_name must be up to 63 printable ASCII characters".into(),
                        ));
                    }
                    parsed.application_name = value;
                }
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}`; the options are {}",
                        OPTIONS.join(", ")
                    )));
                }
            }
        }
        let password_forms = ["password_env", "password_file", "password_secret"];
        if seen
            .iter()
            .filter(|k| password_forms.contains(&k.as_str()))
            .count()
            > 1
        {
            return Err(bad(
                "give one of password_env, password_file and password_secret, not more".into(),
            ));
        }
        Ok(parsed)
    }
}

fn parse_sslmode(value: &str) -> Result<TlsMode, String> {
    match value {
        "verify-full" => Ok(TlsMode::VerifyFull),
        "no-verify" => Ok(TlsMode::NoVerify),
        "disable" => Ok(TlsMode::Disable),
        "require" | "prefer" | "allow" | "verify-ca" => Err(format!(
            "sslmode={value} is not supported: libpq's `{value}` does not check that the \
             certificate names the server. reqsync verifies fully by default (verify-full; \
             trust an internal CA with sslrootcert=PATH); sslmode=no-verify accepts any \
             certificate, sslmode=disable turns TLS off"
        )),
        other => Err(format!(
            "sslmode `{other}` is unknown; use verify-full (the default), no-verify or disable"
        )),
    }
}

/// `HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs a closing `]`")?;
        match after {
            "" => (host.to_string(), None),
            p => (
                host.to_string(),
                Some(p.strip_prefix(':').ok_or("expected `:PORT` after `]`")?),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (crate::source::url::percent_decode(h)?, Some(p)),
            None => (crate::source::url::percent_decode(s)?, None),
        }
    };
    if host.is_empty() {
        return Err("no host name".into());
    }
    if host.starts_with('/') {
        return Err("Unix-domain sockets are not supported; connect over TCP".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))?,
    };
    Ok((host, port))
}

/// PostgreSQL folds unquoted names to lower case; accepting only names that need no quoting
/// keeps `search_path=Clinic` from silently meaning `clinic`.
fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<PostgresUrl, String> {
        PostgresUrl::parse(url, Some(Path::new("/etc/reqsync"))).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_url_gets_the_safe_defaults() {
        let u = parse("postgres://clinic@db.example.org/emr").unwrap();
        assert_eq!(u.host, "db.example.org");
        assert_eq!(u.port, 5432);
        assert_eq!(u.user, "clinic");
        assert_eq!(u.database, "emr");
        assert_eq!(
            u.tls,
            TlsMode::VerifyFull,
            "TLS is on and verified by default"
        );
        assert_eq!(u.password, PasswordSource::DefaultEnv);
        assert_eq!(u.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(u.to_string(), "postgres://clinic@db.example.org:5432/emr");
    }

    #[test]
    fn every_option_parses_and_relative_paths_resolve_against_the_config_folder() {
        let u = parse(
            "postgresql://svc%40clinic@[::1]:6432/my%20db?sslmode=no-verify&sslrootcert=ca.pem\
             &password_file=/run/secrets/pg&connect_timeout=3&search_path=clinic,public\
             &application_name=nightly",
        )
        .unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("svc@clinic", "::1", 6432)
        );
        assert_eq!(u.database, "my db");
        assert_eq!(u.tls, TlsMode::NoVerify);
        assert_eq!(u.ca_file, Some(PathBuf::from("/etc/reqsync/ca.pem")));
        assert_eq!(u.password, PasswordSource::File("/run/secrets/pg".into()));
        assert_eq!(u.connect_timeout, Duration::from_secs(3));
        assert_eq!(u.search_path, ["clinic", "public"]);
        assert_eq!(u.application_name, "nightly");
        assert_eq!(u.endpoint(), "[::1]:6432");
        let u = parse("postgres://a@h/d?password_env=CLINIC_PG&sslmode=disable").unwrap();
        assert_eq!(u.password, PasswordSource::Env("CLINIC_PG".into()));
        assert_eq!(u.tls, TlsMode::Disable);
    }

    #[test]
    fn passwords_in_the_url_are_refused_and_never_quoted() {
        for url in [
            "postgres://clinic:s3cret@db/emr",
            "postgres://clinic:s3c@ret@db/emr",
            "postgres://clinic@db/emr?password=s3cret",
            "postgres://clinic@db/emr?sslmode=disable&password=s3cret&x=1",
        ] {
            let msg = parse(url).unwrap_err();
            assert!(msg.contains("password"), "{msg}");
            assert!(!msg.contains("s3c"), "{msg}");
            assert!(!msg.contains("ret@"), "{msg}");
        }
    }

    #[test]
    fn libpq_modes_that_skip_host_checks_are_explained_not_accepted() {
        let msg = parse("postgres://a@h/d?sslmode=require").unwrap_err();
        assert!(
            msg.contains("no-verify") && msg.contains("verify-full"),
            "{msg}"
        );
        assert!(parse("postgres://a@h/d?sslmode=sometimes").is_err());
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        let cases = [
            ("postgres://db/emr", "no user name"),
            ("postgres://a@db", "no database name"),
            ("postgres://a@db:0/x", "port"),
            ("postgres://a@db:99999/x", "port"),
            ("postgres://a@:5432/x", "no host"),
            ("postgres://a@db/x?verbose=1", "unknown option `verbose`"),
            ("postgres://a@db/x?sslmode=disable&sslmode=disable", "twice"),
            ("postgres://a@db/x?search_path=Clinic", "plain schema name"),
            ("postgres://a@db/x?connect_timeout=0", "connect_timeout"),
            (
                "postgres://a@db/x?password_env=A&password_file=f",
                "not more",
            ),
            (
                "postgres://a@db/x?password_file=f&password_secret=pg",
                "not more",
            ),
            (
                "postgres://a@db/x?password_secret=..%2Fpg",
                "not a secret name",
            ),
            ("postgres://a@%2Fvar%2Frun/x", "Unix-domain"),
            ("postgres://a%zz@db/x", "hex"),
        ];
        for (url, expected) in cases {
            let msg = parse(url).unwrap_err();
            assert!(msg.contains(expected), "{url}: {msg}");
        }
    }
}
