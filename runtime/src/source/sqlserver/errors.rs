//! Turning driver and server errors into messages that say what to do.
//!
//! SQL Server's own messages are shown only for error numbers whose text quotes SQL, never data:
//! a conversion error such as 245 ("Conversion failed when converting the varchar value '…'")
//! quotes a row value, and row values are protected health information.

use std::io::ErrorKind;
use std::time::Duration;

use super::config::{Auth, SqlServerUrl, TlsMode, Trust, UserSource};
use crate::source::ConnectFailure;

/// Server errors whose message names only SQL text, objects or settings.
const MESSAGE_SAFE: &[u32] = &[
    102,  // Incorrect syntax near '…'
    103,  // identifier too long
    105,  // Unclosed quotation mark after the character string '…' (SQL text)
    137,  // Must declare the scalar variable
    156,  // Incorrect syntax near the keyword
    170,  // Line n: Incorrect syntax near
    174,  // function requires n arguments
    195,  // is not a recognized built-in function name
    207,  // Invalid column name
    208,  // Invalid object name
    209,  // Ambiguous column name
    229,  // permission denied on object
    230,  // permission denied on column
    262,  // permission denied in database
    297,  // user does not have permission
    300,  // VIEW SERVER STATE permission
    515,  // Cannot insert the value NULL into column '…', table '…' (names only)
    1018, // Incorrect syntax near … (hint)
    1038, // object or column name is missing or empty
    4104, // The multi-part identifier could not be bound
    4121, // Cannot find either column or function
    // The request's parameters as the server decoded them, by number, name and type code:
    // "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is
    // incorrect. Parameter 9 ("@P7"): Data type 0x1F is unknown." Never a value.
    8003,  // too many parameters (the server's limit)
    8009,  // Parameter n ("@Pn"): Data type 0x.. is unknown
    8016,  // Parameter n ("@Pn"): Data type 0x.. has an invalid data length or metadata length
    8023,  // Parameter n ("@Pn"): The supplied value is not a valid instance of data type …
    8120,  // Column is invalid in the select list (GROUP BY)
    8155,  // No column name was specified for column n
    11501, // sp_describe_undeclared_parameters: undeclared parameter cannot be deduced
    11502, // … parameter used more than once with different types
    11503, // … parameter used as a column alias
    11508, // … the undeclared parameter is used more than once
    11529, // sp_describe_first_result_set: cannot deduce
];

/// Of those, the ones quoting a fragment of the SQL text itself (not an object name): shown
/// without it, since a file named as the query by mistake may hold a secret.
const QUOTES_SQL_TEXT: &[u32] = &[102, 105, 156, 170, 1018];

/// Why connecting failed, as a kind and a sentence ending in what to check. `user`: the login
/// name or Windows account reqsync gave, `None` for the process's own identity
/// (`auth=integrated`).
pub(crate) fn connect_reason(
    url: &SqlServerUrl,
    user: Option<&str>,
    err: &tiberius::error::Error,
) -> (ConnectFailure, String) {
    use tiberius::error::Error;
    let kind = match err {
        Error::Server(e) if e.code() == 18456 || e.code() == 18452 => ConnectFailure::LoginFailed,
        // With Windows authentication an I/O error that is neither a timeout nor the connection
        // closing comes from the NTLM or SSPI code answering the server's challenge.
        Error::Io { kind, .. } if url.auth.is_windows() && handshake_error(*kind) => {
            ConnectFailure::LoginFailed
        }
        // 4060 is SQL Server's answer at login; 911 ("database does not exist") is what
        // Babelfish for PostgreSQL and a failed `USE` answer.
        Error::Server(e) if matches!(e.code(), 4060 | 911) => ConnectFailure::DatabaseMissing,
        Error::Server(_) | Error::Routing { .. } => ConnectFailure::Refused,
        Error::Tls(_) => ConnectFailure::Tls,
        Error::Protocol(msg) if msg.contains("encryption level") => ConnectFailure::Tls,
        Error::Io {
            kind: ErrorKind::TimedOut,
            ..
        } => ConnectFailure::Timeout,
        _ => ConnectFailure::Refused,
    };
    (kind, connect_text(url, user, err))
}

