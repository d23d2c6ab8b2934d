//! Writes typed rows into PostgreSQL in the conventions of [`super::schema`]: native `date` and
//! `timestamp` columns, the same wall-clock values the SQLite file holds as text.

use std::error::Error;

use bytes::BytesMut;
use tokio_postgres::Transaction;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::model::{Dose, Patient, Value};
use super::schema::{Dialect, IMFILE, MPFILE, TableDef};

/// Rows per `INSERT`: one round trip per thousand rows instead of per row (100 000 synthetic
/// patients took minutes row by row over loopback), and 19 000 parameters stay far below the
/// protocol's 65 535.
const ROWS_PER_STATEMENT: usize = 1000;

/// Binds a dialect-neutral value as the column's type; integers narrow to `integer` or
/// `smallint` columns when they fit (an existing table may declare `patno integer`).
impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>>
    where
        Self: Sized,
    {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Date(d) => d.to_sql(ty, out),
            Value::DateTime(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Creates the clinic source schema (tables and indexes) if absent, in the first schema of the
/// session's `search_path`, which is created too when `schema` names it. Idempotent.
pub async fn create_schema(
    tx: &Transaction<'_>,
    schema: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    if let Some(schema) = schema {
        // The name was checked to be a plain lower-case identifier when the URL was parsed.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
    }
    for statement in Dialect::Postgres.ddl() {
        tx.batch_execute(&statement).await?;
    }
    Ok(())
}

/// Upserts rows (`INSERT … ON CONFLICT DO UPDATE`, keyed by `patno` / `im_id`), a thousand per
/// statement. Call [`PostgresWriter::finish`] to write the last partial batches.
pub struct PostgresWriter<'a, 't> {
    tx: &'a Transaction<'t>,
    patients: Vec<Patient>,
    doses: Vec<Dose>,
}

/// Counts only: the buffered rows are test data, but rows are never formatted.
impl std::fmt::Debug for PostgresWriter<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWriter")
            .field("buffered_patients", &self.patients.len())
            .field("buffered_doses", &self.doses.len())
            .finish()
    }
}

impl super::RowSink for PostgresWriter<'_, '_> {
    type Error = tokio_postgres::Error;

    async fn patient(&mut self, patient: Patient) -> Result<(), Self::Error> {
        PostgresWriter::patient(self, patient).await
    }

    async fn dose(&mut self, dose: Dose) -> Result<(), Self::Error> {
        PostgresWriter::dose(self, dose).await
    }
}

impl<'a, 't> PostgresWriter<'a, 't> {
    /// A writer into `tx`; the schema must exist.
    pub fn new(tx: &'a Transaction<'t>) -> Self {
        PostgresWriter {
            tx,
            patients: Vec::with_capacity(ROWS_PER_STATEMENT),
            doses: Vec::with_capacity(ROWS_PER_STATEMENT),
        }
    }

    /// Inserts or replaces one patient (possibly later, with its batch).
    pub async fn patient(&mut self, patient: Patient) -> Result<(), tokio_postgres::Error> {
        // A repeated key within one statement is an error in PostgreSQL: write what came first.
        if self.patients.iter().any(|p| p.patno == patient.patno) {
            self.flush_patients().await?;
        }
        self.patients.push(patient);
        if self.patients.len() == ROWS_PER_STATEMENT {
            self.flush_patients().await?;
        }
        Ok(())
    }

    /// Inserts or replaces one dose (possibly later, with its batch).
    pub async fn dose(&mut self, dose: Dose) -> Result<(), tokio_postgres::Error> {
        if self.doses.iter().any(|d| d.im_id == dose.im_id) {
            self.flush_doses().await?;
        }
        self.doses.push(dose);
        if self.doses.len() == ROWS_PER_STATEMENT {
            self.flush_doses().await?;
        }
        Ok(())
    }

    /// Writes the rows still buffered.
    pub async fn finish(mut self) -> Result<(), tokio_postgres::Error> {
        self.flush_patients().await?;
        self.flush_doses().await
    }

    async fn flush_patients(&mut self) -> Result<(), tokio_postgres::Error> {
        let rows: Vec<_> = self.patients.iter().map(Patient::values).collect();
        upsert(self.tx, &MPFILE, &rows).await?;
        self.patients.clear();
        Ok(())
    }

    async fn flush_doses(&mut self) -> Result<(), tokio_postgres::Error> {
        let rows: Vec<_> = self.doses.iter().map(Dose::values).collect();
        upsert(self.tx, &IMFILE, &rows).await?;
        self.doses.clear();
        Ok(())
    }
}

async fn upsert<const N: usize>(
    tx: &Transaction<'_>,
    table: &TableDef,
    rows: &[[Value<'_>; N]],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = Dialect::Postgres.upsert_rows(table, rows.len());
    let params: Vec<&(dyn ToSql + Sync)> = rows
        .iter()
        .flat_map(|row| row.iter().map(|v| v as &(dyn ToSql + Sync)))
        .collect();
    tx.execute(sql.as_str(), &params).await?;
    Ok(())
}
