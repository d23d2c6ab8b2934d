//! HTTPS for the receiver: rustls with the aws-lc-rs provider named explicitly.
//!
//! axum-server is built with `tls-rustls-no-provider`, so nothing picks a crypto provider for
//! us. Building the `ServerConfig` with an explicit provider (instead of installing a
//! process-wide default) keeps the receiver from changing global state of whatever program
//! embeds it.

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsFiles;
use super::error::ReceiverError;

/// Reads the PEM certificate chain and key and builds the server's TLS configuration.
pub(crate) fn server_config(files: &TlsFiles) -> Result<RustlsConfig, ReceiverError> {
    let cert_err = |reason: String| ReceiverError::TlsCert {
        path: files.cert.clone(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE block found".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| ReceiverError::TlsKey {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ReceiverError::TlsConfig)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(ReceiverError::TlsConfig)?;
    // The router is served over HTTP/1.1 only (axum is built without http2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
