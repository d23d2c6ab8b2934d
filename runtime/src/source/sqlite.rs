//! The embedded default source: a SQLite file in the clinic source schema.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use rusqlite::{OpenFlags, types::ValueRef};
use tokio::sync::oneshot;

use super::{
    Cell, ColumnInfo, PlaceholderStyle, Query, RowBatch, RowStream, Source, SourceError,
    bind_window_start, channel,
};

/// The format SQLite's own `datetime()` produces; the seeded schema stores timestamps this way,
/// so binding the window start in the same form makes text comparison correct.
const SQLITE_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S";

/// The first bytes of every SQLite database file (an empty file is an empty database).
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    std::fs::File::open(path)?
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)?;
    Ok(header)
}

/// A SQLite clinic database, opened read-only for every query.
#[derive(Debug, Clone)]
pub struct SqliteSource {
    path: PathBuf,
}

impl SqliteSource {
    /// Checks that the file is there, readable and a SQLite database; each query opens its own
    /// read-only connection.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let open_error = |reason: String| SourceError::Open {
            what: format!("sqlite://{}", path.display()),
            reason,
        };
        if path.is_dir() {
            return Err(open_error(
                "it is a directory; `[source] url` must name the database file".into(),
            ));
        }
        if !path.is_file() {
            return Err(open_error(
                "no such file (create one with `reqsync seed --db sqlite://PATH`)".into(),
            ));
        }
        // SQLite reads a file lazily: without this, an unreadable file or one that is not a
        // database would surface as a failure of the first query, blaming the query file.
        let header = read_header(path).map_err(|e| open_error(format!("cannot read it: {e}")))?;
        if !header.is_empty() && !header.starts_with(SQLITE_HEADER) {
            return Err(open_error(
                "the file is not a SQLite database (it lacks the `SQLite format 3` header)".into(),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }
}

impl Source for SqliteSource {
    async fn stream(
        &self,
        query: &Query,
        window_start: NaiveDateTime,
        batch_rows: usize,
    ) -> Result<RowStream, SourceError> {
        let (tx, rx) = channel();
        let (columns_tx, columns_rx) = oneshot::channel();
        let path = self.path.clone();
        let query = query.clone();
        let batch_rows = batch_rows.max(1);
        std::thread::Builder::new()
            .name("sqlite-reader".into())
            .spawn(move || {
                read_query(&path, &query, window_start, batch_rows, columns_tx, tx);
            })
            .map_err(|e| SourceError::Reader(e.to_string()))?;
        let columns = columns_rx.await.map_err(|_| {
            SourceError::Reader("reader thread ended before the query started".into())
        })??;
        Ok(RowStream {
            columns,
            batches: rx,
        })
    }
}

type BatchSender = tokio::sync::mpsc::Sender<super::BatchMessage>;

fn read_query(
    path: &Path,
    query: &Query,
    window_start: NaiveDateTime,
    batch_rows: usize,
    columns_tx: oneshot::Sender<Result<Vec<ColumnInfo>, SourceError>>,
    tx: BatchSender,
) {
    let query_error = |e: rusqlite::Error| SourceError::Query {
        query: query.name.clone(),
        reason: describe_query_error(&e),
    };
    let conn = match rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = columns_tx.send(Err(SourceError::Open {
                what: format!("sqlite://{}", path.display()),
                reason: e.to_string(),
            }));
            return;
        }
    };
    let (sql, _) = bind_window_start(&query.sql, PlaceholderStyle::Sqlite);
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(e) => {
            let _ = columns_tx.send(Err(query_error(e)));
            return;
        }
    };
    let columns: Vec<ColumnInfo> = stmt
        .columns()
        .iter()
        .map(|c| ColumnInfo {
            name: c.name().to_string(),
            declared_type: c.decl_type().unwrap_or("").to_ascii_uppercase(),
        })
        .collect();
    let start = window_start.format(SQLITE_TIMESTAMP).to_string();
    let rows = match stmt.parameter_count() {
        0 => stmt.query([]),
        1 => stmt.query([&start]),
        n => {
            let _ = columns_tx.send(Err(SourceError::Query {
                query: query.name.clone(),
                reason: format!(
                    "it has {n} distinct parameters; only the window start (`?`) can be bound"
                ),
            }));
            return;
        }
    };
    let mut rows = match rows {
        Ok(r) => r,
        Err(e) => {
            let _ = columns_tx.send(Err(query_error(e)));
            return;
        }
    };
    if columns_tx.send(Ok(columns.clone())).is_err() {
        return;
    }
    let mut batch = RowBatch::new(columns.len());
    let mut row_number = 0u64;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(query_error(e)));
                return;
            }
        };
        row_number += 1;
        for (i, col) in columns.iter().enumerate() {
            match convert(row.get_ref(i)) {
                Ok(cell) => batch.push(i, cell),
                Err(reason) => {
                    let _ = tx.blocking_send(Err(SourceError::Value {
                        query: query.name.clone(),
                        column: col.name.clone(),
                        reason: format!("row {row_number}: {reason}"),
                    }));
                    return;
                }
            }
        }
        batch.finish_row();
        if batch.len() == batch_rows {
            let next = batch.empty_like();
            let full = std::mem::replace(&mut batch, next);
            if tx.blocking_send(Ok(full)).is_err() {
                return; // the consumer stopped listening: the run was abandoned
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

/// SQLite's message and where in the query file it points, without the SQL text that
/// rusqlite's own message repeats or quotes (a query may hold literals, and a file named as the
/// query by mistake may hold a secret; the file is at hand anyway).
fn describe_query_error(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError {
            msg, sql, offset, ..
        } => {
            // The offset is into the SQL with `?` rewritten to `?1`, which adds no line breaks.
            let before = usize::try_from(*offset)
                .ok()
                .and_then(|o| sql.get(..o.min(sql.len())));
            let msg = super::without_quoted_text(msg);
            match before {
                Some(before) => format!("{msg} (line {})", before.matches('\n').count() + 1),
                None => msg,
            }
        }
        other => other.to_string(),
    }
}

fn convert(value: rusqlite::Result<ValueRef<'_>>) -> Result<Cell<'_>, String> {
    let value = value.map_err(|e| e.to_string())?;
    if let ValueRef::Text(bytes) | ValueRef::Blob(bytes) = value
        && bytes.len() > super::MAX_VALUE_BYTES
    {
        return Err(super::too_large(bytes.len()));
    }
    match value {
        ValueRef::Null => Ok(Cell::Null),
        ValueRef::Integer(i) => Ok(Cell::Int(i)),
        ValueRef::Real(f) => Ok(Cell::Float(f)),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(Cell::Text)
            // The position of the bad byte is safe to show; the text is not.
            .map_err(|e| format!("text is not valid UTF-8 (byte {})", e.valid_up_to())),
        ValueRef::Blob(b) => Ok(Cell::Bytes(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;
    use chrono::NaiveDate;

    fn db_with(sql: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
        (dir, path)
    }

    fn start() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2016, 9, 28)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    async fn collect(
        src: &SqliteSource,
        sql: &str,
        batch: usize,
    ) -> Result<(Vec<ColumnInfo>, Vec<RowBatch>), SourceError> {
        let q = Query {
            name: "q.sql".into(),
            sql: sql.into(),
        };
        let mut s = src.stream(&q, start(), batch).await?;
        let mut out = vec![];
        while let Some(b) = s.next_batch().await {
            out.push(b?);
        }
        Ok((s.columns.clone(), out))
    }

    #[tokio::test]
    async fn window_start_binds_to_every_placeholder_and_boundary_row_is_included() {
        let (_d, path) = db_with(
            "CREATE TABLE t (id INTEGER, updated_at DATETIME);
             INSERT INTO t VALUES (1, '2016-09-28 11:59:59'), (2, '2016-09-28 12:00:00'), (3, '2016-09-29 00:00:00');",
        );
        let src = SqliteSource::open(&path).unwrap();
        let (cols, batches) = collect(
            &src,
            "SELECT id FROM t WHERE updated_at >= ? OR updated_at >= ? ORDER BY id",
            10,
        )
        .await
        .unwrap();
        assert_eq!(cols[0].name, "id");
        let ids: Vec<_> = batches
            .iter()
            .flat_map(|b| b.to_rows())
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(ids, vec![Value::Int(2), Value::Int(3)]);
    }

    #[tokio::test]
    async fn rows_arrive_in_batches_of_the_requested_size() {
        let (_d, path) = db_with(
            "CREATE TABLE t (id INTEGER);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 25) INSERT INTO t SELECT x FROM c;",
        );
        let src = SqliteSource::open(&path).unwrap();
        let (_, batches) = collect(&src, "SELECT id FROM t", 10).await.unwrap();
        let sizes: Vec<_> = batches.iter().map(RowBatch::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[tokio::test]
    async fn declared_types_are_reported() {
        let (_d, path) = db_with("CREATE TABLE t (d DATE, n varchar(60));");
        let src = SqliteSource::open(&path).unwrap();
        let (cols, _) = collect(&src, "SELECT d, n, 1 AS x FROM t", 10)
            .await
            .unwrap();
        let types: Vec<_> = cols.iter().map(|c| c.declared_type.as_str()).collect();
        assert_eq!(types, vec!["DATE", "VARCHAR(60)", ""]);
    }

    #[tokio::test]
    async fn query_syntax_error_names_the_query_file() {
        let (_d, path) = db_with("CREATE TABLE t (id INTEGER);");
        let src = SqliteSource::open(&path).unwrap();
        let err = collect(&src, "SELEC id FROM t", 10).await.unwrap_err();
        assert!(err.to_string().contains("q.sql"), "{err}");
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error_naming_the_column_without_the_text() {
        let (_d, path) = db_with(
            "CREATE TABLE t (name TEXT); INSERT INTO t VALUES (CAST(X'4A6F73C3' AS TEXT));",
        );
        let src = SqliteSource::open(&path).unwrap();
        let err = collect(&src, "SELECT name FROM t", 10).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`name`") && msg.contains("UTF-8"), "{msg}");
        assert!(!msg.contains("Jos"), "{msg}");
    }

    #[tokio::test]
    async fn query_syntax_error_names_the_line_without_repeating_the_sql() {
        let (_d, path) = db_with("CREATE TABLE t (id INTEGER, secret TEXT);");
        let src = SqliteSource::open(&path).unwrap();
        let err = collect(
            &src,
            "SELECT id\nFROM t\nWHER secret = 'Jane' AND id >= ?",
            10,
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("syntax error (line 3)"), "{msg}");
        assert!(!msg.contains("Jane") && !msg.contains("SELECT"), "{msg}");
        // An error at the first character of a line is on that line.
        let err = collect(&src, "SELECT id\nFROM t\n)", 10).await.unwrap_err();
        assert!(err.to_string().contains("(line 3)"), "{err}");
    }

    #[tokio::test]
    async fn a_value_over_the_size_limit_stops_the_query_with_its_size_only() {
        let (_d, path) = db_with("CREATE TABLE t (name TEXT);");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let big = "Zq".repeat(super::super::MAX_VALUE_BYTES / 2 + 1);
        conn.execute("INSERT INTO t VALUES (?1)", [&big]).unwrap();
        let src = SqliteSource::open(&path).unwrap();
        let err = collect(&src, "SELECT name FROM t", 10).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`name`") && msg.contains("row 1") && msg.contains("16 MiB"),
            "{msg}"
        );
        assert!(!msg.contains("ZqZq"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clinic.db");
        std::fs::write(&path, "patno,lname\n101,Jane\n").unwrap();
        let err = SqliteSource::open(&path).unwrap_err();
        assert!(err.to_string().contains("not a SQLite database"), "{err}");
        assert!(!err.to_string().contains("Jane"), "{err}");
        let err = SqliteSource::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        // An empty file is an empty database.
        std::fs::write(&path, "").unwrap();
        assert!(SqliteSource::open(&path).is_ok());
    }

    #[test]
    fn missing_database_file_is_a_clear_error() {
        let err = SqliteSource::open(Path::new("/nonexistent/clinic.db")).unwrap_err();
        assert!(err.to_string().contains("reqsync seed"), "{err}");
    }
}
