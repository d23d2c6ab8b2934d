//! Where a credential comes from, the same way in every section that takes one (`[reqcheck]`,
//! `[daemon]`, `[notify.email]`, `[[notify.webhook]]`): an environment variable (`X_env`), an
//! owner-only file (`X_file`) or a secret of the store (`X_secret`), never the config file.

use std::path::PathBuf;

use crate::reqcheck::credentials::CredentialsSource;
use crate::secret_store::{SecretName, SecretRef};

use super::{Context, Invalid};

/// Why a `KEY = "…"` password in the config file is refused, and the three ways to give it
/// instead (`key` is the key without its `_secret`/`_env`/`_file` ending; `store_name` a
/// suggested name in the secret store; `default_env` the variable read without any of them).
pub(crate) fn password_in_config(key: &str, store_name: &str, default_env: Option<&str>) -> String {
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

/// The three ways a credential can be given: `X_env`, `X_file`, `X_secret`.
pub(crate) struct Forms {
    pub(crate) env: Option<String>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) secret: Option<String>,
}

/// Where credential `what` (`username`, `proxy_password`…) of `section` comes from: at most one
/// of its forms (`default_env`, or `None`, when none is given). A secret's name is checked
/// here, so that a bad one fails when the config loads, not at the first run.
pub(crate) fn pick_source(
    section: &str,
    what: &str,
    forms: Forms,
    default_env: Option<&str>,
    cx: &Context,
) -> Result<Option<CredentialsSource>, Invalid> {
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
        return Err(Invalid::new(
            key(first),
            format!("give {what} one of `{what}_env`, `{what}_file` and `{what}_secret`, not more"),
        ));
    }
    if let Some(var) = forms.env {
        return Ok(Some(CredentialsSource::Env(var)));
    }
    if let Some(path) = forms.file {
        return Ok(Some(CredentialsSource::File(cx.rel(&path))));
    }
    if let Some(name) = forms.secret {
        let name = SecretName::parse(&name).map_err(|e| Invalid::new(key("secret"), e))?;
        return Ok(Some(CredentialsSource::Store(SecretRef {
            name,
            store: cx.secrets.clone(),
        })));
    }
    Ok(default_env.map(|var| CredentialsSource::Env(var.to_string())))
}
