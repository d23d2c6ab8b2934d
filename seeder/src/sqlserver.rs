//! Writes typed rows into SQL Server in the conventions of [`super::schema`]: native `date` and
//! `datetime2(7)` columns, `nvarchar` for people's text, over the SQL Server source's own
//! connection code (`reqsync_runtime::source::sqlserver`).
//!
//! Every value travels as a typed `sp_executesql` parameter (`@P1`, `@P2`, …), never as SQL text;
//! a NULL is written into the statement as `CAST(NULL AS <column type>)` instead (see
//! [`super::schema::sql_server_upsert`] for why).
//! The whole seed is one transaction, begun and ended by SQL batches:
//!
//! - `SET XACT_ABORT ON` makes any run-time error roll the whole transaction back on the server.
//!   It must be a batch of its own: a `SET` inside `sp_executesql` would be undone when that call
//!   returns.
//! - `BEGIN TRANSACTION` as a batch for the same reason (a transaction opened inside
//!   `sp_executesql` would leave it with a different `@@TRANCOUNT`, which SQL Server reports as
//!   error 266). The server answers with the transaction's descriptor (an ENVCHANGE token);
//!   tiberius attaches it to every later request, which is how they run inside the transaction.
//! - On failure `IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION` (the server may have rolled back already),
//!   then the connection is closed; a session that ends also rolls its transaction back, so a
//!   broken connection leaves nothing behind either.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use tiberius::{ColumnData, IntoSql, ToSql};

use super::model::{Dose, Patient, Value};
use super::schema::{Dialect, IMFILE, MPFILE, SqlType, TABLES, TableDef, sql_server_upsert};
use reqsync_runtime::source::sqlserver::SqlClient;

/// Parameters one request may carry: SQL Server accepts 2 100, and `sp_executesql`'s own
/// `@stmt` and `@params` count among them (the limit EF Core and others use, `2100 - 2`).
pub const MAX_PARAMETERS: usize = 2100 - 2;

/// Rows per upsert statement: as many as [`MAX_PARAMETERS`] allow (110 rows of 19 columns), one
/// round trip each. Far below the 1 000 rows a `VALUES` list may hold.
pub const fn rows_per_statement(table: &TableDef) -> usize {
    MAX_PARAMETERS / table.columns.len()
}

const BEGIN: &str = "SET XACT_ABORT ON;\nBEGIN TRANSACTION";
const COMMIT: &str = "COMMIT TRANSACTION";
const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";

/// What the seed was doing when SQL Server refused it. Counts and table names only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `SET XACT_ABORT ON; BEGIN TRANSACTION`.
    Begin,
    /// `CREATE TABLE` or `CREATE INDEX` of one table.
    Schema {
        /// The table.
        table: &'static str,
    },
    /// One upsert statement: rows `first ..= last` (1-based, in write order) of one table.
    Rows {
        /// The table.
        table: &'static str,
        /// The statement's first row.
        first: u64,
        /// The statement's last row.
        last: u64,
    },
    /// `COMMIT TRANSACTION`.
    Commit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Begin => f.write_str("starting the transaction"),
            Step::Schema { table } => write!(f, "creating table `{table}` and its indexes"),
            Step::Rows { table, first, last } => {
                write!(f, "writing rows {first}–{last} of table `{table}`")
            }
            Step::Commit => f.write_str("committing"),
        }
    }
}

/// A statement failed: which step, and the driver's error.
pub struct WriteFailure {
    /// What was being done.
    pub step: Step,
    /// What the driver or the server said (its message may quote values: describe it with
    /// `reqsync_runtime::source::sqlserver::describe_write_error`, never print it).
    pub error: tiberius::error::Error,
}

/// The step and the server's error number only: the driver's message may quote a value.
impl fmt::Debug for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFailure")
            .field("step", &self.step)
            .field("error_code", &self.error.code())
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, WriteFailure>;

/// Runs one SQL batch and reads its whole answer, so that an error in it is seen now.
async fn batch(client: &mut SqlClient, sql: &str, step: Step) -> Result<()> {
    let failed = |error| WriteFailure { step, error };
    client
        .simple_query(sql)
        .await
        .map_err(failed)?
        .into_results()
        .await
        .map_err(failed)?;
    Ok(())
}

/// `SET XACT_ABORT ON; BEGIN TRANSACTION` (see the module docs).
pub async fn begin(client: &mut SqlClient) -> Result<()> {
    batch(client, BEGIN, Step::Begin).await
}