fn connect_text(url: &SqlServerUrl, user: Option<&str>, err: &tiberius::error::Error) -> String {
    use tiberius::error::Error;
    if url.auth.is_windows() {
        let text = match err {
            Error::Server(e) => windows_login_text(&url.auth, user, e.code(), e.message()),
            Error::Io { kind, message } if handshake_error(*kind) => {
                Some(windows_handshake_text(&url.auth, message))
            }
            Error::Protocol(msg) if msg.contains("NTLM") || msg.contains("SSPI") => {
                Some(windows_handshake_text(&url.auth, msg))
            }
            _ => None,
        };
        if let Some(text) = text {
            return text;
        }
    }
    let user = match user {
        Some(name) => format!("`{name}`"),
        None => "the Windows account reqsync runs as".to_string(),
    };
    match err {
        Error::Server(e) => match e.code() {
            18456 => format!(
                "login failed for {user} (SQL Server error 18456): check the login name and \
                 the password ({}); the server's error log gives the exact reason",
                password_hint(url)
            ),
            4060 | 911 => format!(
                "the database `{}` does not exist or {user} may not open it (SQL Server error \
                 {}): check the database name in the URL and the login's database user",
                url.database,
                e.code()
            ),
            18470 => format!("the login {user} is disabled (SQL Server error 18470)"),
            18486 => format!("the login {user} is locked out (SQL Server error 18486)"),
            18487 | 18488 => format!(
                "the password of {user} has expired or must be changed (SQL Server error {})",
                e.code()
            ),
            code => server_message(code, e.class(), e.line(), e.message()),
        },
        Error::Tls(msg) => tls_reason(url, msg),
        Error::Io { kind, message } => match kind {
            ErrorKind::TimedOut => format!(
                "no answer within {} (connect_timeout) while logging in: the server accepted \
                 the connection but did not complete the handshake",
                humantime::format_duration(url.connect_timeout)
            ),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
                format!(
                    "the server closed the connection during the handshake ({message}); with TLS \
                     this usually means the server refused the TLS version or cipher"
                )
            }
            _ => format!("connection failed during the handshake: {message}"),
        },
        Error::Protocol(msg) if msg.contains("encryption level") => {
            "the server does not offer encryption, and TLS is required (the default): enable \
             encryption on the server (a certificate for SQL Server's network configuration), \
             or, on a trusted network only, set `encrypt=false`"
                .to_string()
        }
        Error::Routing { host, port } => format!(
            "the server redirects to {host}:{port} (Azure SQL gateway routing), which this build \
             does not follow: connect to that address directly"
        ),
        other => format!("connection failed: {other}"),
    }
}

