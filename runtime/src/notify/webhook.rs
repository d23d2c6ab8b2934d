//! Sending a notice to a webhook: one JSON POST, any 2xx is delivered. The URL is a secret
//! (Teams and Slack put their token in its path): it is never logged or put in an error, and
//! reqwest's errors are stripped of it.

use std::time::Duration;

use super::DeliveryError;
use super::event::Notice;
use super::render;
use super::settings::{UrlSource, WebhookConfig};

/// Why a webhook URL is refused. Never quotes the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("not a URL (it is not shown: it may hold a token)")]
    NotAUrl,
    #[error(
        "must be https:// (plain http:// only to this machine's loopback, where nothing crosses \
         the network)"
    )]
    Insecure,
    #[error("must not hold a user name or password before the host")]
    Credentials,
}

/// Checks a webhook URL: https, or http to loopback only (the rule ReqCheck's URL follows).
pub(crate) fn check_url(text: &str) -> Result<reqwest::Url, WebhookUrlError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|_| WebhookUrlError::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookUrlError::Credentials);
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if crate::reqcheck::client::is_loopback(&url) => Ok(url),
        "http" => Err(WebhookUrlError::Insecure),
        _ => Err(WebhookUrlError::NotAUrl),
    }
}

/// The webhook's URL, read from where it is configured, and checked.
pub fn url(config: &WebhookConfig) -> Result<reqwest::Url, DeliveryError> {
    let text = match &config.url {
        UrlSource::Config(url) => url.clone(),
        UrlSource::Secret(source) => source.read("webhook_url")?,
    };
    Ok(check_url(&text)?)
}

/// Posts `notice`, in the webhook's format.
pub async fn send(config: &WebhookConfig, notice: &Notice) -> Result<(), DeliveryError> {
    let url = url(config)?;
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(Duration::from_secs(10).min(config.timeout))
        // A redirect could carry the notice somewhere the operator did not configure.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliveryError::Http(e.without_url().to_string()))?;
    let response = client
        .post(url)
        .json(&render::webhook_body(notice, config.format))
        .send()
        .await
        .map_err(|e| DeliveryError::Http(error_text(e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(status.as_u16()))
    }
}

/// reqwest's error without the URL, with its cause (connection refused, timed out …).
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
