//! Turning `tokio_postgres` errors into [`SourceError`]s a clinic's IT person can act on.
//!
//! The server's own message is the most precise description there is, so it is quoted, with
//! one exception: messages of data errors (`invalid input syntax for type integer: "…"`,
//! `duplicate key … (patno)=(…)`) quote the offending value, which may be PHI. For those the
//! SQLSTATE code stands in for the message. `DETAIL` fields are never quoted for the same reason.

use std::error::Error as _;
use std::io;

use tokio_postgres::error::{DbError, SqlState};

use super::url::PostgresUrl;
use crate::source::{ConnectFailure, SourceError};

/// SQLSTATE classes whose messages describe the session, the SQL text or the schema, never a row
/// value: connection (08), feature (0A), transaction state (25), authorization (28), catalog
/// and schema names (3D, 3F), syntax and access rules (42), resources and limits (53, 54),
/// object state (55), operator intervention and timeouts (57), system (58), internal (XX).
const QUOTABLE_CLASSES: [&str; 13] = [
    "08", "0A", "25", "28", "3D", "3F", "42", "53", "54", "55", "57", "58", "XX",
];

/// The server's message if it is safe to quote, else its SQLSTATE and why it is withheld.
/// `place` (e.g. ` at line 3`) follows the message.
pub(super) fn server_message(db: &DbError, place: &str) -> String {
    let code = db.code().code();
    if QUOTABLE_CLASSES.iter().any(|class| code.starts_with(class)) {
        // A syntax error quotes a fragment of the SQL text (`at or near "…"`): left out, since
        // a file named as the query by mistake may hold a secret; `place` gives the line.
        let message = if db.code() == &SqlState::SYNTAX_ERROR {
            crate::source::without_quoted_text(db.message())
        } else {
            db.message().to_string()
        };
        match db.hint() {
            Some(hint) => format!("{message}{place} (hint: {hint}) [SQLSTATE {code}]"),
            None => format!("{message}{place} [SQLSTATE {code}]"),
        }
    } else {
        format!(
            "the server reported SQLSTATE {code}; its message is not shown because it can quote \
             row values (look the code up in the PostgreSQL manual's \"Error Codes\" appendix)"
        )
    }
}

/// A failure to connect and log in. Nothing of a row is involved yet, so the server's message is
/// always quoted.
pub(super) fn connect_error(url: &PostgresUrl, e: &tokio_postgres::Error) -> SourceError {
    let (kind, reason) = classify_connect(url, e);
    SourceError::Connect {
        what: url.to_string(),
        kind,
        reason,
    }
}

/// Connecting took longer than `connect_timeout`.
pub(super) fn connect_timeout(url: &PostgresUrl) -> SourceError {
    SourceError::Connect {
        what: url.to_string(),
        kind: ConnectFailure::Timeout,
        reason: format!(
            "no session with {} within {}s (connect_timeout); check the host, port and any \
             firewall between here and the server",
            url.endpoint(),
            url.connect_timeout.as_secs()
        ),
    }
}

fn classify_connect(url: &PostgresUrl, e: &tokio_postgres::Error) -> (ConnectFailure, String) {
    if let Some(db) = e.as_db_error() {
        let message = format!("{} [SQLSTATE {}]", db.message(), db.code().code());
        let code = db.code();
        return if code.code().starts_with("28") {
            (
                ConnectFailure::LoginFailed,
                format!(
                    "{message}; check the user name and the password (PGPASSWORD, or the \
                     URL's password_env / password_file) and the server's pg_hba.conf"
                ),
            )
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            (
                ConnectFailure::DatabaseMissing,
                format!(
                    "{message}; create it (`createdb {}`) or fix the database name in the URL \
                     (`reqsync seed` creates the tables, not the database)",
                    url.database
                ),
            )
        } else if *code == SqlState::QUERY_CANCELED {
            (ConnectFailure::Timeout, message)
        } else if db.message().contains("TimeZone") {
            (
                ConnectFailure::Refused,
                format!("{message}; the server does not know [sync] clinic_time_zone"),
            )
        } else {
            (ConnectFailure::Refused, message)
        };
    }
    let top = e.to_string();
    let causes = causes(e);
    if top.contains("TLS") || causes.iter().any(|c| c.contains("certificate")) {
        let hint = if causes.iter().any(|c| c.contains("does not support TLS")) {
            "the server does not offer TLS: enable `ssl` on the server, or (on a trusted \
             network only) add sslmode=disable to the URL"
        } else {
            "trust the server's CA with sslrootcert=PATH (PEM), or connect by the name its \
             certificate carries; sslmode=no-verify accepts any certificate (not recommended)"
        };
        return (
            ConnectFailure::Tls,
            format!(
                "TLS handshake with {} failed: {}; {hint}",
                url.endpoint(),
                causes.join(": ")
            ),
        );
    }
    if causes.iter().any(|c| c.contains("password missing")) {
        return (
            ConnectFailure::LoginFailed,
            "the server asks for a password and none is configured: set PGPASSWORD, or add \
             password_env=VAR or password_file=PATH to the URL"
                .to_string(),
        );
    }
    if top.contains("authentication") {
        return (
            ConnectFailure::LoginFailed,
            format!("authentication failed: {}", causes.join(": ")),
        );
    }
    match io_kind(e) {
        Some(io::ErrorKind::TimedOut) => (
            ConnectFailure::Timeout,
            format!("connecting to {} timed out", url.endpoint()),
        ),
        Some(io::ErrorKind::ConnectionRefused) => (
            ConnectFailure::Unreachable,
            format!(
                "{} refused the connection: is PostgreSQL running there and listening on that \
                 port (listen_addresses, port)?",
                url.endpoint()
            ),
        ),
        Some(_)
            if causes
                .iter()
                .any(|c| c.contains("lookup") || c.contains("resolve")) =>
        {
            (
                ConnectFailure::Unreachable,
                format!("cannot resolve the host name `{}`", url.host),
            )
        }
        Some(_) => (
            ConnectFailure::Unreachable,
            format!("cannot reach {}: {}", url.endpoint(), causes.join(": ")),
        ),
        None => (
            ConnectFailure::Refused,
            format!("{top}: {}", causes.join(": ")),
        ),
    }
}

/// A failure preparing or running a query; names the query file, and the line for errors the
/// server can place.
pub(super) fn query_error(query: &str, sql: &str, e: &tokio_postgres::Error) -> SourceError {
    let reason = match e.as_db_error() {
        Some(db) => {
            let place = match db.position() {
                // The position counts characters of the SQL sent; rewriting `?` to `$1` adds
                // none of the newlines, so the line is the query file's line.
                Some(tokio_postgres::error::ErrorPosition::Original(pos)) => {
                    let line = 1 + sql
                        .chars()
                        .take((*pos as usize).saturating_sub(1))
                        .filter(|&c| c == '\n')
                        .count();
                    format!(" at line {line}")
                }
                _ => String::new(),
            };
            server_message(db, &place)
        }
        None if e.is_closed() => "the server closed the connection while the query ran".into(),
        None => {
            let causes = causes(e);
            if causes.is_empty() {
                e.to_string()
            } else {
                format!("{e}: {}", causes.join(": "))
            }
        }
    };
    SourceError::Query {
        query: query.to_string(),
        reason,
    }
}

/// The messages of an error's causes, outermost first.
fn causes(e: &tokio_postgres::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push(cause.to_string());
        next = cause.source();
    }
    out
}

fn io_kind(e: &tokio_postgres::Error) -> Option<io::ErrorKind> {
    let mut next = e.source();
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        next = cause.source();
    }
    None
}
