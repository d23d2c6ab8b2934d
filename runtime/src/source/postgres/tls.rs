//! TLS for PostgreSQL connections: rustls with the aws-lc-rs provider named explicitly (as the
//! receiver does), certificates checked by the platform verifier plus an optional CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::{PostgresUrl, TlsMode};
use crate::source::SourceError;

/// The TLS connector a URL asks for; `None` for `sslmode=disable`.
pub(super) fn connector(url: &PostgresUrl) -> Result<Option<MakeRustlsConnect>, SourceError> {
    // Named explicitly: with more than one provider compiled in, rustls cannot pick a default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_setup(url, e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match url.tls {
        TlsMode::Disable => return Ok(None),
        TlsMode::VerifyFull => {
            let extra = match &url.ca_file {
                Some(path) => read_ca_file(url, path)?,
                None => Vec::new(),
            };
            Arc::new(
                rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
                    .map_err(|e| tls_setup(url, e.to_string()))?,
            )
        }
        TlsMode::NoVerify => Arc::new(AcceptAnyCertificate(provider)),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn tls_setup(url: &PostgresUrl, reason: String) -> SourceError {
    SourceError::Open {
        what: url.to_string(),
        reason: format!("cannot set up TLS: {reason}"),
    }
}

fn read_ca_file(
    url: &PostgresUrl,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SourceError> {
    let fail = |reason: String| SourceError::Open {
        what: url.to_string(),
        reason: format!("sslrootcert {}: {reason}", path.display()),
    };
    let pem = crate::input_file::read(path, crate::input_file::CERTIFICATES)
        .map_err(|e| fail(e.reason()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// `sslmode=no-verify`: any certificate, any name. The handshake signature is still checked, so
/// the session is encrypted to whoever holds the presented key; who that is stays unknown.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