/// `COMMIT TRANSACTION`.
pub async fn commit(client: &mut SqlClient) -> Result<()> {
    batch(client, COMMIT, Step::Commit).await
}

/// Rolls back what is left of the transaction, if anything; errors are ignored because closing
/// the connection, which the caller does next, rolls back too.
pub async fn roll_back(client: &mut SqlClient) {
    if let Ok(answer) = client.simple_query(ROLLBACK).await {
        let _ = answer.into_results().await;
    }
}

/// Creates the clinic source schema (tables and indexes) if absent. Idempotent.
pub async fn create_schema(client: &mut SqlClient) -> Result<()> {
    for table in TABLES {
        let step = Step::Schema { table: table.name };
        batch(client, &Dialect::SqlServer.create_table(table), step).await?;
        for statement in Dialect::SqlServer.create_indexes(table) {
            batch(client, &statement, step).await?;
        }
    }
    Ok(())
}

/// Binds a dialect-neutral value as the parameter type of its column; `None` for NULL, which
/// the statement carries as `CAST(NULL AS <type>)` instead ([`sql_server_upsert`]): tiberius
/// would send it untyped (TDS NULLTYPE), which Babelfish refuses with error 8009. `int` columns
/// get `int` parameters when the value fits; one that does not is sent as `bigint` and refused
/// by the server (arithmetic overflow) rather than cut here.
fn bind<'a>(ty: SqlType, value: Value<'a>) -> Option<ColumnData<'a>> {
    Some(match value {
        Value::Null => return None,
        Value::Int(i) => match (ty, i32::try_from(i)) {
            (SqlType::Int, Ok(small)) => ColumnData::I32(Some(small)),
            _ => ColumnData::I64(Some(i)),
        },
        // nvarchar parameters: the server converts to a varchar column's code page itself.
        Value::Text(s) => ColumnData::String(Some(Cow::Borrowed(s))),
        Value::Date(d) => d.into_sql(),
        // datetime2(7): 100 ns, the column's own resolution.
        Value::DateTime(t) => t.into_sql(),
    })
}

/// Upserts rows (delete by key, then insert), [`rows_per_statement`] per statement. Call
/// [`SqlServerWriter::finish`] to write the last partial batches.
pub struct SqlServerWriter<'c> {
    client: &'c mut SqlClient,
    patients: Buffer<Patient>,
    doses: Buffer<Dose>,
}

/// Counts only: the buffered rows are test data, but rows are never formatted.
impl fmt::Debug for SqlServerWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlServerWriter")
            .field("buffered_patients", &self.patients.rows.len())
            .field("buffered_doses", &self.doses.rows.len())
            .finish()
    }
}

/// Rows of one table waiting for their statement, and how many were written before them.
struct Buffer<R> {
    table: &'static TableDef,
    rows: Vec<R>,
    keys: HashSet<i64>,
    written: u64,
}

impl<R> Buffer<R> {
    fn new(table: &'static TableDef) -> Self {
        let capacity = rows_per_statement(table);
        Self {
            table,
            rows: Vec::with_capacity(capacity),
            keys: HashSet::with_capacity(capacity),
            written: 0,
        }
    }
}

trait Keyed {
    fn key(&self) -> i64;
}

impl Keyed for Patient {
    fn key(&self) -> i64 {
        self.patno
    }
}

impl Keyed for Dose {
    fn key(&self) -> i64 {
        self.im_id
    }
}

impl super::RowSink for SqlServerWriter<'_> {
    type Error = WriteFailure;

    async fn patient(&mut self, patient: Patient) -> Result<()> {
        SqlServerWriter::patient(self, patient).await
    }

    async fn dose(&mut self, dose: Dose) -> Result<()> {
        SqlServerWriter::dose(self, dose).await
    }
}

impl<'c> SqlServerWriter<'c> {
    /// A writer on a session inside the seed's transaction; the schema must exist.
    pub fn new(client: &'c mut SqlClient) -> Self {
        Self {
            client,
            patients: Buffer::new(&MPFILE),
            doses: Buffer::new(&IMFILE),
        }
    }

    /// Inserts or replaces one patient (possibly later, with its batch).
    pub async fn patient(&mut self, patient: Patient) -> Result<()> {
        push(self.client, &mut self.patients, patient, Patient::values).await
    }

    /// Inserts or replaces one dose (possibly later, with its batch).
    pub async fn dose(&mut self, dose: Dose) -> Result<()> {
        push(self.client, &mut self.doses, dose, Dose::values).await
    }

