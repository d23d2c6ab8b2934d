//! Reaching ReqCheck through an HTTP proxy, as health-department networks often require.
//!
//! **Which proxy.** `[reqcheck] proxy` decides ([`ProxySetting`]):
//! - a URL (`http://proxy.example:3128`, or `https://` for a proxy spoken to over TLS): every
//!   request goes through it, a loopback ReqCheck too (it was asked for explicitly);
//! - `"none"`: every request goes directly, whatever the environment says;
//! - not set (or `"system"`): the system's settings, read the way curl and reqwest read them
//!   ([`SystemProxy`]): `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` (upper or
//!   lower case), and where none of these is set, the Windows proxy (Internet Options, the
//!   current user's registry) or the macOS one. A loopback ReqCheck (the development receiver,
//!   a local TLS forwarder) is reached directly unless `NO_PROXY` is set: a proxy elsewhere
//!   cannot reach this machine's loopback, and a shell that exports `HTTPS_PROXY` must not
//!   break `reqsync receiver` tests. A `NO_PROXY` that is set (even empty) is the user's own
//!   list and decides alone, as with curl.
//!
//! The decision is made once, when the client is built, for ReqCheck's URL (the client talks
//! to nothing else: redirects are never followed), and handed to reqwest as an explicit proxy
//! or as "no proxy". So the proxy that error messages name is the one the connection used.
//!
//! **What the proxy can see.** For an `https://` ReqCheck, reqwest asks the proxy for a tunnel
//! (`CONNECT host:port`) and then speaks TLS with ReqCheck *inside* it: the certificate
//! checked is ReqCheck's, against the same roots (and `ca_file`) as without a proxy, so the
//! proxy sees the host name and port and the amount of traffic, never a header, a body or the
//! ReqCheck password, and cannot answer in ReqCheck's place. (A plain `http://` ReqCheck, only
//! ever allowed on loopback or with `allow_insecure_http`, is forwarded as plain HTTP: the
//! proxy then sees everything, as the network would.)
//!
//! **Credentials.** The proxy's user name and password come from the environment or files
//! (`proxy_username_env`/`_file`, `proxy_password_env`/`_file`), never from the config file: a
//! proxy URL with a user part is refused ([`ProxyUrlError::Credentials`]). They travel in the
//! `Proxy-Authorization` header of the `CONNECT` request only, marked sensitive. A user part in
//! `HTTPS_PROXY` (the Unix convention) is used, but never shown: every proxy URL this module
//! hands out has none, and messages print it through [`RedactedUrl`] all the same.

use std::fmt;

use base64::Engine as _;
use hyper_util::client::proxy::matcher::Matcher;
use reqwest::header::HeaderValue;

use crate::redact::RedactedUrl;

use super::Credentials;

/// `[reqcheck] proxy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// Not set, or `"system"`: the environment's or the operating system's proxy.
    #[default]
    System,
    /// `"none"`: always connect directly.
    None,
    /// An `http://` or `https://` proxy URL without a user part, path or query.
    Url(String),
}

/// Why a `[reqcheck] proxy` value is refused. The messages never quote the value: what is
/// wrong with it may be the password in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyUrlError {
    #[error(
        "not a URL ({reason}); write e.g. \"http://proxy.example:3128\", or \"none\" to connect \
         directly"
    )]
    NotAUrl { reason: String },
    #[error(
        "use an http:// (or https://) proxy URL with its port, e.g. \"http://proxy.example:3128\": \
         reqsync asks the proxy for a tunnel with HTTP CONNECT (SOCKS is not spoken)"
    )]
    Scheme,
    #[error(
        "a user name or password in the proxy URL is refused (URLs end up in configs, shell \
         histories, process lists and logs): remove it from the URL, and name where the proxy's \
         credentials are with `proxy_username_env`/`proxy_username_file` and \
         `proxy_password_env`/`proxy_password_file` (or the `_secret` forms) in [reqcheck]"
    )]
    Credentials,
    /// A PAC script's address is the usual mistake here.
    #[error(
        "a proxy URL names the proxy's host and port only, e.g. \"http://proxy.example:3128\"; a \
         path or query is not read (an automatic-configuration (PAC) script is not supported: \
         name the proxy it picks)"
    )]
    Path,
}

