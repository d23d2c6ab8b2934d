//! PostgreSQL clinic databases (`postgres://…`), through tokio-postgres.
//!
//! Each query gets its own session, read-only (`default_transaction_read_only`) and with the
//! clinic time zone as the session's `TimeZone`. Rows stream: `query_raw` hands rows over as the
//! server sends them, the reader task decodes each value straight into its column of the batch
//! (`source::batch`) and waits on the bounded channel when the pipeline is behind. While it
//! waits it reads nothing, tokio-postgres stops reading the socket, and the server blocks on a
//! full socket buffer (`ClientWrite` in `pg_stat_activity`): memory stays at a few batches
//! whatever the size of the result.
//!
//! The window start is bound with the type the server infers for `$1` from the query, so the
//! same query file works whether `updated_at` is `timestamp` (clinic local time, like every
//! source timestamp), `timestamptz` (the clinic-local start converted to an instant), `date` or
//! text in the SQLite convention.

mod errors;
mod tls;
mod types;
mod url;

// For the check of docs/CONFIG.md's option table (`config/config_md.rs`).
#[cfg(test)]
pub(crate) use url::OPTIONS as URL_OPTIONS;
pub use url::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PASSWORD_ENV, DEFAULT_PORT, PasswordSource, PostgresUrl,
    TlsMode,
};

use std::fmt;
use std::pin::pin;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use self::types::Decoder;
use super::{
    BatchMessage, Cell, ColumnInfo, PlaceholderStyle, Query, RowBatch, RowStream, Source,
    SourceError, bind_window_start, channel,
};
use crate::reqcheck::Secret;

/// The text form the window start takes when the server wants text: the SQLite storage
/// convention, so a text `updated_at` compares correctly (see [`super::SqliteSource`]).
const TEXT_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S";

/// A PostgreSQL clinic database. Opening reads the password and the CA file; every query then
/// connects anew (a nightly sync runs two queries; a pool would only hold idle sessions).
pub struct PostgresSource {
    url: PostgresUrl,
    password: Option<Secret>,
    tls: Option<MakeRustlsConnect>,
    clinic_tz: Tz,
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("url", &self.url.to_string())
            .field("tls", &self.url.tls)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("clinic_tz", &self.clinic_tz)
            .finish()
    }
}

impl PostgresSource {
    /// Reads the password (from the environment or `password_file`) and prepares TLS; does not
    /// connect yet. `clinic_tz` is the zone of the source's local timestamps (`[sync]
    /// clinic_time_zone`).
    pub fn open(url: &PostgresUrl, clinic_tz: Tz) -> Result<Self, SourceError> {
        let password = read_password(url)?;
        let tls = tls::connector(url)?;
        match url.tls {
            TlsMode::NoVerify => tracing::warn!(
                source = %url,
                "sslmode=no-verify: the database server's certificate is NOT checked, so an \
                 impostor on the network could receive the clinic's rows and the password; \
                 trust the server's CA with sslrootcert=PATH instead"
            ),
            TlsMode::Disable if !is_loopback(&url.host) => tracing::warn!(
                source = %url,
                "sslmode=disable: rows and the password cross the network unencrypted"
            ),
            _ => {}
        }
        Ok(Self {
            url: url.clone(),
            password,
            tls,
            clinic_tz,
        })
    }

    /// The URL this source was opened with.
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// A read-write session with this source's settings (TLS, password, `search_path`), for
    /// `reqsync seed` and tests. Queries of a sync run in read-only sessions of their own.
    pub async fn connect(&self) -> Result<Client, SourceError> {
        Ok(self.session(false).await?.0)
    }