    /// Writes the rows still buffered.
    pub async fn finish(self) -> Result<()> {
        let Self {
            client,
            mut patients,
            mut doses,
        } = self;
        flush(client, &mut patients, Patient::values).await?;
        flush(client, &mut doses, Dose::values).await
    }
}

async fn push<R: Keyed, const N: usize>(
    client: &mut SqlClient,
    buffer: &mut Buffer<R>,
    row: R,
    values: fn(&R) -> [Value<'_>; N],
) -> Result<()> {
    // The INSERT would meet a repeated key twice (a primary key violation): write what came
    // first, so the later row replaces it as in the other dialects.
    if buffer.keys.contains(&row.key()) {
        flush(client, buffer, values).await?;
    }
    buffer.keys.insert(row.key());
    buffer.rows.push(row);
    if buffer.rows.len() == rows_per_statement(buffer.table) {
        flush(client, buffer, values).await?;
    }
    Ok(())
}

async fn flush<R, const N: usize>(
    client: &mut SqlClient,
    buffer: &mut Buffer<R>,
    values: fn(&R) -> [Value<'_>; N],
) -> Result<()> {
    if buffer.rows.is_empty() {
        return Ok(());
    }
    let table = buffer.table;
    let count = buffer.rows.len();
    let step = Step::Rows {
        table: table.name,
        first: buffer.written + 1,
        last: buffer.written + count as u64,
    };
    // The statement depends on which values are NULL (see `sql_server_upsert`): the server
    // compiles one plan per NULL pattern, a small cost for a one-off load.
    let mut nulls = Vec::with_capacity(count * table.columns.len());
    let mut params: Vec<ColumnData<'_>> = Vec::with_capacity(count * table.columns.len());
    for row in &buffer.rows {
        for (value, column) in values(row).into_iter().zip(table.columns) {
            let bound = bind(column.ty, value);
            nulls.push(bound.is_none());
            params.extend(bound);
        }
    }
    let sql = sql_server_upsert(table, &nulls);
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
    client
        .execute(sql.as_str(), &refs)
        .await
        .map_err(|error| WriteFailure { step, error })?;
    buffer.written += count as u64;
    buffer.rows.clear();
    buffer.keys.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_full_statement_stays_within_the_parameter_limit() {
        for table in TABLES {
            let rows = rows_per_statement(table);
            assert_eq!(rows, 110, "{}", table.name);
            // Plus @stmt and @params.
            assert!(rows * table.columns.len() + 2 <= 2100);
        }
    }

    #[test]
    fn values_are_typed_parameters_and_nulls_are_none() {
        // A NULL of any type is no parameter (the statement types it): tiberius would send it
        // as TDS NULLTYPE, which Babelfish refuses with error 8009.
        for ty in [
            SqlType::Int,
            SqlType::BigInt,
            SqlType::NVarChar(60),
            SqlType::VarChar(10),
            SqlType::Char(2),
            SqlType::Text,
            SqlType::Date,
            SqlType::DateTime,
        ] {
            assert!(bind(ty, Value::Null).is_none(), "{ty:?}");
        }
        assert!(matches!(
            bind(SqlType::Int, Value::Int(7)),
            Some(ColumnData::I32(Some(7)))
        ));
        // Too large for `int`: the server refuses it, nothing is cut here.
        assert!(matches!(
            bind(SqlType::Int, Value::Int(1 << 40)),
            Some(ColumnData::I64(Some(_)))
        ));
        assert!(matches!(
            bind(SqlType::BigInt, Value::Int(3_000_000_000)),
            Some(ColumnData::I64(Some(3_000_000_000)))
        ));
        let day = NaiveDate::from_ymd_opt(2016, 9, 28).expect("date");
        assert!(matches!(
            bind(SqlType::Date, Value::Date(day)),
            Some(ColumnData::Date(Some(_)))
        ));
        assert!(matches!(
            bind(SqlType::NVarChar(60), Value::Text("Nguyễn")),
            Some(ColumnData::String(Some(Cow::Borrowed("Nguyễn"))))
        ));
    }

    #[test]
    fn failures_name_the_step_and_rows_by_count() {
        let step = Step::Rows {
            table: "imfile",
            first: 111,
            last: 177,
        };
        assert_eq!(step.to_string(), "writing rows 111–177 of table `imfile`");
        assert_eq!(
            Step::Schema { table: "mpfile" }.to_string(),
            "creating table `mpfile` and its indexes"
        );
    }
}
