//! ReqCheck credentials: read from the environment, from files or from the secret store
//! (`crate::secret_store`), never from the config file, and never printed.

use std::path::PathBuf;

use crate::secret_store::{SecretRef, SecretStoreError};

/// A secret string. Debug and Display print `***`, so a secret cannot reach a log line,
/// an error or a panic message by formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// HTTP Basic credentials for ReqCheck.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// Where they were read (`None`: the program gave them itself), so that a server refusing
    /// them can be answered with what to check. Names variables, files and secrets only.
    pub origin: Option<CredentialsSources>,
}

/// Where one credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsSource {
    Env(String),
    File(PathBuf),
    /// A named secret (`password_secret = "NAME"`): systemd's credentials or the store.
    Store(SecretRef),
}

/// `what` is the credential's key in `[reqcheck]` (`username`, `proxy_password`, …).
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "{} is not set: export {var} (or set `{key}_file` or `{key}_secret` in [{section}])",
        subject(what),
        key = key(what),
        section = section(what)
    )]
    EnvMissing { what: &'static str, var: String },
    /// `reason` names the file.
    #[error("{}: {reason}", subject(what))]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{} is empty", subject(what))]
    Empty { what: &'static str },
    /// `error` names the secret and where it was looked for, never its value.
    #[error("{} (`{}_secret`): {error}", subject(what), key(what))]
    Store {
        what: &'static str,
        error: SecretStoreError,
    },
}

/// "the password for ReqCheck", "the password for the proxy", "the password for the SMTP
/// server", "the URL of the webhook", "the password of the daemon's status page".
fn subject(what: &str) -> String {
    if let Some(what) = what.strip_prefix("proxy_") {
        format!("the {what} for the proxy")
    } else if let Some(what) = what.strip_prefix("smtp_") {
        format!("the {what} for the SMTP server")
    } else if what == "webhook_url" {
        "the webhook's URL".to_string()
    } else if let Some(what) = what.strip_prefix("status_") {
        format!("the {what} of the daemon's status page")
    } else {
        format!("the {what} for ReqCheck")
    }
}

/// The config key a credential is named by, without its `_env`/`_file`/`_secret` suffix:
/// `[notify.email]`'s keys are `username_*`/`password_*`, a webhook's `url_*`.
fn key(what: &str) -> &str {
    what.strip_prefix("smtp_")
        .or_else(|| what.strip_prefix("webhook_"))
        .unwrap_or(what)
}

/// The config section a credential's keys live in.
fn section(what: &str) -> &'static str {
    if what.starts_with("smtp_") {
        "notify.email"
    } else if what.starts_with("webhook_") {
        "[notify.webhook]]"
    } else if what.starts_with("status_") {
        "daemon"
    } else {
        "reqcheck"
    }
}

impl CredentialsSource {
    /// Where the credential is read, for messages: the variable's, file's or secret's name.
    pub fn describe(&self) -> String {
        match self {
            CredentialsSource::Env(var) => format!("the environment variable {var}"),
            CredentialsSource::File(path) => format!("the file {}", path.display()),
            CredentialsSource::Store(secret) => format!(
                "the stored secret `{}` (`reqsync secret set {}`)",
                secret.name, secret.name
            ),
        }
    }

    /// The status page's password (`[daemon] status_password_*`).
    pub fn read_status_password(&self) -> Result<Secret, CredentialsError> {
        self.read("status_password").map(Secret)
    }