    /// A session: its client, and the task that runs its protocol side (aborting that task
    /// drops the socket, which stops the server mid-result).
    async fn session(&self, read_only: bool) -> Result<(Client, JoinHandle<()>), SourceError> {
        let url = &self.url;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&url.host)
            .port(url.port)
            .user(&url.user)
            .dbname(&url.database)
            .application_name(&url.application_name)
            .connect_timeout(url.connect_timeout)
            // Without keepalives, a session whose server vanished behind a NAT waits forever.
            .keepalives(true);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }

        // connect_timeout in tokio-postgres covers the TCP connect only; a server that accepts
        // and then says nothing would hang the TLS handshake or the login forever.
        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    config.ssl_mode(SslMode::Require);
                    let (client, connection) = config.connect(tls.clone()).await?;
                    Ok((client, tokio::spawn(drive(connection))))
                }
                None => {
                    config.ssl_mode(SslMode::Disable);
                    let (client, connection) = config.connect(NoTls).await?;
                    Ok((client, tokio::spawn(drive(connection))))
                }
            }
        };
        let (client, connection) = match tokio::time::timeout(url.connect_timeout, connecting).await
        {
            Err(_) => return Err(errors::connect_timeout(url)),
            Ok(Err(e)) => return Err(errors::connect_error(url, &e)),
            Ok(Ok(session)) => session,
        };

        // Settings as statements rather than startup options: connection poolers such as
        // PgBouncer refuse unknown startup parameters. Schema names were checked to be plain
        // lower-case identifiers when the URL was parsed; time zone names hold no quotes.
        let mut settings = format!("SET TIME ZONE '{}';", self.clinic_tz.name());
        if read_only {
            settings.push_str(" SET default_transaction_read_only = on;");
        }
        if !url.search_path.is_empty() {
            let schemas: Vec<String> = url.search_path.iter().map(|s| format!("\"{s}\"")).collect();
            settings.push_str(&format!(" SET search_path TO {};", schemas.join(", ")));
        }
        client
            .batch_execute(&settings)
            .await
            .map_err(|e| errors::connect_error(url, &e))?;
        Ok((client, connection))
    }
}

/// Runs the protocol side of a session until the client side is dropped.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        // The top-level error only: its causes may carry a server message.
        tracing::debug!(error = %e, "PostgreSQL session ended with an error");
    }
}

impl Source for PostgresSource {
    async fn stream(
        &self,
        query: &Query,
        window_start: NaiveDateTime,
        batch_rows: usize,
    ) -> Result<RowStream, SourceError> {
        let (client, connection) = self.session(true).await?;
        let (sql, _) = bind_window_start(&query.sql, PlaceholderStyle::Postgres);
        let statement = client
            .prepare(&sql)
            .await
            .map_err(|e| errors::query_error(&query.name, &sql, &e))?;
        let mut columns = Vec::with_capacity(statement.columns().len());
        let mut decoders = Vec::with_capacity(statement.columns().len());
        for column in statement.columns() {
            let decoder =
                Decoder::for_type(column.type_(), column.type_modifier()).map_err(|reason| {
                    SourceError::Value {
                        query: query.name.clone(),
                        column: column.name().to_string(),
                        reason,
                    }
                })?;
            decoders.push(decoder);
            columns.push(ColumnInfo {
                name: column.name().to_string(),
                declared_type: column.type_().name().to_ascii_uppercase(),
            });
        }
        let parameters = window_parameter(&statement, &query.name, window_start, self.clinic_tz)?;
        let rows = client
            .query_raw(
                &statement,
                parameters.iter().map(|p| &**p as &(dyn ToSql + Sync)),
            )
            .await
            .map_err(|e| errors::query_error(&query.name, &sql, &e))?;

        let (tx, rx) = channel();
        let reader = Reader {
            query: query.name.clone(),
            sql,
            columns: columns.iter().map(|c| c.name.clone()).collect(),
            decoders,
            clinic_tz: self.clinic_tz,
            batch_rows: batch_rows.max(1),
        };
        tokio::spawn(reader.run(client, connection, rows, tx));
        Ok(RowStream {
            columns,
            batches: rx,
        })
    }
}

/// Converts streamed rows into batches; owns the session for as long as it reads.
struct Reader {
    query: String,
    sql: String,
    columns: Vec<String>,
    decoders: Vec<Decoder>,
    clinic_tz: Tz,
    batch_rows: usize,
}

/// The rest of the result is not wanted: the pipeline stopped listening, or a value could not
/// be read and the error has been sent.
struct Stop;

