//! Source URLs: `sqlite://PATH`, `postgres://USER@HOST[:PORT]/DATABASE[?OPTIONS]`.

use std::path::PathBuf;

use super::SourceError;
use super::postgres::PostgresUrl;
use super::sqlserver::SqlServerUrl;
use crate::redact::RedactedUrl;
use crate::secret_store::{SecretName, SecretRef, SecretStore};

/// Where the clinic data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`
    Sqlite(PathBuf),
    /// `postgres://USER@HOST[:PORT]/DATABASE[?OPTIONS]` (or `postgresql://`); see
    /// [`PostgresUrl`].
    Postgres(PostgresUrl),
    /// `sqlserver://[USER@]HOST[:PORT]/DATABASE[?OPTIONS]` (or `mssql://`), with a SQL Server
    /// login or Windows authentication (`auth=`); see
    /// [`SqlServerUrl`].
    SqlServer(SqlServerUrl),
}

impl SourceUrl {
    /// Parses a URL; relative SQLite paths are resolved against `base` (the config file's folder).
    /// A `password_secret=NAME` is looked up in the default store beside `base`: for a config's
    /// URL use `Config::source`, which applies the config's `[secrets] dir`.
    pub fn parse(url: &str, base: Option<&std::path::Path>) -> Result<Self, SourceError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(SourceError::BadUrl {
                    url: RedactedUrl::new(url).to_string(),
                    reason: "no database path after sqlite://".into(),
                });
            }
            let path = PathBuf::from(rest);
            let path = match base {
                Some(base) if path.is_relative() => base.join(path),
                _ => path,
            };
            return Ok(SourceUrl::Sqlite(path));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PostgresUrl::parse(url, base).map(SourceUrl::Postgres);
        }
        if url.starts_with("sqlserver://") || url.starts_with("mssql://") {
            return SqlServerUrl::parse(url, base).map(SourceUrl::SqlServer);
        }
        Err(SourceError::BadUrl {
            url: RedactedUrl::new(url).to_string(),
            reason: "the scheme is not supported by this build; use sqlite://PATH, \
                     postgres://USER@HOST/DATABASE or sqlserver://HOST/DATABASE"
                .into(),
        })
    }
}

impl SourceUrl {
    /// The file the source's password is read from (`password_file=`), if any.
    pub fn password_file(&self) -> Option<&std::path::Path> {
        match self {
            SourceUrl::Sqlite(_) => None,
            SourceUrl::Postgres(url) => match &url.password {
                super::postgres::PasswordSource::File(path) => Some(path),
                _ => None,
            },
            SourceUrl::SqlServer(url) => match url.auth.credentials().map(|c| &c.password) {
                Some(crate::reqcheck::CredentialsSource::File(path)) => Some(path),
                _ => None,
            },
        }
    }

    /// The named secret the source's password is read from (`password_secret=`), if any.
    pub fn password_secret(&self) -> Option<&SecretRef> {
        match self {
            SourceUrl::Sqlite(_) => None,
            SourceUrl::Postgres(url) => match &url.password {
                super::postgres::PasswordSource::Store(secret) => Some(secret),
                _ => None,
            },
            SourceUrl::SqlServer(url) => match url.auth.credentials().map(|c| &c.password) {
                Some(crate::reqcheck::CredentialsSource::Store(secret)) => Some(secret),
                _ => None,
            },
        }
    }

    /// Looks a `password_secret=` up in `store` (the config's `[secrets] dir`).
    pub(crate) fn use_secret_store(&mut self, store: &SecretStore) {
        let secret = match self {
            SourceUrl::Sqlite(_) => None,
            SourceUrl::Postgres(url) => match &mut url.password {
                super::postgres::PasswordSource::Store(secret) => Some(secret),
                _ => None,
            },
            SourceUrl::SqlServer(url) => {
                match url.auth.credentials_mut().map(|c| &mut c.password) {
                    Some(crate::reqcheck::CredentialsSource::Store(secret)) => Some(secret),
                    _ => None,
                }
            }
        };
        if let Some(secret) = secret {
            secret.store = store.clone();
        }
    }
}

/// A `password_secret=NAME` option's value, looked up in the store beside `base` until
/// [`SourceUrl::use_secret_store`] says otherwise.
pub(crate) fn secret_option(
    value: &str,
    base: Option<&std::path::Path>,
) -> Result<SecretRef, String> {
    let name = SecretName::parse(value).map_err(|e| format!("password_secret: {e}"))?;
    let store = match base {
        Some(base) => SecretStore::beside_config(base),
        None => SecretStore::new(PathBuf::from(crate::secret_store::DEFAULT_DIR)),
    };
    Ok(SecretRef { name, store })
}

/// Decodes `%XX` escapes in a URL part (names with `@`, `/`, `?`, `&` or spaces), refusing a
/// `%` that is not followed by two hex digits and bytes that are not UTF-8 rather than guessing.
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    let well_formed = s.match_indices('%').all(|(i, _)| {
        s.get(i + 1..i + 3)
            .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
    });
    if !well_formed {
        return Err("a `%` must be followed by two hex digits".into());
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "percent-escapes do not decode to UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn relative_sqlite_paths_resolve_against_the_config_folder() {
        let u = SourceUrl::parse("sqlite://clinic.db", Some(Path::new("/etc/reqsync"))).unwrap();
        assert_eq!(u, SourceUrl::Sqlite("/etc/reqsync/clinic.db".into()));
        let u = SourceUrl::parse("sqlite:///var/clinic.db", Some(Path::new("/etc"))).unwrap();
        assert_eq!(u, SourceUrl::Sqlite("/var/clinic.db".into()));
    }

    #[test]
    fn unsupported_scheme_error_hides_the_password() {
        let e = SourceUrl::parse("mysql://u:secret@db/clinic", None).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("mysql"), "{msg}");
    }

    #[test]
    fn postgres_urls_parse_and_a_password_in_them_is_never_quoted() {
        let u = SourceUrl::parse("postgres://u@db/clinic", None).unwrap();
        assert!(matches!(u, SourceUrl::Postgres(p) if p.database == "clinic"));
        let e = SourceUrl::parse("postgres://u:secret@db/clinic", None).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("postgres://***@db/clinic"), "{msg}");
    }

    #[test]
    fn percent_escapes_decode_and_malformed_ones_are_refused() {
        assert_eq!(percent_decode("clinic%20db%40x").unwrap(), "clinic db@x");
        assert_eq!(percent_decode("Jos%C3%A9").unwrap(), "José");
        assert!(percent_decode("50%").is_err());
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%FF").is_err());
    }
}
