//! Reading rows from the clinic database.
//!
//! Every engine implements [`Source`]: run a query with the window start bound to each `?`, and
//! stream the result as [`RowBatch`]es through a bounded channel. The channel is what keeps
//! memory flat: the reader blocks when the pipeline is behind, so at most a few batches exist at
//! any time whatever the size of the table.

pub(crate) mod batch;
mod placeholders;
pub mod postgres;
mod sqlite;
pub mod sqlserver;
mod url;
mod value;

pub use batch::{Cell, ColumnValues, RowBatch, SourceColumn};
pub use placeholders::{PlaceholderStyle, bind_window_start};
pub use postgres::{PostgresSource, PostgresUrl};
pub use sqlite::SqliteSource;
pub use sqlserver::SqlServerSource;
pub use url::SourceUrl;
pub use value::Value;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use tokio::sync::mpsc;

/// How many batches may wait between the reader and the pipeline.
const CHANNEL_DEPTH: usize = 2;

/// Largest text or binary value a source may hand on. Sixteen times the largest record a
/// module may emit by default (`transform_max_record_kb`), and far above any clinic field; a
/// value beyond it is a defect in the row, and copying it through the transform host and into
/// the sandbox would cost several times its size in memory (a 50 MB name took the process
/// past 500 MB before the module ran out of its own memory). The run stops naming the query,
/// column, row and size.
pub(crate) const MAX_VALUE_BYTES: usize = 16 << 20;

/// The reason for a value over [`MAX_VALUE_BYTES`]: its size only, never its contents.
fn too_large(bytes: usize) -> String {
    format!(
        "a value of {:.1} MiB is larger than the {} MiB a source value may hold; fix the row \
         (or leave the column out of the query)",
        bytes as f64 / f64::from(1u32 << 20),
        MAX_VALUE_BYTES >> 20
    )
}

/// A column of a query result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The type the engine declares for the column (e.g. `DATE`), upper-cased; empty when the
    /// engine does not know (an expression column in SQLite).
    pub declared_type: String,
}

/// Errors reading from a source. Messages name the query file, column and row number, never a
/// value: values are protected health information.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("unsupported source URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open the source database {what}: {reason}")]
    Open { what: String, reason: String },
    /// A database server could not be reached or refused the session; `kind` says which way,
    /// `reason` quotes the server and says what to check.
    #[error("cannot connect to the source database {what}: {kind}: {reason}")]
    Connect {
        what: String,
        kind: ConnectFailure,
        reason: String,
    },
    #[error("query `{query}` failed: {reason}")]
    Query { query: String, reason: String },
    #[error("query `{query}`, column `{column}`: {reason}")]
    Value {
        query: String,
        column: String,
        reason: String,
    },
    #[error("the source reader stopped unexpectedly: {0}")]
    Reader(String),
}

/// Why a database server session could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// No answer at that address: connection refused, no route, unknown host name.
    Unreachable,
    /// No session within the connect timeout.
    Timeout,
    /// The TLS handshake failed: an untrusted or misnamed certificate, or no TLS on the server.
    Tls,
    /// The server refused the user name or password.
    LoginFailed,
    /// The server has no database of that name.
    DatabaseMissing,
    /// The server refused for another reason (too many connections, starting up, …).
    Refused,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectFailure::Unreachable => "host unreachable",
            ConnectFailure::Timeout => "timed out",
            ConnectFailure::Tls => "TLS failure",
            ConnectFailure::LoginFailed => "login failed",
            ConnectFailure::DatabaseMissing => "database missing",
            ConnectFailure::Refused => "connection refused by the server",
        })
    }
}