impl ProxySetting {
    /// Parses `[reqcheck] proxy`: `"none"`, `"system"`, or a proxy URL (see [`parse_proxy_url`]).
    pub fn parse(text: &str) -> Result<Self, ProxyUrlError> {
        match text {
            "none" => Ok(ProxySetting::None),
            "system" => Ok(ProxySetting::System),
            url => parse_proxy_url(url).map(|u| ProxySetting::Url(u.to_string())),
        }
    }
}

/// Parses a proxy URL: `http` or `https`, a host, no user part, no path, query or fragment.
pub(crate) fn parse_proxy_url(text: &str) -> Result<reqwest::Url, ProxyUrlError> {
    let url = reqwest::Url::parse(text).map_err(|e| ProxyUrlError::NotAUrl {
        // The url crate's messages name the problem ("invalid port number"), not the text.
        reason: e.to_string(),
    })?;
    // `proxy.example:3128` parses with the scheme `proxy.example`; `user:pw@host`, with `user`.
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ProxyUrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ProxyUrlError::Credentials);
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ProxyUrlError::Path);
    }
    Ok(url)
}

/// The proxy settings the system gives this process: the environment variables, and where
/// they name none, the operating system's settings (reqwest's `system-proxy` feature: the
/// Windows registry, macOS's SystemConfiguration). Read through hyper-util's matcher, the very
/// code reqwest uses for its own system proxy, so both read them alike.
pub(crate) struct SystemProxy {
    matcher: Matcher,
    /// Whether `NO_PROXY`/`no_proxy` is set (even empty): then it alone decides about
    /// loopback, otherwise loopback is reached directly.
    no_proxy_set: bool,
    /// Names the variable a proxy for `http`/`https` came from, for messages.
    source: fn(&str) -> Option<&'static str>,
}

impl fmt::Debug for SystemProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // hyper-util's Debug prints proxy URLs without their user part.
        f.debug_struct("SystemProxy")
            .field("matcher", &self.matcher)
            .field("no_proxy_set", &self.no_proxy_set)
            .finish()
    }
}

/// The variables hyper-util reads for each scheme, in its order (`ALL_PROXY` is the fallback).
const HTTPS_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
const HTTP_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

impl SystemProxy {
    /// This process's settings.
    pub fn read() -> Self {
        Self {
            matcher: Matcher::from_system(),
            no_proxy_set: std::env::var_os("NO_PROXY").is_some()
                || std::env::var_os("no_proxy").is_some(),
            source: |scheme| {
                let vars = if scheme == "https" {
                    &HTTPS_VARS
                } else {
                    &HTTP_VARS
                };
                vars.iter()
                    .copied()
                    .find(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
            },
        }
    }

    /// Settings as if the environment held exactly these values (`HTTPS_PROXY`, `HTTP_PROXY`,
    /// `NO_PROXY`; `None` is unset), for tests that must not touch the process's environment.
    #[cfg(test)]
    pub(crate) fn from_values(
        https: Option<&str>,
        http: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Self {
        let mut builder = Matcher::builder();
        if let Some(v) = https {
            builder = builder.https(v.to_string());
        }
        if let Some(v) = http {
            builder = builder.http(v.to_string());
        }
        if let Some(v) = no_proxy {
            builder = builder.no(v.to_string());
        }
        Self {
            matcher: builder.build(),
            no_proxy_set: no_proxy.is_some(),
            source: |scheme| {
                Some(if scheme == "https" {
                    "HTTPS_PROXY"
                } else {
                    "HTTP_PROXY"
                })
            },
        }
    }
}

/// Where the proxy in use was configured, for messages that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyOrigin {
    /// `[reqcheck] proxy`.
    Config,
    /// An environment variable (`HTTPS_PROXY`, `ALL_PROXY`, …).
    Env(&'static str),
    /// The operating system's settings (the Windows registry, macOS).
    System,
}

impl ProxyOrigin {
    /// What a user changes to fix the proxy: the setting it came from, and the way out.
    pub(crate) fn to_fix(&self) -> String {
        match self {
            ProxyOrigin::Config => "`[reqcheck] proxy`".into(),
            other => format!(
                "{other} (or set `[reqcheck] proxy` to the proxy to use, or to \"none\" to \
                 connect directly)"
            ),
        }
    }
}

impl fmt::Display for ProxyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyOrigin::Config => f.write_str("`[reqcheck] proxy`"),
            ProxyOrigin::Env(var) => write!(f, "{var}"),
            ProxyOrigin::System => f.write_str("the system's proxy settings"),
        }
    }
}