/// Whether an I/O error during login with Windows authentication is the NTLM or SSPI code
/// refusing (a malformed challenge, an SSPI status such as "the target principal name is
/// incorrect") rather than the network: a timeout or the server closing the connection is
/// reported as such.
fn handshake_error(kind: ErrorKind) -> bool {
    !matches!(
        kind,
        ErrorKind::TimedOut
            | ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

/// What to do about a login refused by the server with Windows authentication, for the errors
/// that concern the account (`None`: the generic text does). The account's name is taken from
/// the server's message when reqsync did not give one: with `auth=integrated` only the server
/// knows which account it saw (for a service, often the machine account `DOMAIN\\MACHINE$`).
/// SQL Server's message for these errors names the login and nothing else.
///
/// SQL Server answers 18452 ("untrusted domain") whenever Windows could not authenticate the
/// account, whatever the reason (a wrong password first of all), and 18456 when it did but the
/// account has no login or may not use the database.
fn windows_login_text(
    auth: &Auth,
    user: Option<&str>,
    code: u32,
    server_message: &str,
) -> Option<String> {
    let account = user
        .map(str::to_string)
        .or_else(|| quoted_login(server_message));
    let who = match (auth, &account) {
        (Auth::Windows(_), Some(account)) => format!("the Windows account `{account}`"),
        (_, Some(account)) => format!("the Windows account reqsync runs as (`{account}`)"),
        (_, None) => "the Windows account reqsync runs as".to_string(),
    };
    match code {
        18456 => {
            let account = account.unwrap_or_else(|| "DOMAIN\\ACCOUNT".to_string());
            Some(format!(
                "login failed for {who} (SQL Server error 18456): Windows vouched for the \
                 account, but the server has no login for it or it may not open the database. \
                 An administrator grants it access with `CREATE LOGIN [{account}] FROM \
                 WINDOWS`, then, in the clinic database, `CREATE USER [{account}] FOR LOGIN \
                 [{account}]` and `GRANT SELECT` on the two tables the queries read (or on a \
                 view over them). A Windows service running as a virtual account \
                 (NT SERVICE\\…), Network Service or Local System reaches another machine's \
                 SQL Server as the computer's account, `DOMAIN\\COMPUTER$`. The server's error \
                 log gives the exact reason (the error's state)"
            ))
        }
        18452 => {
            let causes = match auth {
                Auth::Windows(credentials) => format!(
                    "most often the password is wrong ({}) or the account is unknown, disabled \
                     or locked out; otherwise the account's domain (the DOMAIN of \
                     DOMAIN\\name) is not the server's or one it trusts",
                    password_source(&credentials.password)
                ),
                _ => "the account (for a service, the computer's account DOMAIN\\COMPUTER$) \
                      must belong to the server's domain or to one it trusts, which a computer \
                      outside the domain never does; use `auth=windows` with a domain account's \
                      password, or a SQL Server login, from such a computer"
                    .to_string(),
            };
            Some(format!(
                "the server could not verify {who} (SQL Server error 18452, which the server \
                 words as \"untrusted domain\"): {causes}. The server may also be unable to \
                 reach a domain controller, or NTLM may be blocked by policy; its error log \
                 (error 17806, \"SSPI handshake failed\") gives Windows' reason"
            ))
        }
        _ => None,
    }
}

/// The login a "Login failed for user 'NAME'." message names.
fn quoted_login(message: &str) -> Option<String> {
    let start = message.find("user '")? + "user '".len();
    let len = message[start..].find('\'')?;
    Some(message[start..start + len].to_string()).filter(|name| !name.is_empty())
}

/// The NTLM or SSPI code could not answer the server's challenge.
fn windows_handshake_text(auth: &Auth, detail: &str) -> String {
    // The driver's SSPI wrapper (winauth) reports a failed SSPI call through the thread's last
    // error, which SSPI functions do not set: the "reason" is then the text of error 0 ("The
    // operation completed successfully", "Success"), which would only mislead.
    let detail = if detail.contains("(os error 0)") {
        "Windows' SSPI refused without giving a reason"
    } else {
        detail
    };
    let fix = match auth {
        Auth::Integrated => {
            "check that the account reqsync runs as is a domain account (or a service \
             reaching the server as the computer's account) and that the domain allows NTLM to \
             this server; or log in with `auth=windows` and an account's password, or a SQL \
             Server login"
        }
        _ => {
            "check the account's name (DOMAIN\\name) and that the server accepts NTLM; or log \
             in with a SQL Server login"
        }
    };
    format!(
        "the Windows authentication handshake (NTLM through SSPI) with the server failed: \
         {detail}; {fix}"
    )
}

/// TCP-level failure: the host or port is wrong, or the network is in the way.
pub(crate) fn tcp_reason(
    url: &SqlServerUrl,
    addr: &str,
    err: &std::io::Error,
) -> (ConnectFailure, String) {
    let hint = "check the host and port in the URL, that SQL Server's TCP/IP protocol is \
                enabled and listening on that port, and any firewall in between";
    match err.kind() {
        ErrorKind::ConnectionRefused => (
            ConnectFailure::Unreachable,
            format!("nothing accepts connections at {addr} (connection refused): {hint}"),
        ),
        ErrorKind::TimedOut => (
            ConnectFailure::Timeout,
            format!(
                "no answer from {addr} within {} (connect_timeout): {hint}",
                humantime::format_duration(url.connect_timeout)
            ),
        ),
        ErrorKind::NotFound => (
            ConnectFailure::Unreachable,
            format!(
                "the name `{}` does not resolve (DNS): check the host name",
                url.host
            ),
        ),
        _ => (
            ConnectFailure::Unreachable,
            format!("cannot connect to {addr}: {err}; {hint}"),
        ),
    }
}

/// The SQL Browser service (named instances) did not answer.
pub(crate) fn browser_reason(
    url: &SqlServerUrl,
    err: &tiberius::error::Error,
) -> (ConnectFailure, String) {
    let text = format!(
        "cannot find the instance `{}` on {}: the SQL Browser service (UDP 1434) did not \
         answer or does not know it ({err}); give the instance's TCP port instead \
         (sqlserver://HOST:PORT/DATABASE)",
        url.instance.as_deref().unwrap_or(""),
        url.host
    );
    (ConnectFailure::Unreachable, text)
}

/// What to do about a server certificate marked as a CA (`basicConstraints CA:TRUE`): rustls'
/// WebPKI check refuses it as a server's own certificate (`CaUsedAsEndEntity`), even when it is
/// itself the pinned or trusted certificate, and the driver's TLS setup takes no other verifier.
const CA_AS_SERVER_CERTIFICATE: &str = "the server's certificate is marked as a CA certificate \
    (basic constraints CA:TRUE, which `openssl req -x509` writes by default), and the TLS \
    library does not accept a CA certificate as a server's own, even when it is the one pinned \
    with `trust_server_certificate` or given in `trust_ca_file`: give the server a certificate \
    without CA:TRUE (e.g. a self-signed one made with `-addext \
    basicConstraints=critical,CA:FALSE` and its host name in `-addext \
    subjectAltName=DNS:HOST`), or one issued by the clinic's CA and trust that CA with \
    `trust_ca_file`";

fn tls_reason(url: &SqlServerUrl, msg: &str) -> String {
    let fix = match &url.tls {
        _ if msg.contains("CaUsedAsEndEntity") => CA_AS_SERVER_CERTIFICATE,
        TlsMode::Required {
            trust: Trust::System,
            ..
        } => {
            "the certificate is not signed by a CA the system trusts: trust the clinic's CA \
             with `trust_ca_file=PATH`, or pin the server's own certificate with \
             `trust_server_certificate=PATH`"
        }
        TlsMode::Required {
            trust: Trust::CaFile(_),
            ..
        } => {
            "the certificate is not signed by the CA in `trust_ca_file`, or does not carry the \
             host name (set `hostname_in_certificate=NAME` when connecting by IP or alias)"
        }
        TlsMode::Required {
            trust: Trust::ServerCertificate(_),
            ..
        } => {
            "the server presented a different certificate than `trust_server_certificate`, or \
             one without the host name (see `hostname_in_certificate`)"
        }
        _ => "check the server's TLS configuration",
    };
    // tiberius appends advice about its own API ("Config::trust_cert_ca…"), which means nothing
    // to whoever edits the URL: keep the diagnosis, give the URL options instead.
    let diagnosis = msg
        .split(" To connect anyway")
        .next()
        .unwrap_or(msg)
        .trim_end_matches('.');
    format!("TLS handshake or certificate check failed: {diagnosis}; {fix}")
}

/// Why a query failed, naming nothing from its rows.
pub(crate) fn query_reason(err: &tiberius::error::Error, query_timeout: Duration) -> String {
    use tiberius::error::Error;
    match err {
        Error::Server(e) => server_message(e.code(), e.class(), e.line(), e.message()),
        Error::Io { kind, message } => match kind {
            ErrorKind::TimedOut => format!(
                "the server sent nothing for {} (query_timeout): the query may be blocked by a \
                 lock or need an index; raise `query_timeout` if it is only slow",
                humantime::format_duration(query_timeout)
            ),
            _ => format!(
                "the connection to the server broke while reading the result ({message}); \
                 the rows read before the break were not used as a complete result"
            ),
        },
        other => format!("reading the result failed: {other}"),
    }
}

/// Why a statement that writes failed (the seed), naming nothing from its rows.
pub(crate) fn write_reason(err: &tiberius::error::Error, query_timeout: Duration) -> String {
    use tiberius::error::Error;
    match err {
        Error::Server(e) => server_message(e.code(), e.class(), e.line(), e.message()),
        Error::Io { kind, message } => match kind {
            ErrorKind::TimedOut => format!(
                "the server sent no answer for {} (query_timeout): another session may hold a \
                 lock on the table",
                humantime::format_duration(query_timeout)
            ),
            _ => format!("the connection to the server broke ({message})"),
        },
        Error::Protocol(msg) => format!("the server's answer broke the protocol: {msg}"),
        Error::Tls(msg) => format!("TLS failed: {msg}"),
        // The driver's own refusals (conversion, encoding, bulk input) may describe the value
        // they refused: say which kind of failure it was, not its text.
        Error::Encoding(_) | Error::Utf8 | Error::Utf16 => {
            "the driver could not encode or decode a text value".to_string()
        }
        Error::Conversion(_) | Error::BulkInput(_) | Error::ParseInt(_) => {
            "the driver could not convert a value to its SQL Server type".to_string()
        }
        _ => "the request failed before reaching the server".to_string(),
    }
}

fn server_message(code: u32, class: u8, line: u32, message: &str) -> String {
    if QUOTES_SQL_TEXT.contains(&code) {
        let message = crate::source::without_quoted_text(message);
        format!("SQL Server error {code} at line {line}: {message}")
    } else if MESSAGE_SAFE.contains(&code) {
        format!("SQL Server error {code} at line {line}: {message}")
    } else {
        format!(
            "SQL Server error {code} (severity {class}) at line {line}; its message is not \
             shown because it may quote row values: look the number up, or run the query in \
             Management Studio"
        )
    }
}

fn password_hint(url: &SqlServerUrl) -> String {
    let Some(credentials) = url.auth.credentials() else {
        return "the Windows account reqsync runs as".into();
    };
    let password = password_source(&credentials.password);
    match &credentials.user {
        UserSource::Literal(_) => password,
        UserSource::Env(var) => format!("login from ${var}, {password}"),
    }
}

/// Where the password was read from, never the password.
fn password_source(source: &crate::reqcheck::CredentialsSource) -> String {
    match source {
        crate::reqcheck::CredentialsSource::Env(var) => format!("password from ${var}"),
        crate::reqcheck::CredentialsSource::File(path) => {
            format!("password from {}", path.display())
        }
        crate::reqcheck::CredentialsSource::Store(secret) => {
            format!("password from the secret `{}`", secret.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_that_may_quote_values_are_withheld() {
        let safe = server_message(102, 15, 3, "Incorrect syntax near 'FORM'.");
        assert!(safe.contains("Incorrect syntax near '…'"), "{safe}");
        assert!(
            safe.contains("at line 3") && !safe.contains("FORM"),
            "{safe}"
        );
        let unsafe_ = server_message(
            245,
            16,
            1,
            "Conversion failed when converting the varchar value 'Jane' to data type int.",
        );
        assert!(!unsafe_.contains("Jane"), "{unsafe_}");
        assert!(unsafe_.contains("245"), "{unsafe_}");
    }

    #[test]
    fn a_refused_parameter_type_is_shown_it_names_a_parameter_not_a_value() {
        let text = "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol \
                    stream is incorrect. Parameter 9 (\"@P7\"): Data type 0x1F is unknown.";
        let msg = server_message(8009, 16, 1, text);
        assert!(msg.contains("SQL Server error 8009"), "{msg}");
        assert!(msg.contains(text), "{msg}");
    }

    #[test]
    fn write_failures_never_quote_what_the_driver_refused() {
        use tiberius::error::Error;
        let timeout = Duration::from_secs(300);
        let e = Error::Conversion("cannot convert 'Nguyễn' to varchar".into());
        let msg = write_reason(&e, timeout);
        assert!(!msg.contains("Nguyễn"), "{msg}");
        let e = Error::Io {
            kind: ErrorKind::TimedOut,
            message: "timed out".into(),
        };
        assert!(write_reason(&e, timeout).contains("query_timeout"));
    }

    fn url(s: &str) -> SqlServerUrl {
        SqlServerUrl::parse(s, None).expect("url")
    }

    #[test]
    fn a_windows_account_refused_with_18456_gets_the_grant_that_fixes_it() {
        let windows =
            url("sqlserver://CLINIC%5Csvc@sql01/clinic?auth=windows&password_env=SVC_PASSWORD");
        let msg = windows_login_text(
            &windows.auth,
            Some("CLINIC\\svc"),
            18456,
            "Login failed for user 'CLINIC\\svc'.",
        )
        .expect("text");
        assert!(msg.contains("SQL Server error 18456"), "{msg}");
        assert!(msg.contains("the Windows account `CLINIC\\svc`"), "{msg}");
        assert!(
            !msg.contains("password from"),
            "its password was right: {msg}"
        );
        assert!(
            msg.contains("CREATE LOGIN [CLINIC\\svc] FROM WINDOWS"),
            "{msg}"
        );
        assert!(msg.contains("GRANT SELECT"), "{msg}");
        assert!(msg.contains("DOMAIN\\COMPUTER$"), "{msg}");

        // With the process's own identity, the account is the one the server names.
        let integrated = url("sqlserver://sql01/clinic?auth=integrated");
        let msg = windows_login_text(
            &integrated.auth,
            None,
            18456,
            "Login failed for user 'CLINIC\\FRONTDESK01$'.",
        )
        .expect("text");
        assert!(
            msg.contains("the Windows account reqsync runs as (`CLINIC\\FRONTDESK01$`)"),
            "{msg}"
        );
        assert!(
            msg.contains("CREATE LOGIN [CLINIC\\FRONTDESK01$] FROM WINDOWS"),
            "{msg}"
        );
        assert!(!msg.contains("password"), "{msg}");
    }

    #[test]
    fn an_unverified_windows_account_18452_puts_the_password_first_then_the_domain() {
        let message = "Login failed. The login is from an untrusted domain and cannot be used with \
             Integrated authentication.";
        let windows =
            url("sqlserver://CLINIC%5Csvc@sql01/clinic?auth=windows&password_file=/etc/pw");
        let msg =
            windows_login_text(&windows.auth, Some("CLINIC\\svc"), 18452, message).expect("text");
        assert!(msg.contains("SQL Server error 18452"), "{msg}");
        assert!(msg.contains("the Windows account `CLINIC\\svc`"), "{msg}");
        assert!(
            msg.contains("password is wrong (password from /etc/pw)"),
            "{msg}"
        );
        assert!(msg.contains("not the server's or one it trusts"), "{msg}");
        assert!(msg.contains("17806"), "{msg}");
        let integrated = url("sqlserver://sql01/clinic?auth=integrated");
        let msg = windows_login_text(&integrated.auth, None, 18452, message).expect("text");
        assert!(msg.contains("the Windows account reqsync runs as"), "{msg}");
        assert!(msg.contains("DOMAIN\\COMPUTER$"), "{msg}");
        assert!(!msg.contains("password from"), "{msg}");
        // Other errors keep their generic text.
        assert!(windows_login_text(&integrated.auth, None, 4060, "x").is_none());
    }

    #[test]
    fn a_failed_ntlm_or_sspi_handshake_is_a_login_failure_saying_what_to_check() {
        use tiberius::error::Error;
        let sspi = Error::Io {
            kind: ErrorKind::Other,
            message: "The target principal name is incorrect. (os error -2146893022)".into(),
        };
        let integrated = url("sqlserver://sql01/clinic?auth=integrated");
        let (kind, msg) = connect_reason(&integrated, None, &sspi);
        assert_eq!(kind, ConnectFailure::LoginFailed);
        assert!(msg.contains("handshake"), "{msg}");
        assert!(msg.contains("target principal name is incorrect"), "{msg}");
        assert!(msg.contains("domain account"), "{msg}");
        // A failed SSPI call that left no error code does not claim success.
        let silent = Error::Io {
            kind: ErrorKind::Other,
            message: "Success. (os error 0)".into(),
        };
        let (kind, msg) = connect_reason(&integrated, None, &silent);
        assert_eq!(kind, ConnectFailure::LoginFailed);
        assert!(msg.contains("refused without giving a reason"), "{msg}");
        assert!(!msg.contains("Success"), "{msg}");
        let windows = url("sqlserver://CLINIC%5Csvc@sql01/clinic?auth=windows");
        let ntlm =
            Error::Protocol("NTLM handshake produced no response to the server challenge".into());
        let (_, msg) = connect_reason(&windows, Some("CLINIC\\svc"), &ntlm);
        assert!(msg.contains("handshake"), "{msg}");
        assert!(msg.contains("DOMAIN\\name"), "{msg}");
        // The network failing is still the network, and a SQL login's I/O error is not NTLM.
        let closed = Error::Io {
            kind: ErrorKind::UnexpectedEof,
            message: "eof".into(),
        };
        let (kind, msg) = connect_reason(&windows, Some("CLINIC\\svc"), &closed);
        assert_eq!(kind, ConnectFailure::Refused);
        assert!(msg.contains("closed the connection"), "{msg}");
        let sql = url("sqlserver://reader@sql01/clinic");
        let (kind, _) = connect_reason(&sql, Some("reader"), &sspi);
        assert_eq!(kind, ConnectFailure::Refused);
    }

    #[test]
    fn the_login_quoted_by_the_server_is_found_and_nothing_else() {
        assert_eq!(
            quoted_login("Login failed for user 'CLINIC\\svc'.").as_deref(),
            Some("CLINIC\\svc")
        );
        assert_eq!(quoted_login("Login failed for user ''."), None);
        assert_eq!(
            quoted_login("Login failed. The login is from an untrusted domain"),
            None
        );
    }
}
