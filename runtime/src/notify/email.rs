//! Sending a notice by e-mail: SMTP with STARTTLS or implicit TLS (lettre over rustls), the
//! server's certificate verified, the login read from where `[notify.email]` names it.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials as SmtpCredentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::DeliveryError;
use super::event::Notice;
use super::render;
use super::settings::{EmailConfig, SmtpTls};
use crate::reqcheck::Credentials;

/// Checks an address (`ops@clinic.example` or `Clinic ops <ops@clinic.example>`) when the
/// config loads; the reason does not quote it back.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<Mailbox>()
        .map(drop)
        .map_err(|e| format!("not an e-mail address ({e})"))
}

/// Sends `notice` to every recipient, in one message.
pub async fn send(config: &EmailConfig, notice: &Notice) -> Result<(), DeliveryError> {
    let address = |text: &str| {
        text.parse::<Mailbox>()
            .map_err(|e| DeliveryError::Email(format!("not an e-mail address ({e})")))
    };
    let mut message = Message::builder()
        .from(address(&config.from)?)
        .subject(&notice.title)
        .header(ContentType::TEXT_PLAIN);
    for to in &config.to {
        message = message.to(address(to)?);
    }
    let message = message
        .body(render::text(notice))
        .map_err(|e| DeliveryError::Email(e.to_string()))?;

    let mut tls = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = crate::input_file::read(path, crate::input_file::CERTIFICATES).map_err(|e| {
            DeliveryError::CaFile {
                path: path.clone(),
                reason: e.reason(),
            }
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| DeliveryError::CaFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| DeliveryError::Smtp(e.to_string()))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        .port(config.port)
        .tls(match config.tls {
            // `Required`: a server that does not offer STARTTLS is refused, not spoken to in
            // plain text.
            SmtpTls::StartTls => Tls::Required(tls),
            SmtpTls::Tls => Tls::Wrapper(tls),
        })
        .timeout(Some(config.timeout));
    if let Some(login) = &config.login {
        let login = Credentials::load_smtp(login)?;
        transport = transport.credentials(SmtpCredentials::new(
            login.username,
            login.password.expose().to_string(),
        ));
    }
    // lettre's own timeout covers each network operation; a server that stops answering in
    // the middle of a conversation must not hold a run (or the daemon's round) longer than
    // the per-message `timeout` either.
    match tokio::time::timeout(config.timeout, transport.build().send(message)).await {
        Ok(sent) => sent
            .map(drop)
            .map_err(|e| DeliveryError::Smtp(e.to_string())),
        Err(_) => Err(DeliveryError::Smtp(format!(
            "no answer within {} (`timeout`)",
            humantime::format_duration(config.timeout)
        ))),
    }
}