/// How the proxy's credentials were given, so that a 407 can say which ones to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyLogin {
    /// None: the proxy was asked without `Proxy-Authorization`.
    None,
    /// `proxy_username_*` / `proxy_password_*` in `[reqcheck]`; `check` names the variables,
    /// files or secrets they were read from ([`Credentials::where_to_check`]), never a value.
    Configured { check: String },
    /// The user part of the proxy URL in the environment (`http://user:pw@proxy:3128`).
    InUrl,
}

/// The proxy a client's requests go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// `scheme://host:port/`, never with a user part.
    pub url: String,
    pub origin: ProxyOrigin,
    pub login: ProxyLogin,
}

impl ProxyRoute {
    /// The proxy's URL as messages and logs show it.
    pub fn shown(&self) -> String {
        RedactedUrl::new(self.url.trim_end_matches('/')).to_string()
    }

    /// `the proxy http://proxy.example:3128 (from HTTPS_PROXY)`, for messages.
    pub fn described(&self) -> String {
        let from = match &self.origin {
            ProxyOrigin::Config => "set in `[reqcheck] proxy`".to_string(),
            other => format!("from {other}"),
        };
        format!("the proxy {} ({from})", self.shown())
    }
}

/// Where a client's connections to ReqCheck go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct(Direct),
    Proxy(ProxyRoute),
}

/// Why a client connects directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// `proxy = "none"`.
    Configured,
    /// No system proxy applies to ReqCheck's URL (none set, or `NO_PROXY` lists it).
    NoSystemProxy,
    /// ReqCheck is on loopback and `NO_PROXY` is not set.
    Loopback,
}

impl Route {
    pub fn proxy(&self) -> Option<&ProxyRoute> {
        match self {
            Route::Proxy(p) => Some(p),
            Route::Direct(_) => None,
        }
    }
}

/// Why no route could be made from the proxy settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("`[reqcheck] proxy`: {0}")]
    Url(#[from] ProxyUrlError),
    /// `HTTPS_PROXY=socks5://…` and the like.
    #[error(
        "{origin} names a {scheme} proxy ({proxy}) for ReqCheck, but reqsync reaches ReqCheck \
         through an HTTP proxy only (HTTP CONNECT): set `[reqcheck] proxy` to the HTTP proxy to \
         use, or to \"none\" to connect directly"
    )]
    UnsupportedScheme {
        origin: ProxyOrigin,
        scheme: String,
        proxy: String,
    },
    #[error("the proxy's credentials cannot be sent: {0}")]
    Credentials(String),
}

/// Decides the route to `base` (ReqCheck's URL), and the `Proxy-Authorization` value to send
/// the proxy, if any. `credentials` (from `[reqcheck] proxy_username_*`/`proxy_password_*`)
/// take the place of any user part in a system proxy's URL.
pub(crate) fn resolve(
    setting: &ProxySetting,
    credentials: Option<&Credentials>,
    base: &reqwest::Url,
    system: &SystemProxy,
) -> Result<(Route, Option<HeaderValue>), ProxyError> {
    let configured = credentials.map(basic_auth).transpose()?;
    let login = |in_url: bool| match (credentials, in_url) {
        (Some(given), _) => ProxyLogin::Configured {
            check: given.where_to_check(),
        },
        (None, true) => ProxyLogin::InUrl,
        (None, false) => ProxyLogin::None,
    };
    match setting {
        ProxySetting::None => Ok((Route::Direct(Direct::Configured), None)),
        ProxySetting::Url(text) => {
            let url = parse_proxy_url(text)?;
            let route = ProxyRoute {
                url: url.to_string(),
                origin: ProxyOrigin::Config,
                login: login(false),
            };
            Ok((Route::Proxy(route), configured))
        }
        ProxySetting::System => {
            if super::client::is_loopback(base) && !system.no_proxy_set {
                return Ok((Route::Direct(Direct::Loopback), None));
            }
            let Some(intercept) = base
                .as_str()
                .parse::<hyper::Uri>()
                .ok()
                .and_then(|uri| system.matcher.intercept(&uri))
            else {
                return Ok((Route::Direct(Direct::NoSystemProxy), None));
            };
            let origin = match (system.source)(base.scheme()) {
                Some(var) => ProxyOrigin::Env(var),
                None => ProxyOrigin::System,
            };
            // hyper-util keeps the user part out of the URI it hands back.
            let uri = intercept.uri();
            let scheme = uri.scheme_str().unwrap_or_default();
            if !matches!(scheme, "http" | "https") {
                return Err(ProxyError::UnsupportedScheme {
                    origin,
                    scheme: scheme.to_string(),
                    proxy: RedactedUrl::new(&uri.to_string()).to_string(),
                });
            }
            let in_url = intercept.basic_auth().cloned();
            let route = ProxyRoute {
                url: uri.to_string(),
                origin,
                login: login(in_url.is_some()),
            };
            Ok((Route::Proxy(route), configured.or(in_url)))
        }
    }
}