    /// The credential's value; `what` names it in errors (`password`, `smtp_password`, …).
    pub fn read(&self, what: &'static str) -> Result<String, CredentialsError> {
        let value = match self {
            CredentialsSource::Env(var) => {
                std::env::var(var).map_err(|_| CredentialsError::EnvMissing {
                    what,
                    var: var.clone(),
                })?
            }
            CredentialsSource::File(path) => crate::secret_file::read(path)
                .map_err(|e| CredentialsError::File {
                    what,
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                // A trailing newline is how editors and `echo` write files, not part of the secret.
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            // Trimmed, and refused when empty, by the store itself.
            CredentialsSource::Store(secret) => {
                return secret
                    .read()
                    .map(|found| found.secret.expose().to_string())
                    .map_err(|error| CredentialsError::Store { what, error });
            }
        };
        if value.is_empty() {
            return Err(CredentialsError::Empty { what });
        }
        Ok(value)
    }
}

impl Credentials {
    pub fn load(
        user: &CredentialsSource,
        password: &CredentialsSource,
    ) -> Result<Self, CredentialsError> {
        Ok(Self {
            username: user.read("username")?,
            password: Secret(password.read("password")?),
            origin: Some(CredentialsSources {
                username: user.clone(),
                password: password.clone(),
            }),
        })
    }

    /// What to check when a server refuses these credentials: where they were read.
    pub fn where_to_check(&self) -> String {
        match &self.origin {
            Some(sources) => format!(
                "the user name in {} and the password in {}",
                sources.username.describe(),
                sources.password.describe()
            ),
            None => "the user name and password reqsync was given".to_string(),
        }
    }

    /// The SMTP server's login (`[notify.email] username_*`, `password_*`).
    pub(crate) fn load_smtp(sources: &CredentialsSources) -> Result<Self, CredentialsError> {
        Ok(Self {
            username: sources.username.read("smtp_username")?,
            password: Secret(sources.password.read("smtp_password")?),
            origin: Some(sources.clone()),
        })
    }

    /// The proxy's credentials (`[reqcheck] proxy_username_*`, `proxy_password_*`).
    pub fn load_proxy(sources: &CredentialsSources) -> Result<Self, CredentialsError> {
        Ok(Self {
            username: sources.username.read("proxy_username")?,
            password: Secret(sources.password.read("proxy_password")?),
            origin: Some(sources.clone()),
        })
    }
}

/// Where a user name and its password come from: the proxy's, which are optional as a pair
/// (ReqCheck's always exist, with `REQCHECK_USERNAME`/`REQCHECK_PASSWORD` as defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsSources {
    pub username: CredentialsSource,
    pub password: CredentialsSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let c = Credentials {
            username: "u".into(),
            password: Secret::new("hunter2"),
            origin: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{}", c.password), "***");
    }

    #[test]
    fn where_to_check_names_each_source_and_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("reqcheck-password");
        reqsync_private_fs::write_atomically(&file, b"hunter2\n").unwrap();
        let user = CredentialsSource::Env("PATH".into());
        let c = Credentials::load(&user, &CredentialsSource::File(file.clone())).unwrap();
        let check = c.where_to_check();
        assert_eq!(
            check,
            format!(
                "the user name in the environment variable PATH and the password in the file {}",
                file.display()
            )
        );
        assert!(!check.contains("hunter2"), "{check}");
        let given = Credentials { origin: None, ..c };
        assert_eq!(
            given.where_to_check(),
            "the user name and password reqsync was given"
        );
    }

    #[test]
    fn password_file_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        reqsync_private_fs::write_atomically(&p, b" s3cret \n").unwrap();
        let c = Credentials::load(
            &CredentialsSource::File(p.clone()),
            &CredentialsSource::File(p),
        )
        .unwrap();
        assert_eq!(c.password.expose(), " s3cret ");
    }

    #[test]
    fn missing_env_var_error_names_the_variable() {
        let e = CredentialsSource::Env("REQSYNC_TEST_SURELY_UNSET".into())
            .read("password")
            .unwrap_err();
        assert!(e.to_string().contains("REQSYNC_TEST_SURELY_UNSET"));
        assert!(e.to_string().contains("password for ReqCheck"), "{e}");
    }

    #[test]
    fn proxy_credential_errors_name_the_proxy_and_its_keys() {
        let sources = CredentialsSources {
            username: CredentialsSource::Env("REQSYNC_TEST_SURELY_UNSET_USER".into()),
            password: CredentialsSource::Env("REQSYNC_TEST_SURELY_UNSET".into()),
        };
        let e = Credentials::load_proxy(&sources).unwrap_err().to_string();
        assert!(e.contains("the username for the proxy"), "{e}");
        assert!(e.contains("REQSYNC_TEST_SURELY_UNSET_USER"), "{e}");
        assert!(e.contains("`proxy_username_file`"), "{e}");
    }

    #[test]
    fn a_stored_password_is_read_and_its_errors_name_the_key_and_the_command() {
        use crate::secret_store::{SecretName, SecretStore, WriteOptions};
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let stored = |name: &str| {
            CredentialsSource::Store(SecretRef {
                name: SecretName::parse(name).unwrap(),
                store: store.clone(),
            })
        };
        store
            .write(
                &SecretName::parse("reqcheck").unwrap(),
                &Secret::new("hunter2"),
                &WriteOptions::default(),
            )
            .unwrap();
        // (Unless this test runs under systemd with credentials.)
        if std::env::var_os(crate::secret_store::CREDENTIALS_DIRECTORY).is_some() {
            return;
        }
        let c =
            Credentials::load(&CredentialsSource::Env("PATH".into()), &stored("reqcheck")).unwrap();
        assert_eq!(c.password.expose(), "hunter2");
        let e = Credentials::load(&CredentialsSource::Env("PATH".into()), &stored("missing"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the password for ReqCheck (`password_secret`)"),
            "{e}"
        );
        assert!(e.contains("reqsync secret set missing"), "{e}");
    }
}
