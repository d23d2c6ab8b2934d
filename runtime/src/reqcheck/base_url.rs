//! ReqCheck's base URL, checked the same way wherever it is given: `[reqcheck] url` in the
//! config file, `--reqcheck-url` on the command line, or a program building a
//! [`ReqCheckClient`](super::ReqCheckClient) itself.

use crate::config::{DEFAULT_PASSWORD_ENV, DEFAULT_USERNAME_ENV};

/// Why a ReqCheck URL is refused. The messages never quote the URL: the reason for refusing it
/// may be the password in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("not a URL ({reason}); write e.g. https://reqcheck.example.org")]
    NotAUrl { reason: String },
    /// The scheme is not named either: in `user:password@host` it would be the user name.
    #[error("use an https:// (or, for a local receiver, http://) URL")]
    Scheme,
    #[error(
        "a user name or password in the ReqCheck URL is refused (URLs end up in configs, shell \
         histories, process lists and logs): remove it from the URL, and give the credentials \
         in {} and {}, or name their sources with \
         `username_env`/`username_file`/`username_secret` and \
         `password_env`/`password_file`/`password_secret` in [reqcheck]",
        DEFAULT_USERNAME_ENV,
        DEFAULT_PASSWORD_ENV
    )]
    Credentials,
}

/// Parses ReqCheck's base URL: `http` or `https`, and no user part. The credentials travel
/// in the `Authorization` header only, read from where `[reqcheck]` says.
pub fn parse_base_url(text: &str) -> Result<reqwest::Url, BaseUrlError> {
    let url = reqwest::Url::parse(text).map_err(|e| BaseUrlError::NotAUrl {
        // The url crate's messages name the problem ("invalid port number"), not the text.
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BaseUrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BaseUrlError::Credentials);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_http_urls_without_credentials_are_accepted() {
        for url in [
            "https://reqcheck.example.org",
            "https://reqcheck.example.org:8443/api/",
            "http://127.0.0.1:3000",
        ] {
            assert_eq!(
                parse_base_url(url)
                    .expect(url)
                    .as_str()
                    .trim_end_matches('/'),
                url.trim_end_matches('/')
            );
        }
    }

    #[test]
    fn a_user_or_password_in_the_url_is_refused_without_quoting_it() {
        for url in [
            "http://user:s3cret@127.0.0.1:3000",
            "https://user@reqcheck.example.org",
            "https://:s3cret@reqcheck.example.org",
            "https://us%65r:s3cret@reqcheck.example.org/",
        ] {
            let e = parse_base_url(url).expect_err(url);
            assert_eq!(e, BaseUrlError::Credentials, "{url}");
            let msg = e.to_string();
            assert!(!msg.contains("s3cret") && !msg.contains("user@"), "{msg}");
            assert!(msg.contains("REQCHECK_PASSWORD"), "{msg}");
        }
    }

    #[test]
    fn other_schemes_and_non_urls_are_refused() {
        assert_eq!(
            parse_base_url("ftp://reqcheck.example.org"),
            Err(BaseUrlError::Scheme)
        );
        // Read as scheme `user`: neither part is quoted.
        let e = parse_base_url("user:s3cret@reqcheck.example.org").expect_err("no scheme");
        assert_eq!(e, BaseUrlError::Scheme);
        assert!(
            !e.to_string().contains("user") && !e.to_string().contains("s3cret"),
            "{e}"
        );
        assert!(matches!(
            parse_base_url("not a url"),
            Err(BaseUrlError::NotAUrl { .. })
        ));
    }
}
