//! HTTP Basic auth as Rails' `http_basic_authenticate_with` checks it.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The configured extractor credentials (`EXTRACTOR_NAME` / `EXTRACTOR_PASSWORD` in ReqCheck).
#[derive(Clone)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub(crate) fn new(username: String, password: String) -> Self {
        Self { username, password }
    }

    /// Whether the request carries these credentials. Like Rails: the scheme must be exactly
    /// `Basic`, the base64 is decoded leniently (Ruby's `decode64` skips junk characters), and
    /// the decoded text splits at the first `:`; no `:` means no password, which never matches.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let Some((user, password)) = basic_credentials(value.as_bytes()) else {
            return false;
        };
        // Evaluate both comparisons so the time taken does not say which one failed.
        let user_ok = constant_time_eq(&user, self.username.as_bytes());
        let password_ok = constant_time_eq(&password, self.password.as_bytes());
        user_ok & password_ok
    }
}

/// `(user, password)` from an `Authorization` header value, or None when it is not Basic.
fn basic_credentials(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // Ruby's `authorization.split(' ', 2)`: leading whitespace skipped, split at the first run.
    let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
    let value = &value[start..];
    let scheme_end = value
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(value.len());
    if &value[..scheme_end] != b"Basic" {
        return None;
    }
    let param = &value[scheme_end..];
    let decoded = lenient_base64(param);
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Ruby's `Base64.decode64` (`unpack("m")`): characters outside the alphabet are skipped,
/// decoding stops at `=`, and a dangling last character is dropped.
fn lenient_base64(input: &[u8]) -> Vec<u8> {
    let mut clean: Vec<u8> = input
        .iter()
        .copied()
        .take_while(|b| *b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(&clean).unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    fn creds() -> Credentials {
        Credentials::new("test".into(), "te:st".into())
    }

    #[test]
    fn accepts_exact_credentials_with_colon_in_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("test:te:st");
        assert!(creds().admit(&with_auth(&format!("Basic {token}"))));
        assert!(creds().admit(&with_auth(&format!("  Basic   {token}"))));
    }

    #[test]
    fn rejects_wrong_scheme_user_password_or_missing_header() {
        let token = base64::engine::general_purpose::STANDARD.encode("test:te:st");
        assert!(!creds().admit(&with_auth(&format!("basic {token}"))));
        assert!(!creds().admit(&with_auth(&format!("Bearer {token}"))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("test:nope");
        assert!(!creds().admit(&with_auth(&format!("Basic {wrong}"))));
        let no_colon = base64::engine::general_purpose::STANDARD.encode("test");
        assert!(!creds().admit(&with_auth(&format!("Basic {no_colon}"))));
        assert!(!creds().admit(&HeaderMap::new()));
        assert!(!creds().admit(&with_auth("Basic")));
    }

    #[test]
    fn base64_is_decoded_leniently_like_ruby() {
        assert_eq!(lenient_base64(b"dGVzdDp0ZXN0"), b"test:test");
        assert_eq!(lenient_base64(b"dGVz dDp0\nZXN0"), b"test:test");
        assert_eq!(lenient_base64(b"dGVzdA"), b"test");
        assert_eq!(lenient_base64(b"dGVzdA==junk"), b"test");
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert!(!format!("{:?}", creds()).contains("te:st"));
    }
}