impl Reader {
    async fn run(
        self,
        client: Client,
        connection: JoinHandle<()>,
        rows: tokio_postgres::RowStream,
        tx: mpsc::Sender<BatchMessage>,
    ) {
        if self.read(rows, &tx).await.is_err() {
            // Closing the client politely would first drain the rest of the result; dropping
            // the socket stops the server at its next write instead.
            connection.abort();
        }
        drop(client);
    }

    /// Reads every row into batches.
    async fn read(
        &self,
        rows: tokio_postgres::RowStream,
        tx: &mpsc::Sender<BatchMessage>,
    ) -> Result<(), Stop> {
        let mut rows = pin!(rows);
        let mut batch = RowBatch::new(self.decoders.len());
        let mut scratch = String::new();
        let mut row_number = 0u64;
        loop {
            let next = tokio::select! {
                next = rows.next() => next,
                // Noticed while the server is slow to send, not only at the next send.
                () = tx.closed() => return Err(Stop),
            };
            let row = match next {
                None => break,
                Some(Ok(row)) => row,
                Some(Err(e)) => {
                    let error = errors::query_error(&self.query, &self.sql, &e);
                    return tx.send(Err(error)).await.map_err(|_| Stop);
                }
            };
            row_number += 1;
            if let Err((column, reason)) = self.append(&row, &mut batch, &mut scratch) {
                let error = SourceError::Value {
                    query: self.query.clone(),
                    column: self.columns[column].clone(),
                    reason: format!("row {row_number}: {reason}"),
                };
                // Ending here drops the session with the rest of the result unread.
                tx.send(Err(error)).await.map_err(|_| Stop)?;
                return Err(Stop);
            }
            if batch.len() == self.batch_rows {
                let next = batch.empty_like();
                let full = std::mem::replace(&mut batch, next);
                // Waiting here is the backpressure: no row is read until the pipeline takes it.
                tx.send(Ok(full)).await.map_err(|_| Stop)?;
            }
        }
        if !batch.is_empty() {
            tx.send(Ok(batch)).await.map_err(|_| Stop)?;
        }
        Ok(())
    }

    /// Decodes one row into `batch`'s columns, or says which column failed and why (the batch
    /// is then abandoned with the rest of the result).
    fn append(
        &self,
        row: &tokio_postgres::Row,
        batch: &mut RowBatch,
        scratch: &mut String,
    ) -> Result<(), (usize, String)> {
        for (i, decoder) in self.decoders.iter().enumerate() {
            let raw: Raw<'_> = row.try_get(i).map_err(|e| (i, e.to_string()))?;
            let cell = match raw.0 {
                None => Cell::Null,
                Some(bytes) if bytes.len() > super::MAX_VALUE_BYTES => {
                    return Err((i, super::too_large(bytes.len())));
                }
                Some(bytes) => decoder
                    .decode(bytes, self.clinic_tz, scratch)
                    .map_err(|r| (i, r))?,
            };
            batch.push(i, cell);
        }
        batch.finish_row();
        Ok(())
    }
}

/// A column's raw binary value, decoded by [`Decoder`] rather than by tokio-postgres's per-type
/// `FromSql` impls so that one code path handles every type and every message stays value-free.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The window start as the type the server inferred for `$1`.
fn window_parameter(
    statement: &Statement,
    query: &str,
    window_start: NaiveDateTime,
    clinic_tz: Tz,
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, SourceError> {
    let fail = |reason: String| SourceError::Query {
        query: query.to_string(),
        reason,
    };
    let ty = match statement.params() {
        [] => return Ok(Vec::new()),
        [ty] => ty,
        more => {
            return Err(fail(format!(
                "it has {} distinct parameters; only the window start (`?`) can be bound",
                more.len()
            )));
        }
    };
    let value: Box<dyn ToSql + Sync + Send> = match *ty {
        Type::TIMESTAMP => Box::new(window_start),
        // The instant the clinic's wall clock showed; the session's TimeZone is the clinic's
        // too, so mixed comparisons elsewhere in the query agree.
        Type::TIMESTAMPTZ => Box::new(clinic_to_utc(window_start, clinic_tz)),
        // Whole days: the day of the window start is read again, never skipped.
        Type::DATE => Box::new(window_start.date()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            Box::new(window_start.format(TEXT_TIMESTAMP).to_string())
        }
        ref other => {
            return Err(fail(format!(
                "the window start (`?`) is used where PostgreSQL expects type `{}`; compare it \
                 with a timestamp, timestamptz, date or text column, or cast it (`?::timestamp`)",
                other.name()
            )));
        }
    };
    Ok(vec![value])
}

/// The instant a clinic wall-clock time denotes, resolved as the transform host resolves it
/// (`transform::localize`): a repeated time as its first occurrence, a skipped time as if the
/// clocks had already moved.
fn clinic_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let resolved = match tz.from_local_datetime(&local) {
        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt,
        LocalResult::None => match tz.from_local_datetime(&(local + chrono::Duration::hours(1))) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt,
            LocalResult::None => tz.from_utc_datetime(&local),
        },
    };
    resolved.with_timezone(&Utc)
}