/// `Basic base64(user:password)`, marked sensitive (hyper leaves it out of its debug output).
fn basic_auth(credentials: &Credentials) -> Result<HeaderValue, ProxyError> {
    // RFC 7617: the user-id cannot contain a colon; the password may.
    if credentials.username.contains(':') {
        return Err(ProxyError::Credentials(
            "the proxy's user name contains a `:`, which Basic authentication cannot carry".into(),
        ));
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose()
    ));
    let mut value = HeaderValue::from_str(&format!("Basic {token}"))
        // Base64 is always a valid header value; the message must not quote it anyway.
        .map_err(|_| ProxyError::Credentials("not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reqcheck::Secret;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("url")
    }

    const REMOTE: &str = "https://reqcheck.example.org";

    #[test]
    fn none_system_and_proxy_urls_are_accepted() {
        assert_eq!(ProxySetting::parse("none"), Ok(ProxySetting::None));
        assert_eq!(ProxySetting::parse("system"), Ok(ProxySetting::System));
        assert_eq!(
            ProxySetting::parse("http://proxy.example:3128"),
            Ok(ProxySetting::Url("http://proxy.example:3128/".into()))
        );
        assert_eq!(
            ProxySetting::parse("https://proxy.example:8443/"),
            Ok(ProxySetting::Url("https://proxy.example:8443/".into()))
        );
        assert!(ProxySetting::parse("http://[::1]:3128").is_ok());
    }

    #[test]
    fn a_user_or_password_in_the_proxy_url_is_refused_without_quoting_it() {
        for text in [
            "http://user:s3cret@proxy.example:3128",
            "http://s3cret@proxy.example:3128",
            "https://:s3cret@proxy.example:3128",
        ] {
            let e = ProxySetting::parse(text).expect_err(text);
            assert_eq!(e, ProxyUrlError::Credentials, "{text}");
            let message = e.to_string();
            assert!(!message.contains("s3cret"), "{message}");
            assert!(message.contains("proxy_password_env"), "{message}");
        }
    }

    #[test]
    fn socks_pac_files_and_bare_host_ports_are_refused() {
        for text in [
            "socks5://proxy.example:1080",
            "proxy.example:3128",
            "ftp://p",
        ] {
            assert_eq!(
                ProxySetting::parse(text),
                Err(ProxyUrlError::Scheme),
                "{text}"
            );
        }
        for text in [
            "http://wpad.example/proxy.pac",
            "http://proxy.example:3128/?x=1",
            "http://proxy.example:3128/#f",
        ] {
            assert_eq!(
                ProxySetting::parse(text),
                Err(ProxyUrlError::Path),
                "{text}"
            );
        }
        for text in ["", "None", "http://proxy.example:99999"] {
            assert!(
                matches!(
                    ProxySetting::parse(text),
                    Err(ProxyUrlError::NotAUrl { .. })
                ),
                "{text}"
            );
        }
    }

    fn route(
        setting: &ProxySetting,
        base: &str,
        system: &SystemProxy,
    ) -> (Route, Option<HeaderValue>) {
        resolve(setting, None, &url(base), system).expect("route")
    }

    #[test]
    fn an_explicit_proxy_carries_every_request_loopback_included() {
        let system = SystemProxy::from_values(Some("http://env-proxy:8080"), None, None);
        let setting = ProxySetting::Url("http://proxy.example:3128/".into());
        for base in [REMOTE, "https://127.0.0.1:8443", "http://localhost:3000"] {
            let (r, auth) = route(&setting, base, &system);
            let p = r.proxy().expect(base);
            assert_eq!(p.url, "http://proxy.example:3128/");
            assert_eq!(p.origin, ProxyOrigin::Config);
            assert_eq!(p.login, ProxyLogin::None);
            assert!(auth.is_none());
        }
    }

    #[test]
    fn none_ignores_the_environment() {
        let system = SystemProxy::from_values(Some("http://env-proxy:8080"), None, Some(""));
        assert_eq!(
            route(&ProxySetting::None, REMOTE, &system).0,
            Route::Direct(Direct::Configured)
        );
    }

    #[test]
    fn the_system_proxy_applies_per_scheme_and_honours_no_proxy() {
        let system = SystemProxy::from_values(
            Some("http://env-proxy:8080"),
            None,
            Some("internal.example"),
        );
        let (r, _) = route(&ProxySetting::System, REMOTE, &system);
        let p = r.proxy().expect("proxied");
        assert_eq!(p.url, "http://env-proxy:8080/");
        assert_eq!(p.origin, ProxyOrigin::Env("HTTPS_PROXY"));
        // HTTPS_PROXY is not for http:// URLs.
        assert_eq!(
            route(
                &ProxySetting::System,
                "http://reqcheck.example.org",
                &system
            )
            .0,
            Route::Direct(Direct::NoSystemProxy)
        );
        assert_eq!(
            route(
                &ProxySetting::System,
                "https://reqcheck.internal.example",
                &system
            )
            .0,
            Route::Direct(Direct::NoSystemProxy)
        );
        let nothing = SystemProxy::from_values(None, None, None);
        assert_eq!(
            route(&ProxySetting::System, REMOTE, &nothing).0,
            Route::Direct(Direct::NoSystemProxy)
        );
    }

    #[test]
    fn a_loopback_reqcheck_skips_the_system_proxy_unless_no_proxy_is_set() {
        let unset = SystemProxy::from_values(Some("http://env-proxy:8080"), None, None);
        for base in [
            "https://127.0.0.1:8443",
            "https://localhost:8443",
            "https://[::1]",
        ] {
            assert_eq!(
                route(&ProxySetting::System, base, &unset).0,
                Route::Direct(Direct::Loopback),
                "{base}"
            );
        }
        // A NO_PROXY that is set is the user's list, and decides alone.
        let empty = SystemProxy::from_values(Some("http://env-proxy:8080"), None, Some(""));
        assert!(
            route(&ProxySetting::System, "https://127.0.0.1:8443", &empty)
                .0
                .proxy()
                .is_some()
        );
        let listed = SystemProxy::from_values(
            Some("http://env-proxy:8080"),
            None,
            Some("localhost,127.0.0.1"),
        );
        assert_eq!(
            route(&ProxySetting::System, "https://127.0.0.1:8443", &listed).0,
            Route::Direct(Direct::NoSystemProxy)
        );
    }

    #[test]
    fn credentials_from_the_environment_url_are_used_but_never_shown() {
        let system =
            SystemProxy::from_values(Some("http://clinic:s3cret@env-proxy:8080"), None, None);
        let (r, auth) = route(&ProxySetting::System, REMOTE, &system);
        let p = r.proxy().expect("proxied");
        assert_eq!(p.url, "http://env-proxy:8080/");
        assert_eq!(p.login, ProxyLogin::InUrl);
        let auth = auth.expect("auth from the URL");
        assert!(auth.is_sensitive());
        assert!(!format!("{r:?} {auth:?}").contains("s3cret"));
        // Configured credentials take the URL's place.
        let configured = Credentials {
            username: "u".into(),
            password: Secret::new("p"),
            origin: None,
        };
        let (r, auth) = resolve(
            &ProxySetting::System,
            Some(&configured),
            &url(REMOTE),
            &system,
        )
        .expect("route");
        assert_eq!(
            r.proxy().map(|p| p.login.clone()),
            Some(ProxyLogin::Configured {
                check: "the user name and password reqsync was given".into()
            })
        );
        // base64("u:p")
        assert_eq!(auth.expect("auth"), "Basic dTpw");
    }

    #[test]
    fn a_socks_proxy_from_the_environment_is_refused_by_name() {
        let system = SystemProxy::from_values(Some("socks5://u:s3cret@tor:9050"), None, None);
        let e = resolve(&ProxySetting::System, None, &url(REMOTE), &system)
            .expect_err("socks is not spoken");
        let message = e.to_string();
        assert!(message.contains("HTTPS_PROXY"), "{message}");
        assert!(message.contains("socks5"), "{message}");
        assert!(message.contains("[reqcheck] proxy"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn a_user_name_with_a_colon_is_refused() {
        let credentials = Credentials {
            username: "do:main".into(),
            password: Secret::new("s3cret"),
            origin: None,
        };
        let e = resolve(
            &ProxySetting::Url("http://proxy.example:3128/".into()),
            Some(&credentials),
            &url(REMOTE),
            &SystemProxy::from_values(None, None, None),
        )
        .expect_err("colon");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