/// A database's message about a query's SQL text with every quoted fragment of that text left
/// out (`near "…": syntax error`). When the "query" file is not SQL at all (a password file, an
/// export named by mistake), the fragment is that file's content, and the message is kept in
/// the run ledger and the run report; the line number the caller adds says where to look.
pub(crate) fn without_quoted_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['"', '\'']) {
        let quote = &rest[open..open + 1];
        out.push_str(&rest[..open]);
        out.push_str(quote);
        out.push('…');
        out.push_str(quote);
        match rest[open + 1..].find(quote) {
            Some(close) => rest = &rest[open + 1 + close + 1..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// A query to run: its SQL and a name for messages (the query file).
#[derive(Debug, Clone)]
pub struct Query {
    pub name: String,
    pub sql: String,
}

/// A running query: its columns and a stream of batches. Dropping it stops the reader.
#[derive(Debug)]
pub struct RowStream {
    pub columns: Vec<ColumnInfo>,
    batches: mpsc::Receiver<BatchMessage>,
}

impl RowStream {
    /// The next batch, `None` at the end of the result. An error ends the stream.
    pub async fn next_batch(&mut self) -> Option<Result<RowBatch, SourceError>> {
        self.batches.recv().await
    }

    /// Blocking variant for callers on a plain thread.
    pub(crate) fn blocking_next_batch(&mut self) -> Option<Result<RowBatch, SourceError>> {
        self.batches.blocking_recv()
    }
}

/// A clinic database.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Starts `query` with `window_start` bound to every `?` and returns once the columns are
    /// known; rows follow in batches of at most `batch_rows`.
    fn stream(
        &self,
        query: &Query,
        window_start: NaiveDateTime,
        batch_rows: usize,
    ) -> impl std::future::Future<Output = Result<RowStream, SourceError>> + Send;
}

/// Opens the source a URL names. `clinic_tz` is the zone of the source's local timestamps
/// (`[sync] clinic_time_zone`): engines with zone-aware types convert their instants to it.
pub fn open(url: &SourceUrl, clinic_tz: Tz) -> Result<AnySource, SourceError> {
    match url {
        SourceUrl::Sqlite(path) => Ok(AnySource::Sqlite(SqliteSource::open(path)?)),
        SourceUrl::Postgres(url) => Ok(AnySource::Postgres(PostgresSource::open(url, clinic_tz)?)),
        SourceUrl::SqlServer(url) => {
            Ok(AnySource::SqlServer(SqlServerSource::open(url, clinic_tz)?))
        }
    }
}

/// The sources this build supports, behind one type so jobs need no generics.
#[derive(Debug)]
pub enum AnySource {
    Sqlite(SqliteSource),
    Postgres(PostgresSource),
    SqlServer(SqlServerSource),
}

impl AnySource {
    pub async fn stream(
        &self,
        query: &Query,
        window_start: NaiveDateTime,
        batch_rows: usize,
    ) -> Result<RowStream, SourceError> {
        match self {
            AnySource::Sqlite(s) => s.stream(query, window_start, batch_rows).await,
            AnySource::Postgres(s) => s.stream(query, window_start, batch_rows).await,
            AnySource::SqlServer(s) => s.stream(query, window_start, batch_rows).await,
        }
    }
}

/// What a reader sends: a batch, or the error that ended the result.
type BatchMessage = Result<RowBatch, SourceError>;

fn channel() -> (mpsc::Sender<BatchMessage>, mpsc::Receiver<BatchMessage>) {
    mpsc::channel(CHANNEL_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::without_quoted_text;

    #[test]
    fn quoted_fragments_of_the_sql_are_left_out() {
        assert_eq!(
            without_quoted_text(r#"near "hunter2": syntax error"#),
            r#"near "…": syntax error"#
        );
        assert_eq!(
            without_quoted_text(r#"unrecognized token: "'Jane""#),
            r#"unrecognized token: "…""#
        );
        assert_eq!(
            without_quoted_text("Unclosed quotation mark after the character string 'Jane"),
            "Unclosed quotation mark after the character string '…'"
        );
        assert_eq!(without_quoted_text("no such table: t"), "no such table: t");
    }
}