fn read_password(url: &PostgresUrl) -> Result<Option<Secret>, SourceError> {
    let fail = |reason: String| SourceError::Open {
        what: url.to_string(),
        reason,
    };
    let password = match &url.password {
        PasswordSource::DefaultEnv => match std::env::var(DEFAULT_PASSWORD_ENV) {
            Ok(p) if !p.is_empty() => p,
            _ => return Ok(None),
        },
        PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
            fail(format!(
                "the password variable {var} (password_env) is not set in this environment"
            ))
        })?,
        PasswordSource::File(path) => crate::secret_file::read(path)
            .map_err(|e| fail(format!("password_file: {e}")))?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        PasswordSource::Store(secret) => {
            let found = secret
                .read()
                .map_err(|e| fail(format!("password_secret: {e}")))?;
            return Ok(Some(found.secret));
        }
    };
    if password.is_empty() {
        return Err(fail("the configured password is empty".into()));
    }
    Ok(Some(Secret::new(password)))
}

/// A tokio-postgres error for a message: the server's message when it cannot quote row
/// values, else its SQLSTATE (see the `errors` module).
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => errors::server_message(db, ""),
        None => e.to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_instants_match_the_transform_hosts_reading_of_local_time() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        for (local, expected) in [
            ("2016-09-28 12:00:00", "2016-09-28T17:00:00+00:00"),
            // Repeated hour: first occurrence (CDT).
            ("2016-11-06 01:30:00", "2016-11-06T06:30:00+00:00"),
            // Skipped hour: read as 03:30 CDT.
            ("2016-03-13 02:30:00", "2016-03-13T08:30:00+00:00"),
        ] {
            let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
            let utc = clinic_to_utc(naive, tz);
            assert_eq!(utc.to_rfc3339(), expected, "{local}");
            let localized = crate::transform::localize(tz, naive);
            let from_host = DateTime::parse_from_rfc3339(&localized).unwrap();
            assert_eq!(from_host.with_timezone(&Utc), utc, "{local}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let url = PostgresUrl::parse("postgres://u@db/x?sslmode=disable", None).unwrap();
        let source = PostgresSource {
            url,
            password: Some(Secret::new("hunter2")),
            tls: None,
            clinic_tz: chrono_tz::UTC,
        };
        let debug = format!("{source:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn a_missing_password_variable_is_named() {
        let url = PostgresUrl::parse(
            "postgres://u@db/x?password_env=REQSYNC_SURELY_UNSET_VARIABLE",
            None,
        )
        .unwrap();
        let e = read_password(&url).unwrap_err().to_string();
        assert!(e.contains("REQSYNC_SURELY_UNSET_VARIABLE"), "{e}");
    }

    #[test]
    fn the_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        reqsync_private_fs::write_atomically(&path, b"s3cret\n").unwrap();
        let url = PostgresUrl::parse(
            &format!("postgres://u@db/x?password_file={}", path.display()),
            None,
        )
        .unwrap();
        let pw = read_password(&url).unwrap().unwrap();
        assert_eq!(pw.expose(), "s3cret");
        reqsync_private_fs::write_atomically(&path, b"\n").unwrap();
        let e = read_password(&url).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
