//! Source URLs: `sqlite://PATH` (more engines arrive with their sources).

use std::path::PathBuf;

use super::SourceError;

/// Where the clinic data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`
    Sqlite(PathBuf),
}

impl SourceUrl {
    /// Parses a URL; relative SQLite paths are resolved against `base` (the config file's folder).
    pub fn parse(url: &str, base: Option<&std::path::Path>) -> Result<Self, SourceError> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(SourceError::BadUrl {
                    url: url.to_string(),
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
        let scheme = url.split("://").next().unwrap_or(url);
        Err(SourceError::BadUrl {
            url: redact_credentials(url),
            reason: format!("scheme `{scheme}` is not supported by this build; use sqlite://PATH"),
        })
    }
}

/// Hides a password in `scheme://user:password@host` so a URL can be quoted in an error.
pub(crate) fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
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
        let e = SourceUrl::parse("postgres://u:secret@db/clinic", None).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("postgres"), "{msg}");
    }
}
